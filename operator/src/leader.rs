//! Leader election on a `coordination.k8s.io` Lease, so two operator replicas never reconcile
//! at once: the leader renews the Lease; the others take it over only once it has expired.
//! Updates carry the Lease's resourceVersion, so two candidates cannot both win.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A candidate for leadership.
#[derive(Clone)]
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
}

/// What the Lease says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// This candidate holds it.
    Leading,
    /// Another candidate holds a Lease that has not expired.
    Following,
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

impl LeaderElection {
    /// A candidate named `identity` (the pod name) for the Lease `namespace/name`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        lease_duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration,
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs())
            .unwrap_or(i32::MAX)
            .max(1)
    }

    /// Takes the Lease if it is free, expired or already ours, and renews it.
    pub async fn try_acquire_or_renew(&self) -> Result<Leadership, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.duration_seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Leadership::Leading),
                Err(error) if is_conflict(&error) => Ok(Leadership::Following),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let ours = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let free = spec.holder_identity.as_deref().is_none_or(str::is_empty);
        let expired = spec.renew_time.as_ref().is_none_or(|renewed| {
            let duration = SignedDuration::from_secs(i64::from(
                spec.lease_duration_seconds.unwrap_or(self.duration_seconds()),
            ));
            renewed.0.checked_add(duration).is_ok_and(|until| until < now.0)
        });
        if !(ours || free || expired) {
            return Ok(Leadership::Following);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration_seconds()),
            acquire_time: if ours {
                spec.acquire_time
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..spec
        });
        // `replace` sends the resourceVersion read above: a concurrent winner makes this 409.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(Leadership::Leading),
            Err(error) if is_conflict(&error) => Ok(Leadership::Following),
            Err(error) => Err(error),
        }
    }

    /// Gives the Lease up if held, so a successor need not wait for it to expire.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            Err(error) if is_conflict(&error) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Waits until this candidate leads (or `stop` fires: returns false).
    pub async fn acquire(&self, retry: Duration, stop: &CancellationToken) -> bool {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Leadership::Leading) => return true,
                Ok(Leadership::Following) => tracing::debug!(lease = %self.name, "another replica leads"),
                Err(error) => tracing::warn!(%error, lease = %self.name, "cannot read the Lease"),
            }
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(retry) => {}
            }
        }
    }

    /// Renews every `renew` until `stop` fires; cancels `lost` and returns when leadership is
    /// lost (another holder, or no successful renewal within the lease duration).
    pub async fn keep(&self, renew: Duration, stop: CancellationToken, lost: CancellationToken) {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(renew) => {}
            }
            match self.try_acquire_or_renew().await {
                Ok(Leadership::Leading) => last_renewed = tokio::time::Instant::now(),
                Ok(Leadership::Following) => {
                    tracing::error!(lease = %self.name, "another replica took the Lease");
                    lost.cancel();
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, lease = %self.name, "cannot renew the Lease");
                    if last_renewed.elapsed() >= self.lease_duration {
                        tracing::error!(lease = %self.name, "the Lease expired without renewal");
                        lost.cancel();
                        return;
                    }
                }
            }
        }
    }
}
