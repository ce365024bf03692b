//! Property tests of the windowing engine against a declarative model of Flink's semantics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use wattcast_core::windowing::{WatermarkStrategy, WindowConfig, WindowEngine, WindowEvent};
use wattcast_core::{DeviceId, Reading, Window};

/// Emitted windows keyed by (device, start).
type WindowsByKey = BTreeMap<(DeviceId, i64), Vec<Reading>>;

fn run(readings: &[Reading], config: WindowConfig) -> (Vec<Window>, Vec<(usize, Reading)>) {
    let mut engine = WindowEngine::new(config);
    let mut windows = Vec::new();
    let mut late = Vec::new();
    let mut out = Vec::new();
    for (index, reading) in readings.iter().enumerate() {
        engine.push(*reading, index as i64, &mut out);
        for event in out.drain(..) {
            match event {
                WindowEvent::Emitted(window) => windows.push(window),
                WindowEvent::Late(l) => late.push((index, l.reading)),
            }
        }
    }
    engine.finish(&mut out);
    for event in out.drain(..) {
        if let WindowEvent::Emitted(window) = event {
            windows.push(window);
        }
    }
    (windows, late)
}

/// The model, written from the definitions rather than the engine's data structures: arrival
/// `i` is late iff its window's last millisecond is at or below the watermark made by the
/// arrivals of its device before it; windows hold the last non-late arrival of each second.
fn model(readings: &[Reading], size_s: i64, bound_ms: i64) -> (WindowsByKey, Vec<usize>) {
    let mut late = Vec::new();
    let mut windows: BTreeMap<(DeviceId, i64), BTreeMap<i64, Reading>> = BTreeMap::new();
    for (i, reading) in readings.iter().enumerate() {
        let watermark = readings[..i]
            .iter()
            .filter(|earlier| earlier.device == reading.device)
            .map(|earlier| earlier.event_time * 1000 - bound_ms - 1)
            .max()
            .unwrap_or(i64::MIN);
        let start = reading.event_time.div_euclid(size_s) * size_s;
        if (start + size_s) * 1000 - 1 <= watermark {
            late.push(i);
        } else {
            windows
                .entry((reading.device, start))
                .or_default()
                .insert(reading.event_time, *reading);
        }
    }
    let windows = windows
        .into_iter()
        .map(|(key, seconds)| (key, seconds.into_values().collect()))
        .collect();
    (windows, late)
}

fn arrivals() -> impl Strategy<Value = Vec<Reading>> {
    prop::collection::vec((1u32..4, 0i64..400, 0u32..1000), 0..300).prop_map(|raw| {
        raw.into_iter()
            .map(|(device, t, power)| Reading::new(DeviceId(device), t, f64::from(power)))
            .collect()
    })
}

fn bounds() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0), Just(5), Just(10), Just(30), 0i64..59]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn engine_matches_the_model(readings in arrivals(), bound_s in bounds(), size_s in prop_oneof![Just(60i64), Just(10), 1i64..120]) {
        let strategy: WatermarkStrategy = format!("bounded:{bound_s}s").parse().unwrap();
        let config = WindowConfig::new(std::time::Duration::from_secs(size_s as u64), strategy, None).unwrap();
        let (windows, late) = run(&readings, config);
        let (expected_windows, expected_late) = model(&readings, size_s, bound_s * 1000);

        let late_indices: Vec<usize> = late.iter().map(|(i, _)| *i).collect();
        prop_assert_eq!(late_indices, expected_late);
        let emitted: WindowsByKey =
            windows.iter().map(|w| ((w.device, w.start), w.readings.clone())).collect();
        prop_assert_eq!(emitted.len(), windows.len(), "a window was emitted twice");
        prop_assert_eq!(emitted, expected_windows);
    }

    #[test]
    fn every_non_late_reading_lands_in_exactly_one_window(readings in arrivals(), bound_s in bounds()) {
        let strategy: WatermarkStrategy = format!("bounded:{bound_s}s").parse().unwrap();
        let (windows, late) = run(&readings, WindowConfig::one_minute(strategy));
        let late_at: Vec<usize> = late.iter().map(|(i, _)| *i).collect();
        // The surviving copy of each (device, second): the last non-late arrival.
        let mut survivors: HashMap<(DeviceId, i64), Reading> = HashMap::new();
        for (i, reading) in readings.iter().enumerate() {
            if !late_at.contains(&i) {
                survivors.insert((reading.device, reading.event_time), *reading);
            }
        }
        let mut placed: HashMap<(DeviceId, i64), usize> = HashMap::new();
        for window in &windows {
            for reading in &window.readings {
                prop_assert!(reading.event_time >= window.start && reading.event_time < window.end);
                prop_assert_eq!(reading.device, window.device);
                *placed.entry((reading.device, reading.event_time)).or_default() += 1;
            }
        }
        prop_assert!(placed.values().all(|count| *count == 1));
        prop_assert_eq!(placed.len(), survivors.len());
        for window in &windows {
            for reading in &window.readings {
                prop_assert_eq!(survivors[&(reading.device, reading.event_time)], *reading);
            }
        }
    }

    #[test]
    fn windowed_plus_late_is_the_input_after_deduplication(readings in arrivals(), bound_s in bounds()) {
        let strategy: WatermarkStrategy = format!("bounded:{bound_s}s").parse().unwrap();
        let mut engine = WindowEngine::new(WindowConfig::one_minute(strategy));
        let mut out = Vec::new();
        for (i, reading) in readings.iter().enumerate() {
            engine.push(*reading, i as i64, &mut out);
        }
        engine.finish(&mut out);
        let stats = engine.stats();
        prop_assert_eq!(stats.readings, readings.len() as u64);
        prop_assert_eq!(stats.windowed + stats.late + stats.duplicates, stats.readings);
    }

    #[test]
    fn in_order_input_gives_only_complete_windows(devices in 1u32..5, minutes in 1i64..10, offset_minutes in 0i64..1000, bound_s in bounds()) {
        let start = offset_minutes * 60;
        let mut readings = Vec::new();
        for t in start..start + minutes * 60 {
            for device in 1..=devices {
                readings.push(Reading::new(DeviceId(device), t, 1.0));
            }
        }
        let strategy: WatermarkStrategy = format!("bounded:{bound_s}s").parse().unwrap();
        let (windows, late) = run(&readings, WindowConfig::one_minute(strategy));
        prop_assert!(late.is_empty());
        prop_assert_eq!(windows.len() as i64, minutes * i64::from(devices));
        prop_assert!(windows.iter().all(Window::is_complete));
    }
}
