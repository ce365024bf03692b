//! Progress and results read from the experiment's PostgreSQL, through the same summary
//! queries `wattcast local` prints, so both report the same numbers.

use wattcast_crds::{Baselines, ForecastAccuracy, LatencySummary, ModelAgeSummary, Progress, Results};
use wattcast_io::store::sensor_reports::SensorTotals;
use wattcast_io::store::summary::{Accuracy, Percentiles, StoreSummary};
use wattcast_io::store::{Store, StoreError};

/// What the store says about the run so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurements {
    /// Counts for `status.progress`.
    pub progress: Progress,
    /// Measurements for `status.results` (None until something was stored).
    pub results: Option<Results>,
    /// Devices whose sensor reported what it sent.
    pub devices_reported: u64,
    /// Readings stored or stored as late: what has arrived of what was sent.
    pub arrived: u64,
}

impl Measurements {
    /// Whether every device's sensor reported and every reading it sent has arrived.
    pub fn all_arrived(&self, devices: u32) -> bool {
        self.devices_reported >= u64::from(devices) && self.arrived >= self.progress.readings_sent
    }
}

/// Reads the measurements from the experiment's store: with `full`, the results too (latency
/// percentiles, forecast accuracy: joins over every reading), else only the counts (`results`
/// None, so the status keeps the last ones).
pub async fn measure(store: &Store, full: bool) -> Result<Measurements, StoreError> {
    let sensors = store.sensor_totals().await?;
    let arrived = store.arrived().await?;
    if full {
        let summary = store.summary().await?;
        return Ok(from_summary(&summary, sensors, arrived));
    }
    let counts = store.counts().await?;
    Ok(Measurements {
        progress: Progress {
            readings_sent: count(sensors.readings_sent),
            readings_stored: count(counts.readings_stored),
            windows_emitted: count(counts.windows),
            late_readings: count(counts.late),
            forecasts: count(counts.forecasts),
            retrains: count(counts.retrains),
        },
        results: None,
        devices_reported: count(sensors.devices),
        arrived: count(arrived),
    })
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn latency(percentiles: Percentiles) -> LatencySummary {
    LatencySummary {
        p50: percentiles.p50,
        p95: percentiles.p95,
        p99: percentiles.p99,
    }
}

fn accuracy(accuracy: Accuracy) -> ForecastAccuracy {
    ForecastAccuracy {
        mae: accuracy.mae,
        rmse: accuracy.rmse,
        mape: accuracy.mape,
        scored: count(accuracy.scored),
    }
}

/// The status fields from the store's summary and the sensors' reports.
pub fn from_summary(summary: &StoreSummary, sensors: SensorTotals, arrived: i64) -> Measurements {
    let progress = Progress {
        readings_sent: count(sensors.readings_sent),
        readings_stored: count(summary.readings_stored),
        windows_emitted: count(summary.windows),
        late_readings: count(summary.late),
        forecasts: count(summary.forecasts),
        retrains: count(summary.retrains),
    };
    let results = Results {
        coverage: summary.coverage,
        latency_ms: summary.latency_ms.map(latency),
        window_latency_ms: summary.window_latency_ms.map(latency),
        forecast: summary.accuracy.map(accuracy),
        forecast_imputed: summary.accuracy_imputed.map(accuracy),
        baselines: summary.baselines.map(|b| Baselines {
            lstm: accuracy(b.lstm),
            persistence: accuracy(b.persistence),
            window_mean: accuracy(b.window_mean),
            skill_vs_persistence: b.skill(&b.persistence),
            skill_vs_window_mean: b.skill(&b.window_mean),
        }),
        model_age_seconds: summary.model_age.map(|age| ModelAgeSummary {
            p50: age.p50_s,
            p95: age.p95_s,
            max: age.max_s,
        }),
    };
    let nothing_yet = results == Results::default();
    Measurements {
        progress,
        results: (!nothing_yet).then_some(results),
        devices_reported: count(sensors.devices),
        arrived: count(arrived),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattcast_io::store::summary::{BaselineComparison, ModelAge};

    fn summary() -> StoreSummary {
        StoreSummary {
            readings_stored: 1_700,
            readings_imputed: 100,
            windows: 30,
            complete_windows: 20,
            late: 40,
            coverage: Some(0.94),
            latency_ms: Some(Percentiles {
                p50: 10.0,
                p95: 20.0,
                p99: 30.0,
            }),
            window_latency_ms: None,
            forecasts: 28,
            models: 4,
            retrains: 2,
            accuracy: Some(Accuracy {
                scored: 1_500,
                mae: 12.0,
                rmse: 15.0,
                mape: Some(8.0),
            }),
            accuracy_imputed: None,
            baselines: Some(BaselineComparison {
                lstm: Accuracy {
                    scored: 1_400,
                    mae: 11.0,
                    rmse: 14.0,
                    mape: None,
                },
                persistence: Accuracy {
                    scored: 1_400,
                    mae: 16.0,
                    rmse: 20.0,
                    mape: None,
                },
                window_mean: Accuracy {
                    scored: 1_400,
                    mae: 25.0,
                    rmse: 28.0,
                    mape: None,
                },
            }),
            baselines_imputed: None,
            model_age: Some(ModelAge {
                forecasts: 28,
                p50_s: 300.0,
                p95_s: 540.0,
                max_s: 600,
            }),
        }
    }

    #[test]
    fn the_summary_fills_progress_and_results() {
        let measured = from_summary(
            &summary(),
            SensorTotals {
                devices: 2,
                readings_sent: 1_740,
            },
            1_740,
        );
        assert_eq!(
            measured.progress,
            Progress {
                readings_sent: 1_740,
                readings_stored: 1_700,
                windows_emitted: 30,
                late_readings: 40,
                forecasts: 28,
                retrains: 2,
            }
        );
        let results = measured.results.clone().expect("results");
        assert_eq!(results.coverage, Some(0.94));
        assert_eq!(results.latency_ms.map(|l| l.p99), Some(30.0));
        assert_eq!(results.forecast.map(|f| (f.rmse, f.scored)), Some((15.0, 1_500)));
        assert_eq!(
            results.model_age_seconds,
            Some(ModelAgeSummary {
                p50: 300.0,
                p95: 540.0,
                max: 600
            })
        );
        let baselines = results.baselines.expect("baselines");
        assert_eq!(baselines.persistence.rmse, 20.0);
        assert_eq!(baselines.skill_vs_persistence, Some(1.0 - 14.0 / 20.0));
        assert_eq!(baselines.skill_vs_window_mean, Some(0.5));
        assert!(measured.all_arrived(2));
        assert!(!measured.all_arrived(3), "a device has not reported yet");
    }

    #[test]
    fn data_still_in_flight_is_not_all_arrived_and_an_empty_store_has_no_results() {
        let measured = from_summary(
            &summary(),
            SensorTotals {
                devices: 2,
                readings_sent: 1_800,
            },
            1_740,
        );
        assert!(!measured.all_arrived(2));
        let empty = StoreSummary {
            readings_stored: 0,
            readings_imputed: 0,
            windows: 0,
            complete_windows: 0,
            late: 0,
            coverage: None,
            latency_ms: None,
            window_latency_ms: None,
            forecasts: 0,
            models: 0,
            retrains: 0,
            accuracy: None,
            accuracy_imputed: None,
            baselines: None,
            baselines_imputed: None,
            model_age: None,
        };
        assert_eq!(from_summary(&empty, SensorTotals::default(), 0).results, None);
    }
}
