//! `wattcast coordinator`: consumes `windows` and `late`; per window it fills missing seconds,
//! stores the window and its readings idempotently (the windows that have arrived together in
//! one transaction, retried while PostgreSQL is away, so nothing is lost), forecasts the next seconds with the device's model, and asks for a
//! retrain every `retrain_every` of event time; announced models are swapped in between
//! windows, so none is dropped.

use super::error::{BrokerError, pulsar_error};
use super::forecasting::Forecasting;
use super::runner::{self, Context, Flow, Placement, Running, Workload};
use super::session::Subscription;
use super::{now_ms, retry};
use futures::{FutureExt, StreamExt};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use pulsar::consumer::Message;
use pulsar::{Consumer, Producer, TokioExecutor};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wattcast_core::imputation::{FilledPoint, ImputationMethod, impute};
use wattcast_core::reading::DeviceId;
use wattcast_core::topics::{ExperimentNames, Topic};
use wattcast_core::wire::{LateMessage, ModelAnnouncement, RetrainRequest, WindowMessage};
use wattcast_io::observe::Readiness;
use wattcast_io::services::PulsarEndpoint;
use wattcast_io::store::Store;

/// What the coordinator needs.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Topic names.
    pub names: ExperimentNames,
    /// How missing seconds are filled.
    pub imputation: ImputationMethod,
    /// Ask for a retrain after this much event time per device (seconds); `None`: never
    /// (`spec.forecasting.retrain: Never`).
    pub retrain_every_s: Option<i64>,
    /// Readings a retrain uses (the original: the latest 600).
    pub retrain_readings: i64,
    /// Pulsar (its broker is what this workload uses).
    pub pulsar: PulsarEndpoint,
    /// Set once consuming.
    pub readiness: Arc<Readiness>,
}

/// Readings a retrain uses: the latest 600, as the original did.
pub const RETRAIN_READINGS: i64 = 600;

impl CoordinatorConfig {
    /// The coordinator an experiment's spec asks for, in local mode and pods alike.
    pub fn from_spec(
        names: ExperimentNames,
        spec: &wattcast_crds::PipelineExperimentSpec,
        pulsar: PulsarEndpoint,
        readiness: Arc<Readiness>,
    ) -> Self {
        Self {
            names,
            imputation: wattcast_core::experiment::imputation(spec),
            retrain_every_s: match spec.forecasting.retrain {
                wattcast_crds::Retrain::Every => Some(spec.forecasting.retrain_every.get().as_secs() as i64),
                wattcast_crds::Retrain::Never => None,
            },
            retrain_readings: RETRAIN_READINGS,
            pulsar,
            readiness,
        }
    }
}

/// Running counts.
#[derive(Debug)]
pub struct CoordinatorStats {
    /// Windows stored.
    pub windows: Counter,
    /// Late readings stored.
    pub late: Counter,
    /// Retrain requests sent.
    pub retrain_requests: Counter,
    /// Windows that could not be used (dead-lettered).
    pub dead_letters: Counter,
    /// Store attempts that failed and were retried.
    pub store_retries: Counter,
    /// Measured readings in stored windows (with `readings_expected`: the coverage).
    pub readings_received: Counter,
    /// Readings the stored windows should have held.
    pub readings_expected: Counter,
    /// Sensor publish → stored, seconds, per measured reading.
    pub reading_latency: Histogram,
    /// |forecast − measured|, watts, per forecast second once its reading is stored.
    pub forecast_abs_error: Histogram,
}

impl Default for CoordinatorStats {
    fn default() -> Self {
        Self {
            windows: Counter::default(),
            late: Counter::default(),
            retrain_requests: Counter::default(),
            dead_letters: Counter::default(),
            store_retries: Counter::default(),
            readings_received: Counter::default(),
            readings_expected: Counter::default(),
            reading_latency: Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0]),
            forecast_abs_error: Histogram::new([1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0]),
        }
    }
}

impl CoordinatorStats {
    /// Registers the counters as `wattcast_coordinator_<name>_total`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wattcast_coordinator_windows",
            "Windows stored",
            self.windows.clone(),
        );
        registry.register(
            "wattcast_coordinator_late",
            "Late readings stored",
            self.late.clone(),
        );
        registry.register(
            "wattcast_coordinator_retrain_requests",
            "Retrain requests sent",
            self.retrain_requests.clone(),
        );
        registry.register(
            "wattcast_coordinator_dead_letters",
            "Messages sent to dead-letter",
            self.dead_letters.clone(),
        );
        registry.register(
            "wattcast_coordinator_store_retries",
            "Failed store attempts that were retried",
            self.store_retries.clone(),
        );
        registry.register(
            "wattcast_coordinator_readings_received",
            "Measured readings in stored windows",
            self.readings_received.clone(),
        );
        registry.register(
            "wattcast_coordinator_readings_expected",
            "Readings the stored windows should have held",
            self.readings_expected.clone(),
        );
        registry.register(
            "wattcast_coordinator_reading_latency_seconds",
            "Sensor publish to stored, per measured reading",
            self.reading_latency.clone(),
        );
        registry.register(
            "wattcast_coordinator_forecast_abs_error_watts",
            "Absolute forecast error per forecast second, once its reading is stored",
            self.forecast_abs_error.clone(),
        );
    }
}

/// Counts a stored window's readings and their publish → stored latency.
fn record_window(stats: &CoordinatorStats, window: &WindowMessage, stored_ms: i64) {
    stats
        .readings_received
        .inc_by(window.window.readings.len() as u64);
    stats.readings_expected.inc_by(u64::from(window.window.expected));
    for published in window
        .window
        .readings
        .iter()
        .filter_map(|reading| reading.published_ms)
    {
        stats
            .reading_latency
            .observe((stored_ms - published).max(0) as f64 / 1000.0);
    }
}

/// Windows taken from the subscription at once at most: what has arrived is stored in one
/// transaction, so a burst of windows closing together costs a few round trips, not one per window.
const MAX_WINDOWS_PER_BATCH: usize = 512;

/// Transactions a batch is split into, by device, and stored at once: PostgreSQL runs each on
/// one core, so one transaction at a time left the others idle while windows queued.
const STORE_PARTS: u32 = 4;

/// Stores a batch as [`STORE_PARTS`] concurrent transactions, each holding whole devices (so no
/// two touch the same rows). If one fails the batch is retried whole, which is harmless: the
/// stores are idempotent.
async fn store_in_parts(
    store: &Store,
    items: &[(&WindowMessage, &[FilledPoint])],
    stored_ms: i64,
) -> Result<(), wattcast_io::store::StoreError> {
    let mut parts: Vec<Vec<(&WindowMessage, &[FilledPoint])>> = vec![Vec::new(); STORE_PARTS as usize];
    for &item in items {
        parts[(item.0.window.device.0 % STORE_PARTS) as usize].push(item);
    }
    futures::future::try_join_all(
        parts
            .iter()
            .filter(|part| !part.is_empty())
            .map(|part| store.store_windows(part, stored_ms)),
    )
    .await?;
    Ok(())
}

/// A window message and its filled seconds, or why it cannot be used.
fn parse_window(
    payload: &[u8],
    imputation: ImputationMethod,
) -> Result<(WindowMessage, Vec<FilledPoint>), String> {
    let window = serde_json::from_slice::<WindowMessage>(payload).map_err(|error| error.to_string())?;
    let filled = impute(&window.window, imputation).map_err(|error| error.to_string())?;
    Ok((window, filled))
}

/// Runs until cancelled; forecasts when given `forecasting` (without it, or before a device has
/// a model, windows are stored and not forecast).
pub async fn run_coordinator(
    config: CoordinatorConfig,
    store: Store,
    forecasting: Option<Forecasting>,
    stats: Arc<CoordinatorStats>,
    cancel: CancellationToken,
) -> Result<(), BrokerError> {
    let placement = Placement::of(&config.names, &config.pulsar, &config.readiness);
    let coordinator = Coordinator {
        config,
        store,
        forecasting,
        stats,
    };
    runner::run(coordinator, placement, cancel).await
}

/// The coordinator before it runs.
struct Coordinator {
    config: CoordinatorConfig,
    store: Store,
    forecasting: Option<Forecasting>,
    stats: Arc<CoordinatorStats>,
}

/// The running coordinator: its consumers, its retrain producer and each device's retrain clock.
struct RunningCoordinator {
    config: CoordinatorConfig,
    store: Store,
    forecasting: Option<Forecasting>,
    stats: Arc<CoordinatorStats>,
    windows: Consumer<Vec<u8>, TokioExecutor>,
    late: Consumer<Vec<u8>, TokioExecutor>,
    announcements: Consumer<Vec<u8>, TokioExecutor>,
    retrain: Producer<TokioExecutor>,
    /// Per device: the event time up to which a retrain was last requested (restored from the
    /// store at first sight, so a restart keeps the schedule).
    retrained_until: HashMap<DeviceId, i64>,
}

/// What the coordinator waits for.
enum CoordinatorEvent {
    /// Windows that arrived together; `ended` when the stream ended after them.
    Windows {
        batch: Vec<Message<Vec<u8>>>,
        ended: bool,
    },
    /// A late reading.
    Late(Message<Vec<u8>>),
    /// A model announcement.
    Announcement(Message<Vec<u8>>),
}

impl Workload for Coordinator {
    const NAME: &'static str = "coordinator";
    type Running = RunningCoordinator;

    async fn start(self, cx: &mut Context) -> Result<RunningCoordinator, BrokerError> {
        let Self {
            config,
            store,
            forecasting,
            stats,
        } = self;
        Ok(RunningCoordinator {
            windows: cx.session.subscribe(Topic::Windows, Subscription::Shared).await?,
            late: cx.session.subscribe(Topic::Late, Subscription::Shared).await?,
            // Every replica hears every announcement (its own subscription from now on);
            // models announced before it started are found in the `models` table.
            announcements: cx.session.subscribe(Topic::Models, Subscription::Private).await?,
            retrain: cx.session.producer(Topic::Retrain).await?,
            retrained_until: HashMap::new(),
            config,
            store,
            forecasting,
            stats,
        })
    }
}

impl Running for RunningCoordinator {
    type Event = CoordinatorEvent;
    type Error = BrokerError;

    async fn next_event(&mut self) -> Result<CoordinatorEvent, BrokerError> {
        tokio::select! {
            message = self.windows.next() => {
                let Some(message) = message else { return Err(BrokerError::StreamEnded) };
                let mut batch = vec![message.map_err(pulsar_error)?];
                // Whatever has already arrived joins the batch, without waiting for more.
                let mut ended = false;
                while batch.len() < MAX_WINDOWS_PER_BATCH {
                    match self.windows.next().now_or_never() {
                        Some(Some(message)) => batch.push(message.map_err(pulsar_error)?),
                        Some(None) => {
                            ended = true;
                            break;
                        }
                        None => break,
                    }
                }
                Ok(CoordinatorEvent::Windows { batch, ended })
            }
            message = self.announcements.next() => match message {
                Some(message) => Ok(CoordinatorEvent::Announcement(message.map_err(pulsar_error)?)),
                None => Err(BrokerError::StreamEnded),
            },
            message = self.late.next() => match message {
                Some(message) => Ok(CoordinatorEvent::Late(message.map_err(pulsar_error)?)),
                None => Err(BrokerError::StreamEnded),
            },
        }
    }

    async fn on_event(&mut self, event: CoordinatorEvent, cx: &mut Context) -> Result<Flow, BrokerError> {
        match event {
            CoordinatorEvent::Windows { batch, ended } => self.on_windows(batch, ended, cx).await,
            CoordinatorEvent::Announcement(message) => {
                match serde_json::from_slice::<ModelAnnouncement>(&message.payload.data) {
                    Ok(announcement) => {
                        if let Some(forecasting) = self.forecasting.as_mut() {
                            forecasting.swap(&announcement).await;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "malformed model announcement ignored"),
                }
                self.announcements.ack(&message).await.map_err(pulsar_error)?;
                Ok(Flow::Continue)
            }
            CoordinatorEvent::Late(message) => {
                match serde_json::from_slice::<LateMessage>(&message.payload.data) {
                    Ok(reading) => {
                        let store = &self.store;
                        let stored = retry("storing a late reading", &cx.cancel, || {
                            store.store_late(&reading, now_ms())
                        })
                        .await;
                        if stored.is_none() {
                            return Ok(Flow::Stop);
                        }
                        self.stats.late.inc();
                    }
                    Err(error) => {
                        self.stats.dead_letters.inc();
                        cx.session
                            .dead_letter(
                                self.config.names.pulsar_topic(Topic::Late),
                                format!("malformed: {error}"),
                                &message.payload.data,
                            )
                            .await?;
                    }
                }
                self.late.ack(&message).await.map_err(pulsar_error)?;
                Ok(Flow::Continue)
            }
        }
    }

    /// This replica's announcement subscription would otherwise outlive it.
    async fn stop(mut self, _cx: &mut Context) -> Result<(), BrokerError> {
        if let Err(error) = self.announcements.unsubscribe().await {
            tracing::warn!(%error, "leaving the model announcements subscription failed");
        }
        Ok(())
    }
}

impl RunningCoordinator {
    /// Stores a batch of windows, forecasts from them, asks for retrains that are due, and
    /// acknowledges the batch. Cancelled while storing, nothing is acknowledged: the windows
    /// are redelivered, and what was stored is stored idempotently.
    async fn on_windows(
        &mut self,
        batch: Vec<Message<Vec<u8>>>,
        ended: bool,
        cx: &mut Context,
    ) -> Result<Flow, BrokerError> {
        let (config, stats) = (&self.config, &self.stats);
        let mut usable = Vec::with_capacity(batch.len());
        for message in &batch {
            match parse_window(&message.payload.data, config.imputation) {
                Ok(parsed) => usable.push(parsed),
                Err(reason) => {
                    stats.dead_letters.inc();
                    cx.session
                        .dead_letter(
                            config.names.pulsar_topic(Topic::Windows),
                            reason,
                            &message.payload.data,
                        )
                        .await?;
                }
            }
        }
        let items: Vec<(&WindowMessage, &[FilledPoint])> = usable
            .iter()
            .map(|(window, filled)| (window, filled.as_slice()))
            .collect();
        let store = &self.store;
        let stored = retry("storing windows", &cx.cancel, || {
            let result = store_in_parts(store, &items, now_ms());
            async {
                let result = result.await;
                if result.is_err() {
                    stats.store_retries.inc();
                }
                result
            }
        })
        .await;
        if stored.is_none() {
            return Ok(Flow::Stop);
        }
        let stored_ms = now_ms();
        if let Some(forecasting) = self.forecasting.as_mut() {
            forecasting
                .check_models(usable.iter().map(|(window, _)| window.window.device))
                .await;
        }
        for (window, _) in &usable {
            stats.windows.inc();
            record_window(stats, window, stored_ms);
            let device = window.window.device;
            // Scored from the forecast in memory, before the next one replaces it.
            if let Some(forecasting) = self.forecasting.as_ref() {
                for error in forecasting.errors_against(&window.window) {
                    stats.forecast_abs_error.observe(error.abs());
                }
            }
            if let Some(forecasting) = self.forecasting.as_mut()
                && forecasting
                    .after_window(store, device, window.window.end, &cx.cancel)
                    .await
                    .is_none()
            {
                return Ok(Flow::Stop);
            }
            // Never retrained (`retrain: Never`): no clock to keep, no request.
            let Some(every) = config.retrain_every_s else {
                continue;
            };
            let until = match self.retrained_until.get(&device) {
                Some(until) => *until,
                None => {
                    // First sight since this process started: where the clock stood.
                    let until = restored_retrain_clock(store, device)
                        .await
                        .unwrap_or(window.window.start);
                    self.retrained_until.insert(device, until);
                    until
                }
            };
            if window.window.end - until >= every {
                let request = RetrainRequest {
                    device,
                    from: window.window.end - config.retrain_readings,
                    to: window.window.end,
                };
                let payload = serde_json::to_vec(&request).map_err(pulsar_error)?;
                self.retrain
                    .create_message()
                    .with_content(payload)
                    .with_key(device.to_string())
                    .send_non_blocking()
                    .await
                    .map_err(pulsar_error)?
                    .await
                    .map_err(pulsar_error)?;
                self.retrained_until.insert(device, window.window.end);
                stats.retrain_requests.inc();
                // Kept for a restart; a request sent but not recorded is sent again then.
                if let Err(error) = store.record_retrain_request(device, window.window.end).await {
                    tracing::warn!(%error, device = device.0, "cannot record the retrain request");
                }
            }
        }
        for message in &batch {
            self.windows.ack(message).await.map_err(pulsar_error)?;
        }
        if ended {
            return Err(BrokerError::StreamEnded);
        }
        Ok(Flow::Continue)
    }
}

/// The device's retrain clock as the store has it, or `None` (logged) when it cannot be read.
async fn restored_retrain_clock(store: &Store, device: DeviceId) -> Option<i64> {
    match store.retrain_clock(device).await {
        Ok(until) => until,
        Err(error) => {
            tracing::warn!(%error, device = device.0, "cannot read the retrain clock; starting it at this window");
            None
        }
    }
}
