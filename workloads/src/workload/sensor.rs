//! `wattcast sensor`: replays devices' readings over MQTT at a speed-up — one message per reading
//! (Streaming) or one batch per device per minute (Batching) — then says it is done.

use super::now_ms;
use crate::reading::{DeviceId, Reading};
use crate::services::MqttEndpoint;
use crate::topics::ExperimentNames;
use crate::window::Window;
use crate::wire::{EndOfStream, WindowMessage};
use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Simple sensors (one message per reading) or smart sensors (one batch per minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorMode {
    /// Architecture A.
    Streaming,
    /// Architecture B.
    Batching,
}

/// What one sensor process replays.
#[derive(Debug, Clone)]
pub struct SensorConfig {
    /// Streaming or Batching.
    pub mode: SensorMode,
    /// Topic names.
    pub names: ExperimentNames,
    /// Each device's readings in arrival (file) order.
    pub devices: Vec<(DeviceId, Vec<Reading>)>,
    /// 1 = real time (one row per device per second).
    pub speedup: f64,
    /// Device i (0-based, in `devices` order) starts `i × ramp_up` (replay time) after the first.
    pub ramp_up: Option<Duration>,
    /// The broker.
    pub mqtt: MqttEndpoint,
    /// MQTT client id (unique per sensor process).
    pub client_id: String,
    /// Pause the replay once, at this point, until something has happened (see [`ReplayHold`]).
    pub hold: Option<ReplayHold>,
}

/// A pause in a replay: before the first publication due `at` (replay time) or later, the sensor
/// waits until `release` is cancelled, and the rest of the replay moves by the pause. What would
/// otherwise be a race against time becomes an order: a run can wait for a mechanism (a retrained
/// model, a fault injected) at a known point of its data.
#[derive(Debug, Clone)]
pub struct ReplayHold {
    /// Replay time (since the sensor started, at its speed-up) of the pause.
    pub at: Duration,
    /// Cancelled by the sensor when it reaches the pause.
    pub reached: CancellationToken,
    /// Cancelled when the replay may go on.
    pub release: CancellationToken,
}

/// What a sensor sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SensorReport {
    /// Readings sent, per device.
    pub readings_sent: BTreeMap<DeviceId, u64>,
    /// MQTT messages the broker acknowledged.
    pub messages: u64,
}

/// Why a sensor stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    /// The broker connection failed for good.
    #[error("MQTT: {0}")]
    Mqtt(String),
    /// Stopped before all data was sent.
    #[error("cancelled after {sent} of {total} messages")]
    Cancelled {
        /// Messages sent.
        sent: u64,
        /// Messages planned.
        total: u64,
    },
}

/// One planned publication: when (replay offset) and what.
struct Publication {
    due: Duration,
    topic: String,
    payload: Payload,
}

enum Payload {
    Reading(Reading),
    Batch(Window),
    /// The device's data is all sent.
    EndOfStream(DeviceId),
}

/// Plans every publication in time order. Streaming: row k of a device is due at
/// `start(device) + k / speedup` seconds, where a device's start is its ramp-up delay plus its
/// phase within the second (device i of n at i/n s). Batching: a device's minute is due when the minute
/// has been replayed, holding every reading of that minute (sorted), whatever its arrival order.
/// Each device's end-of-stream marker follows its last publication at once, so its last window
/// fires then rather than when the sensor's slowest device is done.
fn plan(config: &SensorConfig) -> Vec<Publication> {
    let mut plan = Vec::new();
    let count = config.devices.len().max(1) as f64;
    for (index, (device, readings)) in config.devices.iter().enumerate() {
        let first_of_device = plan.len();
        // Devices are not synchronised: each sends at its own phase within the second.
        let phase = Duration::from_secs_f64(index as f64 / count / config.speedup);
        let start = config
            .ramp_up
            .unwrap_or_default()
            .mul_f64(index as f64)
            .div_f64(config.speedup)
            + phase;
        match config.mode {
            SensorMode::Streaming => {
                for (row, reading) in readings.iter().enumerate() {
                    plan.push(Publication {
                        due: start + Duration::from_secs_f64(row as f64 / config.speedup),
                        topic: config.names.mqtt_readings(*device),
                        payload: Payload::Reading(*reading),
                    });
                }
            }
            SensorMode::Batching => {
                let mut minutes: BTreeMap<i64, Vec<Reading>> = BTreeMap::new();
                for reading in readings {
                    minutes
                        .entry(reading.event_time.div_euclid(60) * 60)
                        .or_default()
                        .push(*reading);
                }
                let first = minutes.keys().next().copied().unwrap_or(0);
                for (minute, mut batch) in minutes {
                    batch.sort_by_key(|reading| reading.event_time);
                    batch.dedup_by_key(|reading| reading.event_time);
                    let elapsed = (minute - first + 60) as f64;
                    plan.push(Publication {
                        due: start + Duration::from_secs_f64(elapsed / config.speedup),
                        topic: config.names.mqtt_batches(*device),
                        payload: Payload::Batch(Window {
                            device: *device,
                            start: minute,
                            end: minute + 60,
                            readings: batch,
                            expected: 60,
                            late: 0,
                        }),
                    });
                }
            }
        }
        let last_due = plan[first_of_device..]
            .iter()
            .map(|publication: &Publication| publication.due)
            .max()
            .unwrap_or(start);
        let topic = match config.mode {
            SensorMode::Streaming => config.names.mqtt_readings(*device),
            SensorMode::Batching => config.names.mqtt_batches(*device),
        };
        plan.push(Publication {
            due: last_due,
            topic,
            payload: Payload::EndOfStream(*device),
        });
    }
    // Stable: a marker stays after its device's publications due at the same instant.
    plan.sort_by_key(|publication| publication.due);
    plan
}

/// Replays the data (each device's end-of-stream marker right after its last publication), waits
/// until the broker acknowledged every message, and disconnects.
pub async fn run_sensor(
    config: SensorConfig,
    cancel: CancellationToken,
) -> Result<SensorReport, SensorError> {
    let mut options = super::mqtt_options(&config.mqtt, &config.client_id);
    options.set_keep_alive(Duration::from_secs(15));
    options.set_inflight(1000);
    let (client, mut events) = AsyncClient::new(options, 1000);

    let plan = plan(&config);
    let total = plan.len() as u64;
    let (acked_tx, mut acked_rx) = tokio::sync::watch::channel(0u64);
    let connection = tokio::spawn(async move {
        let mut acked = 0u64;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acked += 1;
                    let _ = acked_tx.send(acked);
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return Ok(acked),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "sensor MQTT connection failed; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if acked_tx.is_closed() {
                        return Err(error.to_string());
                    }
                }
            }
        }
    });

    let mut report = SensorReport::default();
    let mut started = Instant::now();
    let mut hold = config.hold.clone();
    for (sent, publication) in plan.into_iter().enumerate() {
        if let Some(pause) = hold.take_if(|pause| publication.due >= pause.at) {
            tokio::time::sleep_until(started + pause.at).await;
            let paused = Instant::now();
            tracing::info!(at = ?pause.at, "replay held");
            pause.reached.cancel();
            tokio::select! {
                () = cancel.cancelled() => return Err(SensorError::Cancelled { sent: sent as u64, total }),
                () = pause.release.cancelled() => {}
            }
            started += paused.elapsed();
            tracing::info!(held = ?paused.elapsed(), "replay resumed");
        }
        let due = started + publication.due;
        tokio::select! {
            () = cancel.cancelled() => return Err(SensorError::Cancelled { sent: sent as u64, total }),
            () = tokio::time::sleep_until(due) => {}
        }
        let (payload, readings) = match publication.payload {
            Payload::Reading(mut reading) => {
                reading.published_ms = Some(now_ms());
                (serde_json::to_vec(&reading), (reading.device, 1))
            }
            Payload::Batch(mut window) => {
                let published = now_ms();
                for reading in &mut window.readings {
                    reading.published_ms = Some(published);
                }
                let count = window.readings.len() as u64;
                let device = window.device;
                (
                    serde_json::to_vec(&WindowMessage {
                        window,
                        emitted_ms: published,
                    }),
                    (device, count),
                )
            }
            Payload::EndOfStream(device) => {
                let marker = EndOfStream {
                    sensor_id: device,
                    end_of_stream: true,
                    readings_sent: report.readings_sent.get(&device).copied().unwrap_or(0),
                    message_creation_time: now_ms(),
                };
                (serde_json::to_vec(&marker), (device, 0))
            }
        };
        let payload = payload.map_err(|error| SensorError::Mqtt(error.to_string()))?;
        client
            .publish(publication.topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|error| SensorError::Mqtt(error.to_string()))?;
        *report.readings_sent.entry(readings.0).or_default() += readings.1;
    }
    // Wait until the broker has acknowledged everything before saying we are done.
    tokio::select! {
        () = cancel.cancelled() => return Err(SensorError::Cancelled { sent: total, total }),
        result = acked_rx.wait_for(|acked| *acked >= total) => {
            result.map_err(|_| SensorError::Mqtt("connection task ended".to_owned()))?;
        }
    }
    report.messages = total;
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: SensorMode, ramp_up: Option<Duration>) -> SensorConfig {
        let readings = |device: u32, times: &[i64]| -> (DeviceId, Vec<Reading>) {
            (
                DeviceId(device),
                times
                    .iter()
                    .map(|t| Reading::new(DeviceId(device), *t, 1.0))
                    .collect(),
            )
        };
        SensorConfig {
            mode,
            names: ExperimentNames::new("plan").unwrap(),
            devices: vec![readings(1, &[0, 2, 1, 61, 60]), readings(2, &[0, 1])],
            speedup: 2.0,
            ramp_up,
            hold: None,
            mqtt: MqttEndpoint {
                host: "unused".into(),
                port: 1,
                username: String::new(),
                password: String::new(),
                transport: crate::services::Transport::Plain,
            },
            client_id: "plan".into(),
        }
    }

    #[test]
    fn streaming_sends_each_row_in_file_order_at_the_speedup() {
        let plan = plan(&config(SensorMode::Streaming, Some(Duration::from_secs(10))));
        let device_1: Vec<(Duration, i64)> = plan
            .iter()
            .filter(|p| p.topic.ends_with("/1"))
            .filter_map(|p| match &p.payload {
                Payload::Reading(r) => Some((p.due, r.event_time)),
                Payload::Batch(_) => unreachable!(),
                Payload::EndOfStream(_) => None,
            })
            .collect();
        let times: Vec<i64> = device_1.iter().map(|(_, t)| *t).collect();
        assert_eq!(times, [0, 2, 1, 61, 60]);
        assert_eq!(device_1[4].0, Duration::from_secs(2));
        // Device 2 starts ramp_up / speedup = 5 s later, at its own phase (half a second / speedup).
        let first_of_2 = plan.iter().find(|p| p.topic.ends_with("/2")).unwrap();
        assert_eq!(
            first_of_2.due,
            Duration::from_secs(5) + Duration::from_millis(250)
        );
    }

    #[test]
    fn batching_sends_each_minute_complete_and_sorted_when_it_ends() {
        let plan = plan(&config(SensorMode::Batching, None));
        let batches: Vec<(Duration, u32, i64, Vec<i64>)> = plan
            .iter()
            .filter_map(|p| match &p.payload {
                Payload::Batch(w) => Some((
                    p.due,
                    w.device.0,
                    w.start,
                    w.readings.iter().map(|r| r.event_time).collect(),
                )),
                Payload::Reading(_) => unreachable!(),
                Payload::EndOfStream(_) => None,
            })
            .collect();
        assert_eq!(
            batches,
            vec![
                (Duration::from_secs(30), 1, 0, vec![0, 1, 2]),
                (Duration::from_millis(30_250), 2, 0, vec![0, 1]),
                (Duration::from_secs(60), 1, 60, vec![60, 61]),
            ]
        );
    }

    #[test]
    fn each_device_ends_right_after_its_own_last_publication() {
        // Streaming: device 1's data ends at 2 s, before device 2 starts (ramp-up). Batching:
        // device 1's second minute is due at 60 s, after device 2's only minute.
        for (mode, order) in [(SensorMode::Streaming, [1, 2]), (SensorMode::Batching, [2, 1])] {
            let plan = plan(&config(mode, Some(Duration::from_secs(10))));
            for device in [1, 2] {
                let of_device: Vec<&Publication> = plan
                    .iter()
                    .filter(|p| p.topic.ends_with(&format!("/{device}")))
                    .collect();
                let last = of_device.last().expect("the device publishes");
                assert!(matches!(last.payload, Payload::EndOfStream(d) if d.0 == device));
                let data_end = of_device[..of_device.len() - 1].iter().map(|p| p.due).max();
                assert_eq!(Some(last.due), data_end, "device {device} ends with its data");
                let markers = of_device
                    .iter()
                    .filter(|p| matches!(p.payload, Payload::EndOfStream(_)))
                    .count();
                assert_eq!(markers, 1);
            }
            let markers: Vec<u32> = plan
                .iter()
                .filter_map(|p| match p.payload {
                    Payload::EndOfStream(d) => Some(d.0),
                    _ => None,
                })
                .collect();
            assert_eq!(markers, order);
        }
    }
}
