//! CSV parse throughput for both layouts of the original project.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]
// criterion_main! defines an undocumented `main`.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;
use wattcast_core::DeviceId;
use wattcast_core::dataset::BadRowPolicy;
use wattcast_core::dataset::generate::{
    DEFAULT_START, GapPattern, GenerateOptions, Scenario, generate_device,
};
use wattcast_core::dataset::reader::read_dataset_from;
use wattcast_core::dataset::writer::write_rows;

fn csv_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("csv_parse");
    for scenario in [Scenario::InOrder, Scenario::MissingTimestamps] {
        let options = GenerateOptions {
            scenario,
            devices: 1,
            minutes: 24 * 60,
            seed: 1,
            start: DEFAULT_START,
            jitter_ms: 0,
            pattern: GapPattern::default(),
        };
        let readings = generate_device(&options, DeviceId(1)).readings;
        let mut bytes = Vec::new();
        write_rows(&mut bytes, scenario.format(), &readings).expect("writing to memory");
        group.throughput(Throughput::Elements(readings.len() as u64));
        group.bench_function(format!("{scenario:?}"), |b| {
            b.iter(|| {
                read_dataset_from(bytes.as_slice(), Path::new("bench.csv"), BadRowPolicy::FailFast)
                    .expect("generated data parses")
                    .readings
                    .len()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = csv_parse
}
criterion_main!(benches);
