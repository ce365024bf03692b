//! The `models` and `forecasts` tables: which model each device has, and what it forecast.

use super::{Store, StoreError};
use wattcast_core::reading::DeviceId;

/// A row of `models`: one trained model of a device.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ModelRecord {
    /// The device.
    pub device: i32,
    /// `initial` or `{from}-{to}`.
    pub version: String,
    /// First reading trained on (epoch seconds), when known.
    pub data_from: Option<i64>,
    /// Last reading trained on, when known.
    pub data_to: Option<i64>,
    /// Readings trained on.
    pub readings: i32,
    /// Training wall-clock seconds.
    pub train_seconds: f64,
    /// One-step test RMSE (watts).
    pub test_rmse: Option<f64>,
    /// One-step test MAE (watts).
    pub test_mae: Option<f64>,
    /// Persistence baseline RMSE on the same targets.
    pub baseline_rmse: Option<f64>,
    /// Object-store prefix of its files.
    pub object_prefix: String,
    /// When it was recorded (epoch ms).
    pub created_ms: i64,
}

impl Store {
    /// Records a model (idempotent: a model recorded twice keeps its first row).
    pub async fn record_model(&self, model: &ModelRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO models (device, version, data_from, data_to, readings, train_seconds, test_rmse,
                                 test_mae, baseline_rmse, object_prefix, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (device, version) DO NOTHING",
        )
        .bind(model.device)
        .bind(&model.version)
        .bind(model.data_from)
        .bind(model.data_to)
        .bind(model.readings)
        .bind(model.train_seconds)
        .bind(model.test_rmse)
        .bind(model.test_mae)
        .bind(model.baseline_rmse)
        .bind(&model.object_prefix)
        .bind(model.created_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The device's newest model: the retrain on the latest data, else the initial one.
    pub async fn latest_model(&self, device: DeviceId) -> Result<Option<ModelRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM models WHERE device = $1
             ORDER BY (version = 'initial'), data_to DESC NULLS LAST, created_ms DESC LIMIT 1",
        )
        .bind(device.0 as i32)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Which of `devices` have at least one recorded model: one query for a whole batch of
    /// windows, instead of one per device that has none yet.
    pub async fn devices_with_models(&self, devices: &[DeviceId]) -> Result<Vec<DeviceId>, StoreError> {
        let ids: Vec<i32> = devices.iter().map(|device| device.0 as i32).collect();
        let rows: Vec<(i32,)> = sqlx::query_as("SELECT DISTINCT device FROM models WHERE device = ANY($1)")
            .bind(&ids)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(device,)| DeviceId(device as u32))
            .collect())
    }

    /// Stores the forecast made at `origin` (idempotent: a redelivered window changes nothing).
    pub async fn store_forecast(
        &self,
        device: DeviceId,
        origin: i64,
        values: &[f64],
        model_version: &str,
        stored_ms: i64,
    ) -> Result<(), StoreError> {
        let times: Vec<i64> = (0..values.len() as i64).map(|step| origin + step).collect();
        sqlx::query(
            "INSERT INTO forecasts (device, origin, event_time, power_w, model_version, stored_ms)
             SELECT $1, $2, t.event_time, t.power_w, $5, $6
             FROM UNNEST($3::bigint[], $4::double precision[]) AS t(event_time, power_w)
             ON CONFLICT (device, origin, event_time) DO NOTHING",
        )
        .bind(device.0 as i32)
        .bind(origin)
        .bind(&times)
        .bind(values)
        .bind(model_version)
        .bind(stored_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
