//! The managed infrastructure of an experiment — Mosquitto, Pulsar standalone, PostgreSQL and
//! RustFS — each left out when the spec points at an external service.

use super::credentials::{self, COMPONENT as CREDENTIALS};
use super::{DesiredObjects, security, specs};
use crate::component::Component;
use crate::experiment_ref::{ExperimentRef, Role};
use crate::images::Images;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec,
    Probe, Service, ServiceSpec, Volume, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

/// Mosquitto's component name.
pub const MOSQUITTO: &str = Component::Mosquitto.name();
/// Pulsar's component name.
pub const PULSAR: &str = Component::Pulsar.name();
/// PostgreSQL's component name.
pub const POSTGRES: &str = Component::Postgres.name();
/// RustFS's component name.
pub const RUSTFS: &str = Component::Rustfs.name();
/// The database the experiment's schema lives in.
pub const DATABASE: &str = "wattcast";

const MOSQUITTO_CONF: &str = "listener 1883
allow_anonymous false
password_file /mosquitto/auth/passwd
persistence true
persistence_location /mosquitto/data/
# Saved every 5 s (the default is 30 minutes): a broker that crashes comes back with the bridge's
# session, and queues for it what sensors send until the bridge reconnects.
autosave_interval 5
log_dest stdout
# The bridge acknowledges a QoS 1 message only once Pulsar has it; Mosquitto's default of 20 in
# flight per client would cap it by Pulsar's confirm latency.
max_inflight_messages 1000
# While the bridge is away its persistent session queues QoS 1 messages; past the default of
# 1,000 Mosquitto would drop them, so the queue is bounded by payload bytes (128 MiB, within
# the container's 512 MiB limit) instead: about a million readings.
max_queued_messages 0
max_queued_bytes 134217728
";

/// The embedded bookie's port (`bin/pulsar standalone`'s default `--bookkeeper-port`).
const PULSAR_BOOKIE_PORT: u16 = 3181;
/// Where the operator's `standalone.conf` for Pulsar is mounted (`PULSAR_STANDALONE_CONF`).
const PULSAR_CONF_DIR: &str = "/pulsar/conf-wattcast";

/// Pulsar standalone's configuration. A broker advertises its own host name by default, which
/// for a pod is a name only it can resolve; clients redirected there by a topic lookup would
/// fail, so the broker advertises its Service's qualified name instead (whose Service also
/// routes to the broker before it is ready: its own health check connects through that name).
/// The embedded bookie reads the same file and registers under the same name, so it listens on
/// a fixed port the Service carries too (by default it takes a random one).
fn pulsar_standalone_conf(advertised: &str) -> String {
    format!(
        "clusterName=standalone
bindAddress=0.0.0.0
advertisedAddress={advertised}
managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
functionsWorkerEnabled=false
# Pulsar's BKCluster gives the bookie the standalone port (3181) only with this set, else a
# random one.
allowEphemeralPorts=true
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
brokerDeleteInactiveTopicsEnabled=false
# A small node: fewer threads and smaller caches.
numIOThreads=2
numHttpServerThreads=4
# The windower acknowledges a reading only once its window is stored, so its subscription always
# holds up to a minute of readings unacknowledged, and at each minute boundary it falls a second
# or so behind while it emits every device's window. Pulsar's defaults then stop caching for it:
# a cursor more than 1,000 entries behind counts as backlogged and gets no cache, and cached
# entries go after 1 s. Every read became a BookKeeper read, slower than 5,000 readings a second
# arrive, and the windower never caught up (the soak in docs/performance.md: window latency grew
# to 50 s within 20 minutes). So a cursor up to 5 minutes of readings behind stays cached, and
# entries stay for a minute, within a cache sized for that (direct memory is 512 MiB).
managedLedgerCursorBackloggedThreshold=1500000
managedLedgerCacheEvictionTimeThresholdMillis=60000
managedLedgerCacheSizeMB=192
dbStorage_writeCacheMaxSizeMb=32
dbStorage_readAheadCacheMaxSizeMb=32
dbStorage_rocksDB_blockCacheSize=16777216
journalMaxSizeMB=256
# The bookie measures the filesystem its volume is on, not the volume: with a node-local
# provisioner that is the node's whole disk, and Pulsar's default turns the bookie read-only at
# 95 % of it (Not enough non-faulty bookies, on every topic: the broker is never healthy) while
# the volume itself has room. It goes read-only at 99 % instead, as the test env's does.
diskUsageThreshold=0.99
diskUsageWarnThreshold=0.98
diskUsageLwmThreshold=0.98
"
    )
}

fn secret_env(name: &str, experiment: &ExperimentRef, key: &str) -> EnvVar {
    specs::env_from_secret(name, &experiment.object_name(CREDENTIALS), key)
}

fn service(experiment: &ExperimentRef, component: &str, ports: &[(&str, u16)]) -> Service {
    Service {
        metadata: experiment.metadata(component, Role::Infrastructure),
        spec: Some(ServiceSpec {
            selector: Some(experiment.selector(component)),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port)| specs::service_port(name, *port))
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn config_map(experiment: &ExperimentRef, component: &str, file: &str, contents: String) -> ConfigMap {
    ConfigMap {
        metadata: experiment.metadata(component, Role::Infrastructure),
        data: Some(BTreeMap::from([(file.to_owned(), contents)])),
        ..ConfigMap::default()
    }
}

/// The pod template of a managed service's single pod, run as `user`.
fn pod_template(
    experiment: &ExperimentRef,
    component: &str,
    user: i64,
    init_containers: Option<Vec<Container>>,
    containers: Vec<Container>,
    volumes: Vec<Volume>,
) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(experiment.labels(component, Role::Infrastructure)),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            automount_service_account_token: Some(false),
            security_context: Some(security::pod(user)),
            init_containers,
            containers,
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
    }
}

/// A StatefulSet of one replica with a data volume claim.
fn stateful_set(
    experiment: &ExperimentRef,
    component: &str,
    user: i64,
    container: Container,
    volumes: Vec<Volume>,
    storage: &str,
) -> StatefulSet {
    StatefulSet {
        metadata: experiment.metadata(component, Role::Infrastructure),
        spec: Some(StatefulSetSpec {
            service_name: Some(experiment.object_name(component)),
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(experiment.selector(component)),
                ..LabelSelector::default()
            },
            template: pod_template(experiment, component, user, None, vec![container], volumes),
            // The data volume goes with the StatefulSet (DeleteAll, or deleting the experiment).
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Delete".to_owned()),
                when_scaled: Some("Retain".to_owned()),
            }),
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".to_owned()),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_owned(),
                            Quantity(storage.to_owned()),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                ..PersistentVolumeClaim::default()
            }]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// Adds the managed services the spec does not replace with external ones.
pub fn add(objects: &mut DesiredObjects, experiment: &ExperimentRef, images: &Images) {
    let infrastructure = &experiment.spec.infrastructure;
    if infrastructure.mqtt.is_none() {
        add_mosquitto(objects, experiment, images);
    }
    if infrastructure.pulsar.is_none() {
        add_pulsar(objects, experiment, images);
    }
    if infrastructure.postgres.is_none() {
        add_postgres(objects, experiment, images);
    }
    if infrastructure.object_store.is_none() {
        add_rustfs(objects, experiment, images);
    }
}

fn add_pulsar(objects: &mut DesiredObjects, experiment: &ExperimentRef, images: &Images) {
    let advertised = format!("{}.{}.svc", experiment.object_name(PULSAR), experiment.namespace);
    objects.config_maps.push(config_map(
        experiment,
        PULSAR,
        "standalone.conf",
        pulsar_standalone_conf(&advertised),
    ));
    let health = "/admin/v2/brokers/health";
    let container = Container {
        name: PULSAR.to_owned(),
        image: Some(images.pulsar.clone()),
        command: Some(specs::strings(&[
            "bin/pulsar",
            "standalone",
            "--no-functions-worker",
            "--no-stream-storage",
        ])),
        env: Some(vec![
            specs::env("PULSAR_MEM", "-Xms512m -Xmx1g -XX:MaxDirectMemorySize=512m"),
            specs::env("PULSAR_LOG_DIR", "/pulsar/logs"),
            specs::env(
                "PULSAR_STANDALONE_CONF",
                format!("{PULSAR_CONF_DIR}/standalone.conf"),
            ),
        ]),
        ports: Some(vec![
            specs::container_port("pulsar", 6650),
            specs::container_port("http", 8080),
            specs::container_port("bookie", PULSAR_BOOKIE_PORT),
        ]),
        readiness_probe: Some(Probe {
            timeout_seconds: Some(5),
            ..specs::http_probe(health, "http", 10)
        }),
        startup_probe: Some(Probe {
            failure_threshold: Some(60),
            ..specs::http_probe(health, "http", 5)
        }),
        resources: Some(specs::resources("500m", "1536Mi", "2Gi")),
        security_context: Some(security::container()),
        volume_mounts: Some(vec![
            specs::mount("data", "/pulsar/data"),
            specs::read_only_mount("config", PULSAR_CONF_DIR),
            specs::mount("logs", "/pulsar/logs"),
            specs::mount("tmp", "/tmp"),
        ]),
        ..Container::default()
    };
    let volumes = vec![
        specs::config_map_volume("config", &experiment.object_name(PULSAR), &[]),
        specs::empty_dir("logs"),
        specs::empty_dir("tmp"),
    ];
    // The image's pulsar user.
    objects
        .stateful_sets
        .push(stateful_set(experiment, PULSAR, 10000, container, volumes, "5Gi"));
    let mut pulsar_service = service(
        experiment,
        PULSAR,
        &[("pulsar", 6650), ("http", 8080), ("bookie", PULSAR_BOOKIE_PORT)],
    );
    if let Some(spec) = pulsar_service.spec.as_mut() {
        spec.publish_not_ready_addresses = Some(true);
    }
    objects.services.push(pulsar_service);
}

fn add_postgres(objects: &mut DesiredObjects, experiment: &ExperimentRef, images: &Images) {
    let container = Container {
        name: POSTGRES.to_owned(),
        image: Some(images.postgres.clone()),
        env: Some(vec![
            secret_env("POSTGRES_USER", experiment, credentials::POSTGRES_USERNAME),
            secret_env("POSTGRES_PASSWORD", experiment, credentials::POSTGRES_PASSWORD),
            specs::env("POSTGRES_DB", DATABASE),
            specs::env("PGDATA", "/var/lib/postgresql/data/pgdata"),
        ]),
        ports: Some(vec![specs::container_port("postgres", 5432)]),
        readiness_probe: Some(specs::exec_probe(
            &["sh", "-c", "pg_isready -U \"$POSTGRES_USER\" -d wattcast"],
            5,
        )),
        resources: Some(specs::resources("250m", "256Mi", "1Gi")),
        security_context: Some(security::container()),
        volume_mounts: Some(vec![
            specs::mount("data", "/var/lib/postgresql/data"),
            specs::mount("run", "/var/run/postgresql"),
            specs::mount("tmp", "/tmp"),
        ]),
        ..Container::default()
    };
    let volumes = vec![specs::empty_dir("run"), specs::empty_dir("tmp")];
    // The alpine image's postgres user.
    objects
        .stateful_sets
        .push(stateful_set(experiment, POSTGRES, 70, container, volumes, "5Gi"));
    objects
        .services
        .push(service(experiment, POSTGRES, &[("postgres", 5432)]));
}

fn add_rustfs(objects: &mut DesiredObjects, experiment: &ExperimentRef, images: &Images) {
    let container = Container {
        name: RUSTFS.to_owned(),
        image: Some(images.rustfs.clone()),
        env: Some(vec![
            secret_env("RUSTFS_ACCESS_KEY", experiment, credentials::S3_ACCESS_KEY),
            secret_env("RUSTFS_SECRET_KEY", experiment, credentials::S3_SECRET_KEY),
            specs::env("RUSTFS_VOLUMES", "/data"),
            specs::env("RUSTFS_ADDRESS", "0.0.0.0:9000"),
            specs::env("RUSTFS_CONSOLE_ENABLE", "false"),
        ]),
        ports: Some(vec![specs::container_port("s3", 9000)]),
        readiness_probe: Some(specs::tcp_probe("s3", 5)),
        resources: Some(specs::resources("100m", "128Mi", "512Mi")),
        security_context: Some(security::container()),
        volume_mounts: Some(vec![specs::mount("data", "/data"), specs::mount("tmp", "/tmp")]),
        ..Container::default()
    };
    objects.stateful_sets.push(stateful_set(
        experiment,
        RUSTFS,
        10001,
        container,
        vec![specs::empty_dir("tmp")],
        "2Gi",
    ));
    objects
        .services
        .push(service(experiment, RUSTFS, &[("s3", 9000)]));
}

fn add_mosquitto(objects: &mut DesiredObjects, experiment: &ExperimentRef, images: &Images) {
    objects.config_maps.push(config_map(
        experiment,
        MOSQUITTO,
        "mosquitto.conf",
        MOSQUITTO_CONF.to_owned(),
    ));
    let password_file = Container {
        name: "password-file".to_owned(),
        image: Some(images.mosquitto.clone()),
        command: Some(specs::strings(&[
            "sh",
            "-c",
            "mosquitto_passwd -b -c /mosquitto/auth/passwd \"$MQTT_USERNAME\" \"$MQTT_PASSWORD\"",
        ])),
        env: Some(vec![
            secret_env("MQTT_USERNAME", experiment, credentials::MQTT_USERNAME),
            secret_env("MQTT_PASSWORD", experiment, credentials::MQTT_PASSWORD),
        ]),
        security_context: Some(security::container()),
        volume_mounts: Some(vec![specs::mount("auth", "/mosquitto/auth")]),
        ..Container::default()
    };
    let mosquitto = Container {
        name: MOSQUITTO.to_owned(),
        image: Some(images.mosquitto.clone()),
        command: Some(specs::strings(&[
            "mosquitto",
            "-c",
            "/mosquitto/config/mosquitto.conf",
        ])),
        ports: Some(vec![specs::container_port("mqtt", 1883)]),
        readiness_probe: Some(specs::tcp_probe("mqtt", 5)),
        liveness_probe: Some(specs::tcp_probe("mqtt", 20)),
        resources: Some(specs::resources("100m", "64Mi", "512Mi")),
        security_context: Some(security::container()),
        volume_mounts: Some(vec![
            specs::read_only_mount("config", "/mosquitto/config"),
            specs::read_only_mount("auth", "/mosquitto/auth"),
            specs::mount("data", "/mosquitto/data"),
        ]),
        ..Container::default()
    };
    let volumes = vec![
        specs::config_map_volume("config", &experiment.object_name(MOSQUITTO), &[]),
        specs::memory_dir("auth"),
        specs::empty_dir("data"),
    ];
    objects.deployments.push(Deployment {
        metadata: experiment.metadata(MOSQUITTO, Role::Infrastructure),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                ..DeploymentStrategy::default()
            }),
            selector: LabelSelector {
                match_labels: Some(experiment.selector(MOSQUITTO)),
                ..LabelSelector::default()
            },
            // The image's mosquitto user.
            template: pod_template(
                experiment,
                MOSQUITTO,
                1883,
                Some(vec![password_file]),
                vec![mosquitto],
                volumes,
            ),
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    });
    objects
        .services
        .push(service(experiment, MOSQUITTO, &[("mqtt", 1883)]));
}
