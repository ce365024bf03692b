//! A compiled evaluator for ONNX models recognised as LSTM → Dense, used by the forecaster only
//! after it has shown that it computes what tract computes for the same model.
//!
//! tract interprets an ONNX LSTM as a scan of about fifteen small operations per time step, and a
//! 60-step recursive forecast is 3,600 such steps: the interpreter's per-operation cost, not the
//! arithmetic, is what a forecast costs there. This module runs the same cell as one tight loop
//! whose element-wise parts the compiler vectorises.

pub use super::recognise::NotRecognised;
use super::weights::LstmWeights;
use tract_onnx::pb;
use wattcast_lstm::activations::{sigmoid, tanh};
use wattcast_lstm::gates::{GateProduct, multiply_add, padded_gates};

/// The weights of a one-feature LSTM followed by a dense layer, laid out for the cell loop.
#[derive(Clone, Debug)]
pub struct NativeLstm {
    hidden: usize,
    /// Input weights, ONNX's Wb + Rb and the recurrent weights, in blocks for the cell loop.
    product: GateProduct,
    /// `[H]`.
    dense: Vec<f32>,
    dense_bias: f32,
}

impl NativeLstm {
    /// The evaluator for weights in wattcast's own layout.
    pub fn from_weights(weights: &LstmWeights) -> Result<Self, NotRecognised> {
        if !weights.is_consistent() {
            return Err(NotRecognised::new(
                "the weight arrays do not match the hidden size",
            ));
        }
        Ok(Self::from_onnx_layout(
            weights.hidden,
            &weights.input,
            &weights.bias,
            &weights.recurrent,
            weights.dense.clone(),
            weights.dense_bias,
        ))
    }

    /// Lays out ONNX-ordered weights (`recurrent` is ONNX's R, `[4H, H]`) for the cell loop.
    pub(super) fn from_onnx_layout(
        hidden: usize,
        input: &[f32],
        bias: &[f32],
        recurrent: &[f32],
        dense: Vec<f32>,
        dense_bias: f32,
    ) -> Self {
        Self {
            hidden,
            product: GateProduct::from_onnx_layout(hidden, input, bias, recurrent),
            dense,
            dense_bias,
        }
    }

    /// Reads the weights out of an ONNX graph holding one forward LSTM node with default
    /// activations over a single input feature and zero initial states, whose last hidden state
    /// feeds a dense layer (see [`super::recognise`]). Anything else is refused.
    pub fn recognise(model: &pb::ModelProto) -> Result<Self, NotRecognised> {
        super::recognise::recognise(model)
    }

    /// The LSTM's hidden size.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// The model's output for one input sequence (already scaled).
    pub fn predict(&self, sequence: &[f32]) -> f32 {
        let mut scratch = Scratch::new(self.hidden);
        self.run(sequence, &mut scratch)
    }

    /// A recursive forecast of `horizon` scaled values after `window` (scaled, look-back long):
    /// each prediction joins the window for the next, the oldest reading leaves it.
    pub fn forecast_scaled(&self, window: &[f32], horizon: usize) -> Vec<f32> {
        let look_back = window.len();
        let mut scratch = Scratch::new(self.hidden);
        // The window slides through one buffer: step k reads `series[k..k + look_back]`.
        let mut series = Vec::with_capacity(look_back + horizon);
        series.extend_from_slice(window);
        for step in 0..horizon {
            let next = self.run(&series[step..step + look_back], &mut scratch);
            series.push(next);
        }
        series.split_off(look_back)
    }

    fn run(&self, sequence: &[f32], scratch: &mut Scratch) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has just been found to support the features the function enables.
            return unsafe { self.run_avx2(sequence, scratch) };
        }
        self.cell_loop::<false>(sequence, scratch)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(&self, sequence: &[f32], scratch: &mut Scratch) -> f32 {
        self.cell_loop::<true>(sequence, scratch)
    }

    /// The LSTM over `sequence` from a zero state, then the dense layer on the last state;
    /// `FUSED` multiply-adds are single instructions (only where the CPU has them).
    #[inline(always)]
    fn cell_loop<const FUSED: bool>(&self, sequence: &[f32], scratch: &mut Scratch) -> f32 {
        let h = self.hidden;
        let Scratch { gates, state, cell } = scratch;
        state.fill(0.0);
        cell.fill(0.0);
        for &x in sequence {
            self.product.gates::<FUSED>(state, x, gates);
            let (sigmoid_gates, rest) = gates.split_at_mut(3 * h);
            let candidate = &mut rest[..h];
            sigmoid_gates.iter_mut().for_each(|g| *g = sigmoid(*g));
            candidate.iter_mut().for_each(|g| *g = tanh(*g));
            let (input_gate, rest) = sigmoid_gates.split_at(h);
            let (output_gate, forget_gate) = rest.split_at(h);
            for j in 0..h {
                cell[j] = multiply_add::<FUSED>(forget_gate[j], cell[j], input_gate[j] * candidate[j]);
            }
            for j in 0..h {
                state[j] = output_gate[j] * tanh(cell[j]);
            }
        }
        self.dense
            .iter()
            .zip(state.iter())
            .map(|(w, s)| w * s)
            .sum::<f32>()
            + self.dense_bias
    }
}

/// Buffers one run of the cell loop works in.
struct Scratch {
    gates: Vec<f32>,
    state: Vec<f32>,
    cell: Vec<f32>,
}

impl Scratch {
    fn new(hidden: usize) -> Self {
        Self {
            gates: vec![0.0; padded_gates(hidden)],
            state: vec![0.0; hidden],
            cell: vec![0.0; hidden],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx;
    use prost::Message;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn weights(seed: u64, hidden: usize) -> LstmWeights {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut values = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-0.8..0.8)).collect() };
        LstmWeights {
            hidden,
            input: values(4 * hidden),
            recurrent: values(4 * hidden * hidden),
            bias: values(4 * hidden),
            dense: values(hidden),
            dense_bias: 0.3,
        }
    }

    #[test]
    fn predicts_what_the_reference_definition_gives() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for hidden in [1, 5, 25, 33] {
            let weights = weights(hidden as u64, hidden);
            let native = NativeLstm::from_weights(&weights).expect("consistent");
            for _ in 0..10 {
                let sequence: Vec<f32> = (0..60).map(|_| rng.random_range(-0.2..1.2)).collect();
                let (got, want) = (native.predict(&sequence), weights.predict(&sequence));
                assert!((got - want).abs() < 1e-5, "hidden {hidden}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn a_recursive_forecast_feeds_each_prediction_back() {
        let weights = weights(9, 25);
        let native = NativeLstm::from_weights(&weights).expect("consistent");
        let window: Vec<f32> = (0..60).map(|i| (i as f32 / 7.0).sin()).collect();
        let forecast = native.forecast_scaled(&window, 5);
        let mut sliding = window.clone();
        for &value in &forecast {
            assert_eq!(value, native.predict(&sliding));
            sliding.remove(0);
            sliding.push(value);
        }
    }

    #[test]
    fn recognises_the_export_and_reads_its_weights_back() {
        let weights = weights(2, 25);
        let model = pb::ModelProto::decode(onnx::export(&weights, 60).as_slice()).expect("decodes");
        let native = NativeLstm::recognise(&model).expect("recognised");
        let sequence: Vec<f32> = (0..60).map(|i| i as f32 / 60.0).collect();
        assert_eq!(
            native.predict(&sequence),
            NativeLstm::from_weights(&weights).expect("ok").predict(&sequence)
        );
    }

    #[test]
    fn refuses_graphs_that_change_the_cell() {
        let export = onnx::export(&weights(3, 4), 60);
        let mut model = pb::ModelProto::decode(export.as_slice()).expect("decodes");
        let graph = model.graph.as_mut().expect("graph");
        let lstm = graph.node.iter_mut().find(|n| n.op_type == "LSTM").expect("lstm");
        lstm.attribute.push(pb::AttributeProto {
            name: "clip".to_owned(),
            f: 3.0,
            ..Default::default()
        });
        let error = NativeLstm::recognise(&model).expect_err("clip");
        assert_eq!(
            error.to_string(),
            "not a plain LSTM → Dense graph: the LSTM's \"clip\" attribute is not the default"
        );
        let mut model = pb::ModelProto::decode(export.as_slice()).expect("decodes");
        let graph = model.graph.as_mut().expect("graph");
        // A second product between the first and the bias.
        let mut second = graph
            .node
            .iter()
            .find(|n| n.op_type == "MatMul")
            .cloned()
            .expect("matmul");
        second.input[0] = second.output[0].clone();
        second.output[0] = "dense_again".to_owned();
        let add = graph.node.iter_mut().find(|n| n.op_type == "Add").expect("add");
        add.input[0] = "dense_again".to_owned();
        graph.node.push(second);
        let error = NativeLstm::recognise(&model).expect_err("two products");
        assert!(
            error.to_string().ends_with("2 MatMul/Gemm nodes, expected one"),
            "{error}"
        );
    }
}
