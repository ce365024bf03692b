//! The trainer on the real services: a request it cannot train on (too few readings, a NaN,
//! malformed JSON) goes to `dead-letter` with the reason and is counted, a good request after
//! them is trained, published and announced, and a device's newer request supersedes the one
//! waiting in line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use futures::StreamExt;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wattcast_core::topics::Topic;
use wattcast_core::wire::{DeadLetter, ModelAnnouncement};
use wattcast_io::object_store::ObjectStore;
use wattcast_io::store::Store;
use wattcast_model::Recipe;
use wattcast_pipeline::model_registry::ModelRegistry;
use wattcast_pipeline::workload::trainer::{TrainerConfig, TrainerStats, run_trainer};

/// Sends each payload on the experiment's `retrain` topic, keyed by nothing (as a test may).
async fn send_requests(names: &wattcast_core::topics::ExperimentNames, payloads: &[&str]) {
    let pulsar = common::reachable(
        "Pulsar",
        wattcast_pipeline::workload::pulsar_client(&common::services().pulsar).await,
    );
    let mut requests = pulsar
        .producer()
        .with_topic(names.pulsar_topic(Topic::Retrain))
        .build()
        .await
        .expect("producer");
    for payload in payloads {
        requests
            .send_non_blocking(payload.as_bytes().to_vec())
            .await
            .expect("send")
            .await
            .expect("confirmed");
    }
}

/// A trainer of the experiment with a quick recipe, its trainings held until `hold` is cancelled.
fn trainer_config(
    names: &wattcast_core::topics::ExperimentNames,
    hold: Option<CancellationToken>,
) -> TrainerConfig {
    TrainerConfig {
        names: names.clone(),
        recipe: Recipe {
            epochs: 3,
            ..Recipe::default()
        },
        pulsar: common::services().pulsar.clone(),
        readiness: Arc::default(),
        hold_trainings: hold,
    }
}

/// Stores `count` readings of `device` from second 1000 on; `nan_at` makes one of them NaN.
async fn store_readings(store: &Store, device: u32, count: i64, nan_at: Option<i64>) {
    let values: Vec<f64> = (1000..1000 + count)
        .map(|t| match nan_at {
            Some(nan) if nan == t => f64::NAN,
            _ => 700.0 + 80.0 * (t as f64 / 9.0).sin(),
        })
        .collect();
    common::store_measured(store, device, 1000, &values).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_requests_are_dead_lettered_and_good_ones_published() {
    let services = common::services();
    let (names, store) = common::fresh_experiment("trainer-refuses").await;
    store_readings(&store, 1, 50, None).await; // too few
    store_readings(&store, 2, 300, Some(1100)).await; // a NaN
    store_readings(&store, 3, 300, None).await; // good
    let objects = ObjectStore::new(&services.s3, "wattcast-test-models");
    let registry = ModelRegistry::new(names.experiment(), objects, store.clone());

    let mut dead_letters = common::consumer(&names, Topic::DeadLetter).await;
    let mut announcements = common::consumer(&names, Topic::Models).await;
    send_requests(
        &names,
        &[
            r#"{"device":1,"from":1000,"to":2000}"#,
            r#"{"device":2,"from":1000,"to":2000}"#,
            "not json",
            r#"{"device":3,"from":1000,"to":2000}"#,
        ],
    )
    .await;

    let stats = Arc::new(TrainerStats::default());
    let cancel = CancellationToken::new();
    let config = trainer_config(&names, None);
    let trainer = tokio::spawn(run_trainer(
        config,
        store.clone(),
        registry.clone(),
        stats.clone(),
        cancel.clone(),
    ));

    let mut reasons = Vec::new();
    for _ in 0..3 {
        let message = common::within(60, "a dead letter from the trainer", dead_letters.next())
            .await
            .expect("stream")
            .expect("message");
        let letter: DeadLetter = serde_json::from_slice(&message.payload.data).expect("a dead letter");
        assert_eq!(letter.stage, "trainer");
        reasons.push(letter.reason);
        dead_letters.ack(&message).await.expect("ack");
    }
    assert_eq!(
        reasons[0],
        "device 1: 50 readings are too few to train on: need at least 122 (look-back 60 + 1 in each half)"
    );
    assert_eq!(
        reasons[1],
        "device 2: reading 100 is NaN: power must be a finite number of watts"
    );
    assert!(reasons[2].starts_with("malformed: "), "{}", reasons[2]);

    let message = common::within(60, "a model announcement", announcements.next())
        .await
        .expect("stream")
        .expect("message");
    let announcement: ModelAnnouncement =
        serde_json::from_slice(&message.payload.data).expect("an announcement");
    assert_eq!(announcement.version, "1000-1299");
    assert_eq!(announcement.object_prefix, "trainer-refuses/3/1000-1299/");
    let loaded = registry
        .load(&announcement.version, &announcement.object_prefix, 60)
        .await
        .expect("loads");
    assert_eq!(loaded.version, "1000-1299");
    assert_eq!(stats.refused.get(), 3);
    assert_eq!(stats.retrains.get(), 1);

    cancel.cancel();
    trainer
        .await
        .expect("trainer task")
        .expect("trainer stops cleanly");
    registry
        .objects()
        .delete_prefix("trainer-refuses/")
        .await
        .expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_request_supersedes_the_one_waiting_for_the_device() {
    let services = common::services();
    let (names, store) = common::fresh_experiment("trainer-supersedes").await;
    store_readings(&store, 1, 400, None).await;
    store_readings(&store, 2, 300, None).await;
    let objects = ObjectStore::new(&services.s3, "wattcast-test-models");
    let registry = ModelRegistry::new(names.experiment(), objects, store.clone());
    let mut announcements = common::consumer(&names, Topic::Models).await;
    send_requests(
        &names,
        &[
            r#"{"device":1,"from":1000,"to":1200}"#,
            r#"{"device":2,"from":1000,"to":1300}"#,
            r#"{"device":1,"from":1000,"to":1300}"#,
            r#"{"device":1,"from":1000,"to":1400}"#,
        ],
    )
    .await;

    // Held: the trainer receives all four and queues them before it trains any.
    let stats = Arc::new(TrainerStats::default());
    let (cancel, hold) = (CancellationToken::new(), CancellationToken::new());
    let trainer = tokio::spawn(run_trainer(
        trainer_config(&names, Some(hold.clone())),
        store.clone(),
        registry.clone(),
        stats.clone(),
        cancel.clone(),
    ));
    common::within(60, "the trainer queueing the four requests", async {
        while stats.superseded.get() + (stats.waiting.get() as u64) < 4 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(stats.superseded.get(), 2, "device 1's two older requests");
    assert_eq!(stats.waiting.get(), 2, "one request per device");
    hold.cancel();

    let mut versions = Vec::new();
    for _ in 0..2 {
        let message = common::within(120, "a model announcement", announcements.next())
            .await
            .expect("stream")
            .expect("message");
        let announcement: ModelAnnouncement =
            serde_json::from_slice(&message.payload.data).expect("an announcement");
        versions.push((announcement.device.0, announcement.version));
        announcements.ack(&message).await.expect("ack");
    }
    // Device 1 waited first, and is trained on its newest request's data (up to 1400).
    assert_eq!(
        versions,
        [(1, "1000-1399".to_owned()), (2, "1000-1299".to_owned())]
    );
    assert_eq!(stats.retrains.get(), 2);
    assert_eq!(stats.waiting.get(), 0);
    let models: Vec<(i32, String)> = sqlx::query_as("SELECT device, version FROM models ORDER BY device")
        .fetch_all(store.pool())
        .await
        .expect("the models table");
    let expected = [(1, "1000-1399".to_owned()), (2, "1000-1299".to_owned())];
    assert_eq!(models, expected, "no model of the superseded requests");

    cancel.cancel();
    trainer
        .await
        .expect("trainer task")
        .expect("trainer stops cleanly");
    registry
        .objects()
        .delete_prefix("trainer-supersedes/")
        .await
        .expect("clean up");
}
