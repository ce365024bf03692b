//! A workload's Pulsar session, set up the same way for every workload: connected with retry
//! until it works or the workload is cancelled, its subscriptions and producers made one way,
//! and its dead-letter producer opened with it.

use super::error::BrokerError;
use super::{compressed_producer, now_ms, producer, pulsar_client, retry};
use pulsar::consumer::InitialPosition;
use pulsar::producer::SendFuture;
use pulsar::{Consumer, ConsumerOptions, Producer, Pulsar, SubType, TokioExecutor};
use tokio_util::sync::CancellationToken;
use wattcast_core::topics::{ExperimentNames, Topic};
use wattcast_core::wire::DeadLetter;
use wattcast_io::services::PulsarEndpoint;

/// How a workload subscribes to one of the experiment's topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    /// The workload's own subscription, named after it and shared by its replicas
    /// (Key_Shared: each device's messages stay in order on one replica), from the earliest
    /// message not acknowledged.
    Shared,
    /// A subscription of this process alone, from now on: every replica hears every message.
    Private,
}

/// A number no other consumer of this process has.
fn next_consumer() -> u64 {
    static CONSUMERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    CONSUMERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A connected workload's Pulsar client, the experiment's topic names, and its dead-letter
/// producer.
pub struct BrokerSession {
    pulsar: Pulsar<TokioExecutor>,
    names: ExperimentNames,
    workload: &'static str,
    dead_letter: Producer<TokioExecutor>,
}

impl BrokerSession {
    /// Connects `workload` to Pulsar, retrying with backoff; None when cancelled first.
    pub async fn connect(
        workload: &'static str,
        names: &ExperimentNames,
        endpoint: &PulsarEndpoint,
        cancel: &CancellationToken,
    ) -> Result<Option<Self>, BrokerError> {
        // Raced as a whole: one attempt may itself take minutes (the client retries a refused
        // connection on its own), and a workload asked to stop must not wait for it.
        let connected = tokio::select! {
            () = cancel.cancelled() => None,
            connected = retry("connecting to Pulsar", cancel, || pulsar_client(endpoint)) => connected,
        };
        let Some(pulsar) = connected else {
            return Ok(None);
        };
        let dead_letter = producer(&pulsar, names.pulsar_topic(Topic::DeadLetter)).await?;
        Ok(Some(Self {
            pulsar,
            names: names.clone(),
            workload,
            dead_letter,
        }))
    }

    /// The experiment's names.
    pub fn names(&self) -> &ExperimentNames {
        &self.names
    }

    /// A consumer of `topic`.
    pub async fn subscribe(
        &self,
        topic: Topic,
        subscription: Subscription,
    ) -> Result<Consumer<Vec<u8>, TokioExecutor>, BrokerError> {
        let process = std::process::id();
        let (name, kind, start) = match subscription {
            Subscription::Shared => (
                self.workload.to_owned(),
                SubType::KeyShared,
                InitialPosition::Earliest,
            ),
            Subscription::Private => (
                format!("{}-{process}-{}", self.workload, now_ms()),
                SubType::Exclusive,
                InitialPosition::Latest,
            ),
        };
        let consumer = self
            .pulsar
            .consumer()
            .with_topic(self.names.pulsar_topic(topic))
            .with_subscription(name)
            .with_subscription_type(kind)
            // Unique per consumer: Key_Shared places consumers on its hash ring by name, and
            // one process may run several replicas (`wattcast local`'s trainers).
            .with_consumer_name(format!("{}-{process}-{}", self.workload, next_consumer()))
            .with_options(ConsumerOptions {
                initial_position: start,
                ..ConsumerOptions::default()
            })
            .build()
            .await?;
        Ok(consumer)
    }

    /// A producer for `topic` (see [`super::producer`]).
    pub async fn producer(&self, topic: Topic) -> Result<Producer<TokioExecutor>, BrokerError> {
        Ok(producer(&self.pulsar, self.names.pulsar_topic(topic)).await?)
    }

    /// A Snappy-compressing producer for `topic` (see [`super::compressed_producer`]).
    pub async fn compressed_producer(&self, topic: Topic) -> Result<Producer<TokioExecutor>, BrokerError> {
        Ok(compressed_producer(&self.pulsar, self.names.pulsar_topic(topic)).await?)
    }

    /// Sends `payload`, which came from `source` (a topic) and could not be used for `reason`,
    /// to `dead-letter`, and waits until Pulsar confirmed it.
    pub async fn dead_letter(
        &mut self,
        source: impl Into<String>,
        reason: impl Into<String>,
        payload: &[u8],
    ) -> Result<(), BrokerError> {
        self.send_dead_letter(source, reason, payload).await?.await?;
        Ok(())
    }

    /// Like [`BrokerSession::dead_letter`], returning the receipt to await later.
    pub async fn send_dead_letter(
        &mut self,
        source: impl Into<String>,
        reason: impl Into<String>,
        payload: &[u8],
    ) -> Result<SendFuture, BrokerError> {
        let letter = DeadLetter::new(self.workload, source, reason, payload);
        let receipt = self
            .dead_letter
            .create_message()
            .with_content(serde_json::to_vec(&letter)?)
            .send_non_blocking()
            .await?;
        Ok(receipt)
    }
}
