//! Windowing throughput: 1,000 devices replaying missing-timestamp data in arrival order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]
// criterion_main! defines an undocumented `main`.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use wattcast_core::dataset::generate::{
    DEFAULT_START, GapPattern, GenerateOptions, Scenario, generate_device,
};
use wattcast_core::windowing::{WatermarkStrategy, WindowConfig, WindowEngine};
use wattcast_core::{DeviceId, Reading};

const DEVICES: u32 = 1_000;
const MINUTES: u32 = 10;

/// Each device's readings in its own arrival order, merged round-robin (one per device per second).
fn arrivals(jitter_ms: u32) -> Vec<Reading> {
    let options = GenerateOptions {
        scenario: Scenario::MissingTimestamps,
        devices: DEVICES,
        minutes: MINUTES,
        seed: 7,
        start: DEFAULT_START,
        jitter_ms,
        pattern: GapPattern::default(),
    };
    let per_device: Vec<Vec<Reading>> = (1..=DEVICES)
        .map(|device| generate_device(&options, DeviceId(device)).readings)
        .collect();
    let longest = per_device.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|position| {
            per_device
                .iter()
                .filter_map(move |readings| readings.get(position).copied())
        })
        .collect()
}

fn windowing(c: &mut Criterion) {
    let mut group = c.benchmark_group("windowing");
    for (label, jitter_ms, watermark) in [
        ("missing-timestamps/monotonous", 0, "monotonous"),
        ("missing-timestamps+jitter8s/bounded:5s", 8_000, "bounded:5s"),
    ] {
        let readings = arrivals(jitter_ms);
        let config =
            WindowConfig::one_minute(watermark.parse::<WatermarkStrategy>().expect("valid watermark"));
        group.throughput(Throughput::Elements(readings.len() as u64));
        group.bench_function(label, |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                let mut engine = WindowEngine::new(config);
                for (index, reading) in readings.iter().enumerate() {
                    engine.push(*reading, index as i64, &mut out);
                    if out.len() >= 4096 {
                        black_box(&out);
                        out.clear();
                    }
                }
                engine.finish(&mut out);
                black_box(&out);
                out.clear();
                engine.stats()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = windowing
}
criterion_main!(benches);
