//! Where models are published and found: their files in the object store, their rows in the
//! experiment's `models` table.

use wattcast_core::DeviceId;
use wattcast_core::artifacts::{ModelArtifacts, ModelVersion, object_prefix};
use wattcast_io::object_store::{ObjectStore, ObjectStoreError};
use wattcast_io::store::models::ModelRecord;
use wattcast_io::store::{Store, StoreError};
use wattcast_model::{ForecastError, Forecaster, TrainedModel};

/// Why a model could not be published or loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The object store failed.
    #[error(transparent)]
    Objects(#[from] ObjectStoreError),
    /// PostgreSQL failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The files are there but are not a usable model.
    #[error("{prefix}: {source}")]
    Unusable {
        /// The model's prefix.
        prefix: String,
        /// What is wrong.
        source: ForecastError,
    },
}

impl RegistryError {
    /// Whether trying again later can help: a service was away, rather than the model's files
    /// being unusable.
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::Unusable { .. })
    }
}

/// What a model's row says about its training (all zero and absent for a model made elsewhere).
#[derive(Debug, Default)]
struct Trained {
    readings: i32,
    train_seconds: f64,
    test_rmse: Option<f64>,
    test_mae: Option<f64>,
    baseline_rmse: Option<f64>,
}

/// A device's model, loaded and ready to forecast.
#[derive(Debug)]
pub struct LoadedModel {
    /// Its version (`initial` or `{from}-{to}`), stored with each forecast.
    pub version: String,
    /// The model.
    pub forecaster: Forecaster,
}

/// Publishes and finds one experiment's models.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    experiment: String,
    objects: ObjectStore,
    store: Store,
}

impl ModelRegistry {
    /// The registry of `experiment`'s models.
    pub fn new(experiment: &str, objects: ObjectStore, store: Store) -> Self {
        Self {
            experiment: experiment.to_owned(),
            objects,
            store,
        }
    }

    /// The object store.
    pub fn objects(&self) -> &ObjectStore {
        &self.objects
    }

    /// Uploads a trained model's files, then records its row; returns the row. Idempotent.
    pub async fn publish(
        &self,
        device: DeviceId,
        version: ModelVersion,
        model: &TrainedModel,
        created_ms: i64,
    ) -> Result<ModelRecord, RegistryError> {
        let trained = Trained {
            readings: i32::try_from(model.metrics.readings).unwrap_or(i32::MAX),
            train_seconds: model.metrics.train_seconds,
            test_rmse: Some(model.metrics.test_rmse).filter(|v| v.is_finite()),
            test_mae: Some(model.metrics.test_mae).filter(|v| v.is_finite()),
            baseline_rmse: Some(model.metrics.baseline_rmse).filter(|v| v.is_finite()),
        };
        self.publish_files(device, version, &model.artifacts(), trained, created_ms)
            .await
    }

    /// Uploads a model made elsewhere (the user's own, `spec.forecasting.model.source`), then
    /// records its row with no training figures; returns the row. Idempotent.
    pub async fn publish_own(
        &self,
        device: DeviceId,
        version: ModelVersion,
        artifacts: &ModelArtifacts,
        created_ms: i64,
    ) -> Result<ModelRecord, RegistryError> {
        self.publish_files(device, version, artifacts, Trained::default(), created_ms)
            .await
    }

    async fn publish_files(
        &self,
        device: DeviceId,
        version: ModelVersion,
        artifacts: &ModelArtifacts,
        trained: Trained,
        created_ms: i64,
    ) -> Result<ModelRecord, RegistryError> {
        let prefix = object_prefix(&self.experiment, device, version);
        self.objects.upload_model(&prefix, artifacts).await?;
        let (data_from, data_to) = match version {
            ModelVersion::Initial => (None, None),
            ModelVersion::Retrained { from, to } => (Some(from), Some(to)),
        };
        let record = ModelRecord {
            device: device.0 as i32,
            version: version.to_string(),
            data_from,
            data_to,
            readings: trained.readings,
            train_seconds: trained.train_seconds,
            test_rmse: trained.test_rmse,
            test_mae: trained.test_mae,
            baseline_rmse: trained.baseline_rmse,
            object_prefix: prefix,
            created_ms,
        };
        self.store.record_model(&record).await?;
        Ok(record)
    }

    /// Downloads and loads the model under `prefix`.
    pub async fn load(
        &self,
        version: &str,
        prefix: &str,
        look_back: usize,
    ) -> Result<LoadedModel, RegistryError> {
        let artifacts = self.objects.download_model(prefix).await?;
        let forecaster =
            Forecaster::load(&artifacts.onnx, artifacts.scaler, look_back).map_err(|source| {
                RegistryError::Unusable {
                    prefix: prefix.to_owned(),
                    source,
                }
            })?;
        Ok(LoadedModel {
            version: version.to_owned(),
            forecaster,
        })
    }

    /// Which of `devices` have at least one recorded model.
    pub async fn devices_with_models(&self, devices: &[DeviceId]) -> Result<Vec<DeviceId>, RegistryError> {
        Ok(self.store.devices_with_models(devices).await?)
    }

    /// The device's newest recorded model, loaded; `None` when it has none yet.
    pub async fn load_latest(
        &self,
        device: DeviceId,
        look_back: usize,
    ) -> Result<Option<LoadedModel>, RegistryError> {
        match self.store.latest_model(device).await? {
            Some(record) => Ok(Some(
                self.load(&record.version, &record.object_prefix, look_back)
                    .await?,
            )),
            None => Ok(None),
        }
    }
}
