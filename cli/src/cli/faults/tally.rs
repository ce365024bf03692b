//! What a fault run should have stored (the windowing engine over exactly what the sensors
//! replay, with no fault) against what its PostgreSQL holds: lost, duplicated, misplaced.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use wattcast_core::windowing::{WindowEngine, WindowEvent};
use wattcast_crds::PipelineExperiment;
use wattcast_io::dataset_source::DataSource;
use wattcast_io::store::Store;

/// A reading's identity: (device, event second).
type Key = (i32, i64);

/// The fault-free outcome: which readings land in windows and which are late.
pub struct Truth {
    /// Readings the sensors send (rows of the dataset, duplicates of a second included).
    pub sent: u64,
    /// Readings in windows, with their watts (a duplicate second keeps the later value, as the
    /// engine does).
    pub windowed: BTreeMap<Key, f64>,
    /// Readings that arrive after their window fired.
    pub late: BTreeSet<Key>,
    /// Windows the engine emits.
    pub windows: u64,
}

impl Truth {
    /// Runs the experiment's windowing engine over each device's readings in arrival order.
    pub async fn of(experiment: &PipelineExperiment) -> Result<Self> {
        let spec = &experiment.spec;
        let devices = DataSource::of(spec, None)?.load(spec, None).await?;
        let mut engine = WindowEngine::new(wattcast_core::experiment::window_config(spec)?);
        let mut events = Vec::new();
        let mut sent = 0u64;
        for (device, readings) in devices {
            sent += readings.len() as u64;
            for reading in readings {
                engine.push(reading, 0, &mut events);
            }
            engine.finish_device(device, &mut events);
        }
        let mut truth = Self {
            sent,
            windowed: BTreeMap::new(),
            late: BTreeSet::new(),
            windows: 0,
        };
        for event in events {
            match event {
                WindowEvent::Emitted(window) => {
                    truth.windows += 1;
                    for reading in window.readings {
                        truth
                            .windowed
                            .insert((reading.device.0 as i32, reading.event_time), reading.power_w);
                    }
                }
                WindowEvent::Late(late) => {
                    truth
                        .late
                        .insert((late.reading.device.0 as i32, late.reading.event_time));
                }
            }
        }
        Ok(truth)
    }
}

/// One fault run's account, read from the experiment's PostgreSQL and Pulsar.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Readings the sensors sent (each once, however often a restarted sensor re-sent one).
    pub sent: u64,
    /// Distinct readings stored in windows (measured seconds).
    pub stored: u64,
    /// Distinct readings stored as late.
    pub late: u64,
    /// Messages on the dead-letter topic.
    pub dead_lettered: u64,
    /// Readings sent and found nowhere: in no window, not late, not dead-lettered.
    pub lost: u64,
    /// Readings stored twice: in a window and as late (a copy of a windowed reading taken for
    /// a late one).
    pub duplicated: u64,
    /// Readings stored once but on the other side of their window's firing than in the
    /// fault-free run: windowed where it counts them late, or late where it windows them
    /// (readings that arrived in another order).
    pub misplaced: u64,
    /// Stored readings whose watts differ from what was sent.
    pub wrong_value: u64,
    /// Windows stored.
    pub windows: u64,
    /// Windows the fault-free run emits.
    pub windows_expected: u64,
    /// Windows stored again with different contents (a second emission that changed seconds).
    pub windows_changed: u64,
    /// Forecasts stored per window stored.
    pub forecasts_per_window: f64,
    /// Retrain requests answered with a model (retrained models stored).
    pub retrains: u64,
}

impl Tally {
    /// Compares the store with the fault-free run.
    pub async fn read(store: &Store, truth: &Truth, dead_lettered: u64) -> Result<Self> {
        let windowed: Vec<(i32, i64, f64)> =
            sqlx::query_as("SELECT device, event_time, power_w FROM readings WHERE NOT imputed")
                .fetch_all(store.pool())
                .await?;
        let late: Vec<(i32, i64)> = sqlx::query_as("SELECT device, event_time FROM late_readings")
            .fetch_all(store.pool())
            .await?;
        let (windows, windows_changed): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE EXISTS
                 (SELECT 1 FROM unnest(restored_ms) AS r(ms) WHERE r.ms IS NOT NULL))
             FROM windows",
        )
        .fetch_one(store.pool())
        .await?;
        let counts = store.counts().await?;

        let stored: BTreeMap<Key, f64> = windowed
            .into_iter()
            .map(|(device, time, watts)| ((device, time), watts))
            .collect();
        let late: BTreeSet<Key> = late.into_iter().collect();
        let expected: BTreeSet<Key> = truth.windowed.keys().chain(&truth.late).copied().collect();
        let found = |key: &Key| stored.contains_key(key) || late.contains(key);
        let missing = expected.iter().filter(|key| !found(key)).count() as u64;
        let in_both = late.iter().filter(|key| stored.contains_key(key)).count() as u64;
        let late_not_late = late
            .iter()
            .filter(|key| !stored.contains_key(key) && truth.windowed.contains_key(key))
            .count() as u64;
        let windowed_not_late = stored.keys().filter(|key| truth.late.contains(key)).count() as u64;
        let wrong_value = stored
            .iter()
            .filter(|(key, watts)| truth.windowed.get(key).is_some_and(|sent| sent != *watts))
            .count() as u64;
        Ok(Self {
            sent: truth.sent,
            stored: stored.len() as u64,
            late: late.len() as u64,
            dead_lettered,
            lost: missing.saturating_sub(dead_lettered),
            duplicated: in_both,
            misplaced: windowed_not_late + late_not_late,
            wrong_value,
            windows: windows as u64,
            windows_expected: truth.windows,
            windows_changed: windows_changed as u64,
            forecasts_per_window: if windows > 0 {
                counts.forecasts as f64 / windows as f64
            } else {
                0.0
            },
            retrains: counts.retrains as u64,
        })
    }
}
