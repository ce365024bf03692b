//! Pulsar is real: produce and consume a message with the `pulsar` crate, and read a topic's
//! backlog through the admin API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use futures::StreamExt;
use pulsar::{Consumer, Pulsar, SubType, TokioExecutor};
use wattcast_core::topics::Topic;

/// A client of the test env's Pulsar, or a failure saying how to start it.
async fn connect(services: &wattcast_io::services::Services) -> Pulsar<TokioExecutor> {
    common::reachable(
        "Pulsar",
        common::within(
            60,
            "Pulsar",
            Pulsar::builder(services.pulsar.url.clone(), TokioExecutor).build(),
        )
        .await,
    )
}

#[tokio::test]
async fn produce_and_consume() {
    let services = common::services();
    let client = connect(&services).await;
    let topic = format!("persistent://public/default/{}", common::unique("smoke"));

    let mut consumer: Consumer<Vec<u8>, TokioExecutor> = common::reachable(
        "Pulsar",
        common::within(
            60,
            "Pulsar",
            client
                .consumer()
                .with_topic(&topic)
                .with_subscription("smoke")
                .with_subscription_type(SubType::Exclusive)
                .build(),
        )
        .await,
    );
    let mut producer = common::reachable(
        "Pulsar",
        common::within(60, "Pulsar", client.producer().with_topic(&topic).build()).await,
    );

    let payload = br#"{"sensor_id":2,"sensor_energy_value":615.3,"sensor_timestamp":1765152000}"#.to_vec();
    let receipt = common::within(30, "Pulsar", async {
        producer.send_non_blocking(payload.clone()).await?.await
    })
    .await
    .unwrap();
    assert!(
        receipt.message_id.is_some(),
        "the broker confirmed the send with a message id"
    );

    let message = common::within(30, "Pulsar", consumer.next())
        .await
        .expect("the consumer stream ended")
        .unwrap();
    assert_eq!(message.payload.data, payload);
    consumer.ack(&message).await.unwrap();
}

#[tokio::test]
async fn the_admin_api_counts_what_a_subscription_has_not_acknowledged() {
    let services = common::services();
    let names = wattcast_core::topics::ExperimentNames::new(&common::unique("backlog")).expect("a name");
    let admin = wattcast_io::pulsar_admin::PulsarAdmin::new(&services.pulsar).expect("an admin client");
    common::reachable("Pulsar admin", admin.create_experiment(&names).await);
    let client = connect(&services).await;
    let topic = names.pulsar_topic(Topic::Windows);
    let mut consumer: Consumer<Vec<u8>, TokioExecutor> = common::within(
        60,
        "Pulsar",
        client
            .consumer()
            .with_topic(&topic)
            .with_subscription("backlog")
            .with_subscription_type(SubType::Exclusive)
            .build(),
    )
    .await
    .unwrap();
    let mut producer = common::within(60, "Pulsar", client.producer().with_topic(&topic).build())
        .await
        .unwrap();
    for i in 0..5u8 {
        common::within(30, "Pulsar", async {
            producer.send_non_blocking(vec![i]).await?.await
        })
        .await
        .unwrap();
    }
    let backlog = admin.backlog(&names).await.expect("the backlog");
    assert_eq!(backlog.get("windows"), Some(&5), "{backlog:?}");
    assert_eq!(
        backlog.get("readings"),
        Some(&0),
        "no subscription, no backlog: {backlog:?}"
    );

    for _ in 0..5 {
        let message = common::within(30, "Pulsar", consumer.next())
            .await
            .expect("the consumer stream ended")
            .unwrap();
        consumer.ack(&message).await.unwrap();
    }
    // Acknowledgements reach the broker asynchronously: wait for the cursor to move.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let backlog = admin.backlog(&names).await.expect("the backlog");
        if backlog.get("windows") == Some(&0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the acknowledged messages are still in the backlog after 30 s: {backlog:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(consumer);
    admin.delete_experiment(&names).await.expect("cleaned up");
}
