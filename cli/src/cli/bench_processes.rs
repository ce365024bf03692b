//! `bench-pipeline --processes`: the sensor, bridge, windower and coordinator as separate
//! `wattcast` processes, as they run in the cluster, so each one's CPU and peak memory is
//! measured on its own.

use super::processes::{Workload, Workloads};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wattcast_crds::{Architecture, PipelineExperiment};
use wattcast_io::services::Services;
use wattcast_io::store::Store;
use wattcast_io::store::summary::{StoreSummary, WindowLatencySplit};
use wattcast_pipeline::local::reset_experiment;

/// One workload process's cost over a run.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentUsage {
    /// `sensor`, `bridge`, `windower` or `coordinator`.
    pub component: &'static str,
    /// CPU seconds (user + system) per second of run.
    pub cpu_cores: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
}

/// What a run with one process per workload measured.
#[derive(Debug, Serialize)]
pub struct ProcessesRun {
    /// Readings the sensor reported sending.
    pub readings_sent: i64,
    /// The store's account of the run.
    pub summary: StoreSummary,
    /// The window latency in its two halves.
    pub window_latency_split: WindowLatencySplit,
    /// From the sensor's start until every reading was stored, seconds.
    pub duration_s: f64,
    /// Each workload process.
    pub components: Vec<ComponentUsage>,
}

/// The consuming workloads, started before the sensor, and the port of each one's `/readyz`.
const CONSUMERS: [(&str, u16); 3] = [("bridge", 19_191), ("windower", 19_192), ("coordinator", 19_193)];
/// The sensor's metrics port.
const SENSOR_PORT: u16 = 19_190;

/// Looks at the workloads while the sensor replays (a soak's sampler); `()` looks at nothing.
pub trait Watch {
    /// Called about every quarter second with the time since the sensor started and each
    /// workload process's name and pid.
    async fn tick(&mut self, since_start: Duration, workloads: &[(&'static str, u32)]) -> Result<()>;
}

impl Watch for () {
    async fn tick(&mut self, _: Duration, _: &[(&'static str, u32)]) -> Result<()> {
        Ok(())
    }
}

/// Runs `experiment` with one process per workload, `watch` looking on while the sensor
/// replays; returns what the store and /proc say.
pub async fn run_processes(
    experiment: &PipelineExperiment,
    services: &Services,
    watch: &mut impl Watch,
) -> Result<ProcessesRun> {
    let store = reset_experiment(experiment, services).await?;
    let name = wattcast_core::experiment::name(experiment)?;
    let dir = std::env::temp_dir().join(format!("wattcast-bench-{name}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let experiment_file: PathBuf = dir.join("experiment.yaml");
    std::fs::write(&experiment_file, serde_yaml::to_string(experiment)?)
        .with_context(|| format!("writing {}", experiment_file.display()))?;

    let mut workloads = Workloads::default();
    // Smart sensors' batches are windows already: Batching has no windower.
    let consumers = CONSUMERS.into_iter().filter(|(component, _)| {
        *component != "windower" || experiment.spec.architecture == Architecture::Streaming
    });
    for (component, port) in consumers {
        workloads.0.push(Workload::start(
            component,
            component,
            port,
            &experiment_file,
            &dir,
        )?);
    }
    let http = reqwest::Client::new();
    for workload in &mut workloads.0 {
        workload.wait_ready(&http).await?;
    }

    let started = Instant::now();
    let mut sensor = Workload::start("sensor", "sensor", SENSOR_PORT, &experiment_file, &dir)?;
    let sensor_status = loop {
        if let Some(status) = sensor.observe()? {
            break status;
        }
        workloads.check_alive()?;
        let pids: Vec<(&'static str, u32)> = std::iter::once(&sensor)
            .chain(&workloads.0)
            .map(|workload| (workload.component, workload.pid()))
            .collect();
        watch.tick(started.elapsed(), &pids).await?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if !sensor_status.success() {
        bail!(
            "the sensor failed ({sensor_status}); see {}",
            dir.join("sensor.log").display()
        );
    }
    let readings_sent = store.sensor_totals().await?.readings_sent;
    drain(&store, readings_sent, &mut workloads, &dir).await?;
    let duration_s = started.elapsed().as_secs_f64();

    let mut components = vec![usage_of(&sensor, duration_s)];
    for workload in &mut workloads.0 {
        workload.stop()?;
        components.push(usage_of(workload, duration_s));
    }
    Ok(ProcessesRun {
        readings_sent,
        summary: store.summary().await?,
        window_latency_split: store.window_latency_split().await?,
        duration_s,
        components,
    })
}

fn usage_of(workload: &Workload, duration_s: f64) -> ComponentUsage {
    let usage = workload.usage;
    ComponentUsage {
        component: workload.component,
        cpu_cores: usage.map_or(0.0, |u| u.cpu_seconds) / duration_s.max(1e-9),
        peak_rss_mib: usage.map_or(0.0, |u| u.peak_rss_mib()),
    }
}

/// Waits until every reading sent is stored (or stored as late), for at most five minutes.
async fn drain(store: &Store, readings_sent: i64, workloads: &mut Workloads, dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let arrived = store.arrived().await?;
        if arrived >= readings_sent {
            return Ok(());
        }
        workloads.check_alive()?;
        if Instant::now() > deadline {
            bail!(
                "not drained after 300 s: {arrived} of {readings_sent} readings stored; see {}",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
