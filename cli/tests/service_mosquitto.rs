//! Mosquitto is real: publish/subscribe with the generated user; a wrong password is refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS};
use std::time::Duration;

fn options(client_id: &str, password: &str) -> MqttOptions {
    let services = common::services();
    let mut options = MqttOptions::new(client_id, services.mqtt.host.clone(), services.mqtt.port);
    options.set_credentials(services.mqtt.username.clone(), password);
    options.set_keep_alive(Duration::from_secs(5));
    options
}

#[tokio::test]
async fn publish_and_subscribe_with_authentication() {
    let services = common::services();
    let topic = common::unique("wattcast/smoke");
    let (client, mut events) =
        AsyncClient::new(options(&common::unique("smoke"), &services.mqtt.password), 10);
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let payload = br#"{"sensor_id":1,"sensor_energy_value":695.3,"sensor_timestamp":1765152003}"#;
    client
        .publish(&topic, QoS::AtLeastOnce, false, payload.to_vec())
        .await
        .unwrap();

    let received = common::within(20, "Mosquitto", async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(publish))) => break publish,
                Ok(_) => {}
                Err(error) => {
                    panic!("cannot use Mosquitto: {error}; start the test services with `make test-env`")
                }
            }
        }
    })
    .await;
    assert_eq!(received.topic, topic);
    assert_eq!(received.payload.as_ref(), payload);
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let (_client, mut events) =
        AsyncClient::new(options(&common::unique("intruder"), "not-the-password"), 10);
    let outcome = common::within(20, "Mosquitto", async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => break Ok(ack.code),
                Ok(_) => {}
                Err(error) => break Err(error),
            }
        }
    })
    .await;
    match outcome {
        Err(ConnectionError::ConnectionRefused(
            ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword,
        )) => {}
        Err(ConnectionError::Io(error)) => {
            panic!("cannot use Mosquitto: {error}; start the test services with `make test-env`")
        }
        other => panic!("expected the broker to refuse a wrong password, got {other:?}"),
    }
}
