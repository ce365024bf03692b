//! Shared by the envtest integration tests: start a real API server with the CRD installed.

#![allow(dead_code)]

use k8s_openapi::api::core::v1::Namespace;
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use std::path::Path;
use wattcast_crds::PipelineExperiment;

/// KUBEBUILDER_ASSETS from the environment or test-env/.env; panics naming `make test-env`.
pub fn kubebuilder_assets() -> String {
    if let Some(assets) = std::env::var("KUBEBUILDER_ASSETS")
        .ok()
        .filter(|value| !value.is_empty())
    {
        return assets;
    }
    let env_file =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
            .join("../test-env/.env");
    dotenvy::from_path_iter(&env_file)
        .ok()
        .and_then(|entries| entries.flatten().find(|(key, _)| key == "KUBEBUILDER_ASSETS"))
        .map(|(_, value)| value)
        .unwrap_or_else(|| {
            panic!(
                "KUBEBUILDER_ASSETS is not set and {} does not define it; build kube-apiserver and etcd with `make test-env`",
                env_file.display()
            )
        })
}

/// Starts kube-apiserver and etcd through envtest with the PipelineExperiment CRD installed.
pub async fn start_api_server() -> envtest::Server {
    // Built together with the workloads, rustls has both ring and aws-lc-rs enabled and cannot
    // pick one by itself; kube's default is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let assets = kubebuilder_assets();
    for binary in ["kube-apiserver", "etcd"] {
        assert!(
            Path::new(&assets).join(binary).exists(),
            "{assets}/{binary} is missing; build it with `make test-env`"
        );
    }
    let environment = envtest::Environment {
        binary_assets_settings: envtest::BinaryAssetsSettings {
            download_binary_assets: false,
            binary_assets_directory: Some(assets),
            ..Default::default()
        },
        ..Default::default()
    }
    .with_crds(PipelineExperiment::crd())
    .expect("the CRD serialises");
    environment
        .create()
        .await
        .unwrap_or_else(|error| panic!("envtest could not start kube-apiserver and etcd: {error}"))
}

/// Creates a namespace.
pub async fn create_namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": name } })).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
}
