//! The pipeline's workloads: the experiment file they all read, the setup Job, the sensors'
//! indexed Job, and the bridge, windower, coordinator and trainer Deployments.

use super::locations::{CA_KEY, HostNames, SecretKey, locations};
use super::{BuildError, DesiredObjects, security, specs};
use crate::component::Component;
use crate::experiment_ref::{ExperimentRef, Role};
use crate::images::Images;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, PodSpec, PodTemplateSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;
use wattcast_core::artifacts::{MODEL_FILE, SCALER_FILE};
use wattcast_core::experiment::EXIT_INVALID_INPUT;
use wattcast_crds::{Architecture, PipelineExperiment, Retrain};

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
pub fn long_running(spec: &wattcast_crds::PipelineExperimentSpec) -> Vec<Component> {
    let all: &[Component] = match spec.architecture {
        Architecture::Streaming => &[
            Component::Bridge,
            Component::Windower,
            Component::Coordinator,
            Component::Trainer,
        ],
        Architecture::Batching => &[Component::Bridge, Component::Coordinator, Component::Trainer],
    };
    all.iter()
        .copied()
        .filter(|&component| component != Component::Trainer || spec.forecasting.retrain == Retrain::Every)
        .collect()
}

fn secret_env(name: &str, key: &SecretKey) -> EnvVar {
    specs::env_from_secret(name, &key.secret, &key.key)
}

/// The `WATTCAST_*` variables that tell a workload where each service is.
pub fn service_env(experiment: &ExperimentRef) -> Vec<EnvVar> {
    let found = locations(experiment, HostNames::Short);
    let mut env = vec![
        specs::env("WATTCAST_MQTT_URL", found.mqtt.url),
        secret_env("WATTCAST_MQTT_USERNAME", &found.mqtt.user),
        secret_env("WATTCAST_MQTT_PASSWORD", &found.mqtt.password),
        secret_env("WATTCAST_POSTGRES_USERNAME", &found.postgres.user),
        secret_env("WATTCAST_POSTGRES_PASSWORD", &found.postgres.password),
        // Without credentials: the workload puts the two variables above into it,
        // percent-encoded (a `$(VAR)` reference here could not encode them).
        specs::env("WATTCAST_POSTGRES_URL", found.postgres.url),
        specs::env("WATTCAST_PULSAR_URL", found.pulsar_url),
        specs::env("WATTCAST_PULSAR_ADMIN_URL", found.pulsar_admin_url),
        specs::env("WATTCAST_S3_ENDPOINT", found.object_store.url),
        secret_env("WATTCAST_S3_ACCESS_KEY", &found.object_store.user),
        secret_env("WATTCAST_S3_SECRET_KEY", &found.object_store.password),
    ];
    for (service, variable, _) in ca_bundles(experiment) {
        env.push(specs::env(variable, format!("{TLS_DIR}/{service}/{CA_KEY}")));
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

/// How a workload's pod runs: restarted in place (a Deployment's) or not (a Job's), and
/// whether the kubelet probes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodKind {
    /// A Job's pod: runs to completion, never restarted in place, not probed.
    RunToCompletion,
    /// A Deployment's pod: restarted when it exits, probed on `/healthz` and `/readyz`.
    LongRunning,
}

/// A pod template running `wattcast <args>` as a workload of the experiment; the setup and
/// sensor pods also get a `dataset.source.configMap` mounted and passed as `--dataset`, and the
/// setup pod a `forecasting.model.source.configMap` as `--model-dir`.
fn pod_template(
    experiment: &ExperimentRef,
    images: &Images,
    component: Component,
    kind: PodKind,
    resources: ResourceRequirements,
) -> PodTemplateSpec {
    let mut args = workload_args(component);
    let mut mounts = vec![
        specs::read_only_mount("experiment", "/etc/wattcast"),
        specs::mount("tmp", "/tmp"),
    ];
    let mut volumes = vec![
        specs::config_map_volume("experiment", &experiment.object_name(EXPERIMENT_CONFIG), &[]),
        specs::empty_dir("tmp"),
    ];
    for (service, _, ca) in ca_bundles(experiment) {
        let volume = format!("{service}-ca");
        volumes.push(specs::secret_volume(&volume, &ca.secret, &[(&ca.key, CA_KEY)]));
        mounts.push(specs::read_only_mount(&volume, &format!("{TLS_DIR}/{service}")));
    }
    let dataset_map = experiment
        .spec
        .dataset
        .source
        .as_ref()
        .and_then(|source| source.config_map.as_ref())
        .filter(|_| matches!(component, Component::Setup | Component::Sensor));
    if let Some(map) = dataset_map {
        volumes.push(specs::config_map_volume(
            "dataset",
            &map.name,
            &[(&map.key, DATASET_FILE)],
        ));
        mounts.push(specs::read_only_mount("dataset", DATASET_DIR));
        args.extend(["--dataset".to_owned(), format!("{DATASET_DIR}/{DATASET_FILE}")]);
    }
    let model_map = experiment
        .spec
        .forecasting
        .model
        .source
        .as_ref()
        .and_then(|source| source.config_map.as_ref())
        .filter(|_| component == Component::Setup);
    if let Some(map) = model_map {
        volumes.push(specs::config_map_volume(
            "model",
            &map.name,
            &[(MODEL_FILE, MODEL_FILE), (SCALER_FILE, SCALER_FILE)],
        ));
        mounts.push(specs::read_only_mount("model", MODEL_DIR));
        args.extend(["--model-dir".to_owned(), MODEL_DIR.to_owned()]);
    }
    let long_running = kind == PodKind::LongRunning;
    let container = Container {
        name: component.name().to_owned(),
        image: Some(images.wattcast.clone()),
        args: Some(args),
        env: Some(service_env(experiment)),
        ports: Some(vec![specs::container_port("metrics", METRICS_PORT)]),
        resources: Some(resources),
        security_context: Some(security::container()),
        volume_mounts: Some(mounts),
        liveness_probe: long_running.then(|| specs::http_probe("/healthz", "metrics", 20)),
        readiness_probe: long_running.then(|| specs::http_probe("/readyz", "metrics", 5)),
        ..Container::default()
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(experiment.labels(component.name(), Role::Workload)),
            annotations: Some(BTreeMap::from([
                ("prometheus.io/scrape".to_owned(), "true".to_owned()),
                ("prometheus.io/port".to_owned(), METRICS_PORT.to_string()),
            ])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            automount_service_account_token: Some(false),
            restart_policy: Some(if long_running { "Always" } else { "Never" }.to_owned()),
            security_context: Some(security::pod(WORKLOAD_USER)),
            containers: vec![container],
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
    }
}

fn workload_args(component: Component) -> Vec<String> {
    vec![
        component.name().to_owned(),
        "--experiment".to_owned(),
        EXPERIMENT_FILE.to_owned(),
        "--metrics-addr".to_owned(),
        format!("0.0.0.0:{METRICS_PORT}"),
    ]
}

/// A sensor pod's requests, grown with its share of devices: measured 10m CPU and 32 MiB for one
/// device replaying in real time (docs/performance.md); per further device an estimate of 2m
/// CPU and 1 MiB (its readings and their planned publications).
fn sensor_resources(devices: &wattcast_crds::DevicesSpec) -> ResourceRequirements {
    let share = devices.per_sensor_pod.min(devices.count).max(1);
    let cpu = 10 + 2 * (share - 1);
    let memory = 32 + (share - 1);
    specs::resources(
        &format!("{cpu}m"),
        &format!("{memory}Mi"),
        &format!("{}Mi", 256 + memory),
    )
}

/// The experiment file every workload reads: the resource itself, as `wattcast local` takes it.
fn experiment_file(experiment: &ExperimentRef) -> Result<String, BuildError> {
    let resource = PipelineExperiment {
        metadata: ObjectMeta {
            name: Some(experiment.name.clone()),
            namespace: Some(experiment.namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: experiment.spec.clone(),
        status: None,
    };
    Ok(serde_yaml::to_string(&resource)?)
}

/// Adds the experiment file, the Jobs and the Deployments.
pub fn add(
    objects: &mut DesiredObjects,
    experiment: &ExperimentRef,
    images: &Images,
) -> Result<(), BuildError> {
    objects.config_maps.push(ConfigMap {
        metadata: experiment.metadata(EXPERIMENT_CONFIG, Role::Workload),
        data: Some(BTreeMap::from([(
            "experiment.yaml".to_owned(),
            experiment_file(experiment)?,
        )])),
        ..ConfigMap::default()
    });

    // Requests fit a 2-CPU node that also runs the control plane (measured in
    // docs/performance.md): a sensor pod replays one device, a few readings a second; training
    // bursts above its request when the node has room (no CPU limits anywhere).
    let small = || specs::resources("100m", "64Mi", "256Mi");
    let training = || specs::resources("250m", "256Mi", "1Gi");
    objects.jobs.push(Job {
        metadata: experiment.metadata(Component::Setup.name(), Role::Workload),
        spec: Some(JobSpec {
            backoff_limit: Some(6),
            // A setup that refuses the experiment's input (a dataset that does not fit the
            // spec) exits with EXIT_INVALID_INPUT: retrying cannot help, so the Job fails at
            // once; its pod's termination message says why.
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![PodFailurePolicyRule {
                    action: "FailJob".to_owned(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: Some(Component::Setup.name().to_owned()),
                        operator: "In".to_owned(),
                        values: vec![i32::from(EXIT_INVALID_INPUT)],
                    }),
                    ..PodFailurePolicyRule::default()
                }],
            }),
            template: pod_template(
                experiment,
                images,
                Component::Setup,
                PodKind::RunToCompletion,
                training(),
            ),
            ..JobSpec::default()
        }),
        ..Job::default()
    });
    // Pod i replays devices i × perSensorPod + 1 onwards. Every share must run at once (a
    // share that waited would replay late), so parallelism is the pod count; a failed pod is
    // retried for its own share only (backoffLimitPerIndex).
    let pods = i32::try_from(experiment.spec.devices.sensor_pods()).unwrap_or(i32::MAX);
    objects.jobs.push(Job {
        metadata: experiment.metadata(Component::Sensor.name(), Role::Workload),
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".to_owned()),
            completions: Some(pods),
            parallelism: Some(pods),
            backoff_limit_per_index: Some(3),
            template: pod_template(
                experiment,
                images,
                Component::Sensor,
                PodKind::RunToCompletion,
                sensor_resources(&experiment.spec.devices),
            ),
            ..JobSpec::default()
        }),
        ..Job::default()
    });
    for component in long_running(&experiment.spec) {
        let resources = if component == Component::Trainer {
            training()
        } else {
            small()
        };
        objects.deployments.push(Deployment {
            metadata: experiment.metadata(component.name(), Role::Workload),
            spec: Some(DeploymentSpec {
                replicas: owned_replicas(experiment, component)
                    .map(|replicas| i32::try_from(replicas).unwrap_or(i32::MAX)),
                selector: LabelSelector {
                    match_labels: Some(experiment.selector(component.name())),
                    ..LabelSelector::default()
                },
                template: pod_template(experiment, images, component, PodKind::LongRunning, resources),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        });
    }
    Ok(())
}

/// The replicas the operator applies for a long-running workload, or None for the windower:
/// windowers share the readings by device (a Key_Shared subscription) and hand their open
/// windows back when they stop, so they may be scaled mid-run (`kubectl scale`, an autoscaler).
/// Its Deployment starts at the API server's default of one replica, and the operator's
/// server-side apply leaves the field to whoever scales it instead of putting it back.
fn owned_replicas(experiment: &ExperimentRef, component: Component) -> Option<u32> {
    match component {
        Component::Windower => None,
        Component::Trainer => Some(experiment.spec.forecasting.trainers),
        _ => Some(1),
    }
}
