//! What a report shows of one experiment, read from its store: the run's spec, the summary that
//! `wattcast local` and the operator's status also use, and the series the plots draw.

use wattcast_core::DeviceId;
use wattcast_io::store::run::RunRecord;
use wattcast_io::store::summary::{Accuracy, BaselineComparison, Percentiles, StoreSummary};
use wattcast_io::store::{Store, StoreError};

/// The quantiles a latency CDF is drawn through.
const CDF_POINTS: usize = 101;

/// One experiment's results.
#[derive(Debug, Clone)]
pub struct ExperimentData {
    /// The experiment's name.
    pub name: String,
    /// What ran (None when the run was not recorded).
    pub run: Option<RunRecord>,
    /// The summary.
    pub summary: StoreSummary,
    /// Readings the sensors reported sending.
    pub readings_sent: i64,
    /// Forecast accuracy per device against measured readings.
    pub accuracy_per_device: Vec<(DeviceId, Accuracy)>,
    /// The LSTM beside the baselines per device, against measured readings.
    pub baselines_per_device: Vec<(DeviceId, BaselineComparison)>,
    /// Coverage of each window minute, all devices together: (minute since the first, coverage).
    pub coverage_per_minute: Vec<(f64, f64)>,
    /// Publish → stored latency CDF: (milliseconds, fraction of readings at or below).
    pub latency_cdf: Vec<(f64, f64)>,
    /// Window stored → its forecast stored, milliseconds.
    pub forecast_latency_ms: Option<Percentiles>,
    /// Devices publishing in each minute of replayed data (wall time) and that minute's p95
    /// publish → stored latency (ms).
    pub devices_vs_latency: Vec<(f64, f64)>,
    /// Retrains and their mean training time, seconds.
    pub retrains: (i64, Option<f64>),
    /// The first device's measured readings: (seconds since its first, watts).
    pub actual: Vec<(f64, f64)>,
    /// The first device's forecasts on the same time axis.
    pub forecast: Vec<(f64, f64)>,
}

impl ExperimentData {
    /// The run's architecture, or "?" when unknown.
    pub fn architecture(&self) -> String {
        self.run
            .as_ref()
            .map_or_else(|| "?".to_owned(), |run| format!("{:?}", run.spec.architecture))
    }

    /// The windower's watermark bound in seconds (0 for monotonous); None for Batching, which
    /// has no windower.
    pub fn watermark_bound_s(&self) -> Option<f64> {
        let run = self.run.as_ref()?;
        if run.spec.architecture != wattcast_crds::Architecture::Streaming {
            return None;
        }
        let watermark = &run.spec.windowing.watermark;
        Some(
            watermark
                .max_out_of_orderness
                .as_ref()
                .map_or(0.0, |bound| bound.get().as_secs_f64()),
        )
    }

    /// Devices in the run.
    pub fn devices(&self) -> Option<u32> {
        self.run.as_ref().map(|run| run.spec.devices.count)
    }
}

/// From (devices publishing, p95 latency) per minute in time order: the ramp-up only (up to the
/// first minute with every device; the ramp-down would repeat the counts with the backlog of the
/// whole run), one point per device count (the mean of its minutes).
fn ramp_up_latency(per_minute: &[(i64, f64)]) -> Vec<(f64, f64)> {
    let most = per_minute.iter().map(|(devices, _)| *devices).max().unwrap_or(0);
    let end = per_minute
        .iter()
        .position(|(devices, _)| *devices == most)
        .map_or(0, |index| index + 1);
    let mut by_devices: std::collections::BTreeMap<i64, (f64, usize)> = std::collections::BTreeMap::new();
    for (devices, latency) in &per_minute[..end] {
        let entry = by_devices.entry(*devices).or_default();
        entry.0 += latency;
        entry.1 += 1;
    }
    by_devices
        .into_iter()
        .map(|(devices, (sum, count))| (devices as f64, sum / count as f64))
        .collect()
}

async fn percentiles_array(store: &Store, sql: &str) -> Result<Vec<f64>, StoreError> {
    let quantiles: Vec<f64> = (0..CDF_POINTS)
        .map(|i| i as f64 / (CDF_POINTS - 1) as f64)
        .collect();
    let (values,): (Option<Vec<f64>>,) = sqlx::query_as(sql)
        .bind(&quantiles)
        .fetch_one(store.pool())
        .await?;
    Ok(values.unwrap_or_default())
}

/// Reads everything a report shows of the experiment `name` from its store.
pub async fn load(store: &Store, name: &str) -> Result<ExperimentData, StoreError> {
    let run = store.run_record().await?;
    let summary = store.summary().await?;
    let readings_sent = store.sensor_totals().await?.readings_sent;
    let per_device: Vec<(i32, i64, f64, f64, Option<f64>)> = sqlx::query_as(
        "SELECT f.device, count(*), avg(abs(f.power_w - r.power_w)), sqrt(avg((f.power_w - r.power_w) ^ 2)),
                100 * avg(abs(f.power_w - r.power_w) / abs(r.power_w)) FILTER (WHERE r.power_w <> 0)
         FROM forecasts f JOIN readings r ON r.device = f.device AND r.event_time = f.event_time
         WHERE NOT r.imputed GROUP BY f.device ORDER BY f.device",
    )
    .fetch_all(store.pool())
    .await?;
    let accuracy_per_device = per_device
        .into_iter()
        .map(|(device, scored, mae, rmse, mape)| {
            (
                DeviceId(device as u32),
                Accuracy {
                    scored,
                    mae,
                    rmse,
                    mape,
                },
            )
        })
        .collect();
    let coverage: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT window_start, sum(received)::float8 / greatest(sum(expected), 1)
         FROM windows GROUP BY window_start ORDER BY window_start",
    )
    .fetch_all(store.pool())
    .await?;
    let first_minute = coverage.first().map_or(0, |(start, _)| *start);
    let coverage_per_minute = coverage
        .into_iter()
        .map(|(start, value)| ((start - first_minute) as f64 / 60.0, value))
        .collect();
    let latencies = percentiles_array(
        store,
        "SELECT percentile_cont($1::float8[]) WITHIN GROUP (ORDER BY stored_ms - published_ms)
         FROM readings WHERE NOT imputed AND published_ms IS NOT NULL",
    )
    .await?;
    let latency_cdf = latencies
        .iter()
        .enumerate()
        .map(|(i, ms)| (*ms, i as f64 / (CDF_POINTS - 1) as f64))
        .collect();
    let (p50, p95, p99): (Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY latency), percentile_cont(0.95) WITHIN GROUP (ORDER BY latency),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY latency)
         FROM (SELECT f.stored_ms - w.stored_ms AS latency
               FROM (SELECT device, origin, min(stored_ms) AS stored_ms FROM forecasts GROUP BY device, origin) f
               JOIN windows w ON w.device = f.device AND w.window_end = f.origin) AS per_window",
    )
    .fetch_one(store.pool())
    .await?;
    let forecast_latency_ms = match (p50, p95, p99) {
        (Some(p50), Some(p95), Some(p99)) => Some(Percentiles { p50, p95, p99 }),
        _ => None,
    };
    // Ramp-up staggers the sensors in wall time (every device's data spans the same event
    // times), so group by when readings were published: one bucket per minute of data replayed.
    let speedup = run
        .as_ref()
        .map_or(1.0, |run| run.spec.replay.speedup)
        .max(f64::MIN_POSITIVE);
    #[allow(
        clippy::cast_possible_truncation,
        reason = "`as` saturates; a speed-up above 1 only shrinks it"
    )]
    let bucket_ms = ((60_000.0 / speedup) as i64).max(1_000);
    let devices_vs_latency: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT count(DISTINCT device), percentile_cont(0.95) WITHIN GROUP (ORDER BY stored_ms - published_ms)
         FROM readings WHERE NOT imputed AND published_ms IS NOT NULL
         GROUP BY published_ms / $1 ORDER BY published_ms / $1",
    )
    .bind(bucket_ms)
    .fetch_all(store.pool())
    .await?;
    let devices_vs_latency = ramp_up_latency(&devices_vs_latency);
    let retrains: (i64, Option<f64>) =
        sqlx::query_as("SELECT count(*), avg(train_seconds) FROM models WHERE version <> 'initial'")
            .fetch_one(store.pool())
            .await?;
    let first_device: Option<(i32,)> = sqlx::query_as("SELECT min(device) FROM windows")
        .fetch_optional(store.pool())
        .await?
        .filter(|(device,): &(Option<i32>,)| device.is_some())
        .map(|(device,)| (device.unwrap_or_default(),));
    let (actual, forecast) = match first_device {
        Some((device,)) => {
            let actual: Vec<(i64, f64)> = sqlx::query_as(
                "SELECT event_time, power_w FROM readings WHERE device = $1 AND NOT imputed ORDER BY event_time",
            )
            .bind(device)
            .fetch_all(store.pool())
            .await?;
            let forecast: Vec<(i64, f64)> = sqlx::query_as(
                "SELECT event_time, power_w FROM forecasts WHERE device = $1 ORDER BY event_time, origin",
            )
            .bind(device)
            .fetch_all(store.pool())
            .await?;
            let origin = actual.first().map_or(0, |(time, _)| *time);
            let relative = |series: Vec<(i64, f64)>| {
                series
                    .into_iter()
                    .map(|(time, watts)| ((time - origin) as f64, watts))
                    .collect::<Vec<_>>()
            };
            (relative(actual), relative(forecast))
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(ExperimentData {
        name: name.to_owned(),
        run,
        summary,
        readings_sent,
        accuracy_per_device,
        baselines_per_device: store.baselines_per_device(false).await?,
        coverage_per_minute,
        latency_cdf,
        forecast_latency_ms,
        devices_vs_latency,
        retrains,
        actual,
        forecast,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_keeps_the_ramp_up_and_averages_each_device_count() {
        let minutes = [
            (1, 10.0),
            (1, 20.0),
            (2, 30.0),
            (3, 40.0),
            (3, 60.0),
            (2, 900.0),
            (1, 999.0),
        ];
        assert_eq!(ramp_up_latency(&minutes), [(1.0, 15.0), (2.0, 30.0), (3.0, 40.0)]);
        assert!(ramp_up_latency(&[]).is_empty());
    }
}
