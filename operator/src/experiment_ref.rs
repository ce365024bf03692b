//! The experiment an object belongs to: names, labels and the owner reference every object of
//! the experiment carries.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::BTreeMap;
use wattcast_crds::{PipelineExperiment, PipelineExperimentSpec};

/// Why an experiment cannot be turned into objects.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentRefError {
    /// A metadata field the API server always sets is missing.
    #[error("the PipelineExperiment has no metadata.{0}")]
    Missing(&'static str),
}

/// An experiment as the builders need it.
#[derive(Debug, Clone)]
pub struct ExperimentRef {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.uid` (for owner references).
    pub uid: String,
    /// The spec.
    pub spec: PipelineExperimentSpec,
}

/// The label every object of an experiment carries, with the experiment's name.
pub const EXPERIMENT_LABEL: &str = "wattcast.io/experiment";
/// The label naming an object's part (mosquitto, pulsar, coordinator, …).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// The label saying whether a pod is infrastructure or a pipeline workload.
pub const ROLE_LABEL: &str = "wattcast.io/role";

/// What a pod is, for the NetworkPolicies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Mosquitto, Pulsar, PostgreSQL, RustFS.
    Infrastructure,
    /// Sensors, bridge, windower, coordinator, trainer, setup.
    Workload,
}

impl Role {
    /// The `wattcast.io/role` label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Infrastructure => "infrastructure",
            Self::Workload => "workload",
        }
    }
}

impl ExperimentRef {
    /// From a resource read from the API server.
    pub fn new(experiment: &PipelineExperiment) -> Result<Self, ExperimentRefError> {
        let metadata = &experiment.metadata;
        Ok(Self {
            name: metadata.name.clone().ok_or(ExperimentRefError::Missing("name"))?,
            namespace: metadata
                .namespace
                .clone()
                .ok_or(ExperimentRefError::Missing("namespace"))?,
            uid: metadata.uid.clone().ok_or(ExperimentRefError::Missing("uid"))?,
            spec: experiment.spec.clone(),
        })
    }

    /// `<experiment>-<component>`: the name of a component's objects.
    pub fn object_name(&self, component: &str) -> String {
        format!("{}-{component}", self.name)
    }

    /// The labels that select a component's pods.
    pub fn selector(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (EXPERIMENT_LABEL.to_owned(), self.name.clone()),
            (COMPONENT_LABEL.to_owned(), component.to_owned()),
        ])
    }

    /// The labels of a component's objects and pods.
    pub fn labels(&self, component: &str, role: Role) -> BTreeMap<String, String> {
        let mut labels = self.selector(component);
        labels.insert(ROLE_LABEL.to_owned(), role.as_str().to_owned());
        labels.insert("app.kubernetes.io/name".to_owned(), "wattcast".to_owned());
        labels.insert("app.kubernetes.io/instance".to_owned(), self.name.clone());
        labels.insert("app.kubernetes.io/part-of".to_owned(), "wattcast".to_owned());
        labels.insert(
            "app.kubernetes.io/managed-by".to_owned(),
            "wattcast-operator".to_owned(),
        );
        labels
    }

    /// The owner reference to the experiment (so deleting it deletes the object).
    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: "wattcast.io/v1alpha1".to_owned(),
            kind: "PipelineExperiment".to_owned(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// Metadata of a component's object: name, namespace, labels, owner.
    pub fn metadata(&self, component: &str, role: Role) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.object_name(component)),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(component, role)),
            owner_references: Some(vec![self.owner_reference()]),
            ..ObjectMeta::default()
        }
    }
}
