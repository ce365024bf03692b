//! `wattcast windower`: `readings` → the windowing engine → `windows`; late readings → `late`.
//!
//! At-least-once: a reading's Pulsar message is acknowledged only after the window holding it
//! (or, for a late reading, its `late` message) was confirmed by Pulsar; receipts are awaited
//! alongside the reading, not one after another. If the windower dies,
//! unacknowledged readings are redelivered and windowed again; the coordinator's primary keys
//! make a window stored twice change nothing. A Key_Shared subscription lets replicas split
//! the devices, so each device's readings stay in order on one replica.

use super::error::{BrokerError, pulsar_error};
use super::millis;
use super::now_ms;
use super::runner::{self, Context, Flow, Placement, Running, Workload};
use super::session::{BrokerSession, Subscription};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use pulsar::consumer::Message;
use pulsar::producer::SendFuture;
use pulsar::proto::MessageIdData;
use pulsar::{Consumer, Producer, TokioExecutor};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wattcast_core::reading::DeviceId;
use wattcast_core::topics::{ExperimentNames, Topic};
use wattcast_core::windowing::{WindowConfig, WindowEngine, WindowEvent};
use wattcast_core::wire::{LateMessage, SensorPayload, Sequence, WindowMessage, parse_sensor_payload};
use wattcast_io::observe::Readiness;
use wattcast_io::services::PulsarEndpoint;

/// What the windower needs.
#[derive(Debug, Clone)]
pub struct WindowerConfig {
    /// Topic names.
    pub names: ExperimentNames,
    /// Devices 1..=devices are known.
    pub devices: u32,
    /// Window size, watermark and idle timeout.
    pub window: WindowConfig,
    /// Pulsar (its broker is what this workload uses).
    pub pulsar: PulsarEndpoint,
    /// Set once consuming.
    pub readiness: Arc<Readiness>,
}

impl WindowerConfig {
    /// The windower an experiment's spec asks for, in local mode and pods alike; refused when
    /// the spec's windowing is (see [`wattcast_core::experiment::window_config`]).
    pub fn from_spec(
        names: ExperimentNames,
        spec: &wattcast_crds::PipelineExperimentSpec,
        pulsar: PulsarEndpoint,
        readiness: Arc<Readiness>,
    ) -> Result<Self, wattcast_core::experiment::SpecError> {
        Ok(Self {
            names,
            devices: spec.devices.count,
            window: wattcast_core::experiment::window_config(spec)?,
            pulsar,
            readiness,
        })
    }
}

/// Running counts.
#[derive(Debug, Default)]
pub struct WindowerStats {
    /// Readings taken from `readings`.
    pub readings: Counter,
    /// Windows published.
    pub windows: Counter,
    /// Late readings published.
    pub late: Counter,
    /// Messages sent to `dead-letter`.
    pub dead_letters: Counter,
    /// Copies of readings already windowed (same sequence number), dropped.
    pub copies: Counter,
    /// Quiet devices whose open windows were handed back to Pulsar (see [`HAND_OVER_AFTER`]).
    pub hand_overs: Counter,
}

/// How long a device with open windows may send nothing before the windower hands them back
/// (negatively acknowledges their readings, forgets the device). When replicas are added,
/// Key_Shared moves devices between consumers but delivers a moved device's new readings only
/// once the old consumer has acknowledged what it holds — which it does only when the window
/// fires, which needs those new readings. Handing back breaks that wait: Pulsar redelivers
/// the readings, in order, to the device's consumer, and the windows are rebuilt as they were.
pub const HAND_OVER_AFTER: Duration = Duration::from_secs(10);

impl WindowerStats {
    /// Registers the counters as `wattcast_windower_<name>_total`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wattcast_windower_readings",
            "Readings consumed",
            self.readings.clone(),
        );
        registry.register(
            "wattcast_windower_windows",
            "Windows published",
            self.windows.clone(),
        );
        registry.register(
            "wattcast_windower_late",
            "Late readings published",
            self.late.clone(),
        );
        registry.register(
            "wattcast_windower_copies",
            "Copies of readings already windowed (re-sent or redelivered), dropped",
            self.copies.clone(),
        );
        registry.register(
            "wattcast_windower_hand_overs",
            "Quiet devices whose open windows were handed back to Pulsar for redelivery",
            self.hand_overs.clone(),
        );
        registry.register(
            "wattcast_windower_dead_letters",
            "Messages sent to dead-letter",
            self.dead_letters.clone(),
        );
    }
}

/// The windower before it runs.
struct Windower {
    config: WindowerConfig,
    stats: Arc<WindowerStats>,
}

/// The running windower: its consumer and producers, the engine, and what waits on Pulsar.
struct RunningWindower {
    config: WindowerConfig,
    stats: Arc<WindowerStats>,
    readings_topic: String,
    consumer: Consumer<Vec<u8>, TokioExecutor>,
    windows: Producer<TokioExecutor>,
    late: Producer<TokioExecutor>,
    engine: WindowEngine,
    /// Message ids of the readings in each open window, acknowledged once it is published.
    pending: HashMap<(DeviceId, i64), OpenWindow>,
    /// Published windows and late messages whose receipts are still on their way, with the
    /// ids to acknowledge when they land. Waiting for receipts here, not inline, lets the
    /// windower go on reading while Pulsar persists what it published.
    confirmations: FuturesUnordered<Confirmation>,
    /// Ids whose windows are confirmed, acknowledged a few at a time (see `AckQueue`).
    acks: AckQueue,
    /// The engine's output of the step under way.
    events: Vec<WindowEvent>,
    fired: FiredWindows,
}

/// What the windower waits for.
#[allow(
    clippy::large_enum_variant,
    reason = "moved once, from next_event to on_event; boxing would allocate once per reading"
)]
enum WindowerEvent {
    /// A reading (or an end-of-stream marker, or something unusable) arrived.
    Message(Message<Vec<u8>>),
    /// Pulsar confirmed (or refused) a publication; the ids are its readings'.
    Confirmed(Result<(), pulsar::Error>, Vec<MessageIdData>),
}

/// Runs until cancelled.
pub async fn run_windower(
    config: WindowerConfig,
    stats: Arc<WindowerStats>,
    cancel: CancellationToken,
) -> Result<(), BrokerError> {
    let placement = Placement::of(&config.names, &config.pulsar, &config.readiness);
    runner::run(Windower { config, stats }, placement, cancel).await
}

impl Workload for Windower {
    const NAME: &'static str = "windower";
    type Running = RunningWindower;

    async fn start(self, cx: &mut Context) -> Result<RunningWindower, BrokerError> {
        let Self { config, stats } = self;
        Ok(RunningWindower {
            readings_topic: config.names.pulsar_topic(Topic::Readings),
            consumer: cx
                .session
                .subscribe(Topic::Readings, Subscription::Shared)
                .await?,
            windows: cx.session.compressed_producer(Topic::Windows).await?,
            late: cx.session.producer(Topic::Late).await?,
            engine: WindowEngine::new(config.window),
            pending: HashMap::new(),
            confirmations: FuturesUnordered::new(),
            acks: AckQueue::default(),
            events: Vec::new(),
            fired: FiredWindows::default(),
            config,
            stats,
        })
    }
}

impl Running for RunningWindower {
    type Event = WindowerEvent;
    type Error = BrokerError;
    /// Idle windows are flushed, quiet devices handed over, and acknowledgements drained.
    const TICK: Option<Duration> = Some(Duration::from_secs(1));

    async fn next_event(&mut self) -> Result<WindowerEvent, BrokerError> {
        tokio::select! {
            Some((confirmed, ids)) = self.confirmations.next(), if !self.confirmations.is_empty() => {
                Ok(WindowerEvent::Confirmed(confirmed, ids))
            }
            message = self.consumer.next() => match message {
                Some(message) => Ok(WindowerEvent::Message(message.map_err(pulsar_error)?)),
                None => Err(BrokerError::StreamEnded),
            },
        }
    }

    async fn on_event(&mut self, event: WindowerEvent, cx: &mut Context) -> Result<Flow, BrokerError> {
        match event {
            WindowerEvent::Confirmed(confirmed, ids) => {
                confirmed?;
                self.acks.confirmed(ids);
            }
            WindowerEvent::Message(message) => {
                let trailing = self.take(message, &mut cx.session).await?;
                self.publish(trailing).await?;
            }
        }
        Ok(Flow::Continue)
    }

    async fn on_tick(&mut self, _cx: &mut Context) -> Result<Flow, BrokerError> {
        let now = now_ms();
        self.engine.flush_idle(now, &mut self.events);
        self.fired.forget_before(now - millis(COPY_MEMORY));
        let quiet_since = now - millis(HAND_OVER_AFTER);
        for device in self.engine.quiet_since(quiet_since) {
            // Quiet with open windows: most likely Key_Shared gave the device to another
            // replica, which waits until this one lets go of its unacknowledged readings. Let
            // go: forget the device and have Pulsar redeliver them, in order, to whichever
            // consumer has the device now (this one, if it is only quiet), which rebuilds the
            // same windows.
            let dropped = self.engine.forget(device);
            let keys: Vec<(DeviceId, i64)> = self
                .pending
                .keys()
                .filter(|(of, _)| *of == device)
                .copied()
                .collect();
            for key in keys {
                for id in self.pending.remove(&key).unwrap_or_default().ids {
                    self.consumer
                        .nack_with_id(&self.readings_topic, id)
                        .await
                        .map_err(pulsar_error)?;
                }
            }
            self.stats.hand_overs.inc();
            tracing::info!(%device, windows = dropped, "a quiet device's open windows handed back to Pulsar for redelivery");
        }
        for id in self.acks.on_tick() {
            self.consumer
                .ack_with_id(&self.readings_topic, id)
                .await
                .map_err(pulsar_error)?;
        }
        self.publish(Vec::new()).await?;
        Ok(Flow::Continue)
    }

    /// The receipts still on their way are awaited (for a while), and what is confirmed is
    /// acknowledged now, so the replica that takes the devices over is redelivered only
    /// readings whose windows were not published — not readings of windows this one
    /// published, which it would window again or count late.
    async fn stop(mut self, _cx: &mut Context) -> Result<(), BrokerError> {
        let (confirmations, acks) = (&mut self.confirmations, &mut self.acks);
        let receipts = tokio::time::timeout(STOP_GRACE, async {
            while let Some((confirmed, ids)) = confirmations.next().await {
                if confirmed.is_ok() {
                    acks.confirmed(ids);
                }
            }
        });
        if receipts.await.is_err() {
            tracing::warn!(
                "stopping before every publication was confirmed; their readings will be redelivered"
            );
        }
        for id in self.acks.take(usize::MAX) {
            self.consumer
                .ack_with_id(&self.readings_topic, id)
                .await
                .map_err(pulsar_error)?;
        }
        Ok(())
    }
}

impl RunningWindower {
    /// Takes one message from `readings` into the engine; returns the ids to acknowledge with
    /// this step's output.
    async fn take(
        &mut self,
        message: Message<Vec<u8>>,
        session: &mut BrokerSession,
    ) -> Result<Vec<MessageIdData>, BrokerError> {
        let mut trailing = Vec::new();
        for id in self.acks.on_message() {
            self.consumer
                .ack_with_id(&self.readings_topic, id)
                .await
                .map_err(pulsar_error)?;
        }
        let id = message.message_id().clone();
        match parse_sensor_payload(&message.payload.data, self.config.devices) {
            Ok(SensorPayload::Reading(reading, seq)) => {
                self.stats.readings.inc();
                let start = self.engine.config().window_start(reading.event_time);
                let copy = self.engine.would_be_late(&reading)
                    && seq.is_some_and(|seq| self.fired.holds((reading.device, start), seq));
                if copy {
                    // A re-sent or redelivered copy of a reading already windowed: not late,
                    // and nothing new. Acknowledged with this step's output.
                    self.stats.copies.inc();
                    tracing::debug!(device = %reading.device, ?seq, event_time = reading.event_time, "copy dropped");
                    trailing.push(id);
                } else {
                    let before = self.events.len();
                    self.engine.push(reading, now_ms(), &mut self.events);
                    if self.events[before..]
                        .iter()
                        .any(|event| matches!(event, WindowEvent::Late(_)))
                    {
                        trailing.push(id); // acknowledged with its late message
                    } else {
                        let open = self.pending.entry((reading.device, start)).or_default();
                        open.ids.push(id);
                        open.seqs.extend(seq);
                    }
                }
            }
            Ok(SensorPayload::EndOfStream(end)) => {
                // Acknowledged once the device's last windows are confirmed.
                self.engine.finish_device(end.sensor_id, &mut self.events);
                trailing.push(id);
            }
            Err(reason) => {
                self.stats.dead_letters.inc();
                session
                    .dead_letter(
                        self.readings_topic.clone(),
                        reason.to_string(),
                        &message.payload.data,
                    )
                    .await?;
                self.consumer
                    .ack_with_id(&self.readings_topic, id)
                    .await
                    .map_err(pulsar_error)?;
            }
        }
        Ok(trailing)
    }
}

/// An open window's readings: their message ids, acknowledged once it is published, and their
/// sequence numbers, remembered once it fires.
#[derive(Debug, Default)]
struct OpenWindow {
    ids: Vec<MessageIdData>,
    seqs: Vec<Sequence>,
}

/// How long a stopping windower waits for the receipts of what it published.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long the sequence numbers of a fired window are remembered (processing time): copies
/// come within seconds (a sensor re-sends at most [`super::sensor::REWIND_ON_RECONNECT`] of
/// its replay, a broker redelivers what was not acknowledged).
pub const COPY_MEMORY: Duration = Duration::from_secs(300);

/// The sequence numbers of the readings in the windows fired in the last [`COPY_MEMORY`]. A
/// reading for one of those windows whose number is there is a copy — re-sent by a restarted
/// sensor, forwarded again by the bridge, or redelivered by Pulsar — and is dropped; one whose
/// number is not there is late, as in Flink. Exact whatever order the copies come in (a broker
/// restored from its store may deliver them out of order).
#[derive(Debug, Default)]
struct FiredWindows {
    /// (device, window start) → its readings' sequence numbers (sorted) and when it fired.
    windows: HashMap<(DeviceId, i64), (Vec<Sequence>, i64)>,
    /// When each window fired, oldest first, for forgetting.
    fired_at: VecDeque<(i64, (DeviceId, i64))>,
}

impl FiredWindows {
    /// Remembers the sequence numbers of a window that fired at `now_ms`.
    fn record(&mut self, window: (DeviceId, i64), mut seqs: Vec<Sequence>, now_ms: i64) {
        if seqs.is_empty() {
            return;
        }
        seqs.sort_unstable();
        self.windows.insert(window, (seqs, now_ms));
        self.fired_at.push_back((now_ms, window));
    }

    /// Whether the fired `window` held the reading numbered `seq`.
    fn holds(&self, window: (DeviceId, i64), seq: Sequence) -> bool {
        self.windows
            .get(&window)
            .is_some_and(|(seqs, _)| seqs.binary_search(&seq).is_ok())
    }

    /// Forgets the windows that fired before `before_ms`.
    fn forget_before(&mut self, before_ms: i64) {
        while let Some(&(fired, window)) = self.fired_at.front() {
            if fired >= before_ms {
                break;
            }
            self.fired_at.pop_front();
            // A window fired again later (rebuilt after a hand-over) keeps its newer record.
            if self.windows.get(&window).is_some_and(|(_, at)| *at == fired) {
                self.windows.remove(&window);
            }
        }
    }
}

/// Reading ids whose windows Pulsar confirmed, acknowledged at a steady pace rather than all at
/// once. Every device's window closes within the same second, so acknowledging 60 readings per
/// window on confirmation would send Pulsar one acknowledgement per reading of the minute in
/// that second, competing with the windows themselves; spread out, they cost the same but
/// outside the burst. Acknowledging later is safe: until then a crash only redelivers readings
/// whose windows are already stored, and the store ignores a window it already holds.
#[derive(Debug, Default)]
struct AckQueue {
    ready: VecDeque<MessageIdData>,
    /// Whether a message was consumed since the last tick.
    consumed_since_tick: bool,
}

impl AckQueue {
    /// Acknowledged per message consumed: twice the arrival rate, so a minute's backlog
    /// clears within half a minute while readings flow.
    const PER_MESSAGE: usize = 2;
    /// Acknowledged per second without readings, so the queue drains when readings stop.
    /// Only then: pulsar-rs sends acknowledgements ahead of any publication on the connection,
    /// so a bulk of them in the second windows close would hold the windows back.
    const PER_IDLE_SECOND: usize = 20_000;

    fn confirmed(&mut self, ids: Vec<MessageIdData>) {
        self.ready.extend(ids);
    }

    /// The ids to acknowledge as a message is consumed.
    fn on_message(&mut self) -> impl Iterator<Item = MessageIdData> + '_ {
        self.consumed_since_tick = true;
        self.take(Self::PER_MESSAGE)
    }

    /// The ids to acknowledge on the once-a-second tick: a bulk if no message arrived since
    /// the previous tick, none otherwise.
    fn on_tick(&mut self) -> impl Iterator<Item = MessageIdData> + '_ {
        let idle = !std::mem::take(&mut self.consumed_since_tick);
        self.take(if idle { Self::PER_IDLE_SECOND } else { 0 })
    }

    fn take(&mut self, at_most: usize) -> impl Iterator<Item = MessageIdData> + '_ {
        let count = at_most.min(self.ready.len());
        self.ready.drain(..count)
    }
}

/// A publication's receipt, and the reading ids to acknowledge once it arrives.
type Confirmation = Pin<Box<dyn Future<Output = (Result<(), pulsar::Error>, Vec<MessageIdData>)> + Send>>;

/// Publishes the windows and late readings in `events` without waiting for their receipts
/// (those go to `confirmations` with the ids to acknowledge). `trailing` ids are acknowledged
/// with the last publication (or at once if there is none).
impl RunningWindower {
    async fn publish(&mut self, trailing: Vec<MessageIdData>) -> Result<(), BrokerError> {
        let Self {
            windows,
            late: late_producer,
            events,
            pending,
            fired,
            confirmations,
            stats,
            ..
        } = self;
        let mut published: Vec<(SendFuture, Vec<MessageIdData>)> = Vec::new();
        for event in events.drain(..) {
            let (producer, key, payload, ids) = match event {
                WindowEvent::Emitted(window) => {
                    let key = (window.device, window.start);
                    let message = WindowMessage {
                        window,
                        emitted_ms: now_ms(),
                    };
                    stats.windows.inc();
                    let open = pending.remove(&key).unwrap_or_default();
                    fired.record(key, open.seqs, now_ms());
                    let ids = open.ids;
                    (&mut *windows, key.0, serde_json::to_vec(&message), ids)
                }
                WindowEvent::Late(late) => {
                    let message = LateMessage {
                        reading: late.reading,
                        window_start: late.window_start,
                        watermark_ms: late.watermark_ms,
                    };
                    stats.late.inc();
                    (
                        &mut *late_producer,
                        late.reading.device,
                        serde_json::to_vec(&message),
                        Vec::new(),
                    )
                }
            };
            let receipt = producer
                .create_message()
                .with_content(payload.map_err(pulsar_error)?)
                .with_key(key.to_string())
                .send_non_blocking()
                .await
                .map_err(pulsar_error)?;
            published.push((receipt, ids));
        }
        match published.last_mut() {
            Some((_, ids)) => ids.extend(trailing),
            None if !trailing.is_empty() => {
                confirmations.push(Box::pin(std::future::ready((Ok(()), trailing))))
            }
            None => {}
        }
        for (receipt, ids) in published {
            confirmations.push(Box::pin(async move { (receipt.await.map(drop), ids) }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(entry: u64) -> MessageIdData {
        MessageIdData {
            ledger_id: 1,
            entry_id: entry,
            ..MessageIdData::default()
        }
    }

    #[test]
    fn a_copy_is_a_number_its_fired_window_held_whatever_the_order() {
        let mut fired = FiredWindows::default();
        let window = (DeviceId(1), 60);
        fired.record(window, vec![Sequence(12), Sequence(10), Sequence(11)], 1_000);
        assert!(fired.holds(window, Sequence(11)));
        assert!(
            !fired.holds(window, Sequence(13)),
            "a later reading for the window is late, not a copy"
        );
        assert!(!fired.holds((DeviceId(2), 60), Sequence(11)), "devices are apart");
        assert!(!fired.holds((DeviceId(1), 0), Sequence(11)), "windows are apart");
        // Fired again later (rebuilt after a hand-over): forgetting the first record keeps it.
        fired.record(
            window,
            vec![Sequence(10), Sequence(11), Sequence(12), Sequence(13)],
            5_000,
        );
        fired.forget_before(2_000);
        assert!(fired.holds(window, Sequence(13)));
        fired.forget_before(6_000);
        assert!(!fired.holds(window, Sequence(10)), "forgotten after the memory");
    }

    #[test]
    fn the_ack_queue_hands_out_confirmed_ids_in_order_and_at_most_as_many_as_asked() {
        let mut acks = AckQueue::default();
        acks.confirmed((0..5).map(id).collect());
        acks.confirmed(vec![id(9)]);
        let first: Vec<u64> = acks.take(AckQueue::PER_MESSAGE).map(|id| id.entry_id).collect();
        assert_eq!(first, vec![0, 1]);
        let rest: Vec<u64> = acks.take(usize::MAX).map(|id| id.entry_id).collect();
        assert_eq!(rest, vec![2, 3, 4, 9]);
        assert_eq!(acks.take(AckQueue::PER_IDLE_SECOND).count(), 0);
    }

    #[test]
    fn the_ack_queue_drains_in_bulk_only_on_a_tick_without_messages() {
        let mut acks = AckQueue::default();
        acks.confirmed((0..100).map(id).collect());
        // A message arrived in this second: the tick leaves the queue to the messages.
        assert_eq!(acks.on_message().count(), AckQueue::PER_MESSAGE);
        assert_eq!(acks.on_tick().count(), 0);
        // No message since that tick: the next one drains the queue.
        assert_eq!(acks.on_tick().count(), 100 - AckQueue::PER_MESSAGE);
        assert_eq!(acks.on_tick().count(), 0);
    }
}
