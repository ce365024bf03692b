//! What the cluster says about an experiment's objects: Job states and whether the managed
//! services and the workloads are ready, as the inputs of [`crate::lifecycle::decide`].

use crate::experiment_ref::COMPONENT_LABEL;
use crate::lifecycle::{JobState, Observed, Stage};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The experiment's objects as listed from the API server.
#[derive(Debug, Clone, Default)]
pub struct ClusterObjects {
    /// Its Deployments (Mosquitto and the long-running workloads).
    pub deployments: Vec<Deployment>,
    /// Its StatefulSets (Pulsar, PostgreSQL, RustFS).
    pub stateful_sets: Vec<StatefulSet>,
    /// Its Jobs (setup, sensors).
    pub jobs: Vec<Job>,
}

fn component(meta: &ObjectMeta) -> &str {
    meta.labels
        .as_ref()
        .and_then(|labels| labels.get(COMPONENT_LABEL))
        .map_or("", String::as_str)
}

/// The state of a Job from its conditions (`Complete` / `Failed`, as the Job controller sets
/// them, including `SuccessCriteriaMet` / `FailureTarget` which precede them).
pub fn job_state(job: Option<&Job>) -> JobState {
    let Some(job) = job else {
        return JobState::Absent;
    };
    let conditions = job.status.as_ref().and_then(|status| status.conditions.as_ref());
    let holds = |kind: &str| {
        conditions.is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition.type_ == kind && condition.status == "True")
        })
    };
    if holds("Failed") || holds("FailureTarget") {
        JobState::Failed
    } else if holds("Complete") || holds("SuccessCriteriaMet") {
        JobState::Succeeded
    } else {
        JobState::Running
    }
}

/// Whether the ready replicas reach the wanted ones (a missing count means 1 wanted, 0 ready).
fn has_ready_replicas(wanted: Option<i32>, ready: Option<i32>) -> bool {
    ready.unwrap_or(0) >= wanted.unwrap_or(1)
}

fn deployment_ready(deployment: &Deployment) -> bool {
    has_ready_replicas(
        deployment.spec.as_ref().and_then(|spec| spec.replicas),
        deployment
            .status
            .as_ref()
            .and_then(|status| status.ready_replicas),
    )
}

fn stateful_set_ready(stateful_set: &StatefulSet) -> bool {
    has_ready_replicas(
        stateful_set.spec.as_ref().and_then(|spec| spec.replicas),
        stateful_set
            .status
            .as_ref()
            .and_then(|status| status.ready_replicas),
    )
}

/// What is observed, from the objects that exist and the names of those that should.
/// `expected_infrastructure` and `expected_workloads` are the component names of the managed
/// services and the long-running workloads: one missing counts as not ready.
pub fn observe(
    objects: &ClusterObjects,
    expected_infrastructure: &[&str],
    expected_workloads: &[&str],
) -> Observed {
    let ready_components: Vec<&str> = objects
        .deployments
        .iter()
        .filter(|deployment| deployment_ready(deployment))
        .map(|deployment| component(&deployment.metadata))
        .chain(
            objects
                .stateful_sets
                .iter()
                .filter(|stateful_set| stateful_set_ready(stateful_set))
                .map(|stateful_set| component(&stateful_set.metadata)),
        )
        .collect();
    let all_ready = |expected: &[&str]| expected.iter().all(|name| ready_components.contains(name));
    let job = |stage: Stage| {
        job_state(
            objects
                .jobs
                .iter()
                .find(|job| Stage::of_component(component(&job.metadata)) == stage),
        )
    };
    Observed {
        infrastructure_ready: all_ready(expected_infrastructure),
        setup: job(Stage::Setup),
        workloads_ready: all_ready(expected_workloads),
        sensors: job(Stage::Sensors),
        drained: false,
        startup_overdue: false,
    }
}

/// Why pods cannot run, one line each: containers waiting on an image, a configuration or a
/// crash loop, and pods the scheduler cannot place — what a user needs when a run is stuck.
pub fn blocking_reasons(pods: &[Pod]) -> Vec<String> {
    let mut reasons = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        let Some(status) = pod.status.as_ref() else {
            continue;
        };
        let containers = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for container in containers {
            let waiting = container.state.as_ref().and_then(|state| state.waiting.as_ref());
            if let Some(waiting) = waiting
                && let Some(reason) = waiting.reason.as_deref()
                && reason != "ContainerCreating"
                && reason != "PodInitializing"
            {
                let message = waiting.message.as_deref().unwrap_or("");
                reasons.push(format!(
                    "pod {name}: container {} {reason}: {message}",
                    container.name
                ));
            }
        }
        for condition in status.conditions.iter().flatten() {
            if condition.type_ == "PodScheduled" && condition.status == "False" {
                let message = condition.message.as_deref().unwrap_or("");
                reasons.push(format!("pod {name}: not scheduled: {message}"));
            }
        }
    }
    reasons
}

/// Why the newest of `pods` that failed did: its container's termination message (what a
/// wattcast workload writes when it exits with an error), or None when none says.
pub fn failure_message(pods: &[Pod]) -> Option<String> {
    let mut failed: Vec<(&Pod, String)> = pods
        .iter()
        .filter_map(|pod| {
            let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
            let message = statuses.iter().find_map(|container| {
                [container.state.as_ref(), container.last_state.as_ref()]
                    .into_iter()
                    .flatten()
                    .filter_map(|state| state.terminated.as_ref())
                    .filter(|terminated| terminated.exit_code != 0)
                    .find_map(|terminated| terminated.message.clone())
            })?;
            let message = message.trim().to_owned();
            (!message.is_empty()).then_some((pod, message))
        })
        .collect();
    failed.sort_by_key(|(pod, _)| pod.metadata.creation_timestamp.as_ref().map(|time| time.0));
    failed.pop().map(|(_, message)| message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn terminated_pod(name: &str, created: &str, exit_code: i32, message: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "status": {"containerStatuses": [{
                "name": "setup", "image": "wattcast", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": exit_code, "message": message}},
            }]},
        }))
        .expect("a pod")
    }

    #[test]
    fn the_newest_failed_pod_says_why() {
        let pods = [
            terminated_pod("setup-a", "2026-12-01T10:00:00Z", 1, "PostgreSQL is away"),
            terminated_pod("setup-b", "2026-12-01T10:01:00Z", 3, "lab.csv: has 3 device(s)\n"),
            terminated_pod("setup-c", "2026-12-01T10:02:00Z", 0, "done"),
        ];
        assert_eq!(
            failure_message(&pods).as_deref(),
            Some("lab.csv: has 3 device(s)")
        );
        assert_eq!(failure_message(&pods[2..]), None);
    }

    fn labelled<T: serde::de::DeserializeOwned>(component: &str, rest: serde_json::Value) -> T {
        let mut value = json!({"metadata": {"name": component, "labels": {COMPONENT_LABEL: component}}});
        if let (Some(object), Some(extra)) = (value.as_object_mut(), rest.as_object()) {
            for (key, field) in extra {
                object.insert(key.clone(), field.clone());
            }
        }
        serde_json::from_value(value).expect("valid object")
    }

    fn job(component: &str, condition: Option<&str>) -> Job {
        let conditions = condition.map_or(json!([]), |kind| json!([{"type": kind, "status": "True"}]));
        labelled(component, json!({"status": {"conditions": conditions}}))
    }

    #[test]
    fn job_states_follow_the_job_controller_conditions() {
        assert_eq!(job_state(None), JobState::Absent);
        assert_eq!(job_state(Some(&job("setup", None))), JobState::Running);
        assert_eq!(
            job_state(Some(&job("setup", Some("Complete")))),
            JobState::Succeeded
        );
        assert_eq!(
            job_state(Some(&job("setup", Some("SuccessCriteriaMet")))),
            JobState::Succeeded
        );
        assert_eq!(job_state(Some(&job("setup", Some("Failed")))), JobState::Failed);
        assert_eq!(
            job_state(Some(&job("setup", Some("FailureTarget")))),
            JobState::Failed
        );
        let suspended: Job = labelled(
            "setup",
            json!({"status": {"conditions": [{"type": "Complete", "status": "False"}]}}),
        );
        assert_eq!(job_state(Some(&suspended)), JobState::Running);
    }

    #[test]
    fn readiness_needs_every_expected_component_with_its_replicas() {
        let objects = ClusterObjects {
            deployments: vec![
                labelled(
                    "mosquitto",
                    json!({"spec": {"replicas": 1, "selector": {}, "template": {}}, "status": {"readyReplicas": 1}}),
                ),
                labelled(
                    "bridge",
                    json!({"spec": {"replicas": 2, "selector": {}, "template": {}}, "status": {"readyReplicas": 1}}),
                ),
                labelled("coordinator", json!({"status": {"readyReplicas": 1}})),
            ],
            stateful_sets: vec![
                labelled("pulsar", json!({"status": {"readyReplicas": 1}})),
                labelled("postgres", json!({"status": {"replicas": 1}})),
            ],
            jobs: vec![job("setup", Some("Complete")), job("sensor", None)],
        };
        let observed = observe(&objects, &["mosquitto", "pulsar"], &["coordinator"]);
        assert!(observed.infrastructure_ready);
        assert!(observed.workloads_ready);
        assert_eq!(observed.setup, JobState::Succeeded);
        assert_eq!(observed.sensors, JobState::Running);
        assert!(!observed.drained, "drained comes from the store, not the cluster");
        let not_ready = observe(&objects, &["mosquitto", "postgres"], &["bridge"]);
        assert!(!not_ready.infrastructure_ready, "postgres has no ready replica");
        assert!(!not_ready.workloads_ready, "bridge has one of two replicas ready");
        let missing = observe(&objects, &["rustfs"], &["trainer"]);
        assert!(!missing.infrastructure_ready && !missing.workloads_ready);
        assert!(observe(&ClusterObjects::default(), &[], &[]).infrastructure_ready);
    }

    #[test]
    fn blocking_reasons_name_the_pod_the_container_and_the_cause() {
        let pods: Vec<Pod> = serde_json::from_value(json!([
            {"metadata": {"name": "e2e-pulsar-0"}, "status": {"containerStatuses": [{
                "name": "pulsar", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}},
            {"metadata": {"name": "e2e-postgres-0"}, "status": {"conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu."}]}},
            {"metadata": {"name": "e2e-bridge-1"}, "status": {"containerStatuses": [{
                "name": "bridge", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}},
        ]))
        .expect("pods");
        assert_eq!(
            blocking_reasons(&pods),
            [
                "pod e2e-pulsar-0: container pulsar ImagePullBackOff: Back-off pulling image",
                "pod e2e-postgres-0: not scheduled: 0/1 nodes are available: 1 Insufficient cpu.",
            ]
        );
    }
}
