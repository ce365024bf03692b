//! `wattcast trainer`: consumes retrain requests, trains the device's LSTM on its latest stored
//! readings, publishes the model (object store + `models` row) and announces it on `models`.

mod queue;

use super::error::{BrokerError, pulsar_error};
use super::runner::{self, Context, Flow, Placement, Running, Workload};
use super::session::Subscription;
use super::{now_ms, retry};
use crate::model_registry::ModelRegistry;
use futures::StreamExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use pulsar::consumer::Message;
use pulsar::{Consumer, Producer, TokioExecutor};
use queue::{Next, RequestQueue};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wattcast_core::topics::{ExperimentNames, Topic};
use wattcast_core::wire::{ModelAnnouncement, RetrainRequest};
use wattcast_io::observe::Readiness;
use wattcast_io::services::PulsarEndpoint;
use wattcast_io::store::Store;
use wattcast_model::{ModelVersion, Recipe, train};

/// What the trainer needs.
#[derive(Debug, Clone)]
pub struct TrainerConfig {
    /// Topic names.
    pub names: ExperimentNames,
    /// How models are trained.
    pub recipe: Recipe,
    /// Pulsar (its broker is what this workload uses).
    pub pulsar: PulsarEndpoint,
    /// Set once consuming.
    pub readiness: Arc<Readiness>,
    /// Trainings wait until this is cancelled; requests are received, queued and superseded
    /// meanwhile (a test's way to have requests wait in line without racing a training).
    pub hold_trainings: Option<CancellationToken>,
}

impl TrainerConfig {
    /// The trainer an experiment's spec asks for, in local mode and pods alike (trainings are
    /// never held).
    pub fn from_spec(
        names: ExperimentNames,
        spec: &wattcast_crds::PipelineExperimentSpec,
        pulsar: PulsarEndpoint,
        readiness: Arc<Readiness>,
    ) -> Self {
        Self {
            names,
            recipe: Recipe::from_spec(&spec.forecasting),
            pulsar,
            readiness,
            hold_trainings: None,
        }
    }
}

/// Running counts.
#[derive(Debug)]
pub struct TrainerStats {
    /// Models trained and published.
    pub retrains: Counter,
    /// Requests refused (too few readings, NaN) and dead-lettered.
    pub refused: Counter,
    /// Requests acknowledged untrained because a newer one for the device was waiting too.
    pub superseded: Counter,
    /// Requests received and waiting for a training.
    pub waiting: Gauge,
    /// Seconds per training.
    pub train_seconds: Histogram,
}

impl Default for TrainerStats {
    fn default() -> Self {
        Self {
            retrains: Counter::default(),
            refused: Counter::default(),
            superseded: Counter::default(),
            waiting: Gauge::default(),
            train_seconds: Histogram::new([0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0]),
        }
    }
}

impl TrainerStats {
    /// Registers the metrics as `wattcast_trainer_*`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wattcast_trainer_retrains",
            "Models trained and published",
            self.retrains.clone(),
        );
        registry.register(
            "wattcast_trainer_refused",
            "Retrain requests refused and dead-lettered",
            self.refused.clone(),
        );
        registry.register(
            "wattcast_trainer_superseded",
            "Retrain requests acknowledged untrained: a newer one for the device was waiting",
            self.superseded.clone(),
        );
        registry.register(
            "wattcast_trainer_waiting",
            "Retrain requests received and waiting for a training",
            self.waiting.clone(),
        );
        registry.register(
            "wattcast_trainer_train_seconds",
            "Seconds per training",
            self.train_seconds.clone(),
        );
    }
}

/// What became of one request.
enum Outcome {
    Published(ModelAnnouncement),
    Refused(String),
    Cancelled,
}

/// Runs until cancelled.
pub async fn run_trainer(
    config: TrainerConfig,
    store: Store,
    registry: ModelRegistry,
    stats: Arc<TrainerStats>,
    cancel: CancellationToken,
) -> Result<(), BrokerError> {
    let placement = Placement::of(&config.names, &config.pulsar, &config.readiness);
    let trainer = Trainer {
        config,
        store,
        registry,
        stats,
    };
    runner::run(trainer, placement, cancel).await
}

/// The trainer before it runs.
struct Trainer {
    config: TrainerConfig,
    store: Store,
    registry: ModelRegistry,
    stats: Arc<TrainerStats>,
}

/// The running trainer: its requests, the queue of those waiting, and the training under way.
struct RunningTrainer {
    config: TrainerConfig,
    store: Store,
    registry: ModelRegistry,
    stats: Arc<TrainerStats>,
    /// Each device's requests to one trainer, in order; several trainers share the devices.
    requests: Consumer<Vec<u8>, TokioExecutor>,
    announcements: Producer<TokioExecutor>,
    /// Requests are received while a training runs, so a device's newer request supersedes
    /// its waiting one instead of training a model on data that is already old.
    queue: RequestQueue<Message<Vec<u8>>>,
    /// The request being trained (or refused), acknowledged when it is done.
    training: Option<(Message<Vec<u8>>, Training)>,
    /// Cancelled when trainings may start (at once unless `hold_trainings`).
    held: CancellationToken,
    /// The workload's cancellation, which a training's retries watch.
    cancel: CancellationToken,
}

/// What the trainer waits for.
enum TrainerEvent {
    /// Trainings may start (see [`TrainerConfig::hold_trainings`]).
    Released,
    /// A retrain request arrived.
    Request(Message<Vec<u8>>),
    /// The training of this request ended.
    Trained(Message<Vec<u8>>, Outcome),
}

impl Workload for Trainer {
    const NAME: &'static str = "trainer";
    type Running = RunningTrainer;

    async fn start(self, cx: &mut Context) -> Result<RunningTrainer, BrokerError> {
        let Self {
            config,
            store,
            registry,
            stats,
        } = self;
        let requests = cx.session.subscribe(Topic::Retrain, Subscription::Shared).await?;
        let announcements = cx.session.producer(Topic::Models).await?;
        // Cancelled first, the runner stops the trainer before it consumes anything.
        let _ = retry("reaching the models bucket", &cx.cancel, || {
            registry.objects().ensure_bucket()
        })
        .await;
        let held = config.hold_trainings.clone().unwrap_or_default();
        if config.hold_trainings.is_none() {
            held.cancel();
        }
        Ok(RunningTrainer {
            config,
            store,
            registry,
            stats,
            requests,
            announcements,
            queue: RequestQueue::default(),
            training: None,
            held,
            cancel: cx.cancel.clone(),
        })
    }
}

impl Running for RunningTrainer {
    type Event = TrainerEvent;
    type Error = BrokerError;

    async fn next_event(&mut self) -> Result<TrainerEvent, BrokerError> {
        if self.training.is_none() && self.held.is_cancelled() {
            self.training = match self.queue.pop() {
                Some(Next::Train(request, message)) => Some((message, self.train(request))),
                Some(Next::Refuse(message, reason)) => Some((message, Box::pin(refuse(reason)))),
                None => None,
            };
            self.stats.waiting.set(self.queue.len() as i64);
        }
        let (held, requests, training) = (&self.held, &mut self.requests, &mut self.training);
        tokio::select! {
            () = held.cancelled(), if !held.is_cancelled() => Ok(TrainerEvent::Released),
            message = requests.next() => match message {
                Some(message) => Ok(TrainerEvent::Request(message.map_err(pulsar_error)?)),
                None => Err(BrokerError::StreamEnded),
            },
            outcome = async {
                match training.as_mut() {
                    Some((_, run)) => run.as_mut().await,
                    None => std::future::pending().await,
                }
            }, if training.is_some() => match training.take() {
                Some((message, _)) => Ok(TrainerEvent::Trained(message, outcome)),
                None => std::future::pending().await, // never: the outcome came from it
            },
        }
    }

    async fn on_event(&mut self, event: TrainerEvent, cx: &mut Context) -> Result<Flow, BrokerError> {
        match event {
            TrainerEvent::Released => {}
            TrainerEvent::Request(message) => {
                match serde_json::from_slice::<RetrainRequest>(&message.payload.data) {
                    Ok(request) => {
                        if let Some(superseded) = self.queue.push(request, message) {
                            self.requests.ack(&superseded).await.map_err(pulsar_error)?;
                            self.stats.superseded.inc();
                        }
                    }
                    Err(error) => self.queue.push_refused(message, format!("malformed: {error}")),
                }
                self.stats.waiting.set(self.queue.len() as i64);
            }
            // Unacknowledged: redelivered to the next trainer.
            TrainerEvent::Trained(_, Outcome::Cancelled) => return Ok(Flow::Stop),
            TrainerEvent::Trained(message, Outcome::Published(announcement)) => {
                let payload = serde_json::to_vec(&announcement).map_err(pulsar_error)?;
                self.announcements
                    .create_message()
                    .with_content(payload)
                    .with_key(announcement.device.to_string())
                    .send_non_blocking()
                    .await
                    .map_err(pulsar_error)?
                    .await
                    .map_err(pulsar_error)?;
                self.stats.retrains.inc();
                self.requests.ack(&message).await.map_err(pulsar_error)?;
            }
            TrainerEvent::Trained(message, Outcome::Refused(reason)) => {
                tracing::warn!(%reason, "retrain request refused");
                self.stats.refused.inc();
                cx.session
                    .dead_letter(
                        self.config.names.pulsar_topic(Topic::Retrain),
                        reason,
                        &message.payload.data,
                    )
                    .await?;
                self.requests.ack(&message).await.map_err(pulsar_error)?;
            }
        }
        Ok(Flow::Continue)
    }

    /// A training under way is abandoned; its request, unacknowledged, goes to the next trainer.
    async fn stop(self, _cx: &mut Context) -> Result<(), BrokerError> {
        Ok(())
    }
}

impl RunningTrainer {
    /// A training of `request` on its own copies of what it needs, so it can run beside the
    /// trainer receiving the next requests.
    fn train(&self, request: RetrainRequest) -> Training {
        let (config, store, registry, stats, cancel) = (
            self.config.clone(),
            self.store.clone(),
            self.registry.clone(),
            self.stats.clone(),
            self.cancel.clone(),
        );
        Box::pin(async move { retrain(&config, &store, &registry, &stats, request, &cancel).await })
    }
}

/// A training (or a refusal) under way.
type Training = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A message that is no request, refused in its turn.
async fn refuse(reason: String) -> Outcome {
    Outcome::Refused(reason)
}

/// Trains on the device's latest readings before the request's end, and publishes the model.
async fn retrain(
    config: &TrainerConfig,
    store: &Store,
    registry: &ModelRegistry,
    stats: &TrainerStats,
    request: RetrainRequest,
    cancel: &CancellationToken,
) -> Outcome {
    let limit = config.recipe.training_readings as i64;
    let Some(rows) = retry("reading training data", cancel, || {
        store.values_before(request.device, request.to, limit)
    })
    .await
    else {
        return Outcome::Cancelled;
    };
    let (Some(&(from, _)), Some(&(to, _))) = (rows.first(), rows.last()) else {
        return Outcome::Refused(format!(
            "device {}: no readings stored before {}",
            request.device, request.to
        ));
    };
    let values: Vec<f64> = rows.iter().map(|(_, v)| *v).collect();
    let recipe = config.recipe.clone();
    let trained = tokio::task::spawn_blocking(move || train(&values, &recipe)).await;
    let model = match trained {
        Ok(Ok(model)) => model,
        Ok(Err(error)) => return Outcome::Refused(format!("device {}: {error}", request.device)),
        Err(panic) => {
            return Outcome::Refused(format!("device {}: training panicked: {panic}", request.device));
        }
    };
    stats.train_seconds.observe(model.metrics.train_seconds);
    let version = ModelVersion::Retrained { from, to };
    tracing::info!(device = %request.device, %version, test_rmse = model.metrics.test_rmse, seconds = model.metrics.train_seconds, "retrained");
    let published = retry("publishing a model", cancel, || {
        registry.publish(request.device, version, &model, now_ms())
    })
    .await;
    match published {
        Some(record) => Outcome::Published(ModelAnnouncement {
            device: request.device,
            version: record.version,
            object_prefix: record.object_prefix,
        }),
        None => Outcome::Cancelled,
    }
}
