//! `wattcast soak`: the pipeline at real time for an hour (one process per workload, as in the
//! cluster), sampled for growth: each process's memory and open descriptors, Pulsar's backlog
//! per topic, and the window latency of every minute.

mod sample;
mod trend;

use super::bench_processes::{ProcessesRun, Watch, run_processes};
use anyhow::{Context, Result, bail};
use clap::Args;
use sample::{Sample, Sampler};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use trend::{Tolerance, Trend};
use wattcast_core::topics::ExperimentNames;
use wattcast_crds::{Architecture, GoDuration, PipelineExperiment};
use wattcast_io::services::{Services, find_test_env_file};
use wattcast_io::store::Store;
use wattcast_io::store::summary::MinuteLatency;
use wattcast_pipeline::local::{LocalSummary, run_local};

#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Simulated devices.
    #[arg(long, default_value_t = 5000)]
    devices: u32,
    /// Data replayed; the run lasts this divided by the speed-up.
    #[arg(long, default_value = "60m")]
    duration: GoDuration,
    /// Streaming (the windower windows every reading) or Batching (the sensors send minute
    /// batches: at a speed-up, hours of windows reach the coordinator and the store in minutes).
    #[arg(long, value_enum, default_value = "streaming")]
    architecture: SoakArchitecture,
    /// Replay speed-up (1 = real time).
    #[arg(long, default_value_t = 1.0)]
    speedup: f64,
    /// One process per workload (as the cluster's pods), or every workload a task of this
    /// process (as `wattcast local` runs them).
    #[arg(long, value_enum, default_value = "processes")]
    layout: SoakLayout,
    /// Time between samples of memory, descriptors and backlog.
    #[arg(long, default_value = "30s")]
    sample_every: GoDuration,
    /// Samples taken before this (run time) are not fitted (caches, pools and JIT fill up first).
    #[arg(long, default_value = "10m")]
    warm_up: GoDuration,
    /// A service process to sample too, as NAME=PIDFILE (its pid on the file's first line);
    /// its descendants count with it. Repeat for each service.
    #[arg(long = "watch", value_parser = parse_watch)]
    watch: Vec<(String, PathBuf)>,
    /// Write the whole result as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the summary tables as Markdown here (also printed).
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// How a soak runs the workloads.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SoakLayout {
    /// `wattcast sensor`, `bridge`, `windower` and `coordinator` processes, as
    /// `bench-pipeline --processes` runs them.
    Processes,
    /// Every workload a task of the soak's own process, as `wattcast local` runs them; sampled
    /// as one process, `wattcast`.
    InProcess,
}

/// The architectures a soak can run.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SoakArchitecture {
    Streaming,
    Batching,
}

fn parse_watch(text: &str) -> Result<(String, PathBuf), String> {
    let (name, file) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected NAME=PIDFILE"))?;
    if name.is_empty() || file.is_empty() {
        return Err(format!("`{text}`: expected NAME=PIDFILE"));
    }
    Ok((name.to_owned(), PathBuf::from(file)))
}

/// Memory may rise by 5 % of its mean or 16 MiB over the fitted span and count as flat.
const MEMORY: Tolerance = Tolerance {
    of_mean: 0.05,
    floor: 16.0,
};
/// Descriptors: 5 % or 8.
const DESCRIPTORS: Tolerance = Tolerance {
    of_mean: 0.05,
    floor: 8.0,
};
/// The window latency every minute must keep at p99, ms.
const P99_TARGET_MS: f64 = 2_000.0;

/// One process's trends after warm-up.
#[derive(Debug, Serialize)]
struct ProcessTrends {
    /// PSS less shared-memory segments, MiB.
    memory_mib: Option<Trend>,
    /// The largest PSS of shared-memory segments sampled (fixed-size, so bounded), MiB.
    shmem_max_mib: f64,
    /// Open file descriptors.
    open_fds: Option<Trend>,
}

/// What a run sent and stored, whichever layout ran it.
#[derive(Debug, Clone, Copy, Serialize)]
struct RunAccount {
    readings_sent: i64,
    readings_stored: i64,
    late: i64,
    coverage: Option<f64>,
}

impl RunAccount {
    fn of_processes(run: &ProcessesRun) -> Self {
        Self {
            readings_sent: run.readings_sent,
            readings_stored: run.summary.readings_stored,
            late: run.summary.late,
            coverage: run.summary.coverage,
        }
    }

    fn of_local(summary: &LocalSummary) -> Self {
        Self {
            readings_sent: i64::try_from(summary.readings_sent).unwrap_or(i64::MAX),
            readings_stored: summary.readings_stored,
            late: summary.late,
            coverage: summary.coverage,
        }
    }
}

/// Runs the experiment as `wattcast local` does, sampling this process (every workload is one
/// of its tasks) and the watched services while it runs.
async fn run_in_process(
    experiment: &PipelineExperiment,
    services: &Services,
    sampler: &mut Sampler,
) -> Result<LocalSummary> {
    let run = run_local(experiment, super::bench::local_options(services));
    tokio::pin!(run);
    let started = std::time::Instant::now();
    let this = [("wattcast", std::process::id())];
    loop {
        tokio::select! {
            summary = &mut run => return Ok(summary?),
            () = tokio::time::sleep(std::time::Duration::from_millis(250)) => {
                sampler.tick(started.elapsed(), &this).await?;
            }
        }
    }
}

/// One target and whether the soak met it.
#[derive(Debug, Serialize)]
struct Check {
    target: String,
    met: bool,
    measured: String,
}

/// Everything a soak measured.
#[derive(Debug, Serialize)]
struct SoakResult {
    devices: u32,
    /// `Streaming` or `Batching`.
    architecture: String,
    speedup: f64,
    /// Data replayed, seconds (the run lasted this divided by `speedup`).
    duration_s: u64,
    sample_every_s: u64,
    warm_up_s: u64,
    /// `Processes` or `InProcess`.
    layout: String,
    /// What the run sent and stored.
    account: RunAccount,
    /// The run as `bench-pipeline --processes` or `wattcast local` reports it.
    run: serde_json::Value,
    /// The window latency of each minute of the run.
    minutes: Vec<MinuteLatency>,
    /// What was sampled, in order.
    samples: Vec<Sample>,
    /// Per process (workloads and watched services), fitted after warm-up.
    processes: BTreeMap<String, ProcessTrends>,
    /// Per Pulsar topic, fitted after warm-up.
    backlog: BTreeMap<String, Trend>,
    checks: Vec<Check>,
}

/// The soak's experiment: in-order data with a monotonous watermark, as `bench-pipeline`'s, in
/// the architecture and at the speed-up asked; no retrain falls due within the run (5,000
/// trainings every ten minutes is beyond any one machine), so the data path is what is measured.
fn experiment(args: &SoakArgs) -> Result<PipelineExperiment> {
    let seconds = args.duration.get().as_secs();
    if !(args.speedup.is_finite() && args.speedup >= 1.0) {
        bail!("--speedup {}: expected a number of at least 1", args.speedup);
    }
    let mut experiment = super::bench::experiment("soak", args.devices, &format!("{seconds}s"))?;
    experiment.spec.architecture = match args.architecture {
        SoakArchitecture::Streaming => Architecture::Streaming,
        SoakArchitecture::Batching => Architecture::Batching,
    };
    experiment.spec.replay.speedup = args.speedup;
    experiment.spec.forecasting.retrain_every = format!("{}s", 2 * seconds.max(60))
        .parse()
        .context("the soak's retrain interval")?;
    Ok(experiment)
}

pub fn run(args: SoakArgs) -> Result<()> {
    let env_file = std::env::current_dir()
        .ok()
        .and_then(|dir| find_test_env_file(&dir));
    let services = Services::load(env_file.as_deref())?;
    let mut watched = Vec::new();
    for (name, file) in &args.watch {
        watched.push((name.clone(), read_pid(file)?));
    }
    let experiment = experiment(&args)?;
    let names = ExperimentNames::new(&format!("soak-{}", args.devices))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(async {
        let mut sampler = Sampler::new(&services, names.clone(), args.sample_every.get(), watched)?;
        let (account, run) = match args.layout {
            SoakLayout::Processes => {
                let run = run_processes(&experiment, &services, &mut sampler).await?;
                (RunAccount::of_processes(&run), serde_json::to_value(&run)?)
            }
            SoakLayout::InProcess => {
                let summary = run_in_process(&experiment, &services, &mut sampler).await?;
                (RunAccount::of_local(&summary), serde_json::to_value(&summary)?)
            }
        };
        let store = Store::connect(&services.postgres, &names.postgres_schema(), 1).await?;
        let minutes = store.window_latency_by_minute().await?;
        anyhow::Ok(judge(&args, account, run, minutes, sampler.into_samples()))
    })?;
    let markdown = markdown(&result);
    println!("{markdown}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&result)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let missed: Vec<&str> = result
        .checks
        .iter()
        .filter(|check| !check.met)
        .map(|check| check.target.as_str())
        .collect();
    if !missed.is_empty() {
        bail!(
            "the soak missed {} target(s): {}",
            missed.len(),
            missed.join("; ")
        );
    }
    Ok(())
}

fn read_pid(file: &std::path::Path) -> Result<u32> {
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "reading the pid file {} (start the test env: make test-env)",
            file.display()
        )
    })?;
    text.lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .with_context(|| format!("{}: the first line is not a pid", file.display()))
}

/// Fits the samples after warm-up and checks every target.
fn judge(
    args: &SoakArgs,
    account: RunAccount,
    run: serde_json::Value,
    minutes: Vec<MinuteLatency>,
    samples: Vec<Sample>,
) -> SoakResult {
    let warm_up_s = args.warm_up.get().as_secs_f64();
    let fitted: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= warm_up_s).collect();
    let mut processes = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> =
        samples.iter().flat_map(|s| s.processes.keys()).collect();
    for name in names {
        let points = |value: fn(&wattcast::footprint::Footprint) -> f64| -> Vec<(f64, f64)> {
            fitted
                .iter()
                .filter_map(|s| Some((s.t_s, value(s.processes.get(name)?))))
                .collect()
        };
        processes.insert(
            name.clone(),
            ProcessTrends {
                memory_mib: trend::fit(&points(wattcast::footprint::Footprint::unsegmented_mib), MEMORY),
                shmem_max_mib: samples
                    .iter()
                    .filter_map(|s| Some(s.processes.get(name)?.shmem_mib()))
                    .fold(0.0, f64::max),
                open_fds: trend::fit(&points(|f| f.open_fds as f64), DESCRIPTORS),
            },
        );
    }
    let backlog_tolerance = Tolerance {
        of_mean: 0.05,
        floor: f64::from(args.devices),
    };
    let mut backlog = BTreeMap::new();
    let topics: std::collections::BTreeSet<&str> =
        samples.iter().flat_map(|s| s.backlog.keys().copied()).collect();
    for topic in topics {
        let points: Vec<(f64, f64)> = fitted
            .iter()
            .filter_map(|s| Some((s.t_s, *s.backlog.get(topic)? as f64)))
            .collect();
        if let Some(trend) = trend::fit(&points, backlog_tolerance) {
            backlog.insert(topic.to_owned(), trend);
        }
    }
    let checks = checks(&account, &minutes, &processes, &backlog);
    SoakResult {
        devices: args.devices,
        architecture: format!("{:?}", args.architecture),
        speedup: args.speedup,
        duration_s: args.duration.get().as_secs(),
        sample_every_s: args.sample_every.get().as_secs(),
        warm_up_s: args.warm_up.get().as_secs(),
        layout: format!("{:?}", args.layout),
        account,
        run,
        minutes,
        samples,
        processes,
        backlog,
        checks,
    }
}

fn checks(
    run: &RunAccount,
    minutes: &[MinuteLatency],
    processes: &BTreeMap<String, ProcessTrends>,
    backlog: &BTreeMap<String, Trend>,
) -> Vec<Check> {
    let coverage = run.coverage.unwrap_or(0.0);
    let mut checks = vec![Check {
        target: "coverage 1.0".to_owned(),
        met: coverage >= 1.0 - 1e-12 && run.readings_stored == run.readings_sent,
        measured: format!(
            "{coverage:.6} ({} of {} readings sent stored in windows, {} late)",
            run.readings_stored, run.readings_sent, run.late
        ),
    }];
    let over: Vec<&MinuteLatency> = minutes
        .iter()
        .filter(|m| m.latency_ms.p99 > P99_TARGET_MS)
        .collect();
    let worst = minutes.iter().map(|m| m.latency_ms.p99).fold(0.0, f64::max);
    checks.push(Check {
        target: "window p99 ≤ 2 s in every minute".to_owned(),
        met: !minutes.is_empty() && over.is_empty(),
        measured: format!(
            "worst minute p99 {:.2} s; {} of {} minutes over 2 s",
            worst / 1000.0,
            over.len(),
            minutes.len()
        ),
    });
    for (name, trends) in processes {
        for (quantity, trend) in [
            ("memory", trends.memory_mib),
            ("open descriptors", trends.open_fds),
        ] {
            checks.push(match trend {
                Some(trend) => Check {
                    target: format!("{name}: {quantity} flat after warm-up"),
                    met: trend.flat,
                    measured: format!(
                        "{:+.2}/h on a mean of {:.1} (rise {:+.1}, allowed {:.1})",
                        trend.slope_per_hour, trend.mean, trend.rise, trend.allowed_rise
                    ),
                },
                None => Check {
                    target: format!("{name}: {quantity} flat after warm-up"),
                    met: false,
                    measured: "fewer than three samples after warm-up".to_owned(),
                },
            });
        }
    }
    for (topic, trend) in backlog {
        checks.push(Check {
            target: format!("Pulsar backlog of `{topic}` flat"),
            met: trend.flat,
            measured: format!(
                "{:+.0}/h on a mean of {:.0} (rise {:+.0}, allowed {:.0})",
                trend.slope_per_hour, trend.mean, trend.rise, trend.allowed_rise
            ),
        });
    }
    checks
}

/// The tables `docs/performance.md` records.
fn markdown(result: &SoakResult) -> String {
    let mut text = format!(
        "{} devices, {}, {}, {} s of data at {}, sampled every {} s, fitted after {} s of warm-up.\n\n\
         | target | met | measured |\n| --- | --- | --- |\n",
        result.devices,
        result.architecture,
        match result.layout.as_str() {
            "InProcess" => "every workload in one process",
            _ => "one process per workload",
        },
        result.duration_s,
        if result.speedup == 1.0 {
            "real time".to_owned()
        } else {
            format!("{}× real time", result.speedup)
        },
        result.sample_every_s,
        result.warm_up_s
    );
    for check in &result.checks {
        text += &format!(
            "| {} | {} | {} |\n",
            check.target,
            if check.met { "yes" } else { "**no**" },
            check.measured
        );
    }
    text += "\n| process | memory (PSS less shared segments) mean | slope | shared segments, largest | open descriptors mean | slope |\n\
             | --- | --- | --- | --- | --- | --- |\n";
    for (name, trends) in &result.processes {
        let show = |trend: Option<Trend>, unit: &str| {
            trend.map_or(("-".to_owned(), "-".to_owned()), |t| {
                (
                    format!("{:.1}{unit}", t.mean),
                    format!("{:+.2}{unit}/h", t.slope_per_hour),
                )
            })
        };
        let (memory, memory_slope) = show(trends.memory_mib, " MiB");
        let (fds, fds_slope) = show(trends.open_fds, "");
        let shmem = trends.shmem_max_mib;
        text += &format!("| {name} | {memory} | {memory_slope} | {shmem:.1} MiB | {fds} | {fds_slope} |\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_experiment_replays_the_duration_and_retrains_after_it() {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            soak: SoakArgs,
        }
        let args = |extra: &[&str]| {
            let argv = ["soak", "--devices", "5000", "--duration", "60m"]
                .iter()
                .chain(extra);
            <Command as clap::Parser>::try_parse_from(argv)
                .expect("valid arguments")
                .soak
        };
        let streaming = experiment(&args(&[])).expect("valid");
        assert_eq!(streaming.spec.devices.count, 5000);
        assert_eq!(streaming.spec.architecture, Architecture::Streaming);
        assert_eq!(streaming.spec.replay.speedup, 1.0);
        assert_eq!(streaming.spec.dataset.duration.get().as_secs(), 3600);
        assert_eq!(streaming.spec.forecasting.retrain_every.get().as_secs(), 7200);
        let batching = experiment(&args(&["--architecture", "batching", "--speedup", "20"])).expect("valid");
        assert_eq!(batching.spec.architecture, Architecture::Batching);
        assert_eq!(batching.spec.replay.speedup, 20.0);
        let error = experiment(&args(&["--speedup", "0.5"])).expect_err("a slow-down is refused");
        assert!(error.to_string().contains("--speedup 0.5"), "{error}");
    }

    #[test]
    fn a_watch_is_a_name_and_a_pid_file() {
        assert_eq!(
            parse_watch("postgres=/run/pg/postmaster.pid"),
            Ok(("postgres".to_owned(), PathBuf::from("/run/pg/postmaster.pid")))
        );
        assert!(parse_watch("postgres").is_err());
        assert!(parse_watch("=/x").is_err());
    }
}
