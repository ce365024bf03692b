//! Pulsar is real: produce and consume a message with the `pulsar` crate.

mod common;

use futures::StreamExt;
use pulsar::{Consumer, Pulsar, SubType, TokioExecutor};

#[tokio::test]
async fn produce_and_consume() {
    let services = common::services();
    let client: Pulsar<TokioExecutor> = common::reachable(
        "Pulsar",
        common::within(
            60,
            "Pulsar",
            Pulsar::builder(services.pulsar.url.clone(), TokioExecutor).build(),
        )
        .await,
    );
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
