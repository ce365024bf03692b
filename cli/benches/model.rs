//! The model's two costs: training the original recipe on 600 readings (200 epochs, batch 32)
//! and a 60-step recursive forecast with the exported ONNX model run by tract.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]
// criterion_main! defines an undocumented `main`.
#![allow(missing_docs)]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, criterion_group};
use std::time::Duration;
use wattcast_core::DeviceId;
use wattcast_core::dataset::generate::{
    DEFAULT_START, GapPattern, GenerateOptions, Scenario, generate_device,
};
use wattcast_model::{Forecaster, Recipe, train};

/// 660 in-order readings of a generated device: 600 to train on, 60 more to forecast from.
fn readings() -> Vec<f64> {
    let options = GenerateOptions {
        scenario: Scenario::InOrder,
        devices: 1,
        minutes: 11,
        seed: 1,
        start: DEFAULT_START,
        jitter_ms: 0,
        pattern: GapPattern::default(),
    };
    generate_device(&options, DeviceId(1))
        .readings
        .iter()
        .map(|r| r.power_w)
        .collect()
}

fn model(c: &mut Criterion) {
    let series = readings();
    let recipe = Recipe::default();
    let mut group = c.benchmark_group("model");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("train_original_recipe_600_readings", |b| {
        b.iter(|| train(&series[..600], &recipe).expect("trains"))
    });
    group.finish();

    let trained = train(&series[..600], &recipe).expect("trains");
    let artifacts = trained.artifacts();
    let forecaster = Forecaster::load(&artifacts.onnx, artifacts.scaler, recipe.look_back).expect("loads");
    let mut group = c.benchmark_group("model");
    group.bench_function("forecast_60_steps", |b| {
        b.iter(|| forecaster.forecast(&series[540..600], 60).expect("forecasts"))
    });
    group.bench_function("load_onnx", |b| {
        b.iter(|| Forecaster::load(&artifacts.onnx, artifacts.scaler, recipe.look_back).expect("loads"))
    });
    group.finish();
}

criterion_group!(benches, model);

fn main() {
    // As the wattcast binary does first thing (mimalloc above is the other half of its set-up).
    // SAFETY: no other thread exists yet.
    unsafe { wattcast_model::threads::pin_thread_count() };
    benches();
    Criterion::default().configure_from_args().final_summary();
}
