//! The LSTM over whole sequences as one candle operation, with its backward pass
//! (backpropagation through time) written by hand.
//!
//! Written as candle operations, each time step of the LSTM is about ten tracked operations on
//! tensors of a few hundred values, so training cost candle's per-operation overhead far more
//! than arithmetic. Here a batch's whole sequence is one operation: the forward pass keeps each
//! step's gates, cells and states, and the backward pass walks the steps in reverse with them.
//! `tests` checks values and gradients against candle's autograd of the same network written
//! step by step with candle's own operations.

use crate::activations::{sigmoid, tanh};
use crate::gates::{GateProduct, multiply_add};
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use std::sync::{Arc, Mutex};

/// The LSTM's last state `[B, H]` for `sequences` `[B, T, 1]` from a zero state and cell.
///
/// `kernel` is `[H + 2, 4H]`: rows `0..H` take the previous state to the gates, row `H` the
/// reading, row `H + 1` is the bias; gates in ONNX's order i, o, f, c.
/// Differentiable in `kernel` (not in `sequences`: they are data).
pub fn last_state(sequences: &Tensor, kernel: &Tensor) -> candle_core::Result<Tensor> {
    let (rows, gates) = kernel.dims2()?;
    let hidden = gates / 4;
    if hidden == 0 || gates != 4 * hidden || rows != hidden + 2 {
        return Err(candle_core::Error::Msg(format!(
            "an LSTM kernel is [H + 2, 4H], not [{rows}, {gates}]"
        )));
    }
    let (_, steps, features) = sequences.dims3()?;
    if steps == 0 || features != 1 {
        return Err(candle_core::Error::Msg(format!(
            "LSTM input is [batch, steps ≥ 1, 1], not {:?}",
            sequences.dims()
        )));
    }
    let op: Box<dyn CustomOp2 + Send + Sync> = Box::new(SequenceOp {
        hidden,
        saved: Mutex::new(None),
    });
    sequences.apply_op2_arc(kernel, Arc::new(op))
}

/// One application of the LSTM; keeps what its forward pass computed for its backward pass.
struct SequenceOp {
    hidden: usize,
    saved: Mutex<Option<Trace>>,
}

impl CustomOp2 for SequenceOp {
    fn name(&self) -> &'static str {
        "wattcast-lstm-sequence"
    }

    fn cpu_fwd(
        &self,
        sequences: &CpuStorage,
        sequences_layout: &Layout,
        kernel: &CpuStorage,
        kernel_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (batch, steps, _) = sequences_layout.shape().dims3()?;
        let readings = values(sequences, sequences_layout)?;
        let kernel = values(kernel, kernel_layout)?;
        let trace = Trace::forward(self.hidden, &kernel, readings, batch, steps);
        let last = trace.last_states();
        *self.saved.lock().map_err(|_| poisoned())? = Some(trace);
        Ok((CpuStorage::F32(last), Shape::from((batch, self.hidden))))
    }

    fn bwd(
        &self,
        _sequences: &Tensor,
        kernel: &Tensor,
        _last: &Tensor,
        last_gradient: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let weights = kernel.flatten_all()?.to_vec1::<f32>()?;
        let last_gradient = last_gradient.flatten_all()?.to_vec1::<f32>()?;
        let saved = self.saved.lock().map_err(|_| poisoned())?;
        let trace = saved.as_ref().ok_or_else(|| {
            candle_core::Error::Msg("the LSTM's backward pass ran before its forward pass".to_owned())
        })?;
        let gradient = trace.kernel_gradient(&weights, &last_gradient);
        let gradient = Tensor::from_vec(gradient, kernel.shape(), kernel.device())?;
        Ok((None, Some(gradient)))
    }
}

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("the LSTM's saved activations were poisoned by a panic".to_owned())
}

/// The values of an f32 tensor's storage in row-major order.
fn values(storage: &CpuStorage, layout: &Layout) -> candle_core::Result<Vec<f32>> {
    match storage {
        CpuStorage::F32(slice) => Ok(match layout.contiguous_offsets() {
            Some((start, end)) => slice[start..end].to_vec(),
            None => candle_core::cpu_backend::unary_map(slice, layout, |v| v),
        }),
        other => Err(candle_core::Error::UnsupportedDTypeForOp(
            candle_core::backend::BackendStorage::dtype(other),
            "wattcast-lstm-sequence",
        )),
    }
}

/// Everything the forward pass computed, per sequence and step, in row-major order.
struct Trace {
    hidden: usize,
    batch: usize,
    steps: usize,
    /// `[B, T]`.
    readings: Vec<f32>,
    /// `[B, T, 4H]`: the gates after their activations (sigmoid for i, o, f; tanh for c).
    gates: Vec<f32>,
    /// `[B, T, H]`.
    cells: Vec<f32>,
    /// `[B, T, H]`: tanh of each cell.
    cell_tanhs: Vec<f32>,
    /// `[B, T + 1, H]`: the state before each step, then the last one.
    states: Vec<f32>,
}

impl Trace {
    fn forward(hidden: usize, kernel: &[f32], readings: Vec<f32>, batch: usize, steps: usize) -> Self {
        let mut trace = Self {
            hidden,
            batch,
            steps,
            readings,
            gates: vec![0.0; batch * steps * 4 * hidden],
            cells: vec![0.0; batch * steps * hidden],
            cell_tanhs: vec![0.0; batch * steps * hidden],
            states: vec![0.0; batch * (steps + 1) * hidden],
        };
        let product = GateProduct::from_kernel(hidden, kernel);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has just been found to support the features the function enables.
            unsafe { trace.run_forward_avx2(&product) };
            return trace;
        }
        trace.run_forward::<false>(&product);
        trace
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_forward_avx2(&mut self, product: &GateProduct) {
        self.run_forward::<true>(product);
    }

    #[inline(always)]
    fn run_forward<const FUSED: bool>(&mut self, product: &GateProduct) {
        let (h, steps) = (self.hidden, self.steps);
        let mut z = vec![0f32; product.padded_gates()];
        let mut previous_cell = vec![0f32; h];
        for sequence in 0..self.batch {
            previous_cell.fill(0.0);
            for step in 0..steps {
                let at = sequence * steps + step;
                let state_at = (sequence * (steps + 1) + step) * h;
                let x = self.readings[at];
                product.gates::<FUSED>(&self.states[state_at..state_at + h], x, &mut z);
                let gates = &mut self.gates[at * 4 * h..(at + 1) * 4 * h];
                gates.copy_from_slice(&z[..4 * h]);
                let (sigmoid_gates, candidate) = gates.split_at_mut(3 * h);
                sigmoid_gates.iter_mut().for_each(|g| *g = sigmoid(*g));
                candidate.iter_mut().for_each(|g| *g = tanh(*g));
                let (input_gate, rest) = sigmoid_gates.split_at(h);
                let (output_gate, forget_gate) = rest.split_at(h);
                // Every slice exactly `h` long, so the loop below has no bounds checks and
                // vectorises.
                let (input_gate, output_gate) = (&input_gate[..h], &output_gate[..h]);
                let (forget_gate, candidate) = (&forget_gate[..h], &candidate[..h]);
                let previous_cell = &mut previous_cell[..h];
                let cells = &mut self.cells[at * h..(at + 1) * h];
                let cell_tanhs = &mut self.cell_tanhs[at * h..(at + 1) * h];
                let (_, next_states) = self.states.split_at_mut(state_at + h);
                let next_state = &mut next_states[..h];
                for j in 0..h {
                    let cell =
                        multiply_add::<FUSED>(forget_gate[j], previous_cell[j], input_gate[j] * candidate[j]);
                    cells[j] = cell;
                    previous_cell[j] = cell;
                    cell_tanhs[j] = tanh(cell);
                    next_state[j] = output_gate[j] * cell_tanhs[j];
                }
            }
        }
    }

    /// `[B, H]`: each sequence's state after its last step.
    fn last_states(&self) -> Vec<f32> {
        let (h, steps) = (self.hidden, self.steps);
        (0..self.batch)
            .flat_map(|sequence| {
                let at = (sequence * (steps + 1) + steps) * h;
                self.states[at..at + h].iter().copied()
            })
            .collect()
    }

    /// `[H + 2, 4H]`: the gradient of the loss in the kernel, given its gradient in the last
    /// states (`[B, H]`).
    fn kernel_gradient(&self, kernel: &[f32], last_gradient: &[f32]) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has just been found to support the features the function enables.
            return unsafe { self.backward_avx2(kernel, last_gradient) };
        }
        self.backward::<false>(kernel, last_gradient)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn backward_avx2(&self, kernel: &[f32], last_gradient: &[f32]) -> Vec<f32> {
        self.backward::<true>(kernel, last_gradient)
    }

    /// Backpropagation through time: per sequence, from the last step to the first, the
    /// gradient in the gates from those in the state and cell, added to the kernel's gradient
    /// as the outer product with the step's input `[state, reading, 1]`, and carried to the
    /// previous state through the recurrent rows.
    #[inline(always)]
    fn backward<const FUSED: bool>(&self, kernel: &[f32], last_gradient: &[f32]) -> Vec<f32> {
        let (h, steps) = (self.hidden, self.steps);
        let g = 4 * h;
        let mut gradient = vec![0f32; (h + 2) * g];
        let mut state_gradient = vec![0f32; h];
        let mut cell_gradient = vec![0f32; h];
        let mut gate_gradient = vec![0f32; g];
        let zeros = vec![0f32; h];
        for sequence in 0..self.batch {
            state_gradient.copy_from_slice(&last_gradient[sequence * h..(sequence + 1) * h]);
            cell_gradient.fill(0.0);
            for step in (0..steps).rev() {
                let at = sequence * steps + step;
                let gates = &self.gates[at * g..(at + 1) * g];
                let (input_gate, rest) = gates.split_at(h);
                let (output_gate, rest) = rest.split_at(h);
                let (forget_gate, candidate) = rest.split_at(h);
                let cell_tanhs = &self.cell_tanhs[at * h..(at + 1) * h];
                let previous_cells = match step {
                    0 => &zeros[..h],
                    _ => &self.cells[(at - 1) * h..at * h],
                };
                let (dz_input, rest) = gate_gradient.split_at_mut(h);
                let (dz_output, rest) = rest.split_at_mut(h);
                let (dz_forget, dz_candidate) = rest.split_at_mut(h);
                // Every slice exactly `h` long, so the loop has no bounds checks and vectorises.
                let (input_gate, output_gate) = (&input_gate[..h], &output_gate[..h]);
                let (forget_gate, candidate) = (&forget_gate[..h], &candidate[..h]);
                let (dz_input, dz_output) = (&mut dz_input[..h], &mut dz_output[..h]);
                let (dz_forget, dz_candidate) = (&mut dz_forget[..h], &mut dz_candidate[..h]);
                let (d_states, d_cells) = (&state_gradient[..h], &mut cell_gradient[..h]);
                for j in 0..h {
                    let (i, o, f, c) = (input_gate[j], output_gate[j], forget_gate[j], candidate[j]);
                    let cell_tanh = cell_tanhs[j];
                    let previous_cell = previous_cells[j];
                    let d_cell =
                        multiply_add::<FUSED>(d_states[j] * o, 1.0 - cell_tanh * cell_tanh, d_cells[j]);
                    dz_input[j] = d_cell * c * i * (1.0 - i);
                    dz_output[j] = d_states[j] * cell_tanh * o * (1.0 - o);
                    dz_forget[j] = d_cell * previous_cell * f * (1.0 - f);
                    dz_candidate[j] = d_cell * i * (1.0 - c * c);
                    d_cells[j] = d_cell * f;
                }
                let state_at = (sequence * (steps + 1) + step) * h;
                let previous_state = &self.states[state_at..state_at + h];
                let (recurrent, rest) = gradient.split_at_mut(h * g);
                let (input_row, bias_row) = rest.split_at_mut(g);
                if step > 0 {
                    for (row, &s) in recurrent.chunks_exact_mut(g).zip(previous_state) {
                        add_scaled::<FUSED>(row, s, &gate_gradient);
                    }
                }
                add_scaled::<FUSED>(input_row, self.readings[at], &gate_gradient);
                bias_row.iter_mut().zip(&gate_gradient).for_each(|(b, d)| *b += d);
                for (d_state, row) in state_gradient.iter_mut().zip(kernel.chunks_exact(g)) {
                    *d_state = dot::<FUSED>(row, &gate_gradient);
                }
            }
        }
        gradient
    }
}

/// `row += scale · values`.
#[inline(always)]
fn add_scaled<const FUSED: bool>(row: &mut [f32], scale: f32, values: &[f32]) {
    row.iter_mut()
        .zip(values)
        .for_each(|(r, &v)| *r = multiply_add::<FUSED>(scale, v, *r));
}

/// `a · b` summed in eight lanes (so that it vectorises), then across them.
#[inline(always)]
fn dot<const FUSED: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] = multiply_add::<FUSED>(x[lane], y[lane], lanes[lane]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{D, DType, Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The same LSTM step by step in candle's own operations (in f64), differentiated by
    /// candle's autograd: what the fused operation must equal.
    fn unfused_last_state(sequences: &Tensor, kernel: &Tensor, hidden: usize) -> candle_core::Result<Tensor> {
        let h = hidden;
        let (batch, steps, _) = sequences.dims3()?;
        let ones = Tensor::ones((batch, steps, 1), sequences.dtype(), sequences.device())?;
        let readings = Tensor::cat(&[sequences, &ones], 2)?;
        let mut state = Tensor::zeros((batch, h), sequences.dtype(), sequences.device())?;
        let mut cell = Tensor::zeros((batch, h), sequences.dtype(), sequences.device())?;
        for step in 0..steps {
            let reading = readings.narrow(1, step, 1)?.squeeze(1)?;
            let gates = Tensor::cat(&[&state, &reading], 1)?.matmul(kernel)?;
            let input_gate = candle_nn::ops::sigmoid(&gates.narrow(D::Minus1, 0, h)?)?;
            let output_gate = candle_nn::ops::sigmoid(&gates.narrow(D::Minus1, h, h)?)?;
            let forget_gate = candle_nn::ops::sigmoid(&gates.narrow(D::Minus1, 2 * h, h)?)?;
            let candidate = gates.narrow(D::Minus1, 3 * h, h)?.tanh()?;
            cell = ((forget_gate * &cell)? + (input_gate * candidate)?)?;
            state = (output_gate * cell.tanh()?)?;
        }
        Ok(state)
    }

    fn random(rng: &mut ChaCha8Rng, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| rng.random_range(-scale..scale)).collect()
    }

    /// `max |got − want| / max |want|`: the error relative to the values' scale (elementwise
    /// relative errors are meaningless for the elements near zero that any tensor has).
    fn relative_error(got: &[f32], want: &[f64]) -> f64 {
        assert_eq!(got.len(), want.len());
        let error = got
            .iter()
            .zip(want)
            .map(|(&g, &w)| (f64::from(g) - w).abs())
            .fold(0.0, f64::max);
        error / want.iter().fold(0.0, |m: f64, w| m.max(w.abs()))
    }

    /// Values and kernel gradients against candle's autograd of the unfused network (in f64, so
    /// the reference's own rounding does not count), on random inputs, weights and output
    /// gradients, for several shapes (the recipe's own included).
    #[test]
    fn values_and_gradients_match_candles_autograd_of_the_unfused_network() -> candle_core::Result<()> {
        let device = Device::Cpu;
        for (seed, (batch, steps, hidden)) in [(3, 4, 5), (16, 60, 25), (1, 1, 1), (7, 30, 17)]
            .into_iter()
            .enumerate()
        {
            let mut rng = ChaCha8Rng::seed_from_u64(seed as u64);
            let inputs = random(&mut rng, batch * steps, 1.0);
            let weights = random(&mut rng, (hidden + 2) * 4 * hidden, 0.6);
            let upstream = random(&mut rng, batch * hidden, 1.0);

            let exact_inputs = Tensor::from_vec(inputs.clone(), (batch, steps, 1), &device)?;
            let exact_kernel = Var::from_tensor(&Tensor::from_vec(
                weights.clone(),
                (hidden + 2, 4 * hidden),
                &device,
            )?)?;
            let exact_upstream = Tensor::from_vec(upstream.clone(), (batch, hidden), &device)?;
            let exact_state = unfused_last_state(&exact_inputs, exact_kernel.as_tensor(), hidden)?;
            let exact_gradient = (&exact_state * &exact_upstream)?.sum_all()?.backward()?;
            let exact_gradient = exact_gradient.get(&exact_kernel).expect("a gradient");

            let inputs = exact_inputs.to_dtype(DType::F32)?;
            let kernel = Var::from_tensor(&exact_kernel.as_tensor().to_dtype(DType::F32)?)?;
            let upstream = exact_upstream.to_dtype(DType::F32)?;
            let state = last_state(&inputs, kernel.as_tensor())?;
            let gradient = (&state * &upstream)?.sum_all()?.backward()?;
            let gradient = gradient.get(&kernel).expect("a gradient");

            let flat32 = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
            let flat64 = |t: &Tensor| t.flatten_all()?.to_vec1::<f64>();
            let shape = format!("batch {batch}, steps {steps}, hidden {hidden}");
            let value_error = relative_error(&flat32(&state)?, &flat64(&exact_state)?);
            assert!(
                value_error < 1e-5,
                "{shape}: values off by {value_error:e} relative"
            );
            let gradient_error = relative_error(&flat32(gradient)?, &flat64(exact_gradient)?);
            assert!(
                gradient_error < 1e-5,
                "{shape}: gradients off by {gradient_error:e} relative"
            );
        }
        Ok(())
    }

    #[test]
    fn refuses_a_kernel_of_the_wrong_shape_naming_it() {
        let device = Device::Cpu;
        let inputs = Tensor::zeros((2, 3, 1), DType::F32, &device).expect("tensor");
        let kernel = Tensor::zeros((6, 12), DType::F32, &device).expect("tensor");
        let error = last_state(&inputs, &kernel).expect_err("wrong shape");
        assert!(error.to_string().contains("not [6, 12]"), "{error}");
    }
}
