//! `wattcast bridge`: Mosquitto → Pulsar, at-least-once. A sensor's message is acknowledged to
//! the broker only after Pulsar confirmed the send; readings go to `readings`, batches to
//! `windows` (keyed by device), refused messages to `dead-letter` with the reason.

use super::error::{BrokerError, pulsar_error};
use super::now_ms;
use super::runner::{self, Context, Flow, Placement, Running, Workload};
use super::session::BrokerSession;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use pulsar::producer::SendFuture;
use pulsar::{Producer, TokioExecutor};
use rumqttc::{AsyncClient, Event, EventLoop, Packet, Publish, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wattcast_core::topics::{ExperimentNames, Topic};
use wattcast_core::wire::{Refused, SensorPayload, parse_batch, parse_sensor_payload};
use wattcast_io::observe::Readiness;
use wattcast_io::services::{MqttEndpoint, PulsarEndpoint};

/// What the bridge needs.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Topic names.
    pub names: ExperimentNames,
    /// Devices 1..=devices are known; others are dead-lettered.
    pub devices: u32,
    /// The broker.
    pub mqtt: MqttEndpoint,
    /// Pulsar (its broker is what this workload uses).
    pub pulsar: PulsarEndpoint,
    /// Set once subscribed, cleared while the broker connection is down.
    pub readiness: Arc<Readiness>,
}

impl BridgeConfig {
    /// The bridge an experiment's spec asks for, in local mode and pods alike.
    pub fn from_spec(
        names: ExperimentNames,
        spec: &wattcast_crds::PipelineExperimentSpec,
        mqtt: MqttEndpoint,
        pulsar: PulsarEndpoint,
        readiness: Arc<Readiness>,
    ) -> Self {
        Self {
            names,
            devices: spec.devices.count,
            mqtt,
            pulsar,
            readiness,
        }
    }
}

/// Running counts, shared with metrics and `wattcast local`.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Readings forwarded to `readings`.
    pub readings: Counter,
    /// Batches forwarded to `windows`.
    pub batches: Counter,
    /// End-of-stream markers forwarded.
    pub end_markers: Counter,
    /// Messages sent to `dead-letter`.
    pub dead_letters: Counter,
}

impl BridgeStats {
    /// Registers the counters as `wattcast_bridge_<name>_total`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wattcast_bridge_readings",
            "Readings forwarded to Pulsar",
            self.readings.clone(),
        );
        registry.register(
            "wattcast_bridge_batches",
            "Batches forwarded to Pulsar",
            self.batches.clone(),
        );
        registry.register(
            "wattcast_bridge_end_markers",
            "End-of-stream markers seen",
            self.end_markers.clone(),
        );
        registry.register(
            "wattcast_bridge_dead_letters",
            "Messages sent to dead-letter",
            self.dead_letters.clone(),
        );
    }
}

/// Why the bridge stopped.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Pulsar refused a producer or a message could not be encoded.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The MQTT client refused the subscription.
    #[error("MQTT")]
    Mqtt(#[source] rumqttc::ClientError),
}

/// The bridge before it runs.
struct Bridge {
    config: BridgeConfig,
    stats: Arc<BridgeStats>,
    ready: tokio::sync::oneshot::Sender<()>,
}

/// The running bridge: its producers, its MQTT client and what it waits on.
struct RunningBridge {
    config: BridgeConfig,
    stats: Arc<BridgeStats>,
    /// Fired at the first subscription acknowledged.
    ready: Option<tokio::sync::oneshot::Sender<()>>,
    readings: Producer<TokioExecutor>,
    windows: Producer<TokioExecutor>,
    client: AsyncClient,
    events: EventLoop,
    /// Pulsar's receipts on their way to the acknowledging task, with the messages they confirm.
    to_acknowledge: tokio::sync::mpsc::UnboundedSender<(Option<SendFuture>, Publish)>,
    acknowledger: tokio::task::JoinHandle<()>,
    /// Whether the first subscription was acknowledged (the first ConnAck needs no resubscribe).
    subscribed_once: bool,
    /// How long to wait before the next reconnection.
    backoff: Duration,
}

/// Runs until cancelled; `ready` fires once the MQTT subscription is in place.
pub async fn run_bridge(
    config: BridgeConfig,
    stats: Arc<BridgeStats>,
    ready: tokio::sync::oneshot::Sender<()>,
    cancel: CancellationToken,
) -> Result<(), BridgeError> {
    let placement = Placement::of(&config.names, &config.pulsar, &config.readiness);
    runner::run(Bridge { config, stats, ready }, placement, cancel).await
}

impl Workload for Bridge {
    const NAME: &'static str = "bridge";
    const READY_WHEN_STARTED: bool = false;
    type Running = RunningBridge;

    async fn start(self, cx: &mut Context) -> Result<RunningBridge, BridgeError> {
        let Self { config, stats, ready } = self;
        let readings = cx.session.producer(Topic::Readings).await?;
        let windows = cx.session.compressed_producer(Topic::Windows).await?;
        // A persistent session: while the bridge is away, the broker keeps QoS 1 messages for
        // it, and messages it received but did not acknowledge are delivered again.
        let mut options = super::mqtt_options(
            &config.mqtt,
            format!("wattcast-bridge-{}", config.names.experiment()),
        );
        options.set_clean_session(false);
        options.set_manual_acks(true);
        options.set_keep_alive(Duration::from_secs(15));
        options.set_inflight(1000);
        let (client, events) = AsyncClient::new(options, 1000);
        client
            .subscribe(config.names.mqtt_subscription(), QoS::AtLeastOnce)
            .await
            .map_err(BridgeError::Mqtt)?;
        let (to_acknowledge, confirmed) = tokio::sync::mpsc::unbounded_channel();
        let acknowledger = tokio::spawn(acknowledge(client.clone(), confirmed));
        Ok(RunningBridge {
            config,
            stats,
            ready: Some(ready),
            readings,
            windows,
            client,
            events,
            to_acknowledge,
            acknowledger,
            subscribed_once: false,
            backoff: Duration::from_millis(100),
        })
    }
}

impl Running for RunningBridge {
    type Event = Result<Event, rumqttc::ConnectionError>;
    type Error = BridgeError;

    async fn next_event(&mut self) -> Result<Self::Event, BridgeError> {
        Ok(self.events.poll().await)
    }

    async fn on_event(&mut self, event: Self::Event, cx: &mut Context) -> Result<Flow, BridgeError> {
        match event {
            // A broker that lost the session (restarted without it) lost the subscription too:
            // subscribe again, or everything sent from now on would be dropped for want of a
            // subscriber. Not ready until the broker acknowledges it.
            Ok(Event::Incoming(Packet::ConnAck(connack)))
                if !connack.session_present && self.subscribed_once =>
            {
                tracing::warn!("the MQTT broker lost the bridge's session; subscribing again");
                cx.readiness.set(false);
                // From a task: the request queue this loop drains may be full.
                let (client, topic) = (self.client.clone(), self.config.names.mqtt_subscription());
                tokio::spawn(async move {
                    if let Err(error) = client.subscribe(topic, QoS::AtLeastOnce).await {
                        tracing::warn!(%error, "subscribing again failed");
                    }
                });
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                self.subscribed_once = true;
                cx.readiness.set(true);
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(());
                }
                self.backoff = Duration::from_millis(100);
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let receipt = self.forward(&mut cx.session, &publish).await?;
                let _ = self.to_acknowledge.send((receipt, publish));
            }
            Ok(_) => {}
            Err(error) => {
                cx.readiness.set(false);
                tracing::warn!(%error, retry_in_ms = super::millis(self.backoff), "bridge MQTT connection failed; reconnecting");
                tokio::select! {
                    () = cx.cancel.cancelled() => return Ok(Flow::Stop),
                    () = tokio::time::sleep(self.backoff) => {}
                }
                // At most a second apart: while the bridge is away, what sensors send queues in
                // the broker, and a broker restored from its store may deliver a long queue out
                // of order.
                self.backoff = (self.backoff * 2).min(Duration::from_secs(1));
            }
        }
        Ok(Flow::Continue)
    }

    /// What Pulsar confirms now is acknowledged to the broker before leaving (the event loop
    /// must keep running to send the acknowledgements).
    async fn stop(self, _cx: &mut Context) -> Result<(), BridgeError> {
        let Self {
            to_acknowledge,
            mut acknowledger,
            mut events,
            client,
            ..
        } = self;
        drop(to_acknowledge);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            loop {
                tokio::select! {
                    _ = &mut acknowledger => break,
                    event = events.poll() => if event.is_err() { break },
                }
            }
        });
        let _ = drained.await;
        let _ = client.disconnect().await;
        Ok(())
    }
}

/// How long a stopping bridge waits for Pulsar's outstanding receipts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Acknowledges each MQTT message once Pulsar confirmed its send (at once when there was
/// nothing to send). One task for all of them: thousands of tasks each waiting for room in the
/// client's request queue make every wake-up scan all the waiters.
async fn acknowledge(
    client: AsyncClient,
    mut confirmed: tokio::sync::mpsc::UnboundedReceiver<(Option<SendFuture>, Publish)>,
) {
    let mut receipts = FuturesUnordered::new();
    loop {
        let (result, publish) = tokio::select! {
            next = confirmed.recv() => match next {
                Some((Some(receipt), publish)) => {
                    receipts.push(async move { (receipt.await.map(drop), publish) });
                    continue;
                }
                Some((None, publish)) => (Ok(()), publish),
                None if receipts.is_empty() => return,
                None => match receipts.next().await {
                    Some(done) => done,
                    None => return,
                },
            },
            Some(done) = receipts.next(), if !receipts.is_empty() => done,
        };
        match result {
            Ok(()) => {
                if let Err(error) = client.ack(&publish).await {
                    tracing::warn!(%error, "acknowledging an MQTT message failed; the broker will redeliver it");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Pulsar did not confirm a send; the MQTT message stays unacknowledged")
            }
        }
    }
}

/// Sends one MQTT message to its Pulsar topic; the returned future resolves when Pulsar
/// confirms (`None`: nothing to forward, acknowledge at once).
impl RunningBridge {
    async fn forward(
        &mut self,
        session: &mut BrokerSession,
        publish: &Publish,
    ) -> Result<Option<SendFuture>, BridgeError> {
        let (config, stats) = (&self.config, &self.stats);
        let kind = publish.topic.rsplit('/').nth(1).unwrap_or_default();
        let routed = match kind {
            "readings" => {
                parse_sensor_payload(&publish.payload, config.devices).map(|payload| match payload {
                    SensorPayload::Reading(reading, _) => {
                        stats.readings.inc();
                        (&mut self.readings, reading.device)
                    }
                    SensorPayload::EndOfStream(end) => {
                        stats.end_markers.inc();
                        (&mut self.readings, end.sensor_id)
                    }
                })
            }
            "batches" => match parse_sensor_payload(&publish.payload, config.devices) {
                // Batching has no windower: the marker only documents the sensor's count.
                Ok(SensorPayload::EndOfStream(_)) => {
                    stats.end_markers.inc();
                    return Ok(None);
                }
                _ => parse_batch(&publish.payload, config.devices).map(|message| {
                    stats.batches.inc();
                    (&mut self.windows, message.window.device)
                }),
            },
            other => Err(Refused::Malformed(format!("unknown topic kind `{other}`"))),
        };
        let send = match routed {
            Ok((producer, device)) => {
                producer
                    .create_message()
                    .with_content(publish.payload.to_vec())
                    .with_key(device.to_string())
                    .event_time(now_ms() as u64)
                    .send_non_blocking()
                    .await
            }
            Err(reason) => {
                stats.dead_letters.inc();
                tracing::debug!(%reason, topic = %publish.topic, "dead-lettering a sensor message");
                return Ok(Some(
                    session
                        .send_dead_letter(publish.topic.clone(), reason.to_string(), &publish.payload)
                        .await?,
                ));
            }
        };
        send.map(Some)
            .map_err(|error| BridgeError::Broker(pulsar_error(error)))
    }
}
