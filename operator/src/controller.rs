//! The controller: one reconcile function that observes an experiment's objects and store,
//! decides ([`crate::lifecycle::decide`]), applies, and writes the status; a finalizer that
//! removes the experiment's external side effects; Events and metrics along the way.

use crate::apply::{AppliedMemo, Existing, FIELD_MANAGER, apply_stages, ensure_credentials, existing_names};
use crate::cleanup::{CleanupError, CleanupReport, remove_side_effects};
use crate::component::Component;
use crate::endpoints::EndpointsError;
use crate::experiment_ref::{EXPERIMENT_LABEL, ExperimentRef, ExperimentRefError};
use crate::images::Images;
use crate::lifecycle::{JobState, Observed, decide};
use crate::metrics::Metrics;
use crate::observe::{ClusterObjects, blocking_reasons, failure_message, observe};
use crate::resources::{BuildError, desired_objects};
use crate::status::{ConditionUpdate, Severity, StatusInput, next_status, transition_event};
use crate::store_reader::{MeasurementSource, PostgresMeasurements};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, Store as Cache};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wattcast_crds::{
    ConditionStatus, ConditionType, Phase, PipelineExperiment, PipelineExperimentStatus, Reason,
};

/// The finalizer the operator puts on every experiment.
pub const FINALIZER: &str = "wattcast.io/cleanup";

/// Why a reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource lacks metadata the API server always sets.
    #[error(transparent)]
    Metadata(#[from] ExperimentRefError),
    /// An object could not be built (a bug).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The API server refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The experiment's credentials could not be read.
    #[error(transparent)]
    Endpoints(#[from] EndpointsError),
    /// Removing the external side effects failed.
    #[error(transparent)]
    Cleanup(#[from] CleanupError),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// A short name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Metadata(_) => "metadata",
            Self::Build(_) => "build",
            Self::Kube(_) => "kube",
            Self::Endpoints(_) => "endpoints",
            Self::Cleanup(_) => "cleanup",
            Self::Finalizer(_) => "finalizer",
        }
    }
}

/// Timings of the controller.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How often a running experiment is looked at again (progress, drained).
    pub poll: Duration,
    /// How long the store's counts must stay still, after every reading arrived, to call the
    /// pipeline drained (the last windows' forecasts land after their readings).
    pub settle: Duration,
    /// After the sensors finish, how long to wait for the data before completing anyway (the
    /// Drained condition then says what is missing).
    pub drain_timeout: Duration,
    /// How long an experiment may take from creation to Running before it fails with the
    /// reason its pods give (an image that cannot be pulled, a pod that cannot be scheduled).
    pub startup_deadline: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(10),
            settle: Duration::from_secs(20),
            drain_timeout: Duration::from_secs(600),
            startup_deadline: Duration::from_secs(900),
        }
    }
}

/// What the pipeline has stored so far: while any of it grows, data is still in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StoredCounts {
    readings: u64,
    late_readings: u64,
    windows: u64,
    forecasts: u64,
}

impl From<&wattcast_crds::Progress> for StoredCounts {
    fn from(progress: &wattcast_crds::Progress) -> Self {
        Self {
            readings: progress.readings_stored,
            late_readings: progress.late_readings,
            windows: progress.windows_emitted,
            forecasts: progress.forecasts,
        }
    }
}

/// When the store's counts last changed, per experiment (by uid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stillness {
    counts: StoredCounts,
    since: Instant,
}

/// What the operator keeps for one experiment between its reconciles (dropped when it
/// completes, fails or is deleted).
#[derive(Default)]
struct Remembered {
    /// What was applied and deleted.
    applied: AppliedMemo,
    /// When the results (percentiles, accuracy) were last computed.
    results_at: Option<Instant>,
}

/// How often the full results are computed while an experiment runs (progress, from cheap
/// counts, every poll; the results also when the phase changes).
const RESULTS_EVERY: Duration = Duration::from_secs(60);

/// The controller's watch caches of the experiments' Jobs, Deployments and StatefulSets (the
/// same watches that trigger reconciles), read instead of listing on every reconcile.
#[derive(Clone)]
pub struct Caches {
    jobs: Cache<Job>,
    deployments: Cache<Deployment>,
    stateful_sets: Cache<StatefulSet>,
}

impl Caches {
    /// The experiment's objects in the caches, once they have been filled (None before).
    async fn objects(&self, experiment: &ExperimentRef) -> Option<ClusterObjects> {
        let ready = async {
            self.jobs.wait_until_ready().await.ok()?;
            self.deployments.wait_until_ready().await.ok()?;
            self.stateful_sets.wait_until_ready().await.ok()
        };
        tokio::time::timeout(Duration::from_secs(5), ready).await.ok()??;
        fn of<K: Resource<DynamicType = ()> + Clone>(store: &Cache<K>, experiment: &ExperimentRef) -> Vec<K> {
            store
                .state()
                .iter()
                .filter(|object| {
                    object.meta().namespace.as_deref() == Some(experiment.namespace.as_str())
                        && object
                            .meta()
                            .labels
                            .as_ref()
                            .and_then(|labels| labels.get(EXPERIMENT_LABEL))
                            == Some(&experiment.name)
                })
                .map(|object| object.as_ref().clone())
                .collect()
        }
        Some(ClusterObjects {
            jobs: of(&self.jobs, experiment),
            deployments: of(&self.deployments, experiment),
            stateful_sets: of(&self.stateful_sets, experiment),
        })
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The images the experiments run.
    pub images: Images,
    /// Publishes Events.
    pub recorder: Recorder,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// Timings.
    pub settings: Settings,
    /// Where the experiments' progress and results are read.
    measurements: Box<dyn MeasurementSource>,
    stillness: Mutex<HashMap<String, Stillness>>,
    failures: Mutex<HashMap<String, u32>>,
    remembered: Mutex<HashMap<String, Remembered>>,
    caches: std::sync::OnceLock<Caches>,
}

impl Context {
    /// A context for `client`.
    pub fn new(
        client: Client,
        images: Images,
        metrics: Arc<Metrics>,
        settings: Settings,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            images,
            metrics,
            settings,
            measurements: Box::new(PostgresMeasurements::default()),
            stillness: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            remembered: Mutex::new(HashMap::new()),
            caches: std::sync::OnceLock::new(),
        }
    }

    /// This context reading measurements from `source` instead of each experiment's PostgreSQL
    /// (reconcile tests without services).
    pub fn with_measurements(mut self, source: impl MeasurementSource + 'static) -> Self {
        self.measurements = Box::new(source);
        self
    }

    /// Whether `counts` have not changed for `settle` (records them when they have).
    fn still_for(&self, uid: &str, counts: StoredCounts, settle: Duration) -> bool {
        let now = Instant::now();
        let Ok(mut map) = self.stillness.lock() else {
            return false;
        };
        let entry = map
            .entry(uid.to_owned())
            .or_insert(Stillness { counts, since: now });
        if entry.counts != counts {
            *entry = Stillness { counts, since: now };
        }
        now.duration_since(entry.since) >= settle
    }

    /// Counts a failed reconcile of `uid`; returns how many in a row.
    fn failed(&self, uid: &str) -> u32 {
        let Ok(mut map) = self.failures.lock() else {
            return 1;
        };
        let count = map.entry(uid.to_owned()).or_default();
        *count = count.saturating_add(1);
        *count
    }

    fn succeeded(&self, uid: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(uid);
        }
    }

    fn forget(&self, uid: &str) {
        if let Ok(mut map) = self.stillness.lock() {
            map.remove(uid);
        }
        if let Ok(mut map) = self.remembered.lock() {
            map.remove(uid);
        }
        self.measurements.forget(uid);
    }

    /// Takes what is kept for `uid` (a reconcile of one experiment runs alone; it is put back
    /// with [`Context::remember`]).
    fn recall(&self, uid: &str) -> Remembered {
        self.remembered
            .lock()
            .ok()
            .and_then(|mut map| map.remove(uid))
            .unwrap_or_default()
    }

    fn remember(&self, uid: &str, remembered: Remembered) {
        if let Ok(mut map) = self.remembered.lock() {
            map.insert(uid.to_owned(), remembered);
        }
    }

    async fn publish(
        &self,
        experiment: &PipelineExperiment,
        severity: Severity,
        reason: String,
        note: String,
    ) {
        let event = Event {
            type_: match severity {
                Severity::Normal => EventType::Normal,
                Severity::Warning => EventType::Warning,
            },
            reason,
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &experiment.object_ref(&())).await {
            tracing::warn!(%error, "could not publish an Event");
        }
    }
}

/// The experiment's Deployments, StatefulSets and Jobs: from the watch caches, or listed when
/// they are not filled yet.
async fn cluster_objects(ctx: &Context, experiment: &ExperimentRef) -> Result<ClusterObjects, kube::Error> {
    if let Some(caches) = ctx.caches.get()
        && let Some(objects) = caches.objects(experiment).await
    {
        return Ok(objects);
    }
    list_objects(&ctx.client, experiment).await
}

/// Lists the experiment's Deployments, StatefulSets and Jobs.
async fn list_objects(client: &Client, experiment: &ExperimentRef) -> Result<ClusterObjects, kube::Error> {
    let params = ListParams::default().labels(&format!("{EXPERIMENT_LABEL}={}", experiment.name));
    let namespace = experiment.namespace.as_str();
    Ok(ClusterObjects {
        deployments: Api::<Deployment>::namespaced(client.clone(), namespace)
            .list(&params)
            .await?
            .items,
        stateful_sets: Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .list(&params)
            .await?
            .items,
        jobs: Api::<Job>::namespaced(client.clone(), namespace)
            .list(&params)
            .await?
            .items,
    })
}

/// When the sensors' Job finished, from its status.
fn sensors_finished_at(objects: &ClusterObjects) -> Option<chrono::DateTime<chrono::Utc>> {
    objects
        .jobs
        .iter()
        .find(|job| {
            job.labels()
                .get(crate::experiment_ref::COMPONENT_LABEL)
                .map(String::as_str)
                == Some(Component::Sensor.name())
        })
        .and_then(|job| job.status.as_ref())
        .and_then(|status| status.completion_time.as_ref())
        .map(|time| {
            chrono::DateTime::<chrono::Utc>::from_timestamp(time.0.as_second(), 0).unwrap_or_default()
        })
}

/// Reconciles one experiment that is not being deleted.
async fn apply(resource: Arc<PipelineExperiment>, ctx: &Context) -> Result<Action, Error> {
    let experiment = ExperimentRef::new(&resource)?;
    let previous = resource.status.clone().unwrap_or_default();
    let desired = desired_objects(&experiment, &ctx.images)?;
    let objects = cluster_objects(ctx, &experiment).await?;
    let mut observed: Observed = observe(
        &objects,
        &desired.infrastructure_components(),
        &desired.workload_components(),
    );
    // The schema exists once setup succeeded: from then on the store has progress to report.
    let mut remembered = ctx.recall(&experiment.uid);
    let full = observed.sensors == JobState::Succeeded
        || remembered
            .results_at
            .is_none_or(|at| at.elapsed() >= RESULTS_EVERY);
    let measured = if observed.setup == JobState::Succeeded && !previous.phase.is_terminal() {
        ctx.measurements.read(&ctx.client, &experiment, full).await
    } else {
        None
    };
    if full && measured.is_some() {
        remembered.results_at = Some(Instant::now());
    }
    let mut drained_condition = None;
    if observed.sensors == JobState::Succeeded && !previous.phase.is_terminal() {
        let arrived = measured
            .as_ref()
            .is_some_and(|m| m.all_arrived(experiment.spec.devices.count));
        let still = measured.as_ref().is_some_and(|m| {
            ctx.still_for(
                &experiment.uid,
                StoredCounts::from(&m.progress),
                ctx.settings.settle,
            )
        });
        let timed_out = sensors_finished_at(&objects).is_some_and(|finished| {
            chrono::Utc::now() - finished
                > chrono::TimeDelta::from_std(ctx.settings.drain_timeout).unwrap_or(chrono::TimeDelta::MAX)
        });
        observed.drained = (arrived && still) || timed_out;
        drained_condition = Some(match (arrived && still, timed_out, &measured) {
            (true, _, _) => ConditionUpdate::new(
                ConditionType::Drained,
                ConditionStatus::True,
                Reason::AllStored,
                "every reading sent was stored and the pipeline is idle",
            ),
            (false, timed_out, measured) => ConditionUpdate::new(
                ConditionType::Drained,
                ConditionStatus::False,
                if timed_out {
                    Reason::DrainTimedOut
                } else {
                    Reason::InFlight
                },
                measured.as_ref().map_or_else(
                    || "the experiment's store cannot be read".to_owned(),
                    |m| {
                        format!(
                            "{} of {} readings arrived; {} of {} devices reported",
                            m.arrived,
                            m.progress.readings_sent,
                            m.devices_reported,
                            experiment.spec.devices.count
                        )
                    },
                ),
            ),
        });
    }
    let mut startup_condition = None;
    if previous.phase.is_starting() && started_too_long_ago(&resource, ctx.settings.startup_deadline) {
        observed.startup_overdue = true;
        let pods = Api::<Pod>::namespaced(ctx.client.clone(), &experiment.namespace)
            .list(&ListParams::default().labels(&format!("{EXPERIMENT_LABEL}={}", experiment.name)))
            .await?;
        let reasons = blocking_reasons(&pods.items);
        let deadline = humantime::format_duration(ctx.settings.startup_deadline);
        let message = if reasons.is_empty() {
            format!(
                "not running {deadline} after creation (phase {:?}); no pod reports why",
                previous.phase
            )
        } else {
            format!(
                "not running {deadline} after creation (phase {:?}): {}",
                previous.phase,
                reasons.join("; ")
            )
        };
        ctx.publish(
            &resource,
            Severity::Warning,
            Reason::StartupDeadlineExceeded.to_string(),
            message.clone(),
        )
        .await;
        startup_condition = Some(ConditionUpdate::new(
            ConditionType::Started,
            ConditionStatus::False,
            Reason::StartupDeadlineExceeded,
            message,
        ));
    }
    let decision = decide(previous.phase, observed, experiment.spec.cleanup);
    let existing: Existing = existing_names(&objects.jobs)
        .into_iter()
        .chain(existing_names(&objects.deployments))
        .chain(existing_names(&objects.stateful_sets))
        .collect();
    let applied = async {
        ensure_credentials(&ctx.client, &experiment, &mut remembered.applied).await?;
        apply_stages(
            &ctx.client,
            &experiment,
            &desired,
            decision.stages,
            &mut remembered.applied,
            &existing,
        )
        .await
    }
    .await;
    ctx.remember(&experiment.uid, remembered);
    applied?;

    let mut conditions: Vec<ConditionUpdate> =
        decision.conditions.iter().map(ConditionUpdate::from).collect();
    let kept = |type_: ConditionType| {
        previous
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(ConditionUpdate::kept)
    };
    conditions.extend(startup_condition.or_else(|| kept(ConditionType::Started)));
    let failure = failed_job_detail(ctx, &experiment, &observed, &previous, &mut conditions).await;
    match drained_condition {
        Some(drained) => conditions.push(drained),
        None => conditions.extend(kept(ConditionType::Drained)),
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = next_status(
        &previous,
        StatusInput {
            phase: decision.phase,
            conditions,
            generation: resource.metadata.generation,
            now: &now,
            measured: measured.map(|m| (m.progress, m.results)),
        },
    );
    if status != previous {
        write_status(&ctx.client, &experiment, &status).await?;
    }
    if let Some((reason, message)) = failure.filter(|_| previous.phase != Phase::Failed) {
        ctx.publish(&resource, Severity::Warning, reason.to_string(), message)
            .await;
    }
    if let Some((severity, reason, note)) = transition_event(previous.phase, decision.phase) {
        ctx.metrics.transitions.inc();
        tracing::info!(experiment = %experiment.name, namespace = %experiment.namespace, %note, "phase changed");
        ctx.publish(&resource, severity, reason, note).await;
        if drained_condition_timed_out(&status) && decision.phase == Phase::Completed {
            ctx.publish(
                &resource,
                Severity::Warning,
                "DrainTimedOut".to_owned(),
                "completed without every reading stored; see the Drained condition".to_owned(),
            )
            .await;
        }
    }
    if decision.phase.is_terminal() {
        ctx.forget(&experiment.uid);
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(ctx.settings.poll))
}

/// When the setup or sensors' Job failed, puts why (its newest failed pod's termination message)
/// into that Job's condition, keeping an earlier one once the pods are gone; returns the
/// condition's reason and message.
async fn failed_job_detail(
    ctx: &Context,
    experiment: &ExperimentRef,
    observed: &Observed,
    previous: &PipelineExperimentStatus,
    conditions: &mut [ConditionUpdate],
) -> Option<(Reason, String)> {
    let (component, reason) = if observed.setup == JobState::Failed {
        (Component::Setup, Reason::SetupFailed)
    } else if observed.sensors == JobState::Failed {
        (Component::Sensor, Reason::SensorsFailed)
    } else {
        return None;
    };
    let condition = conditions.iter_mut().find(|c| c.reason == reason)?;
    let selector = format!(
        "{EXPERIMENT_LABEL}={},{}={component}",
        experiment.name,
        crate::experiment_ref::COMPONENT_LABEL
    );
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &experiment.namespace)
        .list(&ListParams::default().labels(&selector))
        .await;
    let detail = match pods {
        Ok(pods) => failure_message(&pods.items),
        Err(error) => {
            tracing::info!(%error, experiment = %experiment.name, "cannot read why the {component} Job failed");
            None
        }
    };
    let prefix = format!("the {component} Job failed: ");
    let message = match detail {
        Some(detail) => format!("{prefix}{detail}"),
        None => previous
            .conditions
            .iter()
            .find(|c| c.type_ == condition.type_ && c.reason == reason && c.message.starts_with(&prefix))
            .map(|kept| kept.message.clone())?,
    };
    condition.message = message.clone();
    Some((reason, message))
}

/// Whether the experiment was created longer than `deadline` ago.
fn started_too_long_ago(resource: &PipelineExperiment, deadline: Duration) -> bool {
    resource
        .metadata
        .creation_timestamp
        .as_ref()
        .is_some_and(|created| {
            let created =
                chrono::DateTime::<chrono::Utc>::from_timestamp(created.0.as_second(), 0).unwrap_or_default();
            chrono::Utc::now() - created
                > chrono::TimeDelta::from_std(deadline).unwrap_or(chrono::TimeDelta::MAX)
        })
}

fn drained_condition_timed_out(status: &PipelineExperimentStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == ConditionType::Drained && c.reason == Reason::DrainTimedOut)
}

async fn write_status(
    client: &Client,
    experiment: &ExperimentRef,
    status: &PipelineExperimentStatus,
) -> Result<(), kube::Error> {
    let api: Api<PipelineExperiment> = Api::namespaced(client.clone(), &experiment.namespace);
    let patch = serde_json::json!({
        "apiVersion": "wattcast.io/v1alpha1",
        "kind": "PipelineExperiment",
        "status": status,
    });
    api.patch_status(
        &experiment.name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// How long one attempt to remove the side effects may take (a service that does not answer
/// must not hold the reconcile).
const CLEANUP_ATTEMPT: Duration = Duration::from_secs(30);

/// Removes what the experiment left outside the cluster, as its cleanup policy says. A failed
/// attempt is retried with backoff (an error keeps the finalizer) and said in the `CleanedUp`
/// condition and a Warning Event; after `spec.cleanupTimeout` the finalizer gives up, records
/// what it left behind, and lets the experiment go.
async fn clean_up(resource: Arc<PipelineExperiment>, ctx: &Context) -> Result<Action, Error> {
    let experiment = ExperimentRef::new(&resource)?;
    ctx.forget(&experiment.uid);
    let mut report = CleanupReport::default();
    let outcome = tokio::time::timeout(
        CLEANUP_ATTEMPT,
        remove_side_effects(&ctx.client, &experiment, &mut report),
    )
    .await
    .unwrap_or(Err(CleanupError::TimedOut(CLEANUP_ATTEMPT)));
    let Err(error) = outcome else {
        ctx.publish(
            &resource,
            Severity::Normal,
            "CleanedUp".to_owned(),
            report.to_string(),
        )
        .await;
        tracing::info!(experiment = %experiment.name, namespace = %experiment.namespace, %report, "cleaned up");
        return Ok(Action::await_change());
    };
    let timeout = experiment.spec.cleanup_timeout.get();
    let left_behind = if report.pending.is_empty() {
        "nothing known".to_owned()
    } else {
        report.pending.join("; ")
    };
    if cleanup_remaining(&resource, timeout).is_none() {
        let note = format!(
            "gave up removing the side effects after cleanupTimeout {}: {error}; left behind: {left_behind}",
            humantime::format_duration(timeout)
        );
        tracing::warn!(experiment = %experiment.name, namespace = %experiment.namespace, %note, "cleanup abandoned");
        ctx.publish(&resource, Severity::Warning, "CleanupAbandoned".to_owned(), note)
            .await;
        return Ok(Action::await_change());
    }
    let message = format!(
        "{error}; retrying with backoff until cleanupTimeout {} has passed since deletion (still to remove: {left_behind})",
        humantime::format_duration(timeout)
    );
    ctx.publish(
        &resource,
        Severity::Warning,
        Reason::CleanupRetrying.to_string(),
        message.clone(),
    )
    .await;
    let previous = resource.status.clone().unwrap_or_default();
    let mut conditions: Vec<ConditionUpdate> = previous
        .conditions
        .iter()
        .filter(|c| c.type_ != ConditionType::CleanedUp)
        .map(ConditionUpdate::kept)
        .collect();
    conditions.push(ConditionUpdate::new(
        ConditionType::CleanedUp,
        ConditionStatus::False,
        Reason::CleanupRetrying,
        message,
    ));
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = next_status(
        &previous,
        StatusInput {
            phase: previous.phase,
            conditions,
            generation: resource.metadata.generation,
            now: &now,
            measured: None,
        },
    );
    if status != previous {
        write_status(&ctx.client, &experiment, &status).await?;
    }
    Err(Error::Cleanup(error))
}

/// How much of `timeout` is left since the experiment was marked for deletion (None once it
/// has passed, or when it is not being deleted).
fn cleanup_remaining(resource: &PipelineExperiment, timeout: Duration) -> Option<Duration> {
    let deleted = resource.metadata.deletion_timestamp.as_ref()?;
    let since = k8s_openapi::jiff::Timestamp::now().duration_since(deleted.0);
    let since = Duration::try_from(since).unwrap_or_default();
    timeout.checked_sub(since).filter(|left| !left.is_zero())
}

/// Reconciles one experiment: the finalizer first, then [`apply`] or [`clean_up`].
pub async fn reconcile(resource: Arc<PipelineExperiment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = resource.namespace().unwrap_or_default();
    let uid = resource.uid().unwrap_or_default();
    let api: Api<PipelineExperiment> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, resource, |event| async {
        match event {
            FinalizerEvent::Apply(resource) => apply(resource, &ctx).await,
            FinalizerEvent::Cleanup(resource) => clean_up(resource, &ctx).await,
        }
    })
    .await
    .map_err(|error| Error::Finalizer(Box::new(error)));
    let kind = result.as_ref().err().map(|error| match error {
        Error::Finalizer(inner) => match inner.as_ref() {
            kube::runtime::finalizer::Error::ApplyFailed(error)
            | kube::runtime::finalizer::Error::CleanupFailed(error) => error.kind(),
            _ => "finalizer",
        },
        other => other.kind(),
    });
    ctx.metrics.observe(started.elapsed().as_secs_f64(), kind);
    if kind.is_none() {
        ctx.succeeded(&uid);
    }
    result
}

/// The delay before retrying after `failures` failed reconciles in a row: 15 s, doubling, at
/// most 5 minutes.
pub fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(5);
    Duration::from_secs(15 * (1 << doublings)).min(Duration::from_secs(300))
}

/// Retries a failed reconcile after a delay that grows with repeated failures of the same
/// experiment, logging the error.
pub fn error_policy(resource: Arc<PipelineExperiment>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.failed(&resource.uid().unwrap_or_default());
    let mut delay = retry_delay(failures);
    // A deletion that keeps failing is looked at again when its cleanupTimeout runs out.
    if let Some(left) = cleanup_remaining(&resource, resource.spec.cleanup_timeout.get()) {
        delay = delay.min(left + Duration::from_secs(1));
    }
    tracing::warn!(experiment = %resource.name_any(), %error, failures, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

/// Runs the controller over every namespace until `shutdown` fires.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let client = ctx.client.clone();
    let experiments: Api<PipelineExperiment> = Api::all(client.clone());
    let owned = watcher::Config::default().labels(EXPERIMENT_LABEL);
    // One watch per kind both fills the cache reconciles read and triggers them.
    let (jobs, jobs_writer) = reflector::store();
    let (deployments, deployments_writer) = reflector::store();
    let (stateful_sets, stateful_sets_writer) = reflector::store();
    let _ = ctx.caches.set(Caches {
        jobs,
        deployments,
        stateful_sets,
    });
    // The caches keep what the decisions read (labels, replicas, status), not the pod
    // templates and managed fields, which are most of an object's size.
    let job_events = watcher(Api::<Job>::all(client.clone()), owned.clone())
        .modify(|job: &mut Job| {
            job.managed_fields_mut().clear();
            if let Some(spec) = job.spec.as_mut() {
                spec.template.spec = None;
            }
        })
        .reflect(jobs_writer)
        .default_backoff()
        .touched_objects();
    let deployment_events = watcher(Api::<Deployment>::all(client.clone()), owned.clone())
        .modify(|deployment: &mut Deployment| {
            deployment.managed_fields_mut().clear();
            if let Some(spec) = deployment.spec.as_mut() {
                spec.template.spec = None;
            }
        })
        .reflect(deployments_writer)
        .default_backoff()
        .touched_objects();
    let stateful_set_events = watcher(Api::<StatefulSet>::all(client), owned)
        .modify(|set: &mut StatefulSet| {
            set.managed_fields_mut().clear();
            if let Some(spec) = set.spec.as_mut() {
                spec.template.spec = None;
                spec.volume_claim_templates = None;
            }
        })
        .reflect(stateful_sets_writer)
        .default_backoff()
        .touched_objects();
    Controller::new(experiments, watcher::Config::default())
        .owns_stream(job_events)
        .owns_stream(deployment_events)
        .owns_stream(stateful_set_events)
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_15_seconds_to_5_minutes() {
        let delays: Vec<u64> = (1..=8).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [15, 30, 60, 120, 240, 300, 300, 300]);
        assert_eq!(retry_delay(0).as_secs(), 15);
    }

    fn deleted_ago(seconds: i64) -> PipelineExperiment {
        let mut resource: PipelineExperiment = serde_yaml::from_str(
            "apiVersion: wattcast.io/v1alpha1\nkind: PipelineExperiment\nmetadata: {name: x}\n\
             spec: {architecture: Batching, devices: {count: 1}, dataset: {scenario: InOrder}}\n",
        )
        .unwrap();
        let now = k8s_openapi::jiff::Timestamp::now();
        resource.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            now - k8s_openapi::jiff::SignedDuration::from_secs(seconds),
        ));
        resource
    }

    #[test]
    fn the_cleanup_timeout_counts_from_the_deletion() {
        let ten_minutes = Duration::from_secs(600);
        let left = cleanup_remaining(&deleted_ago(240), ten_minutes).unwrap();
        assert!((359..=360).contains(&left.as_secs()), "{left:?}");
        assert_eq!(cleanup_remaining(&deleted_ago(601), ten_minutes), None);
        let mut alive = deleted_ago(0);
        alive.metadata.deletion_timestamp = None;
        assert_eq!(cleanup_remaining(&alive, ten_minutes), None);
    }
}
