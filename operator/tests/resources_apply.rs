//! Every object the operator builds for an experiment is accepted by a real API server
//! (envtest): server-side applied as the operator will apply it, every pod template validated by
//! the API server itself, owned by the experiment, and a second apply changes nothing.

mod common;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use rand::SeedableRng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use wattcast_crds::PipelineExperiment;
use wattcast_operator::experiment_ref::ExperimentRef;
use wattcast_operator::images::Images;
use wattcast_operator::resources::credentials::Credentials;
use wattcast_operator::resources::{DesiredObjects, desired_objects};

const NAMESPACE: &str = "lab";

/// Server-side applies `objects` and returns each one's resourceVersion afterwards.
async fn apply<K>(client: &Client, objects: &[K]) -> Vec<String>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), NAMESPACE);
    let params = PatchParams::apply("wattcast-operator").force();
    let mut versions = Vec::new();
    for object in objects {
        let name = object.meta().name.clone().expect("named");
        let applied = api
            .patch(&name, &params, &Patch::Apply(object))
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "the API server refused {} {name}: {error}",
                    K::kind(&K::DynamicType::default())
                )
            });
        versions.push(applied.meta().resource_version.clone().unwrap_or_default());
    }
    versions
}

/// Applies every object of `objects`; the resourceVersions, kind by kind.
async fn apply_all(client: &Client, objects: &DesiredObjects) -> Vec<Vec<String>> {
    vec![
        apply(client, &objects.config_maps).await,
        apply(client, &objects.services).await,
        apply(client, &objects.deployments).await,
        apply(client, &objects.stateful_sets).await,
        apply(client, &objects.jobs).await,
        apply(client, &objects.network_policies).await,
    ]
}

async fn owned_count<K>(client: &Client, uid: &str) -> usize
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), NAMESPACE);
    let listed = api.list(&ListParams::default()).await.expect("lists");
    listed
        .items
        .iter()
        .filter(|o| {
            o.meta()
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .count()
}

/// Creates an experiment named `name`, applies every object built for it twice, and checks
/// the counts, ownership and that the second apply changes nothing.
async fn apply_every_object(client: &Client, name: &str) -> DesiredObjects {
    let experiments: Api<PipelineExperiment> = Api::namespaced(client.clone(), NAMESPACE);
    let experiment: PipelineExperiment = serde_json::from_value(serde_json::json!({
        "apiVersion": "wattcast.io/v1alpha1",
        "kind": "PipelineExperiment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "architecture": "Streaming",
            "devices": {"count": 10000},
            "dataset": {"scenario": "MissingTimestamps", "duration": "15m"},
            "windowing": {"watermark": {"strategy": "BoundedOutOfOrderness", "maxOutOfOrderness": "5s"}},
        },
    }))
    .expect("an experiment");
    let created = experiments
        .create(&PostParams::default(), &experiment)
        .await
        .unwrap_or_else(|error| panic!("experiment {name} created: {error}"));
    let experiment = ExperimentRef::new(&created).expect("complete metadata");

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    apply::<Secret>(client, &[Credentials::generate(&mut rng).secret(&experiment)]).await;
    let objects = desired_objects(&experiment, &Images::default()).expect("builds");
    let first = apply_all(client, &objects).await;

    let uid = experiment.uid.as_str();
    assert_eq!(owned_count::<Secret>(client, uid).await, 1);
    // Mosquitto's and Pulsar's configuration, and the experiment file.
    assert_eq!(owned_count::<ConfigMap>(client, uid).await, 3);
    assert_eq!(owned_count::<Service>(client, uid).await, 4);
    assert_eq!(owned_count::<Deployment>(client, uid).await, 5);
    assert_eq!(owned_count::<StatefulSet>(client, uid).await, 3);
    assert_eq!(owned_count::<Job>(client, uid).await, 2);
    assert_eq!(owned_count::<NetworkPolicy>(client, uid).await, 2);

    // Applying the same objects again changes nothing (server-side apply is idempotent).
    let objects = desired_objects(&experiment, &Images::default()).expect("builds");
    let second = apply_all(client, &objects).await;
    assert_eq!(first, second);
    objects
}

#[tokio::test]
async fn the_api_server_accepts_every_object_of_an_experiment() {
    let server = common::start_api_server().await;
    let client = server.client().expect("a client for the envtest API server");
    common::create_namespace(&client, NAMESPACE).await;
    apply_every_object(&client, "exp1").await;
    server.destroy().await.unwrap();
}

/// The longest name the CRD admits makes objects whose names, and the labels and host names
/// the controllers derive from them, all fit Kubernetes' limits.
#[tokio::test]
async fn the_longest_admitted_name_fits_every_object() {
    const LIMIT: usize = 63;
    let server = common::start_api_server().await;
    let client = server.client().expect("a client for the envtest API server");
    common::create_namespace(&client, NAMESPACE).await;
    let longest = format!("a{}", "-b".repeat((wattcast_crds::MAX_NAME_LENGTH - 1) / 2));
    let longest = format!(
        "{longest}{}",
        "c".repeat(wattcast_crds::MAX_NAME_LENGTH - longest.len())
    );
    assert_eq!(longest.len(), wattcast_crds::MAX_NAME_LENGTH);
    let objects = apply_every_object(&client, &longest).await;

    // What the API server here cannot check, because no controller runs on envtest: the
    // StatefulSet controller labels each pod `controller-revision-hash: <set>-<hash of up to
    // 10 characters>`, and the Job controller names an indexed pod's host `<job>-<index>`.
    for set in &objects.stateful_sets {
        let name = set.metadata.name.as_deref().unwrap();
        assert!(
            name.len() + 1 + 10 <= LIMIT,
            "{name}'s revision label is too long"
        );
    }
    for job in &objects.jobs {
        let name = job.metadata.name.as_deref().unwrap();
        let last_index = job.spec.as_ref().unwrap().completions.unwrap_or(1) - 1;
        let host = format!("{name}-{last_index}");
        assert!(host.len() <= LIMIT, "{host} is too long for a host name");
    }
    server.destroy().await.unwrap();
}
