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
    start(true).await
}

/// Starts kube-apiserver and etcd through envtest without any CRD (for installing the chart).
pub async fn start_bare_api_server() -> envtest::Server {
    start(false).await
}

async fn start(with_crd: bool) -> envtest::Server {
    // In test builds envtest's kube enables rustls's ring beside aws-lc-rs, so rustls cannot
    // pick a provider by itself: install aws-lc-rs, as the binaries do.
    wattcast_io::tls::ensure_default_provider();
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
    };
    let environment = if with_crd {
        environment
            .with_crds(PipelineExperiment::crd())
            .expect("the CRD serialises")
    } else {
        environment
    };
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

/// A value from the environment or test-env/.env.
fn test_env_value(key: &str) -> Option<String> {
    if let Some(value) = std::env::var(key).ok().filter(|value| !value.is_empty()) {
        return Some(value);
    }
    let env_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-env/.env");
    dotenvy::from_path_iter(&env_file)
        .ok()?
        .flatten()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

/// The helm binary test-env built (WATTCAST_HELM); panics naming `make test-env`.
pub fn helm() -> std::path::PathBuf {
    let helm = test_env_value("WATTCAST_HELM").unwrap_or_else(|| {
        panic!(
            "WATTCAST_HELM is not set in the environment or test-env/.env; build helm with `make test-env`"
        )
    });
    assert!(
        Path::new(&helm).exists(),
        "{helm} is missing; build it with `make test-env`"
    );
    helm.into()
}

/// The chart's directory.
pub fn chart_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/wattcast")
}

/// Runs helm with `args`; panics with its output when it fails.
pub fn run_helm(args: &[&str]) -> String {
    let output = std::process::Command::new(helm())
        .args(args)
        .output()
        .expect("helm runs");
    assert!(
        output.status.success(),
        "helm {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The values naming the wattcast images, as `make deploy` sets them (the chart has no default:
/// the images are published nowhere).
pub const BUILT_IMAGES: [&str; 3] = [
    "image.repository=ghcr.io/wattcast/wattcast-operator",
    "image.tag=0.1.0",
    "images.wattcast=ghcr.io/wattcast/wattcast:0.1.0",
];

/// `helm template` of the chart into `namespace` with extra `--set` values: its documents.
pub fn render_chart(namespace: &str, sets: &[&str], only: &[&str]) -> Vec<serde_json::Value> {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        "wattcast",
        chart.to_str().expect("a UTF-8 path"),
        "--namespace",
        namespace,
        "--kube-version",
        "1.36.0",
    ];
    for set in BUILT_IMAGES {
        args.extend(["--set", set]);
    }
    for set in sets {
        args.extend(["--set", set]);
    }
    for template in only {
        args.extend(["--show-only", template]);
    }
    let rendered = run_helm(&args);
    serde_yaml::Deserializer::from_str(&rendered)
        .filter_map(|document| {
            let value: serde_json::Value =
                serde::Deserialize::deserialize(document).expect("helm renders YAML");
            (!value.is_null()).then_some(value)
        })
        .collect()
}

/// Server-side applies `documents` (any kinds, found through discovery); with `dry_run` the API
/// server validates them without storing. Panics naming a refused object.
pub async fn apply_documents(client: &kube::Client, documents: &[serde_json::Value], dry_run: bool) {
    use kube::api::{DynamicObject, Patch, PatchParams};
    use kube::discovery::{Discovery, Scope};
    let discovery = Discovery::new(client.clone()).run().await.expect("discovery");
    for document in documents {
        let object: DynamicObject = serde_json::from_value(document.clone()).expect("an object");
        let types = object.types.clone().expect("apiVersion and kind");
        let gvk = kube::api::GroupVersionKind::try_from(&types).expect("a group/version/kind");
        let (resource, capabilities) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("the API server does not serve {gvk:?}"));
        let name = object.metadata.name.clone().expect("named");
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Cluster => Api::all_with(client.clone(), &resource),
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                object.metadata.namespace.as_deref().unwrap_or("default"),
                &resource,
            ),
        };
        let mut params = PatchParams::apply("wattcast-test").force();
        params.dry_run = dry_run;
        api.patch(&name, &params, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|error| panic!("the API server refused {} {name}: {error}", types.kind));
    }
}

/// The namespace the chart is installed in by the tests.
pub const OPERATOR_NAMESPACE: &str = "wattcast-system";
/// The operator's ServiceAccount as the chart names it for release `wattcast`.
pub const OPERATOR_SERVICE_ACCOUNT: &str = "wattcast-operator";

/// A client that acts as the operator's ServiceAccount (impersonation), so everything it does
/// is checked against the chart's RBAC.
pub async fn operator_client(server: &envtest::Server) -> kube::Client {
    let mut kubeconfig = server.kubeconfig().expect("a kubeconfig");
    for named in &mut kubeconfig.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            auth.impersonate = Some(format!(
                "system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
            ));
            auth.impersonate_groups = Some(vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{OPERATOR_NAMESPACE}"),
                "system:authenticated".to_owned(),
            ]);
        }
    }
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .expect("a config from the kubeconfig");
    kube::Client::try_from(config).expect("a client")
}

/// Creates the operator's namespace and installs the chart's ServiceAccount and RBAC; returns
/// a client acting as that ServiceAccount (checked to be refused before the RBAC exists).
pub async fn install_operator_rbac(server: &envtest::Server) -> kube::Client {
    let admin = server.client().expect("a client");
    create_namespace(&admin, OPERATOR_NAMESPACE).await;
    let operator = operator_client(server).await;
    let experiments: Api<PipelineExperiment> = Api::all(operator.clone());
    assert!(
        experiments.list(&Default::default()).await.is_err(),
        "the API server must enforce RBAC: the ServiceAccount may not list experiments before the chart's RBAC exists"
    );
    let documents = render_chart(
        OPERATOR_NAMESPACE,
        &[],
        &["templates/serviceaccount.yaml", "templates/rbac.yaml"],
    );
    apply_documents(&admin, &documents, false).await;
    // RBAC takes effect within moments; wait until the operator may list experiments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while experiments.list(&Default::default()).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the chart's RBAC did not allow listing experiments"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    operator
}

/// Writes the server's kubeconfig to a file for helm and kubectl (removed on drop).
pub struct KubeconfigFile(pub std::path::PathBuf);

impl KubeconfigFile {
    /// The file for `server`, named after `purpose`.
    pub fn write(server: &envtest::Server, purpose: &str) -> Self {
        let path = std::env::temp_dir().join(format!("wattcast-{purpose}-{}.kubeconfig", std::process::id()));
        std::fs::write(
            &path,
            serde_yaml::to_string(&server.kubeconfig().expect("a kubeconfig")).expect("YAML"),
        )
        .expect("the kubeconfig written");
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for KubeconfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `helm install wattcast` of the chart into the operator's namespace; helm's output.
pub fn helm_install(kubeconfig: &KubeconfigFile) -> String {
    let chart = chart_dir();
    let mut args = vec![
        "install",
        "wattcast",
        chart.to_str().expect("a UTF-8 path"),
        "--namespace",
        OPERATOR_NAMESPACE,
        "--create-namespace",
        "--kubeconfig",
        kubeconfig.path(),
    ];
    for set in BUILT_IMAGES {
        args.extend(["--set", set]);
    }
    run_helm(&args)
}
