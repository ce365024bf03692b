//! `wattcast sensor`: replays devices' readings over MQTT at a speed-up — one message per reading
//! (Streaming) or one batch per device per minute (Batching) — then says it is done.

use super::now_ms;
use crate::reading::{DeviceId, Reading};
use crate::services::MqttEndpoint;
use crate::store::{Store, StoreError};
use crate::topics::ExperimentNames;
use crate::window::Window;
use crate::wire::{EndOfStream, Sequence, SequencedReading, WindowMessage};
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, QoS};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
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
    /// Where the sensor records how far its replay was acknowledged, and resumes from.
    pub progress: Option<ReplayProgress>,
}

/// A sensor's replay progress in the experiment's store: the number of its publications (in
/// plan order, which is the same every time for the same data) that the broker acknowledged,
/// recorded every [`PROGRESS_EVERY`]. A sensor started again (a pod replaced) skips those and
/// goes on from there, so it neither skips readings nor sends them all again; what it re-sends
/// (at most what was acknowledged since the last record) carries the same sequence numbers, and
/// the windower drops those copies.
#[derive(Debug, Clone)]
pub struct ReplayProgress {
    /// The experiment's store.
    pub store: Store,
    /// This sensor's name among the experiment's sensors (its share of devices, `1-50`).
    pub sensor: String,
}

/// How often a sensor records its replay progress.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

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
    /// Reading or recording the replay progress failed.
    #[error("replay progress: {0}")]
    Progress(#[source] StoreError),
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
    /// A reading and its row among the device's (its sequence number).
    Reading(Reading, Sequence),
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
                        payload: Payload::Reading(*reading, Sequence(row as u64)),
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

/// How far back (in replay schedule, wall time) a sensor sends again after its broker connection
/// broke, beyond what the broker had not acknowledged: a broker that crashed loses the
/// messages it acknowledged but had not yet delivered to the bridge. The copies carry their
/// sequence numbers, and the windower drops them.
pub const REWIND_ON_RECONNECT: Duration = Duration::from_secs(10);

/// Replays the data (each device's end-of-stream marker right after its last publication), waits
/// until the broker acknowledged every message, and disconnects. A broken connection is made
/// again: the replay goes on from the first publication the broker had not acknowledged, less
/// [`REWIND_ON_RECONNECT`].
pub async fn run_sensor(
    config: SensorConfig,
    cancel: CancellationToken,
) -> Result<SensorReport, SensorError> {
    let plan = plan(&config);
    let total = plan.len() as u64;
    let resume_at = match &config.progress {
        Some(progress) => progress
            .store
            .sensor_progress(&progress.sensor)
            .await
            .map_err(SensorError::Progress)?
            .min(total),
        None => 0,
    };
    if resume_at > 0 {
        tracing::info!(
            resume_at,
            total,
            "resuming the replay after what the broker acknowledged"
        );
    }
    let acked = Arc::new(AckedPrefix::new(resume_at));
    let recorder = config
        .progress
        .clone()
        .map(|progress| tokio::spawn(record_progress(progress, acked.watch())));
    let mut report = SensorReport::default();
    for publication in &plan {
        let (device, readings) = publication.readings();
        *report.readings_sent.entry(device).or_default() += readings;
    }

    let mut options = super::mqtt_options(&config.mqtt, &config.client_id);
    options.set_keep_alive(Duration::from_secs(15));
    options.set_inflight(1000);
    // The replay as if it had never stopped: a resumed one starts with its next publication.
    let mut started = match plan.get(resume_at as usize) {
        Some(next) if resume_at > 0 => Instant::now().checked_sub(next.due).unwrap_or_else(Instant::now),
        _ => Instant::now(),
    };
    let mut hold = config.hold.clone();
    let mut next = resume_at as usize;
    let mut acked_rx = acked.watch();
    loop {
        // One client per connection: what a broken connection had not delivered is known
        // exactly (the acknowledged prefix), and nothing of it is retransmitted behind our back.
        let (client, events) = AsyncClient::new(options.clone(), 1000);
        let in_order = Arc::new(std::sync::Mutex::new(VecDeque::new()));
        let (lost_tx, mut lost) = tokio::sync::oneshot::channel();
        let connection = tokio::spawn(drive_connection(events, in_order.clone(), acked.clone(), lost_tx));
        let lost_at: Option<Instant> = 'connection: {
            while let Some(publication) = plan.get(next) {
                if let Some(pause) = hold.take_if(|pause| publication.due >= pause.at) {
                    tokio::time::sleep_until(started + pause.at).await;
                    let paused = Instant::now();
                    tracing::info!(at = ?pause.at, "replay held");
                    pause.reached.cancel();
                    tokio::select! {
                        () = cancel.cancelled() => return Err(SensorError::Cancelled { sent: next as u64, total }),
                        () = pause.release.cancelled() => {}
                    }
                    started += paused.elapsed();
                    tracing::info!(held = ?paused.elapsed(), "replay resumed");
                }
                tokio::select! {
                    () = cancel.cancelled() => return Err(SensorError::Cancelled { sent: next as u64, total }),
                    at = &mut lost => break 'connection Some(at.unwrap_or_else(|_| Instant::now())),
                    () = tokio::time::sleep_until(started + publication.due) => {}
                }
                let payload = publication.payload(&report)?;
                lock(&in_order).push_back(next as u64);
                if client
                    .publish(publication.topic.clone(), QoS::AtLeastOnce, false, payload)
                    .await
                    .is_err()
                {
                    break 'connection Some(Instant::now()); // the connection task ended
                }
                next += 1;
            }
            // Everything is sent: done once the broker has acknowledged it all.
            tokio::select! {
                () = cancel.cancelled() => return Err(SensorError::Cancelled { sent: total, total }),
                at = &mut lost => Some(at.unwrap_or_else(|_| Instant::now())),
                result = acked_rx.wait_for(|acked| *acked >= total) => {
                    result.map_err(|_| SensorError::Mqtt("acknowledgements ended".to_owned()))?;
                    None
                }
            }
        };
        let Some(lost_at) = lost_at else {
            let _ = client.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
            break;
        };
        connection.abort();
        let unacknowledged = acked.prefix() as usize;
        let rewound = lost_at.checked_sub(REWIND_ON_RECONNECT).map_or(0, |since| {
            plan.partition_point(|publication| started + publication.due < since)
        });
        let resume = unacknowledged.min(rewound).min(next).max(resume_at as usize);
        tracing::warn!(
            unacknowledged_from = unacknowledged,
            resending_from = resume,
            "the broker connection broke; connecting again"
        );
        next = resume;
        tokio::select! {
            () = cancel.cancelled() => return Err(SensorError::Cancelled { sent: next as u64, total }),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    if let Some(recorder) = recorder {
        recorder.abort();
    }
    if let Some(progress) = &config.progress {
        progress
            .store
            .record_sensor_progress(&progress.sensor, total, now_ms())
            .await
            .map_err(SensorError::Progress)?;
    }
    report.messages = total;
    Ok(report)
}

impl Publication {
    /// The device it is about and how many readings it carries.
    fn readings(&self) -> (DeviceId, u64) {
        match &self.payload {
            Payload::Reading(reading, _) => (reading.device, 1),
            Payload::Batch(window) => (window.device, window.readings.len() as u64),
            Payload::EndOfStream(device) => (*device, 0),
        }
    }

    /// Its JSON, stamped with the publish time; an end-of-stream marker carries the device's
    /// readings of `report`.
    fn payload(&self, report: &SensorReport) -> Result<Vec<u8>, SensorError> {
        let published = now_ms();
        let json = match &self.payload {
            Payload::Reading(reading, seq) => {
                let mut reading = *reading;
                reading.published_ms = Some(published);
                serde_json::to_vec(&SequencedReading {
                    reading: &reading,
                    seq: *seq,
                })
            }
            Payload::Batch(window) => {
                let mut window = window.clone();
                for reading in &mut window.readings {
                    reading.published_ms = Some(published);
                }
                serde_json::to_vec(&WindowMessage {
                    window,
                    emitted_ms: published,
                })
            }
            Payload::EndOfStream(device) => serde_json::to_vec(&EndOfStream {
                sensor_id: *device,
                end_of_stream: true,
                readings_sent: report.readings_sent.get(device).copied().unwrap_or(0),
                message_creation_time: published,
            }),
        };
        json.map_err(|error| SensorError::Mqtt(error.to_string()))
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Drives one connection's event loop: maps each publication written (in the order they were
/// queued, `in_order`) to its packet id and marks it acknowledged on its PubAck. Retries the
/// first connect; once connected, a broken connection is reported on `lost` and ends it.
async fn drive_connection(
    mut events: EventLoop,
    in_order: Arc<std::sync::Mutex<VecDeque<u64>>>,
    acked: Arc<AckedPrefix>,
    lost: tokio::sync::oneshot::Sender<Instant>,
) {
    let mut connected = false;
    let mut in_flight: HashMap<u16, u64> = HashMap::new();
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => connected = true,
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return, // the replay is done
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if let Some(index) = lock(&in_order).pop_front() {
                    in_flight.insert(pkid, index);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(index) = in_flight.remove(&ack.pkid) {
                    acked.acknowledge(index);
                }
            }
            Ok(_) => {}
            Err(error) if connected => {
                tracing::warn!(%error, "sensor MQTT connection broke");
                let _ = lost.send(Instant::now());
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "connecting to the MQTT broker failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The publications the broker acknowledged, as the length of the prefix of the plan that is
/// acknowledged throughout (what a restart may skip), published on a watch channel.
struct AckedPrefix {
    state: std::sync::Mutex<(u64, BTreeSet<u64>)>,
    prefix: tokio::sync::watch::Sender<u64>,
}

impl AckedPrefix {
    fn new(prefix: u64) -> Self {
        Self {
            state: std::sync::Mutex::new((prefix, BTreeSet::new())),
            prefix: tokio::sync::watch::channel(prefix).0,
        }
    }

    /// Marks publication `index` acknowledged.
    fn acknowledge(&self, index: u64) {
        let mut state = lock(&self.state);
        let (prefix, above) = &mut *state;
        if index < *prefix {
            return; // a copy of one already acknowledged
        }
        above.insert(index);
        while above.remove(prefix) {
            *prefix += 1;
        }
        let prefix = *prefix;
        self.prefix
            .send_if_modified(|current| std::mem::replace(current, prefix) != prefix);
    }

    fn prefix(&self) -> u64 {
        *self.prefix.borrow()
    }

    fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.prefix.subscribe()
    }
}

/// Records the acknowledged count every [`PROGRESS_EVERY`] while it moves; a failed write is
/// logged and tried again at the next tick (the replay does not wait for the store).
async fn record_progress(progress: ReplayProgress, acked: tokio::sync::watch::Receiver<u64>) {
    let mut recorded = *acked.borrow();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tick.tick().await;
        let now = *acked.borrow();
        if now == recorded {
            continue;
        }
        match progress
            .store
            .record_sensor_progress(&progress.sensor, now, now_ms())
            .await
        {
            Ok(()) => recorded = now,
            Err(error) => tracing::warn!(%error, "recording the replay progress failed; trying again"),
        }
    }
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
            progress: None,
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
                Payload::Reading(r, _) => Some((p.due, r.event_time)),
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
                Payload::Reading(_, _) => unreachable!(),
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
