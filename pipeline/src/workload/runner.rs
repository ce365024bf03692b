//! The loop every Pulsar workload runs, written once: connect with retry, start, say ready, react
//! to events and ticks until cancelled (or a hook says stop), then stop gracefully.
//!
//! A workload is two types. The [`Workload`] is what it needs before it runs (its configuration
//! and counters); [`Workload::start`] opens its subscriptions and producers on the connected
//! session and returns the [`Running`] workload, which holds them. The runner owns the rest:
//! the Pulsar session (and with it the dead-letter producer), cancellation, the readiness the
//! probe reads, the tick, and the order in which the hooks are called.

use super::error::BrokerError;
use super::session::BrokerSession;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Interval;
use tokio_util::sync::CancellationToken;
use wattcast_core::topics::ExperimentNames;
use wattcast_io::observe::Readiness;
use wattcast_io::services::PulsarEndpoint;

/// Where a workload runs: the experiment's topic names, its Pulsar, and the readiness its
/// probe (or `wattcast local`) reads.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The experiment's names.
    pub names: ExperimentNames,
    /// The experiment's Pulsar.
    pub pulsar: PulsarEndpoint,
    /// Set when the workload is consuming (see [`Workload::READY_WHEN_STARTED`]).
    pub readiness: Arc<Readiness>,
}

impl Placement {
    /// The placement of a workload configured with these.
    pub fn of(names: &ExperimentNames, pulsar: &PulsarEndpoint, readiness: &Arc<Readiness>) -> Self {
        Self {
            names: names.clone(),
            pulsar: pulsar.clone(),
            readiness: readiness.clone(),
        }
    }
}

/// What a running workload's hooks get besides their own state.
pub struct Context {
    /// The workload's Pulsar session: subscriptions, producers and dead letters.
    pub session: BrokerSession,
    /// Fires when the workload is asked to stop. The runner races [`Running::next_event`]
    /// against it, never a hook; a hook that waits long (a retry, a backoff) races it itself.
    pub cancel: CancellationToken,
    /// What the readiness probe reads, for a workload that is ready on its own terms.
    pub readiness: Arc<Readiness>,
}

/// Whether a workload goes on after a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Wait for the next event.
    Continue,
    /// Stop as if cancelled (the hook saw the cancellation, or the work is done).
    Stop,
}

/// A workload before it runs: what it needs, and how it starts.
pub trait Workload: Send {
    /// Its name: its shared subscription's and its consumers' names, its dead letters' source.
    const NAME: &'static str;
    /// Whether the runner sets it ready once started. The bridge says `false`: it is ready when
    /// its MQTT subscription is acknowledged, and sets [`Context::readiness`] itself.
    const READY_WHEN_STARTED: bool = true;
    /// The workload once started.
    type Running: Running;

    /// Opens its subscriptions and producers on the connected session.
    fn start(
        self,
        cx: &mut Context,
    ) -> impl Future<Output = Result<Self::Running, <Self::Running as Running>::Error>> + Send;
}

/// A started workload: it waits for events, handles them, ticks, and stops.
pub trait Running: Send + Sized {
    /// One thing that happened: a message, a receipt, a finished training.
    type Event: Send;
    /// Why it stopped; a failed Pulsar session is one reason.
    type Error: From<BrokerError> + Send;
    /// How often [`Running::on_tick`] runs (none: never).
    const TICK: Option<Duration> = None;

    /// Waits for the next event. Must be cancel-safe: the runner drops it when cancelled or
    /// when the tick comes first, so state it changes before its last await must not be lost.
    fn next_event(&mut self) -> impl Future<Output = Result<Self::Event, Self::Error>> + Send;

    /// Handles one event (never interrupted by the runner).
    fn on_event(
        &mut self,
        event: Self::Event,
        cx: &mut Context,
    ) -> impl Future<Output = Result<Flow, Self::Error>> + Send;

    /// Runs every [`Running::TICK`] (never interrupted by the runner).
    fn on_tick(&mut self, cx: &mut Context) -> impl Future<Output = Result<Flow, Self::Error>> + Send {
        let _ = cx;
        async { Ok(Flow::Continue) }
    }

    /// Stops gracefully: what is in flight is finished or handed back, for a while.
    fn stop(self, cx: &mut Context) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The error a workload `W` stops with.
pub type ErrorOf<W> = <<W as Workload>::Running as Running>::Error;

/// Runs `workload` at `placement` until `cancel` fires or a hook says stop, then stops it.
/// Connecting is retried until it works; cancelled before that, the workload never starts.
pub async fn run<W: Workload>(
    workload: W,
    placement: Placement,
    cancel: CancellationToken,
) -> Result<(), ErrorOf<W>> {
    let Placement {
        names,
        pulsar,
        readiness,
    } = placement;
    let Some(session) = BrokerSession::connect(W::NAME, &names, &pulsar, &cancel).await? else {
        return Ok(());
    };
    let mut cx = Context {
        session,
        cancel,
        readiness,
    };
    let mut running = workload.start(&mut cx).await?;
    if W::READY_WHEN_STARTED {
        cx.readiness.set(true);
    }
    let mut tick = <W::Running as Running>::TICK.map(tokio::time::interval);
    loop {
        let flow = tokio::select! {
            () = cx.cancel.cancelled() => Flow::Stop,
            () = next_tick(&mut tick) => running.on_tick(&mut cx).await?,
            event = running.next_event() => running.on_event(event?, &mut cx).await?,
        };
        if flow == Flow::Stop {
            break;
        }
    }
    running.stop(&mut cx).await
}

/// The next tick, or never without one.
async fn next_tick(tick: &mut Option<Interval>) {
    match tick {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}
