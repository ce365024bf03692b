//! The pipeline's workloads: the experiment file they all read, the setup Job, the sensors'
//! indexed Job, and the bridge, windower, coordinator and trainer Deployments.

use super::locations::{CA_KEY, HostNames, SecretKey, locations};
use super::{BuildError, DesiredObjects, security, typed};
use crate::experiment_ref::{ExperimentRef, Role};
use crate::images::Images;
use serde_json::{Value, json};
use wattcast_core::artifacts::{MODEL_FILE, SCALER_FILE};
use wattcast_crds::{Architecture, Retrain};

/// The port every workload serves `/metrics`, `/healthz` and `/readyz` on.
pub const METRICS_PORT: u16 = 9090;
/// Where the experiment file is mounted in every workload.
pub const EXPERIMENT_FILE: &str = "/etc/wattcast/experiment.yaml";
/// The experiment file's ConfigMap component.
pub const EXPERIMENT_CONFIG: &str = "experiment";
/// Where a `dataset.source.configMap` key is mounted in the setup and sensor pods.
pub const DATASET_DIR: &str = "/etc/wattcast-dataset";
/// The file name of the mounted dataset key.
pub const DATASET_FILE: &str = "dataset.csv";
/// Where a `forecasting.model.source.configMap` is mounted in the setup pod.
pub const MODEL_DIR: &str = "/etc/wattcast-model";
/// Where an external service's `caSecret` is mounted: `<TLS_DIR>/<service>/ca.crt`.
pub const TLS_DIR: &str = "/etc/wattcast-tls";
/// The user the wattcast image runs as (distroless `nonroot`).
const WORKLOAD_USER: i64 = 65532;

/// The long-running workloads of the experiment's architecture; no trainer when models are
/// never retrained.
pub fn long_running(spec: &wattcast_crds::PipelineExperimentSpec) -> Vec<&'static str> {
    let all: &[&str] = match spec.architecture {
        Architecture::Streaming => &["bridge", "windower", "coordinator", "trainer"],
        Architecture::Batching => &["bridge", "coordinator", "trainer"],
    };
    all.iter()
        .copied()
        .filter(|&component| component != "trainer" || spec.forecasting.retrain == Retrain::Every)
        .collect()
}

fn secret_env(name: &str, key: &SecretKey) -> Value {
    json!({"name": name, "valueFrom": {"secretKeyRef": {"name": key.secret, "key": key.key}}})
}

/// The `WATTCAST_*` variables that tell a workload where each service is.
pub fn service_env(experiment: &ExperimentRef) -> Vec<Value> {
    let found = locations(experiment, HostNames::Short);
    let mut env = vec![
        json!({"name": "WATTCAST_MQTT_URL", "value": found.mqtt.url}),
        secret_env("WATTCAST_MQTT_USERNAME", &found.mqtt.user),
        secret_env("WATTCAST_MQTT_PASSWORD", &found.mqtt.password),
        secret_env("WATTCAST_POSTGRES_USERNAME", &found.postgres.user),
        secret_env("WATTCAST_POSTGRES_PASSWORD", &found.postgres.password),
        // Without credentials: the workload puts the two variables above into it,
        // percent-encoded (a `$(VAR)` reference here could not encode them).
        json!({"name": "WATTCAST_POSTGRES_URL", "value": found.postgres.url}),
        json!({"name": "WATTCAST_PULSAR_URL", "value": found.pulsar_url}),
        json!({"name": "WATTCAST_PULSAR_ADMIN_URL", "value": found.pulsar_admin_url}),
        json!({"name": "WATTCAST_S3_ENDPOINT", "value": found.object_store.url}),
        secret_env("WATTCAST_S3_ACCESS_KEY", &found.object_store.user),
        secret_env("WATTCAST_S3_SECRET_KEY", &found.object_store.password),
    ];
    for (service, variable, _) in ca_bundles(experiment) {
        env.push(json!({"name": variable, "value": format!("{TLS_DIR}/{service}/{CA_KEY}")}));
    }
    env
}

/// The external services with a `caSecret`: the mount's directory name, the variable naming
/// the file, and the Secret key.
fn ca_bundles(experiment: &ExperimentRef) -> Vec<(&'static str, &'static str, SecretKey)> {
    let found = locations(experiment, HostNames::Short);
    [
        ("mqtt", "WATTCAST_MQTT_CA_FILE", found.mqtt.ca),
        ("postgres", "WATTCAST_POSTGRES_CA_FILE", found.postgres.ca),
        ("pulsar", "WATTCAST_PULSAR_CA_FILE", found.pulsar_ca),
        ("s3", "WATTCAST_S3_CA_FILE", found.object_store.ca),
    ]
    .into_iter()
    .filter_map(|(service, variable, ca)| ca.map(|ca| (service, variable, ca)))
    .collect()
}

/// A pod template running `wattcast <args>` as a workload of the experiment; the setup and
/// sensor pods also get a `dataset.source.configMap` mounted and passed as `--dataset`, and the
/// setup pod a `forecasting.model.source.configMap` as `--model-dir`.
fn pod_template(
    experiment: &ExperimentRef,
    images: &Images,
    component: &str,
    mut args: Vec<String>,
    probes: bool,
    restart_policy: &str,
    resources: Value,
) -> Result<Value, BuildError> {
    let mut mounts = vec![
        json!({"name": "experiment", "mountPath": "/etc/wattcast", "readOnly": true}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ];
    let mut volumes = vec![
        json!({"name": "experiment", "configMap": {"name": experiment.object_name(EXPERIMENT_CONFIG)}}),
        json!({"name": "tmp", "emptyDir": {}}),
    ];
    for (service, _, ca) in ca_bundles(experiment) {
        let volume = format!("{service}-ca");
        volumes.push(json!({"name": volume, "secret": {
            "secretName": ca.secret,
            "items": [{"key": ca.key, "path": CA_KEY}],
        }}));
        mounts.push(json!({"name": volume, "mountPath": format!("{TLS_DIR}/{service}"), "readOnly": true}));
    }
    let dataset_map = experiment
        .spec
        .dataset
        .source
        .as_ref()
        .and_then(|source| source.config_map.as_ref())
        .filter(|_| matches!(component, "setup" | "sensor"));
    if let Some(map) = dataset_map {
        volumes.push(json!({"name": "dataset", "configMap": {
            "name": map.name,
            "items": [{"key": map.key, "path": DATASET_FILE}],
        }}));
        mounts.push(json!({"name": "dataset", "mountPath": DATASET_DIR, "readOnly": true}));
        args.extend(["--dataset".to_owned(), format!("{DATASET_DIR}/{DATASET_FILE}")]);
    }
    let model_map = experiment
        .spec
        .forecasting
        .model
        .source
        .as_ref()
        .and_then(|source| source.config_map.as_ref())
        .filter(|_| component == "setup");
    if let Some(map) = model_map {
        volumes.push(json!({"name": "model", "configMap": {
            "name": map.name,
            "items": [{"key": MODEL_FILE, "path": MODEL_FILE}, {"key": SCALER_FILE, "path": SCALER_FILE}],
        }}));
        mounts.push(json!({"name": "model", "mountPath": MODEL_DIR, "readOnly": true}));
        args.extend(["--model-dir".to_owned(), MODEL_DIR.to_owned()]);
    }
    let mut container = json!({
        "name": component,
        "image": images.wattcast,
        "args": args,
        "env": service_env(experiment),
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "resources": resources,
        "securityContext": security::container_json()?,
        "volumeMounts": mounts,
    });
    if probes {
        container["livenessProbe"] =
            json!({"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 20});
        container["readinessProbe"] =
            json!({"httpGet": {"path": "/readyz", "port": "metrics"}, "periodSeconds": 5});
    }
    Ok(json!({
        "metadata": {
            "labels": experiment.labels(component, Role::Workload),
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": METRICS_PORT.to_string()},
        },
        "spec": {
            "automountServiceAccountToken": false,
            "restartPolicy": restart_policy,
            "securityContext": security::pod_json(WORKLOAD_USER)?,
            "containers": [container],
            "volumes": volumes,
        },
    }))
}

fn workload_args(component: &str) -> Vec<String> {
    vec![
        component.to_owned(),
        "--experiment".to_owned(),
        EXPERIMENT_FILE.to_owned(),
        "--metrics-addr".to_owned(),
        format!("0.0.0.0:{METRICS_PORT}"),
    ]
}

/// A sensor pod's requests, grown with its share of devices: measured 10m CPU and 32 MiB for one
/// device replaying in real time (docs/performance.md); per further device an estimate of 2m
/// CPU and 1 MiB (its readings and their planned publications).
fn sensor_resources(devices: &wattcast_crds::DevicesSpec) -> Value {
    let share = devices.per_sensor_pod.min(devices.count).max(1);
    let cpu = 10 + 2 * (share - 1);
    let memory = 32 + (share - 1);
    json!({
        "requests": {"cpu": format!("{cpu}m"), "memory": format!("{memory}Mi")},
        "limits": {"memory": format!("{}Mi", 256 + memory)},
    })
}

/// Adds the experiment file, the Jobs and the Deployments.
pub fn add(
    objects: &mut DesiredObjects,
    experiment: &ExperimentRef,
    images: &Images,
) -> Result<(), BuildError> {
    let file = serde_yaml::to_string(&json!({
        "apiVersion": "wattcast.io/v1alpha1",
        "kind": "PipelineExperiment",
        "metadata": {"name": experiment.name, "namespace": experiment.namespace},
        "spec": experiment.spec,
    }))?;
    objects.config_maps.push(typed(
        "experiment ConfigMap",
        json!({
            "metadata": experiment.metadata(EXPERIMENT_CONFIG, Role::Workload),
            "data": {"experiment.yaml": file},
        }),
    )?);

    // Requests fit a 2-CPU node that also runs the control plane (measured in
    // docs/performance.md): a sensor pod replays one device, a few readings a second; training
    // bursts above its request when the node has room (no CPU limits anywhere).
    let small = json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}});
    let training = json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}});
    objects.jobs.push(typed(
        "setup Job",
        json!({
            "metadata": experiment.metadata("setup", Role::Workload),
            "spec": {
                "backoffLimit": 6,
                // A setup that refuses the experiment's input (a dataset that does not fit the
                // spec) exits with EXIT_INVALID_INPUT: retrying cannot help, so the Job fails
                // at once; its pod's termination message says why.
                "podFailurePolicy": {"rules": [{
                    "action": "FailJob",
                    "onExitCodes": {"containerName": "setup", "operator": "In", "values": [wattcast_core::experiment::EXIT_INVALID_INPUT]},
                }]},
                "template": pod_template(experiment, images, "setup", workload_args("setup"), false, "Never", training.clone())?,
            },
        }),
    )?);
    // Pod i replays devices i × perSensorPod + 1 onwards. Every share must run at once (a
    // share that waited would replay late), so parallelism is the pod count; a failed pod is
    // retried for its own share only (backoffLimitPerIndex).
    let pods = experiment.spec.devices.sensor_pods();
    objects.jobs.push(typed(
        "sensor Job",
        json!({
            "metadata": experiment.metadata("sensor", Role::Workload),
            "spec": {
                "completionMode": "Indexed",
                "completions": pods,
                "parallelism": pods,
                "backoffLimitPerIndex": 3,
                "template": pod_template(experiment, images, "sensor", workload_args("sensor"), false, "Never", sensor_resources(&experiment.spec.devices))?,
            },
        }),
    )?);
    for component in long_running(&experiment.spec) {
        let resources = if component == "trainer" {
            training.clone()
        } else {
            small.clone()
        };
        let mut spec = json!({
            "selector": {"matchLabels": experiment.selector(component)},
            "template": pod_template(experiment, images, component, workload_args(component), true, "Always", resources)?,
        });
        if let Some(replicas) = owned_replicas(experiment, component) {
            spec["replicas"] = json!(replicas);
        }
        objects.deployments.push(typed(
            &format!("{component} Deployment"),
            json!({
                "metadata": experiment.metadata(component, Role::Workload),
                "spec": spec,
            }),
        )?);
    }
    Ok(())
}

/// The replicas the operator applies for a long-running workload, or None for the windower:
/// windowers share the readings by device (a Key_Shared subscription) and hand their open
/// windows back when they stop, so they may be scaled mid-run (`kubectl scale`, an autoscaler).
/// Its Deployment starts at the API server's default of one replica, and the operator's
/// server-side apply leaves the field to whoever scales it instead of putting it back.
fn owned_replicas(experiment: &ExperimentRef, component: &str) -> Option<u32> {
    match component {
        "windower" => None,
        "trainer" => Some(experiment.spec.forecasting.trainers),
        _ => Some(1),
    }
}
