//! `wattcast sensor`: replays devices' readings over MQTT at a speed-up — one message per reading
//! (Streaming) or one batch per device per minute (Batching) — then says it is done.

mod schedule;

use super::now_ms;
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, QoS};
pub use schedule::DeviceReplay;
use schedule::Schedule;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wattcast_core::reading::DeviceId;
use wattcast_core::topics::ExperimentNames;
use wattcast_io::services::MqttEndpoint;
use wattcast_io::store::{Store, StoreError};

/// Simple sensors (one message per reading) or smart sensors (one batch per minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorMode {
    /// Architecture A.
    Streaming,
    /// Architecture B.
    Batching,
}

impl From<wattcast_crds::Architecture> for SensorMode {
    /// The sensors an architecture has.
    fn from(architecture: wattcast_crds::Architecture) -> Self {
        match architecture {
            wattcast_crds::Architecture::Streaming => Self::Streaming,
            wattcast_crds::Architecture::Batching => Self::Batching,
        }
    }
}

/// What one sensor process replays.
#[derive(Debug, Clone)]
pub struct SensorConfig {
    /// Streaming or Batching.
    pub mode: SensorMode,
    /// Topic names.
    pub names: ExperimentNames,
    /// Each device's readings, prepared for `mode` (see [`DeviceReplay::new`]).
    pub devices: Vec<DeviceReplay>,
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
    /// A message could not be encoded.
    #[error("encoding a message")]
    Encode(#[source] serde_json::Error),
    /// The task counting the broker's acknowledgements ended before every message was
    /// acknowledged.
    #[error("MQTT: the broker's acknowledgements stopped coming")]
    AcknowledgementsEnded,
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
    let SensorConfig {
        mode,
        names,
        devices,
        speedup,
        ramp_up,
        ..
    } = config;
    let schedule = Schedule::new(mode, &names, devices, speedup, ramp_up);
    let total = schedule.total();
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
    let report = SensorReport {
        readings_sent: schedule.readings_sent(),
        messages: total,
    };

    let mut options = super::mqtt_options(&config.mqtt, &config.client_id);
    options.set_keep_alive(Duration::from_secs(15));
    options.set_inflight(1000);
    // The replay as if it had never stopped: a resumed one starts with its next publication.
    let mut next = schedule.cursor_at(resume_at);
    let mut started = match next.peek() {
        Some(step) if resume_at > 0 => Instant::now().checked_sub(step.due).unwrap_or_else(Instant::now),
        _ => Instant::now(),
    };
    let mut hold = config.hold.clone();
    let mut acked_rx = acked.watch();
    loop {
        // One client per connection: what a broken connection had not delivered is known
        // exactly (the acknowledged prefix), and nothing of it is retransmitted behind our back.
        let (client, events) = AsyncClient::new(options.clone(), 1000);
        let in_order = Arc::new(std::sync::Mutex::new(VecDeque::new()));
        let (lost_tx, mut lost) = tokio::sync::oneshot::channel();
        let connection = tokio::spawn(drive_connection(events, in_order.clone(), acked.clone(), lost_tx));
        let lost_at: Option<Instant> = 'connection: {
            while let Some(step) = next.peek() {
                if let Some(pause) = hold.take_if(|pause| step.due >= pause.at) {
                    tokio::time::sleep_until(started + pause.at).await;
                    let paused = Instant::now();
                    tracing::info!(at = ?pause.at, "replay held");
                    pause.reached.cancel();
                    tokio::select! {
                        () = cancel.cancelled() => return Err(SensorError::Cancelled { sent: next.index(), total }),
                        () = pause.release.cancelled() => {}
                    }
                    started += paused.elapsed();
                    tracing::info!(held = ?paused.elapsed(), "replay resumed");
                }
                tokio::select! {
                    () = cancel.cancelled() => return Err(SensorError::Cancelled { sent: next.index(), total }),
                    at = &mut lost => break 'connection Some(at.unwrap_or_else(|_| Instant::now())),
                    () = tokio::time::sleep_until(started + step.due) => {}
                }
                let payload = schedule.payload(step, now_ms()).map_err(SensorError::Encode)?;
                lock(&in_order).push_back(next.index());
                if client
                    .publish(schedule.topic(step), QoS::AtLeastOnce, false, payload)
                    .await
                    .is_err()
                {
                    break 'connection Some(Instant::now()); // the connection task ended
                }
                next.advance();
            }
            // Everything is sent: done once the broker has acknowledged it all.
            tokio::select! {
                () = cancel.cancelled() => return Err(SensorError::Cancelled { sent: total, total }),
                at = &mut lost => Some(at.unwrap_or_else(|_| Instant::now())),
                result = acked_rx.wait_for(|acked| *acked >= total) => {
                    result.map_err(|_| SensorError::AcknowledgementsEnded)?;
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
        let unacknowledged = acked.prefix();
        let rewound = lost_at.checked_sub(REWIND_ON_RECONNECT).map_or(0, |since| {
            schedule.count_before(since.saturating_duration_since(started))
        });
        let resume = unacknowledged.min(rewound).min(next.index()).max(resume_at);
        tracing::warn!(
            unacknowledged_from = unacknowledged,
            resending_from = resume,
            "the broker connection broke; connecting again"
        );
        next = schedule.cursor_at(resume);
        tokio::select! {
            () = cancel.cancelled() => return Err(SensorError::Cancelled { sent: next.index(), total }),
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
    Ok(report)
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
