//! Small builders of the Kubernetes parts every object shares — environment variables, volumes
//! and mounts, ports, probes, resources — so that each object is a k8s-openapi struct checked by
//! the compiler (a misspelt field does not build), as CloudNativePG's `pkg/specs` builds its pods.

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction,
    HTTPGetAction, KeyToPath, Probe, ResourceRequirements, SecretKeySelector, SecretVolumeSource,
    ServicePort, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// A variable with a literal value.
pub fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// A variable read from a Secret's key.
pub fn env_from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                ..SecretKeySelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// A writable mount of volume `name` at `path`.
pub fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    }
}

/// A read-only mount of volume `name` at `path`.
pub fn read_only_mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        read_only: Some(true),
        ..mount(name, path)
    }
}

/// An empty directory on the node's disk.
pub fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// An empty directory in memory (for files that must never reach a disk).
pub fn memory_dir(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_owned()),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// `(key, path)` pairs as a volume's items; `None` (every key) when there are none.
fn items(keys: &[(&str, &str)]) -> Option<Vec<KeyToPath>> {
    (!keys.is_empty()).then(|| {
        keys.iter()
            .map(|(key, path)| KeyToPath {
                key: (*key).to_owned(),
                path: (*path).to_owned(),
                ..KeyToPath::default()
            })
            .collect()
    })
}

/// A ConfigMap's keys as files: `keys` as `(key, path)`, or every key when empty.
pub fn config_map_volume(name: &str, config_map: &str, keys: &[(&str, &str)]) -> Volume {
    Volume {
        name: name.to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_owned(),
            items: items(keys),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// A Secret's keys as files, `keys` as `(key, path)`.
pub fn secret_volume(name: &str, secret: &str, keys: &[(&str, &str)]) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_owned()),
            items: items(keys),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// A named container port.
pub fn container_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(port),
        ..ContainerPort::default()
    }
}

/// A Service port that forwards to the container port of the same name.
pub fn service_port(name: &str, port: u16) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port: i32::from(port),
        target_port: Some(IntOrString::String(name.to_owned())),
        ..ServicePort::default()
    }
}

/// A probe every `period` seconds that GETs `path` on the named port.
pub fn http_probe(path: &str, port: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(port.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        ..Probe::default()
    }
}

/// A probe every `period` seconds that connects to the named port.
pub fn tcp_probe(port: &str, period: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port.to_owned()),
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(period),
        ..Probe::default()
    }
}

/// A probe every `period` seconds that runs `command` in the container.
pub fn exec_probe(command: &[&str], period: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|part| (*part).to_owned()).collect()),
        }),
        period_seconds: Some(period),
        ..Probe::default()
    }
}

/// Requests of CPU and memory, and a memory limit (no CPU limit anywhere: a pod may burst
/// above its request when the node has room).
pub fn resources(cpu: &str, memory: &str, memory_limit: &str) -> ResourceRequirements {
    let quantity = |value: &str| Quantity(value.to_owned());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), quantity(cpu)),
            ("memory".to_owned(), quantity(memory)),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), quantity(memory_limit))])),
        ..ResourceRequirements::default()
    }
}

/// Strings from string slices, for commands and arguments.
pub fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| (*part).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builders_serialise_to_the_fields_kubernetes_reads() {
        let checks = [
            (
                serde_json::to_value(env_from_secret("A", "s", "k")).expect("env"),
                json!({"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}),
            ),
            (
                serde_json::to_value(read_only_mount("v", "/p")).expect("mount"),
                json!({"name": "v", "mountPath": "/p", "readOnly": true}),
            ),
            (
                serde_json::to_value(config_map_volume("v", "m", &[("k", "f")])).expect("volume"),
                json!({"name": "v", "configMap": {"name": "m", "items": [{"key": "k", "path": "f"}]}}),
            ),
            (
                serde_json::to_value(memory_dir("v")).expect("volume"),
                json!({"name": "v", "emptyDir": {"medium": "Memory"}}),
            ),
            (
                serde_json::to_value(http_probe("/readyz", "metrics", 5)).expect("probe"),
                json!({"httpGet": {"path": "/readyz", "port": "metrics"}, "periodSeconds": 5}),
            ),
            (
                serde_json::to_value(service_port("http", 8080)).expect("port"),
                json!({"name": "http", "port": 8080, "targetPort": "http"}),
            ),
            (
                serde_json::to_value(resources("100m", "64Mi", "256Mi")).expect("resources"),
                json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}),
            ),
        ];
        for (built, expected) in checks {
            assert_eq!(built, expected);
        }
    }
}
