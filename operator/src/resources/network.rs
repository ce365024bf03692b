//! NetworkPolicies: only the experiment's workloads (and the operator, for PostgreSQL) reach its
//! infrastructure; the workloads accept connections only on their metrics port.

use super::workloads::METRICS_PORT;
use super::{BuildError, typed};
use crate::experiment_ref::{EXPERIMENT_LABEL, ExperimentRef, ROLE_LABEL, Role};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;

/// The label (and its value) the chart puts on the operator's pods.
pub const OPERATOR_LABEL: &str = "app.kubernetes.io/name";
/// See [`OPERATOR_LABEL`].
pub const OPERATOR_NAME: &str = "wattcast-operator";

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
                "ingress": [
                    // From the experiment's workloads only (and between its own services).
                    {"from": [{"podSelector": pods("workload")}, {"podSelector": pods("infrastructure")}]},
                    // The operator reads progress and results from PostgreSQL, from its namespace.
                    {
                        "from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {OPERATOR_LABEL: OPERATOR_NAME}}}],
                        "ports": [{"protocol": "TCP", "port": 5432}],
                    },
                ],
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
