//! The Helm chart: lint-clean, its rendering accepted by a real API server (server-side dry-run,
//! with non-default values), installable with the helm binary into envtest, and its dashboard
//! querying only metrics the workloads and the operator export.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use common::{
    KubeconfigFile, OPERATOR_NAMESPACE, apply_documents, chart_dir, create_namespace, helm_install,
    render_chart, run_helm, start_bare_api_server,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn the_chart_lints_clean() {
    let chart = chart_dir();
    let mut args = vec![
        "lint",
        "--strict",
        chart.to_str().unwrap(),
        "--kube-version",
        "1.36.0",
    ];
    for set in common::BUILT_IMAGES {
        args.extend(["--set", set]);
    }
    let output = run_helm(&args);
    assert!(output.contains("0 chart(s) failed"), "{output}");
}

#[test]
fn bad_values_are_refused_by_the_schema() {
    let chart = chart_dir();
    let output = std::process::Command::new(common::helm())
        .args([
            "template",
            "x",
            chart.to_str().unwrap(),
            "--kube-version",
            "1.36.0",
            "--set",
            "operator.logFormat=xml",
        ])
        .output()
        .expect("helm runs");
    assert!(!output.status.success(), "logFormat=xml must be refused");
    assert!(String::from_utf8_lossy(&output.stderr).contains("logFormat"));
}

#[test]
fn installing_without_built_images_is_refused_saying_how_to_get_them() {
    let chart = chart_dir();
    let output = std::process::Command::new(common::helm())
        .args([
            "template",
            "x",
            chart.to_str().unwrap(),
            "--kube-version",
            "1.36.0",
        ])
        .output()
        .expect("helm runs");
    assert!(!output.status.success(), "no image names, no rendering");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("image.repository is not set") && stderr.contains("make images"),
        "the refusal says what is missing and how to build it: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_chart_is_accepted_by_the_api_server() {
    let server = start_bare_api_server().await;
    let client = server.client().expect("a client");
    create_namespace(&client, OPERATOR_NAMESPACE).await;
    // The CRD for real (the other objects only dry-run: nothing may reference a missing kind).
    let crd = render_chart(OPERATOR_NAMESPACE, &[], &[]);
    assert!(
        crd.iter().any(|d| d["kind"] == "Deployment"),
        "the operator's Deployment renders"
    );
    let documents = render_chart(
        OPERATOR_NAMESPACE,
        &[
            "replicaCount=2",
            "image.repository=registry.example/wattcast-operator",
            "image.tag=test",
            "images.wattcast=registry.example/wattcast:test",
            "operator.logFormat=human",
            "dashboard.enabled=true",
            "networkPolicy.enabled=true",
        ],
        &[],
    );
    let kinds: BTreeSet<String> = documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "ConfigMap",
        "NetworkPolicy",
    ] {
        assert!(kinds.contains(kind), "the chart renders a {kind}: {kinds:?}");
    }
    apply_documents(&client, &documents, true).await;
    let deployment = documents.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example/wattcast-operator:test");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let env = container["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "WATTCAST_IMAGE_WATTCAST" && e["value"] == "registry.example/wattcast:test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_the_chart_into_a_real_api_server() {
    let server = start_bare_api_server().await;
    let client = server.client().expect("a client");
    let kubeconfig = KubeconfigFile::write(&server, "chart");
    let installed = helm_install(&kubeconfig);
    assert!(installed.contains("STATUS: deployed"), "{installed}");
    assert!(
        installed.contains("kubectl apply -f data/experiments/e2e.yaml"),
        "NOTES.txt is shown: {installed}"
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let crd = crds
            .get("pipelineexperiments.wattcast.io")
            .await
            .expect("helm installed the CRD");
        let established = crd.status.and_then(|s| s.conditions).is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
        if established {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the CRD was not established"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deployment = Api::<Deployment>::namespaced(client.clone(), OPERATOR_NAMESPACE)
        .get("wattcast-operator")
        .await
        .expect("the operator's Deployment");
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("wattcast-operator"));
    let uninstalled = run_helm(&[
        "uninstall",
        "wattcast",
        "--namespace",
        OPERATOR_NAMESPACE,
        "--kubeconfig",
        kubeconfig.path(),
    ]);
    assert!(uninstalled.contains("uninstalled"), "{uninstalled}");
}

/// Metric names (without the `_total`/`_bucket`/… suffixes) in a registry's exposition.
fn exported(registry: &Registry) -> BTreeSet<String> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    use wattcast_pipeline::workload::{
        bridge::BridgeStats, coordinator::CoordinatorStats, forecasting::ForecastStats,
        trainer::TrainerStats, windower::WindowerStats,
    };
    let mut registry = Registry::default();
    BridgeStats::default().register(&mut registry);
    WindowerStats::default().register(&mut registry);
    CoordinatorStats::default().register(&mut registry);
    ForecastStats::default().register(&mut registry);
    TrainerStats::default().register(&mut registry);
    let operator = wattcast_operator::metrics::Metrics::default();
    operator.register(&mut registry);
    // Labelled families appear once they have a member.
    operator.observe(0.1, Some("kube"));
    let names = exported(&registry);

    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(chart_dir().join("dashboards/wattcast.json")).unwrap())
            .unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let mut checked = 0;
    for panel in panels {
        let targets = panel["targets"]
            .as_array()
            .expect("every panel queries something");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !word.starts_with("wattcast_") {
                    continue;
                }
                let base = ["_total", "_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| word.strip_suffix(suffix))
                    .unwrap_or(word);
                assert!(
                    names.contains(base),
                    "panel {} queries {word}, which nothing exports ({names:?})",
                    panel["title"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "the dashboard's queries were checked ({checked})");
    for title in [
        "Throughput",
        "Latency, sensor publish → stored",
        "Coverage per minute",
        "Forecast error",
        "CPU per workload",
        "Memory per workload",
    ] {
        assert!(panels.iter().any(|p| p["title"] == title), "a {title} panel");
    }
}
