//! Storing the windows that arrived together in one transaction leaves PostgreSQL exactly as
//! storing them one by one does, including a window delivered twice in the same batch and a
//! redelivery that replaces an imputed second with its measured reading.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use wattcast_core::imputation::{ImputationMethod, impute};
use wattcast_core::wire::WindowMessage;
use wattcast_core::{DeviceId, Reading, Window};
use wattcast_io::store::Store;

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

/// A migrated schema of its own, dropped when the returned guard goes.
async fn empty_store(name: &str) -> (Store, common::Cleanup) {
    let schema = common::unique(name).replace('-', "_");
    let cleanup = common::Cleanup::schema(&schema);
    let store = common::reachable(
        "PostgreSQL",
        Store::connect(&common::services().postgres, &schema, 2).await,
    );
    store.migrate().await.expect("the schema migrated");
    (store, cleanup)
}

/// Fills `message` (mean imputation, as the coordinator) and stores it at `stored_ms`.
async fn store_filled(store: &Store, message: &WindowMessage, stored_ms: i64) {
    let filled = impute(&message.window, ImputationMethod::Mean).expect("fills");
    store
        .store_window(message, &filled, stored_ms)
        .await
        .expect("stores");
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

    let (one_by_one, _one_by_one_cleanup) = empty_store("windows-one-by-one").await;
    for (message, filled) in &items {
        one_by_one
            .store_window(message, filled, 42)
            .await
            .expect("stores a window");
    }
    let (batched, _batched_cleanup) = empty_store("windows-batched").await;
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
    let (store, _store_cleanup) = empty_store("windows-latency-split").await;
    let all: Vec<i64> = (0..10).collect();
    // Last readings published at 9,000 ms (device 1) and 9,000 ms (device 2).
    let mut first = window(1, 0, &all);
    first.emitted_ms = 10_500;
    let mut second = window(2, 0, &all);
    second.emitted_ms = 12_000;
    for (message, stored_ms) in [(&first, 11_000), (&second, 14_000)] {
        store_filled(&store, message, stored_ms).await;
    }
    let split = store.window_latency_split().await.expect("the split");
    let (ingest, stored) = (split.ingest_ms.expect("ingest"), split.store_ms.expect("store"));
    // Ingest: 1,500 and 3,000 ms; store: 500 and 2,000 ms (percentiles interpolate between them).
    assert_eq!((ingest.p50, stored.p50), (2_250.0, 1_250.0));
    assert!((ingest.p99 - 2_985.0).abs() < 1e-6 && (stored.p99 - 1_985.0).abs() < 1e-6);
    store.drop_schema().await.expect("dropped");
}

#[tokio::test]
async fn the_window_latency_is_given_per_minute_of_storing() {
    let (store, _store_cleanup) = empty_store("windows-latency-minutes").await;
    let all: Vec<i64> = (0..10).collect();
    // Every last reading is published at 9,000 ms; two windows are stored in the minute that
    // starts at 0 ms, one in the minute that starts at 60,000 ms.
    for (device, stored_ms) in [(1, 10_000), (2, 12_000), (3, 69_500)] {
        store_filled(&store, &window(device, 0, &all), stored_ms).await;
    }
    let minutes = store.window_latency_by_minute().await.expect("the minutes");
    assert_eq!(minutes.len(), 2, "{minutes:?}");
    assert_eq!((minutes[0].minute_ms, minutes[0].windows), (0, 2));
    assert_eq!((minutes[0].latency_ms.p50, minutes[0].max_ms), (2_000.0, 3_000.0));
    assert_eq!((minutes[1].minute_ms, minutes[1].windows), (60_000, 1));
    assert_eq!(
        (minutes[1].latency_ms.p99, minutes[1].max_ms),
        (60_500.0, 60_500.0)
    );
    store.drop_schema().await.expect("dropped");
}

#[tokio::test]
async fn a_measured_second_that_replaces_a_filler_carries_its_own_publish_and_store_times() {
    let (store, _store_cleanup) = empty_store("windows-restored").await;
    let first = window(1, 0, &[0, 1, 3, 4, 5, 6, 7, 8, 9]);
    let again = window(1, 0, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (message, stored_ms) in [(&first, 42), (&again, 50)] {
        store_filled(&store, message, stored_ms).await;
    }
    let seconds: Vec<(i64, f64, bool, Option<i64>, i64)> = sqlx::query_as(
        "SELECT event_time, power_w, imputed, published_ms, stored_ms FROM readings ORDER BY event_time",
    )
    .fetch_all(store.pool())
    .await
    .expect("readings");
    assert_eq!(seconds.len(), 10);
    assert_eq!(
        seconds[2],
        (2, 102.0, false, Some(2_000), 50),
        "the replaced second: measured, published and stored by the redelivery"
    );
    assert!(
        seconds
            .iter()
            .enumerate()
            .filter(|(second, _)| *second != 2)
            .all(|(second, row)| row.0 == second as i64
                && row.3 == Some(1_000 * second as i64)
                && row.4 == 42),
        "the other seconds keep the first delivery's times: {seconds:?}"
    );
    store.drop_schema().await.expect("dropped");
}

#[tokio::test]
async fn the_look_back_reads_the_latest_seconds_across_windows_and_gaps() {
    let (store, _store_cleanup) = empty_store("windows-look-back").await;
    let all: Vec<i64> = (0..10).collect();
    // Device 1 has windows at 0, 10 and 30 (none at 20); device 2 one at 40.
    for message in [
        window(1, 0, &all),
        window(1, 10, &all),
        window(1, 30, &all),
        window(2, 40, &all),
    ] {
        store_filled(&store, &message, 1).await;
    }
    let times = |rows: Vec<(i64, f64)>| -> Vec<i64> { rows.into_iter().map(|(time, _)| time).collect() };
    let device = DeviceId(1);
    assert_eq!(
        times(store.values_before(device, 35, 7).await.expect("reads")),
        vec![18, 19, 30, 31, 32, 33, 34],
        "oldest first, skipping the missing window, nothing at or after 35"
    );
    let latest = store.latest_values(device, 15).await.expect("reads");
    assert_eq!(
        times(latest.clone()),
        [15, 16, 17, 18, 19].into_iter().chain(30..40).collect::<Vec<_>>()
    );
    assert_eq!(
        latest[0].1, 105.0,
        "second 5 of the window at 10 (device 1: 100 + its second in the window)"
    );
    assert_eq!(
        store
            .values_before(device, 1_000, 100)
            .await
            .expect("reads")
            .len(),
        30
    );
    assert!(
        store
            .values_before(device, 0, 10)
            .await
            .expect("reads")
            .is_empty()
    );
    store.drop_schema().await.expect("dropped");
}

#[tokio::test]
async fn migrating_a_store_with_reading_rows_keeps_every_second() {
    let schema = common::unique("windows-migrated").replace('-', "_");
    let _cleanup = common::Cleanup::schema(&schema);
    let store = common::reachable(
        "PostgreSQL",
        Store::connect(&common::services().postgres, &schema, 1).await,
    );
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(store.pool())
        .await
        .expect("the schema");
    // The schema as it was before readings moved into their windows.
    let mut before = sqlx::migrate!("../io/migrations");
    before.migrations = before
        .migrations
        .iter()
        .filter(|migration| migration.version <= 4)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(store.pool()).await.expect("migrations 1 to 4");
    let old_rows: Vec<(i32, i64, f64, bool, Option<i64>, i64)> = vec![
        (1, 60, 1.5, false, Some(61_000), 70_000),
        (1, 61, 2.5, true, None, 70_000),
        (1, 62, 3.5, false, Some(63_000), 75_000), // stored later, by a redelivery
        (2, 60, 9.0, false, Some(60_500), 71_000),
        (2, 61, 9.5, false, None, 71_000),
        (2, 62, 8.0, false, Some(62_500), 71_000),
    ];
    for (device, event_time, power_w, imputed, published_ms, stored_ms) in &old_rows {
        sqlx::query(
            "INSERT INTO readings (device, event_time, power_w, imputed, published_ms, stored_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(device)
        .bind(event_time)
        .bind(power_w)
        .bind(imputed)
        .bind(published_ms)
        .bind(stored_ms)
        .execute(store.pool())
        .await
        .expect("an old reading row");
    }
    sqlx::query(
        "INSERT INTO windows (device, window_start, window_end, received, expected, emitted_ms, stored_ms)
         VALUES (1, 60, 63, 2, 3, 69000, 70000), (2, 60, 63, 3, 3, 70500, 71000)",
    )
    .execute(store.pool())
    .await
    .expect("the old window rows");

    store.migrate().await.expect("the remaining migrations");
    let migrated: Vec<(i32, i64, f64, bool, Option<i64>, i64)> = sqlx::query_as(
        "SELECT device, event_time, power_w, imputed, published_ms, stored_ms FROM readings
         ORDER BY device, event_time",
    )
    .fetch_all(store.pool())
    .await
    .expect("the readings view");
    assert_eq!(migrated, old_rows);
    store.drop_schema().await.expect("dropped");
}

/// The baselines are scored on the LSTM's seconds against the same actuals: persistence holds
/// the forecast window's last measured reading, the window mean its measured readings' mean.
#[tokio::test]
async fn baselines_score_persistence_and_the_window_mean_on_the_forecast_seconds() {
    let (store, _store_cleanup) = empty_store("baselines").await;
    // Window [0, 10) lacks its last second; [10, 20) is complete (watts 100 + offset).
    store_filled(&store, &window(1, 0, &[0, 1, 2, 3, 4, 5, 6, 7, 8]), 1).await;
    store_filled(&store, &window(1, 10, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), 2).await;
    // The LSTM forecast 105 W for each second of the next window, from the first window's end.
    for second in 10..20_i64 {
        sqlx::query("INSERT INTO forecasts (device, origin, event_time, power_w, model_version, stored_ms) VALUES (1, 10, $1, 105, 'initial', 3)")
            .bind(second)
            .execute(store.pool())
            .await
            .unwrap();
    }
    let actual: Vec<f64> = (0..10).map(|s| 100.0 + f64::from(s)).collect();
    let errors = |value: f64| -> (f64, f64) {
        let n = actual.len() as f64;
        let mae = actual.iter().map(|a| (value - a).abs()).sum::<f64>() / n;
        let rmse = (actual.iter().map(|a| (value - a).powi(2)).sum::<f64>() / n).sqrt();
        (mae, rmse)
    };
    let last_measured = 108.0;
    let window_mean = (100..=108).map(f64::from).sum::<f64>() / 9.0;

    let measured = store.baselines(false).await.unwrap().expect("scored");
    let close = |got: f64, want: f64| assert!((got - want).abs() < 1e-9, "{got} ≠ {want}");
    for (accuracy, value) in [
        (measured.lstm, 105.0),
        (measured.persistence, last_measured),
        (measured.window_mean, window_mean),
    ] {
        assert_eq!(accuracy.scored, 10);
        let (mae, rmse) = errors(value);
        close(accuracy.mae, mae);
        close(accuracy.rmse, rmse);
    }
    close(
        measured.skill(&measured.persistence).unwrap(),
        1.0 - errors(105.0).1 / errors(last_measured).1,
    );
    // Every forecast second was measured: nothing to score against fillers.
    assert_eq!(store.baselines(true).await.unwrap(), None);
    assert_eq!(store.summary().await.unwrap().baselines, Some(measured));
}

#[tokio::test]
async fn a_sensor_pod_reports_all_its_devices_at_once_and_a_retry_replaces_the_report() {
    let (store, _store_cleanup) = empty_store("sensor-reports").await;
    let first: std::collections::BTreeMap<DeviceId, u64> = (1..=250)
        .map(|device| (DeviceId(device), u64::from(device)))
        .collect();
    store.record_sensor_reports(&first, 1_000).await.unwrap();
    let totals = store.sensor_totals().await.unwrap();
    assert_eq!(
        (totals.devices, totals.readings_sent),
        (250, (1..=250).sum::<i64>())
    );
    // The pod ran again (its Job retried it) and sent everything once more: replaced, not added.
    let retried: std::collections::BTreeMap<DeviceId, u64> =
        (1..=250).map(|device| (DeviceId(device), 10)).collect();
    store.record_sensor_reports(&retried, 2_000).await.unwrap();
    let totals = store.sensor_totals().await.unwrap();
    assert_eq!((totals.devices, totals.readings_sent), (250, 2_500));
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn the_model_age_is_measured_once_per_forecast_from_its_models_data_end() {
    let (store, _store_cleanup) = empty_store("model-age").await;
    assert_eq!(store.model_age().await.unwrap(), None, "no forecast yet");
    // The initial model has no data range (setup trains it on the dataset's first readings);
    // its forecasts are not measured.
    for (version, data_to) in [("initial", None), ("0-40", Some(40_i64)), ("240-280", Some(280))] {
        sqlx::query(
            "INSERT INTO models (device, version, data_from, data_to, readings, train_seconds, object_prefix, created_ms)
             VALUES (1, $1, 0, $2, 600, 1.0, 'p', 0)",
        )
        .bind(version)
        .bind(data_to)
        .execute(store.pool())
        .await
        .unwrap();
    }
    // Three measured forecasts of two seconds each: ages 60 and 160 (model 0-40), 20 (model
    // 240-280); one by the initial model, not measured.
    for (origin, version) in [
        (50_i64, "initial"),
        (100, "0-40"),
        (200, "0-40"),
        (300, "240-280"),
    ] {
        for second in [origin, origin + 1] {
            sqlx::query("INSERT INTO forecasts (device, origin, event_time, power_w, model_version, stored_ms) VALUES (1, $1, $2, 1, $3, 0)")
                .bind(origin)
                .bind(second)
                .bind(version)
                .execute(store.pool())
                .await
                .unwrap();
        }
    }
    let age = store.model_age().await.unwrap().expect("measured");
    assert_eq!((age.forecasts, age.max_s), (3, 160));
    assert!((age.p50_s - 60.0).abs() < 1e-9, "{age:?}");
    // percentile_cont between 60 and 160 at 0.95 of the way over three values: 60 + 0.9 × 100.
    assert!((age.p95_s - 150.0).abs() < 1e-9, "{age:?}");
    assert_eq!(store.summary().await.unwrap().model_age, Some(age));
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn the_retrain_clock_survives_in_the_store() {
    let (store, _store_cleanup) = empty_store("retrain-clock").await;
    let device = DeviceId(3);
    assert_eq!(
        store.retrain_clock(device).await.expect("query"),
        None,
        "nothing stored yet"
    );
    store_filled(&store, &window(3, 120, &[0, 1, 2]), 1).await;
    store_filled(&store, &window(3, 100, &[0, 1, 2]), 2).await;
    assert_eq!(
        store.retrain_clock(device).await.expect("query"),
        Some(100),
        "before any request the clock starts at the first stored window"
    );
    store.record_retrain_request(device, 700).await.expect("records");
    store.record_retrain_request(device, 500).await.expect("records");
    assert_eq!(
        store.retrain_clock(device).await.expect("query"),
        Some(700),
        "the latest request's end, never moved back"
    );
    assert_eq!(
        store.retrain_clock(DeviceId(4)).await.expect("query"),
        None,
        "per device"
    );
}
