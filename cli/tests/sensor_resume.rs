//! A sensor stopped mid-replay and started again resumes after what the broker acknowledged
//! (its progress recorded in the experiment's store): every reading is sent, none twice once
//! the progress was recorded, and each carries its sequence number.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wattcast_core::{DeviceId, Reading};
use wattcast_pipeline::workload::sensor::{
    DeviceReplay, ReplayHold, ReplayProgress, SensorConfig, SensorError, SensorMode, run_sensor,
};

const ROWS: i64 = 400;

/// (device, seq) → how often the listener received it.
type Received = Arc<Mutex<BTreeMap<(u64, u64), u32>>>;

async fn listen(names: &wattcast_core::topics::ExperimentNames) -> (AsyncClient, Received) {
    let services = common::services();
    let mut options = MqttOptions::new(
        common::unique("resume-listener"),
        services.mqtt.host.clone(),
        services.mqtt.port,
    );
    options.set_credentials(services.mqtt.username.clone(), services.mqtt.password.clone());
    let (client, mut events) = AsyncClient::new(options, 1000);
    client
        .subscribe(names.mqtt_subscription(), QoS::AtLeastOnce)
        .await
        .unwrap();
    let received: Received = Arc::default();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let sink = received.clone();
    tokio::spawn(async move {
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let value: serde_json::Value = serde_json::from_slice(&publish.payload).unwrap();
                    if let Some(seq) = value.get("seq").and_then(serde_json::Value::as_u64) {
                        let device = value["sensor_id"].as_u64().unwrap();
                        *sink.lock().unwrap().entry((device, seq)).or_default() += 1;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    panic!("cannot use Mosquitto: {error}; start the test services with `make test-env`")
                }
            }
        }
    });
    common::within(20, "Mosquitto", subscribed).await.unwrap();
    (client, received)
}

fn config(
    names: &wattcast_core::topics::ExperimentNames,
    progress: ReplayProgress,
    hold: Option<ReplayHold>,
) -> SensorConfig {
    let devices = (1..=2)
        .map(|device| {
            let readings = (0..ROWS)
                .map(|t| Reading::new(DeviceId(device), 1_765_152_000 + t, t as f64))
                .collect();
            DeviceReplay::new(SensorMode::Streaming, DeviceId(device), readings)
        })
        .collect();
    SensorConfig {
        mode: SensorMode::Streaming,
        names: names.clone(),
        devices,
        speedup: 100.0,
        ramp_up: None,
        mqtt: common::services().mqtt,
        client_id: common::unique("resume-sensor"),
        hold,
        progress: Some(progress),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sensor_resumes_after_what_the_broker_acknowledged() {
    let name = common::unique("resume");
    let (names, store) = common::fresh_experiment(&name).await;
    let _cleanup = common::Cleanup::experiment(&names);
    let (_listener, received) = listen(&names).await;
    let progress = ReplayProgress {
        store: store.clone(),
        sensor: "1-2".to_owned(),
    };

    // The first sensor holds halfway (two seconds of its four), its progress is recorded, and
    // it is stopped there.
    let hold = ReplayHold {
        at: Duration::from_secs(2),
        reached: CancellationToken::new(),
        release: CancellationToken::new(),
    };
    let cancel = CancellationToken::new();
    let first = tokio::spawn(run_sensor(
        config(&names, progress.clone(), Some(hold.clone())),
        cancel.clone(),
    ));
    common::within(60, "the sensor's hold", hold.reached.cancelled()).await;
    let recorded = common::within(30, "the recorded progress", async {
        loop {
            let recorded = store.sensor_progress("1-2").await.unwrap();
            let heard = received.lock().unwrap().len() as u64;
            if recorded > 0 && recorded == heard {
                break recorded;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    cancel.cancel();
    assert!(matches!(first.await.unwrap(), Err(SensorError::Cancelled { .. })));
    assert!(
        recorded < 2 * ROWS as u64,
        "stopped mid-replay ({recorded} acknowledged)"
    );

    // The second goes on from there.
    let report = common::within(
        60,
        "the resumed sensor",
        run_sensor(config(&names, progress, None), CancellationToken::new()),
    )
    .await
    .expect("the resumed sensor finishes");
    for device in 1..=2 {
        assert_eq!(
            report.readings_sent[&DeviceId(device)],
            ROWS as u64,
            "device {device} counts every reading"
        );
    }
    common::within(20, "the listener", async {
        while received.lock().unwrap().len() < 2 * ROWS as usize {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let received = received.lock().unwrap().clone();
    for device in 1..=2u64 {
        for seq in 0..ROWS as u64 {
            assert_eq!(
                received.get(&(device, seq)),
                Some(&1),
                "device {device} reading {seq} sent exactly once"
            );
        }
    }
    assert_eq!(
        store.sensor_progress("1-2").await.unwrap(),
        report.messages,
        "the finished replay is recorded whole"
    );
}
