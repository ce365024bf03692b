//! Builders of every object an experiment needs: pure functions from the experiment (and the
//! images and credentials) to typed Kubernetes objects, applied by the controller with
//! server-side apply.

pub mod credentials;
pub mod infrastructure;
pub mod locations;
pub mod network;
pub mod security;
pub mod specs;
pub mod workloads;

use crate::experiment_ref::ExperimentRef;
use crate::images::Images;
use crate::lifecycle::{Stage, Stages};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;

/// Why an object could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The experiment's spec cannot be serialised for the workloads.
    #[error("serialising the experiment: {0}")]
    Spec(#[from] serde_yaml::Error),
}

/// Every object of an experiment except its credentials Secret (created once, see
/// [`credentials`]) — what the controller applies on each reconcile.
#[derive(Debug, Clone, Default)]
pub struct DesiredObjects {
    /// Configuration: Mosquitto's, and the experiment file the workloads read.
    pub config_maps: Vec<ConfigMap>,
    /// The managed services' Services.
    pub services: Vec<Service>,
    /// Mosquitto and the long-running workloads.
    pub deployments: Vec<Deployment>,
    /// Pulsar, PostgreSQL and RustFS.
    pub stateful_sets: Vec<StatefulSet>,
    /// The setup Job and the sensors' indexed Job.
    pub jobs: Vec<Job>,
    /// Who may reach the experiment's pods.
    pub network_policies: Vec<NetworkPolicy>,
}

impl DesiredObjects {
    /// Only the objects of the stages that should exist now (see [`crate::lifecycle`]).
    pub fn for_stages(&self, stages: Stages) -> Self {
        fn keep<K: component::HasComponent + Clone>(objects: &[K], stages: Stages) -> Vec<K> {
            objects
                .iter()
                .filter(|o| stages.includes(Stage::of_component(o.component())))
                .cloned()
                .collect()
        }
        Self {
            config_maps: keep(&self.config_maps, stages),
            services: keep(&self.services, stages),
            deployments: keep(&self.deployments, stages),
            stateful_sets: keep(&self.stateful_sets, stages),
            jobs: keep(&self.jobs, stages),
            network_policies: keep(&self.network_policies, stages),
        }
    }
}

impl DesiredObjects {
    /// The objects of `self` that are not in `kept` (by name): what a stage change removes.
    pub fn except(&self, kept: &Self) -> Self {
        fn missing<
            K: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta> + Clone,
        >(
            all: &[K],
            kept: &[K],
        ) -> Vec<K> {
            all.iter()
                .filter(|object| {
                    !kept
                        .iter()
                        .any(|other| other.metadata().name == object.metadata().name)
                })
                .cloned()
                .collect()
        }
        Self {
            config_maps: missing(&self.config_maps, &kept.config_maps),
            services: missing(&self.services, &kept.services),
            deployments: missing(&self.deployments, &kept.deployments),
            stateful_sets: missing(&self.stateful_sets, &kept.stateful_sets),
            jobs: missing(&self.jobs, &kept.jobs),
            network_policies: missing(&self.network_policies, &kept.network_policies),
        }
    }

    /// Component names of the managed services (what must be ready before setup runs).
    pub fn infrastructure_components(&self) -> Vec<&str> {
        use component::HasComponent;
        self.deployments
            .iter()
            .map(HasComponent::component)
            .chain(self.stateful_sets.iter().map(HasComponent::component))
            .filter(|name| Stage::of_component(name) == Stage::Infrastructure)
            .collect()
    }

    /// Component names of the long-running workloads.
    pub fn workload_components(&self) -> Vec<&str> {
        use component::HasComponent;
        self.deployments
            .iter()
            .map(HasComponent::component)
            .filter(|name| Stage::of_component(name) == Stage::Workloads)
            .collect()
    }
}

/// Reading an object's component label, for every kind the builders make.
mod component {
    use crate::experiment_ref::COMPONENT_LABEL;
    use k8s_openapi::Metadata;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    /// An object with metadata.
    pub trait HasComponent {
        /// Its `app.kubernetes.io/component` label ("" when absent).
        fn component(&self) -> &str;
    }

    impl<K: Metadata<Ty = ObjectMeta>> HasComponent for K {
        fn component(&self) -> &str {
            self.metadata()
                .labels
                .as_ref()
                .and_then(|l| l.get(COMPONENT_LABEL))
                .map_or("", String::as_str)
        }
    }
}

/// Builds every object the experiment needs.
pub fn desired_objects(experiment: &ExperimentRef, images: &Images) -> Result<DesiredObjects, BuildError> {
    let mut objects = DesiredObjects::default();
    infrastructure::add(&mut objects, experiment, images);
    workloads::add(&mut objects, experiment, images)?;
    objects.network_policies = network::policies(experiment);
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use wattcast_crds::{ExternalService, PipelineExperiment};

    fn experiment(yaml: &str) -> ExperimentRef {
        let mut experiment: PipelineExperiment = serde_yaml::from_str(yaml).expect("valid experiment");
        experiment.metadata.namespace = Some("lab".to_owned());
        experiment.metadata.uid = Some("0000-1111".to_owned());
        ExperimentRef::new(&experiment).expect("complete metadata")
    }

    const STREAMING: &str = "
metadata: { name: exp1 }
spec:
  architecture: Streaming
  devices: { count: 3 }
  dataset: { scenario: MissingTimestamps }
";

    fn templates(objects: &DesiredObjects) -> Vec<(String, PodTemplateSpec)> {
        let name = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            meta.name.clone().unwrap_or_default()
        };
        let mut all = Vec::new();
        for d in &objects.deployments {
            all.push((name(&d.metadata), d.spec.clone().expect("spec").template));
        }
        for s in &objects.stateful_sets {
            all.push((name(&s.metadata), s.spec.clone().expect("spec").template));
        }
        for j in &objects.jobs {
            all.push((name(&j.metadata), j.spec.clone().expect("spec").template));
        }
        all
    }

    #[test]
    fn a_streaming_experiment_gets_managed_infrastructure_and_every_workload() {
        let objects = desired_objects(&experiment(STREAMING), &Images::default()).expect("builds");
        let names = |items: Vec<Option<String>>| items.into_iter().flatten().collect::<Vec<_>>();
        assert_eq!(
            names(
                objects
                    .deployments
                    .iter()
                    .map(|d| d.metadata.name.clone())
                    .collect()
            ),
            [
                "exp1-mosquitto",
                "exp1-bridge",
                "exp1-windower",
                "exp1-coordinator",
                "exp1-trainer"
            ]
        );
        assert_eq!(
            names(
                objects
                    .stateful_sets
                    .iter()
                    .map(|s| s.metadata.name.clone())
                    .collect()
            ),
            ["exp1-pulsar", "exp1-postgres", "exp1-rustfs"]
        );
        assert_eq!(
            names(objects.jobs.iter().map(|j| j.metadata.name.clone()).collect()),
            ["exp1-setup", "exp1-sensor"]
        );
        let sensor = objects.jobs[1].spec.as_ref().expect("spec");
        // Three devices are one sensor pod's share (perSensorPod 250).
        assert_eq!(
            (
                sensor.completions,
                sensor.parallelism,
                sensor.completion_mode.as_deref()
            ),
            (Some(1), Some(1), Some("Indexed"))
        );
        assert_eq!(sensor.backoff_limit_per_index, Some(3));
        assert_eq!(objects.network_policies.len(), 2);
    }

    #[test]
    fn ten_thousand_devices_are_forty_sensor_pods_not_ten_thousand() {
        let mut experiment = experiment(STREAMING);
        experiment.spec.devices.count = 10_000;
        let objects = desired_objects(&experiment, &Images::default()).expect("builds");
        let sensor = objects.jobs[1].spec.as_ref().expect("spec");
        assert_eq!((sensor.completions, sensor.parallelism), (Some(40), Some(40)));
        let pod = sensor.template.spec.as_ref().expect("a pod spec");
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let requests = pod.containers[0]
            .resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .expect("requests");
        assert_eq!(requests["cpu"].0, "508m");
        assert_eq!(requests["memory"].0, "281Mi");
    }

    #[test]
    fn a_stage_change_removes_exactly_the_objects_of_the_stages_left() {
        let objects = desired_objects(&experiment(STREAMING), &Images::default()).expect("builds");
        assert_eq!(
            objects.infrastructure_components(),
            ["mosquitto", "pulsar", "postgres", "rustfs"]
        );
        assert_eq!(
            objects.workload_components(),
            ["bridge", "windower", "coordinator", "trainer"]
        );
        let infrastructure_only = objects.for_stages(Stages {
            infrastructure: true,
            ..Stages::default()
        });
        let removed = objects.except(&infrastructure_only);
        let names = |jobs: &[Job]| {
            jobs.iter()
                .filter_map(|j| j.metadata.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&removed.jobs), ["exp1-setup", "exp1-sensor"]);
        assert_eq!(removed.deployments.len(), 4, "the four workloads, not Mosquitto");
        assert!(removed.stateful_sets.is_empty() && removed.network_policies.is_empty());
        let nothing = objects.except(&objects);
        assert!(nothing.jobs.is_empty() && nothing.deployments.is_empty() && nothing.config_maps.is_empty());
    }

    #[test]
    fn every_object_is_owned_labelled_and_every_pod_locked_down() {
        let experiment = experiment(STREAMING);
        let objects = desired_objects(&experiment, &Images::default()).expect("builds");
        let metas = objects
            .config_maps
            .iter()
            .map(|o| &o.metadata)
            .chain(objects.services.iter().map(|o| &o.metadata))
            .chain(objects.deployments.iter().map(|o| &o.metadata))
            .chain(objects.stateful_sets.iter().map(|o| &o.metadata))
            .chain(objects.jobs.iter().map(|o| &o.metadata))
            .chain(objects.network_policies.iter().map(|o| &o.metadata));
        for meta in metas {
            assert_eq!(meta.namespace.as_deref(), Some("lab"));
            assert_eq!(
                meta.owner_references.as_deref(),
                Some(&[experiment.owner_reference()][..])
            );
            let labels = meta.labels.as_ref().expect("labels");
            assert_eq!(
                labels
                    .get(crate::experiment_ref::EXPERIMENT_LABEL)
                    .map(String::as_str),
                Some("exp1")
            );
        }
        for (name, template) in templates(&objects) {
            let spec = template.spec.expect("pod spec");
            let pod = spec.security_context.expect("pod security context");
            assert_eq!(pod.run_as_non_root, Some(true), "{name}");
            assert_eq!(
                pod.seccomp_profile.map(|p| p.type_).as_deref(),
                Some("RuntimeDefault"),
                "{name}"
            );
            assert_eq!(spec.automount_service_account_token, Some(false), "{name}");
            for container in spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
            {
                let security = container
                    .security_context
                    .clone()
                    .expect("container security context");
                assert_eq!(security.allow_privilege_escalation, Some(false), "{name}");
                assert_eq!(security.read_only_root_filesystem, Some(true), "{name}");
                assert_eq!(
                    security.capabilities.and_then(|c| c.drop),
                    Some(vec!["ALL".to_owned()]),
                    "{name}"
                );
                assert!(
                    container.image.as_deref().is_some_and(|i| i.contains(':')),
                    "{name}: pinned image"
                );
            }
        }
    }

    #[test]
    fn workloads_find_the_services_and_never_hold_a_literal_secret() {
        let objects = desired_objects(&experiment(STREAMING), &Images::default()).expect("builds");
        let coordinator = &objects.deployments[3];
        let template = coordinator
            .spec
            .clone()
            .expect("spec")
            .template
            .spec
            .expect("pod spec");
        let env = template.containers[0].env.clone().expect("env");
        let value = |name: &str| env.iter().find(|e| e.name == name).and_then(|e| e.value.clone());
        assert_eq!(
            value("WATTCAST_MQTT_URL").as_deref(),
            Some("mqtt://exp1-mosquitto:1883")
        );
        assert_eq!(
            value("WATTCAST_PULSAR_URL").as_deref(),
            Some("pulsar://exp1-pulsar:6650")
        );
        assert_eq!(
            value("WATTCAST_POSTGRES_URL").as_deref(),
            Some("postgres://exp1-postgres:5432/wattcast")
        );
        for name in [
            "WATTCAST_MQTT_PASSWORD",
            "WATTCAST_POSTGRES_PASSWORD",
            "WATTCAST_S3_SECRET_KEY",
        ] {
            let var = env.iter().find(|e| e.name == name).expect(name);
            assert!(
                var.value.is_none() && var.value_from.is_some(),
                "{name} comes from the Secret"
            );
        }
        assert_eq!(
            template.containers[0].args.clone().expect("args"),
            [
                "coordinator",
                "--experiment",
                "/etc/wattcast/experiment.yaml",
                "--metrics-addr",
                "0.0.0.0:9090"
            ]
        );
    }

    #[test]
    fn external_services_replace_managed_ones_and_batching_has_no_windower() {
        let mut experiment = experiment(STREAMING);
        experiment.spec.architecture = wattcast_crds::Architecture::Batching;
        let external = |url: &str| {
            Some(ExternalService {
                url: url.to_owned(),
                credentials_secret: Some("mine".to_owned()),
                ca_secret: None,
                admin_url: None,
            })
        };
        experiment.spec.infrastructure.pulsar = external("pulsar+ssl://pulsar.example:6651");
        experiment.spec.infrastructure.postgres = external("postgres://db.example:5432/lab");
        experiment.spec.infrastructure.mqtt = external("mqtt://broker.example:1883");
        experiment.spec.infrastructure.object_store = external("https://s3.example");
        let objects = desired_objects(&experiment, &Images::default()).expect("builds");
        assert!(objects.stateful_sets.is_empty() && objects.services.is_empty());
        let names: Vec<_> = objects
            .deployments
            .iter()
            .filter_map(|d| d.metadata.name.clone())
            .collect();
        assert_eq!(names, ["exp1-bridge", "exp1-coordinator", "exp1-trainer"]);
        let env = objects.deployments[0]
            .spec
            .clone()
            .expect("spec")
            .template
            .spec
            .expect("pod")
            .containers[0]
            .env
            .clone()
            .expect("env");
        let value = |name: &str| env.iter().find(|e| e.name == name).and_then(|e| e.value.clone());
        assert_eq!(
            value("WATTCAST_PULSAR_ADMIN_URL").as_deref(),
            Some("https://pulsar.example:8443")
        );
        assert_eq!(
            value("WATTCAST_POSTGRES_URL").as_deref(),
            Some("postgres://db.example:5432/lab")
        );
        let secret = env
            .iter()
            .find(|e| e.name == "WATTCAST_S3_SECRET_KEY")
            .and_then(|e| e.value_from.clone());
        assert_eq!(
            secret.and_then(|s| s.secret_key_ref).map(|r| (r.name, r.key)),
            Some(("mine".to_owned(), "secretKey".to_owned()))
        );
    }

    #[test]
    fn the_trainers_are_as_the_spec_asks_and_the_windowers_as_scaled() {
        let mut experiment = experiment(STREAMING);
        experiment.spec.forecasting.trainers = 3;
        let objects = desired_objects(&experiment, &Images::default()).expect("builds");
        let replicas: Vec<(String, Option<i32>)> = objects
            .deployments
            .iter()
            .map(|d| {
                (
                    d.metadata.name.clone().unwrap_or_default(),
                    d.spec.as_ref().and_then(|s| s.replicas),
                )
            })
            .collect();
        assert_eq!(
            replicas,
            [
                ("exp1-mosquitto".to_owned(), Some(1)),
                ("exp1-bridge".to_owned(), Some(1)),
                // Left to whoever scales the windowers; the API server defaults it to one.
                ("exp1-windower".to_owned(), None),
                ("exp1-coordinator".to_owned(), Some(1)),
                ("exp1-trainer".to_owned(), Some(3)),
            ]
        );
    }

    #[test]
    fn no_trainer_runs_when_models_are_never_retrained() {
        let mut experiment = experiment(STREAMING);
        experiment.spec.forecasting.retrain = wattcast_crds::Retrain::Never;
        let objects = desired_objects(&experiment, &Images::default()).expect("builds");
        assert_eq!(
            objects.workload_components(),
            ["bridge", "windower", "coordinator"]
        );
    }

    #[test]
    fn an_own_model_config_map_is_mounted_into_the_setup_pod_only() {
        let experiment = experiment(
            "
metadata: { name: exp1 }
spec:
  architecture: Batching
  devices: { count: 2 }
  dataset: { scenario: InOrder }
  forecasting: { model: { source: { configMap: { name: keras-lstm } } } }
",
        );
        let objects = desired_objects(&experiment, &Images::default()).expect("builds");
        for (name, template) in templates(&objects) {
            let pod = template.spec.clone().expect("pod");
            let container = &pod.containers[0];
            let args = container.args.clone().unwrap_or_default();
            let volume = pod
                .volumes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .find(|v| v.name == "model");
            if name != "exp1-setup" {
                assert!(
                    volume.is_none() && !args.contains(&"--model-dir".to_owned()),
                    "{name}"
                );
                continue;
            }
            let map = volume.and_then(|v| v.config_map).expect("the ConfigMap volume");
            assert_eq!(map.name, "keras-lstm");
            let items: Vec<(String, String)> = map
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|item| (item.key, item.path))
                .collect();
            assert_eq!(
                items,
                [
                    ("model.onnx".to_owned(), "model.onnx".to_owned()),
                    ("scaler.json".to_owned(), "scaler.json".to_owned())
                ]
            );
            let mount = container
                .volume_mounts
                .clone()
                .unwrap_or_default()
                .into_iter()
                .find(|m| m.name == "model")
                .expect("mounted");
            assert_eq!(
                (mount.mount_path.as_str(), mount.read_only),
                (workloads::MODEL_DIR, Some(true))
            );
            let at = args.iter().position(|a| a == "--model-dir").expect("--model-dir");
            assert_eq!(args[at + 1], workloads::MODEL_DIR);
        }
    }

    #[test]
    fn each_ca_secret_is_mounted_in_every_pod_and_named_by_its_variable() {
        let experiment = experiment(
            "
metadata: { name: exp1 }
spec:
  architecture: Streaming
  devices: { count: 3 }
  dataset: { scenario: MissingTimestamps }
  infrastructure:
    mqtt: { url: 'mqtts://broker.example', credentialsSecret: mine, caSecret: broker-ca }
    pulsar: { url: 'pulsar+ssl://pulsar.example:6651', caSecret: pulsar-ca }
    postgres: { url: 'postgres://db.example/lab?sslmode=verify-full', credentialsSecret: mine, caSecret: db-ca }
",
        );
        let objects = desired_objects(&experiment, &Images::default()).expect("builds");
        let pods = templates(&objects);
        assert!(pods.len() >= 5, "setup, sensors and the Deployments");
        for (name, template) in pods.iter().filter(|(name, _)| !name.ends_with("-rustfs")) {
            let pod = template.spec.clone().expect("pod");
            let container = &pod.containers[0];
            let env = container.env.clone().unwrap_or_default();
            let variable = |name: &str| env.iter().find(|e| e.name == name).and_then(|e| e.value.clone());
            let volumes = pod.volumes.clone().unwrap_or_default();
            let mounts = container.volume_mounts.clone().unwrap_or_default();
            for (service, secret) in [
                ("mqtt", "broker-ca"),
                ("pulsar", "pulsar-ca"),
                ("postgres", "db-ca"),
            ] {
                let file = format!("/etc/wattcast-tls/{service}/ca.crt");
                let name_of_variable = format!("WATTCAST_{}_CA_FILE", service.to_uppercase());
                assert_eq!(
                    variable(&name_of_variable).as_deref(),
                    Some(file.as_str()),
                    "{name}"
                );
                let volume = volumes
                    .iter()
                    .find(|v| v.name == format!("{service}-ca"))
                    .unwrap_or_else(|| panic!("{name} has no {service}-ca volume"));
                let source = volume.secret.clone().expect("a Secret volume");
                assert_eq!(source.secret_name.as_deref(), Some(secret));
                let items = source.items.expect("one item");
                assert_eq!(
                    (items[0].key.as_str(), items[0].path.as_str()),
                    ("ca.crt", "ca.crt")
                );
                assert!(
                    mounts.iter().any(|m| m.name == volume.name
                        && m.mount_path == format!("/etc/wattcast-tls/{service}")
                        && m.read_only == Some(true)),
                    "{name} does not mount {service}-ca"
                );
            }
            // The managed object store has no CA bundle.
            assert_eq!(variable("WATTCAST_S3_CA_FILE"), None, "{name}");
        }
    }

    #[test]
    fn stages_partition_the_objects() {
        let objects = desired_objects(&experiment(STREAMING), &Images::default()).expect("builds");
        let only = |stages: Stages| objects.for_stages(stages);
        let none = Stages::default();
        let infrastructure = only(Stages {
            infrastructure: true,
            ..none
        });
        assert!(infrastructure.jobs.is_empty());
        assert_eq!(infrastructure.deployments.len(), 1, "mosquitto only");
        assert_eq!(
            infrastructure.network_policies.len(),
            2,
            "policies from the start"
        );
        assert_eq!(
            only(Stages { setup: true, ..none }).jobs[0]
                .metadata
                .name
                .as_deref(),
            Some("exp1-setup")
        );
        assert_eq!(
            only(Stages {
                sensors: true,
                ..none
            })
            .jobs[0]
                .metadata
                .name
                .as_deref(),
            Some("exp1-sensor")
        );
        assert_eq!(
            only(Stages {
                workloads: true,
                ..none
            })
            .deployments
            .len(),
            4
        );
        let all = only(Stages {
            infrastructure: true,
            setup: true,
            workloads: true,
            sensors: true,
        });
        let count = |o: &DesiredObjects| {
            o.config_maps.len()
                + o.services.len()
                + o.deployments.len()
                + o.stateful_sets.len()
                + o.jobs.len()
                + o.network_policies.len()
        };
        assert_eq!(count(&all), count(&objects), "every object belongs to a stage");
        assert_eq!(count(&only(none)), 0);
    }

    #[test]
    fn the_experiment_file_reads_back_as_the_experiment() {
        let experiment = experiment(STREAMING);
        let objects = desired_objects(&experiment, &Images::default()).expect("builds");
        let config = objects
            .config_maps
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some("exp1-experiment"))
            .expect("file");
        let file = &config.data.as_ref().expect("data")["experiment.yaml"];
        let read: PipelineExperiment = serde_yaml::from_str(file).expect("parses");
        assert_eq!(read.spec, experiment.spec);
        assert_eq!(read.metadata.name.as_deref(), Some("exp1"));
    }
}
