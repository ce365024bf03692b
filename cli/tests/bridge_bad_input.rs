//! The bridge on the real services: refused sensor messages go to `dead-letter` with their
//! reason and are counted; good messages around them still reach `readings`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use futures::StreamExt;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wattcast_core::DeviceId;
use wattcast_core::topics::{ExperimentNames, Topic};
use wattcast_core::wire::DeadLetter;
use wattcast_io::pulsar_admin::PulsarAdmin;
use wattcast_pipeline::workload::bridge::{BridgeConfig, BridgeStats, run_bridge};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_messages_are_dead_lettered_and_the_rest_flows_on() {
    let services = common::services();
    let names = ExperimentNames::new("bridge-bad-input").unwrap();
    let admin = PulsarAdmin::new(&services.pulsar).expect("a Pulsar admin client");
    common::reachable("Pulsar admin", admin.delete_experiment(&names).await);
    common::reachable("Pulsar admin", admin.create_experiment(&names).await);
    let mut dead_letters = common::consumer(&names, Topic::DeadLetter).await;
    let mut readings = common::consumer(&names, Topic::Readings).await;

    let stats = Arc::new(BridgeStats::default());
    let cancel = CancellationToken::new();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let bridge = tokio::spawn(run_bridge(
        BridgeConfig {
            names: names.clone(),
            devices: 2,
            mqtt: services.mqtt.clone(),
            pulsar: services.pulsar.clone(),
            readiness: Arc::default(),
        },
        stats.clone(),
        ready_tx,
        cancel.clone(),
    ));
    common::within(60, "the bridge's MQTT subscription", ready_rx)
        .await
        .unwrap();

    let mut options = MqttOptions::new(
        common::unique("bad-sensor"),
        services.mqtt.host.clone(),
        services.mqtt.port,
    );
    options.set_credentials(services.mqtt.username.clone(), services.mqtt.password.clone());
    let (client, mut events) = AsyncClient::new(options, 10);
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::Disconnect) = event {
                break;
            }
        }
    });
    let topic = names.mqtt_readings(DeviceId(1));
    let messages: [&[u8]; 6] = [
        br#"{"sensor_id":1,"sensor_energy_value":600.5,"sensor_timestamp":1765152000,"message_creation_time":1}"#,
        b"this is not json",
        br#"{"sensor_id":1,"sensor_energy_value":NaN,"sensor_timestamp":1765152001}"#,
        br#"{"sensor_id":1,"sensor_energy_value":-3.0,"sensor_timestamp":1765152002}"#,
        br#"{"sensor_id":7,"sensor_energy_value":600.0,"sensor_timestamp":1765152003}"#,
        br#"{"sensor_id":1,"sensor_energy_value":601.5,"sensor_timestamp":1765152004,"message_creation_time":2}"#,
    ];
    for payload in messages {
        client
            .publish(&topic, QoS::AtLeastOnce, false, payload.to_vec())
            .await
            .unwrap();
    }

    let mut reasons = Vec::new();
    for _ in 0..4 {
        let message = common::within(30, "Pulsar dead-letter topic", dead_letters.next())
            .await
            .unwrap()
            .unwrap();
        let letter: DeadLetter = serde_json::from_slice(&message.payload.data).unwrap();
        assert_eq!(letter.stage, "bridge");
        assert_eq!(letter.source, topic);
        reasons.push(letter.reason);
        dead_letters.ack(&message).await.unwrap();
    }
    assert!(reasons[0].starts_with("malformed:"), "{reasons:?}");
    assert!(
        reasons[1].starts_with("malformed:"),
        "NaN is not JSON: {reasons:?}"
    );
    assert!(reasons[2].contains("negative"), "{reasons:?}");
    assert!(reasons[3].contains("unknown device 7"), "{reasons:?}");

    let mut forwarded = Vec::new();
    for _ in 0..2 {
        let message = common::within(30, "Pulsar readings topic", readings.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            message.key().as_deref(),
            Some("1"),
            "readings are keyed by device"
        );
        let reading: wattcast_core::Reading = serde_json::from_slice(&message.payload.data).unwrap();
        forwarded.push(reading.power_w);
        readings.ack(&message).await.unwrap();
    }
    assert_eq!(forwarded, [600.5, 601.5]);
    assert_eq!(stats.dead_letters.get(), 4);
    assert_eq!(stats.readings.get(), 2);

    cancel.cancel();
    common::within(30, "the bridge's shutdown", bridge)
        .await
        .unwrap()
        .unwrap();
}
