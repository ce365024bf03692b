//! The product of an LSTM step's input `[state, reading, 1]` with its weights, laid out in
//! blocks of gates so that it vectorises; the native forecaster and training's sequence
//! operation both run it.

/// Gates per block: eight AVX registers of f32, summed as independent chains (one chain would
/// wait on each multiply-add before the next).
pub const LANES: usize = 64;

/// A one-feature LSTM's input weights, bias and recurrent weights, gates in ONNX's order (i, o,
/// f, c) zero-padded to whole blocks of [`LANES`].
#[derive(Clone, Debug, PartialEq)]
pub struct GateProduct {
    hidden: usize,
    /// `[G]`, G = 4H rounded up to [`LANES`].
    input: Vec<f32>,
    /// `[G]`.
    bias: Vec<f32>,
    /// `[G / LANES, H, LANES]`: for each block of gates, what each state unit adds to them, so a
    /// block's gates stay in registers while the state is run through.
    recurrent_blocks: Vec<f32>,
}

impl GateProduct {
    /// From ONNX's layout: `input` W `[4H]`, `bias` Wb + Rb `[4H]`, `recurrent` R `[4H, H]`.
    pub fn from_onnx_layout(hidden: usize, input: &[f32], bias: &[f32], recurrent: &[f32]) -> Self {
        Self::new(hidden, input, bias, |gate, unit| recurrent[gate * hidden + unit])
    }

    /// From training's kernel `[H + 2, 4H]`: rows `0..H` recurrent (R transposed), row `H` the
    /// input weights, row `H + 1` the bias.
    pub fn from_kernel(hidden: usize, kernel: &[f32]) -> Self {
        let g = 4 * hidden;
        Self::new(
            hidden,
            &kernel[hidden * g..(hidden + 1) * g],
            &kernel[(hidden + 1) * g..(hidden + 2) * g],
            |gate, unit| kernel[unit * g + gate],
        )
    }

    fn new(hidden: usize, input: &[f32], bias: &[f32], recurrent: impl Fn(usize, usize) -> f32) -> Self {
        let padded = padded_gates(hidden);
        let pad = |values: &[f32]| {
            let mut values = values.to_vec();
            values.resize(padded, 0.0);
            values
        };
        let mut recurrent_blocks = vec![0.0; padded * hidden];
        for gate in 0..4 * hidden {
            let (block, lane) = (gate / LANES, gate % LANES);
            for unit in 0..hidden {
                recurrent_blocks[(block * hidden + unit) * LANES + lane] = recurrent(gate, unit);
            }
        }
        Self {
            hidden,
            input: pad(input),
            bias: pad(bias),
            recurrent_blocks,
        }
    }

    /// Gates the product writes: 4H rounded up to whole blocks.
    pub fn padded_gates(&self) -> usize {
        self.input.len()
    }

    /// `gates = [state, x, 1] · weights` (before the activations; `gates` is
    /// [`Self::padded_gates`] long). `FUSED` multiply-adds are single instructions: call it
    /// from a function compiled with FMA, or with `FUSED = false`.
    #[inline(always)]
    pub fn gates<const FUSED: bool>(&self, state: &[f32], x: f32, gates: &mut [f32]) {
        let blocks = gates
            .chunks_exact_mut(LANES)
            .zip(self.input.chunks_exact(LANES))
            .zip(self.bias.chunks_exact(LANES))
            .zip(self.recurrent_blocks.chunks_exact(self.hidden * LANES));
        for (((block, input), bias), weights) in blocks {
            let mut sums = [0f32; LANES];
            for lane in 0..LANES {
                sums[lane] = multiply_add::<FUSED>(input[lane], x, bias[lane]);
            }
            for (&s, unit_weights) in state.iter().zip(weights.chunks_exact(LANES)) {
                for lane in 0..LANES {
                    sums[lane] = multiply_add::<FUSED>(s, unit_weights[lane], sums[lane]);
                }
            }
            block.copy_from_slice(&sums);
        }
    }
}

/// 4H rounded up to whole blocks.
pub fn padded_gates(hidden: usize) -> usize {
    (4 * hidden).div_ceil(LANES) * LANES
}

/// `a · b + c`, as one fused instruction when `FUSED` (a library call where the CPU lacks it).
#[inline(always)]
pub fn multiply_add<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED { a.mul_add(b, c) } else { a * b + c }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both layouts give the same product, and it is the textbook one.
    #[test]
    fn the_product_of_either_layout_is_the_definition() {
        let hidden = 17;
        let g = 4 * hidden;
        let value = |i: usize| ((i * 37 % 101) as f32 - 50.0) / 60.0;
        let input: Vec<f32> = (0..g).map(value).collect();
        let bias: Vec<f32> = (0..g).map(|i| value(i + 7)).collect();
        let recurrent: Vec<f32> = (0..g * hidden).map(|i| value(i + 13)).collect(); // [4H, H]
        let mut kernel = vec![0f32; (hidden + 2) * g];
        for gate in 0..g {
            for unit in 0..hidden {
                kernel[unit * g + gate] = recurrent[gate * hidden + unit];
            }
            kernel[hidden * g + gate] = input[gate];
            kernel[(hidden + 1) * g + gate] = bias[gate];
        }
        let onnx = GateProduct::from_onnx_layout(hidden, &input, &bias, &recurrent);
        assert_eq!(GateProduct::from_kernel(hidden, &kernel), onnx);
        let state: Vec<f32> = (0..hidden).map(|i| value(i + 3)).collect();
        let mut gates = vec![0f32; onnx.padded_gates()];
        onnx.gates::<false>(&state, 0.4, &mut gates);
        for gate in 0..g {
            let expected = input[gate] * 0.4
                + bias[gate]
                + (0..hidden)
                    .map(|u| recurrent[gate * hidden + u] * state[u])
                    .sum::<f32>();
            assert!((gates[gate] - expected).abs() < 1e-5, "gate {gate}");
        }
        assert!(gates[g..].iter().all(|&p| p == 0.0), "padding stays zero");
    }
}
