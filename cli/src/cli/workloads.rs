//! `wattcast sensor|bridge|windower|coordinator`: each workload as its own long-running process
//! (a pod), configured by the experiment file, flags and `WATTCAST_*` environment variables.

use anyhow::{Context, Result, bail};
use clap::Args;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wattcast_core::experiment::{self, read_experiment};
use wattcast_core::topics::ExperimentNames;
use wattcast_crds::PipelineExperiment;
use wattcast_io::dataset_source::DataSource;
use wattcast_io::object_store::{DEFAULT_BUCKET, ObjectStore};
use wattcast_io::observe::{Readiness, cancel_on_signals, serve};
use wattcast_io::reach::{Target, wait_until_reachable};
use wattcast_io::services::{PostgresEndpoint, PulsarEndpoint, S3Endpoint, ServiceEnv, find_test_env_file};
use wattcast_io::store::Store;
use wattcast_pipeline::model_registry::ModelRegistry;
use wattcast_pipeline::workload::bridge::{BridgeConfig, BridgeStats, run_bridge};
use wattcast_pipeline::workload::coordinator::{CoordinatorConfig, CoordinatorStats, run_coordinator};
use wattcast_pipeline::workload::forecasting::{ForecastSettings, ForecastStats, Forecasting};
use wattcast_pipeline::workload::sensor::{
    DeviceReplay, ReplayProgress, SensorConfig, SensorMode, SensorReport, run_sensor,
};
use wattcast_pipeline::workload::trainer::{TrainerConfig, TrainerStats, run_trainer};
use wattcast_pipeline::workload::windower::{WindowerConfig, WindowerStats, run_windower};

/// What every workload takes.
#[derive(Debug, Args)]
pub struct Common {
    /// The PipelineExperiment YAML (the operator mounts it from a ConfigMap).
    #[arg(long, env = "WATTCAST_EXPERIMENT_FILE")]
    experiment: PathBuf,
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long, env = "WATTCAST_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    metrics_addr: SocketAddr,
    /// The bucket holding the models (coordinator and trainer).
    #[arg(long, env = "WATTCAST_S3_BUCKET", default_value = DEFAULT_BUCKET)]
    bucket: String,
}

#[derive(Debug, Args)]
pub struct SensorArgs {
    #[command(flatten)]
    common: Common,
    /// Replay only this device (default: in an indexed Job, pod JOB_COMPLETION_INDEX's share of
    /// spec.devices.perSensorPod devices; else all).
    #[arg(long)]
    device: Option<u32>,
    /// Replay this CSV (either layout) instead of the spec's dataset (the operator passes the
    /// mount of a `dataset.source.configMap`); its devices map onto the experiment's in id order.
    #[arg(long, alias = "csv")]
    dataset: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    common: Common,
    /// The CSV the sensors replay, when not the spec's (the operator passes the mount of a
    /// `dataset.source.configMap`); checked against the spec before anything is created.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// The directory with model.onnx and scaler.json of the spec's own model, when not read
    /// from the object store (the operator passes the mount of a
    /// `forecasting.model.source.configMap`); checked against the contract first.
    #[arg(long)]
    model_dir: Option<PathBuf>,
}

struct Loaded {
    experiment: PipelineExperiment,
    names: ExperimentNames,
    services: ServiceEnv,
    registry: Registry,
    readiness: Arc<Readiness>,
    cancel: CancellationToken,
}

fn load(common: &Common) -> Result<Loaded> {
    let experiment = read_experiment(&common.experiment)?;
    let names = ExperimentNames::new(experiment::name(&experiment)?)?;
    let env_file = std::env::current_dir()
        .ok()
        .and_then(|dir| find_test_env_file(&dir));
    Ok(Loaded {
        experiment,
        names,
        services: ServiceEnv::load(env_file.as_deref())?,
        registry: {
            let mut registry = Registry::default();
            registry.register_collector(Box::new(wattcast_pipeline::process_usage::ProcessCollector));
            registry
        },
        readiness: Arc::default(),
        cancel: CancellationToken::new(),
    })
}

/// How long a workload waits at start for its services to accept connections (a new pod's
/// NetworkPolicies being programmed, a Service's endpoints not ready yet).
const SERVICES_PATIENCE: Duration = Duration::from_secs(120);

/// Blocks until every service this workload talks to accepts TCP connections.
fn await_services(targets: Vec<Target>) -> Result<()> {
    wait_until_reachable(&targets, SERVICES_PATIENCE).context("waiting for the services this workload needs")
}

/// Runs `work` with the metrics server and signal handling around it.
fn run_with_server<F>(common: &Common, loaded: Loaded, work: F) -> Result<()>
where
    F: std::future::Future<Output = Result<()>>,
{
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(async {
        cancel_on_signals(loaded.cancel.clone());
        let server = tokio::spawn(serve(
            common.metrics_addr,
            Arc::new(loaded.registry),
            loaded.readiness.clone(),
            loaded.cancel.clone(),
        ));
        let result = work.await;
        loaded.cancel.cancel();
        server
            .await
            .context("metrics server panicked")?
            .context("metrics server")?;
        result
    });
    // Blocking work still under way (set-up's trainings, after a signal) must not hold the exit:
    // dropping the runtime would wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

pub fn run_sensor_command(args: SensorArgs) -> Result<()> {
    let loaded = load(&args.common)?;
    let spec = &loaded.experiment.spec;
    // One device (`--device`), the pod's share of an indexed Job, or every device.
    let slice = match args.device {
        Some(device) => Some(device..=device),
        None => std::env::var("JOB_COMPLETION_INDEX")
            .ok()
            .and_then(|index| index.parse::<u32>().ok())
            .map(|index| spec.devices.sensor_slice(index)),
    };
    let source = DataSource::of(spec, args.dataset.as_deref())?;
    let s3 = loaded.services.s3().ok();
    // In the cluster the sensor records its progress and what it sent, so a replaced pod resumes
    // and the operator knows when everything has arrived; `wattcast local` counts in process and
    // gives the sensor no store.
    let postgres = loaded.services.postgres().ok();
    let mut targets = vec![Target::mqtt(&loaded.services.mqtt()?)];
    if let Some(postgres) = &postgres {
        targets.push(Target::postgres(postgres)?);
    }
    if let Some(s3) = &s3 {
        targets.push(Target::s3(s3)?);
    }
    await_services(targets)?;
    let mode = SensorMode::from(spec.architecture);
    // Each device's readings are compacted as they are made, so the sensor never holds all of
    // them at 40 bytes a reading.
    let share = slice.clone().unwrap_or(1..=spec.devices.count);
    let devices = tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(
            source.load_slice_as(spec, s3.as_ref(), share, |device, readings| {
                DeviceReplay::new(mode, device, readings)
            }),
        )?;
    let (Some(first), Some(last)) = (devices.first(), devices.last()) else {
        bail!("no readings to replay for devices {slice:?}");
    };
    let (first, last) = (first.device().0, last.device().0);
    let mut config = SensorConfig {
        mode,
        names: loaded.names.clone(),
        devices,
        speedup: spec.replay.speedup,
        // Device i of the share starts i × every after the pod's first (which waits below).
        ramp_up: spec.devices.ramp_up.as_ref().map(|ramp| ramp.every.get()),
        mqtt: loaded.services.mqtt()?,
        client_id: format!(
            "wattcast-sensor-{}-{first}-{}",
            loaded.names.experiment(),
            std::process::id()
        ),
        hold: None,
        progress: None,
    };
    // The pod's first device starts as it would among all (ramp-up); the others of its share
    // follow it in process.
    let delay = config
        .ramp_up
        .unwrap_or_default()
        .mul_f64(f64::from(first - 1))
        .div_f64(config.speedup);
    let cancel = loaded.cancel.clone();
    let report_store = postgres.map(|postgres| (postgres, loaded.names.postgres_schema()));
    loaded.readiness.set(true);
    run_with_server(&args.common, loaded, async move {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
        // In the cluster the replay's progress is recorded, so a replaced pod resumes it.
        if let Some((postgres, schema)) = &report_store {
            let store = Store::connect(postgres, schema, 1)
                .await
                .context("connecting to PostgreSQL for the replay's progress")?;
            config.progress = Some(ReplayProgress {
                store,
                sensor: format!("{first}-{last}"),
            });
        }
        let report = run_sensor(config, cancel).await?;
        tracing::info!(
            readings = report.readings_sent.values().sum::<u64>(),
            messages = report.messages,
            "sensor done"
        );
        if let Some((postgres, schema)) = report_store {
            record_sensor_report(&postgres, &schema, &report).await?;
        }
        Ok(())
    })
}

/// Records what the sensor sent in the experiment's store (the pod is retried by its Job if
/// the store is away).
async fn record_sensor_report(
    postgres: &PostgresEndpoint,
    schema: &str,
    report: &SensorReport,
) -> Result<()> {
    let finished_ms = chrono::Utc::now().timestamp_millis();
    let store = Store::connect(postgres, schema, 1)
        .await
        .context("connecting to PostgreSQL to record what the sensor sent")?;
    store
        .record_sensor_reports(&report.readings_sent, finished_ms)
        .await
        .context("recording what the sensor sent")?;
    store.pool().close().await;
    Ok(())
}

pub fn run_bridge_command(common: Common) -> Result<()> {
    let mut loaded = load(&common)?;
    let stats = Arc::new(BridgeStats::default());
    stats.register(&mut loaded.registry);
    let config = BridgeConfig::from_spec(
        loaded.names.clone(),
        &loaded.experiment.spec,
        loaded.services.mqtt()?,
        loaded.services.pulsar()?,
        loaded.readiness.clone(),
    );
    let mut targets = Target::pulsar(&config.pulsar)?;
    targets.push(Target::mqtt(&config.mqtt));
    await_services(targets)?;
    let cancel = loaded.cancel.clone();
    let (ready, _) = tokio::sync::oneshot::channel();
    run_with_server(&common, loaded, async move {
        Ok(run_bridge(config, stats, ready, cancel).await?)
    })
}

pub fn run_windower_command(common: Common) -> Result<()> {
    let mut loaded = load(&common)?;
    let stats = Arc::new(WindowerStats::default());
    stats.register(&mut loaded.registry);
    let config = WindowerConfig::from_spec(
        loaded.names.clone(),
        &loaded.experiment.spec,
        loaded.services.pulsar()?,
        loaded.readiness.clone(),
    )?;
    await_services(Target::pulsar(&config.pulsar)?)?;
    let cancel = loaded.cancel.clone();
    run_with_server(&common, loaded, async move {
        Ok(run_windower(config, stats, cancel).await?)
    })
}

/// Where a workload that stores and uses models finds them: the experiment's schema and the
/// models bucket, connected once the workload runs.
struct ModelStores {
    postgres: PostgresEndpoint,
    schema: String,
    experiment: String,
    s3: S3Endpoint,
    bucket: String,
}

impl ModelStores {
    fn of(loaded: &Loaded, bucket: &str) -> Result<Self> {
        Ok(Self {
            postgres: loaded.services.postgres()?,
            schema: loaded.names.postgres_schema(),
            experiment: loaded.names.experiment().to_owned(),
            s3: loaded.services.s3()?,
            bucket: bucket.to_owned(),
        })
    }

    /// What a Pulsar workload that uses them waits for: Pulsar, PostgreSQL and the object store.
    fn targets(&self, pulsar: &PulsarEndpoint) -> Result<Vec<Target>> {
        let mut targets = Target::pulsar(pulsar)?;
        targets.push(Target::postgres(&self.postgres)?);
        targets.push(Target::s3(&self.s3)?);
        Ok(targets)
    }

    /// Connects (and migrates) the store, and the registry over it and the bucket.
    async fn connect(self, max_connections: u32) -> Result<(Store, ModelRegistry)> {
        let store = Store::connect(&self.postgres, &self.schema, max_connections)
            .await
            .context("connecting to PostgreSQL")?;
        store.migrate().await?;
        let objects = ObjectStore::new(&self.s3, &self.bucket);
        let registry = ModelRegistry::new(&self.experiment, objects, store.clone());
        Ok((store, registry))
    }
}

pub fn run_coordinator_command(common: Common) -> Result<()> {
    let mut loaded = load(&common)?;
    let stats = Arc::new(CoordinatorStats::default());
    stats.register(&mut loaded.registry);
    let spec = &loaded.experiment.spec;
    let config = CoordinatorConfig::from_spec(
        loaded.names.clone(),
        spec,
        loaded.services.pulsar()?,
        loaded.readiness.clone(),
    );
    let forecast_stats = Arc::new(ForecastStats::default());
    forecast_stats.register(&mut loaded.registry);
    let settings = ForecastSettings::from_spec(&spec.forecasting);
    let stores = ModelStores::of(&loaded, &common.bucket)?;
    await_services(stores.targets(&config.pulsar)?)?;
    let cancel = loaded.cancel.clone();
    run_with_server(&common, loaded, async move {
        let (store, registry) = stores.connect(8).await?;
        let forecasting = Forecasting::new(registry, settings, forecast_stats);
        Ok(run_coordinator(config, store, Some(forecasting), stats, cancel).await?)
    })
}

pub fn run_trainer_command(common: Common) -> Result<()> {
    let mut loaded = load(&common)?;
    let stats = Arc::new(TrainerStats::default());
    stats.register(&mut loaded.registry);
    let config = TrainerConfig::from_spec(
        loaded.names.clone(),
        &loaded.experiment.spec,
        loaded.services.pulsar()?,
        loaded.readiness.clone(),
    );
    let stores = ModelStores::of(&loaded, &common.bucket)?;
    await_services(stores.targets(&config.pulsar)?)?;
    let cancel = loaded.cancel.clone();
    run_with_server(&common, loaded, async move {
        let (store, registry) = stores.connect(4).await?;
        Ok(run_trainer(config, store, registry, stats, cancel).await?)
    })
}

pub fn run_setup_command(args: SetupArgs) -> Result<()> {
    let SetupArgs {
        common,
        dataset,
        model_dir,
    } = args;
    let loaded = load(&common)?;
    let services = loaded.services.all()?;
    let mut targets = vec![
        Target::mqtt(&services.mqtt),
        Target::postgres(&services.postgres)?,
        Target::s3(&services.s3)?,
    ];
    targets.extend(Target::pulsar(&services.pulsar)?);
    await_services(targets)?;
    let experiment = loaded.experiment.clone();
    let bucket = common.bucket.clone();
    let cancel = loaded.cancel.clone();
    loaded.readiness.set(true);
    run_with_server(&common, loaded, async move {
        let mounted = wattcast_pipeline::setup::Mounted {
            dataset: dataset.as_deref(),
            model_dir: model_dir.as_deref(),
        };
        // A signal stops it at once: set-up is idempotent, so a retry goes on from what is done
        // (the trainings under way are abandoned with the process).
        tokio::select! {
            result = wattcast_pipeline::setup::set_up(&experiment, &services, &bucket, mounted) => {
                tracing::info!(initial_models = result?, "experiment set up");
                Ok(())
            }
            () = cancel.cancelled() => {
                anyhow::bail!("stopped by a signal before the experiment was set up; a retry goes on from what is done")
            }
        }
    })
}
