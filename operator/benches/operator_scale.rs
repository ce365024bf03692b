//! `make bench-operator`: the real `wattcast-operator` binary against a real API server (envtest)
//! with 100 experiments on the test env's services (external, so no kubelet is needed). Measures
//! the time until every experiment is reconciled (finalizer on, setup Job created), then — with
//! every experiment Running and its store readable, nothing changing — over one minute: API
//! requests per experiment (writes and reads, from the API server's own
//! `apiserver_request_total`), PostgreSQL transactions, and the operator's RSS.
//! Environment: BENCH_EXPERIMENTS (100), BENCH_WINDOW_SECONDS (60), BENCH_OUT (a JSON file).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use wattcast_core::topics::ExperimentNames;
use wattcast_crds::{Phase, PipelineExperiment};
use wattcast_io::services::{Services, find_test_env_file};
use wattcast_io::store::Store;

const NAMESPACE: &str = "scale";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn services() -> Services {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Services::load(find_test_env_file(&repo).as_deref())
        .unwrap_or_else(|error| panic!("{error}; start the test services with `make test-env`"))
}

fn host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.rsplit_once('@').map_or(rest, |(_, host)| host).to_owned()
}

fn experiment(name: &str, services: &Services) -> PipelineExperiment {
    serde_yaml::from_str(&format!(
        "apiVersion: wattcast.io/v1alpha1
kind: PipelineExperiment
metadata: {{ name: {name}, namespace: {NAMESPACE} }}
spec:
  architecture: Streaming
  devices: {{ count: 20 }}
  dataset: {{ scenario: MissingTimestamps, duration: 2h }}
  cleanup: Keep
  infrastructure:
    mqtt: {{ url: 'mqtt://{}:{}', credentialsSecret: services }}
    pulsar: {{ url: '{}' }}
    postgres: {{ url: 'postgres://{}', credentialsSecret: postgres }}
    objectStore: {{ url: '{}', credentialsSecret: services }}
",
        services.mqtt.host,
        services.mqtt.port,
        services.pulsar.url,
        host(&services.postgres.url),
        services.s3.endpoint,
    ))
    .expect("a valid experiment")
}

async fn create_secrets(client: &Client, services: &Services) {
    let api: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let rest = services
        .postgres
        .url
        .split_once("://")
        .map_or("", |(_, rest)| rest);
    let userinfo = rest.rsplit_once('@').map_or("", |(userinfo, _)| userinfo);
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    for (name, data) in [
        (
            "services",
            json!({"username": services.mqtt.username, "password": services.mqtt.password,
                   "accessKey": services.s3.access_key, "secretKey": services.s3.secret_key}),
        ),
        ("postgres", json!({"username": user, "password": password})),
    ] {
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data})).unwrap();
        api.create(&PostParams::default(), &secret).await.unwrap();
    }
}

/// `apiserver_request_total` summed by verb and resource, from the API server's metrics.
async fn request_counts(client: &Client) -> BTreeMap<(String, String), f64> {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client
        .request_text(request)
        .await
        .expect("the API server's metrics");
    let mut counts = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let (labels, value) = line.rsplit_once(' ').unwrap();
        let label = |key: &str| {
            labels
                .split(&format!("{key}=\"")[..])
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        *counts.entry((label("verb"), label("resource"))).or_default() += value.parse::<f64>().unwrap_or(0.0);
    }
    counts
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn transactions(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT sum(xact_commit + xact_rollback)::bigint FROM pg_stat_database")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn phases(api: &Api<PipelineExperiment>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for experiment in api.list(&ListParams::default()).await.unwrap().items {
        let phase = experiment.status.map(|s| s.phase).unwrap_or(Phase::Pending);
        *counts.entry(format!("{phase:?}")).or_default() += 1;
    }
    counts
}

async fn wait_until(what: &str, seconds: u64, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(seconds),
            "{what} took over {seconds}s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let experiments = env_number("BENCH_EXPERIMENTS", 100) as usize;
    let window = Duration::from_secs(env_number("BENCH_WINDOW_SECONDS", 60));
    let services = services();
    let server = common::start_api_server().await;
    let client = server.client().expect("a client");
    common::create_namespace(&client, NAMESPACE).await;
    create_secrets(&client, &services).await;
    let kubeconfig = common::KubeconfigFile::write(&server, "bench-operator");
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_wattcast-operator"))
        .args([
            "--leader-elect",
            "false",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("KUBECONFIG", kubeconfig.path())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the operator starts");
    let pid = operator.id().expect("a pid");

    // The operator idle, before any experiment exists.
    let client_ready = wait_until("the operator's first requests", 60, async || {
        rss_kib(pid, "VmRSS:") > 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3) + client_ready).await;
    let idle_rss = rss_kib(pid, "VmRSS:");

    // Each experiment's schema, as its setup Job would make it, so the operator reads a store.
    let names: Vec<String> = (0..experiments).map(|i| format!("scale-{i:03}")).collect();
    for name in &names {
        let names = ExperimentNames::new(name).unwrap();
        let store = Store::connect(&services.postgres, &names.postgres_schema(), 1)
            .await
            .unwrap();
        store.drop_schema().await.unwrap();
        store.migrate().await.unwrap();
        store.pool().close().await;
    }

    let api: Api<PipelineExperiment> = Api::namespaced(client.clone(), NAMESPACE);
    let jobs: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
    let started = Instant::now();
    for name in &names {
        api.create(&PostParams::default(), &experiment(name, &services))
            .await
            .unwrap();
    }
    let created = started.elapsed();
    let reconciled = wait_until("every experiment reconciled", 600, async || {
        let setups = jobs
            .list(&ListParams::default().labels("app.kubernetes.io/component=setup"))
            .await
            .unwrap();
        setups.items.len() == experiments
    })
    .await
        + created;
    println!(
        "{experiments} experiments created in {created:.1?}, all reconciled (setup Job created) {reconciled:.1?} after the first"
    );

    // Setup done and every workload ready, as the kubelet would report it: the runs go Running.
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    for job in jobs
        .list(&ListParams::default().labels("app.kubernetes.io/component=setup"))
        .await
        .unwrap()
        .items
    {
        let status = json!({"status": {"startTime": now, "completionTime": now, "succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "lastTransitionTime": now}]}});
        jobs.patch_status(&job.name_any(), &PatchParams::default(), &Patch::Merge(status))
            .await
            .unwrap();
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let ready_all = async || {
        for deployment in deployments.list(&ListParams::default()).await.unwrap().items {
            let ready = deployment.status.as_ref().and_then(|s| s.ready_replicas) == Some(1);
            if !ready {
                let status = json!({"status": {"observedGeneration": deployment.metadata.generation, "replicas": 1,
                    "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}});
                deployments
                    .patch_status(
                        &deployment.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(status),
                    )
                    .await
                    .unwrap();
            }
        }
        phases(&api).await.get("Running") == Some(&experiments)
    };
    let running = wait_until("every experiment Running", 600, ready_all).await;
    println!("all Running {running:.1?} after setup finished");
    // Let the transition's writes settle, then measure a quiet window.
    tokio::time::sleep(Duration::from_secs(15)).await;

    let pool = sqlx::PgPool::connect(&services.postgres.url).await.unwrap();
    let (requests_before, transactions_before) = (request_counts(&client).await, transactions(&pool).await);
    tokio::time::sleep(window).await;
    let (requests_after, transactions_after) = (request_counts(&client).await, transactions(&pool).await);
    let minutes = window.as_secs_f64() / 60.0;
    let per_experiment_minute = |value: f64| value / experiments as f64 / minutes;
    let mut writes = 0.0;
    let mut reads = 0.0;
    let mut rows = Vec::new();
    for (key, after) in &requests_after {
        let delta = after - requests_before.get(key).copied().unwrap_or(0.0);
        if delta <= 0.0 {
            continue;
        }
        let (verb, resource) = key;
        // This bench's own two metrics reads are not the operator's.
        if resource.is_empty() && verb == "GET" {
            continue;
        }
        match verb.as_str() {
            "POST" | "PUT" | "PATCH" | "APPLY" | "DELETE" | "DELETECOLLECTION" | "UPDATE" => writes += delta,
            _ => reads += delta,
        }
        rows.push(format!("{verb} {resource}: {delta}"));
    }
    let rss = rss_kib(pid, "VmRSS:");
    let peak = rss_kib(pid, "VmHWM:");
    let pg_per_minute = (transactions_after - transactions_before) as f64 / minutes;
    let report = json!({
        "experiments": experiments,
        "reconciled_seconds": reconciled.as_secs_f64(),
        "window_seconds": window.as_secs(),
        "api_writes_per_experiment_minute": per_experiment_minute(writes),
        "api_reads_per_experiment_minute": per_experiment_minute(reads),
        "requests": rows,
        "operator_idle_rss_mib": idle_rss as f64 / 1024.0,
        "operator_rss_mib": rss as f64 / 1024.0,
        "operator_peak_rss_mib": peak as f64 / 1024.0,
        "postgres_transactions_per_minute": pg_per_minute,
        "postgres_transactions_per_experiment_minute": pg_per_minute / experiments as f64,
        "phases": phases(&api).await,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    if let Ok(out) = std::env::var("BENCH_OUT") {
        std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
    }

    let _ = operator.kill().await;
    for name in &names {
        let names = ExperimentNames::new(name).unwrap();
        if let Ok(store) = Store::connect(&services.postgres, &names.postgres_schema(), 1).await {
            let _ = store.drop_schema().await;
        }
    }
    server.destroy().await.unwrap();
}
