//! A trained model's weights as plain arrays, in the layout of ONNX's LSTM operator.

use serde::{Deserialize, Serialize};

/// LSTM(hidden) → Dense(1) weights for one input feature; gates in ONNX order i, o, f, c.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LstmWeights {
    /// LSTM units (H).
    pub hidden: usize,
    /// Input weights, `[4H]` (one input feature).
    pub input: Vec<f32>,
    /// Recurrent weights, `[4H, H]` row-major: row g·H + j is unit j of gate g.
    pub recurrent: Vec<f32>,
    /// Gate biases, `[4H]` (ONNX's Wb; its Rb is zero).
    pub bias: Vec<f32>,
    /// Dense layer weights, `[H]`.
    pub dense: Vec<f32>,
    /// Dense layer bias.
    pub dense_bias: f32,
}

impl LstmWeights {
    /// Whether every array has the length `hidden` implies.
    pub fn is_consistent(&self) -> bool {
        let h = self.hidden;
        h > 0
            && self.input.len() == 4 * h
            && self.recurrent.len() == 4 * h * h
            && self.bias.len() == 4 * h
            && self.dense.len() == h
    }

    /// The model's output for one input sequence, computed directly from the definitions (the
    /// reference the exported graph and the training library are checked against).
    pub fn predict(&self, sequence: &[f32]) -> f32 {
        let h = self.hidden;
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        let (mut state, mut cell) = (vec![0f32; h], vec![0f32; h]);
        let mut gates = vec![0f32; 4 * h];
        for &x in sequence {
            for (row, gate) in gates.iter_mut().enumerate() {
                let recurrent = &self.recurrent[row * h..(row + 1) * h];
                let from_state: f32 = recurrent.iter().zip(&state).map(|(w, s)| w * s).sum();
                *gate = self.input[row] * x + self.bias[row] + from_state;
            }
            for j in 0..h {
                let input_gate = sigmoid(gates[j]);
                let output_gate = sigmoid(gates[h + j]);
                let forget_gate = sigmoid(gates[2 * h + j]);
                let candidate = gates[3 * h + j].tanh();
                cell[j] = forget_gate * cell[j] + input_gate * candidate;
                state[j] = output_gate * cell[j].tanh();
            }
        }
        self.dense.iter().zip(&state).map(|(w, s)| w * s).sum::<f32>() + self.dense_bias
    }
}
