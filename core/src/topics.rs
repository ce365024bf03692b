//! The names of an experiment's Pulsar topics, MQTT topics and PostgreSQL schema.

use crate::reading::DeviceId;

/// Every name an experiment's workloads share, derived from the experiment's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentNames {
    experiment: String,
}

/// Why an experiment name cannot be used for topics and schemas.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "experiment name `{0}` must be 1-42 characters of a-z, 0-9 and '-', starting with a letter (a Kubernetes name)"
)]
pub struct InvalidExperimentName(pub String);

/// An experiment's Pulsar topics (tenant `public`, namespace = experiment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// One reading a message (Streaming): the bridge's output, the windowers' input.
    Readings,
    /// A minute of one device: the windowers' (or smart sensors') output, the coordinator's input.
    Windows,
    /// Readings that came after their window fired, counted and stored apart.
    Late,
    /// The coordinator's requests to retrain a device's model.
    Retrain,
    /// The trainers' announcements of new models.
    Models,
    /// Messages no workload could take, with the reason.
    DeadLetter,
}

impl Topic {
    /// Every topic, as set-up creates them.
    pub const ALL: [Topic; 6] = [
        Self::Readings,
        Self::Windows,
        Self::Late,
        Self::Retrain,
        Self::Models,
        Self::DeadLetter,
    ];

    /// The topic's name in its namespace.
    pub fn name(self) -> &'static str {
        match self {
            Self::Readings => "readings",
            Self::Windows => "windows",
            Self::Late => "late",
            Self::Retrain => "retrain",
            Self::Models => "models",
            Self::DeadLetter => "dead-letter",
        }
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ExperimentNames {
    /// Names for an experiment; the name must be a DNS label (as Kubernetes names are).
    pub fn new(experiment: &str) -> Result<Self, InvalidExperimentName> {
        let valid = !experiment.is_empty()
            && experiment.len() <= wattcast_crds::MAX_NAME_LENGTH
            && experiment.starts_with(|c: char| c.is_ascii_lowercase())
            && !experiment.ends_with('-')
            && experiment
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(InvalidExperimentName(experiment.to_owned()));
        }
        Ok(Self {
            experiment: experiment.to_owned(),
        })
    }

    /// The experiment's name.
    pub fn experiment(&self) -> &str {
        &self.experiment
    }

    /// The Pulsar namespace, `public/<experiment>`.
    pub fn pulsar_namespace(&self) -> String {
        format!("public/{}", self.experiment)
    }

    /// A full Pulsar topic name, e.g. `persistent://public/exp1/readings`.
    pub fn pulsar_topic(&self, topic: Topic) -> String {
        format!("persistent://public/{}/{topic}", self.experiment)
    }

    /// The MQTT topic a streaming sensor publishes a device's readings on.
    pub fn mqtt_readings(&self, device: DeviceId) -> String {
        format!("wattcast/{}/readings/{device}", self.experiment)
    }

    /// The MQTT topic a smart sensor publishes a device's minute batches on.
    pub fn mqtt_batches(&self, device: DeviceId) -> String {
        format!("wattcast/{}/batches/{device}", self.experiment)
    }

    /// The MQTT subscription that covers every sensor topic of the experiment.
    pub fn mqtt_subscription(&self) -> String {
        format!("wattcast/{}/+/+", self.experiment)
    }

    /// The PostgreSQL schema (`-` becomes `_`).
    pub fn postgres_schema(&self) -> String {
        format!("exp_{}", self.experiment.replace('-', "_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_design() {
        let names = ExperimentNames::new("exp1-streaming").unwrap();
        assert_eq!(names.pulsar_namespace(), "public/exp1-streaming");
        assert_eq!(
            names.pulsar_topic(Topic::Readings),
            "persistent://public/exp1-streaming/readings"
        );
        assert_eq!(
            names.mqtt_readings(DeviceId(3)),
            "wattcast/exp1-streaming/readings/3"
        );
        assert_eq!(
            names.mqtt_batches(DeviceId(3)),
            "wattcast/exp1-streaming/batches/3"
        );
        assert_eq!(names.mqtt_subscription(), "wattcast/exp1-streaming/+/+");
        assert_eq!(names.postgres_schema(), "exp_exp1_streaming");
    }

    #[test]
    fn every_topic_has_its_own_name() {
        let mut names: Vec<&str> = Topic::ALL.iter().map(|topic| topic.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Topic::ALL.len());
        assert_eq!(Topic::DeadLetter.to_string(), "dead-letter");
    }

    #[test]
    fn names_that_would_break_topics_or_sql_are_refused() {
        for bad in [
            "",
            "Exp",
            "1exp",
            "exp_1",
            "exp/1",
            "exp-",
            "a\"b",
            &"x".repeat(wattcast_crds::MAX_NAME_LENGTH + 1),
        ] {
            assert!(ExperimentNames::new(bad).is_err(), "{bad:?}");
        }
    }
}
