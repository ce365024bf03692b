//! `reconcile` against an in-memory API server (no etcd, no services): what one reconcile
//! writes at each point of an experiment's life — the finalizer first, the stages in order,
//! the phase and conditions, Events, nothing when nothing changed, and the finalizer's removal.
//! The envtest tests (`controller.rs`) run the same controller against a real API server and
//! real services; these run in `make test-unit`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod fixtures;

use fixtures::{Harness, MANAGED_SPEC, NAMESPACE, experiment, measurements};
use http::Method;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::controller::Action;
use std::time::Duration;
use wattcast_crds::{Condition, ConditionStatus, ConditionType, Phase, PipelineExperimentStatus, Reason};
use wattcast_operator::controller::FINALIZER;

const HOUR: Duration = Duration::from_secs(3600);

fn condition(status: &PipelineExperimentStatus, type_: ConditionType) -> Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
        .unwrap_or_else(|| panic!("no {type_} condition in {status:?}"))
}

fn names<K: kube::Resource>(objects: &[K]) -> Vec<String> {
    let mut names: Vec<String> = objects.iter().filter_map(|o| o.meta().name.clone()).collect();
    names.sort();
    names
}

/// The reasons of the Events the reconciles published.
fn event_reasons(harness: &Harness) -> Vec<String> {
    harness
        .server
        .writes()
        .iter()
        .filter(|r| r.resource() == "events" && r.method == Method::POST)
        .filter_map(|r| r.body.as_ref()?["reason"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_new_experiment_gets_the_finalizer_before_anything_is_made() {
    let resource = experiment("fresh", MANAGED_SPEC, Duration::ZERO, false);
    let harness = Harness::new(&resource, Harness::settings(HOUR, HOUR));

    let action = harness.reconcile("fresh").await;

    assert_eq!(
        action,
        Action::await_change(),
        "the finalizer's patch triggers the next reconcile"
    );
    let writes = harness.server.writes();
    assert_eq!(writes.len(), 1, "only the finalizer is written: {writes:?}");
    assert_eq!(writes[0].method, Method::PATCH);
    assert_eq!(writes[0].resource(), "pipelineexperiments");
    assert_eq!(writes[0].name.as_deref(), Some("fresh"));
    assert_eq!(writes[0].content_type, "application/json-patch+json");
    assert_eq!(
        harness.experiment("fresh").metadata.finalizers,
        Some(vec![FINALIZER.to_owned()])
    );
}

#[tokio::test]
async fn the_first_reconcile_provisions_the_services_and_nothing_that_needs_them() {
    let resource = experiment("first", MANAGED_SPEC, Duration::ZERO, true);
    let harness = Harness::new(&resource, Harness::settings(HOUR, HOUR));

    let action = harness.reconcile("first").await;

    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(10)),
        "a running experiment is polled"
    );
    assert_eq!(
        names(&harness.server.list::<StatefulSet>(NAMESPACE)),
        ["first-postgres", "first-pulsar", "first-rustfs"]
    );
    assert_eq!(
        names(&harness.server.list::<Deployment>(NAMESPACE)),
        ["first-mosquitto"]
    );
    assert!(
        harness.server.list::<Job>(NAMESPACE).is_empty(),
        "no setup before the services are ready"
    );
    assert!(
        names(&harness.server.list::<NetworkPolicy>(NAMESPACE)).contains(&"first-infrastructure".to_owned())
    );
    let secret = harness
        .server
        .get::<Secret>(NAMESPACE, "first-credentials")
        .expect("the credentials Secret is created");
    let values = secret.data.unwrap_or_default();
    for key in ["postgres-password", "mqtt-password", "s3-secret-key"] {
        let value = values
            .get(key)
            .unwrap_or_else(|| panic!("{key} in {:?}", values.keys()));
        assert!(value.0.len() >= 24, "{key} is a long generated secret");
    }
    let other = Harness::new(
        &experiment("first", MANAGED_SPEC, Duration::ZERO, true),
        Harness::settings(HOUR, HOUR),
    );
    other.reconcile("first").await;
    let other_values = other
        .server
        .get::<Secret>(NAMESPACE, "first-credentials")
        .and_then(|s| s.data)
        .unwrap_or_default();
    assert_ne!(
        values.get("postgres-password"),
        other_values.get("postgres-password"),
        "generated anew per experiment, not fixed"
    );

    let status = harness.status("first");
    assert_eq!(status.phase, Phase::Provisioning);
    let infrastructure = condition(&status, ConditionType::InfrastructureReady);
    assert_eq!(infrastructure.status, ConditionStatus::False);
    assert_eq!(infrastructure.reason, Reason::ServicesStarting.to_string());
    assert_eq!(infrastructure.observed_generation, Some(1));
    let status_writes: Vec<_> = harness
        .server
        .writes()
        .into_iter()
        .filter(|w| w.subresource.as_deref() == Some("status"))
        .collect();
    assert_eq!(status_writes.len(), 1, "one status patch: {status_writes:?}");
    assert_eq!(
        status_writes[0].content_type, "application/apply-patch+yaml",
        "server-side apply"
    );
    assert_eq!(
        event_reasons(&harness),
        ["Provisioning"],
        "one Event for the phase change"
    );
}

#[tokio::test]
async fn a_reconcile_that_finds_nothing_changed_writes_nothing() {
    let resource = experiment("steady", MANAGED_SPEC, Duration::ZERO, true);
    let harness = Harness::new(&resource, Harness::settings(HOUR, HOUR));
    harness.reconcile("steady").await;
    harness.server.clear_requests();

    harness.reconcile("steady").await;

    let writes = harness.server.writes();
    assert!(
        writes.is_empty(),
        "an unchanged experiment is not patched again: {writes:?}"
    );
}

#[tokio::test]
async fn the_stages_start_in_order_setup_then_workloads_then_sensors() {
    let resource = experiment("staged", MANAGED_SPEC, Duration::ZERO, true);
    let harness = Harness::new(&resource, Harness::settings(HOUR, HOUR));
    harness.reconcile("staged").await;

    harness.make_replicas_ready();
    harness.reconcile("staged").await;
    assert_eq!(harness.status("staged").phase, Phase::Training);
    assert_eq!(names(&harness.server.list::<Job>(NAMESPACE)), ["staged-setup"]);
    assert_eq!(
        names(&harness.server.list::<Deployment>(NAMESPACE)),
        ["staged-mosquitto"],
        "no workload before setup"
    );

    harness.finish_job("staged-setup", "Complete", Duration::ZERO);
    harness.reconcile("staged").await;
    let status = harness.status("staged");
    assert_eq!(
        status.phase,
        Phase::Training,
        "training until the workloads are ready"
    );
    assert_eq!(
        condition(&status, ConditionType::ModelsReady).reason,
        Reason::SetupSucceeded.to_string()
    );
    let deployments = names(&harness.server.list::<Deployment>(NAMESPACE));
    assert_eq!(
        deployments,
        [
            "staged-bridge",
            "staged-coordinator",
            "staged-mosquitto",
            "staged-trainer"
        ],
        "Batching sensors window themselves: no windower"
    );
    assert!(
        harness.server.get::<Job>(NAMESPACE, "staged-sensor").is_none(),
        "no sensor before the workloads are ready"
    );

    harness.make_replicas_ready();
    harness.reconcile("staged").await;
    assert_eq!(harness.status("staged").phase, Phase::Running);
    assert!(
        harness.server.get::<Job>(NAMESPACE, "staged-sensor").is_some(),
        "the sensors start last"
    );
    assert_eq!(event_reasons(&harness), ["Provisioning", "Training", "Running"]);
}

/// An experiment whose sensors finished `ago`, its workloads running.
async fn sensors_finished(name: &str, drain_timeout: Duration, ago: Duration) -> Harness {
    sensors_finished_settling(name, drain_timeout, ago, Duration::ZERO).await
}

/// The same, with a settling wait.
async fn sensors_finished_settling(
    name: &str,
    drain_timeout: Duration,
    ago: Duration,
    settle: Duration,
) -> Harness {
    let resource = experiment(name, MANAGED_SPEC, Duration::ZERO, true);
    let harness = Harness::new(&resource, Harness::settings_settling(drain_timeout, HOUR, settle));
    harness.reconcile(name).await;
    harness.make_replicas_ready();
    harness.reconcile(name).await;
    harness.finish_job(&format!("{name}-setup"), "Complete", Duration::ZERO);
    harness.reconcile(name).await;
    harness.make_replicas_ready();
    harness.reconcile(name).await;
    harness.finish_job(&format!("{name}-sensor"), "Complete", ago);
    harness
}

#[tokio::test]
async fn the_run_drains_until_every_reading_arrived_then_completes_with_the_stores_numbers() {
    let harness = sensors_finished("drains", HOUR, Duration::ZERO).await;
    harness.measurements.set(Some(measurements(3, 120, 300)));

    harness.reconcile("drains").await;
    let status = harness.status("drains");
    assert_eq!(
        status.phase,
        Phase::Draining,
        "60 of 360 readings still in flight"
    );
    let drained = condition(&status, ConditionType::Drained);
    assert_eq!(drained.reason, Reason::InFlight.to_string());
    assert_eq!(
        drained.message,
        "300 of 360 readings arrived; 3 of 3 devices reported"
    );
    assert_eq!(status.progress.readings_stored, 300);

    harness.measurements.set(Some(measurements(3, 120, 360)));
    let action = harness.reconcile("drains").await;
    let status = harness.status("drains");
    assert_eq!(status.phase, Phase::Completed);
    assert_eq!(
        condition(&status, ConditionType::Drained).reason,
        Reason::AllStored.to_string()
    );
    assert_eq!(status.progress.readings_stored, 360);
    assert_eq!(
        action,
        Action::await_change(),
        "a completed experiment is not polled"
    );
    assert!(event_reasons(&harness).ends_with(&["Draining".to_owned(), "Completed".to_owned()]));
}

#[tokio::test]
async fn every_reading_arrived_is_not_drained_until_the_counts_stay_still() {
    // Forecasts land after their readings: the store's counts must stop moving for `settle`.
    let harness = sensors_finished_settling("settling", HOUR, Duration::ZERO, HOUR).await;
    harness.measurements.set(Some(measurements(3, 120, 360)));

    harness.reconcile("settling").await;

    let status = harness.status("settling");
    assert_eq!(status.phase, Phase::Draining);
    assert_eq!(
        condition(&status, ConditionType::Drained).reason,
        Reason::InFlight.to_string()
    );
}

#[tokio::test]
async fn a_run_that_never_drains_completes_at_the_drain_timeout_and_says_what_is_missing() {
    // The sensors finished an hour ago; the drain timeout is half of that.
    let harness = sensors_finished("stuck", HOUR / 2, HOUR).await;
    harness.measurements.set(Some(measurements(3, 120, 300)));

    harness.reconcile("stuck").await;

    let status = harness.status("stuck");
    assert_eq!(status.phase, Phase::Completed);
    let drained = condition(&status, ConditionType::Drained);
    assert_eq!(drained.status, ConditionStatus::False);
    assert_eq!(drained.reason, Reason::DrainTimedOut.to_string());
    assert_eq!(
        drained.message,
        "300 of 360 readings arrived; 3 of 3 devices reported"
    );
    assert!(event_reasons(&harness).ends_with(&["Completed".to_owned(), "DrainTimedOut".to_owned()]));
}

#[tokio::test]
async fn a_failed_setup_fails_the_experiment_with_what_its_pod_said() {
    let resource = experiment("broken", MANAGED_SPEC, Duration::ZERO, true);
    let harness = Harness::new(&resource, Harness::settings(HOUR, HOUR));
    harness.reconcile("broken").await;
    harness.make_replicas_ready();
    harness.reconcile("broken").await;
    harness.finish_job("broken-setup", "Failed", Duration::ZERO);
    harness.add_pod(
        "broken",
        "setup",
        serde_json::json!({"terminated": {"exitCode": 1, "message": "data.csv line 7: field `power`: not a number"}}),
    );

    let action = harness.reconcile("broken").await;

    let status = harness.status("broken");
    assert_eq!(status.phase, Phase::Failed);
    let models = condition(&status, ConditionType::ModelsReady);
    assert_eq!(models.reason, Reason::SetupFailed.to_string());
    assert_eq!(
        models.message,
        "the setup Job failed: data.csv line 7: field `power`: not a number"
    );
    assert_eq!(action, Action::await_change());
    assert!(event_reasons(&harness).contains(&"SetupFailed".to_owned()));
    assert!(
        harness.server.get::<Job>(NAMESPACE, "broken-sensor").is_none(),
        "a failed run starts nothing new"
    );
}

#[tokio::test]
async fn an_experiment_stuck_starting_fails_at_its_deadline_with_the_pods_reasons() {
    // Created two hours ago, a deadline of one hour, and Pulsar's image cannot be pulled.
    let resource = experiment("late", MANAGED_SPEC, 2 * HOUR, true);
    let harness = Harness::new(&resource, Harness::settings(HOUR, HOUR));
    harness.add_pod(
        "late",
        "pulsar",
        serde_json::json!({"waiting": {"reason": "ImagePullBackOff", "message": "pull access denied"}}),
    );

    harness.reconcile("late").await;

    let status = harness.status("late");
    assert_eq!(status.phase, Phase::Failed);
    let started = condition(&status, ConditionType::Started);
    assert_eq!(started.reason, Reason::StartupDeadlineExceeded.to_string());
    assert!(
        started.message.contains("ImagePullBackOff"),
        "{}",
        started.message
    );
    assert!(event_reasons(&harness).contains(&"StartupDeadlineExceeded".to_owned()));
}

#[tokio::test]
async fn deleting_a_kept_experiment_removes_only_the_finalizer() {
    let spec = format!("{MANAGED_SPEC}  cleanup: Keep\n");
    let mut resource = experiment("kept", &spec, Duration::ZERO, true);
    resource.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    let harness = Harness::new(&resource, Harness::settings(HOUR, HOUR));

    let action = harness.reconcile("kept").await;

    assert_eq!(action, Action::await_change());
    assert_eq!(harness.experiment("kept").metadata.finalizers, Some(Vec::new()));
    assert_eq!(event_reasons(&harness), ["CleanedUp"]);
    let writes: Vec<_> = harness
        .server
        .writes()
        .into_iter()
        .filter(|w| w.resource() != "events")
        .collect();
    assert_eq!(writes.len(), 1, "nothing but the finalizer's removal: {writes:?}");
    assert_eq!(writes[0].name.as_deref(), Some("kept"));
}
