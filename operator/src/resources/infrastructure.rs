//! The managed infrastructure of an experiment — Mosquitto, Pulsar standalone, PostgreSQL and
//! RustFS — each left out when the spec points at an external service.

use super::credentials::{self, COMPONENT as CREDENTIALS};
use super::{BuildError, DesiredObjects, security, typed};
use crate::experiment_ref::{ExperimentRef, Role};
use crate::images::Images;
use serde_json::{Value, json};

/// Mosquitto's component name.
pub const MOSQUITTO: &str = "mosquitto";
/// Pulsar's component name.
pub const PULSAR: &str = "pulsar";
/// PostgreSQL's component name.
pub const POSTGRES: &str = "postgres";
/// RustFS's component name.
pub const RUSTFS: &str = "rustfs";
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

fn secret_env(name: &str, experiment: &ExperimentRef, key: &str) -> Value {
    json!({"name": name, "valueFrom": {"secretKeyRef": {"name": experiment.object_name(CREDENTIALS), "key": key}}})
}

fn service(
    experiment: &ExperimentRef,
    component: &str,
    ports: &[(&str, u16)],
) -> Result<k8s_openapi::api::core::v1::Service, BuildError> {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(name, port)| json!({"name": name, "port": port, "targetPort": name}))
        .collect();
    typed(
        &format!("{component} Service"),
        json!({
            "metadata": experiment.metadata(component, Role::Infrastructure),
            "spec": {"selector": experiment.selector(component), "ports": ports},
        }),
    )
}

/// A StatefulSet of one replica with a data volume claim.
fn stateful_set(
    experiment: &ExperimentRef,
    component: &str,
    user: i64,
    containers: Value,
    volumes: Value,
    storage: &str,
) -> Result<k8s_openapi::api::apps::v1::StatefulSet, BuildError> {
    typed(
        &format!("{component} StatefulSet"),
        json!({
            "metadata": experiment.metadata(component, Role::Infrastructure),
            "spec": {
                "serviceName": experiment.object_name(component),
                "replicas": 1,
                "selector": {"matchLabels": experiment.selector(component)},
                "template": {
                    "metadata": {"labels": experiment.labels(component, Role::Infrastructure)},
                    "spec": {
                        "automountServiceAccountToken": false,
                        "securityContext": security::pod_json(user)?,
                        "containers": containers,
                        "volumes": volumes,
                    },
                },
                // The data volume goes with the StatefulSet (DeleteAll, or deleting the experiment).
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
                }],
            },
        }),
    )
}

/// Adds the managed services the spec does not replace with external ones.
pub fn add(
    objects: &mut DesiredObjects,
    experiment: &ExperimentRef,
    images: &Images,
) -> Result<(), BuildError> {
    let infrastructure = &experiment.spec.infrastructure;
    let container_security = security::container_json()?;
    if infrastructure.mqtt.is_none() {
        add_mosquitto(objects, experiment, images, &container_security)?;
    }
    if infrastructure.pulsar.is_none() {
        let advertised = format!("{}.{}.svc", experiment.object_name(PULSAR), experiment.namespace);
        objects.config_maps.push(typed(
            "pulsar ConfigMap",
            json!({
                "metadata": experiment.metadata(PULSAR, Role::Infrastructure),
                "data": {"standalone.conf": pulsar_standalone_conf(&advertised)},
            }),
        )?);
        let containers = json!([{
            "name": "pulsar",
            "image": images.pulsar,
            "command": ["bin/pulsar", "standalone", "--no-functions-worker", "--no-stream-storage"],
            "env": [
                {"name": "PULSAR_MEM", "value": "-Xms512m -Xmx1g -XX:MaxDirectMemorySize=512m"},
                {"name": "PULSAR_LOG_DIR", "value": "/pulsar/logs"},
                {"name": "PULSAR_STANDALONE_CONF", "value": format!("{PULSAR_CONF_DIR}/standalone.conf")},
            ],
            "ports": [
                {"name": "pulsar", "containerPort": 6650},
                {"name": "http", "containerPort": 8080},
                {"name": "bookie", "containerPort": PULSAR_BOOKIE_PORT},
            ],
            "readinessProbe": {"httpGet": {"path": "/admin/v2/brokers/health", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5},
            "startupProbe": {"httpGet": {"path": "/admin/v2/brokers/health", "port": "http"}, "periodSeconds": 5, "failureThreshold": 60},
            "resources": {"requests": {"cpu": "500m", "memory": "1536Mi"}, "limits": {"memory": "2Gi"}},
            "securityContext": container_security,
            "volumeMounts": [
                {"name": "data", "mountPath": "/pulsar/data"},
                {"name": "config", "mountPath": PULSAR_CONF_DIR, "readOnly": true},
                {"name": "logs", "mountPath": "/pulsar/logs"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }]);
        let volumes = json!([
            {"name": "config", "configMap": {"name": experiment.object_name(PULSAR)}},
            {"name": "logs", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
        ]);
        // The image's pulsar user.
        objects.stateful_sets.push(stateful_set(
            experiment, PULSAR, 10000, containers, volumes, "5Gi",
        )?);
        let mut pulsar_service = service(
            experiment,
            PULSAR,
            &[("pulsar", 6650), ("http", 8080), ("bookie", PULSAR_BOOKIE_PORT)],
        )?;
        if let Some(spec) = pulsar_service.spec.as_mut() {
            spec.publish_not_ready_addresses = Some(true);
        }
        objects.services.push(pulsar_service);
    }
    if infrastructure.postgres.is_none() {
        let containers = json!([{
            "name": "postgres",
            "image": images.postgres,
            "env": [
                secret_env("POSTGRES_USER", experiment, credentials::POSTGRES_USERNAME),
                secret_env("POSTGRES_PASSWORD", experiment, credentials::POSTGRES_PASSWORD),
                {"name": "POSTGRES_DB", "value": DATABASE},
                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
            ],
            "ports": [{"name": "postgres", "containerPort": 5432}],
            "readinessProbe": {"exec": {"command": ["sh", "-c", "pg_isready -U \"$POSTGRES_USER\" -d wattcast"]}, "periodSeconds": 5},
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
            "securityContext": container_security,
            "volumeMounts": [
                {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                {"name": "run", "mountPath": "/var/run/postgresql"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }]);
        let volumes = json!([{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]);
        // The alpine image's postgres user.
        objects.stateful_sets.push(stateful_set(
            experiment, POSTGRES, 70, containers, volumes, "5Gi",
        )?);
        objects
            .services
            .push(service(experiment, POSTGRES, &[("postgres", 5432)])?);
    }
    if infrastructure.object_store.is_none() {
        let containers = json!([{
            "name": "rustfs",
            "image": images.rustfs,
            "env": [
                secret_env("RUSTFS_ACCESS_KEY", experiment, credentials::S3_ACCESS_KEY),
                secret_env("RUSTFS_SECRET_KEY", experiment, credentials::S3_SECRET_KEY),
                {"name": "RUSTFS_VOLUMES", "value": "/data"},
                {"name": "RUSTFS_ADDRESS", "value": "0.0.0.0:9000"},
                {"name": "RUSTFS_CONSOLE_ENABLE", "value": "false"},
            ],
            "ports": [{"name": "s3", "containerPort": 9000}],
            "readinessProbe": {"tcpSocket": {"port": "s3"}, "periodSeconds": 5},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "securityContext": container_security,
            "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
        }]);
        let volumes = json!([{"name": "tmp", "emptyDir": {}}]);
        objects.stateful_sets.push(stateful_set(
            experiment, RUSTFS, 10001, containers, volumes, "2Gi",
        )?);
        objects
            .services
            .push(service(experiment, RUSTFS, &[("s3", 9000)])?);
    }
    Ok(())
}

fn add_mosquitto(
    objects: &mut DesiredObjects,
    experiment: &ExperimentRef,
    images: &Images,
    container_security: &Value,
) -> Result<(), BuildError> {
    objects.config_maps.push(typed(
        "mosquitto ConfigMap",
        json!({
            "metadata": experiment.metadata(MOSQUITTO, Role::Infrastructure),
            "data": {"mosquitto.conf": MOSQUITTO_CONF},
        }),
    )?);
    let env = json!([
        secret_env("MQTT_USERNAME", experiment, credentials::MQTT_USERNAME),
        secret_env("MQTT_PASSWORD", experiment, credentials::MQTT_PASSWORD),
    ]);
    objects.deployments.push(typed(
        "mosquitto Deployment",
        json!({
            "metadata": experiment.metadata(MOSQUITTO, Role::Infrastructure),
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": experiment.selector(MOSQUITTO)},
                "template": {
                    "metadata": {"labels": experiment.labels(MOSQUITTO, Role::Infrastructure)},
                    "spec": {
                        "automountServiceAccountToken": false,
                        // The image's mosquitto user.
                        "securityContext": security::pod_json(1883)?,
                        "initContainers": [{
                            "name": "password-file",
                            "image": images.mosquitto,
                            "command": ["sh", "-c", "mosquitto_passwd -b -c /mosquitto/auth/passwd \"$MQTT_USERNAME\" \"$MQTT_PASSWORD\""],
                            "env": env,
                            "securityContext": container_security,
                            "volumeMounts": [{"name": "auth", "mountPath": "/mosquitto/auth"}],
                        }],
                        "containers": [{
                            "name": "mosquitto",
                            "image": images.mosquitto,
                            "command": ["mosquitto", "-c", "/mosquitto/config/mosquitto.conf"],
                            "ports": [{"name": "mqtt", "containerPort": 1883}],
                            "readinessProbe": {"tcpSocket": {"port": "mqtt"}, "periodSeconds": 5},
                            "livenessProbe": {"tcpSocket": {"port": "mqtt"}, "periodSeconds": 20},
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
                            "securityContext": container_security,
                            "volumeMounts": [
                                {"name": "config", "mountPath": "/mosquitto/config", "readOnly": true},
                                {"name": "auth", "mountPath": "/mosquitto/auth", "readOnly": true},
                                {"name": "data", "mountPath": "/mosquitto/data"},
                            ],
                        }],
                        "volumes": [
                            {"name": "config", "configMap": {"name": experiment.object_name(MOSQUITTO)}},
                            {"name": "auth", "emptyDir": {"medium": "Memory"}},
                            {"name": "data", "emptyDir": {}},
                        ],
                    },
                },
            },
        }),
    )?);
    objects
        .services
        .push(service(experiment, MOSQUITTO, &[("mqtt", 1883)])?);
    Ok(())
}
