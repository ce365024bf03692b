//! The experiment's life as a pure decision: from what the operator observes in the cluster to
//! the phase, the conditions, and which stages of objects should exist. The controller observes,
//! calls [`decide`], applies, and writes the status; this module holds the rules.
//!
//! Stages are created in order so nothing starts before what it needs: the infrastructure, then
//! the setup Job (topics, schema, bucket, initial models), then the long-running workloads, and
//! only when they are ready the sensors — so no reading waits for a consumer.

use crate::component::Component;
use wattcast_crds::{CleanupPolicy, ConditionStatus, ConditionType, Phase, Reason};

/// A Job as observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobState {
    /// Not created yet.
    #[default]
    Absent,
    /// Created, not finished.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Gave up (its backoff limit was reached).
    Failed,
}

/// What the operator saw in the cluster (and the experiment's store) this reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    /// Every managed service (or none are managed) is ready.
    pub infrastructure_ready: bool,
    /// The setup Job.
    pub setup: JobState,
    /// Every long-running workload has its ready replicas.
    pub workloads_ready: bool,
    /// The sensors' indexed Job.
    pub sensors: JobState,
    /// Every reading the sensors sent is stored (or stored as late) and every window forecast.
    pub drained: bool,
    /// The run is still starting (infrastructure, setup, workloads) past its startup deadline.
    pub startup_overdue: bool,
}

/// Which groups of objects should exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stages {
    /// Managed services, their Services, the credentials, NetworkPolicies, the experiment file.
    pub infrastructure: bool,
    /// The setup Job.
    pub setup: bool,
    /// Bridge, windower, coordinator, trainer.
    pub workloads: bool,
    /// The sensors' indexed Job.
    pub sensors: bool,
}

/// A group of objects created together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Managed services, credentials, NetworkPolicies, the experiment file.
    Infrastructure,
    /// The setup Job.
    Setup,
    /// Bridge, windower, coordinator, trainer.
    Workloads,
    /// The sensors' indexed Job.
    Sensors,
}

impl Stage {
    /// The stage of an object, from its component name (`app.kubernetes.io/component`);
    /// objects of no [`Component`] (the experiment file, credentials, NetworkPolicies) are
    /// infrastructure.
    pub fn of_component(component: &str) -> Self {
        Component::from_name(component).map_or(Self::Infrastructure, Component::stage)
    }
}

impl Stages {
    /// Whether objects of `stage` should exist.
    pub fn includes(self, stage: Stage) -> bool {
        match stage {
            Stage::Infrastructure => self.infrastructure,
            Stage::Setup => self.setup,
            Stage::Workloads => self.workloads,
            Stage::Sensors => self.sensors,
        }
    }
}

/// A condition to report, per Kubernetes API conventions (the controller stamps times and the
/// generation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionDecision {
    /// Its type.
    pub type_: ConditionType,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// Why.
    pub reason: Reason,
    /// Human-readable detail.
    pub message: &'static str,
}

/// What the controller should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The phase to report.
    pub phase: Phase,
    /// Which objects should exist (the others are deleted, or never created).
    pub stages: Stages,
    /// The conditions to report.
    pub conditions: Vec<ConditionDecision>,
}

fn condition(type_: ConditionType, holds: bool, reason: Reason, message: &'static str) -> ConditionDecision {
    ConditionDecision {
        type_,
        status: if holds {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        reason,
        message,
    }
}

/// Decides the phase and stages from the previous phase and what was observed.
pub fn decide(previous: Phase, observed: Observed, cleanup: CleanupPolicy) -> Decision {
    let all = Stages {
        infrastructure: true,
        setup: true,
        workloads: true,
        sensors: true,
    };
    let (phase, stages) = if previous.is_terminal() {
        (previous, after_the_run(cleanup, previous, observed))
    } else if observed.setup == JobState::Failed
        || observed.sensors == JobState::Failed
        || (observed.startup_overdue && previous.is_starting())
    {
        (Phase::Failed, after_the_run(cleanup, Phase::Failed, observed))
    } else if !observed.infrastructure_ready {
        match previous {
            Phase::Pending | Phase::Provisioning => (
                Phase::Provisioning,
                Stages {
                    infrastructure: true,
                    ..Stages::default()
                },
            ),
            // Once the run has begun, infrastructure that goes away is waited for: the phase and
            // every object created so far stay.
            begun => {
                let stages = Stages {
                    infrastructure: true,
                    setup: true,
                    workloads: observed.setup == JobState::Succeeded,
                    sensors: matches!(begun, Phase::Running | Phase::Draining),
                };
                (begun, stages)
            }
        }
    } else if observed.setup != JobState::Succeeded {
        (
            Phase::Training,
            Stages {
                infrastructure: true,
                setup: true,
                ..Stages::default()
            },
        )
    } else if !observed.workloads_ready && observed.sensors == JobState::Absent {
        (
            Phase::Training,
            Stages {
                sensors: false,
                ..all
            },
        )
    } else if observed.sensors != JobState::Succeeded {
        (Phase::Running, all)
    } else if !observed.drained {
        (Phase::Draining, all)
    } else {
        (
            Phase::Completed,
            after_the_run(cleanup, Phase::Completed, observed),
        )
    };
    Decision {
        phase,
        stages,
        conditions: conditions(phase, observed),
    }
}

/// What stays once the run has ended, per `spec.cleanup`. A failed run keeps what it had made
/// for inspection unless `DeleteAll`; it makes nothing new (a run whose setup failed gets no
/// workloads and no sensors).
fn after_the_run(cleanup: CleanupPolicy, phase: Phase, observed: Observed) -> Stages {
    let made = Stages {
        infrastructure: true,
        setup: observed.setup != JobState::Absent,
        workloads: observed.setup == JobState::Succeeded,
        sensors: observed.sensors != JobState::Absent,
    };
    let all = Stages {
        infrastructure: true,
        setup: true,
        workloads: true,
        sensors: true,
    };
    match (cleanup, phase) {
        (CleanupPolicy::DeleteAll, _) => Stages::default(),
        (CleanupPolicy::Keep | CleanupPolicy::DeleteWorkloads, Phase::Failed) => made,
        // A completed run had made everything.
        (CleanupPolicy::Keep, _) => all,
        (CleanupPolicy::DeleteWorkloads, _) => Stages {
            infrastructure: true,
            ..Stages::default()
        },
    }
}

fn conditions(phase: Phase, observed: Observed) -> Vec<ConditionDecision> {
    let ready = phase == Phase::Running || phase == Phase::Draining;
    vec![
        condition(
            ConditionType::InfrastructureReady,
            observed.infrastructure_ready,
            if observed.infrastructure_ready {
                Reason::ServicesReady
            } else {
                Reason::ServicesStarting
            },
            if observed.infrastructure_ready {
                "MQTT, Pulsar, PostgreSQL and the object store are ready"
            } else {
                "waiting for the managed services to become ready"
            },
        ),
        match observed.setup {
            JobState::Succeeded => condition(
                ConditionType::ModelsReady,
                true,
                Reason::SetupSucceeded,
                "topics, schema, bucket and initial models exist",
            ),
            JobState::Failed => condition(
                ConditionType::ModelsReady,
                false,
                Reason::SetupFailed,
                "the setup Job failed; see its pod logs",
            ),
            _ => condition(
                ConditionType::ModelsReady,
                false,
                Reason::SetupPending,
                "the setup Job has not finished",
            ),
        },
        match observed.sensors {
            JobState::Succeeded => condition(
                ConditionType::SensorsDone,
                true,
                Reason::AllDevicesSent,
                "every device sent its data",
            ),
            JobState::Failed => condition(
                ConditionType::SensorsDone,
                false,
                Reason::SensorsFailed,
                "the sensors' Job failed; see its pod logs",
            ),
            _ => condition(
                ConditionType::SensorsDone,
                false,
                Reason::Sending,
                "devices are still sending",
            ),
        },
        match phase {
            Phase::Completed => condition(
                ConditionType::Ready,
                false,
                Reason::Completed,
                "the run is over; results are final",
            ),
            Phase::Failed => condition(
                ConditionType::Ready,
                false,
                Reason::Failed,
                "the run failed; see the other conditions and Events",
            ),
            _ if ready && observed.workloads_ready => condition(
                ConditionType::Ready,
                true,
                Reason::PipelineRunning,
                "the pipeline is processing data",
            ),
            _ => condition(
                ConditionType::Ready,
                false,
                Reason::NotRunning,
                "the pipeline is not processing data yet",
            ),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(observations: &[Observed]) -> Vec<(Phase, Stages)> {
        let mut phase = Phase::Pending;
        observations
            .iter()
            .map(|observed| {
                let decision = decide(phase, *observed, CleanupPolicy::DeleteWorkloads);
                phase = decision.phase;
                (decision.phase, decision.stages)
            })
            .collect()
    }

    const NONE: Stages = Stages {
        infrastructure: false,
        setup: false,
        workloads: false,
        sensors: false,
    };

    #[test]
    fn a_run_goes_through_every_phase_creating_each_stage_after_the_one_it_needs() {
        let start = Observed::default();
        let infra = Observed {
            infrastructure_ready: true,
            ..start
        };
        let setup_running = Observed {
            setup: JobState::Running,
            ..infra
        };
        let setup_done = Observed {
            setup: JobState::Succeeded,
            ..infra
        };
        let workloads = Observed {
            workloads_ready: true,
            ..setup_done
        };
        let sensing = Observed {
            sensors: JobState::Running,
            ..workloads
        };
        let sent = Observed {
            sensors: JobState::Succeeded,
            ..workloads
        };
        let drained = Observed {
            drained: true,
            ..sent
        };
        let steps = run(&[
            start,
            infra,
            setup_running,
            setup_done,
            workloads,
            sensing,
            sent,
            drained,
        ]);
        let phases: Vec<Phase> = steps.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            phases,
            [
                Phase::Provisioning,
                Phase::Training,
                Phase::Training,
                Phase::Training,
                Phase::Running,
                Phase::Running,
                Phase::Draining,
                Phase::Completed
            ]
        );
        assert_eq!(
            steps[0].1,
            Stages {
                infrastructure: true,
                ..NONE
            }
        );
        assert_eq!(
            steps[1].1,
            Stages {
                infrastructure: true,
                setup: true,
                ..NONE
            }
        );
        assert_eq!(
            steps[3].1,
            Stages {
                infrastructure: true,
                setup: true,
                workloads: true,
                sensors: false
            }
        );
        assert!(steps[4].1.sensors, "sensors only once the workloads are ready");
        assert_eq!(
            steps[7].1,
            Stages {
                infrastructure: true,
                ..NONE
            },
            "DeleteWorkloads keeps the data"
        );
    }

    #[test]
    fn a_failed_job_fails_the_run_and_keeps_what_it_made_for_inspection() {
        let failed = Observed {
            infrastructure_ready: true,
            setup: JobState::Failed,
            ..Observed::default()
        };
        for previous in [Phase::Training, Phase::Failed] {
            let decision = decide(previous, failed, CleanupPolicy::DeleteWorkloads);
            assert_eq!(decision.phase, Phase::Failed);
            assert_eq!(
                decision.stages,
                Stages {
                    infrastructure: true,
                    setup: true,
                    ..NONE
                },
                "the failed setup Job and the services stay; no workload or sensor is made (from {previous:?})"
            );
        }
        let decision = decide(Phase::Training, failed, CleanupPolicy::DeleteWorkloads);
        let overdue = Observed {
            startup_overdue: true,
            ..Observed::default()
        };
        let never_started = decide(Phase::Provisioning, overdue, CleanupPolicy::Keep);
        assert_eq!(
            (never_started.phase, never_started.stages),
            (
                Phase::Failed,
                Stages {
                    infrastructure: true,
                    ..NONE
                }
            ),
            "a run that never got its services keeps them, and no setup Job is made"
        );
        let models = decision
            .conditions
            .iter()
            .find(|c| c.type_ == ConditionType::ModelsReady)
            .expect("condition");
        assert_eq!(
            (models.status, models.reason),
            (ConditionStatus::False, Reason::SetupFailed)
        );
        let sensors_failed = Observed {
            infrastructure_ready: true,
            setup: JobState::Succeeded,
            workloads_ready: true,
            sensors: JobState::Failed,
            drained: false,
            startup_overdue: false,
        };
        let decision = decide(Phase::Running, sensors_failed, CleanupPolicy::DeleteAll);
        assert_eq!(
            (decision.phase, decision.stages),
            (Phase::Failed, NONE),
            "DeleteAll removes even a failed run"
        );
        // Terminal phases stay.
        let later = decide(Phase::Failed, Observed::default(), CleanupPolicy::DeleteWorkloads);
        assert_eq!(later.phase, Phase::Failed);
    }

    #[test]
    fn cleanup_decides_what_stays_after_completion() {
        let done = Observed {
            infrastructure_ready: true,
            setup: JobState::Succeeded,
            workloads_ready: true,
            sensors: JobState::Succeeded,
            drained: true,
            startup_overdue: false,
        };
        assert_eq!(
            decide(Phase::Draining, done, CleanupPolicy::DeleteAll).stages,
            NONE
        );
        assert!(decide(Phase::Draining, done, CleanupPolicy::Keep).stages.sensors);
        let ready = decide(Phase::Draining, done, CleanupPolicy::Keep);
        let ready = ready
            .conditions
            .iter()
            .find(|c| c.type_ == ConditionType::Ready)
            .expect("condition");
        assert_eq!(ready.reason, Reason::Completed);
    }

    #[test]
    fn infrastructure_lost_mid_run_keeps_the_phase_and_the_objects() {
        let lost = Observed {
            infrastructure_ready: false,
            setup: JobState::Succeeded,
            workloads_ready: true,
            sensors: JobState::Running,
            drained: false,
            startup_overdue: false,
        };
        let decision = decide(Phase::Running, lost, CleanupPolicy::DeleteWorkloads);
        assert_eq!(decision.phase, Phase::Running);
        assert_eq!(
            decision.stages,
            Stages {
                infrastructure: true,
                setup: true,
                workloads: true,
                sensors: true
            }
        );
        let ready = decision
            .conditions
            .iter()
            .find(|c| c.type_ == ConditionType::InfrastructureReady)
            .expect("condition");
        assert_eq!(ready.status, ConditionStatus::False);
    }

    #[test]
    fn a_run_still_starting_past_its_deadline_fails_and_a_running_one_does_not() {
        let overdue = Observed {
            startup_overdue: true,
            ..Observed::default()
        };
        for starting in [Phase::Pending, Phase::Provisioning, Phase::Training] {
            let decision = decide(starting, overdue, CleanupPolicy::DeleteWorkloads);
            assert_eq!(decision.phase, Phase::Failed, "from {starting:?}");
        }
        let running = Observed {
            infrastructure_ready: true,
            setup: JobState::Succeeded,
            workloads_ready: true,
            sensors: JobState::Running,
            startup_overdue: true,
            ..Observed::default()
        };
        assert_eq!(
            decide(Phase::Running, running, CleanupPolicy::DeleteWorkloads).phase,
            Phase::Running,
            "the deadline is for starting only"
        );
    }
}
