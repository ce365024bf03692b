//! Every experiment manifest in `data/experiments/` is what `wattcast local` reads and what the
//! API server accepts: each document is created, as written, in a real API server (envtest)
//! that enforces the CRD's schema and CEL rules (with the ConfigMaps some files carry for their
//! datasets).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde::Deserialize;
use std::path::PathBuf;
use wattcast_crds::PipelineExperiment;

/// Every YAML document of every file in `data/experiments/`, with the file it came from.
fn manifests() -> Vec<(String, serde_json::Value)> {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../data/experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    let mut documents = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
            documents.push((file.display().to_string(), value));
        }
    }
    documents
}

#[tokio::test]
async fn every_experiment_manifest_is_accepted_by_the_api_server() {
    let documents = manifests();
    let files: std::collections::BTreeSet<&str> = documents.iter().map(|(file, _)| file.as_str()).collect();
    assert!(files.len() >= 6, "smoke, e2e and the four experiments: {files:?}");
    let (experiments, others): (Vec<_>, Vec<_>) = documents
        .into_iter()
        .partition(|(_, document)| document["kind"] == "PipelineExperiment");
    assert!(
        others.iter().all(|(_, document)| document["kind"] == "ConfigMap"),
        "only experiments and their datasets' ConfigMaps"
    );
    let documents = experiments;
    let mut names = std::collections::BTreeSet::new();
    for (file, document) in &documents {
        let typed: PipelineExperiment =
            serde_json::from_value(document.clone()).unwrap_or_else(|error| panic!("{file}: {error}"));
        let name = typed
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| panic!("{file}: no metadata.name"));
        assert!(
            names.insert(name.clone()),
            "{file}: the name {name} is used twice"
        );
    }

    let server = common::start_api_server().await;
    let client = server.client().expect("a client for the envtest API server");
    common::create_namespace(&client, "experiments").await;
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "experiments");
    for (file, document) in others {
        let map = serde_json::from_value(document).unwrap_or_else(|error| panic!("{file}: {error}"));
        maps.create(&PostParams::default(), &map)
            .await
            .unwrap_or_else(|error| panic!("the API server refused the ConfigMap of {file}: {error}"));
    }
    let resource = ApiResource::erase::<PipelineExperiment>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client, "experiments", &resource);
    for (file, document) in documents {
        let object: DynamicObject = serde_json::from_value(document).expect("an object");
        api.create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|error| panic!("the API server refused {file}: {error}"));
    }
}
