//! A real kube-apiserver (envtest, binaries built by test-env/up) installs the
//! PipelineExperiment CRD, serves Namespaces, and enforces the CRD's schema and CEL rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use wattcast_crds::PipelineExperiment;

fn experiment(name: &str, spec: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "wattcast.io/v1alpha1",
        "kind": "PipelineExperiment",
        "metadata": { "name": name, "namespace": "smoke" },
        "spec": spec,
    })
}

#[tokio::test]
async fn the_api_server_installs_the_crd_and_serves_namespaces() {
    let server = common::start_api_server().await;
    let client = server.client().expect("a client for the envtest API server");

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get("pipelineexperiments.wattcast.io").await.unwrap();
    let established = crd
        .status
        .and_then(|status| status.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|condition| condition.type_ == "Established" && condition.status == "True");
    assert!(established, "the CRD is established");

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": "smoke" } })).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let read = namespaces.get("smoke").await.unwrap();
    assert_eq!(read.metadata.name.as_deref(), Some("smoke"));

    // The API server applies the schema's defaults and CEL rules.
    let experiments: Api<PipelineExperiment> = Api::namespaced(client.clone(), "smoke");
    let valid: PipelineExperiment = serde_json::from_value(experiment(
        "valid",
        serde_json::json!({ "architecture": "Streaming", "devices": { "count": 2 }, "dataset": { "scenario": "InOrder" } }),
    ))
    .unwrap();
    let created = experiments.create(&PostParams::default(), &valid).await.unwrap();
    assert_eq!(created.spec.forecasting.model.hidden, 25);
    assert_eq!(created.spec.windowing.size.as_str(), "1m");

    let invalid: PipelineExperiment = serde_json::from_value(experiment(
        "ramp-up-with-one-device",
        serde_json::json!({
            "architecture": "Streaming",
            "devices": { "count": 1, "rampUp": { "every": "5m" } },
            "dataset": { "scenario": "InOrder" }
        }),
    ))
    .unwrap();
    let error = experiments
        .create(&PostParams::default(), &invalid)
        .await
        .expect_err("the API server must refuse rampUp with one device");
    assert!(
        error.to_string().contains("rampUp needs more than one device"),
        "{error}"
    );

    server.destroy().await.unwrap();
}
