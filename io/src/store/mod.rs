//! The experiment's PostgreSQL store: one schema per experiment, made by migrations; windows,
//! readings and late readings written idempotently.

pub mod models;
pub mod retrain_clock;
pub mod run;
pub mod sensor_reports;
pub mod summary;

use crate::services::PostgresEndpoint;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use std::str::FromStr;
use std::time::Duration;
use wattcast_core::imputation::FilledPoint;
use wattcast_core::reading::DeviceId;
use wattcast_core::wire::{LateMessage, WindowMessage};

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
    /// A window's filled seconds do not run one per second from its start (`impute` always
    /// fills them so; seconds from elsewhere are checked, since the arrays' positions are the times).
    #[error(
        "window of device {device} starting at {window_start}: second {offset} is at {event_time}, not one per second from the start"
    )]
    NotContiguous {
        /// The device.
        device: DeviceId,
        /// The window's start (epoch seconds).
        window_start: i64,
        /// Which filled second is out of place.
        offset: usize,
        /// Its event time.
        event_time: i64,
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
    /// Connects with `search_path` set to `schema` (which must be a plain identifier). The
    /// URL's `sslmode` decides TLS; `verify-ca`/`verify-full` check the server's certificate
    /// against the endpoint's CA bundle (or the public roots).
    pub async fn connect(
        postgres: &PostgresEndpoint,
        schema: &str,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(&postgres.url)
            .map_err(StoreError::Url)?
            .options([("search_path", schema)]);
        // sqlx's `verify-ca` verifier takes the process's default crypto provider.
        crate::tls::ensure_default_provider();
        if let Some(ca) = &postgres.ca {
            options = options.ssl_root_cert_from_pem(ca.pem().to_vec());
            // As libpq: `require` with a root certificate given checks the CA.
            if matches!(options.get_ssl_mode(), PgSslMode::Require) {
                options = options.ssl_mode(PgSslMode::VerifyCa);
            }
        }
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
    /// after another, in one transaction of one statement per group of windows with distinct
    /// keys (a window delivered twice goes into the next group, since one statement may not
    /// touch a row twice). One round trip per group instead of one per window, and one row per
    /// window holding its seconds as arrays, are what let the coordinator keep up when thousands
    /// of windows close in the same second.
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
        let rule = match on_conflict {
            OnConflict::Fail => "",
            OnConflict::Merge => MERGE_IMPUTED_SECONDS,
        };
        let insert = format!(
            "INSERT INTO windows AS old (device, window_start, window_end, received, expected, emitted_ms,
                                         stored_ms, power_w, imputed, published_ms)
             SELECT t.device, t.window_start, t.window_end, t.received, t.expected, t.emitted_ms,
                    $2, t.power_w, t.imputed, t.published_ms
             FROM UNNEST($1::window_row[]) AS t
             {rule}"
        );
        let mut transaction = self.pool.begin().await?;
        for group in groups_with_distinct_keys(windows) {
            let rows = group
                .iter()
                .map(|(message, filled)| WindowRow::of(message, filled))
                .collect::<Result<Vec<_>, _>>()?;
            sqlx::query(&insert)
                .bind(&rows)
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
        self.values_before(device, i64::MAX, limit).await
    }

    /// The device's latest `limit` stored values before `before` (epoch seconds), oldest first.
    ///
    /// Reads only the latest windows that can hold them (all of an experiment's windows are as
    /// long), not every window of the device, so it costs the same after a day as after a minute.
    pub async fn values_before(
        &self,
        device: DeviceId,
        before: i64,
        limit: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let mut rows: Vec<(i64, f64)> = sqlx::query_as(
            "WITH latest AS (
                 SELECT greatest(cardinality(power_w), 1) AS seconds FROM windows
                 WHERE device = $1 AND window_start < $2 ORDER BY window_start DESC LIMIT 1),
             recent AS (
                 SELECT window_start, power_w FROM windows
                 WHERE device = $1 AND window_start < $2 ORDER BY window_start DESC
                 LIMIT (SELECT ($3 + seconds - 1) / seconds + 1 FROM latest))
             SELECT w.window_start + s.second - 1 AS event_time, s.power_w
             FROM recent w CROSS JOIN LATERAL unnest(w.power_w) WITH ORDINALITY AS s(power_w, second)
             WHERE w.window_start + s.second - 1 < $2
             ORDER BY event_time DESC LIMIT $3",
        )
        .bind(device.0 as i32)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.reverse();
        Ok(rows)
    }
}

/// The conflict rule of a window stored again: per second, a measured value replaces an imputed
/// one (and records when, in `restored_ms`); everything else, and the window's own columns, stay.
const MERGE_IMPUTED_SECONDS: &str = "ON CONFLICT (device, window_start) DO UPDATE
    SET (power_w, imputed, published_ms, restored_ms) = (
        SELECT array_agg(CASE WHEN m.replace THEN m.new_power ELSE m.old_power END ORDER BY m.second),
               array_agg(m.old_imputed AND NOT m.replace ORDER BY m.second),
               array_agg(CASE WHEN m.replace THEN m.new_published ELSE m.old_published END ORDER BY m.second),
               array_agg(CASE WHEN m.replace THEN EXCLUDED.stored_ms ELSE m.old_restored END ORDER BY m.second)
        FROM (SELECT o.second, o.power_w AS old_power, o.imputed AS old_imputed,
                     o.published_ms AS old_published, o.restored_ms AS old_restored,
                     n.power_w AS new_power, n.published_ms AS new_published,
                     coalesce(o.imputed AND NOT n.imputed, false) AS replace
              FROM unnest(old.power_w, old.imputed, old.published_ms, old.restored_ms)
                   WITH ORDINALITY AS o(power_w, imputed, published_ms, restored_ms, second)
              LEFT JOIN unnest(EXCLUDED.power_w, EXCLUDED.imputed, EXCLUDED.published_ms)
                   WITH ORDINALITY AS n(power_w, imputed, published_ms, second) USING (second)) AS m)
    WHERE true = ANY (old.imputed)";

/// What an insert does with a row whose key is already stored.
#[derive(Debug, Clone, Copy)]
enum OnConflict {
    /// Fail (the fast path: no conflict check per row).
    Fail,
    /// A measured value replaces an imputed one; anything else stays.
    Merge,
}

/// A window and its seconds as one element of the `window_row[]` an insert takes.
#[derive(Debug, sqlx::Type)]
#[sqlx(type_name = "window_row")]
struct WindowRow {
    device: i32,
    window_start: i64,
    window_end: i64,
    received: i32,
    expected: i32,
    emitted_ms: i64,
    power_w: Vec<f64>,
    imputed: Vec<bool>,
    published_ms: Vec<Option<i64>>,
}

impl WindowRow {
    /// The row of `message`, whose `filled` seconds must run one per second from its start.
    fn of(message: &WindowMessage, filled: &[FilledPoint]) -> Result<Self, StoreError> {
        let window = &message.window;
        if let Some((offset, point)) = filled
            .iter()
            .enumerate()
            .find(|(offset, point)| point.event_time != window.start + *offset as i64)
        {
            return Err(StoreError::NotContiguous {
                device: window.device,
                window_start: window.start,
                offset,
                event_time: point.event_time,
            });
        }
        let mut published_ms = vec![None; filled.len()];
        for reading in &window.readings {
            let offset = usize::try_from(reading.event_time - window.start).ok();
            if let Some(slot) = offset.and_then(|offset| published_ms.get_mut(offset)) {
                *slot = reading.published_ms;
            }
        }
        Ok(Self {
            device: window.device.0 as i32,
            window_start: window.start,
            window_end: window.end,
            received: i32::try_from(window.readings.len()).unwrap_or(i32::MAX),
            expected: window.expected as i32,
            emitted_ms: message.emitted_ms,
            power_w: filled.iter().map(|point| point.power_w).collect(),
            imputed: filled.iter().map(|point| point.imputed).collect(),
            published_ms,
        })
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
    use wattcast_core::window::Window;

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

    #[test]
    fn a_window_row_places_each_second_and_its_publish_time_by_offset() {
        let mut window = message(4, 120);
        window.window.expected = 3;
        window.window.end = 123;
        window.window.readings = [(120, 5.0, Some(1_000)), (122, 7.0, None)]
            .into_iter()
            .map(
                |(event_time, power_w, published_ms)| wattcast_core::reading::Reading {
                    device: DeviceId(4),
                    event_time,
                    power_w,
                    published_ms,
                },
            )
            .collect();
        let filled = wattcast_core::imputation::impute(
            &window.window,
            wattcast_core::imputation::ImputationMethod::Mean,
        )
        .expect("fills");
        let row = WindowRow::of(&window, &filled).expect("contiguous");
        assert_eq!(row.power_w, vec![5.0, 6.0, 7.0]);
        assert_eq!(row.imputed, vec![false, true, false]);
        assert_eq!(row.published_ms, vec![Some(1_000), None, None]);
        assert_eq!((row.received, row.expected), (2, 3));
    }

    #[test]
    fn seconds_that_skip_one_are_refused_naming_the_window_and_the_second() {
        let window = message(4, 120);
        let filled = [120, 121, 123].map(|event_time| FilledPoint {
            event_time,
            power_w: 1.0,
            imputed: false,
        });
        let error = WindowRow::of(&window, &filled).expect_err("a gap");
        assert!(
            matches!(
                error,
                StoreError::NotContiguous {
                    window_start: 120,
                    offset: 2,
                    event_time: 123,
                    ..
                }
            ),
            "{error}"
        );
    }
}
