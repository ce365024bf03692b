//! The trainer on the real services: a request it cannot train on (too few readings, a NaN,
//! malformed JSON) goes to `dead-letter` with the reason and is counted, and a good request after
//! them is trained, published and announced.

mod common;

use futures::StreamExt;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wattcast::model::Recipe;
use wattcast::model_registry::ModelRegistry;
use wattcast::object_store::ObjectStore;
use wattcast::store::Store;
use wattcast::wire::{DeadLetter, ModelAnnouncement};
use wattcast::workload::trainer::{TrainerConfig, TrainerStats, run_trainer};

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

    let mut dead_letters = common::consumer(&names, "dead-letter").await;
    let mut announcements = common::consumer(&names, "models").await;
    let pulsar = common::reachable(
        "Pulsar",
        wattcast::workload::pulsar_client(&services.pulsar).await,
    );
    let mut requests = pulsar
        .producer()
        .with_topic(names.pulsar_topic("retrain"))
        .build()
        .await
        .expect("producer");
    for payload in [
        r#"{"device":1,"from":1000,"to":2000}"#,
        r#"{"device":2,"from":1000,"to":2000}"#,
        "not json",
        r#"{"device":3,"from":1000,"to":2000}"#,
    ] {
        requests
            .send_non_blocking(payload.as_bytes().to_vec())
            .await
            .expect("send")
            .await
            .expect("confirmed");
    }

    let stats = Arc::new(TrainerStats::default());
    let cancel = CancellationToken::new();
    let config = TrainerConfig {
        names: names.clone(),
        recipe: Recipe {
            epochs: 3,
            ..Recipe::default()
        },
        pulsar: services.pulsar.clone(),
        readiness: Arc::default(),
    };
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
