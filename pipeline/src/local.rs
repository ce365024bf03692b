//! `wattcast local EXPERIMENT.yaml`: the whole pipeline as tasks of one process against running
//! services — sensor → MQTT → bridge → Pulsar → windower → coordinator (+ forecasts) →
//! PostgreSQL, with the trainer retraining models into the object store — until every reading
//! sent has been stored (or counted late) and every window forecast, then a summary.

use crate::model_registry::ModelRegistry;
use crate::setup::{SetupError, Start, prepare_services};
use crate::workload::bridge::BridgeError;
use crate::workload::bridge::{BridgeConfig, BridgeStats, run_bridge};
use crate::workload::coordinator::{CoordinatorConfig, CoordinatorStats, run_coordinator};
use crate::workload::error::BrokerError;
use crate::workload::forecasting::{ForecastSettings, ForecastStats, Forecasting};
use crate::workload::sensor::SensorError;
use crate::workload::sensor::{DeviceReplay, SensorConfig, SensorMode, run_sensor};
use crate::workload::trainer::{TrainerConfig, TrainerStats, run_trainer};
use crate::workload::windower::{WindowerConfig, WindowerStats, run_windower};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wattcast_core::experiment::{self, SpecError};
use wattcast_core::topics::{ExperimentNames, InvalidExperimentName};
use wattcast_crds::{Architecture, PipelineExperiment, Retrain};
use wattcast_io::dataset_source::{DataSource, DataSourceError};
use wattcast_io::object_store::{ObjectStore, ObjectStoreError};
use wattcast_io::observe::Readiness;
use wattcast_io::pulsar_admin::PulsarAdminError;
use wattcast_io::services::Services;
use wattcast_io::store::summary::{Accuracy, BaselineComparison, ModelAge, Percentiles};
use wattcast_io::store::{Store, StoreError};
use wattcast_model::Recipe;

/// How `wattcast local` runs.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The services to use.
    pub services: Services,
    /// Give up when the data has not drained after this long.
    pub drain_timeout: Duration,
    /// Show a progress spinner on stderr.
    pub progress: bool,
    /// The bucket models are stored in.
    pub models_bucket: String,
    /// Train each device's initial model on its first readings before the run (without them
    /// windows are forecast only once the trainer has made a model).
    pub initial_models: bool,
    /// Pause the sensors' replay once until something has happened (tests of mechanisms).
    pub hold_replay: Option<crate::workload::sensor::ReplayHold>,
    /// The coordinator's forecasting counts (model swaps among them), when the caller wants to
    /// watch them during the run; fresh ones otherwise.
    pub forecast_stats: Option<Arc<ForecastStats>>,
    /// Replay this CSV instead of the spec's dataset (`--dataset FILE`).
    pub dataset: Option<std::path::PathBuf>,
    /// The directory of the spec's own model (`--model-dir DIR`, in place of a
    /// `forecasting.model.source.configMap`).
    pub model_dir: Option<std::path::PathBuf>,
}

impl LocalOptions {
    /// A run on `services` as `wattcast local` makes it by default: initial models trained, the
    /// default bucket, two minutes to drain, no spinner, nothing held or watched.
    pub fn new(services: Services) -> Self {
        Self {
            services,
            drain_timeout: Duration::from_secs(120),
            progress: false,
            models_bucket: wattcast_io::object_store::DEFAULT_BUCKET.to_owned(),
            initial_models: true,
            hold_replay: None,
            forecast_stats: None,
            dataset: None,
            model_dir: None,
        }
    }
}

/// What a local run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalSummary {
    /// The experiment.
    pub experiment: String,
    /// Streaming or Batching.
    pub architecture: String,
    /// Devices.
    pub devices: u32,
    /// Readings the sensors sent.
    pub readings_sent: u64,
    /// Measured readings stored.
    pub readings_stored: i64,
    /// Seconds filled by imputation.
    pub readings_imputed: i64,
    /// Readings that came after their window fired (stored in `late_readings`).
    pub late: i64,
    /// Windows stored.
    pub windows: i64,
    /// Windows with every second measured.
    pub complete_windows: i64,
    /// Measured readings in windows / expected readings.
    pub coverage: Option<f64>,
    /// Sensor publish → stored, milliseconds (includes waiting for the window to close).
    pub latency_ms: Option<Percentiles>,
    /// Last reading of a window published → window stored, milliseconds.
    pub window_latency_ms: Option<Percentiles>,
    /// Messages refused along the way.
    pub dead_letters: u64,
    /// Retrain requests sent.
    pub retrain_requests: u64,
    /// Store attempts that failed (PostgreSQL away) and were retried.
    pub store_retries: u64,
    /// Windows forecast (each `horizon` seconds ahead).
    pub forecasts: i64,
    /// Models recorded: initial ones and retrains.
    pub models: i64,
    /// Models the trainer made during the run.
    pub retrains: u64,
    /// Forecasts against the measured readings that later arrived.
    pub accuracy: Option<Accuracy>,
    /// Forecasts against imputed fillers (not real data; reported apart).
    pub accuracy_imputed: Option<Accuracy>,
    /// The LSTM beside persistence and the window's mean, on the same seconds, against
    /// measured readings.
    pub baselines: Option<BaselineComparison>,
    /// The same against imputed fillers.
    pub baselines_imputed: Option<BaselineComparison>,
    /// How old the forecasting models were (event time from a model's data end to a forecast).
    pub model_age: Option<ModelAge>,
    /// Wall-clock duration of the run, seconds.
    pub duration_s: f64,
    /// CPU time and peak memory of this run (every workload is a task of this process).
    pub usage: Option<crate::process_usage::ProcessUsage>,
}

/// Why a local run failed: the step, and its cause.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// What set-up would refuse or fail at: the spec, the name, the dataset, the user's own
    /// model, the Pulsar namespace, PostgreSQL, the bucket, the initial models.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// Recording what the sensors sent failed.
    #[error("recording what the sensors sent")]
    RecordSent(#[source] StoreError),
    /// Recording the run's end failed.
    #[error("recording the run's end")]
    RecordEnd(#[source] StoreError),
    /// Another store operation failed (it says which).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Removing an earlier run's models failed.
    #[error("removing the experiment's old models")]
    OldModels(#[source] ObjectStoreError),
    /// A workload (named) failed.
    #[error("{0}")]
    Workload(&'static str, #[source] WorkloadError),
    /// A workload's task panicked.
    #[error("a workload panicked")]
    Panicked(#[source] tokio::task::JoinError),
    /// The bridge never subscribed.
    #[error("the bridge did not subscribe to MQTT within 60 s")]
    BridgeNotSubscribed,
    /// A consumer never started consuming.
    #[error("the windower, coordinator or trainer did not start consuming within 60 s")]
    NotConsuming,
    /// A workload ended before the sensors had sent everything.
    #[error("a workload stopped while the sensors were sending")]
    StoppedEarly,
    /// Not every reading arrived in time.
    #[error(
        "not drained after {timeout:?}: {arrived} of {sent} readings stored (dead letters: {dead_letters})"
    )]
    NotDrained {
        /// How long it waited.
        timeout: Duration,
        /// Readings stored or stored as late.
        arrived: u64,
        /// Readings sent.
        sent: u64,
        /// Messages the bridge dead-lettered.
        dead_letters: u64,
    },
}

impl LocalError {
    /// Whether the experiment's input is at fault (its spec, name, dataset or model), so
    /// running it again cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Setup(error) if error.is_permanent())
    }
}

/// The errors set-up names, met by a local run before set-up's own steps.
macro_rules! through_setup {
    ($($error:ty),*) => {$(
        impl From<$error> for LocalError {
            fn from(error: $error) -> Self {
                Self::Setup(error.into())
            }
        }
    )*};
}
through_setup!(
    SpecError,
    InvalidExperimentName,
    DataSourceError,
    PulsarAdminError
);

/// Why one of the workloads failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The bridge.
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    /// The windower, coordinator or trainer.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The sensors.
    #[error(transparent)]
    Sensor(#[from] SensorError),
}

/// Gives `experiment` a fresh start: its Pulsar namespace and topics recreated, its schema
/// dropped and migrated, and the run recorded. Returns a store on the schema.
pub async fn reset_experiment(
    experiment: &PipelineExperiment,
    services: &Services,
) -> Result<Store, LocalError> {
    let names = ExperimentNames::new(experiment::name(experiment)?)?;
    Ok(prepare_services(&names, &experiment.spec, services, 8, Start::Fresh).await?)
}

/// Runs the experiment end to end and returns its summary. The experiment's Pulsar namespace
/// and PostgreSQL schema are recreated first, so each run starts clean.
pub async fn run_local(
    experiment: &PipelineExperiment,
    options: LocalOptions,
) -> Result<LocalSummary, LocalError> {
    let started = Instant::now();
    // What this run costs, apart from earlier runs of the same process.
    crate::process_usage::reset_peak();
    let usage_at_start = crate::process_usage::current();
    let spec = &experiment.spec;
    let names = ExperimentNames::new(experiment::name(experiment)?)?;
    let services = &options.services;
    // Read and checked before anything is reset, so a file that does not fit changes nothing.
    let devices = DataSource::of(spec, options.dataset.as_deref())?
        .load(spec, Some(&services.s3))
        .await?;
    let own_model = crate::setup::own_model(spec, options.model_dir.as_deref(), services).await?;

    let store = reset_experiment(experiment, services).await?;
    let objects = ObjectStore::new(&services.s3, &options.models_bucket);
    objects.ensure_bucket().await.map_err(SetupError::Bucket)?;
    objects
        .delete_prefix(&format!("{}/", names.experiment()))
        .await
        .map_err(LocalError::OldModels)?;
    let registry = ModelRegistry::new(names.experiment(), objects, store.clone());
    let recipe = Recipe::from_spec(&spec.forecasting);
    match (&own_model, options.initial_models) {
        (Some(model), _) => crate::setup::publish_own_model(&registry, model, &devices).await?,
        (None, true) => crate::setup::train_initial_models(&registry, &recipe, &devices).await?,
        (None, false) => {}
    }

    let cancel = CancellationToken::new();
    let bridge_stats = Arc::new(BridgeStats::default());
    let windower_stats = Arc::new(WindowerStats::default());
    let coordinator_stats = Arc::new(CoordinatorStats::default());
    let forecast_stats = options.forecast_stats.clone().unwrap_or_default();
    let trainer_stats = Arc::new(TrainerStats::default());
    let mut tasks = tokio::task::JoinSet::new();

    // Sensors start only when every workload consumes, so no reading waits for a workload to
    // connect (which would count as pipeline latency).
    let windower_ready = Arc::new(Readiness::default());
    let coordinator_ready = Arc::new(Readiness::default());
    if spec.architecture != Architecture::Streaming {
        windower_ready.set(true);
    }
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tasks.spawn({
        let config = BridgeConfig::from_spec(
            names.clone(),
            spec,
            services.mqtt.clone(),
            services.pulsar.clone(),
            Arc::default(),
        );
        let (stats, cancel) = (bridge_stats.clone(), cancel.clone());
        async move {
            run_bridge(config, stats, ready_tx, cancel)
                .await
                .map_err(|error| LocalError::Workload("bridge", WorkloadError::Bridge(error)))
        }
    });
    if spec.architecture == Architecture::Streaming {
        let config = WindowerConfig::from_spec(
            names.clone(),
            spec,
            services.pulsar.clone(),
            windower_ready.clone(),
        )?;
        let (stats, cancel) = (windower_stats.clone(), cancel.clone());
        tasks.spawn(async move {
            run_windower(config, stats, cancel)
                .await
                .map_err(|error| LocalError::Workload("windower", error.into()))
        });
    }
    let coordinator = CoordinatorConfig::from_spec(
        names.clone(),
        spec,
        services.pulsar.clone(),
        coordinator_ready.clone(),
    );
    let forecasting = Forecasting::new(
        registry.clone(),
        ForecastSettings::from_spec(&spec.forecasting),
        forecast_stats.clone(),
    );
    {
        let (store, stats, cancel) = (store.clone(), coordinator_stats.clone(), cancel.clone());
        tasks.spawn(async move {
            run_coordinator(coordinator, store, Some(forecasting), stats, cancel)
                .await
                .map_err(|error| LocalError::Workload("coordinator", error.into()))
        });
    }
    let trainer_ready = Arc::new(Readiness::default());
    // As many trainers as the spec asks for, each its own consumer of the Key_Shared `retrain`;
    // none when models are never retrained.
    let trainers = match spec.forecasting.retrain {
        Retrain::Every => spec.forecasting.trainers.max(1),
        Retrain::Never => {
            trainer_ready.set(true);
            0
        }
    };
    for _ in 0..trainers {
        let config = TrainerConfig::from_spec(
            names.clone(),
            spec,
            services.pulsar.clone(),
            trainer_ready.clone(),
        );
        let (store, registry, stats, cancel) = (
            store.clone(),
            registry.clone(),
            trainer_stats.clone(),
            cancel.clone(),
        );
        tasks.spawn(async move {
            run_trainer(config, store, registry, stats, cancel)
                .await
                .map_err(|error| LocalError::Workload("trainer", error.into()))
        });
    }

    if !matches!(
        tokio::time::timeout(Duration::from_secs(60), ready_rx).await,
        Ok(Ok(()))
    ) {
        cancel.cancel();
        while let Some(result) = tasks.join_next().await {
            result.map_err(LocalError::Panicked)??;
        }
        return Err(LocalError::BridgeNotSubscribed);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(windower_ready.is_ready() && coordinator_ready.is_ready() && trainer_ready.is_ready()) {
        if Instant::now() > deadline {
            cancel.cancel();
            return Err(LocalError::NotConsuming);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mode = SensorMode::from(spec.architecture);
    let sensor = SensorConfig {
        mode,
        names: names.clone(),
        devices: devices
            .into_iter()
            .map(|(device, readings)| DeviceReplay::new(mode, device, readings))
            .collect(),
        speedup: spec.replay.speedup,
        ramp_up: spec.devices.ramp_up.as_ref().map(|ramp| ramp.every.get()),
        mqtt: services.mqtt.clone(),
        client_id: format!("wattcast-sensor-{}-{}", names.experiment(), std::process::id()),
        hold: options.hold_replay.clone(),
        // One process: a crash ends the whole run, so there is nothing to resume.
        progress: None,
    };

    let progress = progress_bar(options.progress);
    let report = {
        let sensor_run = run_sensor(sensor, cancel.clone());
        tokio::pin!(sensor_run);
        loop {
            tokio::select! {
                report = &mut sensor_run => break report.map_err(|error| LocalError::Workload("sensor", WorkloadError::Sensor(error)))?,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    show(&progress, "sending", &bridge_stats, &coordinator_stats, &forecast_stats);
                }
                Some(result) = tasks.join_next() => {
                    cancel.cancel();
                    result.map_err(LocalError::Panicked)??;
                    return Err(LocalError::StoppedEarly);
                }
            }
        }
    };
    let readings_sent: u64 = report.readings_sent.values().sum();
    // The store keeps the sensors' account too, as in the cluster, so anything reading it later
    // (the operator, `wattcast report`) knows what was sent.
    let finished_ms = crate::workload::now_ms();
    store
        .record_sensor_reports(&report.readings_sent, finished_ms)
        .await
        .map_err(LocalError::RecordSent)?;

    // Drained when every reading sent is stored, or stored as late.
    let deadline = Instant::now() + options.drain_timeout;
    loop {
        // While PostgreSQL is away the count fails; keep waiting, the coordinator retries too.
        let arrived = match store.arrived().await {
            Ok(arrived) => arrived as u64,
            Err(error) => {
                tracing::warn!(%error, "counting stored readings failed; retrying");
                0
            }
        };
        // Each stored window is forecast (or skipped) right after it is stored.
        let decided =
            forecast_stats.forecasts.get() + forecast_stats.skipped.get() + forecast_stats.failures.get();
        if arrived >= readings_sent && decided >= coordinator_stats.windows.get() {
            break;
        }
        if Instant::now() > deadline {
            cancel.cancel();
            return Err(LocalError::NotDrained {
                timeout: options.drain_timeout,
                arrived,
                sent: readings_sent,
                dead_letters: bridge_stats.dead_letters.get(),
            });
        }
        show(
            &progress,
            "draining",
            &bridge_stats,
            &coordinator_stats,
            &forecast_stats,
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cancel.cancel();
    while let Some(result) = tasks.join_next().await {
        result.map_err(LocalError::Panicked)??;
    }
    if let Some(progress) = progress {
        progress.finish_and_clear();
    }

    let usage = crate::process_usage::current()
        .zip(usage_at_start)
        .map(|(now, start)| now.since(start));
    store
        .record_run_finished(
            crate::workload::now_ms(),
            usage.map(|u| u.cpu_seconds),
            usage.map(|u| u.peak_rss_bytes),
        )
        .await
        .map_err(LocalError::RecordEnd)?;
    let stored = store.summary().await?;
    Ok(LocalSummary {
        experiment: names.experiment().to_owned(),
        architecture: format!("{:?}", spec.architecture),
        devices: spec.devices.count,
        readings_sent,
        readings_stored: stored.readings_stored,
        readings_imputed: stored.readings_imputed,
        late: stored.late,
        windows: stored.windows,
        complete_windows: stored.complete_windows,
        coverage: stored.coverage,
        latency_ms: stored.latency_ms,
        window_latency_ms: stored.window_latency_ms,
        dead_letters: bridge_stats.dead_letters.get()
            + windower_stats.dead_letters.get()
            + coordinator_stats.dead_letters.get(),
        retrain_requests: coordinator_stats.retrain_requests.get(),
        store_retries: coordinator_stats.store_retries.get(),
        forecasts: stored.forecasts,
        models: stored.models,
        retrains: trainer_stats.retrains.get(),
        accuracy: stored.accuracy,
        accuracy_imputed: stored.accuracy_imputed,
        baselines: stored.baselines,
        baselines_imputed: stored.baselines_imputed,
        model_age: stored.model_age,
        duration_s: started.elapsed().as_secs_f64(),
        usage,
    })
}

fn progress_bar(enabled: bool) -> Option<indicatif::ProgressBar> {
    enabled.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    })
}

fn show(
    progress: &Option<indicatif::ProgressBar>,
    phase: &str,
    bridge: &BridgeStats,
    coordinator: &CoordinatorStats,
    forecasts: &ForecastStats,
) {
    if let Some(progress) = progress {
        progress.set_message(format!(
            "{phase}: {} readings and {} batches bridged, {} windows stored, {} forecast, {} late, {} dead letters",
            bridge.readings.get(),
            bridge.batches.get(),
            coordinator.windows.get(),
            forecasts.forecasts.get(),
            coordinator.late.get(),
            bridge.dead_letters.get(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_experiments_own_input_is_permanent_and_said_as_set_up_says_it() {
        let error = LocalError::from(SpecError::Unnamed);
        assert!(error.is_permanent());
        assert_eq!(error.to_string(), "the experiment has no metadata.name");
        let error = LocalError::from(SetupError::Train {
            device: wattcast_core::DeviceId(3),
            source: wattcast_model::TrainError::TooFewReadings {
                got: 10,
                need: 122,
                look_back: 60,
            },
        });
        assert!(!error.is_permanent(), "training may succeed on a retry's data");
        assert_eq!(error.to_string(), "training device 3's initial model");
    }
}
