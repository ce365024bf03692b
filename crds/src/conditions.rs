//! The condition types and reasons a `PipelineExperiment`'s status reports, named once each so
//! that the operator cannot misspell one and a user can look them up in one place.

use std::fmt;

/// A condition's type (`status.conditions[].type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionType {
    /// Mosquitto, Pulsar, PostgreSQL and the object store are ready.
    InfrastructureReady,
    /// The setup Job made the topics, the schema, the bucket and the initial models.
    ModelsReady,
    /// Every device sent its data.
    SensorsDone,
    /// The pipeline is processing data (`kubectl wait --for=condition=Ready`).
    Ready,
    /// The run got past its start within the startup deadline (set only when it did not).
    Started,
    /// Every reading sent was stored and the pipeline is idle.
    Drained,
    /// The experiment's objects were deleted (set while a cleanup is being retried).
    CleanedUp,
}

/// A condition's reason (`status.conditions[].reason`), also an Event's reason where one says
/// the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// InfrastructureReady: every service answers.
    ServicesReady,
    /// InfrastructureReady: some service is not ready yet.
    ServicesStarting,
    /// ModelsReady: the setup Job succeeded.
    SetupSucceeded,
    /// ModelsReady: the setup Job failed.
    SetupFailed,
    /// ModelsReady: the setup Job has not finished.
    SetupPending,
    /// SensorsDone: every device sent its data.
    AllDevicesSent,
    /// SensorsDone: the sensors' Job failed.
    SensorsFailed,
    /// SensorsDone: devices are still sending.
    Sending,
    /// Ready: the run is over.
    Completed,
    /// Ready: the run failed.
    Failed,
    /// Ready: the pipeline is processing data.
    PipelineRunning,
    /// Ready: the pipeline is not processing data yet.
    NotRunning,
    /// Drained: every reading sent was stored.
    AllStored,
    /// Drained: readings are still on their way.
    InFlight,
    /// Drained: the drain timeout passed with readings still missing.
    DrainTimedOut,
    /// Started: the run was not running by the startup deadline.
    StartupDeadlineExceeded,
    /// CleanedUp: deleting the experiment's objects failed and is retried.
    CleanupRetrying,
}

impl ConditionType {
    /// Every condition type.
    pub const ALL: [Self; 7] = [
        Self::InfrastructureReady,
        Self::ModelsReady,
        Self::SensorsDone,
        Self::Ready,
        Self::Started,
        Self::Drained,
        Self::CleanedUp,
    ];

    /// The name the status carries.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InfrastructureReady => "InfrastructureReady",
            Self::ModelsReady => "ModelsReady",
            Self::SensorsDone => "SensorsDone",
            Self::Ready => "Ready",
            Self::Started => "Started",
            Self::Drained => "Drained",
            Self::CleanedUp => "CleanedUp",
        }
    }
}

impl Reason {
    /// Every reason.
    pub const ALL: [Self; 17] = [
        Self::ServicesReady,
        Self::ServicesStarting,
        Self::SetupSucceeded,
        Self::SetupFailed,
        Self::SetupPending,
        Self::AllDevicesSent,
        Self::SensorsFailed,
        Self::Sending,
        Self::Completed,
        Self::Failed,
        Self::PipelineRunning,
        Self::NotRunning,
        Self::AllStored,
        Self::InFlight,
        Self::DrainTimedOut,
        Self::StartupDeadlineExceeded,
        Self::CleanupRetrying,
    ];

    /// The name the status carries.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ServicesReady => "ServicesReady",
            Self::ServicesStarting => "ServicesStarting",
            Self::SetupSucceeded => "SetupSucceeded",
            Self::SetupFailed => "SetupFailed",
            Self::SetupPending => "SetupPending",
            Self::AllDevicesSent => "AllDevicesSent",
            Self::SensorsFailed => "SensorsFailed",
            Self::Sending => "Sending",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::PipelineRunning => "PipelineRunning",
            Self::NotRunning => "NotRunning",
            Self::AllStored => "AllStored",
            Self::InFlight => "InFlight",
            Self::DrainTimedOut => "DrainTimedOut",
            Self::StartupDeadlineExceeded => "StartupDeadlineExceeded",
            Self::CleanupRetrying => "CleanupRetrying",
        }
    }
}

impl fmt::Display for ConditionType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl PartialEq<ConditionType> for String {
    fn eq(&self, other: &ConditionType) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Reason> for String {
    fn eq(&self, other: &Reason) -> bool {
        self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// API conventions: CamelCase, unique; and each name is the variant's own.
    #[test]
    fn every_name_is_camel_case_unique_and_its_variants() {
        let types: Vec<(&str, String)> = ConditionType::ALL
            .iter()
            .map(|t| (t.as_str(), format!("{t:?}")))
            .collect();
        let reasons: Vec<(&str, String)> = Reason::ALL
            .iter()
            .map(|r| (r.as_str(), format!("{r:?}")))
            .collect();
        for names in [&types, &reasons] {
            let unique: HashSet<&str> = names.iter().map(|(name, _)| *name).collect();
            assert_eq!(unique.len(), names.len(), "{names:?}");
            for (name, variant) in names.iter() {
                assert_eq!(name, variant);
                assert!(name.starts_with(|c: char| c.is_ascii_uppercase()), "{name}");
                assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
            }
        }
        assert!(String::from("Ready") == ConditionType::Ready);
        assert!(String::from("Ready") != ConditionType::Drained);
        assert_eq!(Reason::DrainTimedOut.to_string(), "DrainTimedOut");
    }
}
