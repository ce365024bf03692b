//! `wattcast model train|forecast`: train the LSTM on a CSV or stored readings, export and
//! upload it, and forecast from a CSV with any model that meets the contract.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use wattcast_core::DeviceId;
use wattcast_core::artifacts::object_prefix;
use wattcast_core::dataset::{BadRowPolicy, read_dataset};
use wattcast_core::topics::ExperimentNames;
use wattcast_io::object_store::{DEFAULT_BUCKET, ObjectStore};
use wattcast_io::services::{PostgresEndpoint, ServiceEnv, find_test_env_file};
use wattcast_io::store::Store;
use wattcast_model::train::rmse_mae;
use wattcast_model::{Forecaster, ModelArtifacts, ModelVersion, Recipe, train};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Train the original recipe (LSTM → Dropout → Dense) and write model.onnx, scaler.json and
    /// metrics.json.
    Train(TrainArgs),
    /// Forecast from a CSV's readings with a model directory (model.onnx + scaler.json).
    Forecast(ForecastArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Train on the first readings of this CSV (either layout).
    #[arg(long, conflicts_with = "postgres", required_unless_present = "postgres")]
    csv: Option<PathBuf>,
    /// Train on the latest stored readings of `--device` in `--experiment`'s schema.
    #[arg(long, requires_all = ["experiment", "device"])]
    postgres: Option<String>,
    /// The experiment (its schema, and the object-store prefix with `--upload`).
    #[arg(long)]
    experiment: Option<String>,
    /// The device (needed when the CSV holds several, and for `--postgres` and `--upload`).
    #[arg(long)]
    device: Option<u32>,
    /// Directory to write the files to.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Upload to the object store (WATTCAST_S3_* or the test env) as the device's initial model.
    #[arg(long, requires_all = ["experiment", "device"])]
    upload: bool,
    /// Bucket for `--upload`.
    #[arg(long, env = "WATTCAST_S3_BUCKET", default_value = DEFAULT_BUCKET)]
    bucket: String,
    /// Readings to train on.
    #[arg(long, default_value_t = Recipe::default().training_readings)]
    readings: usize,
    /// Training epochs.
    #[arg(long, default_value_t = Recipe::default().epochs)]
    epochs: usize,
    /// LSTM units.
    #[arg(long, default_value_t = Recipe::default().hidden)]
    hidden: usize,
    /// Look-back (readings per input sequence).
    #[arg(long, default_value_t = Recipe::default().look_back)]
    look_back: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = Recipe::default().batch_size)]
    batch_size: usize,
    /// Seed for initialisation, shuffling and dropout.
    #[arg(long, default_value_t = Recipe::default().seed)]
    seed: u64,
}

#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// Directory holding model.onnx and scaler.json.
    #[arg(long)]
    model: PathBuf,
    /// Readings to forecast from (either layout).
    #[arg(long)]
    csv: PathBuf,
    /// The device (needed when the CSV holds several).
    #[arg(long)]
    device: Option<u32>,
    /// Forecast after this many readings (default: the look-back, i.e. from the start).
    #[arg(long)]
    after: Option<usize>,
    /// The model's look-back.
    #[arg(long, default_value_t = 60)]
    look_back: usize,
    /// Readings to forecast.
    #[arg(long, default_value_t = 60)]
    horizon: usize,
}

pub fn run(command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Train(args) => run_train(args),
        ModelCommand::Forecast(args) => run_forecast(args),
    }
}

/// One device's readings of a CSV in event-time order, as (event time, watts).
fn device_series(csv: &Path, device: Option<u32>) -> Result<(DeviceId, Vec<(i64, f64)>)> {
    let dataset = read_dataset(csv, BadRowPolicy::FailFast)?;
    let mut devices: Vec<DeviceId> = dataset.readings.iter().map(|r| r.device).collect();
    devices.sort();
    devices.dedup();
    let device = match (device, devices.as_slice()) {
        (Some(device), _) => DeviceId(device),
        (None, [only]) => *only,
        (None, []) => bail!("{}: no readings", csv.display()),
        (None, several) => bail!(
            "{}: holds {} devices; choose one with --device",
            csv.display(),
            several.len()
        ),
    };
    let mut series: Vec<(i64, f64)> = dataset
        .readings
        .iter()
        .filter(|r| r.device == device)
        .map(|r| (r.event_time, r.power_w))
        .collect();
    if series.is_empty() {
        bail!("{}: no readings of device {device}", csv.display());
    }
    series.sort_by_key(|(time, _)| *time);
    Ok((device, series))
}

fn run_train(args: TrainArgs) -> Result<()> {
    let recipe = Recipe {
        look_back: args.look_back,
        hidden: args.hidden,
        epochs: args.epochs,
        batch_size: args.batch_size,
        training_readings: args.readings,
        seed: args.seed,
        ..Recipe::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let env_file = std::env::current_dir()
        .ok()
        .and_then(|dir| find_test_env_file(&dir));
    let (source, series) = match (&args.csv, &args.postgres) {
        (Some(csv), _) => {
            let (_, mut series) = device_series(csv, args.device)?;
            series.truncate(recipe.training_readings);
            (csv.display().to_string(), series)
        }
        (None, Some(url)) => {
            let (experiment, device) = required(&args)?;
            let schema = ExperimentNames::new(&experiment)?.postgres_schema();
            let series = runtime.block_on(async {
                let store = Store::connect(&PostgresEndpoint::new(url.clone()), &schema, 1).await?;
                store.latest_values(device, recipe.training_readings as i64).await
            })?;
            (format!("schema {schema}, device {device}"), series)
        }
        (None, None) => bail!("give --csv FILE or --postgres URL"),
    };
    let values: Vec<f64> = series.iter().map(|(_, v)| *v).collect();
    let model = train(&values, &recipe).with_context(|| format!("training on {source}"))?;
    let artifacts = model.artifacts();
    println!("{}", serde_json::to_string(&model.metrics)?);
    if let Some(out) = &args.out {
        artifacts.write_dir(out)?;
        eprintln!("wrote {}", out.display());
    }
    if args.upload {
        let (experiment, device) = required(&args)?;
        let endpoint = ServiceEnv::load(env_file.as_deref())?.s3()?;
        let store = ObjectStore::new(&endpoint, &args.bucket);
        let prefix = object_prefix(&experiment, device, ModelVersion::Initial);
        runtime.block_on(async {
            store.ensure_bucket().await?;
            store.upload_model(&prefix, &artifacts).await
        })?;
        eprintln!("uploaded s3://{}/{prefix}", args.bucket);
    }
    Ok(())
}

fn required(args: &TrainArgs) -> Result<(String, DeviceId)> {
    match (&args.experiment, args.device) {
        (Some(experiment), Some(device)) => Ok((experiment.clone(), DeviceId(device))),
        _ => bail!("--experiment and --device are needed here"),
    }
}

fn run_forecast(args: ForecastArgs) -> Result<()> {
    let artifacts = ModelArtifacts::read_dir(&args.model)?;
    let forecaster = Forecaster::load(&artifacts.onnx, artifacts.scaler, args.look_back)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let (device, series) = device_series(&args.csv, args.device)?;
    let after = args.after.unwrap_or(args.look_back);
    if after > series.len() {
        bail!(
            "--after {after}: {} holds only {} readings of device {device}",
            args.csv.display(),
            series.len()
        );
    }
    let history: Vec<f64> = series[..after].iter().map(|(_, v)| *v).collect();
    let last_time = series[after - 1].0;
    let forecasts = forecaster.forecast(&history, args.horizon)?;
    let actual: std::collections::HashMap<i64, f64> = series.iter().copied().collect();
    let mut errors = Vec::new();
    for (step, forecast) in forecasts.iter().enumerate() {
        let event_time = last_time + 1 + step as i64;
        let actual = actual.get(&event_time).copied();
        if let Some(actual) = actual {
            errors.push(forecast - actual);
        }
        let line = serde_json::json!({"device": device, "eventTime": event_time, "forecastW": forecast, "actualW": actual});
        println!("{line}");
    }
    let (rmse, mae) = rmse_mae(errors.iter().copied());
    let summary = serde_json::json!({"summary": {"forecasts": forecasts.len(), "scored": errors.len(), "rmse": rmse, "mae": mae}});
    println!("{summary}");
    Ok(())
}
