//! `wattcast setup`: what an experiment needs before its sensors start — the Pulsar namespace and
//! topics, the PostgreSQL schema, the models bucket, and each device's initial model. Idempotent,
//! so the operator's setup Job can be retried.

use crate::DeviceId;
use crate::dataset::DataSource;
use crate::experiment;
use crate::model::{ModelVersion, Recipe, train};
use crate::model_registry::ModelRegistry;
use crate::object_store::ObjectStore;
use crate::pulsar_admin::PulsarAdmin;
use crate::services::Services;
use crate::store::Store;
use crate::topics::ExperimentNames;
use crate::workload::now_ms;
use anyhow::Context;
use std::path::Path;
use wattcast_crds::PipelineExperiment;

/// Sets the experiment up; returns how many initial models were trained (devices that already
/// had one are left alone). The dataset (`dataset_file`, e.g. the pod's mount of a ConfigMap
/// source, or else as the spec says) is read and checked against the spec first, so a
/// mismatch is refused before anything is created.
pub async fn set_up(
    experiment: &PipelineExperiment,
    services: &Services,
    bucket: &str,
    dataset_file: Option<&Path>,
) -> anyhow::Result<usize> {
    let spec = &experiment.spec;
    let names = ExperimentNames::new(experiment::name(experiment)?)?;
    let data = DataSource::of(spec, dataset_file)?
        .load(spec, Some(&services.s3))
        .await?;
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
    train_initial_models(&registry, &Recipe::from_spec(&spec.forecasting), &devices).await?;
    Ok(devices.len())
}

/// Trains and publishes every device's initial model on its first readings (event-time order),
/// two at a time.
pub async fn train_initial_models(
    registry: &ModelRegistry,
    recipe: &Recipe,
    devices: &[(DeviceId, Vec<crate::Reading>)],
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
