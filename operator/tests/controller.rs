//! The controller against a real API server (envtest) and the real test services: an experiment
//! whose services are external (the test env's) goes Pending → Training → Running → Draining →
//! Completed as the Jobs and Deployments it creates are made ready by patching their status (no
//! kubelet runs here), while the data itself comes from a real `wattcast local` run into the
//! experiment's store. Its status ends with the store's numbers; deleting it runs the finalizer,
//! which removes the Pulsar namespace, the models and the schema. A failing setup Job fails the
//! experiment with a Warning Event. The controller runs as the chart's ServiceAccount
//! (impersonated), so the chart's RBAC is proven to allow everything it does — leader election
//! included.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use common::{OPERATOR_NAMESPACE, create_namespace, install_operator_rbac, start_api_server};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wattcast_core::topics::ExperimentNames;
use wattcast_crds::{Phase, PipelineExperiment};
use wattcast_io::object_store::{DEFAULT_BUCKET, ObjectStore};
use wattcast_io::services::{Services, TestEnvCa, Transport, find_test_env_file, test_env_over_tls};
use wattcast_io::store::Store;
use wattcast_operator::controller::{self, Context, Settings};
use wattcast_operator::images::Images;
use wattcast_operator::metrics::Metrics;
use wattcast_pipeline::local::{LocalOptions, run_local};

const NAMESPACE: &str = "lab";

fn services() -> Services {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Services::load(find_test_env_file(&repo).as_deref())
        .unwrap_or_else(|error| panic!("{error}; start the test services with `make test-env`"))
}

/// The test services at their TLS addresses, their CA given.
fn tls_services() -> Services {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let env_file = find_test_env_file(&repo)
        .unwrap_or_else(|| panic!("test-env/.env is missing; start the test services with `make test-env`"));
    test_env_over_tls(&env_file, TestEnvCa::Signer).unwrap_or_else(|error| panic!("{error}"))
}

/// The Secret that holds the test env's CA, named by every TLS service's `caSecret`.
const CA_SECRET: &str = "test-env-ca";

/// A short name no other run uses (experiment names become Pulsar namespaces and schemas).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}", nanos % 1_000_000_000_000)
}

/// `scheme://host…` without the `user:password@` part.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!(
            "{scheme}://{}",
            rest.rsplit_once('@').map_or(rest, |(_, host)| host)
        ),
        None => url.to_owned(),
    }
}

/// The user and password of a `scheme://user:password@host` URL.
fn credentials(url: &str) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let userinfo = rest.rsplit_once('@').map_or("", |(userinfo, _)| userinfo);
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (user.to_owned(), password.to_owned())
}

async fn create_secret(client: &Client, name: &str, data: serde_json::Value) {
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data})).unwrap();
    Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// Secrets with the test services' credentials, as a user pointing at existing services makes.
async fn create_service_secrets(client: &Client, services: &Services) {
    create_secret(
        client,
        "mqtt",
        json!({"username": services.mqtt.username, "password": services.mqtt.password}),
    )
    .await;
    let (user, password) = credentials(&services.postgres.url);
    create_secret(
        client,
        "postgres",
        json!({"username": user, "password": password}),
    )
    .await;
    create_secret(
        client,
        "s3",
        json!({"accessKey": services.s3.access_key, "secretKey": services.s3.secret_key}),
    )
    .await;
    if let Some(ca) = &services.pulsar.ca {
        let pem = String::from_utf8(ca.pem().to_vec()).expect("PEM is text");
        create_secret(client, CA_SECRET, json!({"ca.crt": pem})).await;
    }
}

/// An experiment on the test services; over TLS (`tls_services`) each names the CA Secret.
fn experiment(name: &str, services: &Services) -> PipelineExperiment {
    let tls = matches!(services.mqtt.transport, Transport::Tls { .. });
    let ca = if tls {
        format!(", caSecret: {CA_SECRET}")
    } else {
        String::new()
    };
    // Over TLS the admin API is named, as for a hosted Pulsar (here it is where it would be
    // found anyway).
    let admin = if tls {
        format!(", adminUrl: '{}'", services.pulsar.admin_url)
    } else {
        String::new()
    };
    let yaml = format!(
        "apiVersion: wattcast.io/v1alpha1
kind: PipelineExperiment
metadata: {{ name: {name}, namespace: {NAMESPACE} }}
spec:
  architecture: Streaming
  devices: {{ count: 2 }}
  dataset: {{ scenario: MissingTimestamps, seed: 7, duration: 4m }}
  replay: {{ speedup: 240 }}
  forecasting: {{ retrainEvery: 10m, model: {{ epochs: 5 }} }}
  cleanup: DeleteAll
  infrastructure:
    mqtt: {{ url: '{}://{}:{}', credentialsSecret: mqtt{ca} }}
    pulsar: {{ url: '{}'{ca}{admin} }}
    postgres: {{ url: '{}', credentialsSecret: postgres{ca} }}
    objectStore: {{ url: '{}', credentialsSecret: s3{ca} }}
",
        if tls { "mqtts" } else { "mqtt" },
        services.mqtt.host,
        services.mqtt.port,
        services.pulsar.url,
        without_credentials(&services.postgres.url),
        services.s3.endpoint,
    );
    serde_yaml::from_str(&yaml).expect("a valid experiment")
}

fn start_controller(client: &Client) -> (CancellationToken, tokio::task::JoinHandle<()>, Arc<Metrics>) {
    start_controller_with(client, Duration::from_secs(900))
}

fn start_controller_with(
    client: &Client,
    startup_deadline: Duration,
) -> (CancellationToken, tokio::task::JoinHandle<()>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let settings = Settings {
        poll: Duration::from_millis(500),
        settle: Duration::from_secs(2),
        drain_timeout: Duration::from_secs(600),
        startup_deadline,
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        Images::default(),
        metrics.clone(),
        settings,
        Some("test".to_owned()),
    ));
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(controller::run(ctx, shutdown.clone()));
    (shutdown, handle, metrics)
}

/// Waits (at most `seconds`) until the experiment satisfies `done`; panics with its status.
async fn wait_for(
    api: &Api<PipelineExperiment>,
    name: &str,
    seconds: u64,
    what: &str,
    done: impl Fn(&PipelineExperiment) -> bool,
) -> PipelineExperiment {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let current = api.get(name).await.expect("the experiment exists");
        if done(&current) {
            return current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {seconds}s for {what}; status: {:#?}",
            current.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deletes the experiment and waits (at most a minute) for its finalizer to let it go.
async fn delete_and_wait(api: &Api<PipelineExperiment>, name: &str) {
    api.delete(name, &Default::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while api.get_opt(name).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the finalizer did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn phase(experiment: &PipelineExperiment) -> Phase {
    experiment.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

/// Marks a Job finished as the Job controller would.
async fn finish_job(client: &Client, name: &str, succeeded: bool) {
    let jobs: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
    let job = jobs.get(name).await.unwrap_or_else(|e| panic!("Job {name}: {e}"));
    let spec = job.spec.clone().expect("spec");
    let completions = spec.completions.unwrap_or(1);
    let now = k8s_openapi::jiff::Timestamp::now();
    let start = now - k8s_openapi::jiff::SignedDuration::from_secs(30);
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now.to_string(), "lastProbeTime": now.to_string()});
    let mut status = if succeeded {
        json!({
            "startTime": start.to_string(),
            "completionTime": now.to_string(),
            "succeeded": completions,
            "conditions": [condition("SuccessCriteriaMet"), condition("Complete")],
        })
    } else {
        json!({
            "startTime": start.to_string(),
            "failed": spec.backoff_limit.unwrap_or(6) + 1,
            "conditions": [condition("FailureTarget"), condition("Failed")],
        })
    };
    if succeeded && spec.completion_mode.as_deref() == Some("Indexed") {
        status["completedIndexes"] = json!(if completions > 1 {
            format!("0-{}", completions - 1)
        } else {
            "0".to_owned()
        });
    }
    jobs.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap_or_else(|e| panic!("the API server refused the status of Job {name}: {e}"));
}

/// Marks every Deployment of the experiment ready.
async fn make_deployments_ready(client: &Client, experiment: &str) -> Vec<String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let listed = deployments
        .list(&ListParams::default().labels(&format!("wattcast.io/experiment={experiment}")))
        .await
        .unwrap();
    let mut names = Vec::new();
    for deployment in listed.items {
        let name = deployment.name_any();
        let status = json!({"status": {"observedGeneration": deployment.metadata.generation, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}});
        deployments
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .unwrap_or_else(|e| panic!("the API server refused the status of Deployment {name}: {e}"));
        names.push(name);
    }
    names.sort();
    names
}

async fn exists<K>(client: &Client, name: &str) -> bool
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::<K>::namespaced(client.clone(), NAMESPACE)
        .get_opt(name)
        .await
        .unwrap()
        .is_some()
}

async fn event_reasons(client: &Client, experiment: &str) -> Vec<(String, String)> {
    // Events are written asynchronously; give the last one a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|event| event.involved_object.name.as_deref() == Some(experiment))
        .map(|event| (event.type_.unwrap_or_default(), event.reason.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_runs_through_its_phases_reports_the_store_and_cleans_up() {
    // Every external service over TLS, its CA in a Secret: the operator reads the results and
    // cleans up over TLS as the workloads run over it.
    let services = tls_services();
    let server = start_api_server().await;
    let client = server.client().expect("a client for envtest");
    create_namespace(&client, NAMESPACE).await;
    create_service_secrets(&client, &services).await;
    // The controller acts as the chart's ServiceAccount: its RBAC must allow all it does.
    let operator = install_operator_rbac(&server).await;
    let (shutdown, controller, metrics) = start_controller(&operator);

    let name = unique("op");
    let api: Api<PipelineExperiment> = Api::namespaced(client.clone(), NAMESPACE);
    let resource = experiment(&name, &services);
    api.create(&PostParams::default(), &resource).await.unwrap();

    // External services need no provisioning: the setup Job is created straight away.
    let training = wait_for(&api, &name, 30, "Training", |e| phase(e) == Phase::Training).await;
    assert!(training.finalizers().contains(&controller::FINALIZER.to_owned()));
    assert!(exists::<Job>(&client, &format!("{name}-setup")).await);
    assert!(exists::<Secret>(&client, &format!("{name}-credentials")).await);
    assert!(exists::<ConfigMap>(&client, &format!("{name}-experiment")).await);
    assert!(
        !exists::<Deployment>(&client, &format!("{name}-coordinator")).await,
        "no workload before setup"
    );
    assert!(
        !exists::<Job>(&client, &format!("{name}-sensor")).await,
        "no sensors before setup"
    );

    // The data: a real run of the pipeline into the experiment's store (setup included).
    let summary = run_local(
        &resource,
        LocalOptions {
            services: services.clone(),
            drain_timeout: Duration::from_secs(180),
            progress: false,
            models_bucket: DEFAULT_BUCKET.to_owned(),
            initial_models: true,
            hold_replay: None,
            forecast_stats: None,
            dataset: None,
            model_dir: None,
        },
    )
    .await
    .unwrap_or_else(|error| panic!("wattcast local: {error:#}; are the test services up? `make test-env`"));

    finish_job(&client, &format!("{name}-setup"), true).await;
    // The workloads are applied one after another: wait for the last of them.
    let workloads = ["bridge", "windower", "coordinator", "trainer"].map(|w| format!("{name}-{w}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = true;
        for workload in &workloads {
            all &= exists::<Deployment>(&client, workload).await;
        }
        if all {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workloads were not created after setup"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !exists::<Job>(&client, &format!("{name}-sensor")).await,
        "no sensors before the workloads are ready"
    );
    assert_eq!(
        make_deployments_ready(&client, &name).await,
        [
            format!("{name}-bridge"),
            format!("{name}-coordinator"),
            format!("{name}-trainer"),
            format!("{name}-windower")
        ]
    );
    let running = wait_for(&api, &name, 30, "Running", |e| phase(e) == Phase::Running).await;
    let ready = running
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .expect("a Ready condition");
    assert_eq!(
        (ready.reason.as_str(), ready.observed_generation),
        ("PipelineRunning", running.metadata.generation)
    );

    finish_job(&client, &format!("{name}-sensor"), true).await;
    let completed = wait_for(&api, &name, 60, "Completed", |e| phase(e) == Phase::Completed).await;
    let status = completed.status.expect("a status");
    assert_eq!(status.progress.readings_sent, summary.readings_sent);
    assert_eq!(status.progress.readings_stored, summary.readings_stored as u64);
    assert_eq!(status.progress.windows_emitted, summary.windows as u64);
    assert_eq!(status.progress.late_readings, summary.late as u64);
    assert_eq!(status.progress.forecasts, summary.forecasts as u64);
    let results = status.results.expect("results");
    assert_eq!(results.coverage, summary.coverage);
    assert_eq!(
        results.latency_ms.map(|l| l.p99),
        summary.latency_ms.map(|l| l.p99)
    );
    assert_eq!(
        results.forecast.map(|f| f.rmse),
        summary.accuracy.map(|a| a.rmse),
        "status.results and `wattcast local` report the same accuracy"
    );
    let drained = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Drained")
        .expect("a Drained condition");
    assert_eq!(drained.reason, "AllStored");

    // DeleteAll: nothing of the run stays once it completed.
    let coordinator = format!("{name}-coordinator");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while exists::<Deployment>(&client, &coordinator).await
        || exists::<Job>(&client, &format!("{name}-setup")).await
        || exists::<NetworkPolicy>(&client, &format!("{name}-infrastructure")).await
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "DeleteAll left objects after completion"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let reasons = event_reasons(&client, &name).await;
    for phase in ["Training", "Running", "Draining", "Completed"] {
        assert!(
            reasons.contains(&("Normal".to_owned(), phase.to_owned())),
            "no {phase} Event in {reasons:?}"
        );
    }

    // Deleting runs the finalizer: the Pulsar namespace, the models and the schema go.
    let names = ExperimentNames::new(&name).unwrap();
    let objects = ObjectStore::new(&services.s3, DEFAULT_BUCKET);
    assert!(
        objects.get(&format!("{name}/1/initial/model.onnx")).await.is_ok(),
        "the run stored an initial model"
    );
    delete_and_wait(&api, &name).await;
    assert!(
        objects
            .get(&format!("{name}/1/initial/model.onnx"))
            .await
            .is_err(),
        "the models were deleted"
    );
    let topics = reqwest::get(format!(
        "{}/admin/v2/namespaces/{}/topics",
        self::services().pulsar.admin_url,
        names.pulsar_namespace()
    ))
    .await
    .expect("Pulsar admin answers");
    assert_eq!(topics.status().as_u16(), 404, "the Pulsar namespace was deleted");
    let store = Store::connect(&services.postgres, "public", 1).await.unwrap();
    let (schemas,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1")
            .bind(names.postgres_schema())
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(schemas, 0, "the schema was dropped");

    let mut text = String::new();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("wattcast_operator_reconciles_total{outcome=\"ok\"}"),
        "{text}"
    );
    shutdown.cancel();
    controller.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_setup_fails_the_experiment_with_a_warning_and_keeps_its_objects() {
    let services = services();
    let server = start_api_server().await;
    let client = server.client().expect("a client for envtest");
    create_namespace(&client, NAMESPACE).await;
    create_service_secrets(&client, &services).await;
    let operator = install_operator_rbac(&server).await;
    let (shutdown, controller, _) = start_controller(&operator);

    let name = unique("fail");
    let api: Api<PipelineExperiment> = Api::namespaced(client.clone(), NAMESPACE);
    let mut resource = experiment(&name, &services);
    resource.spec.cleanup = wattcast_crds::CleanupPolicy::DeleteWorkloads;
    api.create(&PostParams::default(), &resource).await.unwrap();
    wait_for(&api, &name, 30, "Training", |e| phase(e) == Phase::Training).await;
    // The setup pod exited saying why, as `wattcast setup` does (its termination message).
    let why = "/etc/wattcast-dataset/dataset.csv: has 3 device(s) (ids 2, 3, 4) but spec.devices.count is 5";
    failed_setup_pod(&client, &name, why).await;
    finish_job(&client, &format!("{name}-setup"), false).await;
    let failed = wait_for(&api, &name, 30, "Failed", |e| phase(e) == Phase::Failed).await;
    let models = failed
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "ModelsReady"))
        .expect("a ModelsReady condition");
    assert_eq!(models.reason, "SetupFailed");
    assert_eq!(models.message, format!("the setup Job failed: {why}"));
    let reasons = event_reasons(&client, &name).await;
    for reason in ["Failed", "SetupFailed"] {
        assert!(
            reasons.contains(&("Warning".to_owned(), reason.to_owned())),
            "a Warning Event {reason}: {reasons:?}"
        );
    }
    assert!(
        event_notes(&client, &name, "SetupFailed")
            .await
            .iter()
            .any(|note| note.contains(why)),
        "the Event says why"
    );
    // A failed run keeps its objects for inspection (DeleteWorkloads keeps everything on failure).
    assert!(exists::<Job>(&client, &format!("{name}-setup")).await);
    delete_and_wait(&api, &name).await;
    shutdown.cancel();
    controller.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_a_released_lease_passes_to_the_next() {
    use wattcast_operator::leader::{LeaderElection, Leadership};
    let server = start_api_server().await;
    let operator = install_operator_rbac(&server).await;
    let lease = Duration::from_secs(15);
    let first = LeaderElection::new(
        operator.clone(),
        OPERATOR_NAMESPACE,
        "wattcast-operator",
        "replica-a",
        lease,
    );
    let second = LeaderElection::new(
        operator,
        OPERATOR_NAMESPACE,
        "wattcast-operator",
        "replica-b",
        lease,
    );
    assert_eq!(first.try_acquire_or_renew().await.unwrap(), Leadership::Leading);
    assert_eq!(
        second.try_acquire_or_renew().await.unwrap(),
        Leadership::Following
    );
    assert_eq!(
        first.try_acquire_or_renew().await.unwrap(),
        Leadership::Leading,
        "the leader renews"
    );
    assert_eq!(
        second.try_acquire_or_renew().await.unwrap(),
        Leadership::Following
    );
    first.release().await.unwrap();
    assert_eq!(
        second.try_acquire_or_renew().await.unwrap(),
        Leadership::Leading,
        "a released Lease is free"
    );
    assert_eq!(first.try_acquire_or_renew().await.unwrap(), Leadership::Following);

    // An expired Lease is taken over without being released.
    let short = Duration::from_secs(1);
    let third = LeaderElection::new(
        server.client().unwrap(),
        OPERATOR_NAMESPACE,
        "short",
        "replica-c",
        short,
    );
    let fourth = LeaderElection::new(
        server.client().unwrap(),
        OPERATOR_NAMESPACE,
        "short",
        "replica-d",
        short,
    );
    assert_eq!(third.try_acquire_or_renew().await.unwrap(), Leadership::Leading);
    assert_eq!(
        fourth.try_acquire_or_renew().await.unwrap(),
        Leadership::Following
    );
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(
        fourth.try_acquire_or_renew().await.unwrap(),
        Leadership::Leading,
        "an expired Lease is taken over"
    );
    let lost = CancellationToken::new();
    third
        .keep(Duration::from_millis(100), CancellationToken::new(), lost.clone())
        .await;
    assert!(lost.is_cancelled(), "the old leader learns it lost the Lease");
}

/// Marks a StatefulSet ready as its controller would.
async fn make_stateful_set_ready(client: &Client, name: &str) {
    let api: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), NAMESPACE);
    let current = api
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("StatefulSet {name}: {e}"));
    let status = json!({"status": {"observedGeneration": current.metadata.generation, "replicas": 1, "readyReplicas": 1, "currentReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap_or_else(|e| panic!("the API server refused the status of StatefulSet {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_experiment_provisions_its_services_before_anything_else() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::Service;
    let server = start_api_server().await;
    let client = server.client().expect("a client for envtest");
    create_namespace(&client, NAMESPACE).await;
    let operator = install_operator_rbac(&server).await;
    let (shutdown, controller, _) = start_controller(&operator);

    let name = unique("managed");
    let api: Api<PipelineExperiment> = Api::namespaced(client.clone(), NAMESPACE);
    let resource: PipelineExperiment = serde_yaml::from_str(&format!(
        "apiVersion: wattcast.io/v1alpha1
kind: PipelineExperiment
metadata: {{ name: {name}, namespace: {NAMESPACE} }}
spec:
  architecture: Batching
  devices: {{ count: 3 }}
  dataset: {{ scenario: InOrder }}
"
    ))
    .unwrap();
    api.create(&PostParams::default(), &resource).await.unwrap();
    let provisioning = wait_for(&api, &name, 30, "Provisioning", |e| {
        phase(e) == Phase::Provisioning
    })
    .await;
    let infrastructure = provisioning
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "InfrastructureReady"))
        .expect("an InfrastructureReady condition");
    assert_eq!(infrastructure.reason, "ServicesStarting");
    for service in ["pulsar", "postgres", "rustfs"] {
        assert!(
            exists::<StatefulSet>(&client, &format!("{name}-{service}")).await,
            "the {service} StatefulSet"
        );
        assert!(
            exists::<Service>(&client, &format!("{name}-{service}")).await,
            "the {service} Service"
        );
    }
    assert!(exists::<Deployment>(&client, &format!("{name}-mosquitto")).await);
    assert!(exists::<NetworkPolicy>(&client, &format!("{name}-infrastructure")).await);
    assert!(exists::<Secret>(&client, &format!("{name}-credentials")).await);
    assert!(
        !exists::<Job>(&client, &format!("{name}-setup")).await,
        "no setup before the services are ready"
    );

    for service in ["pulsar", "postgres", "rustfs"] {
        make_stateful_set_ready(&client, &format!("{name}-{service}")).await;
    }
    assert_eq!(
        make_deployments_ready(&client, &name).await,
        [format!("{name}-mosquitto")]
    );
    wait_for(&api, &name, 30, "Training", |e| phase(e) == Phase::Training).await;
    assert!(
        exists::<Job>(&client, &format!("{name}-setup")).await,
        "setup once the services are ready"
    );
    assert!(
        !exists::<Deployment>(&client, &format!("{name}-windower")).await,
        "Batching has no windower"
    );

    // Deleting it: every service was managed, so nothing external is left to remove.
    delete_and_wait(&api, &name).await;
    let cleaned = {
        let events: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("CleanedUp")
                    && e.involved_object.name.as_deref() == Some(name.as_str())
            })
    };
    assert!(
        cleaned
            .and_then(|e| e.message)
            .is_some_and(|m| m.contains("managed")),
        "the finalizer says the managed services go with the experiment"
    );
    shutdown.cancel();
    controller.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_that_does_not_start_in_time_fails_saying_why() {
    let server = start_api_server().await;
    let client = server.client().expect("a client for envtest");
    create_namespace(&client, NAMESPACE).await;
    let operator = install_operator_rbac(&server).await;
    // No kubelet runs here: the managed services never become ready.
    let (shutdown, controller, _) = start_controller_with(&operator, Duration::from_secs(3));

    let name = unique("stuck");
    let api: Api<PipelineExperiment> = Api::namespaced(client.clone(), NAMESPACE);
    let resource: PipelineExperiment = serde_yaml::from_str(&format!(
        "apiVersion: wattcast.io/v1alpha1
kind: PipelineExperiment
metadata: {{ name: {name}, namespace: {NAMESPACE} }}
spec:
  architecture: Streaming
  devices: {{ count: 1 }}
  dataset: {{ scenario: InOrder }}
"
    ))
    .unwrap();
    api.create(&PostParams::default(), &resource).await.unwrap();
    let failed = wait_for(&api, &name, 60, "Failed", |e| phase(e) == Phase::Failed).await;
    let started = failed
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Started"))
        .expect("a Started condition");
    assert_eq!(started.reason, "StartupDeadlineExceeded");
    assert!(
        started.message.contains("phase Provisioning"),
        "the message names the phase it was stuck in: {}",
        started.message
    );
    assert!(
        event_reasons(&client, &name)
            .await
            .contains(&("Warning".to_owned(), "StartupDeadlineExceeded".to_owned())),
        "a Warning Event says why"
    );
    delete_and_wait(&api, &name).await;
    shutdown.cancel();
    controller.await.unwrap();
}

/// A setup pod of the experiment that exited 3 with `message`, as the kubelet reports it.
async fn failed_setup_pod(client: &Client, experiment: &str, message: &str) {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let name = format!("{experiment}-setup-x1");
    let pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {
            "wattcast.io/experiment": experiment, "app.kubernetes.io/component": "setup",
        }},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "setup", "image": "wattcast:test"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({"status": {"phase": "Failed", "containerStatuses": [{
        "name": "setup", "image": "wattcast:test", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 3, "reason": "Error", "message": message, "startedAt": now, "finishedAt": now}},
    }]}});
    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

/// Whether the experiment carries the operator's finalizer.
fn has_finalizer(experiment: &PipelineExperiment) -> bool {
    experiment.finalizers().iter().any(|f| f == controller::FINALIZER)
}

/// The notes of the experiment's Events with `reason`.
async fn event_notes(client: &Client, experiment: &str, reason: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|event| {
            event.involved_object.name.as_deref() == Some(experiment)
                && event.reason.as_deref() == Some(reason)
        })
        .filter_map(|event| event.message)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_experiment_whose_pulsar_is_stopped_gives_up_after_the_cleanup_timeout() {
    let services = services();
    let server = start_api_server().await;
    let client = server.client().expect("a client for envtest");
    create_namespace(&client, NAMESPACE).await;
    create_service_secrets(&client, &services).await;
    let operator = install_operator_rbac(&server).await;
    let (shutdown, controller, _metrics) = start_controller(&operator);

    // A stopped Pulsar: nothing listens on its broker or admin port (the test env's Pulsar
    // listens on 127.0.0.1 only), so every call is refused as a stopped service refuses it.
    let name = unique("gone");
    let mut resource = experiment(&name, &services);
    resource.spec.infrastructure.pulsar = Some(wattcast_crds::ExternalService {
        url: "pulsar://127.0.0.3:6650".to_owned(),
        credentials_secret: None,
        ca_secret: None,
        admin_url: None,
    });
    resource.spec.cleanup = wattcast_crds::CleanupPolicy::DeleteWorkloads;
    resource.spec.cleanup_timeout = "20s".parse().unwrap();
    let api: Api<PipelineExperiment> = Api::namespaced(client.clone(), NAMESPACE);
    api.create(&PostParams::default(), &resource).await.unwrap();
    wait_for(&api, &name, 60, "the finalizer", has_finalizer).await;

    api.delete(&name, &Default::default()).await.unwrap();
    let retrying = wait_for(&api, &name, 60, "the CleanedUp condition", |e| {
        e.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "CleanedUp" && c.reason == "CleanupRetrying")
        })
    })
    .await;
    let condition = retrying
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "CleanedUp")
        .unwrap();
    assert!(
        condition.message.contains("127.0.0.3:8080"),
        "{}",
        condition.message
    );
    assert!(
        has_finalizer(&api.get(&name).await.unwrap()),
        "let go before the timeout"
    );

    // The finalizer gives up once cleanupTimeout has passed since the deletion.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while api.get_opt(&name).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the deletion hangs");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!event_notes(&client, &name, "CleanupRetrying").await.is_empty());
    let abandoned = event_notes(&client, &name, "CleanupAbandoned").await;
    let note = abandoned.first().expect("a CleanupAbandoned Event");
    for left in [
        format!("Pulsar namespace public/{name} at http://127.0.0.3:8080"),
        format!("objects under s3://wattcast-models/{name}/"),
    ] {
        assert!(note.contains(&left), "`{left}` missing from: {note}");
    }

    shutdown.cancel();
    controller.await.unwrap();
    server.destroy().await.unwrap();
}
