//! The experiment's PostgreSQL store: one schema per experiment, made by migrations; windows,
//! readings and late readings written idempotently.

pub mod models;
pub mod run;
pub mod sensor_reports;
pub mod summary;

use crate::imputation::FilledPoint;
use crate::reading::DeviceId;
use crate::wire::{LateMessage, WindowMessage};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not a PostgreSQL URL.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(#[source] sqlx::Error),
    /// A query failed.
    #[error("PostgreSQL: {0}")]
    Query(#[from] sqlx::Error),
    /// The migrations failed.
    #[error("migrating schema {schema}: {source}")]
    Migrate {
        /// The experiment's schema.
        schema: String,
        /// What went wrong.
        source: sqlx::migrate::MigrateError,
    },
    /// A stored value could not be read back.
    #[error("decoding a stored value: {0}")]
    Decode(String),
}

/// A connection pool whose connections work in the experiment's schema.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    schema: String,
}

impl Store {
    /// Connects with `search_path` set to `schema` (which must be a plain identifier).
    pub async fn connect(url: &str, schema: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(StoreError::Url)?
            .options([("search_path", schema)]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            schema: schema.to_owned(),
        })
    }

    /// Creates the schema if needed and applies the migrations (safe to run concurrently:
    /// sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", self.schema))
            .execute(&self.pool)
            .await?;
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                schema: self.schema.clone(),
                source,
            })
    }

    /// Drops the experiment's schema and everything in it.
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The pool, for queries of other modules.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Stores a window and its filled seconds in one transaction. Idempotent: a redelivered
    /// window changes nothing, except that a measured value replaces an imputed one for the
    /// same second (so no measured reading is ever lost to an earlier filler).
    pub async fn store_window(
        &self,
        message: &WindowMessage,
        filled: &[FilledPoint],
        stored_ms: i64,
    ) -> Result<(), StoreError> {
        let window = &message.window;
        let device = window.device.0 as i32;
        let published: std::collections::HashMap<i64, Option<i64>> = window
            .readings
            .iter()
            .map(|reading| (reading.event_time, reading.published_ms))
            .collect();
        let times: Vec<i64> = filled.iter().map(|point| point.event_time).collect();
        let powers: Vec<f64> = filled.iter().map(|point| point.power_w).collect();
        let imputed: Vec<bool> = filled.iter().map(|point| point.imputed).collect();
        let published_ms: Vec<Option<i64>> = filled
            .iter()
            .map(|point| published.get(&point.event_time).copied().flatten())
            .collect();

        let mut transaction = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO readings (device, event_time, power_w, imputed, published_ms, stored_ms)
             SELECT $1, t.event_time, t.power_w, t.imputed, t.published_ms, $6
             FROM UNNEST($2::bigint[], $3::double precision[], $4::boolean[], $5::bigint[])
                  AS t(event_time, power_w, imputed, published_ms)
             ON CONFLICT (device, event_time) DO UPDATE
                SET power_w = EXCLUDED.power_w, imputed = false,
                    published_ms = EXCLUDED.published_ms, stored_ms = EXCLUDED.stored_ms
                WHERE readings.imputed AND NOT EXCLUDED.imputed",
        )
        .bind(device)
        .bind(&times)
        .bind(&powers)
        .bind(&imputed)
        .bind(&published_ms)
        .bind(stored_ms)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO windows (device, window_start, window_end, received, expected, emitted_ms, stored_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (device, window_start) DO NOTHING",
        )
        .bind(device)
        .bind(window.start)
        .bind(window.end)
        .bind(window.readings.len() as i32)
        .bind(window.expected as i32)
        .bind(message.emitted_ms)
        .bind(stored_ms)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Stores a late reading (idempotent).
    pub async fn store_late(&self, late: &LateMessage, stored_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO late_readings (device, event_time, power_w, window_start, watermark_ms, published_ms, stored_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (device, event_time) DO NOTHING",
        )
        .bind(late.reading.device.0 as i32)
        .bind(late.reading.event_time)
        .bind(late.reading.power_w)
        .bind(late.window_start)
        .bind(late.watermark_ms)
        .bind(late.reading.published_ms)
        .bind(stored_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recent stored values of a device, oldest first (for look-back and retraining).
    pub async fn latest_values(&self, device: DeviceId, limit: i64) -> Result<Vec<(i64, f64)>, StoreError> {
        let mut rows: Vec<(i64, f64)> = sqlx::query_as(
            "SELECT event_time, power_w FROM readings WHERE device = $1 ORDER BY event_time DESC LIMIT $2",
        )
        .bind(device.0 as i32)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.reverse();
        Ok(rows)
    }
}
