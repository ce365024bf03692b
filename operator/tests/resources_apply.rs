//! Every object the operator builds for an experiment is accepted by a real API server
//! (envtest): server-side applied as the operator will apply it, every pod template validated by
//! the API server itself, owned by the experiment, and a second apply changes nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

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

/// `kubectl scale` of the windowers lasts: the operator's next apply leaves their replicas to
/// whoever scaled them, while a scaled coordinator (one replica by design) is put back.
#[tokio::test]
async fn scaled_windowers_stay_scaled_when_the_operator_applies_again() {
    let server = common::start_api_server().await;
    let client = server.client().expect("a client for the envtest API server");
    common::create_namespace(&client, NAMESPACE).await;
    let objects = apply_every_object(&client, "scaled").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let replicas = |deployment: Deployment| deployment.spec.and_then(|spec| spec.replicas);
    assert_eq!(
        replicas(deployments.get("scaled-windower").await.expect("the windowers")),
        Some(1),
        "the API server's default"
    );
    // As `kubectl scale` does: the scale subresource, under kubectl's own field manager.
    let kubectl = PatchParams {
        field_manager: Some("kubectl".to_owned()),
        ..PatchParams::default()
    };
    let three = Patch::Merge(serde_json::json!({"spec": {"replicas": 3}}));
    for name in ["scaled-windower", "scaled-coordinator"] {
        deployments
            .patch_scale(name, &kubectl, &three)
            .await
            .unwrap_or_else(|error| panic!("{name} scaled: {error}"));
    }
    apply_all(&client, &objects).await;
    assert_eq!(
        replicas(deployments.get("scaled-windower").await.expect("the windowers")),
        Some(3)
    );
    assert_eq!(
        replicas(
            deployments
                .get("scaled-coordinator")
                .await
                .expect("the coordinator")
        ),
        Some(1)
    );
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

/// Devices 2–4 of the original project's reference data, 40 minutes each, in one CSV.
fn reference_devices_csv() -> String {
    let mut csv = String::new();
    for device in 2..=4 {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let path = wattcast_core::dataset::thesis_data::thesis_device_csv(&repo, device)
            .unwrap_or_else(|error| panic!("{error}"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let skip = usize::from(!csv.is_empty());
        for line in text.lines().skip(skip) {
            csv.push_str(line);
            csv.push('\n');
        }
    }
    csv
}

/// A `dataset.source.configMap` is mounted into the setup and sensor pods (and only those) and
/// passed as `--dataset`; the setup Job fails at once when setup refuses the data. What the pods
/// then read — the ConfigMap's key as the kubelet writes it — maps onto the experiment's devices,
/// and a spec asking for more devices than the file has is refused naming file and count.
#[tokio::test]
async fn a_config_map_dataset_is_mounted_into_setup_and_sensors() {
    use wattcast_io::dataset_source::DataSource;
    let server = common::start_api_server().await;
    let client = server.client().expect("a client for the envtest API server");
    common::create_namespace(&client, NAMESPACE).await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let map: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "lab-data"},
        "data": {"devices.csv": reference_devices_csv()},
    }))
    .unwrap();
    maps.create(&PostParams::default(), &map)
        .await
        .expect("a ConfigMap of 215 kB");

    let experiments: Api<PipelineExperiment> = Api::namespaced(client.clone(), NAMESPACE);
    let experiment: PipelineExperiment = serde_json::from_value(serde_json::json!({
        "apiVersion": "wattcast.io/v1alpha1",
        "kind": "PipelineExperiment",
        "metadata": {"name": "own-data", "namespace": NAMESPACE},
        "spec": {
            "architecture": "Batching",
            "devices": {"count": 3},
            "dataset": {"source": {"configMap": {"name": "lab-data", "key": "devices.csv"}}},
        },
    }))
    .unwrap();
    let created = experiments
        .create(&PostParams::default(), &experiment)
        .await
        .expect("created");
    let experiment = ExperimentRef::new(&created).expect("complete metadata");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    apply::<Secret>(&client, &[Credentials::generate(&mut rng).secret(&experiment)]).await;
    let objects = desired_objects(&experiment, &Images::default()).expect("builds");
    apply_all(&client, &objects).await;

    let jobs: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
    for component in ["setup", "sensor"] {
        let job = jobs.get(&format!("own-data-{component}")).await.expect("applied");
        let pod = job.spec.as_ref().unwrap().template.spec.clone().unwrap();
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "dataset")
            .unwrap_or_else(|| panic!("{component} mounts the dataset"));
        let source = volume.config_map.as_ref().expect("a ConfigMap volume");
        assert_eq!(source.name, "lab-data");
        let items = source.items.as_ref().expect("the key only");
        assert_eq!(
            (items[0].key.as_str(), items[0].path.as_str()),
            ("devices.csv", "dataset.csv")
        );
        let container = &pod.containers[0];
        let mount = container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "dataset")
            .expect("mounted");
        assert_eq!(mount.mount_path, "/etc/wattcast-dataset");
        let args = container.args.clone().unwrap_or_default();
        assert_eq!(
            args[args.len() - 2..],
            ["--dataset", "/etc/wattcast-dataset/dataset.csv"]
        );
    }
    let setup = jobs.get("own-data-setup").await.unwrap().spec.unwrap();
    assert_eq!(
        setup.template.spec.as_ref().unwrap().restart_policy.as_deref(),
        Some("Never")
    );
    let rule = &setup.pod_failure_policy.expect("a pod failure policy").rules[0];
    assert_eq!(rule.action, "FailJob");
    assert_eq!(
        rule.on_exit_codes.as_ref().unwrap().values,
        [i32::from(wattcast_core::experiment::EXIT_INVALID_INPUT)]
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let coordinator = deployments.get("own-data-coordinator").await.unwrap();
    let volumes = coordinator
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .volumes
        .unwrap_or_default();
    assert!(
        volumes.iter().all(|v| v.name != "dataset"),
        "only setup and sensors read the data"
    );

    // What the pods read: the key, as the kubelet writes it into the mount.
    let stored = maps.get("lab-data").await.unwrap();
    let file = std::env::temp_dir().join(format!("wattcast-dataset-{}.csv", std::process::id()));
    std::fs::write(&file, &stored.data.unwrap()["devices.csv"]).unwrap();
    let spec = &created.spec;
    let data = DataSource::of(spec, Some(&file))
        .unwrap()
        .load(spec, None)
        .await
        .expect("fits");
    let counts: Vec<(u32, usize)> = data.iter().map(|(device, rows)| (device.0, rows.len())).collect();
    assert_eq!(counts, [(1, 2400), (2, 2400), (3, 2400)]);
    let mut five = spec.clone();
    five.devices.count = 5;
    let refused = DataSource::of(&five, Some(&file))
        .unwrap()
        .load(&five, None)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().ends_with("has 3 device(s) (ids 2, 3, 4) but spec.devices.count is 5; give the file more devices or lower the count"),
        "{refused}"
    );
    std::fs::remove_file(&file).ok();
    server.destroy().await.unwrap();
}
