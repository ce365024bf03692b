//! The local node's test images stand in for the official ones without changing a pod spec: the
//! objects the operator builds with the images `deploy/local-cluster.sh` makes (the values it
//! gives the chart) differ from those built with the chart's defaults in image names only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

use serde_json::Value;
use std::path::Path;
use wattcast_crds::PipelineExperiment;
use wattcast_operator::experiment_ref::ExperimentRef;
use wattcast_operator::images::Images;
use wattcast_operator::resources::{DesiredObjects, desired_objects};

/// The chart values `deploy/local-cluster.sh image-values` prints.
fn local_images() -> Images {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::process::Command::new("bash")
        .arg(repo.join("deploy/local-cluster.sh"))
        .arg("image-values")
        .output()
        .expect("bash runs deploy/local-cluster.sh");
    assert!(
        output.status.success(),
        "image-values failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let values: Value = serde_yaml::from_slice(&output.stdout).expect("the values are YAML");
    let image = |key: &str| {
        values["images"][key]
            .as_str()
            .unwrap_or_else(|| panic!("images.{key} in {values}"))
            .to_owned()
    };
    Images {
        wattcast: image("wattcast"),
        mosquitto: image("mosquitto"),
        pulsar: image("pulsar"),
        postgres: image("postgres"),
        rustfs: image("rustfs"),
    }
}

fn experiment(yaml: &str) -> ExperimentRef {
    let mut experiment: PipelineExperiment = serde_yaml::from_str(yaml).expect("a valid experiment");
    experiment.metadata.namespace = Some("lab".to_owned());
    experiment.metadata.uid = Some("0000-1111".to_owned());
    ExperimentRef::new(&experiment).expect("complete metadata")
}

/// Every object as JSON, with each `image` field replaced by what `rename` makes of it.
fn as_json(objects: &DesiredObjects, rename: &dyn Fn(&str) -> String) -> Vec<Value> {
    fn walk(value: &mut Value, rename: &dyn Fn(&str) -> String, images: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, field) in map.iter_mut() {
                    if key == "image"
                        && let Value::String(image) = field
                    {
                        images.push(image.clone());
                        *image = rename(image);
                    } else {
                        walk(field, rename, images);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| walk(item, rename, images)),
            _ => {}
        }
    }
    let mut all: Vec<Value> = Vec::new();
    let mut push = |object: Value| all.push(object);
    objects
        .config_maps
        .iter()
        .for_each(|o| push(serde_json::to_value(o).unwrap()));
    objects
        .services
        .iter()
        .for_each(|o| push(serde_json::to_value(o).unwrap()));
    objects
        .deployments
        .iter()
        .for_each(|o| push(serde_json::to_value(o).unwrap()));
    objects
        .stateful_sets
        .iter()
        .for_each(|o| push(serde_json::to_value(o).unwrap()));
    objects
        .jobs
        .iter()
        .for_each(|o| push(serde_json::to_value(o).unwrap()));
    objects
        .network_policies
        .iter()
        .for_each(|o| push(serde_json::to_value(o).unwrap()));
    let mut images = Vec::new();
    for object in &mut all {
        walk(object, rename, &mut images);
    }
    assert!(!images.is_empty(), "the objects name images");
    all
}

#[test]
fn local_test_images_change_nothing_but_the_image_names() {
    let official = Images::default();
    let local = local_images();
    let pairs = [
        (official.wattcast.clone(), local.wattcast.clone()),
        (official.mosquitto.clone(), local.mosquitto.clone()),
        (official.pulsar.clone(), local.pulsar.clone()),
        (official.postgres.clone(), local.postgres.clone()),
        (official.rustfs.clone(), local.rustfs.clone()),
    ];
    for (official_image, local_image) in &pairs {
        assert_ne!(
            official_image, local_image,
            "the local node has images of its own"
        );
    }
    // Local names mapped back to the official ones they stand for.
    let to_official = |image: &str| {
        pairs
            .iter()
            .find(|(_, local_image)| local_image == image)
            .map_or_else(|| image.to_owned(), |(official_image, _)| official_image.clone())
    };
    let unchanged = |image: &str| image.to_owned();
    for yaml in [
        "metadata: { name: exp-a }\nspec: { architecture: Streaming, devices: { count: 3 }, dataset: { scenario: MissingTimestamps } }",
        "metadata: { name: exp-b }\nspec: { architecture: Batching, devices: { count: 2 }, dataset: { scenario: InOrder } }",
    ] {
        let experiment = experiment(yaml);
        let with_official = desired_objects(&experiment, &official).expect("objects build");
        let with_local = desired_objects(&experiment, &local).expect("objects build");
        assert_eq!(
            as_json(&with_local, &to_official),
            as_json(&with_official, &unchanged),
            "the pod specs differ in more than image names"
        );
    }
}
