//! The cost of the LSTM sequence operation on one half of a training batch of the original
//! recipe (16 sequences × 60 steps × 25 units): forwards, and forwards plus backwards.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]
// criterion_main! defines an undocumented `main`.
#![allow(missing_docs)]

use candle_core::{Device, Tensor, Var};
use criterion::{Criterion, criterion_group, criterion_main};
use wattcast_lstm::sequence::last_state;

fn sequence(c: &mut Criterion) {
    let (batch, steps, hidden) = (16, 60, 25);
    let device = Device::Cpu;
    let wave =
        |n: usize, scale: f32| -> Vec<f32> { (0..n).map(|i| scale * (i as f32 * 0.37).sin()).collect() };
    let inputs = Tensor::from_vec(wave(batch * steps, 1.0), (batch, steps, 1), &device).expect("inputs");
    let kernel = Var::from_tensor(
        &Tensor::from_vec(
            wave((hidden + 2) * 4 * hidden, 0.3),
            (hidden + 2, 4 * hidden),
            &device,
        )
        .expect("kernel"),
    )
    .expect("a variable");
    let mut group = c.benchmark_group("sequence");
    group.bench_function("forward_16x60x25", |b| {
        b.iter(|| last_state(&inputs, kernel.as_tensor()).expect("forward"))
    });
    group.bench_function("forward_backward_16x60x25", |b| {
        b.iter(|| {
            let state = last_state(&inputs, kernel.as_tensor()).expect("forward");
            state.sum_all().expect("sum").backward().expect("backward")
        })
    });
    group.finish();
}

criterion_group!(benches, sequence);
criterion_main!(benches);
