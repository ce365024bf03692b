//! Where reconcile reads an experiment's progress and results: its PostgreSQL through a pool
//! kept per experiment, or, in tests, whatever a [`MeasurementSource`] supplies.

use crate::endpoints::resolve;
use crate::experiment_ref::ExperimentRef;
use crate::measurements::{Measurements, measure};
use futures::future::BoxFuture;
use kube::Client;
use std::collections::HashMap;
use std::sync::Mutex;
use wattcast_core::topics::ExperimentNames;
use wattcast_io::store::Store;

/// A source of an experiment's measurements.
pub trait MeasurementSource: Send + Sync {
    /// The experiment's measurements, the full results (percentiles, accuracy) only when `full`;
    /// None while they cannot be read (the reason is logged).
    fn read<'a>(
        &'a self,
        client: &'a Client,
        experiment: &'a ExperimentRef,
        full: bool,
    ) -> BoxFuture<'a, Option<Measurements>>;

    /// Lets go of what is kept for the experiment `uid` (it completed, failed or was deleted).
    fn forget(&self, uid: &str);
}

/// Reads each experiment's own PostgreSQL, through a one-connection pool made once (with the
/// credentials read once) and kept until the experiment ends or a read fails.
#[derive(Default)]
pub struct PostgresMeasurements {
    pools: Mutex<HashMap<String, Store>>,
}

impl PostgresMeasurements {
    /// The kept pool of `uid`, or a new one on the experiment's PostgreSQL.
    async fn store(&self, client: &Client, experiment: &ExperimentRef) -> Option<Store> {
        let kept = self
            .pools
            .lock()
            .ok()
            .and_then(|pools| pools.get(&experiment.uid).cloned());
        if kept.is_some() {
            return kept;
        }
        let endpoints = match resolve(client, experiment).await {
            Ok(endpoints) => endpoints,
            Err(error) => {
                tracing::info!(%error, experiment = %experiment.name, "cannot read the store yet");
                return None;
            }
        };
        let names = ExperimentNames::new(&experiment.name).ok()?;
        match Store::connect(&endpoints.postgres, &names.postgres_schema(), 1).await {
            Ok(store) => {
                if let Ok(mut pools) = self.pools.lock() {
                    pools.insert(experiment.uid.clone(), store.clone());
                }
                Some(store)
            }
            Err(error) => {
                tracing::info!(%error, experiment = %experiment.name, "cannot reach the experiment's PostgreSQL");
                None
            }
        }
    }
}

impl MeasurementSource for PostgresMeasurements {
    fn read<'a>(
        &'a self,
        client: &'a Client,
        experiment: &'a ExperimentRef,
        full: bool,
    ) -> BoxFuture<'a, Option<Measurements>> {
        Box::pin(async move {
            let store = self.store(client, experiment).await?;
            match measure(&store, full).await {
                Ok(measured) => Some(measured),
                Err(error) => {
                    tracing::info!(%error, experiment = %experiment.name, "cannot read the experiment's results yet");
                    // Connect afresh next time (the service may have moved, or its credentials changed).
                    self.forget(&experiment.uid);
                    None
                }
            }
        })
    }

    fn forget(&self, uid: &str) {
        let store = self.pools.lock().ok().and_then(|mut pools| pools.remove(uid));
        if let Some(store) = store {
            tokio::spawn(async move { store.pool().close().await });
        }
    }
}
