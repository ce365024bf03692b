//! `wattcast windower`: `readings` → the windowing engine → `windows`; late readings → `late`.
//!
//! At-least-once: a reading's Pulsar message is acknowledged only after the window holding it
//! (or, for a late reading, its `late` message) was confirmed by Pulsar; receipts are awaited
//! alongside the reading, not one after another. If the windower dies,
//! unacknowledged readings are redelivered and windowed again; the coordinator's primary keys
//! make a window stored twice change nothing. A Key_Shared subscription lets replicas split
//! the devices, so each device's readings stay in order on one replica.

use super::{compressed_producer, now_ms, producer, pulsar_client, retry, send_dead_letter};
use crate::observe::Readiness;
use crate::reading::DeviceId;
use crate::services::PulsarEndpoint;
use crate::topics::ExperimentNames;
use crate::windowing::{WindowConfig, WindowEngine, WindowEvent};
use crate::wire::{DeadLetter, LateMessage, SensorPayload, WindowMessage, parse_sensor_payload};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use pulsar::consumer::InitialPosition;
use pulsar::producer::SendFuture;
use pulsar::proto::MessageIdData;
use pulsar::{Consumer, ConsumerOptions, Producer, SubType, TokioExecutor};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
}

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
            "wattcast_windower_dead_letters",
            "Messages sent to dead-letter",
            self.dead_letters.clone(),
        );
    }
}

/// Why the windower stopped.
#[derive(Debug, thiserror::Error)]
pub enum WindowerError {
    /// Pulsar failed.
    #[error("Pulsar: {0}")]
    Pulsar(String),
}

fn pulsar_error(error: impl std::fmt::Display) -> WindowerError {
    WindowerError::Pulsar(error.to_string())
}

struct Outputs {
    windows: Producer<TokioExecutor>,
    late: Producer<TokioExecutor>,
    dead_letter: Producer<TokioExecutor>,
}

/// Runs until cancelled.
pub async fn run_windower(
    config: WindowerConfig,
    stats: Arc<WindowerStats>,
    cancel: CancellationToken,
) -> Result<(), WindowerError> {
    let Some(pulsar) = retry("connecting to Pulsar", &cancel, || pulsar_client(&config.pulsar)).await else {
        return Ok(());
    };
    let readings_topic = config.names.pulsar_topic("readings");
    let mut consumer: Consumer<Vec<u8>, TokioExecutor> = pulsar
        .consumer()
        .with_topic(&readings_topic)
        .with_subscription("windower")
        .with_subscription_type(SubType::KeyShared)
        .with_consumer_name(format!("windower-{}", std::process::id()))
        .with_options(ConsumerOptions {
            initial_position: InitialPosition::Earliest,
            ..ConsumerOptions::default()
        })
        .build()
        .await
        .map_err(pulsar_error)?;
    let open_producer = |topic: &str| {
        let (pulsar, topic) = (pulsar.clone(), config.names.pulsar_topic(topic));
        async move { producer(&pulsar, topic).await.map_err(pulsar_error) }
    };
    let mut outputs = Outputs {
        windows: compressed_producer(&pulsar, config.names.pulsar_topic("windows"))
            .await
            .map_err(pulsar_error)?,
        late: open_producer("late").await?,
        dead_letter: open_producer("dead-letter").await?,
    };

    config.readiness.set(true);
    let mut engine = WindowEngine::new(config.window);
    // Message ids of the readings in each open window, acknowledged once it is published.
    let mut pending: HashMap<(DeviceId, i64), Vec<MessageIdData>> = HashMap::new();
    // Published windows and late messages whose receipts are still on their way, with the ids
    // to acknowledge when they land. Waiting for receipts here, not inline, lets the windower
    // go on reading while Pulsar persists what it published.
    let mut confirmations: FuturesUnordered<Confirmation> = FuturesUnordered::new();
    // Ids whose windows are confirmed, acknowledged a few at a time (see `AckQueue`).
    let mut acks = AckQueue::default();
    let mut events = Vec::new();
    let mut idle_check = tokio::time::interval(Duration::from_secs(1));
    loop {
        let mut trailing = Vec::new();
        tokio::select! {
            () = cancel.cancelled() => break,
            Some((confirmed, ids)) = confirmations.next(), if !confirmations.is_empty() => {
                confirmed.map_err(WindowerError::Pulsar)?;
                acks.confirmed(ids);
            }
            _ = idle_check.tick() => {
                engine.flush_idle(now_ms(), &mut events);
                for id in acks.on_tick() {
                    consumer.ack_with_id(&readings_topic, id).await.map_err(pulsar_error)?;
                }
            }
            message = consumer.next() => {
                let Some(message) = message else { break };
                let message = message.map_err(pulsar_error)?;
                for id in acks.on_message() {
                    consumer.ack_with_id(&readings_topic, id).await.map_err(pulsar_error)?;
                }
                let id = message.message_id().clone();
                match parse_sensor_payload(&message.payload.data, config.devices) {
                    Ok(SensorPayload::Reading(reading)) => {
                        stats.readings.inc();
                        let before = events.len();
                        engine.push(reading, now_ms(), &mut events);
                        if events[before..].iter().any(|event| matches!(event, WindowEvent::Late(_))) {
                            trailing.push(id); // acknowledged with its late message
                        } else {
                            let start = engine.config().window_start(reading.event_time);
                            pending.entry((reading.device, start)).or_default().push(id);
                        }
                    }
                    Ok(SensorPayload::EndOfStream(end)) => {
                        // Acknowledged once the device's last windows are confirmed.
                        engine.finish_device(end.sensor_id, &mut events);
                        trailing.push(id);
                    }
                    Err(reason) => {
                        stats.dead_letters.inc();
                        let letter = DeadLetter::new("windower", readings_topic.clone(), reason.to_string(), &message.payload.data);
                        send_dead_letter(&mut outputs.dead_letter, &letter).await.map_err(pulsar_error)?;
                        consumer.ack_with_id(&readings_topic, id).await.map_err(pulsar_error)?;
                    }
                }
            }
        }
        publish(
            &mut outputs,
            &mut events,
            &mut pending,
            trailing,
            &mut confirmations,
            &stats,
        )
        .await?;
    }
    // Graceful stop: what is confirmed is acknowledged now, so a restart redelivers only
    // readings whose windows were not published.
    for id in acks.take(usize::MAX) {
        consumer
            .ack_with_id(&readings_topic, id)
            .await
            .map_err(pulsar_error)?;
    }
    Ok(())
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
type Confirmation = Pin<Box<dyn Future<Output = (Result<(), String>, Vec<MessageIdData>)> + Send>>;

/// Publishes the windows and late readings in `events` without waiting for their receipts
/// (those go to `confirmations` with the ids to acknowledge). `trailing` ids are acknowledged
/// with the last publication (or at once if there is none).
async fn publish(
    outputs: &mut Outputs,
    events: &mut Vec<WindowEvent>,
    pending: &mut HashMap<(DeviceId, i64), Vec<MessageIdData>>,
    trailing: Vec<MessageIdData>,
    confirmations: &mut FuturesUnordered<Confirmation>,
    stats: &WindowerStats,
) -> Result<(), WindowerError> {
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
                let ids = pending.remove(&key).unwrap_or_default();
                (&mut outputs.windows, key.0, serde_json::to_vec(&message), ids)
            }
            WindowEvent::Late(late) => {
                let message = LateMessage {
                    reading: late.reading,
                    window_start: late.window_start,
                    watermark_ms: late.watermark_ms,
                };
                stats.late.inc();
                (
                    &mut outputs.late,
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
        None if !trailing.is_empty() => confirmations.push(Box::pin(std::future::ready((Ok(()), trailing)))),
        None => {}
    }
    for (receipt, ids) in published {
        confirmations.push(Box::pin(async move {
            (receipt.await.map(drop).map_err(|error| error.to_string()), ids)
        }));
    }
    Ok(())
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
