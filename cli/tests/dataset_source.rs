//! A user's own dataset: the original project's device CSVs (devices 2–4 of
//! `../shared/reference`, 40 minutes each) replayed by `wattcast local` from an S3 object, every
//! reading stored under the experiment's device its file id maps to; and a file that does not fit
//! the spec refused naming file, device and count before anything is changed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wattcast_core::dataset::{BadRowPolicy, read_dataset};
use wattcast_core::topics::ExperimentNames;
use wattcast_crds::PipelineExperiment;
use wattcast_io::object_store::ObjectStore;
use wattcast_io::store::Store;
use wattcast_pipeline::local::{LocalOptions, run_local};

fn reference(device: u32) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    wattcast_core::dataset::thesis_data::thesis_device_csv(&repo, device)
        .unwrap_or_else(|error| panic!("{error}"))
}

/// Devices 2, 3 and 4 in one CSV, as a user would put them into one ConfigMap key or object.
fn three_devices_csv() -> Vec<u8> {
    let mut csv = String::new();
    for device in 2..=4 {
        let path = reference(device);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "{}: {error} (the reference data lives in ../shared/reference)",
                path.display()
            )
        });
        let mut lines = text.lines();
        let header = lines.next().expect("a header");
        if csv.is_empty() {
            csv.push_str(header);
            csv.push('\n');
        }
        for line in lines {
            csv.push_str(line);
            csv.push('\n');
        }
    }
    csv.into_bytes()
}

fn experiment(name: &str, devices: u32, dataset: &str, look_back: u32) -> PipelineExperiment {
    serde_yaml::from_str(&format!(
        "apiVersion: wattcast.io/v1alpha1
kind: PipelineExperiment
metadata: {{ name: {name} }}
spec:
  architecture: Streaming
  devices: {{ count: {devices} }}
  dataset: {dataset}
  replay: {{ speedup: 600 }}
  windowing: {{ size: 1m, watermark: {{ strategy: BoundedOutOfOrderness, maxOutOfOrderness: 5s }} }}
  forecasting: {{ lookBack: {look_back}, retrainEvery: 20m, model: {{ epochs: 5 }} }}
  infrastructure: {{ objectStore: {{ url: 'http://127.0.0.1:9000', credentialsSecret: s3 }} }}
"
    ))
    .expect("a valid experiment")
}

fn options(dataset: Option<PathBuf>) -> LocalOptions {
    LocalOptions {
        dataset,
        ..LocalOptions::new(common::services())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_dataset_is_replayed_end_to_end_by_wattcast_local() {
    let services = common::services();
    let name = common::unique("own-data");
    let _cleanup = common::Cleanup::experiment(
        &wattcast_core::topics::ExperimentNames::new(&name).expect("a valid name"),
    );
    let key = format!("{name}/devices.csv");
    let datasets = ObjectStore::new(&services.s3, "wattcast-datasets");
    common::reachable("S3", datasets.ensure_bucket().await);
    datasets.put(&key, three_devices_csv()).await.expect("uploaded");

    let source = format!("{{ source: {{ s3: {{ bucket: wattcast-datasets, key: '{key}' }} }} }}");
    let experiment = experiment(&name, 3, &source, 60);
    let summary = common::reachable(
        "the pipeline's services",
        run_local(&experiment, options(None)).await,
    );

    // What the files hold, under the devices their ids map to: 2 → 1, 3 → 2, 4 → 3.
    let mut expected = BTreeMap::new();
    for (device, file) in [(1, 2), (2, 3), (3, 4)] {
        for reading in read_dataset(&reference(file), BadRowPolicy::FailFast)
            .unwrap()
            .readings
        {
            expected.insert((device, reading.event_time), reading.power_w);
        }
    }
    assert_eq!(expected.len(), 3 * 2400);
    assert_eq!(summary.readings_sent, 3 * 2400);
    assert_eq!(summary.readings_stored + summary.late, 3 * 2400);
    assert_eq!(summary.dead_letters, 0);
    let names = ExperimentNames::new(&name).unwrap();
    let store = Store::connect(&services.postgres, &names.postgres_schema(), 1)
        .await
        .unwrap();
    assert_eq!(common::arrived(&store).await, expected);
    // In-order data with no gaps: 40 full windows per device, each forecast.
    assert_eq!(summary.windows, 3 * 40);
    assert_eq!(summary.complete_windows, 3 * 40);
    assert_eq!(summary.forecasts, summary.windows);
    datasets.delete_prefix(&format!("{name}/")).await.unwrap();
}

/// A missing object is the user's mistake (refused at once, naming it), not an outage to retry.
#[tokio::test]
async fn a_missing_s3_dataset_is_refused_at_once() {
    let services = common::services();
    let datasets = ObjectStore::new(&services.s3, "wattcast-datasets");
    common::reachable("S3", datasets.ensure_bucket().await);
    let key = format!("{}/nothing-here.csv", common::unique("missing"));
    let source = format!("{{ source: {{ s3: {{ bucket: wattcast-datasets, key: '{key}' }} }} }}");
    let spec = experiment("missing-data", 3, &source, 60).spec;
    let error = wattcast_io::dataset_source::DataSource::of(&spec, None)
        .unwrap()
        .load(&spec, Some(&services.s3))
        .await
        .expect_err("no such object");
    assert!(error.is_permanent(), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "downloading the dataset s3://wattcast-datasets/{key}: s3://wattcast-datasets/{key} does not exist"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_that_does_not_fit_the_spec_is_refused_naming_file_device_and_count() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("lab.csv");
    std::fs::write(&file, three_devices_csv()).unwrap();
    let generated = "{ scenario: InOrder, duration: 5m }";

    let too_many = experiment("refused-devices", 5, generated, 60);
    let error = run_local(&too_many, options(Some(file.clone())))
        .await
        .expect_err("5 devices from a file of 3");
    assert_eq!(
        format!("{error:#}"),
        format!(
            "{}: has 3 device(s) (ids 2, 3, 4) but spec.devices.count is 5; give the file more devices or lower the count",
            file.display()
        )
    );

    let long_look_back = experiment("refused-readings", 3, generated, 1500);
    let error = run_local(&long_look_back, options(Some(file.clone())))
        .await
        .expect_err("2400 readings cannot train a look-back of 1500");
    assert_eq!(
        format!("{error:#}"),
        format!(
            "{}: device 2 (the experiment's device 1) has 2400 reading(s); spec.forecasting.lookBack 1500 needs at least 3002 (lookBack + 1 in each half of the initial model's data)",
            file.display()
        )
    );
}
