//! The status the operator writes: the decision's phase and conditions stamped per Kubernetes
//! API conventions (a condition's time moves only when its status changes), the progress and
//! results measured, and the Event a phase change deserves.

use crate::lifecycle::ConditionDecision;
use wattcast_crds::{
    Condition, ConditionStatus, ConditionType, Phase, PipelineExperimentStatus, Progress, Reason, Results,
};

/// A condition to report, with a message that may carry numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionUpdate {
    /// CamelCase type.
    pub type_: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
}

impl ConditionUpdate {
    /// A condition of a known type and reason.
    pub fn new(
        type_: ConditionType,
        status: ConditionStatus,
        reason: Reason,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.as_str().to_owned(),
            status,
            reason: reason.as_str().to_owned(),
            message: message.into(),
        }
    }

    /// A condition the status already holds, reported again as it is.
    pub fn kept(condition: &Condition) -> Self {
        Self {
            type_: condition.type_.clone(),
            status: condition.status,
            reason: condition.reason.clone(),
            message: condition.message.clone(),
        }
    }
}

impl From<&ConditionDecision> for ConditionUpdate {
    fn from(decided: &ConditionDecision) -> Self {
        Self::new(decided.type_, decided.status, decided.reason, decided.message)
    }
}

/// Everything the next status is made of.
#[derive(Debug, Clone)]
pub struct StatusInput<'a> {
    /// The phase decided.
    pub phase: Phase,
    /// The conditions decided.
    pub conditions: Vec<ConditionUpdate>,
    /// The spec generation reconciled.
    pub generation: Option<i64>,
    /// Now, RFC 3339.
    pub now: &'a str,
    /// Progress and results from the store, when it could be read.
    pub measured: Option<(Progress, Option<Results>)>,
}

/// The next status: what is new from `input`, what is unchanged kept from `previous`.
pub fn next_status(previous: &PipelineExperimentStatus, input: StatusInput<'_>) -> PipelineExperimentStatus {
    let conditions = input
        .conditions
        .into_iter()
        .map(|update| {
            let unchanged = previous
                .conditions
                .iter()
                .find(|old| old.type_ == update.type_ && old.status == update.status);
            Condition {
                last_transition_time: unchanged
                    .map_or_else(|| input.now.to_owned(), |old| old.last_transition_time.clone()),
                type_: update.type_,
                status: update.status,
                reason: update.reason,
                message: update.message,
                observed_generation: input.generation,
            }
        })
        .collect();
    let (progress, results) = match input.measured {
        Some((progress, results)) => (progress, results.or_else(|| previous.results.clone())),
        None => (previous.progress.clone(), previous.results.clone()),
    };
    PipelineExperimentStatus {
        phase: input.phase,
        observed_generation: input.generation,
        conditions,
        progress,
        results,
    }
}

/// Whether a phase change is worth a Warning rather than a Normal Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Normal progress.
    Normal,
    /// Something went wrong.
    Warning,
}

/// The Event for a phase change (None when the phase stayed).
pub fn transition_event(previous: Phase, next: Phase) -> Option<(Severity, String, String)> {
    if previous == next {
        return None;
    }
    let severity = if next == Phase::Failed {
        Severity::Warning
    } else {
        Severity::Normal
    };
    let note = match next {
        Phase::Pending => "accepted".to_owned(),
        Phase::Provisioning => "creating the infrastructure and waiting for it to become ready".to_owned(),
        Phase::Training => "running the setup Job: topics, schema, bucket and initial models".to_owned(),
        Phase::Running => "the workloads are ready and the sensors are sending".to_owned(),
        Phase::Draining => {
            "the sensors are done; waiting for every reading to be stored and forecast".to_owned()
        }
        Phase::Completed => "every reading was processed; results are final".to_owned(),
        Phase::Failed => "the run failed; see the conditions and the pods' logs".to_owned(),
    };
    Some((
        severity,
        format!("{next:?}"),
        format!("{previous:?} → {next:?}: {note}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(type_: &str, status: ConditionStatus, reason: &str) -> ConditionUpdate {
        ConditionUpdate {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message: String::new(),
        }
    }

    #[test]
    fn a_condition_time_moves_only_when_its_status_changes() {
        let first = next_status(
            &PipelineExperimentStatus::default(),
            StatusInput {
                phase: Phase::Provisioning,
                conditions: vec![
                    update("InfrastructureReady", ConditionStatus::False, "ServicesStarting"),
                    update("Ready", ConditionStatus::False, "NotRunning"),
                ],
                generation: Some(1),
                now: "2026-11-24T10:00:00Z",
                measured: None,
            },
        );
        let second = next_status(
            &first,
            StatusInput {
                phase: Phase::Training,
                conditions: vec![
                    update("InfrastructureReady", ConditionStatus::True, "ServicesReady"),
                    update("Ready", ConditionStatus::False, "NotRunning"),
                ],
                generation: Some(2),
                now: "2026-11-24T10:05:00Z",
                measured: None,
            },
        );
        assert_eq!(second.phase, Phase::Training);
        assert_eq!(second.observed_generation, Some(2));
        assert_eq!(second.conditions[0].last_transition_time, "2026-11-24T10:05:00Z");
        assert_eq!(second.conditions[1].last_transition_time, "2026-11-24T10:00:00Z");
        assert!(second.conditions.iter().all(|c| c.observed_generation == Some(2)));
    }

    #[test]
    fn measurements_replace_progress_and_an_unreadable_store_keeps_the_last_ones() {
        let progress = Progress {
            readings_sent: 10,
            ..Progress::default()
        };
        let results = Results {
            coverage: Some(0.5),
            ..Results::default()
        };
        let input = |measured| StatusInput {
            phase: Phase::Running,
            conditions: Vec::new(),
            generation: Some(1),
            now: "t",
            measured,
        };
        let measured = next_status(
            &PipelineExperimentStatus::default(),
            input(Some((progress.clone(), Some(results.clone())))),
        );
        assert_eq!(measured.progress, progress);
        let kept = next_status(&measured, input(None));
        assert_eq!((kept.progress, kept.results), (progress, Some(results)));
    }

    #[test]
    fn phase_changes_make_events_and_failure_warns() {
        assert_eq!(transition_event(Phase::Running, Phase::Running), None);
        let (severity, reason, note) = transition_event(Phase::Running, Phase::Draining).expect("an event");
        assert_eq!((severity, reason.as_str()), (Severity::Normal, "Draining"));
        assert!(note.starts_with("Running → Draining"));
        assert_eq!(
            transition_event(Phase::Training, Phase::Failed).map(|event| event.0),
            Some(Severity::Warning)
        );
    }
}
