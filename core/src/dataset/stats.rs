//! Statistics of a dataset as read: gaps per minute and how far arrivals run behind.

use crate::reading::{DeviceId, Reading};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// What one device's readings look like, in arrival order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceSummary {
    /// The device.
    pub device: DeviceId,
    /// Readings read (duplicates included).
    pub readings: u64,
    /// Readings for a second already seen.
    pub duplicates: u64,
    /// First event time, epoch seconds.
    pub first: i64,
    /// Last event time, epoch seconds.
    pub last: i64,
    /// Calendar minutes with at least one reading.
    pub minutes: u64,
    /// Fewest seconds missing from a minute (first and last minute included).
    pub min_missing_per_minute: u64,
    /// Mean seconds missing per minute.
    pub mean_missing_per_minute: f64,
    /// Most seconds missing from a minute.
    pub max_missing_per_minute: u64,
    /// Readings that arrived after a reading with a later event time.
    pub out_of_order: u64,
    /// Readings that arrived a minute or more (of event time) behind the latest seen.
    pub behind_a_minute_or_more: u64,
    /// The largest lag behind the latest event time seen, seconds.
    pub max_lag_seconds: i64,
}

/// Summarises each device's readings, in device order.
pub fn summarise(readings: &[Reading]) -> Vec<DeviceSummary> {
    let mut by_device: BTreeMap<DeviceId, Vec<&Reading>> = BTreeMap::new();
    for reading in readings {
        by_device.entry(reading.device).or_default().push(reading);
    }
    by_device
        .into_iter()
        .map(|(device, readings)| summarise_device(device, &readings))
        .collect()
}

fn summarise_device(device: DeviceId, readings: &[&Reading]) -> DeviceSummary {
    let mut seen = HashSet::with_capacity(readings.len());
    let mut per_minute: BTreeMap<i64, u64> = BTreeMap::new();
    let (mut duplicates, mut out_of_order, mut behind, mut max_lag) = (0, 0, 0, 0);
    let mut latest = i64::MIN;
    for reading in readings {
        if !seen.insert(reading.event_time) {
            duplicates += 1;
            continue;
        }
        *per_minute.entry(reading.event_time.div_euclid(60)).or_default() += 1;
        if reading.event_time < latest {
            out_of_order += 1;
            let lag = latest - reading.event_time;
            max_lag = max_lag.max(lag);
            if lag >= 60 {
                behind += 1;
            }
        }
        latest = latest.max(reading.event_time);
    }
    let missing: Vec<u64> = per_minute
        .values()
        .map(|count| 60u64.saturating_sub(*count))
        .collect();
    let minutes = missing.len() as u64;
    DeviceSummary {
        device,
        readings: readings.len() as u64,
        duplicates,
        first: seen.iter().copied().min().unwrap_or(0),
        last: seen.iter().copied().max().unwrap_or(0),
        minutes,
        min_missing_per_minute: missing.iter().copied().min().unwrap_or(0),
        mean_missing_per_minute: missing.iter().sum::<u64>() as f64 / minutes.max(1) as f64,
        max_missing_per_minute: missing.iter().copied().max().unwrap_or(0),
        out_of_order,
        behind_a_minute_or_more: behind,
        max_lag_seconds: max_lag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_gaps_duplicates_and_lag() {
        let times = [0, 1, 2, 70, 3, 3, 130, 5];
        let readings: Vec<Reading> = times.iter().map(|t| Reading::new(DeviceId(9), *t, 1.0)).collect();
        let summary = &summarise(&readings)[0];
        assert_eq!(summary.readings, 8);
        assert_eq!(summary.duplicates, 1);
        assert_eq!(summary.minutes, 3);
        assert_eq!(summary.min_missing_per_minute, 60 - 5);
        assert_eq!(summary.max_missing_per_minute, 59);
        assert_eq!(summary.out_of_order, 2);
        assert_eq!(summary.behind_a_minute_or_more, 2);
        assert_eq!(summary.max_lag_seconds, 125);
        assert_eq!((summary.first, summary.last), (0, 130));
    }
}
