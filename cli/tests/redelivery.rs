//! The workloads as separate processes on the real services: the windower and the coordinator
//! are killed (SIGKILL) mid-run and restarted; no reading is lost and none is stored twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use wattcast_core::experiment::read_experiment;

const EXPERIMENT: &str = r#"
apiVersion: wattcast.io/v1alpha1
kind: PipelineExperiment
metadata: { name: redelivery }
spec:
  architecture: Streaming
  devices: { count: 2 }
  dataset: { scenario: MissingTimestamps, seed: 7, duration: 20m, jitter: 8s }
  replay: { speedup: 120 }
  windowing:
    size: 1m
    watermark: { strategy: BoundedOutOfOrderness, maxOutOfOrderness: 5s, idleTimeout: 1m }
"#;

fn workload(kind: &str, experiment: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_wattcast"))
        .args([
            kind,
            "--experiment",
            experiment.to_str().unwrap(),
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env("WATTCAST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("starting wattcast {kind}: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_windower_and_coordinator_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("redelivery.yaml");
    std::fs::write(&file, EXPERIMENT).unwrap();
    let experiment = read_experiment(&file).unwrap();
    let (_, store) = common::fresh_experiment("redelivery").await;

    let mut bridge = workload("bridge", &file);
    let mut windower = workload("windower", &file);
    let mut coordinator = workload("coordinator", &file);
    tokio::time::sleep(Duration::from_secs(3)).await; // the bridge subscribes before sensors send
    let mut sensor = workload("sensor", &file);

    // 20 minutes of data at 120x take ten seconds: crash both mid-run, then restart them.
    tokio::time::sleep(Duration::from_secs(4)).await;
    windower.start_kill().unwrap();
    coordinator.start_kill().unwrap();
    windower.wait().await.unwrap();
    coordinator.wait().await.unwrap();
    let arrived_at_crash = store.arrived().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut windower = workload("windower", &file);
    let mut coordinator = workload("coordinator", &file);

    let status = common::within(120, "the sensor", sensor.wait()).await.unwrap();
    assert!(status.success(), "the sensor exits 0 when its data is sent");

    let expected = common::generated(&experiment);
    let deadline = Instant::now() + Duration::from_secs(120);
    while (store.arrived().await.unwrap() as usize) < expected.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for child in [&mut bridge, &mut windower, &mut coordinator] {
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
    assert!(
        arrived_at_crash > 0 && (arrived_at_crash as usize) < expected.len(),
        "the crash happened mid-run ({arrived_at_crash} stored)"
    );

    let stored = common::arrived(&store).await;
    let lost: Vec<_> = expected
        .keys()
        .filter(|key| !stored.contains_key(key))
        .take(5)
        .collect();
    assert!(
        lost.is_empty(),
        "{} readings lost, e.g. {lost:?}",
        expected.len() - stored.len()
    );
    assert_eq!(stored, expected);
}
