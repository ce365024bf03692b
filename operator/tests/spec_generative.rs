//! Every spec the API server admits runs: specs generated over every field of the resource
//! (each field's values as its type allows, near-misses included: durations with milliseconds,
//! URLs with paths, TLS schemes, ports past 65535, look-backs longer than the data) are submitted
//! to a real API server (envtest) with the CRD's schema and CEL rules; for each one it accepts,
//! the checks the operator and the setup Job make later — objects built, the windowing, the
//! dataset, the initial model's data, every service variable a pod gets parsed by the
//! workloads — must pass. An admitted spec never fails later on a rule admission could check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use wattcast_core::DeviceId;
use wattcast_core::dataset::generate::generate_device;
use wattcast_core::experiment::window_config;
use wattcast_core::recipe::Recipe;
use wattcast_core::topics::ExperimentNames;
use wattcast_crds::PipelineExperiment;
use wattcast_io::dataset_source::DataSource;
use wattcast_io::services::ServiceEnv;
use wattcast_operator::experiment_ref::ExperimentRef;
use wattcast_operator::images::Images;
use wattcast_operator::resources::desired_objects;
use wattcast_operator::resources::workloads::service_env;

fn one_of(values: &[&'static str]) -> impl Strategy<Value = Value> + use<> {
    prop::sample::select(values.to_vec()).prop_map(Value::from)
}

/// Mostly values that work, sometimes one a rule must refuse.
fn mostly(good: &[&'static str], near_misses: &[&'static str]) -> impl Strategy<Value = Value> + use<> {
    prop_oneof![6 => one_of(good), 1 => one_of(near_misses)]
}

fn duration() -> impl Strategy<Value = Value> {
    mostly(
        &["1s", "5s", "59s", "1m", "90s", "5m", "10m", "1h", "1h30m", "2h"],
        &["0s", "500ms", "1500ms", "3m", "4m"],
    )
}

fn optional(strategy: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(0.4, strategy)
}

fn external(
    good: &[&'static str],
    near_misses: &[&'static str],
) -> impl Strategy<Value = Option<Value>> + use<> {
    // A CA Secret with any URL: the rules refuse it for a plain one. An admin URL on any
    // service: the rules refuse it but for Pulsar, and a malformed one.
    let admin = prop::option::weighted(
        0.1,
        mostly(
            &[
                "https://pulsar-admin.example",
                "http://10.0.0.8:8080",
                "https://admin:8443/",
            ],
            &["https://admin:8443/admin/v2", "ftp://admin", "https://u:p@admin"],
        ),
    );
    let service = (mostly(good, near_misses), prop::bool::weighted(0.3), admin);
    optional(service.prop_map(|(url, with_ca, admin)| {
        let mut service = json!({"url": url, "credentialsSecret": "external"});
        if with_ca {
            service["caSecret"] = json!("external-ca");
        }
        if let Some(admin) = admin {
            service["adminUrl"] = admin;
        }
        service
    }))
}

fn dataset() -> impl Strategy<Value = Value> {
    let generated = (
        one_of(&["InOrder", "MissingTimestamps"]),
        0_u64..1000,
        duration(),
        optional(duration()),
    )
        .prop_map(|(scenario, seed, duration, jitter)| {
            let mut dataset = json!({"scenario": scenario, "seed": seed, "duration": duration});
            if let Some(jitter) = jitter {
                dataset["jitter"] = jitter;
            }
            dataset
        });
    let own = prop_oneof![
        Just(json!({"source": {"configMap": {"name": "lab-data", "key": "devices.csv"}}})),
        Just(json!({"source": {"s3": {"bucket": "lab-data", "key": "devices.csv"}}})),
    ];
    prop_oneof![3 => generated, 1 => own]
}

fn windowing() -> impl Strategy<Value = Value> {
    (duration(), any::<bool>(), duration(), optional(duration())).prop_map(|(size, bounded, bound, idle)| {
        let mut watermark = if bounded {
            json!({"strategy": "BoundedOutOfOrderness", "maxOutOfOrderness": bound})
        } else {
            json!({"strategy": "Monotonous"})
        };
        if let Some(idle) = idle {
            watermark["idleTimeout"] = idle;
        }
        json!({"size": size, "watermark": watermark})
    })
}

fn forecasting() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![1_u32, 2, 30, 60, 60, 60, 200, 299]),
        prop::sample::select(vec![1_u32, 60, 3600]),
        duration(),
        1_u32..64,
        1_u32..300,
        1_u32..128,
        // Trainers: mostly within 1..=32, sometimes 0 or 33 (refused).
        prop::sample::select(vec![1_u32, 1, 2, 4, 32, 0, 33]),
    )
        .prop_map(|(look_back, horizon, retrain, hidden, epochs, batch, trainers)| {
            json!({
                "lookBack": look_back, "horizon": horizon, "retrainEvery": retrain, "trainers": trainers,
                "model": {"hidden": hidden, "epochs": epochs, "batchSize": batch},
            })
        })
}

fn infrastructure() -> impl Strategy<Value = Value> {
    (
        external(
            &[
                "mqtt://broker:1883",
                "mqtt://broker",
                "mqtt://broker:1883/",
                "mqtt://10.0.0.7:65535",
                "mqtts://broker:8883",
                "mqtts://broker",
            ],
            &[
                "mqtts://broker:0",
                "mqtt+ssl://broker:8883",
                "mqtt://broker:70000",
                "mqtt://broker:1883/lab",
                "mqtt://user@broker:1883",
            ],
        ),
        external(
            &[
                "pulsar://pulsar:6650",
                "pulsar://pulsar",
                "pulsar://pulsar.lab.svc:6650/",
                "pulsar+ssl://pulsar:6651",
                "pulsar+ssl://pulsar.example.com",
            ],
            &[
                "pulsarXssl://pulsar:6651",
                "pulsar+tls://pulsar:6651",
                "pulsar://pulsar:6650/lab",
                "pulsar://pulsar:0",
            ],
        ),
        external(
            &[
                "postgres://db:5432/lab",
                "postgresql://db/lab",
                "postgres://db:5432/lab?sslmode=disable",
                "postgres://db:5432",
                "postgres://db:5432/lab?sslmode=require",
                "postgres://db/lab?sslmode=verify-ca",
                "postgresql://db.example.com/lab?application_name=w&sslmode=verify-full",
            ],
            &[
                "postgres://db/lab?sslmode=verify-fullish",
                "postgres://u:p@db/lab",
                "mysql://db/lab",
            ],
        ),
        external(
            &["http://s3:9000", "https://s3.example", "http://s3:9000/prefix"],
            &["ftp://s3", "http://key:secret@s3:9000"],
        ),
    )
        .prop_map(|(mqtt, pulsar, postgres, object_store)| {
            let mut infrastructure = json!({});
            for (key, service) in [
                ("mqtt", mqtt),
                ("pulsar", pulsar),
                ("postgres", postgres),
                ("objectStore", object_store),
            ] {
                if let Some(service) = service {
                    infrastructure[key] = service;
                }
            }
            infrastructure
        })
}

fn spec() -> impl Strategy<Value = Value> {
    (
        (
            one_of(&["Streaming", "Batching"]),
            prop_oneof![1_u32..5, 5_u32..10_000],
            prop::option::weighted(0.2, duration()),
            1_u32..400,
        ),
        dataset(),
        prop::sample::select(vec![0.0_f64, 0.5, 1.0, 60.0, 60.0, 600.0]),
        windowing(),
        one_of(&["Mean", "Linear", "Previous"]),
        forecasting(),
        infrastructure(),
        one_of(&["DeleteWorkloads", "DeleteAll", "Keep"]),
        duration(),
    )
        .prop_map(
            |(
                (architecture, count, ramp, per_pod),
                dataset,
                speedup,
                windowing,
                imputation,
                forecasting,
                infrastructure,
                cleanup,
                cleanup_timeout,
            )| {
                let mut devices = json!({"count": count, "perSensorPod": per_pod});
                if let Some(every) = ramp {
                    devices["rampUp"] = json!({"every": every});
                }
                json!({
                    "architecture": architecture, "devices": devices, "dataset": dataset,
                    "replay": {"speedup": speedup}, "windowing": windowing, "imputation": imputation,
                    "forecasting": forecasting, "infrastructure": infrastructure,
                    "cleanup": cleanup, "cleanupTimeout": cleanup_timeout,
                })
            },
        )
}

/// The variables a workload pod gets, with the Secrets' values filled in as the kubelet would.
/// A pod's service variables, Secret references filled in; CA bundle files (mounted from the
/// `caSecret` in a pod) are the test env's CA.
fn pod_variables(experiment: &ExperimentRef, ca_file: &str) -> HashMap<String, String> {
    service_env(experiment)
        .into_iter()
        .map(|variable| {
            let name = variable.name;
            let value = match variable.value.as_deref() {
                Some(_) if name.ends_with("_CA_FILE") => ca_file.to_owned(),
                Some(value) => value.to_owned(),
                None => format!("secret-{name}-p@ss:w/rd#%"),
            };
            (name, value)
        })
        .collect()
}

/// The test env's CA bundle file.
fn test_env_ca_file() -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let env_file = wattcast_io::services::find_test_env_file(&repo)
        .unwrap_or_else(|| panic!("test-env/.env is missing; start the test services with `make test-env`"));
    dotenvy::from_path_iter(&env_file)
        .expect("test-env/.env")
        .filter_map(Result::ok)
        .find_map(|(name, value)| (name == "WATTCAST_TEST_TLS_CA_FILE").then_some(value))
        .unwrap_or_else(|| {
            panic!("test-env/.env has no WATTCAST_TEST_TLS_CA_FILE; run `make test-env` again")
        })
}

/// What the operator and the setup Job check later, for a spec the API server admitted.
fn runs_later(created: &PipelineExperiment, ca_file: &str) -> Result<(), String> {
    let spec = &created.spec;
    let name = created.metadata.name.as_deref().unwrap_or_default();
    ExperimentNames::new(name).map_err(|e| e.to_string())?;
    let experiment = ExperimentRef::new(created).map_err(|e| e.to_string())?;
    desired_objects(&experiment, &Images::default()).map_err(|e| format!("objects: {e}"))?;
    window_config(spec).map_err(|e| format!("windowing: {e}"))?;
    // A ConfigMap source reaches the pods as a mounted file.
    let mount = spec
        .dataset
        .source
        .as_ref()
        .and_then(|source| source.config_map.as_ref())
        .map(|_| Path::new("/etc/wattcast-dataset/dataset.csv"));
    let source = DataSource::of(spec, mount).map_err(|e| format!("dataset: {e}"))?;
    let recipe = Recipe::from_spec(&spec.forecasting);
    if recipe.min_readings() > recipe.training_readings {
        return Err(format!(
            "lookBack {} cannot train on {} readings",
            recipe.look_back, recipe.training_readings
        ));
    }
    if let DataSource::Generated(options) = &source {
        // The initial model of device 1 gets enough readings.
        let readings = generate_device(options, DeviceId(1))
            .readings
            .len()
            .min(recipe.training_readings);
        if readings < recipe.min_readings() {
            return Err(format!(
                "device 1 has {readings} readings; lookBack {} needs {}",
                recipe.look_back,
                recipe.min_readings()
            ));
        }
    }
    let services = ServiceEnv::from_values(pod_variables(&experiment, ca_file), None)
        .all()
        .map_err(|e| format!("pod variables: {e}"))?;
    sqlx::postgres::PgConnectOptions::from_str(&services.postgres.url)
        .map_err(|e| format!("PostgreSQL URL {}: {e}", services.postgres.url))?;
    if spec.devices.sensor_pods() == 0 {
        return Err("no sensor pods".to_owned());
    }
    Ok(())
}

#[test]
fn every_admitted_spec_passes_the_checks_made_after_admission() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _inside = runtime.enter();
    let server = runtime.block_on(common::start_api_server());
    let client = server.client().expect("a client for the envtest API server");
    runtime.block_on(common::create_namespace(&client, "generated"));
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("wattcast.io", "v1alpha1", "PipelineExperiment"),
        "pipelineexperiments",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, "generated", &resource);
    let counter = std::cell::Cell::new(0_u32);
    let (admitted, refused) = (std::cell::Cell::new(0_u32), std::cell::Cell::new(0_u32));
    let mut runner = TestRunner::new(Config {
        cases: 800,
        failure_persistence: None,
        ..Config::default()
    });
    let ca_file = test_env_ca_file();
    let outcome = runner.run(&spec(), |spec| {
        counter.set(counter.get() + 1);
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "wattcast.io/v1alpha1",
            "kind": "PipelineExperiment",
            "metadata": {"name": format!("g-{}", counter.get())},
            "spec": spec,
        }))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        match runtime.block_on(api.create(&PostParams::default(), &object)) {
            Err(kube::Error::Api(status)) if status.code == 422 => {
                refused.set(refused.get() + 1);
                Ok(())
            }
            Err(other) => Err(TestCaseError::fail(format!("the API server failed: {other}"))),
            Ok(created) => {
                admitted.set(admitted.get() + 1);
                let typed: PipelineExperiment =
                    serde_json::from_value(serde_json::to_value(&created).unwrap())
                        .map_err(|e| TestCaseError::fail(format!("read back: {e}")))?;
                runs_later(&typed, &ca_file).map_err(|problem| {
                    TestCaseError::fail(format!(
                        "admitted but fails later: {problem}\nspec: {}",
                        serde_json::to_string(&typed.spec).unwrap_or_default()
                    ))
                })
            }
        }
    });
    runtime.block_on(server.destroy()).unwrap();
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    // The generator explores both sides of the rules.
    let (admitted, refused) = (admitted.get(), refused.get());
    eprintln!("{admitted} specs admitted and checked, {refused} refused");
    assert!(
        admitted >= 10 && refused >= 10,
        "admitted {admitted}, refused {refused}"
    );
}
