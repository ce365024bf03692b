//! Shared by the integration tests that use real services: where they are, and failing with a
//! message that says how to start them.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::Duration;
use wattcast_io::services::{Services, find_test_env_file};

/// The services from the environment or `test-env/.env`; panics naming `make test-env`.
pub fn services() -> Services {
    let repo =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
            .join("..");
    let env_file = find_test_env_file(&repo);
    Services::load(env_file.as_deref()).unwrap_or_else(|error| panic!("{error}"))
}

/// Awaits `future` for at most `seconds`; on time-out panics naming the service and how to start it.
pub async fn within<T>(seconds: u64, service: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), future)
        .await
        .unwrap_or_else(|_| panic!("{service} did not answer within {seconds}s; is it running? Start the test services with `make test-env`"))
}

/// Panics with the error, naming the service and how to start it.
pub fn reachable<T, E: std::fmt::Display>(service: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|error| {
        panic!("cannot use {service}: {error}; start the test services with `make test-env`")
    })
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// (device, second) → watts of every measured reading an experiment's store holds, in windows or
/// late; panics if one is stored twice (both in a window and as late).
pub async fn arrived(store: &wattcast_io::store::Store) -> std::collections::BTreeMap<(i32, i64), f64> {
    let rows: Vec<(i32, i64, f64)> = sqlx::query_as(
        "SELECT device, event_time, power_w FROM readings WHERE NOT imputed
         UNION ALL SELECT device, event_time, power_w FROM late_readings",
    )
    .fetch_all(store.pool())
    .await
    .expect("reading the stored readings");
    let count = rows.len();
    let map: std::collections::BTreeMap<(i32, i64), f64> = rows
        .into_iter()
        .map(|(device, time, watts)| ((device, time), watts))
        .collect();
    assert_eq!(
        map.len(),
        count,
        "a reading was stored both in a window and as late"
    );
    map
}

/// (device, second) → watts of every reading the experiment's generated dataset holds.
pub fn generated(
    experiment: &wattcast_crds::PipelineExperiment,
) -> std::collections::BTreeMap<(i32, i64), f64> {
    let options = wattcast_core::experiment::generate_options(&experiment.spec).expect("a generated dataset");
    (1..=experiment.spec.devices.count)
        .flat_map(|device| {
            wattcast_core::dataset::generate::generate_device(&options, wattcast_core::DeviceId(device))
                .readings
        })
        .map(|reading| ((reading.device.0 as i32, reading.event_time), reading.power_w))
        .collect()
}

/// An exclusive consumer of one of an experiment's topics, from its earliest message.
pub async fn consumer(
    names: &wattcast_core::topics::ExperimentNames,
    topic: wattcast_core::topics::Topic,
) -> pulsar::Consumer<Vec<u8>, pulsar::TokioExecutor> {
    let pulsar = reachable(
        "Pulsar",
        wattcast_pipeline::workload::pulsar_client(&services().pulsar).await,
    );
    pulsar
        .consumer()
        .with_topic(names.pulsar_topic(topic))
        .with_subscription("test")
        .with_subscription_type(pulsar::SubType::Exclusive)
        .with_options(pulsar::ConsumerOptions {
            initial_position: pulsar::consumer::InitialPosition::Earliest,
            ..pulsar::ConsumerOptions::default()
        })
        .build()
        .await
        .expect("a consumer of the experiment's topic")
}

/// An experiment started afresh on the real services: its Pulsar namespace and topics recreated
/// empty, its PostgreSQL schema dropped and migrated again.
pub async fn fresh_experiment(
    name: &str,
) -> (wattcast_core::topics::ExperimentNames, wattcast_io::store::Store) {
    let services = services();
    let names = wattcast_core::topics::ExperimentNames::new(name).expect("a valid experiment name");
    let admin = wattcast_io::pulsar_admin::PulsarAdmin::new(&services.pulsar).expect("a Pulsar admin client");
    reachable("Pulsar admin", admin.delete_experiment(&names).await);
    reachable("Pulsar admin", admin.create_experiment(&names).await);
    let store = reachable(
        "PostgreSQL",
        wattcast_io::store::Store::connect(&services.postgres, &names.postgres_schema(), 2).await,
    );
    store.drop_schema().await.expect("the old schema dropped");
    store.migrate().await.expect("the schema migrated");
    (names, store)
}

/// Stores `values` of `device` as measured readings, one a second from `from`, the way the
/// coordinator does: in windows of up to 60 seconds (the last one as long as what is left).
pub async fn store_measured(store: &wattcast_io::store::Store, device: u32, from: i64, values: &[f64]) {
    use wattcast_core::imputation::{ImputationMethod, impute};
    use wattcast_core::wire::WindowMessage;
    use wattcast_core::{DeviceId, Reading, Window};
    let windows: Vec<_> = values
        .chunks(60)
        .enumerate()
        .map(|(index, chunk)| {
            let start = from + 60 * index as i64;
            let readings = (start..)
                .zip(chunk)
                .map(|(event_time, &power_w)| Reading {
                    device: DeviceId(device),
                    event_time,
                    power_w,
                    published_ms: None,
                })
                .collect();
            let window = Window {
                device: DeviceId(device),
                start,
                end: start + chunk.len() as i64,
                readings,
                expected: chunk.len() as u32,
                late: 0,
            };
            let filled = impute(&window, ImputationMethod::Mean).expect("a complete window fills");
            (
                WindowMessage {
                    window,
                    emitted_ms: 0,
                },
                filled,
            )
        })
        .collect();
    let items: Vec<(&WindowMessage, &[_])> = windows
        .iter()
        .map(|(message, filled)| (message, filled.as_slice()))
        .collect();
    store.store_windows(&items, 0).await.expect("readings stored");
}

/// Removes what a test made on the shared services — a PostgreSQL schema, an experiment's
/// schema and Pulsar namespace — when it goes out of scope, so runs do not pile them up. A
/// failed test keeps them for inspection and says so. The removal runs on a runtime of its own
/// with fresh connections (a `Drop` cannot await, and the test's runtime may be shutting down).
#[must_use = "bind it to a named variable (`_cleanup`): `_` drops it at once"]
pub struct Cleanup {
    schema: Option<String>,
    pulsar: Option<wattcast_core::topics::ExperimentNames>,
}

impl Cleanup {
    /// Drops `schema` at the end.
    pub fn schema(schema: impl Into<String>) -> Self {
        Self {
            schema: Some(schema.into()),
            pulsar: None,
        }
    }

    /// Drops the experiment's schema and deletes its Pulsar namespace at the end.
    pub fn experiment(names: &wattcast_core::topics::ExperimentNames) -> Self {
        Self {
            schema: Some(names.postgres_schema()),
            pulsar: Some(names.clone()),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (schema, pulsar) = (self.schema.take(), self.pulsar.take());
        if std::thread::panicking() {
            eprintln!(
                "the test failed: kept schema {schema:?} and Pulsar namespace {:?} for inspection",
                pulsar.as_ref().map(|names| names.pulsar_namespace())
            );
            return;
        }
        let services = services();
        let removal = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            runtime.block_on(async move {
                if let Some(schema) = schema {
                    let dropped =
                        match wattcast_io::store::Store::connect(&services.postgres, &schema, 1).await {
                            Ok(store) => store.drop_schema().await.map_err(|error| error.to_string()),
                            Err(error) => Err(error.to_string()),
                        };
                    if let Err(error) = dropped {
                        eprintln!("could not drop the test's schema {schema}: {error}");
                    }
                }
                if let Some(names) = pulsar {
                    let deleted = match wattcast_io::pulsar_admin::PulsarAdmin::new(&services.pulsar) {
                        Ok(admin) => admin
                            .delete_experiment(&names)
                            .await
                            .map_err(|error| error.to_string()),
                        Err(error) => Err(error.to_string()),
                    };
                    if let Err(error) = deleted {
                        eprintln!(
                            "could not delete the test's Pulsar namespace {}: {error}",
                            names.pulsar_namespace()
                        );
                    }
                }
            });
        });
        let _ = removal.join();
    }
}
