//! `wattcast setup`: what an experiment needs before its sensors start — the Pulsar namespace and
//! topics, the PostgreSQL schema, the models bucket, and each device's initial model (trained
//! with the recipe, or the user's own from `forecasting.model.source`). Idempotent, so the
//! operator's setup Job can be retried.

use crate::model_registry::ModelRegistry;
use crate::model_source::{CheckedModel, ModelSource};
use crate::workload::now_ms;
use std::path::Path;
use wattcast_core::DeviceId;
use wattcast_core::experiment;
use wattcast_core::experiment::SpecError;
use wattcast_core::topics::{ExperimentNames, InvalidExperimentName};
use wattcast_crds::PipelineExperiment;
use wattcast_io::dataset_source::{DataSource, DataSourceError};
use wattcast_io::object_store::{ObjectStore, ObjectStoreError};
use wattcast_io::pulsar_admin::{PulsarAdmin, PulsarAdminError};
use wattcast_io::services::Services;
use wattcast_io::store::{Store, StoreError};
use wattcast_model::{ModelVersion, Recipe, TrainError, train};

/// Why setting an experiment up failed: the step, and its cause.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The experiment's spec does not fit.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Its name cannot name topics and a schema.
    #[error(transparent)]
    Name(#[from] InvalidExperimentName),
    /// Its dataset cannot be read or does not fit the spec.
    #[error(transparent)]
    Dataset(#[from] DataSourceError),
    /// Its own model cannot be read or does not fit the contract.
    #[error(transparent)]
    OwnModel(#[from] crate::model_source::ModelSourceError),
    /// Pulsar's admin endpoint is unusable.
    #[error(transparent)]
    PulsarAdmin(#[from] PulsarAdminError),
    /// Deleting the experiment's Pulsar namespace failed.
    #[error("resetting the Pulsar namespace")]
    ResetPulsar(#[source] PulsarAdminError),
    /// Creating the Pulsar namespace and topics failed.
    #[error("creating the Pulsar namespace and topics")]
    Topics(#[source] PulsarAdminError),
    /// Dropping the experiment's schema failed.
    #[error("resetting the schema")]
    ResetSchema(#[source] StoreError),
    /// PostgreSQL cannot be reached.
    #[error("connecting to PostgreSQL")]
    Connect(#[source] StoreError),
    /// Recording the run failed.
    #[error("recording the run")]
    RecordRun(#[source] StoreError),
    /// Another store operation failed (it says which).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Creating the models bucket failed.
    #[error("creating the models bucket")]
    Bucket(#[source] ObjectStoreError),
    /// Publishing the user's own model as a device's initial model failed.
    #[error("publishing device {device}'s initial model ({origin})")]
    PublishOwn {
        /// The device.
        device: DeviceId,
        /// Where the model came from.
        origin: String,
        /// Why.
        #[source]
        source: crate::model_registry::RegistryError,
    },
    /// Training a device's initial model failed.
    #[error("training device {device}'s initial model")]
    Train {
        /// The device.
        device: DeviceId,
        /// Why.
        #[source]
        source: TrainError,
    },
    /// Publishing a trained initial model failed.
    #[error("publishing device {device}'s initial model")]
    Publish {
        /// The device.
        device: DeviceId,
        /// Why.
        #[source]
        source: crate::model_registry::RegistryError,
    },
    /// A training task panicked.
    #[error("training panicked")]
    Panicked(#[source] tokio::task::JoinError),
}

impl SetupError {
    /// Whether the experiment's input is at fault (its spec, name, dataset or model), so
    /// retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Spec(_) | Self::Name(_) => true,
            Self::Dataset(error) => error.is_permanent(),
            Self::OwnModel(error) => error.is_permanent(),
            _ => false,
        }
    }
}

/// What the user passed in place of the spec's ConfigMap sources (the setup pod's mounts).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mounted<'a> {
    /// The CSV of `dataset.source.configMap` (or `--dataset`).
    pub dataset: Option<&'a Path>,
    /// The directory of `forecasting.model.source.configMap` (or `--model-dir`).
    pub model_dir: Option<&'a Path>,
}

/// Sets the experiment up; returns how many initial models were made (devices that already
/// had one are left alone). The dataset and the user's own model (the mounts, or else as the
/// spec says) are read and checked against the spec first, so a mismatch is refused before
/// anything is created.
pub async fn set_up(
    experiment: &PipelineExperiment,
    services: &Services,
    bucket: &str,
    mounted: Mounted<'_>,
) -> Result<usize, SetupError> {
    let spec = &experiment.spec;
    let names = ExperimentNames::new(experiment::name(experiment)?)?;
    let data = DataSource::of(spec, mounted.dataset)?
        .load(spec, Some(&services.s3))
        .await?;
    let own_model = own_model(spec, mounted.model_dir, services).await?;
    let store = prepare_services(&names, spec, services, 2, Start::Kept).await?;
    let objects = ObjectStore::new(&services.s3, bucket);
    objects.ensure_bucket().await.map_err(SetupError::Bucket)?;
    let registry = ModelRegistry::new(names.experiment(), objects, store.clone());
    let mut devices = Vec::new();
    for (device, readings) in data {
        if store.latest_model(device).await?.is_none() {
            devices.push((device, readings));
        }
    }
    match &own_model {
        Some(model) => publish_own_model(&registry, model, &devices).await?,
        None => train_initial_models(&registry, &Recipe::from_spec(&spec.forecasting), &devices).await?,
    }
    Ok(devices.len())
}

/// Whether [`prepare_services`] keeps what an earlier run of the experiment left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Keep it (set-up is idempotent: a retried Job goes on from what is there).
    Kept,
    /// Delete the Pulsar namespace and drop the schema first (`wattcast local`: each run
    /// starts clean).
    Fresh,
}

/// The experiment's Pulsar namespace and topics, and its schema migrated with the run recorded;
/// returns a store of `connections` connections on the schema.
pub async fn prepare_services(
    names: &ExperimentNames,
    spec: &wattcast_crds::PipelineExperimentSpec,
    services: &Services,
    connections: u32,
    start: Start,
) -> Result<Store, SetupError> {
    let admin = PulsarAdmin::new(&services.pulsar)?;
    if start == Start::Fresh {
        admin
            .delete_experiment(names)
            .await
            .map_err(SetupError::ResetPulsar)?;
    }
    admin.create_experiment(names).await.map_err(SetupError::Topics)?;
    let store = Store::connect(&services.postgres, &names.postgres_schema(), connections)
        .await
        .map_err(SetupError::Connect)?;
    if start == Start::Fresh {
        store.drop_schema().await.map_err(SetupError::ResetSchema)?;
    }
    store.migrate().await?;
    store
        .record_run(names.experiment(), spec, now_ms())
        .await
        .map_err(SetupError::RecordRun)?;
    Ok(store)
}

/// The user's own model, read and checked against the contract, if the spec (or `model_dir`)
/// gives one.
pub async fn own_model(
    spec: &wattcast_crds::PipelineExperimentSpec,
    model_dir: Option<&Path>,
    services: &Services,
) -> Result<Option<CheckedModel>, SetupError> {
    let Some(source) = ModelSource::of(spec, model_dir)? else {
        return Ok(None);
    };
    let model = source
        .load(Some(&services.s3), spec.forecasting.look_back as usize)
        .await?;
    tracing::info!(origin = %model.origin, engine = model.engine.as_str(), "the experiment's own model fits the contract");
    Ok(Some(model))
}

/// Publishes the user's own model as each device's initial model.
pub async fn publish_own_model(
    registry: &ModelRegistry,
    model: &CheckedModel,
    devices: &[(DeviceId, Vec<wattcast_core::Reading>)],
) -> Result<(), SetupError> {
    for (device, _) in devices {
        registry
            .publish_own(*device, ModelVersion::Initial, &model.artifacts, now_ms())
            .await
            .map_err(|source| SetupError::PublishOwn {
                device: *device,
                origin: model.origin.to_string(),
                source,
            })?;
    }
    Ok(())
}

/// Trains and publishes every device's initial model on its first readings (event-time order),
/// two at a time.
pub async fn train_initial_models(
    registry: &ModelRegistry,
    recipe: &Recipe,
    devices: &[(DeviceId, Vec<wattcast_core::Reading>)],
) -> Result<(), SetupError> {
    let mut training = tokio::task::JoinSet::new();
    let mut pending = devices.iter();
    loop {
        while training.len() < 2 {
            let Some((device, readings)) = pending.next() else {
                break;
            };
            let mut series: Vec<(i64, f64)> = readings.iter().map(|r| (r.event_time, r.power_w)).collect();
            series.sort_by_key(|(time, _)| *time);
            series.truncate(recipe.training_readings);
            let values: Vec<f64> = series.into_iter().map(|(_, v)| v).collect();
            let (device, recipe) = (*device, recipe.clone());
            training.spawn_blocking(move || (device, train(&values, &recipe)));
        }
        let Some(result) = training.join_next().await else {
            break;
        };
        let (device, model) = result.map_err(SetupError::Panicked)?;
        let model = model.map_err(|source| SetupError::Train { device, source })?;
        registry
            .publish(device, ModelVersion::Initial, &model, now_ms())
            .await
            .map_err(|source| SetupError::Publish { device, source })?;
        tracing::info!(%device, test_rmse = model.metrics.test_rmse, seconds = model.metrics.train_seconds, "initial model");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_step_says_what_failed_and_keeps_its_cause() {
        let error = SetupError::Train {
            device: DeviceId(3),
            source: TrainError::TooFewReadings {
                got: 10,
                need: 122,
                look_back: 60,
            },
        };
        assert_eq!(error.to_string(), "training device 3's initial model");
        let cause = error.source().expect("the cause is kept");
        assert!(
            cause.to_string().starts_with("10 readings are too few"),
            "{cause}"
        );
        assert!(
            !error.is_permanent(),
            "training may succeed on a retry's fresh data"
        );
    }

    #[test]
    fn the_experiments_own_input_is_permanent_and_says_itself() {
        let error = SetupError::from(SpecError::Unnamed);
        assert!(error.is_permanent());
        assert_eq!(error.to_string(), "the experiment has no metadata.name");
    }
}
