//! The finalizer's work: what an experiment leaves outside its owned objects. Managed services
//! go with the experiment's objects (owner references, and their volumes with their
//! StatefulSets); external ones keep the experiment's Pulsar namespace, S3 prefix and schema,
//! which are removed as `spec.cleanup` says.

use crate::endpoints::{EndpointsError, resolve};
use crate::experiment_ref::ExperimentRef;
use kube::Client;
use std::fmt;
use wattcast_core::topics::ExperimentNames;
use wattcast_crds::CleanupPolicy;
use wattcast_io::object_store::{DEFAULT_BUCKET, ObjectStore, ObjectStoreError};
use wattcast_io::pulsar_admin::{PulsarAdmin, PulsarAdminError};
use wattcast_io::store::{Store, StoreError};

/// Why the side effects could not be removed (retried).
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// Deleting the Pulsar namespace failed.
    #[error("deleting the experiment's Pulsar namespace: {0}")]
    Pulsar(#[from] PulsarAdminError),
    /// Deleting the S3 prefix failed.
    #[error("deleting the experiment's models: {0}")]
    ObjectStore(#[from] ObjectStoreError),
    /// Dropping the schema failed.
    #[error("dropping the experiment's schema: {0}")]
    Store(#[from] StoreError),
    /// An attempt took longer than it may (a service that does not answer).
    #[error("no answer within {} from the external services", humantime::format_duration(*.0))]
    TimedOut(std::time::Duration),
}

/// What was removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// The policy said keep everything.
    pub kept: bool,
    /// The external Pulsar namespace was deleted.
    pub pulsar_namespace: bool,
    /// Objects deleted under the experiment's S3 prefix.
    pub objects: Option<usize>,
    /// The external schema was dropped.
    pub schema: bool,
    /// Credentials could not be read, so nothing external could be removed.
    pub unreachable: Option<String>,
    /// What the policy says to remove and has not been removed yet, each saying where.
    pub pending: Vec<String>,
}

impl fmt::Display for CleanupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kept {
            return write!(f, "cleanup: Keep; external side effects left in place");
        }
        if let Some(reason) = &self.unreachable {
            return write!(f, "external side effects not removed: {reason}");
        }
        let mut parts = Vec::new();
        if self.pulsar_namespace {
            parts.push("deleted the Pulsar namespace".to_owned());
        }
        if let Some(objects) = self.objects {
            parts.push(format!("deleted {objects} model objects"));
        }
        if self.schema {
            parts.push("dropped the PostgreSQL schema".to_owned());
        }
        if parts.is_empty() {
            write!(f, "every service was managed; they go with the experiment")
        } else {
            write!(f, "{}", parts.join(", "))
        }
    }
}

/// Which external side effects a policy removes on deletion: (Pulsar namespace and S3 prefix,
/// the PostgreSQL schema with the results).
pub fn removes(policy: CleanupPolicy) -> (bool, bool) {
    match policy {
        CleanupPolicy::Keep => (false, false),
        CleanupPolicy::DeleteWorkloads => (true, false),
        CleanupPolicy::DeleteAll => (true, true),
    }
}

/// Removes the experiment's external side effects per its policy, recording in `report` what
/// was removed and what is still pending (so a failed attempt says what it left behind).
pub async fn remove_side_effects(
    client: &Client,
    experiment: &ExperimentRef,
    report: &mut CleanupReport,
) -> Result<(), CleanupError> {
    let (messaging, results) = removes(experiment.spec.cleanup);
    if !messaging && !results {
        report.kept = true;
        return Ok(());
    }
    let Ok(names) = ExperimentNames::new(&experiment.name) else {
        report.unreachable = Some(format!("`{}` is not a valid experiment name", experiment.name));
        return Ok(());
    };
    let endpoints = match resolve(client, experiment).await {
        Ok(endpoints) => endpoints,
        // Without credentials nothing can be removed; the deletion must not hang forever.
        Err(
            error @ (EndpointsError::Secret { .. }
            | EndpointsError::MissingKey { .. }
            | EndpointsError::CaBundle(_)),
        ) => {
            report.unreachable = Some(error.to_string());
            return Ok(());
        }
    };
    let pulsar = messaging && !endpoints.pulsar_managed;
    let objects = messaging && !endpoints.object_store_managed;
    let schema = results && !endpoints.postgres_managed;
    let prefix = format!("{}/", names.experiment());
    let pulsar_pending = format!(
        "Pulsar namespace {} at {}",
        names.pulsar_namespace(),
        endpoints.pulsar.admin_url
    );
    let objects_pending = format!(
        "objects under s3://{DEFAULT_BUCKET}/{prefix} at {}",
        endpoints.object_store.endpoint
    );
    let schema_pending = format!("PostgreSQL schema {}", names.postgres_schema());
    for (planned, what) in [
        (pulsar, &pulsar_pending),
        (objects, &objects_pending),
        (schema, &schema_pending),
    ] {
        if planned && !report.pending.contains(what) {
            report.pending.push(what.clone());
        }
    }
    let done = |report: &mut CleanupReport, what: &str| report.pending.retain(|p| p != what);
    if pulsar {
        PulsarAdmin::new(&endpoints.pulsar)?
            .delete_experiment(&names)
            .await?;
        report.pulsar_namespace = true;
        done(report, &pulsar_pending);
    }
    if objects {
        let store = ObjectStore::new(&endpoints.object_store, DEFAULT_BUCKET);
        report.objects = Some(store.delete_prefix(&prefix).await?);
        done(report, &objects_pending);
    }
    if schema {
        let store = Store::connect(&endpoints.postgres, &names.postgres_schema(), 1).await?;
        store.drop_schema().await?;
        store.pool().close().await;
        report.schema = true;
        done(report, &schema_pending);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_decides_what_goes() {
        assert_eq!(removes(CleanupPolicy::Keep), (false, false));
        assert_eq!(removes(CleanupPolicy::DeleteWorkloads), (true, false));
        assert_eq!(removes(CleanupPolicy::DeleteAll), (true, true));
    }

    #[test]
    fn the_report_says_what_was_done() {
        let report = CleanupReport {
            pulsar_namespace: true,
            objects: Some(6),
            ..CleanupReport::default()
        };
        assert_eq!(
            report.to_string(),
            "deleted the Pulsar namespace, deleted 6 model objects"
        );
        assert_eq!(
            CleanupReport::default().to_string(),
            "every service was managed; they go with the experiment"
        );
    }
}
