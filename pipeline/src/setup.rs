//! `wattcast setup`: what an experiment needs before its sensors start — the Pulsar namespace and
//! topics, the PostgreSQL schema, the models bucket, and each device's initial model (trained
//! with the recipe, or the user's own from `forecasting.model.source`). Idempotent, so the
//! operator's setup Job can be retried.

use crate::model_registry::ModelRegistry;
use crate::model_source::{CheckedModel, ModelSource};
use crate::workload::now_ms;
use anyhow::Context;
use std::path::Path;
use wattcast_core::DeviceId;
use wattcast_core::experiment;
use wattcast_core::topics::ExperimentNames;
use wattcast_crds::PipelineExperiment;
use wattcast_io::dataset_source::DataSource;
use wattcast_io::object_store::ObjectStore;
use wattcast_io::pulsar_admin::PulsarAdmin;
use wattcast_io::services::Services;
use wattcast_io::store::Store;
use wattcast_model::{ModelVersion, Recipe, train};

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
) -> anyhow::Result<usize> {
    let spec = &experiment.spec;
    let names = ExperimentNames::new(experiment::name(experiment)?)?;
    let data = DataSource::of(spec, mounted.dataset)?
        .load(spec, Some(&services.s3))
        .await?;
    let own_model = own_model(spec, mounted.model_dir, services).await?;
    PulsarAdmin::new(&services.pulsar)?
        .create_experiment(&names)
        .await
        .context("creating the Pulsar namespace and topics")?;
    let store = Store::connect(&services.postgres, &names.postgres_schema(), 2)
        .await
        .context("connecting to PostgreSQL")?;
    store.migrate().await?;
    store
        .record_run(names.experiment(), spec, now_ms())
        .await
        .context("recording the run")?;
    let objects = ObjectStore::new(&services.s3, bucket);
    objects
        .ensure_bucket()
        .await
        .context("creating the models bucket")?;
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

/// The user's own model, read and checked against the contract, if the spec (or `model_dir`)
/// gives one.
pub async fn own_model(
    spec: &wattcast_crds::PipelineExperimentSpec,
    model_dir: Option<&Path>,
    services: &Services,
) -> anyhow::Result<Option<CheckedModel>> {
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
) -> anyhow::Result<()> {
    for (device, _) in devices {
        registry
            .publish_own(*device, ModelVersion::Initial, &model.artifacts, now_ms())
            .await
            .with_context(|| format!("publishing device {device}'s initial model ({})", model.origin))?;
    }
    Ok(())
}

/// Trains and publishes every device's initial model on its first readings (event-time order),
/// two at a time.
pub async fn train_initial_models(
    registry: &ModelRegistry,
    recipe: &Recipe,
    devices: &[(DeviceId, Vec<wattcast_core::Reading>)],
) -> anyhow::Result<()> {
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
        let (device, model) = result.context("training panicked")?;
        let model = model.with_context(|| format!("training device {device}'s initial model"))?;
        registry
            .publish(device, ModelVersion::Initial, &model, now_ms())
            .await
            .with_context(|| format!("publishing device {device}'s initial model"))?;
        tracing::info!(%device, test_rmse = model.metrics.test_rmse, seconds = model.metrics.train_seconds, "initial model");
    }
    Ok(())
}
