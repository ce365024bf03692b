//! NetworkPolicies: only the experiment's workloads reach its infrastructure; the workloads
//! accept connections only on their metrics port.

use super::workloads::METRICS_PORT;
use super::{BuildError, typed};
use crate::experiment_ref::{EXPERIMENT_LABEL, ExperimentRef, ROLE_LABEL, Role};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;

/// The experiment's two policies.
pub fn policies(experiment: &ExperimentRef) -> Result<Vec<NetworkPolicy>, BuildError> {
    let pods = |role: &str| json!({"matchLabels": {EXPERIMENT_LABEL: experiment.name, ROLE_LABEL: role}});
    let infrastructure = typed(
        "infrastructure NetworkPolicy",
        json!({
            "metadata": experiment.metadata("infrastructure", Role::Infrastructure),
            "spec": {
                "podSelector": pods("infrastructure"),
                "policyTypes": ["Ingress"],
                // From the experiment's workloads only (and between its own services).
                "ingress": [{"from": [{"podSelector": pods("workload")}, {"podSelector": pods("infrastructure")}]}],
            },
        }),
    )?;
    let workloads = typed(
        "workloads NetworkPolicy",
        json!({
            "metadata": experiment.metadata("workloads", Role::Workload),
            "spec": {
                "podSelector": pods("workload"),
                "policyTypes": ["Ingress"],
                // Metrics and probes, from any namespace (Prometheus usually runs elsewhere).
                "ingress": [{
                    "from": [{"namespaceSelector": {}}],
                    "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                }],
            },
        }),
    )?;
    Ok(vec![infrastructure, workloads])
}
