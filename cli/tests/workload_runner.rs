//! The workload runner on the real Pulsar, with a small workload of the test's own: it connects,
//! starts the workload, says ready, hands it each message and tick in turn, lets a hook
//! dead-letter through the session or stop the run, and calls the stop hook whether a hook or
//! a cancellation ended it. Cancelled before Pulsar answers, the workload never starts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use futures::StreamExt;
use pulsar::consumer::Message;
use pulsar::{Consumer, TokioExecutor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wattcast_core::topics::{ExperimentNames, Topic};
use wattcast_core::wire::DeadLetter;
use wattcast_io::observe::Readiness;
use wattcast_io::services::PulsarEndpoint;
use wattcast_pipeline::workload::error::{BrokerError, pulsar_error};
use wattcast_pipeline::workload::runner::{self, Context, Flow, Placement, Running, Workload};
use wattcast_pipeline::workload::session::Subscription;

/// What the test workload saw, in order, and how many ticks it had.
#[derive(Debug, Default)]
struct Seen {
    hooks: Mutex<Vec<String>>,
    ticks: AtomicU64,
}

impl Seen {
    fn push(&self, hook: impl Into<String>) {
        self.hooks.lock().unwrap().push(hook.into());
    }

    fn hooks(&self) -> Vec<String> {
        self.hooks.lock().unwrap().clone()
    }
}

/// Records every hook; a message `bad` is dead-lettered, `stop` stops the workload.
struct Recorder(Arc<Seen>);

struct RunningRecorder {
    seen: Arc<Seen>,
    readings: Consumer<Vec<u8>, TokioExecutor>,
}

impl Workload for Recorder {
    const NAME: &'static str = "runner-test";
    type Running = RunningRecorder;

    async fn start(self, cx: &mut Context) -> Result<RunningRecorder, BrokerError> {
        self.0.push("start");
        let readings = cx
            .session
            .subscribe(Topic::Readings, Subscription::Shared)
            .await?;
        Ok(RunningRecorder {
            seen: self.0,
            readings,
        })
    }
}

impl Running for RunningRecorder {
    type Event = Message<Vec<u8>>;
    type Error = BrokerError;
    const TICK: Option<Duration> = Some(Duration::from_millis(50));

    async fn next_event(&mut self) -> Result<Message<Vec<u8>>, BrokerError> {
        match self.readings.next().await {
            Some(message) => message.map_err(pulsar_error),
            None => Err(BrokerError::StreamEnded),
        }
    }

    async fn on_event(&mut self, message: Message<Vec<u8>>, cx: &mut Context) -> Result<Flow, BrokerError> {
        let text = String::from_utf8_lossy(&message.payload.data).into_owned();
        self.readings.ack(&message).await.map_err(pulsar_error)?;
        match text.as_str() {
            "bad" => {
                cx.session
                    .dead_letter("readings", "the test says so", &message.payload.data)
                    .await?;
                self.seen.push("dead-lettered bad");
                Ok(Flow::Continue)
            }
            "stop" => {
                self.seen.push("asked to stop");
                Ok(Flow::Stop)
            }
            _ => {
                self.seen.push(format!("message {text}"));
                Ok(Flow::Continue)
            }
        }
    }

    async fn on_tick(&mut self, _cx: &mut Context) -> Result<Flow, BrokerError> {
        self.seen.ticks.fetch_add(1, Ordering::SeqCst);
        Ok(Flow::Continue)
    }

    async fn stop(self, _cx: &mut Context) -> Result<(), BrokerError> {
        self.seen.push("stop");
        Ok(())
    }
}

/// Sends each payload to the experiment's `readings`, keyed by one device.
async fn send(names: &ExperimentNames, payloads: &[&str]) {
    let pulsar = common::reachable(
        "Pulsar",
        wattcast_pipeline::workload::pulsar_client(&common::services().pulsar).await,
    );
    let mut producer = pulsar
        .producer()
        .with_topic(names.pulsar_topic(Topic::Readings))
        .build()
        .await
        .expect("producer");
    for payload in payloads {
        producer
            .create_message()
            .with_content(payload.as_bytes().to_vec())
            .with_key("1")
            .send_non_blocking()
            .await
            .expect("send")
            .await
            .expect("confirmed");
    }
}

/// Waits (at most 30 s, naming `what`) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    common::within(30, what, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// The recorder started on a fresh experiment, with its readiness and the task that runs it.
async fn started(
    name: &str,
    cancel: &CancellationToken,
) -> (
    ExperimentNames,
    common::Cleanup,
    Arc<Seen>,
    tokio::task::JoinHandle<Result<(), BrokerError>>,
) {
    let (names, _store) = common::fresh_experiment(&common::unique(name)).await;
    let cleanup = common::Cleanup::experiment(&names);
    let seen = Arc::new(Seen::default());
    let readiness = Arc::new(Readiness::default());
    let placement = Placement::of(&names, &common::services().pulsar, &readiness);
    let run = tokio::spawn(runner::run(Recorder(seen.clone()), placement, cancel.clone()));
    until("the runner to set the workload ready", || readiness.is_ready()).await;
    assert_eq!(seen.hooks(), ["start"], "ready once started, before any event");
    (names, cleanup, seen, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_in_order_and_a_hook_can_stop_the_workload() {
    let cancel = CancellationToken::new();
    let (names, _cleanup, seen, run) = started("runner-order", &cancel).await;
    let mut dead_letters = common::consumer(&names, Topic::DeadLetter).await;

    let ticks = seen.ticks.load(Ordering::SeqCst);
    until("two more ticks", || {
        seen.ticks.load(Ordering::SeqCst) >= ticks + 2
    })
    .await;
    send(&names, &["a", "bad", "b", "stop", "after the stop"]).await;
    common::within(30, "the workload to stop itself", run)
        .await
        .expect("the run's task")
        .expect("the run ends without error");

    assert_eq!(
        seen.hooks(),
        [
            "start",
            "message a",
            "dead-lettered bad",
            "message b",
            "asked to stop",
            "stop"
        ],
        "each message handled in order, nothing after the stop, and the stop hook last"
    );
    assert!(!cancel.is_cancelled(), "a hook, not a cancellation, stopped it");

    let letter = common::within(30, "Pulsar's dead-letter topic", dead_letters.next())
        .await
        .expect("a dead letter")
        .expect("a message");
    let letter: DeadLetter = serde_json::from_slice(&letter.payload.data).expect("a dead-letter envelope");
    assert_eq!(letter.stage, "runner-test", "{letter:?}");
    assert_eq!(letter.reason, "the test says so", "{letter:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_workload_is_stopped_through_its_stop_hook() {
    let cancel = CancellationToken::new();
    let (names, _cleanup, seen, run) = started("runner-cancel", &cancel).await;
    send(&names, &["a"]).await;
    until("the message to be handled", || seen.hooks().len() == 2).await;
    cancel.cancel();
    common::within(30, "the workload to stop when cancelled", run)
        .await
        .expect("the run's task")
        .expect("the run ends without error");
    assert_eq!(seen.hooks(), ["start", "message a", "stop"]);
}

#[tokio::test]
async fn cancelled_before_pulsar_answers_the_workload_never_starts() {
    let seen = Arc::new(Seen::default());
    let readiness = Arc::new(Readiness::default());
    let nowhere = PulsarEndpoint {
        url: "pulsar://127.0.0.1:1".to_owned(),
        ..common::services().pulsar
    };
    let names = ExperimentNames::new("runner-nowhere").expect("a valid name");
    let cancel = CancellationToken::new();
    let run = tokio::spawn(runner::run(
        Recorder(seen.clone()),
        Placement::of(&names, &nowhere, &readiness),
        cancel.clone(),
    ));
    // A refused connection is retried; the cancellation ends the retries.
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    common::within(30, "the runner to give up when cancelled", run)
        .await
        .expect("the run's task")
        .expect("cancelled while connecting is no error");
    assert!(seen.hooks().is_empty(), "started: {:?}", seen.hooks());
    assert!(!readiness.is_ready());
}
