//! What an experiment's store says about the run: counts, coverage and latency.

use super::{Store, StoreError};
use serde::Serialize;
use wattcast_core::DeviceId;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Forecast errors against the actual values that arrived, in watts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Accuracy {
    /// Forecast values that have an actual value to compare with.
    pub scored: i64,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute percentage error (%), over actual values other than zero.
    pub mape: Option<f64>,
}

/// The LSTM's forecasts beside two baselines, scored on exactly the same seconds against the
/// same actuals: persistence (the forecast window's last measured reading held for the
/// horizon) and the window's mean (of its measured readings).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BaselineComparison {
    /// The LSTM on these seconds (those whose window had a measured reading).
    pub lstm: Accuracy,
    /// The last measured reading held.
    pub persistence: Accuracy,
    /// The window's mean held.
    pub window_mean: Accuracy,
}

impl BaselineComparison {
    /// The LSTM's skill over a baseline: 1 − RMSE_lstm / RMSE_baseline (positive: better than
    /// the baseline; None when the baseline is exact).
    pub fn skill(&self, baseline: &Accuracy) -> Option<f64> {
        (baseline.rmse > 0.0).then(|| 1.0 - self.lstm.rmse / baseline.rmse)
    }
}

/// Counts and measurements from the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreSummary {
    /// Measured readings stored.
    pub readings_stored: i64,
    /// Imputed seconds stored.
    pub readings_imputed: i64,
    /// Windows stored.
    pub windows: i64,
    /// Windows with every expected reading measured.
    pub complete_windows: i64,
    /// Late readings stored.
    pub late: i64,
    /// Measured readings in windows / expected readings of the windows.
    pub coverage: Option<f64>,
    /// Sensor publish → stored, over measured readings (includes the wait for the window to
    /// close: up to a window plus the watermark bound).
    pub latency_ms: Option<Percentiles>,
    /// Last reading of a window published → the window stored: what the pipeline adds once a
    /// window's data is all sent.
    pub window_latency_ms: Option<Percentiles>,
    /// Forecasts stored (one per window forecast, `horizon` values each).
    pub forecasts: i64,
    /// Models recorded (initial and retrained).
    pub models: i64,
    /// Models retrained during the run (every model but the initial ones).
    pub retrains: i64,
    /// Forecast values scored against measured readings.
    pub accuracy: Option<Accuracy>,
    /// Forecast values scored against imputed fillers (reported apart: not real data).
    pub accuracy_imputed: Option<Accuracy>,
    /// The LSTM beside the baselines, against measured readings.
    pub baselines: Option<BaselineComparison>,
    /// The same against imputed fillers.
    pub baselines_imputed: Option<BaselineComparison>,
    /// How old the forecasting models were.
    pub model_age: Option<ModelAge>,
}

/// How old the models that forecast were: for each forecast by a retrained model, the event time
/// from the end of its training data to the forecast's origin (a window's end). It grows between
/// retrains and without bound when the trainers do not keep up. Initial models are left out:
/// setup trains them on the dataset's first readings, so they have no age in the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModelAge {
    /// Forecasts measured (those whose model records the end of its data).
    pub forecasts: i64,
    /// Median, seconds of event time.
    pub p50_s: f64,
    /// 95th percentile, seconds.
    pub p95_s: f64,
    /// The oldest, seconds.
    pub max_s: i64,
}

/// The counts of [`StoreSummary`] alone, read in one cheap query (no percentiles, no joins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    /// Measured readings stored.
    pub readings_stored: i64,
    /// Windows stored.
    pub windows: i64,
    /// Late readings stored.
    pub late: i64,
    /// Windows forecast.
    pub forecasts: i64,
    /// Models the trainer made (not the initial ones).
    pub retrains: i64,
}

impl Store {
    /// The counts of the run so far, as [`Store::summary`] has them.
    pub async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let (readings_stored, windows, late, forecasts, retrains): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT coalesce(sum(cardinality(array_positions(imputed, false))), 0) FROM windows)::bigint,
                    (SELECT count(*) FROM windows),
                    (SELECT count(*) FROM late_readings),
                    (SELECT count(*) FROM (SELECT DISTINCT device, origin FROM forecasts) AS made),
                    (SELECT count(*) FROM models WHERE version <> 'initial')",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(StoreCounts {
            readings_stored,
            windows,
            late,
            forecasts,
            retrains,
        })
    }

    /// Measured readings plus late readings stored so far (what has arrived from the sensors).
    pub async fn arrived(&self) -> Result<i64, StoreError> {
        let (arrived,): (i64,) = sqlx::query_as(
            "SELECT (SELECT coalesce(sum(cardinality(array_positions(imputed, false))), 0) FROM windows)::bigint
                    + (SELECT count(*) FROM late_readings)",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(arrived)
    }

    /// Summarises the run.
    pub async fn summary(&self) -> Result<StoreSummary, StoreError> {
        let (readings_stored, readings_imputed): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(cardinality(array_positions(imputed, false))), 0)::bigint,
                    coalesce(sum(cardinality(array_positions(imputed, true))), 0)::bigint
             FROM windows",
        )
        .fetch_one(self.pool())
        .await?;
        let (windows, complete_windows, received, expected): (i64, i64, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE received >= expected), sum(received)::bigint, sum(expected)::bigint FROM windows",
        )
        .fetch_one(self.pool())
        .await?;
        let (late,): (i64,) = sqlx::query_as("SELECT count(*) FROM late_readings")
            .fetch_one(self.pool())
            .await?;
        let latency: (Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY stored_ms - published_ms),
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY stored_ms - published_ms),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY stored_ms - published_ms)
             FROM readings WHERE NOT imputed AND published_ms IS NOT NULL",
        )
        .fetch_one(self.pool())
        .await?;
        let window_latency: (Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY latency),
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY latency),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY latency)
             FROM (SELECT stored_ms - (SELECT max(p) FROM unnest(published_ms) AS p) AS latency
                   FROM windows) AS per_window",
        )
        .fetch_one(self.pool())
        .await?;
        let (forecasts, models, retrains): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM (SELECT DISTINCT device, origin FROM forecasts) AS made),
                    (SELECT count(*) FROM models),
                    (SELECT count(*) FROM models WHERE version <> 'initial')",
        )
        .fetch_one(self.pool())
        .await?;
        let accuracy = |imputed: bool| {
            sqlx::query_as::<_, (i64, Option<f64>, Option<f64>, Option<f64>)>(
                "SELECT count(*), avg(abs(f.power_w - r.power_w)), sqrt(avg((f.power_w - r.power_w) ^ 2)),
                        100 * avg(abs(f.power_w - r.power_w) / abs(r.power_w)) FILTER (WHERE r.power_w <> 0)
                 FROM forecasts f JOIN readings r ON r.device = f.device AND r.event_time = f.event_time
                 WHERE r.imputed = $1",
            )
            .bind(imputed)
            .fetch_one(self.pool())
        };
        let to_accuracy =
            |(scored, mae, rmse, mape): (i64, Option<f64>, Option<f64>, Option<f64>)| match (mae, rmse) {
                (Some(mae), Some(rmse)) if scored > 0 => Some(Accuracy {
                    scored,
                    mae,
                    rmse,
                    mape,
                }),
                _ => None,
            };
        let measured = to_accuracy(accuracy(false).await?);
        let imputed = to_accuracy(accuracy(true).await?);
        let baselines = self.baselines(false).await?;
        let baselines_imputed = self.baselines(true).await?;
        let model_age = self.model_age().await?;
        Ok(StoreSummary {
            model_age,
            baselines,
            baselines_imputed,
            forecasts,
            models,
            retrains,
            accuracy: measured,
            accuracy_imputed: imputed,
            readings_stored,
            readings_imputed,
            windows,
            complete_windows,
            late,
            coverage: match (received, expected) {
                (Some(received), Some(expected)) if expected > 0 => Some(received as f64 / expected as f64),
                _ => None,
            },
            latency_ms: percentiles(latency),
            window_latency_ms: percentiles(window_latency),
        })
    }
}

impl Store {
    /// [`ModelAge`] over every stored forecast; None before a forecast was stored.
    pub async fn model_age(&self) -> Result<Option<ModelAge>, StoreError> {
        // One row per forecast: its first second is its origin.
        let (forecasts, p50, p95, max): (i64, Option<f64>, Option<f64>, Option<i64>) = sqlx::query_as(
            "SELECT count(*),
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY age),
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY age),
                    max(age)
             FROM (SELECT f.origin - m.data_to AS age
                   FROM forecasts f JOIN models m ON m.device = f.device AND m.version = f.model_version
                   WHERE f.event_time = f.origin AND m.data_to IS NOT NULL) AS ages",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(match (p50, p95, max) {
            (Some(p50_s), Some(p95_s), Some(max_s)) if forecasts > 0 => Some(ModelAge {
                forecasts,
                p50_s,
                p95_s,
                max_s,
            }),
            _ => None,
        })
    }

    /// [`BaselineComparison`] against measured readings, or imputed fillers with `imputed`;
    /// None before anything was scored.
    pub async fn baselines(&self, imputed: bool) -> Result<Option<BaselineComparison>, StoreError> {
        Ok(self
            .scored_baselines(imputed, false)
            .await?
            .into_iter()
            .next()
            .map(|(_, comparison)| comparison))
    }

    /// [`BaselineComparison`] of each device that has scored forecasts, in device order.
    pub async fn baselines_per_device(
        &self,
        imputed: bool,
    ) -> Result<Vec<(DeviceId, BaselineComparison)>, StoreError> {
        Ok(self
            .scored_baselines(imputed, true)
            .await?
            .into_iter()
            .filter_map(|(device, comparison)| Some((DeviceId(u32::try_from(device?).ok()?), comparison)))
            .collect())
    }

    /// The comparisons, one for the whole run (device `None`) or one per device.
    async fn scored_baselines(
        &self,
        imputed: bool,
        per_device: bool,
    ) -> Result<Vec<(Option<i32>, BaselineComparison)>, StoreError> {
        /// One row: how many seconds were scored, and each forecaster's MAE, RMSE and MAPE.
        #[derive(sqlx::FromRow)]
        struct Scored {
            device: Option<i32>,
            scored: i64,
            lstm_mae: Option<f64>,
            lstm_rmse: Option<f64>,
            lstm_mape: Option<f64>,
            persistence_mae: Option<f64>,
            persistence_rmse: Option<f64>,
            persistence_mape: Option<f64>,
            mean_mae: Option<f64>,
            mean_rmse: Option<f64>,
            mean_mape: Option<f64>,
        }
        type Errors = (Option<f64>, Option<f64>, Option<f64>);
        let rows: Vec<Scored> = sqlx::query_as(
            "WITH origin AS (
                 SELECT w.device, w.window_end AS origin,
                        (SELECT s.p FROM unnest(w.power_w, w.imputed) WITH ORDINALITY AS s(p, i, n)
                         WHERE NOT s.i ORDER BY s.n DESC LIMIT 1) AS last_measured,
                        (SELECT avg(s.p) FROM unnest(w.power_w, w.imputed) AS s(p, i) WHERE NOT s.i) AS window_mean
                 FROM windows w),
             scored AS (
                 SELECT CASE WHEN $2 THEN f.device END AS device,
                        r.power_w AS actual, f.power_w AS lstm, o.last_measured, o.window_mean
                 FROM forecasts f
                 JOIN origin o ON o.device = f.device AND o.origin = f.origin
                 JOIN readings r ON r.device = f.device AND r.event_time = f.event_time
                 WHERE r.imputed = $1 AND o.last_measured IS NOT NULL)
             SELECT device, count(*) AS scored,
                    avg(abs(lstm - actual)) AS lstm_mae, sqrt(avg((lstm - actual) ^ 2)) AS lstm_rmse,
                    100 * avg(abs(lstm - actual) / abs(actual)) FILTER (WHERE actual <> 0) AS lstm_mape,
                    avg(abs(last_measured - actual)) AS persistence_mae,
                    sqrt(avg((last_measured - actual) ^ 2)) AS persistence_rmse,
                    100 * avg(abs(last_measured - actual) / abs(actual)) FILTER (WHERE actual <> 0) AS persistence_mape,
                    avg(abs(window_mean - actual)) AS mean_mae, sqrt(avg((window_mean - actual) ^ 2)) AS mean_rmse,
                    100 * avg(abs(window_mean - actual) / abs(actual)) FILTER (WHERE actual <> 0) AS mean_mape
             FROM scored GROUP BY device ORDER BY device",
        )
        .bind(imputed)
        .bind(per_device)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter(|row| row.scored > 0)
            .filter_map(|row| {
                let scored = row.scored;
                let accuracy = |(mae, rmse, mape): Errors| {
                    Some(Accuracy {
                        scored,
                        mae: mae?,
                        rmse: rmse?,
                        mape,
                    })
                };
                let comparison = BaselineComparison {
                    lstm: accuracy((row.lstm_mae, row.lstm_rmse, row.lstm_mape))?,
                    persistence: accuracy((row.persistence_mae, row.persistence_rmse, row.persistence_mape))?,
                    window_mean: accuracy((row.mean_mae, row.mean_rmse, row.mean_mape))?,
                };
                Some((row.device, comparison))
            })
            .collect())
    }
}

/// The window latency in its two halves, to see which side of the pipeline a delay is on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowLatencySplit {
    /// Last reading of a window published → the window emitted (sensor, MQTT, bridge, Pulsar,
    /// windower; includes the wait for the reading that closes the window).
    pub ingest_ms: Option<Percentiles>,
    /// Window emitted → stored (Pulsar, coordinator, PostgreSQL).
    pub store_ms: Option<Percentiles>,
}

impl Store {
    /// [`WindowLatencySplit`] over the stored windows that hold a published reading.
    pub async fn window_latency_split(&self) -> Result<WindowLatencySplit, StoreError> {
        type Six = (
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
        );
        let row: Six = sqlx::query_as(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ingest),
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY ingest),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY ingest),
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY store),
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY store),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY store)
             FROM (SELECT emitted_ms - last_published AS ingest, stored_ms - emitted_ms AS store
                   FROM (SELECT emitted_ms, stored_ms, (SELECT max(p) FROM unnest(published_ms) AS p) AS last_published
                         FROM windows) AS w
                   WHERE last_published IS NOT NULL) AS per_window",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(WindowLatencySplit {
            ingest_ms: percentiles((row.0, row.1, row.2)),
            store_ms: percentiles((row.3, row.4, row.5)),
        })
    }
}

fn percentiles(values: (Option<f64>, Option<f64>, Option<f64>)) -> Option<Percentiles> {
    match values {
        (Some(p50), Some(p95), Some(p99)) => Some(Percentiles { p50, p95, p99 }),
        _ => None,
    }
}

/// The window latency of the windows stored in one minute of wall-clock time: a soak's
/// "throughout" is every minute of the run, not the run's overall percentile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MinuteLatency {
    /// The minute's start, epoch milliseconds (a multiple of 60,000).
    pub minute_ms: i64,
    /// Windows stored in it that hold a published reading.
    pub windows: i64,
    /// Their window latency (last reading published → window stored).
    pub latency_ms: Percentiles,
    /// The slowest of them.
    pub max_ms: f64,
}

impl Store {
    /// [`MinuteLatency`] for every minute in which a window was stored, oldest first.
    pub async fn window_latency_by_minute(&self) -> Result<Vec<MinuteLatency>, StoreError> {
        type Row = (i64, i64, f64, f64, f64, f64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT minute * 60000, count(*),
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY latency),
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY latency),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY latency),
                    max(latency)::float8
             FROM (SELECT stored_ms / 60000 AS minute,
                          stored_ms - (SELECT max(p) FROM unnest(published_ms) AS p) AS latency
                   FROM windows) AS per_window
             WHERE latency IS NOT NULL
             GROUP BY minute ORDER BY minute",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(minute_ms, windows, p50, p95, p99, max_ms)| MinuteLatency {
                minute_ms,
                windows,
                latency_ms: Percentiles { p50, p95, p99 },
                max_ms,
            })
            .collect())
    }
}
