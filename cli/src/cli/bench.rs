//! `wattcast bench-pipeline`: `wattcast local` at real time with more and more devices, to find
//! how many one machine carries with coverage ≥ 99.9 % and p99 latency ≤ 2 s. The latency is the
//! window latency (last reading of a window published → window stored): a reading itself waits
//! for its window to close, up to a minute, whatever the pipeline does.

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use wattcast_core::topics::ExperimentNames;
use wattcast_crds::PipelineExperiment;
use wattcast_io::services::{Services, find_test_env_file};
use wattcast_io::store::Store;
use wattcast_io::store::summary::{Percentiles, WindowLatencySplit};
use wattcast_pipeline::local::{LocalOptions, LocalSummary, run_local};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Device counts to try, in order (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,500,1000,2000,3000,5000")]
    devices: Vec<u32>,
    /// Data per run (replayed at real time, so also the run's length).
    #[arg(long, default_value = "3m")]
    duration: String,
    /// Write the results as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Stop at the first device count that misses the targets.
    #[arg(long)]
    stop_at_first_miss: bool,
    /// Run the sensor, bridge, windower and coordinator as separate processes (as in the
    /// cluster) and report each one's CPU and peak memory, instead of `wattcast local`.
    #[arg(long)]
    processes: bool,
}

/// One run's result with a process per workload.
#[derive(Debug, Serialize)]
struct ProcessesRow {
    devices: u32,
    meets_targets: bool,
    run: super::bench_processes::ProcessesRun,
}

/// One run's result.
#[derive(Debug, Serialize)]
struct BenchRow {
    devices: u32,
    meets_targets: bool,
    summary: LocalSummary,
    /// The window latency split into ingest (publish → emitted) and store (emitted → stored).
    window_latency_split: WindowLatencySplit,
    /// CPU seconds this process (all workloads) used, per second of run.
    cpu_cores: f64,
    /// Peak resident memory of this process, MiB.
    peak_rss_mib: f64,
}

/// The experiment of one run: in-order data (so coverage can reach 100 %), real time, a
/// monotonous watermark (in-order data needs no bound, and a bound would add its own wait).
/// Named `NAME-DEVICES` (`bench-5000`); the soak runs the same experiment.
pub(super) fn experiment(name: &str, devices: u32, duration: &str) -> Result<PipelineExperiment> {
    let yaml = format!(
        "apiVersion: wattcast.io/v1alpha1\nkind: PipelineExperiment\nmetadata: {{ name: {name}-{devices} }}\n\
         spec:\n  architecture: Streaming\n  devices: {{ count: {devices} }}\n\
         \x20 dataset: {{ scenario: InOrder, seed: 1, duration: {duration} }}\n  replay: {{ speedup: 1 }}\n\
         \x20 windowing: {{ size: 1m, watermark: {{ strategy: Monotonous }} }}\n"
    );
    serde_yaml::from_str(&yaml).context("building the benchmark experiment")
}

/// How the benchmarks run `wattcast local`: five minutes to drain, and no initial models
/// (training thousands of them is not what they measure).
pub(super) fn local_options(services: &Services) -> LocalOptions {
    LocalOptions {
        drain_timeout: Duration::from_secs(300),
        initial_models: false,
        ..LocalOptions::new(services.clone())
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    let env_file = std::env::current_dir()
        .ok()
        .and_then(|dir| find_test_env_file(&dir));
    let services = Services::load(env_file.as_deref())?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    if args.processes {
        return run_with_processes(&args, &services, &runtime);
    }
    let mut rows = Vec::new();
    for devices in args.devices {
        let experiment = experiment("bench", devices, &args.duration)?;
        let summary = runtime.block_on(run_local(&experiment, local_options(&services)))?;
        // run_local measures its own run: CPU since it started, peak memory since then.
        let cpu_cores = summary.usage.map_or(0.0, |u| u.cpu_seconds) / summary.duration_s.max(1e-9);
        let peak_rss_mib = summary.usage.map_or(0.0, |u| u.peak_rss_mib());
        let meets_targets = meets_targets(summary.coverage, summary.window_latency_ms);
        let window_latency_split = runtime
            .block_on(async {
                let schema = ExperimentNames::new(&format!("bench-{devices}"))?.postgres_schema();
                let store = Store::connect(&services.postgres, &schema, 1).await?;
                anyhow::Ok(store.window_latency_split().await?)
            })
            .context("reading the window latency split from the run's store")?;
        let row = BenchRow {
            devices,
            meets_targets,
            summary,
            window_latency_split,
            cpu_cores,
            peak_rss_mib,
        };
        eprintln!(
            "devices {devices:>6}: coverage {:.4}, window latency p50/p95/p99 {} ms (ingest {} ms, store {} ms; \
             per reading {} ms), {:.2} cores, peak RSS {:.0} MiB -> {}",
            row.summary.coverage.unwrap_or(0.0),
            show(row.summary.window_latency_ms),
            show(row.window_latency_split.ingest_ms),
            show(row.window_latency_split.store_ms),
            show(row.summary.latency_ms),
            row.cpu_cores,
            row.peak_rss_mib,
            if meets_targets {
                "meets the targets"
            } else {
                "misses the targets"
            }
        );
        let stop = args.stop_at_first_miss && !meets_targets;
        rows.push(row);
        if stop {
            break;
        }
    }
    write_rows(&rows, args.out.as_deref())
}

/// Prints the rows as JSON, and writes them to `out` when given.
fn write_rows<T: Serialize>(rows: &[T], out: Option<&std::path::Path>) -> Result<()> {
    let json = serde_json::to_string_pretty(rows)?;
    println!("{json}");
    if let Some(path) = out {
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Whether a run meets the targets: coverage ≥ 99.9 % and p99 window latency ≤ 2 s.
fn meets_targets(coverage: Option<f64>, window_latency: Option<Percentiles>) -> bool {
    coverage.is_some_and(|coverage| coverage >= 0.999)
        && window_latency.is_some_and(|latency| latency.p99 <= 2000.0)
}

fn show(latency: Option<Percentiles>) -> String {
    latency.map_or("-".to_owned(), |l| {
        format!("{:.0}/{:.0}/{:.0}", l.p50, l.p95, l.p99)
    })
}

/// `--processes`: each device count with one process per workload.
fn run_with_processes(
    args: &BenchArgs,
    services: &Services,
    runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    let mut rows = Vec::new();
    for &devices in &args.devices {
        let experiment = experiment("bench", devices, &args.duration)?;
        let run = runtime.block_on(super::bench_processes::run_processes(
            &experiment,
            services,
            &mut (),
        ))?;
        let meets_targets = meets_targets(run.summary.coverage, run.summary.window_latency_ms);
        let components: Vec<String> = run
            .components
            .iter()
            .map(|c| {
                format!(
                    "{} {:.2} cores {:.0} MiB",
                    c.component, c.cpu_cores, c.peak_rss_mib
                )
            })
            .collect();
        eprintln!(
            "devices {devices:>6} (processes): coverage {:.4}, window latency p50/p95/p99 {} ms (ingest {} ms, store {} ms); {} -> {}",
            run.summary.coverage.unwrap_or(0.0),
            show(run.summary.window_latency_ms),
            show(run.window_latency_split.ingest_ms),
            show(run.window_latency_split.store_ms),
            components.join(", "),
            if meets_targets {
                "meets the targets"
            } else {
                "misses the targets"
            }
        );
        rows.push(ProcessesRow {
            devices,
            meets_targets,
            run,
        });
        if args.stop_at_first_miss && !meets_targets {
            break;
        }
    }
    write_rows(&rows, args.out.as_deref())
}
