//! The coordinator's retrain schedule, kept in the store so that it survives a restart.

use super::{Store, StoreError};
use wattcast_core::DeviceId;

impl Store {
    /// Where the device's retrain clock stands: the event time up to which a retrain was last
    /// requested, else the start of its first stored window; `None` for a device with neither.
    pub async fn retrain_clock(&self, device: DeviceId) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT coalesce(
                 (SELECT requested_until FROM retrain_clock WHERE device = $1),
                 (SELECT min(window_start) FROM windows WHERE device = $1))",
        )
        .bind(device.0 as i32)
        .fetch_one(self.pool())
        .await?)
    }

    /// Records that a retrain up to `until` was requested for the device.
    pub async fn record_retrain_request(&self, device: DeviceId, until: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO retrain_clock (device, requested_until) VALUES ($1, $2)
             ON CONFLICT (device) DO UPDATE SET requested_until = greatest(retrain_clock.requested_until, $2)",
        )
        .bind(device.0 as i32)
        .bind(until)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
