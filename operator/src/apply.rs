//! Making the cluster match a decision: server-side apply of the objects of the active stages,
//! deletion of those of the others, and the credentials Secret created once — remembering what
//! was done, so an unchanged object is not patched again and a deleted one not deleted again.

use crate::experiment_ref::ExperimentRef;
use crate::lifecycle::Stages;
use crate::resources::DesiredObjects;
use crate::resources::credentials::Credentials;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

/// How long an applied object is trusted to be as applied before it is applied again (repairs
/// an edit or deletion of an object the operator does not watch).
pub const REAPPLY_AFTER: Duration = Duration::from_secs(600);

/// What one experiment's reconciles applied and deleted (kept by the controller per experiment).
#[derive(Debug, Clone, Default)]
pub struct AppliedMemo {
    /// `kind/name` → hash of the object last applied, and when.
    applied: HashMap<String, (u64, Instant)>,
    /// `kind/name` of objects deleted (or found absent) since.
    absent: HashSet<String>,
    /// The credentials Secret exists.
    credentials: bool,
}

impl AppliedMemo {
    fn unchanged(&self, key: &str, hash: u64) -> bool {
        self.applied
            .get(key)
            .is_some_and(|(applied, at)| *applied == hash && at.elapsed() < REAPPLY_AFTER)
    }
}

/// `kind/name`.
fn memo_key<K: Resource<DynamicType = ()>>(name: &str) -> String {
    format!("{}/{name}", K::kind(&()))
}

fn content_hash<K: Serialize>(object: &K) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    serde_json::to_vec(object).unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}

/// What the watch caches say exists of the experiment's Jobs, Deployments and StatefulSets
/// (`kind/name`): those are applied again when missing whatever the memo says.
pub type Existing = HashSet<String>;

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "wattcast-operator";

/// Whether an existing object is re-applied or left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Apply every time (Deployments, StatefulSets, Services, ConfigMaps, policies).
    Apply,
    /// Create when absent only: a Job's template is immutable, and a Job runs once.
    CreateOnly,
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// Applies `objects` that changed since last applied (or are not known to exist); Jobs only
/// when absent.
async fn apply_kind<K>(
    client: &Client,
    namespace: &str,
    objects: &[K],
    mode: Mode,
    memo: &mut AppliedMemo,
    existing: Option<&Existing>,
) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in objects {
        let Some(name) = object.meta().name.clone() else {
            continue;
        };
        let key = memo_key::<K>(&name);
        let exists = existing.is_none_or(|existing| existing.contains(&key));
        let hash = content_hash(object);
        if exists && memo.unchanged(&key, hash) {
            continue;
        }
        if mode == Mode::CreateOnly {
            let known = existing.is_some_and(|existing| existing.contains(&key));
            if known || api.get_opt(&name).await?.is_some() {
                memo.applied.insert(key.clone(), (hash, Instant::now()));
                memo.absent.remove(&key);
                continue;
            }
        }
        api.patch(&name, &params, &Patch::Apply(object)).await?;
        memo.applied.insert(key.clone(), (hash, Instant::now()));
        memo.absent.remove(&key);
    }
    Ok(())
}

/// Deletes `objects` not already known to be gone.
async fn delete_kind<K>(
    client: &Client,
    namespace: &str,
    objects: &[K],
    memo: &mut AppliedMemo,
) -> Result<usize, kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    // Background propagation: a Job's pods go with it (the API's default for Jobs orphans them).
    let params = DeleteParams::background();
    let mut deleted = 0;
    for object in objects {
        let Some(name) = object.meta().name.clone() else {
            continue;
        };
        let key = memo_key::<K>(&name);
        if memo.absent.contains(&key) {
            continue;
        }
        match api.delete(&name, &params).await {
            Ok(_) => deleted += 1,
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error),
        }
        memo.applied.remove(&key);
        memo.absent.insert(key);
    }
    Ok(deleted)
}

/// Creates the experiment's credentials Secret with random values unless it exists (it is never
/// rewritten: the running services were configured with it).
pub async fn ensure_credentials(
    client: &Client,
    experiment: &ExperimentRef,
    memo: &mut AppliedMemo,
) -> Result<bool, kube::Error> {
    if memo.credentials {
        return Ok(false);
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), &experiment.namespace);
    let name = experiment.object_name(crate::resources::credentials::COMPONENT);
    if api.get_opt(&name).await?.is_some() {
        memo.credentials = true;
        return Ok(false);
    }
    let secret = Credentials::generate(&mut rand::rng()).secret(experiment);
    let created = match api.create(&PostParams::default(), &secret).await {
        Ok(_) => true,
        Err(error) if is_conflict(&error) => false,
        Err(error) => return Err(error),
    };
    memo.credentials = true;
    Ok(created)
}

/// Applies the objects of `stages` and deletes the experiment's objects of the other stages;
/// returns how many objects were deleted. `existing` (from the watch caches) says which Jobs,
/// Deployments and StatefulSets exist, so one that vanished is applied again at once.
pub async fn apply_stages(
    client: &Client,
    experiment: &ExperimentRef,
    desired: &DesiredObjects,
    stages: Stages,
    memo: &mut AppliedMemo,
    existing: &Existing,
) -> Result<usize, kube::Error> {
    let namespace = experiment.namespace.as_str();
    let active = desired.for_stages(stages);
    apply_kind(client, namespace, &active.config_maps, Mode::Apply, memo, None).await?;
    apply_kind(
        client,
        namespace,
        &active.network_policies,
        Mode::Apply,
        memo,
        None,
    )
    .await?;
    apply_kind(client, namespace, &active.services, Mode::Apply, memo, None).await?;
    apply_kind(
        client,
        namespace,
        &active.stateful_sets,
        Mode::Apply,
        memo,
        Some(existing),
    )
    .await?;
    apply_kind(
        client,
        namespace,
        &active.deployments,
        Mode::Apply,
        memo,
        Some(existing),
    )
    .await?;
    apply_kind(
        client,
        namespace,
        &active.jobs,
        Mode::CreateOnly,
        memo,
        Some(existing),
    )
    .await?;
    let inactive = desired.except(&active);
    let mut deleted = 0;
    // Consumers first, then what they consume from.
    deleted += delete_kind(client, namespace, &inactive.jobs, memo).await?;
    deleted += delete_kind(client, namespace, &inactive.deployments, memo).await?;
    deleted += delete_kind(client, namespace, &inactive.stateful_sets, memo).await?;
    deleted += delete_kind(client, namespace, &inactive.services, memo).await?;
    deleted += delete_kind(client, namespace, &inactive.network_policies, memo).await?;
    deleted += delete_kind(client, namespace, &inactive.config_maps, memo).await?;
    Ok(deleted)
}

/// The `kind/name` of each listed object, for [`apply_stages`].
pub fn existing_names<'a, K>(objects: impl IntoIterator<Item = &'a K>) -> Existing
where
    K: Resource<DynamicType = ()> + 'a,
{
    objects
        .into_iter()
        .filter_map(|object| object.meta().name.as_deref().map(memo_key::<K>))
        .collect()
}
