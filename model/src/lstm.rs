//! The LSTM → Dropout → Dense network as candle variables, for training.

use super::weights::LstmWeights;
use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use wattcast_lstm::sequence;

/// The network's trainable variables; gates laid out in ONNX order i, o, f, c.
pub struct LstmNetwork {
    hidden: usize,
    /// `[H + 2, 4H]`: rows `0..H` take the previous state to the four gates (ONNX's R
    /// transposed), row `H` the reading (ONNX's W), row `H + 1` is the gate bias: each time step
    /// is one product of `[state, reading, 1]` with it.
    kernel: Var,
    /// `[H, 1]`.
    dense: Var,
    /// `[1]`.
    dense_bias: Var,
}

impl LstmNetwork {
    /// Keras's initialisation: Glorot-uniform kernels, an orthogonal recurrent kernel, zero biases
    /// except the forget gate's (1).
    pub fn init(hidden: usize, rng: &mut ChaCha8Rng, device: &Device) -> candle_core::Result<Self> {
        let h = hidden;
        let glorot = |fan_in: usize, fan_out: usize, rng: &mut ChaCha8Rng| -> Vec<f32> {
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
            (0..fan_in * fan_out)
                .map(|_| crate::to_model_precision(rng.random_range(-limit..limit)))
                .collect()
        };
        let input = glorot(1, 4 * h, rng);
        let recurrent = orthogonal_rows(h, 4 * h, rng);
        let mut bias = vec![0f32; 4 * h];
        bias[2 * h..3 * h].fill(1.0);
        let dense = glorot(h, 1, rng);
        let mut kernel = recurrent;
        kernel.extend(input);
        kernel.extend(bias);
        Ok(Self {
            hidden,
            kernel: Var::from_tensor(&Tensor::from_vec(kernel, (h + 2, 4 * h), device)?)?,
            dense: Var::from_tensor(&Tensor::from_vec(dense, (h, 1), device)?)?,
            dense_bias: Var::from_tensor(&Tensor::zeros(1, DType::F32, device)?)?,
        })
    }

    /// A network holding `weights` (to continue training, or to check an export against).
    pub fn from_weights(weights: &LstmWeights, device: &Device) -> candle_core::Result<Self> {
        let h = weights.hidden;
        let var = |tensor: candle_core::Result<Tensor>| tensor.and_then(|t| Var::from_tensor(&t));
        let recurrent = Tensor::from_slice(&weights.recurrent, (4 * h, h), device)?.t()?;
        let input = Tensor::from_slice(&weights.input, (1, 4 * h), device)?;
        let bias = Tensor::from_slice(&weights.bias, (1, 4 * h), device)?;
        Ok(Self {
            hidden: h,
            kernel: var(Tensor::cat(&[&recurrent, &input, &bias], 0))?,
            dense: var(Tensor::from_slice(&weights.dense, (h, 1), device))?,
            dense_bias: var(Tensor::from_slice(&[weights.dense_bias], 1, device))?,
        })
    }

    /// The variables the optimiser updates.
    pub fn variables(&self) -> Vec<Var> {
        vec![self.kernel.clone(), self.dense.clone(), self.dense_bias.clone()]
    }

    /// Predictions `[B, 1]` for sequences `[B, T, 1]`; `keep_mask` (`[B, H]`, already divided by
    /// the keep probability) applies dropout to the last state while training.
    ///
    /// The sequence is one operation with a hand-written backward pass
    /// ([`sequence::last_state`]); dropout and the dense layer are candle's, differentiated by
    /// its autograd.
    pub fn forward(&self, sequences: &Tensor, keep_mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let state = sequence::last_state(sequences, self.kernel.as_tensor())?;
        let last = match keep_mask {
            Some(mask) => (state * mask)?,
            None => state,
        };
        last.matmul(self.dense.as_tensor())?
            .broadcast_add(&self.dense_bias)
    }

    /// The current weights in ONNX's layout.
    pub fn weights(&self) -> candle_core::Result<LstmWeights> {
        let h = self.hidden;
        let kernel = self.kernel.as_tensor();
        let row = |index: usize| {
            kernel
                .narrow(0, index, 1)
                .and_then(|r| r.flatten_all()?.to_vec1())
        };
        Ok(LstmWeights {
            hidden: h,
            input: row(h)?,
            // [H, 4H] → [4H, H]
            recurrent: kernel
                .narrow(0, 0, h)?
                .t()?
                .contiguous()?
                .flatten_all()?
                .to_vec1()?,
            bias: row(h + 1)?,
            dense: self.dense.flatten_all()?.to_vec1()?,
            dense_bias: self.dense_bias.to_vec1::<f32>()?[0],
        })
    }
}

/// A `rows × cols` matrix (rows ≤ cols) with orthonormal rows, from Gram–Schmidt on Gaussian
/// vectors (Keras's `Orthogonal` initialiser).
fn orthogonal_rows(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(rows);
    while basis.len() < rows {
        let mut v: Vec<f64> = (0..cols).map(|_| StandardNormal.sample(rng)).collect();
        for b in &basis {
            let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
            v.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-6 {
            basis.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    basis
        .into_iter()
        .flatten()
        .map(crate::to_model_precision)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn candle_forward_matches_the_reference_definition() {
        let device = Device::Cpu;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let network = LstmNetwork::init(5, &mut rng, &device).expect("init");
        let sequence: Vec<f32> = (0..12).map(|_| rng.random_range(0.0..1.0)).collect();
        let input = Tensor::from_vec(sequence.clone(), (1, 12, 1), &device).expect("tensor");
        let candle = network
            .forward(&input, None)
            .expect("forward")
            .flatten_all()
            .expect("flat");
        let candle = candle.to_vec1::<f32>().expect("vec")[0];
        let reference = network.weights().expect("weights").predict(&sequence);
        assert!(
            (candle - reference).abs() < 1e-5,
            "candle {candle} vs reference {reference}"
        );
    }

    #[test]
    fn weights_round_trip_through_a_network() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let network = LstmNetwork::init(6, &mut rng, &Device::Cpu).expect("init");
        let weights = network.weights().expect("weights");
        let rebuilt = LstmNetwork::from_weights(&weights, &Device::Cpu).expect("rebuild");
        assert_eq!(rebuilt.weights().expect("weights"), weights);
    }

    #[test]
    fn recurrent_rows_are_orthonormal() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let m = orthogonal_rows(4, 16, &mut rng);
        for i in 0..4 {
            for j in 0..4 {
                let dot: f32 = (0..16).map(|k| m[i * 16 + k] * m[j * 16 + k]).sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((dot - expected).abs() < 1e-5);
            }
        }
    }
}
