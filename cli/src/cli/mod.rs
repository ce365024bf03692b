//! Command-line parsing, logging set-up and error reporting for the `wattcast` binary.

mod bench;
mod bench_processes;
mod dataset;
mod faults;
mod local;
mod model;
mod probe;
mod processes;
mod report;
mod soak;
mod workloads;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// wattcast: power-consumption forecasting pipelines as reproducible experiments.
#[derive(Debug, Parser)]
#[command(name = "wattcast", version, about, long_about = None)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true, env = "WATTCAST_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate, inspect and window datasets.
    #[command(subcommand)]
    Dataset(dataset::DatasetCommand),
    /// Train forecasting models and forecast with them.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Run an experiment's whole pipeline in this process against running services.
    Local(local::LocalArgs),
    /// Replay devices' readings over MQTT, then exit 0 (one pod of an indexed Job per device).
    Sensor(workloads::SensorArgs),
    /// Forward sensor messages from MQTT to Pulsar, at-least-once.
    Bridge(workloads::Common),
    /// Group readings into event-time windows (Streaming).
    Windower(workloads::Common),
    /// Impute, store and forecast windows.
    Coordinator(workloads::Common),
    /// Create the experiment's topics, schema, bucket and initial models, then exit 0.
    Setup(workloads::SetupArgs),
    /// Retrain devices' models on request and announce them.
    Trainer(workloads::Common),
    /// Find how many devices the pipeline carries at real time on this machine.
    BenchPipeline(bench::BenchArgs),
    /// The pipeline at real time for an hour, one process per workload, sampled for growth:
    /// memory and descriptors of every process, Pulsar's backlog, each minute's latency.
    Soak(soak::SoakArgs),
    /// Write a report (Markdown, HTML, SVG plots) of experiments that have run.
    Report(report::ReportArgs),
    /// Inject faults into running experiments and count what was lost or duplicated.
    #[command(subcommand)]
    Faults(faults::FaultsCommand),
    /// Check which addresses this process can open TCP connections to (NetworkPolicies).
    Probe(probe::ProbeArgs),
}

/// Parses the command line, runs the command and turns errors into a message and exit code 1.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    wattcast_io::observe::init_logging(matches!(cli.log_format, LogFormat::Json));
    wattcast_io::tls::ensure_default_provider();
    let result = match cli.command {
        Command::Dataset(command) => dataset::run(command),
        Command::Model(command) => model::run(command),
        Command::Local(args) => local::run(args),
        Command::Sensor(args) => workloads::run_sensor_command(args),
        Command::Bridge(common) => workloads::run_bridge_command(common),
        Command::Windower(common) => workloads::run_windower_command(common),
        Command::Coordinator(common) => workloads::run_coordinator_command(common),
        Command::Trainer(common) => workloads::run_trainer_command(common),
        Command::Setup(args) => workloads::run_setup_command(args),
        Command::BenchPipeline(args) => bench::run(args),
        Command::Soak(args) => soak::run(args),
        Command::Report(args) => report::run(args),
        Command::Faults(command) => faults::run(command),
        Command::Probe(args) => probe::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = format!("{error:#}");
            eprintln!("error: {message}");
            write_termination_message(&message);
            if refuses_input(&error) {
                ExitCode::from(wattcast_core::experiment::EXIT_INVALID_INPUT)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// In a pod, the reason it failed goes where Kubernetes shows it (the container's terminated
/// message, which the operator puts into the experiment's conditions); elsewhere nothing.
fn write_termination_message(message: &str) {
    let path = std::env::var_os("WATTCAST_TERMINATION_MESSAGE_PATH")
        .map_or_else(|| std::path::PathBuf::from("/dev/termination-log"), Into::into);
    if path.exists() {
        // Kubernetes keeps at most 4096 bytes; keep the start, where the reason is.
        let mut end = message.len().min(4000);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let _ = std::fs::write(&path, &message[..end]);
    }
}

/// Whether the failure is the experiment's input (retrying the pod cannot help).
fn refuses_input(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<wattcast_io::dataset_source::DataSourceError>()
            .is_some_and(wattcast_io::dataset_source::DataSourceError::is_permanent)
            || cause
                .downcast_ref::<wattcast_pipeline::model_source::ModelSourceError>()
                .is_some_and(wattcast_pipeline::model_source::ModelSourceError::is_permanent)
            || cause
                .downcast_ref::<wattcast_core::experiment::SpecError>()
                .is_some()
            || cause
                .downcast_ref::<wattcast_pipeline::setup::SetupError>()
                .is_some_and(wattcast_pipeline::setup::SetupError::is_permanent)
            || cause
                .downcast_ref::<wattcast_pipeline::local::LocalError>()
                .is_some_and(wattcast_pipeline::local::LocalError::is_permanent)
    })
}
