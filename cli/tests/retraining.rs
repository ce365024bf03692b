//! Retraining in the running pipeline: the coordinator asks, the trainer trains on the latest
//! stored readings and publishes, and the coordinator swaps the new model in without dropping a
//! window.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wattcast_core::experiment::read_experiment;
use wattcast_core::topics::ExperimentNames;
use wattcast_crds::GoDuration;
use wattcast_io::store::Store;
use wattcast_pipeline::local::{LocalOptions, run_local};
use wattcast_pipeline::workload::forecasting::ForecastStats;
use wattcast_pipeline::workload::sensor::ReplayHold;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrained_models_are_swapped_in_mid_run() {
    let path = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../data/experiments/smoke.yaml");
    let mut experiment = read_experiment(&path).expect("smoke.yaml reads");
    experiment.metadata.name = Some("retraining".to_owned());
    // 15 minutes of data in 15 s; a retrain every 5 minutes of event time.
    experiment.spec.replay.speedup = 60.0;
    experiment.spec.forecasting.retrain_every = "5m".parse::<GoDuration>().expect("duration");
    experiment.spec.forecasting.model.epochs = 10;
    // Two trainers share the devices' requests (Key_Shared): each device is still retrained.
    experiment.spec.forecasting.trainers = 2;
    let services = common::services();
    // The replay holds after 11 minutes of data (two retrain requests per device made) until the
    // coordinator has swapped a retrained model in for every device: the windows after the hold
    // must be forecast by retrained models, however long training and loading take here.
    let hold = ReplayHold {
        at: Duration::from_secs_f64(11.0 * 60.0 / experiment.spec.replay.speedup),
        reached: CancellationToken::new(),
        release: CancellationToken::new(),
    };
    let forecast_stats = Arc::new(ForecastStats::default());
    let watcher = tokio::spawn({
        let (hold, stats) = (hold.clone(), forecast_stats.clone());
        async move {
            hold.reached.cancelled().await;
            while stats.model_swaps.get() < 2 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            hold.release.cancel();
        }
    });
    let options = LocalOptions {
        hold_replay: Some(hold),
        forecast_stats: Some(forecast_stats.clone()),
        ..LocalOptions::new(services.clone())
    };
    let summary = common::reachable("the pipeline's services", run_local(&experiment, options).await);
    watcher.await.expect("the watcher saw every device retrained");
    assert_eq!(
        summary.forecasts, summary.windows,
        "no window went unforecast across the swaps"
    );
    assert!(
        summary.retrains >= 2,
        "a retrain per device at least: {summary:?}"
    );
    // wattcast's own models, initial and retrained, all run on the native evaluator, and each
    // load is counted by engine.
    assert_eq!(forecast_stats.models_tract.get(), 0);
    // Every forecast's model age is measured, and none is negative (no model forecast data it
    // was trained on).
    let age = summary.model_age.expect("model ages measured");
    assert!(
        age.forecasts > 0 && age.forecasts < summary.forecasts,
        "retrained models' forecasts only: {age:?}"
    );
    assert!(age.p50_s >= 0.0 && age.max_s >= 0, "{age:?}");
    assert_eq!(
        forecast_stats.models_native.get(),
        2 + forecast_stats.model_swaps.get(),
        "the two initial models and every swap"
    );

    let names = ExperimentNames::new("retraining").expect("valid name");
    let store = Store::connect(&services.postgres, &names.postgres_schema(), 2)
        .await
        .expect("connects");
    // Per device: the model versions its forecasts used, in window order.
    let used: Vec<(i32, i64, String)> = sqlx::query_as(
        "SELECT DISTINCT device, origin, model_version FROM forecasts ORDER BY device, origin",
    )
    .fetch_all(store.pool())
    .await
    .expect("forecasts read");
    for device in 1..=2 {
        let versions: Vec<&str> = used
            .iter()
            .filter(|(d, _, _)| *d == device)
            .map(|(_, _, v)| v.as_str())
            .collect();
        assert_eq!(
            versions.first(),
            Some(&"initial"),
            "device {device} starts with its initial model"
        );
        let first_retrained = versions
            .iter()
            .position(|v| *v != "initial")
            .unwrap_or_else(|| panic!("device {device} never swapped: {versions:?}"));
        assert!(
            versions[first_retrained..].iter().all(|v| *v != "initial"),
            "device {device} went back to its initial model: {versions:?}"
        );
    }
    // Each retrained model was trained on stored readings before the first window it forecast.
    let (misordered,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM models m
         JOIN (SELECT device, model_version, min(origin) AS first_origin FROM forecasts GROUP BY 1, 2) f
           ON f.device = m.device AND f.model_version = m.version
         WHERE m.version <> 'initial' AND (m.data_to >= f.first_origin OR m.readings < 122)",
    )
    .fetch_one(store.pool())
    .await
    .expect("models read");
    assert_eq!(misordered, 0);
}
