//! The sensors' own account of what they sent, so a run without a shared process (the cluster)
//! can tell when every reading has arrived.

use super::{Store, StoreError};
use std::collections::BTreeMap;
use wattcast_core::reading::DeviceId;

/// What the sensors reported so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SensorTotals {
    /// Devices whose sensor finished and reported.
    pub devices: i64,
    /// Readings they sent.
    pub readings_sent: i64,
}

impl Store {
    /// Records (or replaces, for a retried sensor pod) what each device's sensor sent, in one
    /// statement however many devices a sensor pod replays.
    pub async fn record_sensor_reports(
        &self,
        readings_sent: &BTreeMap<DeviceId, u64>,
        finished_ms: i64,
    ) -> Result<(), StoreError> {
        let devices: Vec<i32> = readings_sent.keys().map(|device| device.0 as i32).collect();
        let sent: Vec<i64> = readings_sent.values().map(|&sent| sent as i64).collect();
        sqlx::query(
            "INSERT INTO sensor_reports (device, readings_sent, finished_ms)
             SELECT device, sent, $3 FROM UNNEST($1::int[], $2::bigint[]) AS r(device, sent)
             ON CONFLICT (device) DO UPDATE SET readings_sent = EXCLUDED.readings_sent,
                 finished_ms = EXCLUDED.finished_ms",
        )
        .bind(devices)
        .bind(sent)
        .bind(finished_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// How many publications of `sensor`'s replay the broker has acknowledged (0 if none).
    pub async fn sensor_progress(&self, sensor: &str) -> Result<u64, StoreError> {
        let acked: Option<i64> = sqlx::query_scalar("SELECT acked FROM sensor_progress WHERE sensor = $1")
            .bind(sensor)
            .fetch_optional(self.pool())
            .await?;
        Ok(acked.map_or(0, |acked| acked.max(0) as u64))
    }

    /// Records that the broker has acknowledged `acked` publications of `sensor`'s replay
    /// (never moves it back).
    pub async fn record_sensor_progress(
        &self,
        sensor: &str,
        acked: u64,
        updated_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sensor_progress (sensor, acked, updated_ms) VALUES ($1, $2, $3)
             ON CONFLICT (sensor) DO UPDATE SET acked = GREATEST(sensor_progress.acked, EXCLUDED.acked),
                 updated_ms = EXCLUDED.updated_ms",
        )
        .bind(sensor)
        .bind(acked as i64)
        .bind(updated_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The devices that reported and the readings they sent.
    pub async fn sensor_totals(&self) -> Result<SensorTotals, StoreError> {
        let (devices, readings_sent): (i64, Option<i64>) =
            sqlx::query_as("SELECT count(*), sum(readings_sent)::bigint FROM sensor_reports")
                .fetch_one(self.pool())
                .await?;
        Ok(SensorTotals {
            devices,
            readings_sent: readings_sent.unwrap_or(0),
        })
    }
}
