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
        self.store_windows(&[(message, filled)], stored_ms).await
    }

    /// Stores windows and their filled seconds, exactly as [`Store::store_window`] would one
    /// after another, in one transaction of two statements per group of windows with distinct
    /// keys (a window delivered twice goes into the next group, since one statement may not
    /// touch a row twice). One round trip per group instead of three per window is what lets
    /// the coordinator keep up when thousands of windows close in the same second.
    ///
    /// Plain inserts are tried first: checking every row for a conflict costs PostgreSQL about
    /// twice as much, and conflicts only come with redeliveries. If one happens, that transaction
    /// is rolled back and the batch is stored again with the conflict rules.
    pub async fn store_windows(
        &self,
        windows: &[(&WindowMessage, &[FilledPoint])],
        stored_ms: i64,
    ) -> Result<(), StoreError> {
        if windows.is_empty() {
            return Ok(());
        }
        match self.insert_windows(windows, stored_ms, OnConflict::Fail).await {
            Err(StoreError::Query(error))
                if error
                    .as_database_error()
                    .is_some_and(|database| database.is_unique_violation()) =>
            {
                self.insert_windows(windows, stored_ms, OnConflict::Merge).await
            }
            result => result,
        }
    }

    async fn insert_windows(
        &self,
        windows: &[(&WindowMessage, &[FilledPoint])],
        stored_ms: i64,
        on_conflict: OnConflict,
    ) -> Result<(), StoreError> {
        let (readings_rule, windows_rule) = match on_conflict {
            OnConflict::Fail => ("", ""),
            OnConflict::Merge => (
                "ON CONFLICT (device, event_time) DO UPDATE
                    SET power_w = EXCLUDED.power_w, imputed = false,
                        published_ms = EXCLUDED.published_ms, stored_ms = EXCLUDED.stored_ms
                    WHERE readings.imputed AND NOT EXCLUDED.imputed",
                "ON CONFLICT (device, window_start) DO NOTHING",
            ),
        };
        let insert_readings = format!(
            "INSERT INTO readings (device, event_time, power_w, imputed, published_ms, stored_ms)
             SELECT t.device, t.event_time, t.power_w, t.imputed, t.published_ms, $6
             FROM UNNEST($1::integer[], $2::bigint[], $3::double precision[], $4::boolean[], $5::bigint[])
                  AS t(device, event_time, power_w, imputed, published_ms)
             {readings_rule}"
        );
        let insert_windows = format!(
            "INSERT INTO windows (device, window_start, window_end, received, expected, emitted_ms, stored_ms)
             SELECT t.device, t.window_start, t.window_end, t.received, t.expected, t.emitted_ms, $7
             FROM UNNEST($1::integer[], $2::bigint[], $3::bigint[], $4::integer[], $5::integer[], $6::bigint[])
                  AS t(device, window_start, window_end, received, expected, emitted_ms)
             {windows_rule}"
        );
        let mut transaction = self.pool.begin().await?;
        for group in groups_with_distinct_keys(windows) {
            let rows = ReadingRows::of(&group);
            sqlx::query(&insert_readings)
                .bind(&rows.devices)
                .bind(&rows.times)
                .bind(&rows.powers)
                .bind(&rows.imputed)
                .bind(&rows.published_ms)
                .bind(stored_ms)
                .execute(&mut *transaction)
                .await?;
            let windows: Vec<&crate::window::Window> =
                group.iter().map(|(message, _)| &message.window).collect();
            let devices: Vec<i32> = windows.iter().map(|w| w.device.0 as i32).collect();
            let starts: Vec<i64> = windows.iter().map(|w| w.start).collect();
            let ends: Vec<i64> = windows.iter().map(|w| w.end).collect();
            let received: Vec<i32> = windows.iter().map(|w| w.readings.len() as i32).collect();
            let expected: Vec<i32> = windows.iter().map(|w| w.expected as i32).collect();
            let emitted: Vec<i64> = group.iter().map(|(message, _)| message.emitted_ms).collect();
            sqlx::query(&insert_windows)
                .bind(&devices)
                .bind(&starts)
                .bind(&ends)
                .bind(&received)
                .bind(&expected)
                .bind(&emitted)
                .bind(stored_ms)
                .execute(&mut *transaction)
                .await?;
        }
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

/// What an insert does with a row whose key is already stored.
#[derive(Debug, Clone, Copy)]
enum OnConflict {
    /// Fail (the fast path: no conflict check per row).
    Fail,
    /// A measured value replaces an imputed one; anything else stays.
    Merge,
}

/// The readings of a group of windows as the column arrays of one `UNNEST` insert.
struct ReadingRows {
    devices: Vec<i32>,
    times: Vec<i64>,
    powers: Vec<f64>,
    imputed: Vec<bool>,
    published_ms: Vec<Option<i64>>,
}

impl ReadingRows {
    fn of(windows: &[(&WindowMessage, &[FilledPoint])]) -> Self {
        let total = windows.iter().map(|(_, filled)| filled.len()).sum();
        let mut rows = Self {
            devices: Vec::with_capacity(total),
            times: Vec::with_capacity(total),
            powers: Vec::with_capacity(total),
            imputed: Vec::with_capacity(total),
            published_ms: Vec::with_capacity(total),
        };
        for (message, filled) in windows {
            let window = &message.window;
            let published: std::collections::HashMap<i64, Option<i64>> = window
                .readings
                .iter()
                .map(|reading| (reading.event_time, reading.published_ms))
                .collect();
            for point in *filled {
                rows.devices.push(window.device.0 as i32);
                rows.times.push(point.event_time);
                rows.powers.push(point.power_w);
                rows.imputed.push(point.imputed);
                rows.published_ms
                    .push(published.get(&point.event_time).copied().flatten());
            }
        }
        rows
    }
}

/// Splits `windows` (in order) into runs in which no (device, window start) repeats.
fn groups_with_distinct_keys<'a, T: Copy>(
    windows: &[(&'a WindowMessage, T)],
) -> Vec<Vec<(&'a WindowMessage, T)>> {
    let mut groups: Vec<Vec<(&WindowMessage, T)>> = vec![Vec::new()];
    let mut keys = std::collections::HashSet::new();
    for &(message, filled) in windows {
        let key = (message.window.device, message.window.start);
        if !keys.insert(key) {
            groups.push(Vec::new());
            keys.clear();
            keys.insert(key);
        }
        if let Some(group) = groups.last_mut() {
            group.push((message, filled));
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Window;

    fn message(device: u32, start: i64) -> WindowMessage {
        WindowMessage {
            window: Window {
                device: DeviceId(device),
                start,
                end: start + 60,
                readings: Vec::new(),
                expected: 60,
                late: 0,
            },
            emitted_ms: 0,
        }
    }

    #[test]
    fn a_repeated_window_starts_a_new_group_and_order_is_kept() {
        let messages = [
            message(1, 0),
            message(2, 0),
            message(1, 60),
            message(2, 0),
            message(3, 0),
        ];
        let items: Vec<(&WindowMessage, usize)> = messages.iter().zip(0..).collect();
        let groups: Vec<Vec<usize>> = groups_with_distinct_keys(&items)
            .into_iter()
            .map(|group| group.into_iter().map(|(_, index)| index).collect())
            .collect();
        assert_eq!(groups, vec![vec![0, 1, 2], vec![3, 4]]);
    }
}
