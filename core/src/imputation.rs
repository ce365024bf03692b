//! Filling a window's missing seconds so the forecaster always sees a full minute.

use crate::window::Window;
use serde::{Deserialize, Serialize};

/// How missing seconds are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
pub enum ImputationMethod {
    /// The mean of the window's readings (the original's choice).
    #[default]
    Mean,
    /// Straight line between the neighbouring readings; edges take the nearest reading.
    Linear,
    /// The previous reading carried forward; a gap at the start takes the first reading.
    Previous,
}

/// One second of a filled window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FilledPoint {
    /// Event time, epoch seconds.
    pub event_time: i64,
    /// Apparent power in watts (measured or imputed).
    pub power_w: f64,
    /// Whether the value was imputed rather than measured.
    pub imputed: bool,
}

/// Why a window cannot be filled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImputeError {
    /// There is nothing to fill from.
    #[error("window of device {device} starting at {start} has no readings to impute from")]
    Empty {
        /// The device.
        device: crate::reading::DeviceId,
        /// The window start.
        start: i64,
    },
    /// A reading's event time is outside the window (a malformed batch).
    #[error("reading at {event_time} lies outside the window [{start}, {end})")]
    OutsideWindow {
        /// The reading's event time.
        event_time: i64,
        /// The window start.
        start: i64,
        /// The window end.
        end: i64,
    },
}

/// Fills the window to `expected` seconds (one per second from `start`), marking filled points.
/// Readings for the same second count once: the last one wins.
pub fn impute(window: &Window, method: ImputationMethod) -> Result<Vec<FilledPoint>, ImputeError> {
    let expected = window.expected as usize;
    let mut measured: Vec<Option<f64>> = vec![None; expected];
    for reading in &window.readings {
        let slot = usize::try_from(reading.event_time - window.start)
            .ok()
            .filter(|&slot| slot < expected);
        let Some(slot) = slot.filter(|_| reading.event_time < window.end) else {
            return Err(ImputeError::OutsideWindow {
                event_time: reading.event_time,
                start: window.start,
                end: window.end,
            });
        };
        measured[slot] = Some(reading.power_w);
    }
    let present: Vec<(usize, f64)> = measured
        .iter()
        .enumerate()
        .filter_map(|(index, value)| value.map(|v| (index, v)))
        .collect();
    let (Some(&(first_index, first_value)), Some(&(last_index, last_value))) =
        (present.first(), present.last())
    else {
        return Err(ImputeError::Empty {
            device: window.device,
            start: window.start,
        });
    };
    let mean = present.iter().map(|(_, v)| v).sum::<f64>() / present.len() as f64;

    let mut previous: Option<(usize, f64)> = None;
    let mut next_present = 0; // index into `present` of the first reading at or after `index`
    let filled = measured
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let event_time = window.start + index as i64;
            if let Some(power_w) = *value {
                previous = Some((index, power_w));
                next_present += 1;
                return FilledPoint {
                    event_time,
                    power_w,
                    imputed: false,
                };
            }
            let power_w = match method {
                ImputationMethod::Mean => mean,
                ImputationMethod::Previous => previous.map_or(first_value, |(_, v)| v),
                ImputationMethod::Linear => match (previous, present.get(next_present)) {
                    (Some((before, v0)), Some(&(after, v1))) => {
                        v0 + (v1 - v0) * (index - before) as f64 / (after - before) as f64
                    }
                    (None, _) if index < first_index => first_value,
                    _ if index > last_index => last_value,
                    _ => mean,
                },
            };
            FilledPoint {
                event_time,
                power_w,
                imputed: true,
            }
        })
        .collect();
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{DeviceId, Reading};

    fn window(size: u32, points: &[(i64, f64)]) -> Window {
        Window {
            device: DeviceId(1),
            start: 600,
            end: 600 + i64::from(size),
            readings: points
                .iter()
                .map(|(t, v)| Reading::new(DeviceId(1), 600 + t, *v))
                .collect(),
            expected: size,
            late: 0,
        }
    }

    fn values(points: &[FilledPoint]) -> Vec<f64> {
        points.iter().map(|p| p.power_w).collect()
    }

    fn flags(points: &[FilledPoint]) -> Vec<bool> {
        points.iter().map(|p| p.imputed).collect()
    }

    #[test]
    fn a_complete_window_is_unchanged() {
        let w = window(3, &[(0, 1.0), (1, 2.0), (2, 3.0)]);
        for method in [
            ImputationMethod::Mean,
            ImputationMethod::Linear,
            ImputationMethod::Previous,
        ] {
            let filled = impute(&w, method).unwrap();
            assert_eq!(values(&filled), vec![1.0, 2.0, 3.0]);
            assert_eq!(flags(&filled), vec![false; 3]);
            assert_eq!(
                filled.iter().map(|p| p.event_time).collect::<Vec<_>>(),
                vec![600, 601, 602]
            );
        }
    }

    #[test]
    fn mean_fills_every_gap_with_the_window_mean() {
        let w = window(5, &[(1, 10.0), (3, 20.0)]);
        let filled = impute(&w, ImputationMethod::Mean).unwrap();
        assert_eq!(values(&filled), vec![15.0, 10.0, 15.0, 20.0, 15.0]);
        assert_eq!(flags(&filled), vec![true, false, true, false, true]);
    }

    #[test]
    fn linear_interpolates_inside_and_holds_the_edges() {
        let w = window(7, &[(1, 10.0), (4, 40.0)]);
        let filled = impute(&w, ImputationMethod::Linear).unwrap();
        assert_eq!(values(&filled), vec![10.0, 10.0, 20.0, 30.0, 40.0, 40.0, 40.0]);
        assert_eq!(flags(&filled), vec![true, false, true, true, false, true, true]);
    }

    #[test]
    fn previous_carries_forward_and_backfills_the_start() {
        let w = window(6, &[(2, 5.0), (4, 7.0)]);
        let filled = impute(&w, ImputationMethod::Previous).unwrap();
        assert_eq!(values(&filled), vec![5.0, 5.0, 5.0, 5.0, 7.0, 7.0]);
        assert_eq!(flags(&filled), vec![true, true, false, true, false, true]);
    }

    #[test]
    fn a_single_reading_fills_the_whole_window_for_every_method() {
        let w = window(4, &[(2, 9.0)]);
        for method in [
            ImputationMethod::Mean,
            ImputationMethod::Linear,
            ImputationMethod::Previous,
        ] {
            let filled = impute(&w, method).unwrap();
            assert_eq!(values(&filled), vec![9.0; 4], "{method:?}");
            assert_eq!(flags(&filled), vec![true, true, false, true]);
        }
    }

    #[test]
    fn duplicates_count_once_last_wins() {
        let w = window(2, &[(0, 1.0), (0, 3.0), (1, 5.0)]);
        assert_eq!(
            values(&impute(&w, ImputationMethod::Mean).unwrap()),
            vec![3.0, 5.0]
        );
    }

    #[test]
    fn empty_and_malformed_windows_are_refused() {
        assert!(matches!(
            impute(&window(60, &[]), ImputationMethod::Mean),
            Err(ImputeError::Empty { start: 600, .. })
        ));
        assert!(matches!(
            impute(&window(60, &[(60, 1.0)]), ImputationMethod::Mean),
            Err(ImputeError::OutsideWindow { event_time: 660, .. })
        ));
        assert!(matches!(
            impute(&window(60, &[(-1, 1.0)]), ImputationMethod::Linear),
            Err(ImputeError::OutsideWindow { .. })
        ));
    }
}
