//! `wattcast local EXPERIMENT.yaml`: run an experiment's whole pipeline in this process.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use wattcast_core::experiment::read_experiments;
use wattcast_io::object_store::DEFAULT_BUCKET;
use wattcast_io::services::{Services, find_test_env_file};
use wattcast_pipeline::local::{LocalOptions, run_local};

#[derive(Debug, Args)]
pub struct LocalArgs {
    /// The PipelineExperiment YAML (the same file `kubectl apply` takes); with several
    /// documents, each experiment runs in turn.
    experiment: PathBuf,
    /// Also write the summary as JSON to this file (an array when the file holds several
    /// experiments).
    #[arg(long)]
    summary_out: Option<PathBuf>,
    /// Give up if the pipeline has not drained this long after the sensors finished.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    drain_timeout: Duration,
    /// A `.env` file with the services (default: the test env's `test-env/.env`, found from the
    /// current directory upwards). WATTCAST_* environment variables take precedence.
    #[arg(long)]
    env_file: Option<PathBuf>,
    /// The bucket models are stored in.
    #[arg(long, env = "WATTCAST_S3_BUCKET", default_value = DEFAULT_BUCKET)]
    bucket: String,
    /// Do not train initial models before the run (forecasts start with the first retrain).
    #[arg(long)]
    no_initial_models: bool,
    /// Replay this CSV (either layout of the original project) instead of the spec's dataset;
    /// its devices map onto the experiment's in id order.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// The directory with model.onnx and scaler.json of the spec's own model (in place of a
    /// `forecasting.model.source.configMap`, which exists only in the cluster).
    #[arg(long)]
    model_dir: Option<PathBuf>,
}

pub fn run(args: LocalArgs) -> Result<()> {
    let experiments = read_experiments(&args.experiment)?;
    let env_file = args.env_file.or_else(|| {
        std::env::current_dir()
            .ok()
            .and_then(|dir| find_test_env_file(&dir))
    });
    let services = Services::load(env_file.as_deref())?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let mut summaries = Vec::new();
    for experiment in &experiments {
        let summary = runtime.block_on(run_local(
            experiment,
            LocalOptions {
                services: services.clone(),
                drain_timeout: args.drain_timeout,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
                models_bucket: args.bucket.clone(),
                initial_models: !args.no_initial_models,
                hold_replay: None,
                forecast_stats: None,
                dataset: args.dataset.clone(),
                model_dir: args.model_dir.clone(),
            },
        ))?;
        println!("{}", serde_json::to_string_pretty(&summary)?);
        summaries.push(summary);
    }
    if let Some(path) = args.summary_out {
        let json = match summaries.as_slice() {
            [one] => serde_json::to_string_pretty(one)?,
            all => serde_json::to_string_pretty(all)?,
        };
        std::fs::write(&path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
