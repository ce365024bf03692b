//! Making the cluster match a decision: server-side apply of the objects of the active stages,
//! deletion of those of the others, and the credentials Secret created once.

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
use std::fmt::Debug;

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

async fn apply_kind<K>(client: &Client, namespace: &str, objects: &[K], mode: Mode) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in objects {
        let Some(name) = object.meta().name.clone() else {
            continue;
        };
        if mode == Mode::CreateOnly && api.get_opt(&name).await?.is_some() {
            continue;
        }
        api.patch(&name, &params, &Patch::Apply(object)).await?;
    }
    Ok(())
}

async fn delete_kind<K>(client: &Client, namespace: &str, objects: &[K]) -> Result<usize, kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    // Background propagation: a Job's pods go with it (the API's default for Jobs orphans them).
    let params = DeleteParams::background();
    let mut deleted = 0;
    for object in objects {
        let Some(name) = object.meta().name.clone() else {
            continue;
        };
        match api.delete(&name, &params).await {
            Ok(_) => deleted += 1,
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(deleted)
}

/// Creates the experiment's credentials Secret with random values unless it exists (it is never
/// rewritten: the running services were configured with it).
pub async fn ensure_credentials(client: &Client, experiment: &ExperimentRef) -> Result<bool, kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &experiment.namespace);
    let name = experiment.object_name(crate::resources::credentials::COMPONENT);
    if api.get_opt(&name).await?.is_some() {
        return Ok(false);
    }
    let secret = Credentials::generate(&mut rand::rng()).secret(experiment);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(true),
        Err(error) if is_conflict(&error) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Applies the objects of `stages` and deletes the experiment's objects of the other stages;
/// returns how many objects were deleted.
pub async fn apply_stages(
    client: &Client,
    experiment: &ExperimentRef,
    desired: &DesiredObjects,
    stages: Stages,
) -> Result<usize, kube::Error> {
    let namespace = experiment.namespace.as_str();
    let active = desired.for_stages(stages);
    apply_kind(client, namespace, &active.config_maps, Mode::Apply).await?;
    apply_kind(client, namespace, &active.network_policies, Mode::Apply).await?;
    apply_kind(client, namespace, &active.services, Mode::Apply).await?;
    apply_kind(client, namespace, &active.stateful_sets, Mode::Apply).await?;
    apply_kind(client, namespace, &active.deployments, Mode::Apply).await?;
    apply_kind(client, namespace, &active.jobs, Mode::CreateOnly).await?;
    let inactive = desired.except(&active);
    let mut deleted = 0;
    // Consumers first, then what they consume from.
    deleted += delete_kind(client, namespace, &inactive.jobs).await?;
    deleted += delete_kind(client, namespace, &inactive.deployments).await?;
    deleted += delete_kind(client, namespace, &inactive.stateful_sets).await?;
    deleted += delete_kind(client, namespace, &inactive.services).await?;
    deleted += delete_kind(client, namespace, &inactive.network_policies).await?;
    deleted += delete_kind(client, namespace, &inactive.config_maps).await?;
    Ok(deleted)
}
