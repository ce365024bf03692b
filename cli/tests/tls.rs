//! Every client of the pipeline over TLS, against the test env's TLS listeners (Mosquitto 8883,
//! PostgreSQL ssl=on, Pulsar 6651/8443, S3 behind socat on 9443): each connects with the test
//! env's CA and is refused with a CA that did not sign the server's certificate; and a whole
//! `wattcast local` run over TLS stores every reading.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::path::Path;
use wattcast_core::topics::ExperimentNames;
use wattcast_io::object_store::ObjectStore;
use wattcast_io::pulsar_admin::PulsarAdmin;
use wattcast_io::services::{Services, TestEnvCa, test_env_over_tls};
use wattcast_io::store::Store;
use wattcast_pipeline::local::{LocalOptions, run_local};

/// The test env's services at their TLS addresses, with the CA that signed their certificates
/// or another one.
fn tls_services(ca: TestEnvCa) -> Services {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let env_file = wattcast_io::services::find_test_env_file(&repo)
        .unwrap_or_else(|| panic!("test-env/.env is missing; start the test services with `make test-env`"));
    test_env_over_tls(&env_file, ca).unwrap_or_else(|error| panic!("{error}"))
}

/// Connects to the broker and publishes one QoS 1 message; the first connection error ends it.
async fn mqtt_publish(services: &Services) -> Result<(), String> {
    let options = wattcast_pipeline::workload::mqtt_options(&services.mqtt, common::unique("tls"));
    let (client, mut events) = AsyncClient::new(options, 10);
    client
        .publish("wattcast/tls-test", QoS::AtLeastOnce, false, "over TLS")
        .await
        .map_err(|error| error.to_string())?;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => return Ok(()),
            Ok(_) => {}
            Err(error) => return Err(format!("{error:?}")),
        }
    }
}

/// Whether an error says the server's certificate was refused as not signed by a trusted CA.
fn is_unknown_issuer(message: &str) -> bool {
    message.contains("UnknownIssuer") || message.contains("unknown issuer")
}

#[tokio::test]
async fn mqtt_over_tls_with_the_ca_and_refused_with_another() {
    common::within(
        30,
        "Mosquitto's TLS listener",
        mqtt_publish(&tls_services(TestEnvCa::Signer)),
    )
    .await
    .unwrap_or_else(|error| {
        panic!("MQTT over TLS failed: {error}; start the test services with `make test-env`")
    });
    let refused = common::within(
        30,
        "Mosquitto's TLS listener",
        mqtt_publish(&tls_services(TestEnvCa::Other)),
    )
    .await
    .expect_err("a broker whose certificate the CA did not sign must be refused");
    assert!(is_unknown_issuer(&refused), "{refused}");
}

#[tokio::test]
async fn postgres_over_tls_with_the_ca_and_refused_with_another() {
    let services = tls_services(TestEnvCa::Signer);
    assert!(services.postgres.url.contains("sslmode=verify-full"));
    let store = common::reachable(
        "PostgreSQL over TLS",
        common::within(30, "PostgreSQL", Store::connect(&services.postgres, "public", 1)).await,
    );
    let encrypted: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .expect("pg_stat_ssl");
    assert!(encrypted, "the connection is not encrypted");

    let refused = common::within(
        30,
        "PostgreSQL",
        Store::connect(&tls_services(TestEnvCa::Other).postgres, "public", 1),
    )
    .await
    .expect_err("a server whose certificate the CA did not sign must be refused");
    let message = wattcast_io::object_store::describe(&refused);
    assert!(is_unknown_issuer(&message), "{message}");
}

#[tokio::test]
async fn postgres_require_with_a_ca_checks_it_as_libpq_does() {
    let mut postgres = tls_services(TestEnvCa::Other).postgres;
    postgres.url = postgres.url.replace("sslmode=verify-full", "sslmode=require");
    let refused = common::within(30, "PostgreSQL", Store::connect(&postgres, "public", 1))
        .await
        .expect_err("sslmode=require with a CA given must check the certificate against it");
    let message = wattcast_io::object_store::describe(&refused);
    assert!(is_unknown_issuer(&message), "{message}");
}

#[tokio::test]
async fn pulsar_over_tls_with_the_ca_and_refused_with_another() {
    let services = tls_services(TestEnvCa::Signer);
    let pulsar = common::reachable(
        "Pulsar over TLS",
        common::within(
            60,
            "Pulsar's TLS port",
            wattcast_pipeline::workload::pulsar_client(&services.pulsar),
        )
        .await,
    );
    let topic = format!("persistent://public/default/{}", common::unique("tls"));
    let mut producer = wattcast_pipeline::workload::producer(&pulsar, topic.clone())
        .await
        .expect("a producer over TLS");
    let mut consumer: pulsar::Consumer<Vec<u8>, _> = pulsar
        .consumer()
        .with_topic(&topic)
        .with_subscription("tls-test")
        .with_options(pulsar::ConsumerOptions {
            initial_position: pulsar::consumer::InitialPosition::Earliest,
            ..pulsar::ConsumerOptions::default()
        })
        .build()
        .await
        .expect("a consumer over TLS");
    producer
        .send_non_blocking(b"over TLS".to_vec())
        .await
        .expect("sent")
        .await
        .expect("confirmed by the broker");
    let message = common::within(30, "Pulsar", futures::StreamExt::next(&mut consumer))
        .await
        .expect("a message")
        .expect("received");
    assert_eq!(message.payload.data, b"over TLS");

    let refused = common::within(
        120,
        "Pulsar's TLS port",
        wattcast_pipeline::workload::pulsar_client(&tls_services(TestEnvCa::Other).pulsar),
    )
    .await
    .err()
    .expect("a broker whose certificate the CA did not sign must be refused");
    let message = wattcast_io::object_store::describe(&refused);
    assert!(is_unknown_issuer(&message), "{message}");
}

#[tokio::test]
async fn pulsar_admin_over_https_with_the_ca_and_refused_with_another() {
    let names = ExperimentNames::new(&common::unique("tls-admin")).unwrap();
    let _cleanup = common::Cleanup::experiment(&names);
    let admin = PulsarAdmin::new(&tls_services(TestEnvCa::Signer).pulsar).expect("an admin client");
    common::reachable(
        "Pulsar admin over https",
        common::within(60, "Pulsar admin", admin.create_experiment(&names)).await,
    );
    common::reachable(
        "Pulsar admin over https",
        common::within(60, "Pulsar admin", admin.delete_experiment(&names)).await,
    );

    let admin = PulsarAdmin::new(&tls_services(TestEnvCa::Other).pulsar).expect("an admin client");
    let refused = common::within(60, "Pulsar admin", admin.create_experiment(&names))
        .await
        .expect_err("an admin API whose certificate the CA did not sign must be refused");
    assert!(is_unknown_issuer(&refused.to_string()), "{refused}");
}

#[tokio::test]
async fn s3_over_https_with_the_ca_and_refused_with_another() {
    let bucket = common::unique("tls").to_lowercase();
    let objects = ObjectStore::new(&tls_services(TestEnvCa::Signer).s3, &bucket);
    common::reachable(
        "S3 over https",
        common::within(30, "S3", objects.ensure_bucket()).await,
    );
    objects
        .put("a/b.txt", b"over TLS".to_vec())
        .await
        .expect("put over https");
    assert_eq!(objects.get("a/b.txt").await.expect("get over https"), b"over TLS");

    let refused = ObjectStore::new(&tls_services(TestEnvCa::Other).s3, &bucket);
    let error = common::within(60, "S3", refused.get("a/b.txt"))
        .await
        .expect_err("an endpoint whose certificate the CA did not sign must be refused");
    assert!(is_unknown_issuer(&error.to_string()), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_run_over_tls_stores_every_reading() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/experiments/smoke.yaml");
    let mut experiment = wattcast_core::experiment::read_experiment(&path).unwrap();
    experiment.metadata.name = Some("pipeline-tls".to_owned());
    experiment.spec.devices.count = 1;
    let services = tls_services(TestEnvCa::Signer);
    let options = LocalOptions::new(services.clone());
    let summary = common::reachable(
        "the pipeline's services over TLS",
        run_local(&experiment, options).await,
    );
    let names = ExperimentNames::new("pipeline-tls").unwrap();
    let store = Store::connect(&services.postgres, &names.postgres_schema(), 2)
        .await
        .unwrap();
    let expected = common::generated(&experiment);
    assert_eq!(summary.readings_sent, expected.len() as u64);
    assert_eq!(common::arrived(&store).await, expected);
    assert_eq!(summary.dead_letters, 0);
    assert!(summary.windows > 0);
}
