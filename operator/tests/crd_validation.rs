//! The API server itself refuses bad PipelineExperiment specs (schema and CEL rules), each with
//! a message that says what is wrong.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// A valid spec to break one thing at a time.
fn valid() -> Value {
    json!({
        "architecture": "Streaming",
        "devices": { "count": 3, "rampUp": { "every": "5m" } },
        "dataset": { "scenario": "MissingTimestamps", "seed": 7, "duration": "30m", "jitter": "8s" },
        "replay": { "speedup": 60 },
        "windowing": { "size": "1m", "watermark": { "strategy": "BoundedOutOfOrderness", "maxOutOfOrderness": "5s", "idleTimeout": "1m" } },
        "imputation": "Linear",
        "forecasting": { "lookBack": 60, "horizon": 60, "retrainEvery": "10m", "model": { "hidden": 25, "epochs": 200, "batchSize": 32 } },
        "infrastructure": { "pulsar": { "url": "pulsar://pulsar.example:6650" } },
        "cleanup": "DeleteWorkloads"
    })
}

/// Sets `path` (dot-separated) in a copy of the valid spec; `null` removes the field.
fn with(path: &str, value: Value) -> Value {
    let mut spec = valid();
    let mut node = &mut spec;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        node = node
            .as_object_mut()
            .unwrap()
            .entry(*part)
            .or_insert_with(|| json!({}));
    }
    let object = node.as_object_mut().unwrap();
    let last = parts[parts.len() - 1];
    if value.is_null() {
        object.remove(last);
    } else {
        object.insert(last.to_owned(), value);
    }
    spec
}

/// (what is wrong, the spec, text the API server's refusal must contain)
fn invalid_specs() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "no devices",
            with("devices.count", json!(0)),
            "should be greater than or equal to 1",
        ),
        (
            "too many devices",
            with("devices.count", json!(10001)),
            "should be less than or equal to 10000",
        ),
        (
            "ramp-up with one device",
            with("devices.count", json!(1)),
            "rampUp needs more than one device",
        ),
        (
            "ramp-up every 0s",
            with("devices.rampUp.every", json!("0s")),
            "rampUp.every must be positive",
        ),
        (
            "unknown architecture",
            with("architecture", json!("Lambda")),
            "Unsupported value: \"Lambda\"",
        ),
        (
            "architecture missing",
            with("architecture", Value::Null),
            "spec.architecture: Required value",
        ),
        (
            "neither scenario nor source",
            with("dataset.scenario", Value::Null),
            "set exactly one of dataset.scenario (generated data) and dataset.source",
        ),
        (
            "both scenario and source",
            with(
                "dataset.source",
                json!({ "configMap": { "name": "data", "key": "device_1.csv" } }),
            ),
            "set exactly one of dataset.scenario (generated data) and dataset.source",
        ),
        (
            "malformed duration",
            with("dataset.duration", json!("2 hours")),
            "spec.dataset.duration",
        ),
        (
            "speed-up 0",
            with("replay.speedup", json!(0)),
            "replay.speedup must be greater than 0",
        ),
        (
            "negative speed-up",
            with("replay.speedup", json!(-5)),
            "replay.speedup must be greater than 0",
        ),
        (
            "window of 0s",
            with("windowing.size", json!("0s")),
            "windowing.size must be a whole number of seconds, at least 1s",
        ),
        (
            "watermark bound equal to the window",
            with("windowing.watermark.maxOutOfOrderness", json!("1m")),
            "watermark.maxOutOfOrderness must be below windowing.size",
        ),
        (
            "bounded watermark without a bound",
            with("windowing.watermark.maxOutOfOrderness", Value::Null),
            "maxOutOfOrderness is required with BoundedOutOfOrderness",
        ),
        (
            "monotonous watermark with a bound",
            with("windowing.watermark.strategy", json!("Monotonous")),
            "not allowed with Monotonous",
        ),
        (
            "unknown imputation",
            with("imputation", json!("Spline")),
            "Unsupported value: \"Spline\"",
        ),
        (
            "retrain every 30s",
            with("forecasting.retrainEvery", json!("30s")),
            "forecasting.retrainEvery must be at least 1m",
        ),
        (
            "zero look-back",
            with("forecasting.lookBack", json!(0)),
            "should be greater than or equal to 1",
        ),
        (
            "pulsar URL with the wrong scheme",
            with("infrastructure.pulsar", json!({ "url": "http://pulsar:8080" })),
            "pulsar.url must look like pulsar://host:6650",
        ),
        (
            "postgres URL with the wrong scheme",
            with("infrastructure.postgres", json!({ "url": "mysql://db:3306/x" })),
            "postgres.url must look like postgres://host:5432/db",
        ),
        (
            "object store URL without a host",
            with("infrastructure.objectStore", json!({ "url": "https://" })),
            "objectStore.url must look like https://host:9000",
        ),
        (
            "unknown cleanup policy",
            with("cleanup", json!("Sometimes")),
            "Unsupported value: \"Sometimes\"",
        ),
        (
            "a window of 1.5 s",
            with("windowing.size", json!("1500ms")),
            "windowing.size must be a whole number of seconds",
        ),
        (
            "90 s of generated data",
            with("dataset.duration", json!("90s")),
            "dataset.duration must be a whole number of minutes",
        ),
        (
            "too little data for the look-back",
            {
                let mut spec = with("forecasting.lookBack", json!(299));
                spec["dataset"]["duration"] = json!("10m");
                spec
            },
            "dataset.duration is too short for forecasting.lookBack",
        ),
        (
            "a look-back no initial model can train",
            with("forecasting.lookBack", json!(300)),
            "should be less than or equal to 299",
        ),
        (
            "MQTT with an unknown TLS scheme",
            with("infrastructure.mqtt", json!({"url": "mqtt+ssl://broker:8883"})),
            "mqtt.url must look like mqtt://host:1883 or mqtts://host:8883",
        ),
        (
            "a CA bundle for plain MQTT",
            with(
                "infrastructure.mqtt",
                json!({"url": "mqtt://broker:1883", "caSecret": "broker-ca"}),
            ),
            "mqtt.caSecret is only used over TLS",
        ),
        (
            "a CA bundle for plain Pulsar",
            with(
                "infrastructure.pulsar",
                json!({"url": "pulsar://pulsar:6650", "caSecret": "pulsar-ca"}),
            ),
            "pulsar.caSecret is only used over TLS",
        ),
        (
            "an admin URL for MQTT",
            with(
                "infrastructure.mqtt",
                json!({"url": "mqtt://broker:1883", "adminUrl": "http://broker:8080"}),
            ),
            "adminUrl is for pulsar only",
        ),
        (
            "a Pulsar admin URL with a path",
            with(
                "infrastructure.pulsar",
                json!({"url": "pulsar://pulsar:6650", "adminUrl": "http://pulsar:8080/admin"}),
            ),
            "pulsar.adminUrl must look like https://host:8443",
        ),
        (
            "a CA bundle for an http object store",
            with(
                "infrastructure.objectStore",
                json!({"url": "http://s3:9000", "caSecret": "s3-ca"}),
            ),
            "objectStore.caSecret is only used over TLS",
        ),
        (
            "an MQTT port past 65535",
            with("infrastructure.mqtt", json!({"url": "mqtt://broker:70000"})),
            "mqtt.url must look like mqtt://host:1883",
        ),
        (
            "a CA bundle for PostgreSQL without TLS",
            with(
                "infrastructure.postgres",
                json!({"url": "postgres://db:5432/lab?sslmode=prefer", "caSecret": "db-ca"}),
            ),
            "postgres.caSecret is only used over TLS",
        ),
        (
            "an sslmode PostgreSQL does not know",
            with(
                "infrastructure.postgres",
                json!({"url": "postgres://db:5432/lab?sslmode=strict"}),
            ),
            "postgres.url's sslmode must be one of",
        ),
        (
            "an idle timeout of 0s",
            with("windowing.watermark.idleTimeout", json!("0s")),
            "watermark.idleTimeout must be positive",
        ),
        (
            "an S3 dataset with the managed (empty) object store",
            with(
                "dataset",
                json!({"source": {"s3": {"bucket": "lab-data", "key": "devices.csv"}}}),
            ),
            "dataset.source.s3 is read from the experiment's object store",
        ),
        (
            "an own model in S3 with the managed (empty) object store",
            with(
                "forecasting.model.source",
                json!({"s3": {"bucket": "lab-models", "prefix": "keras/lstm/"}}),
            ),
            "forecasting.model.source.s3 is read from the experiment's object store",
        ),
        (
            "an own model from both a ConfigMap and S3",
            with(
                "forecasting.model.source",
                json!({"configMap": {"name": "keras-lstm"}, "s3": {"bucket": "lab-models", "prefix": "keras/"}}),
            ),
            "set exactly one of configMap and s3",
        ),
        (
            "a retrain schedule that is neither Every nor Never",
            with("forecasting.retrain", json!("Weekly")),
            "Unsupported value: \"Weekly\"",
        ),
    ]
}

#[tokio::test]
async fn the_api_server_refuses_bad_specs_and_accepts_the_good_one() {
    let server = common::start_api_server().await;
    let client = server.client().expect("a client for the envtest API server");
    common::create_namespace(&client, "validation").await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("wattcast.io", "v1alpha1", "PipelineExperiment"),
        "pipelineexperiments",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, "validation", &resource);
    let object = |name: &str, spec: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "wattcast.io/v1alpha1",
            "kind": "PipelineExperiment",
            "metadata": { "name": name },
            "spec": spec,
        }))
        .unwrap()
    };

    api.create(&PostParams::default(), &object("valid", valid()))
        .await
        .expect("the valid spec is accepted");
    let mut over_tls = valid();
    over_tls["infrastructure"] = json!({
        "mqtt": {"url": "mqtts://broker.example", "caSecret": "lab-ca"},
        "pulsar": {"url": "pulsar+ssl://pulsar.example:6651", "caSecret": "lab-ca", "adminUrl": "https://pulsar-admin.example"},
        "postgres": {"url": "postgres://db.example/lab?sslmode=verify-full", "caSecret": "lab-ca"},
        "objectStore": {"url": "https://s3.example", "caSecret": "lab-ca"},
    });
    api.create(&PostParams::default(), &object("over-tls", over_tls))
        .await
        .expect("every TLS scheme with a CA bundle is accepted");

    let cases = invalid_specs();
    assert!(cases.len() >= 10);
    let mut failures = Vec::new();
    for (index, (what, spec, expected)) in cases.into_iter().enumerate() {
        match api
            .create(&PostParams::default(), &object(&format!("invalid-{index}"), spec))
            .await
        {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(error) if error.to_string().contains(expected) => {}
            Err(error) => failures.push(format!(
                "{what}: refused, but the message lacks `{expected}`: {error}"
            )),
        }
    }
    server.destroy().await.unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A PipelineExperiment named `name` with the valid spec.
fn named(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "wattcast.io/v1alpha1",
        "kind": "PipelineExperiment",
        "metadata": { "name": name },
        "spec": spec,
    }))
    .unwrap()
}

fn experiments(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("wattcast.io", "v1alpha1", "PipelineExperiment"),
        "pipelineexperiments",
    );
    Api::namespaced_with(client, namespace, &resource)
}

#[tokio::test]
async fn names_too_long_for_the_objects_or_not_dns_labels_are_refused() {
    let server = common::start_api_server().await;
    let client = server.client().expect("a client for the envtest API server");
    common::create_namespace(&client, "names").await;
    let api = experiments(client, "names");
    let longest = "x".repeat(wattcast_crds::MAX_NAME_LENGTH);
    api.create(&PostParams::default(), &named(&longest, valid()))
        .await
        .expect("the longest admitted name is accepted");
    let mut failures = Vec::new();
    // A Kubernetes object name may have 253 characters and dots; a Service may not.
    for bad in [
        "x".repeat(wattcast_crds::MAX_NAME_LENGTH + 1),
        "exp.one".to_owned(),
        "1exp".to_owned(),
    ] {
        match api.create(&PostParams::default(), &named(&bad, valid())).await {
            Ok(_) => failures.push(format!("{bad}: accepted")),
            Err(error)
                if error
                    .to_string()
                    .contains("metadata.name must be at most 42 characters") => {}
            Err(error) => failures.push(format!("{bad}: refused without the name rule: {error}")),
        }
    }
    server.destroy().await.unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_spec_is_immutable_once_the_run_has_started() {
    let server = common::start_api_server().await;
    let client = server.client().expect("a client for the envtest API server");
    common::create_namespace(&client, "runs").await;
    let api = experiments(client, "runs");
    let params = PatchParams::default();
    let change_devices = |count: u32| Patch::Merge(json!({"spec": {"devices": {"count": count}}}));
    api.create(&PostParams::default(), &named("run", valid()))
        .await
        .expect("created");

    // Before the operator has looked at it, and while Pending, the spec may still be fixed.
    api.patch("run", &params, &change_devices(4))
        .await
        .expect("no status yet");
    api.patch_status(
        "run",
        &params,
        &Patch::Merge(json!({"status": {"phase": "Pending"}})),
    )
    .await
    .expect("status Pending");
    api.patch("run", &params, &change_devices(5))
        .await
        .expect("still Pending");

    api.patch_status(
        "run",
        &params,
        &Patch::Merge(json!({"status": {"phase": "Provisioning"}})),
    )
    .await
    .expect("status Provisioning");
    let refused = api
        .patch("run", &params, &change_devices(6))
        .await
        .expect_err("a started run's spec cannot change");
    assert!(
        refused
            .to_string()
            .contains("spec cannot change once the run has started"),
        "{refused}"
    );
    // Metadata and status still can.
    api.patch(
        "run",
        &params,
        &Patch::Merge(json!({"metadata": {"labels": {"thesis": "chapter-5"}}})),
    )
    .await
    .expect("labels still change");
    api.patch_status(
        "run",
        &params,
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .expect("status still changes");
    let run = api.get("run").await.expect("read back");
    assert_eq!(run.data["spec"]["devices"]["count"], 5);
    server.destroy().await.unwrap();
}
