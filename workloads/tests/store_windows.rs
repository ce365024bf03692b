//! Storing the windows that arrived together in one transaction leaves PostgreSQL exactly as
//! storing them one by one does, including a window delivered twice in the same batch and a
//! redelivery that replaces an imputed second with its measured reading.

mod common;

use wattcast::imputation::{ImputationMethod, impute};
use wattcast::store::Store;
use wattcast::wire::WindowMessage;
use wattcast::{DeviceId, Reading, Window};

/// A 10-second window of `device` starting at `start` holding the readings of `seconds`.
fn window(device: u32, start: i64, seconds: &[i64]) -> WindowMessage {
    WindowMessage {
        window: Window {
            device: DeviceId(device),
            start,
            end: start + 10,
            readings: seconds
                .iter()
                .map(|&second| Reading {
                    device: DeviceId(device),
                    event_time: start + second,
                    power_w: 100.0 * f64::from(device) + second as f64,
                    published_ms: Some(1_000 * (start + second)),
                })
                .collect(),
            expected: 10,
            late: 0,
        },
        emitted_ms: 7,
    }
}

async fn empty_store(name: &str) -> Store {
    let schema = common::unique(name).replace('-', "_");
    let store = common::reachable(
        "PostgreSQL",
        Store::connect(&common::services().postgres_url, &schema, 2).await,
    );
    store.migrate().await.expect("the schema migrated");
    store
}

type Rows = (
    Vec<(i32, i64, f64, bool, Option<i64>)>,
    Vec<(i32, i64, i64, i32, i32, i64)>,
);

async fn contents(store: &Store) -> Rows {
    let readings = sqlx::query_as(
        "SELECT device, event_time, power_w, imputed, published_ms FROM readings ORDER BY device, event_time",
    )
    .fetch_all(store.pool())
    .await
    .expect("readings");
    let windows = sqlx::query_as(
        "SELECT device, window_start, window_end, received, expected, emitted_ms FROM windows
         ORDER BY device, window_start",
    )
    .fetch_all(store.pool())
    .await
    .expect("windows");
    (readings, windows)
}

#[tokio::test]
async fn a_batch_stores_what_storing_one_by_one_stores() {
    let messages = [
        window(1, 0, &[0, 1, 3, 4, 5, 6, 7, 8, 9]), // second 2 missing: imputed
        window(2, 0, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        window(1, 10, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        window(1, 0, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), // redelivered, now with second 2
        window(3, 0, &[5]),
    ];
    let filled: Vec<_> = messages
        .iter()
        .map(|message| impute(&message.window, ImputationMethod::Mean).expect("fills"))
        .collect();
    let items: Vec<(&WindowMessage, &[_])> = messages
        .iter()
        .zip(&filled)
        .map(|(m, f)| (m, f.as_slice()))
        .collect();

    let one_by_one = empty_store("windows-one-by-one").await;
    for (message, filled) in &items {
        one_by_one
            .store_window(message, filled, 42)
            .await
            .expect("stores a window");
    }
    let batched = empty_store("windows-batched").await;
    batched.store_windows(&items, 42).await.expect("stores the batch");
    // Delivered again as a whole batch: nothing changes.
    batched
        .store_windows(&items, 43)
        .await
        .expect("stores the batch again");

    let (readings, windows) = contents(&batched).await;
    assert_eq!((readings.clone(), windows.clone()), contents(&one_by_one).await);
    assert_eq!(readings.len(), 40, "four windows of ten seconds");
    assert!(
        readings.iter().filter(|r| r.0 == 1).all(|r| !r.3),
        "the measured second 2 replaced its filler"
    );
    assert_eq!(
        readings.iter().filter(|r| r.3).count(),
        9,
        "device 3's nine fillers"
    );
    assert_eq!(windows.len(), 4);
    assert_eq!(
        windows[0],
        (1, 0, 10, 9, 10, 7),
        "the first delivery's window row stays"
    );

    one_by_one.drop_schema().await.expect("dropped");
    batched.drop_schema().await.expect("dropped");
}

#[tokio::test]
async fn the_window_latency_splits_into_ingest_and_store() {
    let store = empty_store("windows-latency-split").await;
    let all: Vec<i64> = (0..10).collect();
    // Last readings published at 9,000 ms (device 1) and 9,000 ms (device 2).
    let mut first = window(1, 0, &all);
    first.emitted_ms = 10_500;
    let mut second = window(2, 0, &all);
    second.emitted_ms = 12_000;
    for (message, stored_ms) in [(&first, 11_000), (&second, 14_000)] {
        let filled = impute(&message.window, ImputationMethod::Mean).expect("fills");
        store
            .store_window(message, &filled, stored_ms)
            .await
            .expect("stores");
    }
    let split = store.window_latency_split().await.expect("the split");
    let (ingest, stored) = (split.ingest_ms.expect("ingest"), split.store_ms.expect("store"));
    // Ingest: 1,500 and 3,000 ms; store: 500 and 2,000 ms (percentiles interpolate between them).
    assert_eq!((ingest.p50, stored.p50), (2_250.0, 1_250.0));
    assert!((ingest.p99 - 2_985.0).abs() < 1e-6 && (stored.p99 - 1_985.0).abs() < 1e-6);
    store.drop_schema().await.expect("dropped");
}
