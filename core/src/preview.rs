//! `wattcast dataset window`: replays a dataset in file (= arrival) order through the windowing
//! engine and reports each emitted window and a summary, without any service.

use crate::reading::{DeviceId, Reading};
use crate::windowing::{EngineStats, WindowConfig, WindowEngine, WindowEvent};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One emitted window, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowLine {
    /// The device.
    pub device: DeviceId,
    /// Window start, epoch seconds.
    pub window_start: i64,
    /// Readings placed in the window.
    pub received: u32,
    /// Readings a complete window holds.
    pub expected: u32,
    /// Readings of this window that arrived after it fired.
    pub late: u32,
}

/// Totals over the whole replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewSummary {
    /// Windows emitted.
    pub windows: u64,
    /// Readings replayed.
    pub readings: u64,
    /// Readings that replaced an earlier one for the same second.
    pub duplicates: u64,
    /// Readings that arrived after their window fired.
    pub late: u64,
    /// Late readings whose window was never emitted (it received nothing in time).
    pub late_without_window: u64,
    /// Windows that held every expected reading.
    pub complete_windows: u64,
    /// Readings placed in emitted windows.
    pub windowed: u64,
    /// windowed / (windows × expected).
    pub coverage: f64,
}

/// The result of a replay: windows in emission order and the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// Every emitted window, in emission order, with its late count.
    pub windows: Vec<WindowLine>,
    /// Totals.
    pub summary: PreviewSummary,
}

/// Replays readings in the given order. Processing time is simulated: the devices together send
/// one reading per device per second, so row `i` of a file with `d` devices arrives at
/// `i / d` seconds; the idle timeout (if any) is checked at every simulated second. At the end
/// every open window fires, as at the end of a bounded Flink source.
pub fn preview(readings: &[Reading], config: WindowConfig) -> Preview {
    let devices = readings
        .iter()
        .map(|r| r.device)
        .collect::<HashSet<_>>()
        .len()
        .max(1) as i64;
    let mut engine = WindowEngine::new(config);
    let mut events = Vec::new();
    let mut last_second = 0;
    for (row, reading) in readings.iter().enumerate() {
        let now_ms = row as i64 * 1000 / devices;
        if now_ms / 1000 != last_second {
            last_second = now_ms / 1000;
            engine.flush_idle(now_ms, &mut events);
        }
        engine.push(*reading, now_ms, &mut events);
    }
    engine.finish(&mut events);
    summarise(events, engine.stats(), config.expected())
}

fn summarise(events: Vec<WindowEvent>, stats: EngineStats, expected: u32) -> Preview {
    let mut windows = Vec::new();
    let mut index: HashMap<(DeviceId, i64), usize> = HashMap::new();
    let mut late_without_window = 0;
    for event in events {
        match event {
            WindowEvent::Emitted(window) => {
                index.insert((window.device, window.start), windows.len());
                windows.push(WindowLine {
                    device: window.device,
                    window_start: window.start,
                    received: u32::try_from(window.readings.len()).unwrap_or(u32::MAX),
                    expected: window.expected,
                    late: 0,
                });
            }
            WindowEvent::Late(late) => match index.get(&(late.reading.device, late.window_start)) {
                Some(&position) => windows[position].late += 1,
                None => late_without_window += 1,
            },
        }
    }
    let capacity = stats.windows * u64::from(expected);
    Preview {
        windows,
        summary: PreviewSummary {
            windows: stats.windows,
            readings: stats.readings,
            duplicates: stats.duplicates,
            late: stats.late,
            late_without_window,
            complete_windows: stats.complete_windows,
            windowed: stats.windowed,
            coverage: if capacity == 0 {
                0.0
            } else {
                stats.windowed as f64 / capacity as f64
            },
        },
    }
}

/// The device count a replay simulates processing time for (distinct devices in the readings).
pub fn device_count(readings: &[Reading]) -> usize {
    readings.iter().map(|r| r.device).collect::<HashSet<_>>().len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windowing::WatermarkStrategy;

    #[test]
    fn late_readings_are_attributed_to_their_window() {
        let times = [0, 1, 2, 60, 3, 4, 61, 150, 10];
        let readings: Vec<Reading> = times.iter().map(|t| Reading::new(DeviceId(1), *t, 1.0)).collect();
        let result = preview(&readings, WindowConfig::one_minute(WatermarkStrategy::Monotonous));
        assert_eq!(
            result.windows,
            vec![
                WindowLine {
                    device: DeviceId(1),
                    window_start: 0,
                    received: 3,
                    expected: 60,
                    late: 3
                },
                WindowLine {
                    device: DeviceId(1),
                    window_start: 60,
                    received: 2,
                    expected: 60,
                    late: 0
                },
                WindowLine {
                    device: DeviceId(1),
                    window_start: 120,
                    received: 1,
                    expected: 60,
                    late: 0
                },
            ]
        );
        assert_eq!(result.summary.late, 3);
        assert_eq!(result.summary.windowed, 6);
        assert_eq!(result.summary.coverage, 6.0 / 180.0);
        assert_eq!(device_count(&readings), 1);
    }
}
