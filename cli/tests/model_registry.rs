//! Models on the real object store and PostgreSQL: publish and load; the coordinator's
//! forecasting swaps in announced models and keeps its last one when a new one is missing,
//! corrupt or of the wrong shape.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use tokio_util::sync::CancellationToken;
use wattcast_core::DeviceId;
use wattcast_core::artifacts::{MODEL_FILE, ModelArtifacts, object_prefix};
use wattcast_core::topics::ExperimentNames;
use wattcast_core::wire::ModelAnnouncement;
use wattcast_io::object_store::{ObjectStore, ObjectStoreError};
use wattcast_io::store::Store;
use wattcast_model::{ModelVersion, Recipe, TrainedModel, train};
use wattcast_pipeline::model_registry::ModelRegistry;
use wattcast_pipeline::workload::forecasting::{ForecastSettings, ForecastStats, Forecasting};

const DEVICE: DeviceId = DeviceId(1);

fn quick_model(seed: u64, look_back: usize) -> TrainedModel {
    let series: Vec<f64> = (0..300)
        .map(|i| 800.0 + 120.0 * (i as f64 / 11.0).sin())
        .collect();
    train(
        &series,
        &Recipe {
            epochs: 3,
            seed,
            look_back,
            ..Recipe::default()
        },
    )
    .expect("trains")
}

async fn setup(name: &str) -> (String, Store, ModelRegistry, common::Cleanup) {
    let services = common::services();
    let experiment = common::unique(name);
    let names = ExperimentNames::new(&experiment).expect("valid name");
    let store = common::reachable(
        "PostgreSQL",
        common::within(
            30,
            "PostgreSQL",
            Store::connect(&services.postgres, &names.postgres_schema(), 2),
        )
        .await,
    );
    store.migrate().await.expect("migrates");
    let objects = ObjectStore::new(&services.s3, "wattcast-test-models");
    common::reachable(
        "the S3 server",
        common::within(30, "S3", objects.ensure_bucket()).await,
    );
    let registry = ModelRegistry::new(&experiment, objects, store.clone());
    let cleanup = common::Cleanup::schema(names.postgres_schema());
    (experiment, store, registry, cleanup)
}

/// Stores two minutes of readings before `origin` so there is history to forecast from.
async fn store_history(store: &Store, origin: i64) {
    let values: Vec<f64> = (origin - 120..origin)
        .map(|t| 800.0 + 50.0 * (t as f64 / 7.0).sin())
        .collect();
    common::store_measured(store, 1, origin - 120, &values).await;
}

async fn versions(store: &Store) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT DISTINCT origin, model_version FROM forecasts ORDER BY origin")
        .fetch_all(store.pool())
        .await
        .expect("forecasts read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_models_load_and_round_trip() {
    let (experiment, store, registry, _cleanup) = setup("registry").await;
    let model = quick_model(1, 60);
    let record = registry
        .publish(DEVICE, ModelVersion::Initial, &model, 1)
        .await
        .expect("publishes");
    assert_eq!(record.object_prefix, format!("{experiment}/1/initial/"));
    assert_eq!(
        store.latest_model(DEVICE).await.expect("query"),
        Some(record.clone())
    );
    assert_eq!(
        store
            .devices_with_models(&[DeviceId(99), DEVICE])
            .await
            .expect("query"),
        vec![DEVICE]
    );
    let downloaded = registry
        .objects()
        .download_model(&record.object_prefix)
        .await
        .expect("downloads");
    assert_eq!(downloaded.onnx, model.artifacts().onnx);
    assert_eq!(downloaded.scaler, model.scaler);

    // A retrain is newer than the initial model.
    let retrained = ModelVersion::Retrained { from: 100, to: 699 };
    registry
        .publish(DEVICE, retrained, &quick_model(2, 60), 2)
        .await
        .expect("publishes");
    let latest = store.latest_model(DEVICE).await.expect("query").expect("a model");
    assert_eq!(latest.version, "100-699");
    let loaded = registry
        .load_latest(DEVICE, 60)
        .await
        .expect("loads")
        .expect("a model");
    assert_eq!(loaded.version, "100-699");

    let deleted = registry
        .objects()
        .delete_prefix(&format!("{experiment}/"))
        .await
        .expect("deletes");
    assert_eq!(deleted, 6, "model, scaler and metrics of two versions");
    let missing = registry
        .objects()
        .get(&format!("{experiment}/1/initial/{MODEL_FILE}"))
        .await;
    assert!(
        matches!(missing, Err(ObjectStoreError::NotFound { .. })),
        "{missing:?}"
    );
    store.drop_schema().await.expect("drops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecasting_swaps_models_and_keeps_the_last_good_one() {
    let (experiment, store, registry, _cleanup) = setup("swap").await;
    let stats = std::sync::Arc::new(ForecastStats::default());
    let settings = ForecastSettings {
        look_back: 60,
        horizon: 60,
        absent_recheck_ms: 0,
    };
    let mut forecasting = Forecasting::new(registry.clone(), settings, stats.clone());
    let cancel = CancellationToken::new();
    let origin = 1_765_152_000;
    store_history(&store, origin).await;

    // No model yet: the window is stored elsewhere, the forecast skipped.
    forecasting
        .after_window(&store, DEVICE, origin, &cancel)
        .await
        .expect("not cancelled");
    assert_eq!(stats.skipped.get(), 1);
    assert!(versions(&store).await.is_empty());

    registry
        .publish(DEVICE, ModelVersion::Initial, &quick_model(1, 60), 1)
        .await
        .expect("publishes");
    forecasting
        .after_window(&store, DEVICE, origin, &cancel)
        .await
        .expect("not cancelled");
    assert_eq!(versions(&store).await, vec![(origin, "initial".to_owned())]);

    // Missing, corrupt and wrong-shaped models are refused; the initial model stays.
    let announce = |version: &str| ModelAnnouncement {
        device: DEVICE,
        version: version.to_owned(),
        object_prefix: format!("{experiment}/1/{version}/"),
    };
    forecasting.swap(&announce("1-2")).await;
    let corrupt = ModelArtifacts {
        onnx: b"not onnx".to_vec(),
        ..quick_model(1, 60).artifacts()
    };
    registry
        .objects()
        .upload_model(&format!("{experiment}/1/3-4/"), &corrupt)
        .await
        .expect("uploads");
    forecasting.swap(&announce("3-4")).await;
    let wrong_shape = quick_model(1, 30).artifacts();
    registry
        .objects()
        .upload_model(&format!("{experiment}/1/5-6/"), &wrong_shape)
        .await
        .expect("uploads");
    forecasting.swap(&announce("5-6")).await;
    assert_eq!(stats.model_load_failures.get(), 3);
    assert_eq!(stats.model_swaps.get(), 0);
    forecasting
        .after_window(&store, DEVICE, origin + 60, &cancel)
        .await
        .expect("not cancelled");

    // A good announced model is swapped in for the next window.
    let version = ModelVersion::Retrained {
        from: origin - 540,
        to: origin + 59,
    };
    registry
        .publish(DEVICE, version, &quick_model(7, 60), 2)
        .await
        .expect("publishes");
    forecasting.swap(&announce(&version.to_string())).await;
    assert_eq!(stats.model_swaps.get(), 1);
    forecasting
        .after_window(&store, DEVICE, origin + 120, &cancel)
        .await
        .expect("not cancelled");
    assert_eq!(
        versions(&store).await,
        vec![
            (origin, "initial".to_owned()),
            (origin + 60, "initial".to_owned()),
            (origin + 120, version.to_string())
        ]
    );

    // A redelivered window changes nothing.
    forecasting
        .after_window(&store, DEVICE, origin + 120, &cancel)
        .await
        .expect("not cancelled");
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM forecasts")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(rows, 3 * 60);
    registry
        .objects()
        .delete_prefix(&format!("{experiment}/"))
        .await
        .expect("deletes");
    store.drop_schema().await.expect("drops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_windows_looks_up_its_devices_models_at_once() {
    let (experiment, store, registry, _cleanup) = setup("batchcheck").await;
    let other = DeviceId(2);
    let origin = 1_765_152_000;
    store_history(&store, origin).await;
    let settings = ForecastSettings {
        look_back: 60,
        horizon: 60,
        absent_recheck_ms: 3_600_000,
    };
    let cancel = CancellationToken::new();

    // Neither device has a model: the batch check marks both absent until the recheck is due,
    // so a model recorded afterwards is not looked up window by window.
    let stats = std::sync::Arc::new(ForecastStats::default());
    let mut forecasting = Forecasting::new(registry.clone(), settings, stats.clone());
    forecasting.check_models([DEVICE, other, DEVICE]).await;
    registry
        .publish(DEVICE, ModelVersion::Initial, &quick_model(1, 60), 1)
        .await
        .expect("publishes");
    forecasting
        .after_window(&store, DEVICE, origin, &cancel)
        .await
        .expect("not cancelled");
    assert_eq!((stats.skipped.get(), stats.forecasts.get()), (1, 0));

    // Checked after the model exists: its device forecasts, the other is skipped.
    let stats = std::sync::Arc::new(ForecastStats::default());
    let mut forecasting = Forecasting::new(registry.clone(), settings, stats.clone());
    forecasting.check_models([DEVICE, other]).await;
    for device in [DEVICE, other] {
        forecasting
            .after_window(&store, device, origin, &cancel)
            .await
            .expect("not cancelled");
    }
    assert_eq!((stats.skipped.get(), stats.forecasts.get()), (1, 1));
    assert_eq!(versions(&store).await, vec![(origin, "initial".to_owned())]);
    registry
        .objects()
        .delete_prefix(&format!("{experiment}/"))
        .await
        .expect("deletes");
    store.drop_schema().await.expect("drops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_object_names_its_key() {
    let (experiment, store, registry, _cleanup) = setup("missing").await;
    let prefix = object_prefix(&experiment, DEVICE, ModelVersion::Initial);
    let error = registry
        .load("initial", &prefix, 60)
        .await
        .expect_err("nothing uploaded");
    assert_eq!(
        error.to_string(),
        format!("s3://wattcast-test-models/{prefix}scaler.json does not exist")
    );
    store.drop_schema().await.expect("drops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keras_export_in_the_object_store_loads_on_the_fast_path() {
    let (experiment, store, registry, _cleanup) = setup("keras").await;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras-lstm");
    let keras = ModelArtifacts::read_dir(&fixture).expect("the Keras fixture (make keras-model)");
    assert!(
        keras.metrics.is_none(),
        "a model made elsewhere has no metrics.json"
    );
    let prefix = object_prefix(&experiment, DEVICE, ModelVersion::Initial);
    registry
        .objects()
        .upload_model(&prefix, &keras)
        .await
        .expect("uploads");
    let loaded = registry.load("initial", &prefix, 60).await.expect("loads");
    assert_eq!(loaded.forecaster.engine(), wattcast_model::ForecastEngine::Native);
    assert_eq!(loaded.forecaster.scaler(), keras.scaler);
    registry
        .objects()
        .delete_prefix(&format!("{experiment}/"))
        .await
        .expect("deletes");
    store.drop_schema().await.expect("drops");
}
