//! The parts of an experiment the operator runs — its managed services and the pipeline's
//! workloads — each named once, with the stage it is created in.

use crate::lifecycle::Stage;

/// A managed service or a workload: its name is the `app.kubernetes.io/component` label of its
/// objects and the suffix of their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// Eclipse Mosquitto, the MQTT broker.
    Mosquitto,
    /// Apache Pulsar, standalone.
    Pulsar,
    /// PostgreSQL, the experiment's store.
    Postgres,
    /// RustFS, the S3 object store of models.
    Rustfs,
    /// The setup Job: topics, schema, bucket, initial models.
    Setup,
    /// The sensors' indexed Job.
    Sensor,
    /// MQTT to Pulsar.
    Bridge,
    /// Readings to windows (Streaming only).
    Windower,
    /// Windows to the store, with forecasts.
    Coordinator,
    /// Retrains models (unless `retrain: Never`).
    Trainer,
}

impl Component {
    /// Every component.
    pub const ALL: [Self; 10] = [
        Self::Mosquitto,
        Self::Pulsar,
        Self::Postgres,
        Self::Rustfs,
        Self::Setup,
        Self::Sensor,
        Self::Bridge,
        Self::Windower,
        Self::Coordinator,
        Self::Trainer,
    ];

    /// The component's name (also the `wattcast` subcommand a workload runs).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Mosquitto => "mosquitto",
            Self::Pulsar => "pulsar",
            Self::Postgres => "postgres",
            Self::Rustfs => "rustfs",
            Self::Setup => "setup",
            Self::Sensor => "sensor",
            Self::Bridge => "bridge",
            Self::Windower => "windower",
            Self::Coordinator => "coordinator",
            Self::Trainer => "trainer",
        }
    }

    /// The component named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|component| component.name() == name)
    }

    /// The stage whose objects include this component's.
    pub const fn stage(self) -> Stage {
        match self {
            Self::Mosquitto | Self::Pulsar | Self::Postgres | Self::Rustfs => Stage::Infrastructure,
            Self::Setup => Stage::Setup,
            Self::Sensor => Stage::Sensors,
            Self::Bridge | Self::Windower | Self::Coordinator | Self::Trainer => Stage::Workloads,
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_read_back() {
        for component in Component::ALL {
            assert_eq!(Component::from_name(component.name()), Some(component));
        }
        let mut names: Vec<&str> = Component::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Component::ALL.len());
        assert_eq!(Component::from_name("experiment"), None);
    }
}
