//! `wattcast local` on the real services: every reading sent is stored exactly once (or stored
//! as late), and the windows match what the offline preview computes for the same data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use wattcast_core::dataset::generate::generate_device;
use wattcast_core::experiment::{generate_options, read_experiment, window_config};
use wattcast_core::preview::preview;
use wattcast_core::topics::ExperimentNames;
use wattcast_core::{DeviceId, Reading};
use wattcast_crds::{Architecture, PipelineExperiment, Scenario};
use wattcast_io::store::Store;
use wattcast_pipeline::local::{LocalOptions, run_local};

fn smoke(name: &str) -> PipelineExperiment {
    let path =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
            .join("../data/experiments/smoke.yaml");
    let mut experiment = read_experiment(&path).unwrap();
    experiment.metadata.name = Some(name.to_owned());
    experiment
}

/// The smoke experiment as Batching on in-order data (every window complete).
fn batching_in_order(name: &str) -> PipelineExperiment {
    let mut experiment = smoke(name);
    experiment.spec.architecture = Architecture::Batching;
    experiment.spec.dataset.scenario = Some(Scenario::InOrder);
    experiment.spec.dataset.jitter = None;
    experiment
}

fn options() -> LocalOptions {
    LocalOptions::new(common::services())
}

async fn store_of(experiment: &PipelineExperiment) -> Store {
    let names = ExperimentNames::new(experiment.metadata.name.as_deref().unwrap()).unwrap();
    Store::connect(&common::services().postgres, &names.postgres_schema(), 2)
        .await
        .unwrap()
}

/// Each device's generated readings in arrival order.
fn per_device(experiment: &PipelineExperiment) -> Vec<(DeviceId, Vec<Reading>)> {
    let options = generate_options(&experiment.spec).unwrap();
    (1..=experiment.spec.devices.count)
        .map(|device| {
            (
                DeviceId(device),
                generate_device(&options, DeviceId(device)).readings,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_stores_every_reading_once_and_matches_the_preview() {
    let experiment = smoke("pipeline-streaming");
    let summary = common::reachable("the pipeline's services", run_local(&experiment, options()).await);
    let data = per_device(&experiment);

    let sent: usize = data.iter().map(|(_, readings)| readings.len()).sum();
    assert_eq!(summary.readings_sent, sent as u64);
    assert_eq!(summary.readings_stored + summary.late, sent as i64);
    assert_eq!(summary.dead_letters, 0);

    // Exactly the generated readings arrived, each once, with its value.
    let store = store_of(&experiment).await;
    let expected = common::generated(&experiment);
    assert_eq!(common::arrived(&store).await, expected);

    // Windows, their fill and the late readings are what the preview computes for the same
    // arrival order and watermark.
    let config = window_config(&experiment.spec).unwrap();
    let mut expected_windows = BTreeMap::new();
    let mut expected_late = 0;
    for (_, readings) in &data {
        let result = preview(readings, config);
        expected_late += result.summary.late;
        for line in result.windows {
            expected_windows.insert((line.device.0 as i32, line.window_start), line.received as i32);
        }
    }
    let stored_windows: BTreeMap<(i32, i64), i32> =
        sqlx::query_as::<_, (i32, i64, i32)>("SELECT device, window_start, received FROM windows")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .into_iter()
            .map(|(device, start, received)| ((device, start), received))
            .collect();
    assert_eq!(stored_windows, expected_windows);
    assert_eq!(summary.late, expected_late as i64);

    // Every window is filled to 60 seconds, imputed seconds marked; latency is measured.
    assert_eq!(
        summary.readings_stored + summary.readings_imputed,
        summary.windows * 60
    );
    let (unstamped,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM readings WHERE NOT imputed AND published_ms IS NULL")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(unstamped, 0);
    let latency = summary.latency_ms.expect("latency measured");
    assert!(latency.p50 >= 0.0 && latency.p50 <= latency.p95 && latency.p95 <= latency.p99);
    assert!(
        summary.retrain_requests >= 2,
        "15 minutes of 2 devices with retrainEvery 10m"
    );
    assert_forecasts(&summary, &store).await;
}

/// Every window was forecast (initial models exist and windows are filled to the look-back),
/// each forecast holds `horizon` values made by a recorded model, and they were scored.
async fn assert_forecasts(summary: &wattcast_pipeline::local::LocalSummary, store: &Store) {
    assert_eq!(summary.forecasts, summary.windows, "one forecast per window");
    // The operator's cheap counts (read every poll) are the summary's.
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (
            counts.readings_stored,
            counts.windows,
            counts.late,
            counts.forecasts
        ),
        (
            summary.readings_stored,
            summary.windows,
            summary.late,
            summary.forecasts
        )
    );
    assert!(summary.models >= 2, "an initial model per device");
    let accuracy = summary
        .accuracy
        .expect("forecasts scored against measured readings");
    assert!(accuracy.scored > 0 && accuracy.rmse.is_finite() && accuracy.mae <= accuracy.rmse);
    let (malformed,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT device, origin, count(*) AS n, min(model_version) AS version,
                                      count(DISTINCT model_version) AS versions
                               FROM forecasts GROUP BY device, origin) f
         WHERE n <> 60 OR versions <> 1
            OR NOT EXISTS (SELECT 1 FROM models m WHERE m.device = f.device AND m.version = f.version)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(malformed, 0, "forecasts of 60 values, each by one recorded model");
    let (misplaced,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM forecasts f
         WHERE NOT EXISTS (SELECT 1 FROM windows w WHERE w.device = f.device AND w.window_end = f.origin)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(misplaced, 0, "each forecast starts where a stored window ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batching_in_order_data_gives_complete_windows() {
    let experiment = batching_in_order("pipeline-batching");
    let summary = common::reachable("the pipeline's services", run_local(&experiment, options()).await);

    assert_eq!(summary.readings_sent, 2 * 15 * 60);
    assert_eq!(summary.readings_stored, 2 * 15 * 60);
    assert_eq!(summary.readings_imputed, 0);
    assert_eq!(summary.late, 0);
    assert_eq!(summary.windows, 30);
    assert_eq!(summary.complete_windows, 30);
    assert_eq!(summary.coverage, Some(1.0));
    assert_eq!(summary.dead_letters, 0);

    let store = store_of(&experiment).await;
    let expected = common::generated(&experiment);
    assert_eq!(common::arrived(&store).await, expected);
    assert_forecasts(&summary, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keras_model_from_the_spec_forecasts_the_whole_run_when_never_retrained() {
    let mut experiment = batching_in_order("pipeline-own-model");
    experiment.spec.forecasting.retrain = wattcast_crds::Retrain::Never;
    experiment.spec.forecasting.model.source = Some(wattcast_crds::ModelSource {
        config_map: Some(wattcast_crds::ConfigMapName {
            name: "keras-lstm".to_owned(),
        }),
        s3: None,
    });
    let stats = std::sync::Arc::new(wattcast_pipeline::workload::forecasting::ForecastStats::default());
    let keras = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras-lstm");
    let options = LocalOptions {
        model_dir: Some(keras),
        forecast_stats: Some(stats.clone()),
        ..options()
    };
    let summary = common::reachable("the pipeline's services", run_local(&experiment, options).await);
    assert_eq!((summary.readings_stored, summary.windows), (2 * 15 * 60, 30));
    assert_eq!(
        (summary.retrain_requests, summary.retrains),
        (0, 0),
        "never retrained"
    );
    assert_eq!(summary.models, 2, "the one model, as each device's initial model");
    let store = store_of(&experiment).await;
    assert_forecasts(&summary, &store).await;
    let (versions,): (Vec<String>,) =
        sqlx::query_as("SELECT array_agg(DISTINCT model_version) FROM forecasts")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(versions, ["initial"]);
    assert!(
        stats.models_native.get() >= 2,
        "the Keras export runs on the native evaluator"
    );
    assert_eq!(stats.models_tract.get(), 0);
}
