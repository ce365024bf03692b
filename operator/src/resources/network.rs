//! NetworkPolicies: only the experiment's workloads (and the operator, for PostgreSQL) reach its
//! infrastructure; the workloads accept connections only on their metrics port.

use super::workloads::METRICS_PORT;
use crate::experiment_ref::{EXPERIMENT_LABEL, ExperimentRef, ROLE_LABEL, Role};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The label (and its value) the chart puts on the operator's pods.
pub const OPERATOR_LABEL: &str = "app.kubernetes.io/name";
/// See [`OPERATOR_LABEL`].
pub const OPERATOR_NAME: &str = "wattcast-operator";

/// The experiment's pods of one role.
fn pods(experiment: &ExperimentRef, role: Role) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([
            (EXPERIMENT_LABEL.to_owned(), experiment.name.clone()),
            (ROLE_LABEL.to_owned(), role.as_str().to_owned()),
        ])),
        ..LabelSelector::default()
    }
}

/// Pods matched by `pods`, in any namespace when `any_namespace`, else in the policy's own.
fn peer(pods: Option<LabelSelector>, any_namespace: bool) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: any_namespace.then(LabelSelector::default),
        pod_selector: pods,
        ..NetworkPolicyPeer::default()
    }
}

fn tcp(port: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some("TCP".to_owned()),
        port: Some(IntOrString::Int(i32::from(port))),
        ..NetworkPolicyPort::default()
    }
}

/// An Ingress-only policy for `role`'s pods.
fn ingress_policy(
    experiment: &ExperimentRef,
    name: &str,
    role: Role,
    ingress: Vec<NetworkPolicyIngressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: experiment.metadata(name, role),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods(experiment, role)),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(ingress),
            ..NetworkPolicySpec::default()
        }),
    }
}

/// The experiment's two policies.
pub fn policies(experiment: &ExperimentRef) -> Vec<NetworkPolicy> {
    let operator = LabelSelector {
        match_labels: Some(BTreeMap::from([(
            OPERATOR_LABEL.to_owned(),
            OPERATOR_NAME.to_owned(),
        )])),
        ..LabelSelector::default()
    };
    let infrastructure = ingress_policy(
        experiment,
        "infrastructure",
        Role::Infrastructure,
        vec![
            // From the experiment's workloads only (and between its own services).
            NetworkPolicyIngressRule {
                from: Some(vec![
                    peer(Some(pods(experiment, Role::Workload)), false),
                    peer(Some(pods(experiment, Role::Infrastructure)), false),
                ]),
                ports: None,
            },
            // The operator reads progress and results from PostgreSQL, from its namespace.
            NetworkPolicyIngressRule {
                from: Some(vec![peer(Some(operator), true)]),
                ports: Some(vec![tcp(5432)]),
            },
        ],
    );
    // Metrics and probes, from any namespace (Prometheus usually runs elsewhere).
    let workloads = ingress_policy(
        experiment,
        "workloads",
        Role::Workload,
        vec![NetworkPolicyIngressRule {
            from: Some(vec![peer(None, true)]),
            ports: Some(vec![tcp(METRICS_PORT)]),
        }],
    );
    vec![infrastructure, workloads]
}
