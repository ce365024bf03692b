//! The windowing engine: per-device tumbling event-time windows fired by a per-device watermark.
//!
//! Semantics follow Apache Flink's `TumblingEventTimeWindows` + `EventTimeTrigger` with
//! `allowedLateness = 0`, evaluated after every reading (Flink emits watermarks periodically; this
//! engine emits one after each reading, which is Flink's behaviour with a watermark interval short
//! enough to see every reading, and makes the output a pure function of the arrival order):
//!
//! - a reading at `t` belongs to the window `[s, s + size)` with `s = floor(t / size) * size`;
//! - a device's watermark is `max event time seen − bound − 1 ms` (never going back);
//! - a window fires once the watermark reaches `s + size − 1 ms`, and is emitted exactly once;
//! - a reading whose window's last millisecond is at or below the watermark is late: it is
//!   reported as a [`LateReading`], never silently dropped (Flink's late side output);
//! - at the end of a bounded input ([`WindowEngine::finish`]) every open window fires;
//! - beyond Flink: with an idle timeout, a device that sent nothing for that long (processing
//!   time) has its open windows fired, and its watermark moves to their end. Flink's
//!   `withIdleness` only excludes an idle split from the minimum watermark, so a lone device's
//!   last window would wait forever.

use super::watermark::WatermarkStrategy;
use crate::reading::{DeviceId, Reading};
use crate::window::Window;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// The window size, watermark strategy and idle timeout of an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    size_s: i64,
    watermark: WatermarkStrategy,
    idle_timeout_ms: Option<i64>,
}

/// Why a window configuration is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowConfigError {
    /// Readings come once a second, so a window is a whole number of seconds, at least one.
    #[error("window size must be a whole number of seconds, at least 1s (got {0:?})")]
    Size(Duration),
    /// An idle timeout of zero would fire every window as soon as it opened.
    #[error("idle timeout must be positive")]
    IdleTimeout,
}

impl WindowConfig {
    /// A configuration; the size must be whole seconds, the idle timeout (processing time) positive.
    pub fn new(
        size: Duration,
        watermark: WatermarkStrategy,
        idle_timeout: Option<Duration>,
    ) -> Result<Self, WindowConfigError> {
        if size.subsec_nanos() != 0 || size.as_secs() == 0 || size.as_secs() > u32::MAX as u64 {
            return Err(WindowConfigError::Size(size));
        }
        let idle_timeout_ms = match idle_timeout {
            Some(timeout) if timeout.is_zero() => return Err(WindowConfigError::IdleTimeout),
            Some(timeout) => Some(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)),
            None => None,
        };
        Ok(Self {
            size_s: size.as_secs() as i64,
            watermark,
            idle_timeout_ms,
        })
    }

    /// One-minute windows, as the original Flink job used.
    pub fn one_minute(watermark: WatermarkStrategy) -> Self {
        Self {
            size_s: 60,
            watermark,
            idle_timeout_ms: None,
        }
    }

    /// The window size in seconds.
    pub fn size_s(&self) -> i64 {
        self.size_s
    }

    /// The watermark strategy.
    pub fn watermark(&self) -> WatermarkStrategy {
        self.watermark
    }

    /// How many readings a complete window holds (one per second).
    pub fn expected(&self) -> u32 {
        u32::try_from(self.size_s).unwrap_or(u32::MAX)
    }

    /// The start of the window holding `event_time` (epoch seconds).
    pub fn window_start(&self, event_time: i64) -> i64 {
        event_time.div_euclid(self.size_s) * self.size_s
    }

    /// The last millisecond of the window starting at `start` (Flink's `maxTimestamp()`).
    fn max_timestamp_ms(&self, start: i64) -> i64 {
        (start + self.size_s) * 1000 - 1
    }
}

/// A reading that arrived after its window had fired.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LateReading {
    /// The reading.
    pub reading: Reading,
    /// Start of the window it belonged to, epoch seconds.
    pub window_start: i64,
    /// The device's watermark when it arrived, epoch milliseconds.
    pub watermark_ms: i64,
}

/// What the engine produces.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowEvent {
    /// A window fired.
    Emitted(Window),
    /// A reading came too late for its window.
    Late(LateReading),
}

/// Running counts of what the engine has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Readings pushed.
    pub readings: u64,
    /// Readings that replaced an earlier reading for the same second in an open window.
    pub duplicates: u64,
    /// Readings reported late.
    pub late: u64,
    /// Windows emitted.
    pub windows: u64,
    /// Emitted windows that held every expected reading.
    pub complete_windows: u64,
    /// Readings inside emitted windows.
    pub windowed: u64,
}

/// A window that has not fired yet: one slot per second.
#[derive(Debug)]
struct OpenWindow {
    start: i64,
    slots: Box<[Option<Reading>]>,
}

/// One device's watermark, open windows and when it was last heard from.
#[derive(Debug)]
struct DeviceState {
    watermark_ms: i64,
    last_seen_ms: i64,
    /// Sorted by start; fire from the front.
    open: VecDeque<OpenWindow>,
}

/// Tumbling event-time windows keyed by device. Pure: no I/O, no clock (callers pass
/// processing time in), memory only for open windows.
#[derive(Debug)]
pub struct WindowEngine {
    config: WindowConfig,
    devices: HashMap<DeviceId, DeviceState>,
    stats: EngineStats,
}

impl WindowEngine {
    /// An engine with no devices yet.
    pub fn new(config: WindowConfig) -> Self {
        Self {
            config,
            devices: HashMap::new(),
            stats: EngineStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// What the engine has done so far.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Windows open now, over all devices.
    pub fn open_windows(&self) -> usize {
        self.devices.values().map(|state| state.open.len()).sum()
    }

    /// A device's current watermark in epoch milliseconds, if it has sent anything.
    pub fn watermark_ms(&self, device: DeviceId) -> Option<i64> {
        self.devices.get(&device).map(|state| state.watermark_ms)
    }

    /// Devices with open windows that sent nothing since `before_ms` (processing time), in
    /// device order.
    pub fn quiet_since(&self, before_ms: i64) -> Vec<DeviceId> {
        let mut quiet: Vec<DeviceId> = self
            .devices
            .iter()
            .filter(|(_, state)| !state.open.is_empty() && state.last_seen_ms < before_ms)
            .map(|(device, _)| *device)
            .collect();
        quiet.sort_unstable();
        quiet
    }

    /// Drops everything known of `device` — its open windows and its watermark — as if it had
    /// never sent anything; returns how many open windows were dropped. Pushing the same
    /// readings again (redelivered) rebuilds the same state.
    pub fn forget(&mut self, device: DeviceId) -> usize {
        self.devices.remove(&device).map_or(0, |state| state.open.len())
    }

    /// Whether `reading` would be late if pushed now: its window has fired.
    pub fn would_be_late(&self, reading: &Reading) -> bool {
        self.devices.get(&reading.device).is_some_and(|state| {
            self.config
                .max_timestamp_ms(self.config.window_start(reading.event_time))
                <= state.watermark_ms
        })
    }

    /// Takes one reading that arrived at processing time `now_ms`; appends what it causes to `out`.
    pub fn push(&mut self, reading: Reading, now_ms: i64, out: &mut Vec<WindowEvent>) {
        let config = self.config;
        let stats = &mut self.stats;
        stats.readings += 1;
        let state = self.devices.entry(reading.device).or_insert_with(|| DeviceState {
            watermark_ms: i64::MIN,
            last_seen_ms: now_ms,
            open: VecDeque::new(),
        });
        state.last_seen_ms = now_ms;

        let start = config.window_start(reading.event_time);
        if config.max_timestamp_ms(start) <= state.watermark_ms {
            stats.late += 1;
            out.push(WindowEvent::Late(LateReading {
                reading,
                window_start: start,
                watermark_ms: state.watermark_ms,
            }));
            return;
        }

        let window = open_window(
            &mut state.open,
            start,
            usize::try_from(config.size_s).unwrap_or_default(),
        );
        #[allow(
            clippy::cast_possible_truncation,
            reason = "in [0, size): start is the event time's window start"
        )]
        let slot = (reading.event_time - start) as usize;
        if window.slots[slot].replace(reading).is_some() {
            stats.duplicates += 1;
        }

        let watermark = config.watermark.watermark_for(reading.event_time_ms());
        if watermark > state.watermark_ms {
            state.watermark_ms = watermark;
            fire_ready(reading.device, state, &config, stats, out);
        }
    }

    /// Fires the open windows of devices that sent nothing for the idle timeout (processing
    /// time), in device order. Does nothing without an idle timeout.
    pub fn flush_idle(&mut self, now_ms: i64, out: &mut Vec<WindowEvent>) {
        let Some(timeout) = self.config.idle_timeout_ms else {
            return;
        };
        let mut idle: Vec<DeviceId> = self
            .devices
            .iter()
            .filter(|(_, state)| {
                !state.open.is_empty() && now_ms.saturating_sub(state.last_seen_ms) >= timeout
            })
            .map(|(device, _)| *device)
            .collect();
        idle.sort_unstable();
        for device in idle {
            if let Some(state) = self.devices.get_mut(&device) {
                if let Some(last) = state.open.back() {
                    state.watermark_ms = state.watermark_ms.max(self.config.max_timestamp_ms(last.start));
                }
                fire_ready(device, state, &self.config, &mut self.stats, out);
            }
        }
    }

    /// Ends one device's bounded input (its sensor said it is done): fires the device's open
    /// windows; anything the device sends afterwards is late.
    pub fn finish_device(&mut self, device: DeviceId, out: &mut Vec<WindowEvent>) {
        if let Some(state) = self.devices.get_mut(&device) {
            state.watermark_ms = i64::MAX;
            fire_ready(device, state, &self.config, &mut self.stats, out);
        }
    }

    /// Ends a bounded input: fires every open window, in device order, as Flink does when its
    /// source finishes (it emits the maximum watermark). Anything pushed afterwards is late.
    pub fn finish(&mut self, out: &mut Vec<WindowEvent>) {
        let mut devices: Vec<DeviceId> = self.devices.keys().copied().collect();
        devices.sort_unstable();
        for device in devices {
            if let Some(state) = self.devices.get_mut(&device) {
                state.watermark_ms = i64::MAX;
                fire_ready(device, state, &self.config, &mut self.stats, out);
            }
        }
    }
}

/// Finds or opens the window starting at `start`, keeping the queue sorted by start.
fn open_window(open: &mut VecDeque<OpenWindow>, start: i64, size: usize) -> &mut OpenWindow {
    let position = match open.iter().rposition(|window| window.start <= start) {
        Some(index) if open[index].start == start => index,
        Some(index) => insert(open, index + 1, start, size),
        None => insert(open, 0, start, size),
    };
    &mut open[position]
}

fn insert(open: &mut VecDeque<OpenWindow>, index: usize, start: i64, size: usize) -> usize {
    open.insert(
        index,
        OpenWindow {
            start,
            slots: vec![None; size].into_boxed_slice(),
        },
    );
    index
}

/// Emits, in start order, every open window whose last millisecond the watermark has reached.
fn fire_ready(
    device: DeviceId,
    state: &mut DeviceState,
    config: &WindowConfig,
    stats: &mut EngineStats,
    out: &mut Vec<WindowEvent>,
) {
    while let Some(front) = state.open.front() {
        if config.max_timestamp_ms(front.start) > state.watermark_ms {
            break;
        }
        let Some(window) = state.open.pop_front() else {
            break;
        };
        let readings: Vec<Reading> = window.slots.iter().flatten().copied().collect();
        let expected = config.expected();
        stats.windows += 1;
        stats.windowed += readings.len() as u64;
        if readings.len() >= expected as usize {
            stats.complete_windows += 1;
        }
        out.push(WindowEvent::Emitted(Window {
            device,
            start: window.start,
            end: window.start + config.size_s,
            readings,
            expected,
            late: 0,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_would_be_late_exactly_when_pushing_it_reports_it_late() {
        let mut engine = WindowEngine::new(WindowConfig::one_minute(WatermarkStrategy::Monotonous));
        let device = DeviceId(1);
        let mut out = Vec::new();
        let reading = |t: i64| Reading::new(device, t, 1.0);
        assert!(
            !engine.would_be_late(&reading(5)),
            "an unknown device has no watermark"
        );
        engine.push(reading(5), 0, &mut out);
        engine.push(reading(61), 0, &mut out); // fires [0, 60)
        for t in [0, 5, 59, 60, 61, 119] {
            let predicted = engine.would_be_late(&reading(t));
            let before = out.len();
            engine.push(reading(t), 0, &mut out);
            let reported = out[before..]
                .iter()
                .any(|event| matches!(event, WindowEvent::Late(_)));
            assert_eq!(predicted, reported, "second {t}");
        }
        assert!(engine.would_be_late(&reading(30)));
        assert!(!engine.would_be_late(&reading(90)));
    }

    #[test]
    fn a_forgotten_device_rebuilds_the_same_state_from_the_same_readings() {
        let config = WindowConfig::one_minute(WatermarkStrategy::BoundedOutOfOrderness {
            max_out_of_orderness: Duration::from_secs(5),
        });
        let readings: Vec<Reading> = [3, 1, 70, 64, 2, 90, 66]
            .into_iter()
            .map(|t| Reading::new(DeviceId(1), t, t as f64))
            .collect();
        let (mut whole, mut out_whole) = (WindowEngine::new(config), Vec::new());
        for reading in &readings {
            whole.push(*reading, 0, &mut out_whole);
        }
        // The same readings, the engine forgetting the device after those of its open window
        // arrived and being given them again (what a redelivery after a hand-over does).
        let (mut handed, mut out_handed) = (WindowEngine::new(config), Vec::new());
        for reading in &readings[..4] {
            handed.push(*reading, 0, &mut out_handed);
        }
        assert_eq!(handed.quiet_since(1), vec![DeviceId(1)]);
        assert_eq!(handed.quiet_since(0), Vec::<DeviceId>::new());
        // [0, 60) fired when 70 arrived; [60, 120) holds 70 and 64, open.
        assert_eq!(handed.forget(DeviceId(1)), 1);
        assert_eq!(handed.watermark_ms(DeviceId(1)), None);
        for reading in &readings[2..] {
            handed.push(*reading, 0, &mut out_handed);
        }
        handed.finish(&mut out_handed);
        whole.finish(&mut out_whole);
        assert_eq!(out_handed, out_whole);
    }
}
