//! A window: one device's readings for one interval of event time.

use crate::reading::{DeviceId, Reading};
use serde::{Deserialize, Serialize};

/// One device's readings for the event-time interval `[start, end)`, epoch seconds.
///
/// Readings are sorted by event time and hold at most one reading per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// The device the readings belong to.
    pub device: DeviceId,
    /// First second of the window (inclusive), epoch seconds.
    pub start: i64,
    /// End of the window (exclusive), epoch seconds.
    pub end: i64,
    /// The readings that were placed in the window, sorted by event time.
    pub readings: Vec<Reading>,
    /// How many readings a complete window holds (one per second).
    pub expected: u32,
    /// Readings of this window that arrived after it was emitted, as far as the producer of this
    /// value knows: the streaming engine emits 0 (lateness is only known afterwards and is routed
    /// to the `late` topic); offline previews and the store fill it in.
    #[serde(default)]
    pub late: u32,
}

impl Window {
    /// Whether every expected second has a reading.
    pub fn is_complete(&self) -> bool {
        self.readings.len() >= self.expected as usize
    }

    /// How many expected seconds have no reading.
    pub fn missing(&self) -> u32 {
        self.expected
            .saturating_sub(u32::try_from(self.readings.len()).unwrap_or(u32::MAX))
    }

    /// Fraction of the expected readings that are present, in `[0, 1]`.
    pub fn coverage(&self) -> f64 {
        if self.expected == 0 {
            return 1.0;
        }
        (self.readings.len() as f64 / self.expected as f64).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window_with(count: usize) -> Window {
        Window {
            device: DeviceId(1),
            start: 60,
            end: 120,
            readings: (0..count)
                .map(|i| Reading::new(DeviceId(1), 60 + i as i64, 1.0))
                .collect(),
            expected: 60,
            late: 0,
        }
    }

    #[test]
    fn completeness_and_coverage_follow_the_reading_count() {
        let full = window_with(60);
        assert!(full.is_complete());
        assert_eq!(full.missing(), 0);
        assert_eq!(full.coverage(), 1.0);

        let partial = window_with(45);
        assert!(!partial.is_complete());
        assert_eq!(partial.missing(), 15);
        assert_eq!(partial.coverage(), 0.75);
    }
}
