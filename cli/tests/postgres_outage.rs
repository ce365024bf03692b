//! PostgreSQL stopped for a few seconds in the middle of a run: the coordinator retries, and
//! every reading is still stored exactly once. Its own test binary, because it stops the
//! database other tests would use.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wattcast_core::experiment::read_experiment;
use wattcast_core::topics::ExperimentNames;
use wattcast_io::store::Store;
use wattcast_pipeline::local::{LocalOptions, run_local};
use wattcast_pipeline::workload::sensor::ReplayHold;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_retried_and_loses_nothing() {
    let services = common::services();
    let path =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
            .join("../data/experiments/smoke.yaml");
    let mut experiment = read_experiment(&path).unwrap();
    experiment.metadata.name = Some("postgres-outage".to_owned());
    experiment.spec.dataset.duration = "30m".parse().unwrap();
    experiment.spec.replay.speedup = 60.0;

    // Thirty minutes at 60x take thirty seconds. The replay holds after five minutes of data —
    // setup is over and readings flow — while PostgreSQL is stopped for five seconds in the
    // background, then goes on: the outage falls inside the run however slow the machine is.
    let hold = ReplayHold {
        at: Duration::from_secs_f64(5.0 * 60.0 / experiment.spec.replay.speedup),
        reached: CancellationToken::new(),
        release: CancellationToken::new(),
    };
    let script =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
            .join("../test-env/pause-postgres");
    let outage = tokio::spawn({
        let hold = hold.clone();
        async move {
            hold.reached.cancelled().await;
            let pause = tokio::process::Command::new(script).arg("5").spawn();
            hold.release.cancel();
            let status = pause?.wait().await;
            status.map(|status| (status, Instant::now()))
        }
    });
    let summary = common::reachable(
        "the pipeline's services",
        run_local(
            &experiment,
            LocalOptions {
                services: services.clone(),
                drain_timeout: Duration::from_secs(120),
                progress: false,
                models_bucket: wattcast_io::object_store::DEFAULT_BUCKET.to_owned(),
                initial_models: true,
                hold_replay: Some(hold),
                forecast_stats: None,
                dataset: None,
                model_dir: None,
            },
        )
        .await,
    );
    let run_ended = Instant::now();
    let (status, outage_ended) = outage.await.unwrap().unwrap();
    assert!(
        status.success(),
        "test-env/pause-postgres failed; is the test env's own PostgreSQL running (`make test-env`)?"
    );
    // Whether the coordinator saw errors and retried, or its connection pool waited for the
    // server, nothing may be lost — and the run drained only after PostgreSQL was back.
    assert!(
        outage_ended < run_ended,
        "the run ended before the outage was over"
    );

    let expected = common::generated(&experiment);
    let store = Store::connect(
        &services.postgres,
        &ExperimentNames::new("postgres-outage").unwrap().postgres_schema(),
        2,
    )
    .await
    .unwrap();
    let stored = common::arrived(&store).await;
    assert_eq!(stored, expected);
    assert_eq!(summary.readings_stored + summary.late, expected.len() as i64);
}
