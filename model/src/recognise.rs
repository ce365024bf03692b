//! Reading a one-feature LSTM → Dense out of an ONNX graph for the native evaluator, as wattcast
//! exports it or as tf2onnx exports a Keras model.
//!
//! The graph is split into the nodes that compute the output's *values* (found by walking back
//! from the output through each operator's value inputs) and the nodes that only compute shapes
//! and indices (tf2onnx builds a symbolic batch's zero initial states from `Shape → Cast → Slice →
//! Concat → Cast`). Value nodes may only be the LSTM, the dense layer and layout changes, plus two
//! checked roles: a `Slice` taking the last time step of the LSTM's output sequence, and an
//! `Expand`/`ConstantOfShape` of zero as its initial state. Shape nodes may only be shape
//! operators, and every index a value node reads (a Slice's starts, say) must be a constant.
//! Anything else is refused, and the forecaster still proves the result against tract.

use super::native::NativeLstm;
use std::collections::{HashMap, HashSet};
use tract_onnx::pb;

/// Why a model is not one the native evaluator can run (the forecaster then runs it with tract).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("not a plain LSTM → Dense graph: {0}")]
pub struct NotRecognised(String);

impl NotRecognised {
    /// A refusal saying why.
    pub(super) fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

fn unrecognised<T>(why: impl Into<String>) -> Result<T, NotRecognised> {
    Err(NotRecognised(why.into()))
}

/// Operators that only move values around (their other inputs are shapes or axes).
const LAYOUT_OPERATORS: [&str; 6] = [
    "Transpose",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Identity",
];

/// Operators that may compute shapes and indices, off the values' path.
const SHAPE_OPERATORS: [&str; 10] = [
    "Shape",
    "Cast",
    "Slice",
    "Concat",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Reshape",
    "Identity",
    "Constant",
];

/// The ONNX LSTM's input slots.
const LSTM_X: usize = 0;
const LSTM_W: usize = 1;
const LSTM_R: usize = 2;
const LSTM_B: usize = 3;
const LSTM_SEQUENCE_LENS: usize = 4;
const LSTM_INITIAL_H: usize = 5;
const LSTM_INITIAL_C: usize = 6;
const LSTM_PEEPHOLES: usize = 7;

/// The ONNX LSTM's output slots: every hidden state, the last hidden state, the last cell state.
const LSTM_Y: usize = 0;
const LSTM_Y_H: usize = 1;

/// Reads the weights out of `model` if it is a one-feature LSTM → Dense graph.
pub fn recognise(model: &pb::ModelProto) -> Result<NativeLstm, NotRecognised> {
    let Some(graph) = &model.graph else {
        return unrecognised("no graph");
    };
    let graph = Graph::new(graph)?;
    let values = graph.value_nodes()?;
    let value_keys: HashSet<&str> = values.iter().map(|n| node_key(n)).collect();
    for &node in &values {
        let op = node.op_type.as_str();
        let allowed = matches!(
            op,
            "LSTM" | "MatMul" | "Gemm" | "Add" | "Slice" | "Expand" | "ConstantOfShape" | "Cast"
        ) || LAYOUT_OPERATORS.contains(&op);
        if !allowed {
            return unrecognised(format!("a {op} node"));
        }
    }
    if let Some(node) = graph
        .nodes
        .iter()
        .find(|n| !value_keys.contains(node_key(n)) && !SHAPE_OPERATORS.contains(&n.op_type.as_str()))
    {
        return unrecognised(format!("a {} node", node.op_type));
    }
    let lstms: Vec<&pb::NodeProto> = values.iter().copied().filter(|n| n.op_type == "LSTM").collect();
    let &[lstm] = lstms.as_slice() else {
        return unrecognised(format!("{} LSTM nodes, expected one", lstms.len()));
    };
    check_lstm_attributes(lstm)?;
    let h = lstm
        .attribute
        .iter()
        .find(|a| a.name == "hidden_size")
        .and_then(|a| usize::try_from(a.i).ok())
        .filter(|&h| h > 0);
    let Some(h) = h else {
        return unrecognised("the LSTM has no hidden_size");
    };
    let input = graph.constant(input_name(lstm, LSTM_W))?;
    let recurrent = graph.constant(input_name(lstm, LSTM_R))?;
    if input.len() != 4 * h || recurrent.len() != 4 * h * h {
        return unrecognised(format!(
            "W has {} and R {} values; one input feature and hidden size {h} need {} and {}",
            input.len(),
            recurrent.len(),
            4 * h,
            4 * h * h
        ));
    }
    let bias = match input_name(lstm, LSTM_B) {
        "" => vec![0.0; 4 * h],
        name => {
            let both = graph.constant(name)?;
            if both.len() != 8 * h {
                return unrecognised(format!("B has {} values, expected {}", both.len(), 8 * h));
            }
            (0..4 * h).map(|k| both[k] + both[4 * h + k]).collect()
        }
    };
    if !input_name(lstm, LSTM_SEQUENCE_LENS).is_empty() {
        return unrecognised("sequence_lens is given");
    }
    if !input_name(lstm, LSTM_PEEPHOLES).is_empty() {
        return unrecognised("the LSTM has peepholes");
    }
    let mut checked_roles = HashSet::new();
    for (slot, what) in [(LSTM_INITIAL_H, "initial_h"), (LSTM_INITIAL_C, "initial_c")] {
        graph.check_zero_state(input_name(lstm, slot), what, &mut checked_roles)?;
    }
    let (product, dense, dense_bias) = dense_layer(&graph, &values, h)?;
    graph.check_last_state(product, lstm, &mut checked_roles)?;
    if let Some(node) = values.iter().find(|n| {
        matches!(
            n.op_type.as_str(),
            "Slice" | "Expand" | "ConstantOfShape" | "Cast"
        ) && !checked_roles.contains(&node_key(n))
    }) {
        return unrecognised(format!(
            "a {} node on the values' path that is neither the LSTM's last step nor its zero state",
            node.op_type
        ));
    }
    Ok(NativeLstm::from_onnx_layout(
        h, &input, &bias, &recurrent, dense, dense_bias,
    ))
}

/// The name of a node's input `slot`, or "" if it is absent.
fn input_name(node: &pb::NodeProto, slot: usize) -> &str {
    node.input.get(slot).map(String::as_str).unwrap_or("")
}

/// A node's identity within its graph: the name of its first output (unique in a valid graph).
fn node_key(node: &pb::NodeProto) -> &str {
    node.output.first().map(String::as_str).unwrap_or("")
}

/// The input slots of `node` whose values flow into its output's values (the others are shapes,
/// axes or indices).
fn value_inputs(node: &pb::NodeProto) -> Vec<usize> {
    match node.op_type.as_str() {
        "Shape" | "ConstantOfShape" | "Constant" => vec![],
        "LSTM" => vec![
            LSTM_X,
            LSTM_W,
            LSTM_R,
            LSTM_B,
            LSTM_INITIAL_H,
            LSTM_INITIAL_C,
            LSTM_PEEPHOLES,
        ],
        "Expand" | "Reshape" | "Slice" | "Squeeze" | "Unsqueeze" | "Gather" | "Transpose" | "Flatten"
        | "Identity" | "Cast" => vec![0],
        _ => (0..node.input.len()).collect(),
    }
}

/// An ONNX graph indexed for the recogniser.
struct Graph<'a> {
    nodes: &'a [pb::NodeProto],
    initializers: HashMap<&'a str, &'a pb::TensorProto>,
    /// Which node produces each tensor, and as which of its outputs.
    producers: HashMap<&'a str, (&'a pb::NodeProto, usize)>,
    output: &'a str,
}

impl<'a> Graph<'a> {
    fn new(graph: &'a pb::GraphProto) -> Result<Self, NotRecognised> {
        let [output] = graph.output.as_slice() else {
            return unrecognised(format!("{} graph outputs, expected one", graph.output.len()));
        };
        let mut producers = HashMap::new();
        for node in &graph.node {
            for (slot, name) in node.output.iter().enumerate() {
                if producers.insert(name.as_str(), (node, slot)).is_some() {
                    return unrecognised(format!("two nodes produce {name:?}"));
                }
            }
        }
        Ok(Self {
            nodes: &graph.node,
            initializers: graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
            producers,
            output: output.name.as_str(),
        })
    }

    /// The nodes whose outputs flow into the graph output's values.
    fn value_nodes(&self) -> Result<Vec<&'a pb::NodeProto>, NotRecognised> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut found = Vec::new();
        let mut pending = vec![self.output];
        while let Some(tensor) = pending.pop() {
            let Some(&(node, _)) = self.producers.get(tensor) else {
                continue; // a graph input or a constant
            };
            if !seen.insert(node_key(node)) {
                continue;
            }
            found.push(node);
            pending.extend(
                value_inputs(node)
                    .into_iter()
                    .filter_map(|slot| node.input.get(slot))
                    .map(String::as_str)
                    .filter(|name| !name.is_empty()),
            );
        }
        if found.is_empty() {
            return unrecognised("no node computes the output");
        }
        Ok(found)
    }

    /// A constant's values as f32.
    fn constant(&self, name: &str) -> Result<Vec<f32>, NotRecognised> {
        match self.initializers.get(name) {
            Some(tensor) => floats(tensor),
            None => unrecognised(format!("{name:?} is not a constant")),
        }
    }

    /// A constant's values as i64 (an index or axis list).
    fn integers(&self, name: &str) -> Result<Vec<i64>, NotRecognised> {
        match self.initializers.get(name) {
            Some(tensor) => integers(tensor),
            None => unrecognised(format!("{name:?} is not a constant")),
        }
    }

    /// `tensor`, or what it is a layout change of: the first tensor back from it that no layout
    /// operator produced.
    fn through_layout(&self, tensor: &'a str) -> &'a str {
        let mut current = tensor;
        while let Some(&(node, _)) = self.producers.get(current) {
            if !LAYOUT_OPERATORS.contains(&node.op_type.as_str()) {
                break;
            }
            current = input_name(node, 0);
        }
        current
    }

    /// Checks that an initial state is absent, a zero constant, or built at run time from a
    /// zero (`Expand` of a zero constant, `ConstantOfShape` of zero, a `Cast` of either), through
    /// layout changes.
    fn check_zero_state(
        &self,
        tensor: &'a str,
        what: &str,
        checked_roles: &mut HashSet<&'a str>,
    ) -> Result<(), NotRecognised> {
        let mut current = tensor;
        loop {
            current = self.through_layout(current);
            if current.is_empty() {
                return Ok(());
            }
            if self.initializers.contains_key(current) {
                return if self.constant(current)?.iter().all(|&v| v == 0.0) {
                    Ok(())
                } else {
                    unrecognised(format!("{what} is not zero"))
                };
            }
            let Some(&(node, _)) = self.producers.get(current) else {
                return unrecognised(format!("{what} is a graph input"));
            };
            match node.op_type.as_str() {
                "Expand" => current = input_name(node, 0),
                "Cast" if cast_target(node) == Some(pb::tensor_proto::DataType::Float as i64) => {
                    current = input_name(node, 0);
                }
                "ConstantOfShape" => {
                    let value = node
                        .attribute
                        .iter()
                        .find(|a| a.name == "value")
                        .and_then(|a| a.t.as_ref());
                    let zero = match value {
                        None => true, // ONNX's default is a float zero
                        Some(tensor) => floats(tensor)?.iter().all(|&v| v == 0.0),
                    };
                    if !zero {
                        return unrecognised(format!("{what} is not zero"));
                    }
                    checked_roles.insert(node_key(node));
                    return Ok(());
                }
                other => return unrecognised(format!("{what} comes from a {other} node")),
            }
            checked_roles.insert(node_key(node));
        }
    }

    /// Checks that the dense layer reads the LSTM's last hidden state: `Y_h`, or the last time
    /// step of `Y` taken by one `Slice` (starts -1 on the time axis), through layout changes.
    fn check_last_state(
        &self,
        product: &'a pb::NodeProto,
        lstm: &pb::NodeProto,
        checked_roles: &mut HashSet<&'a str>,
    ) -> Result<(), NotRecognised> {
        let Some(state) = product
            .input
            .iter()
            .find(|name| !self.initializers.contains_key(name.as_str()))
        else {
            return unrecognised("the dense layer has no input that is not a constant");
        };
        let mut slices = Vec::new();
        let mut current = self.through_layout(state);
        let (source, slot) = loop {
            let Some(&(node, slot)) = self.producers.get(current) else {
                return unrecognised("the dense layer does not read the LSTM");
            };
            if node.op_type != "Slice" {
                break (node, slot);
            }
            slices.push(node);
            current = self.through_layout(input_name(node, 0));
        };
        if node_key(source) != node_key(lstm) {
            return unrecognised(format!(
                "the dense layer reads a {} node, not the LSTM",
                source.op_type
            ));
        }
        match (slot, slices.as_slice()) {
            (LSTM_Y_H, []) => Ok(()),
            (LSTM_Y, [slice]) => {
                self.check_last_step(slice)?;
                checked_roles.insert(node_key(slice));
                Ok(())
            }
            (LSTM_Y, _) => unrecognised(format!(
                "the dense layer reads the LSTM's output sequence through {} Slice nodes, expected one taking the last step",
                slices.len()
            )),
            _ => unrecognised(format!(
                "the dense layer reads the LSTM's output {slot}, not a hidden state"
            )),
        }
    }

    /// Checks that a `Slice` of the output sequence keeps only its last time step (axis 0).
    fn check_last_step(&self, slice: &pb::NodeProto) -> Result<(), NotRecognised> {
        let list = |slot: usize| -> Result<Option<Vec<i64>>, NotRecognised> {
            match input_name(slice, slot) {
                "" => Ok(None),
                name => self.integers(name).map(Some),
            }
        };
        let (starts, ends, axes, steps) = (list(1)?, list(2)?, list(3)?, list(4)?);
        let last_step = starts.as_deref() == Some(&[-1])
            && ends
                .as_deref()
                .is_some_and(|e| e.len() == 1 && e[0] >= i64::from(i32::MAX))
            && axes.as_deref() == Some(&[0])
            && steps.as_deref().is_none_or(|s| s == [1]);
        if last_step {
            Ok(())
        } else {
            unrecognised(format!(
                "a Slice of the LSTM's output sequence that is not its last step (starts {starts:?}, ends {ends:?}, axes {axes:?}, steps {steps:?})"
            ))
        }
    }
}

/// The data type a `Cast` converts to.
fn cast_target(node: &pb::NodeProto) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == "to").map(|a| a.i)
}

/// Refuses LSTM attributes that change what the cell computes.
fn check_lstm_attributes(lstm: &pb::NodeProto) -> Result<(), NotRecognised> {
    for attribute in &lstm.attribute {
        let plain = match attribute.name.as_str() {
            "hidden_size" => true,
            "direction" => matches!(attribute.s.as_slice(), b"forward" | b""),
            "activations" => {
                let names: Vec<&[u8]> = attribute.strings.iter().map(Vec::as_slice).collect();
                names.is_empty() || names == [b"Sigmoid".as_slice(), b"Tanh", b"Tanh"]
            }
            "input_forget" | "layout" => attribute.i == 0,
            _ => false,
        };
        if !plain {
            return unrecognised(format!(
                "the LSTM's {:?} attribute is not the default",
                attribute.name
            ));
        }
    }
    Ok(())
}

/// The dense layer: the one MatMul or Gemm with an `H`-element constant operand, and its bias (a
/// Gemm's C or an Add of a one-element constant; zero if there is none).
fn dense_layer<'a>(
    graph: &Graph<'a>,
    values: &[&'a pb::NodeProto],
    hidden: usize,
) -> Result<(&'a pb::NodeProto, Vec<f32>, f32), NotRecognised> {
    let constant_of = |node: &pb::NodeProto, len: usize| -> Option<Vec<f32>> {
        node.input
            .iter()
            .filter_map(|name| graph.initializers.get(name.as_str()))
            .filter_map(|tensor| floats(tensor).ok())
            .find(|values| values.len() == len)
    };
    let products: Vec<&pb::NodeProto> = values
        .iter()
        .copied()
        .filter(|n| n.op_type == "MatMul" || n.op_type == "Gemm")
        .collect();
    let &[product] = products.as_slice() else {
        return unrecognised(format!("{} MatMul/Gemm nodes, expected one", products.len()));
    };
    for attribute in &product.attribute {
        let plain = match attribute.name.as_str() {
            "alpha" | "beta" => attribute.f == 1.0,
            "transA" => attribute.i == 0,
            "transB" => true, // a [1, H] or [H, 1] weight holds the same values
            _ => false,
        };
        if !plain {
            return unrecognised(format!(
                "the dense layer's {:?} attribute is not the default",
                attribute.name
            ));
        }
    }
    let Some(dense) = constant_of(product, hidden) else {
        return unrecognised(format!("the dense layer has no {hidden}-element weight"));
    };
    let gemm_bias = (product.op_type == "Gemm")
        .then(|| product.input.get(2))
        .flatten()
        .and_then(|name| graph.initializers.get(name.as_str()))
        .and_then(|tensor| floats(tensor).ok());
    let adds: Vec<&pb::NodeProto> = values.iter().copied().filter(|n| n.op_type == "Add").collect();
    let add_biases: Vec<Vec<f32>> = adds.iter().filter_map(|n| constant_of(n, 1)).collect();
    if add_biases.len() != adds.len() {
        return unrecognised("an Add that is not the dense layer's one-element bias");
    }
    let bias = match (gemm_bias, add_biases.as_slice()) {
        (Some(c), []) if c.len() == 1 => c[0],
        (None, []) => 0.0,
        (None, [add]) => add[0],
        _ => return unrecognised("the dense layer's bias is not one constant"),
    };
    Ok((product, dense, bias))
}

/// A constant's values as f32, from `float_data` or little-endian `raw_data`.
fn floats(tensor: &pb::TensorProto) -> Result<Vec<f32>, NotRecognised> {
    if tensor.data_type != pb::tensor_proto::DataType::Float as i32 {
        return unrecognised(format!("{:?} is not f32", tensor.name));
    }
    if !tensor.float_data.is_empty() {
        return Ok(tensor.float_data.clone());
    }
    if !tensor.raw_data.len().is_multiple_of(4) {
        return unrecognised(format!("{:?} has a partial f32 in its raw data", tensor.name));
    }
    Ok(tensor
        .raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// A constant's values as i64, from `int64_data`/`int32_data` or little-endian `raw_data`.
fn integers(tensor: &pb::TensorProto) -> Result<Vec<i64>, NotRecognised> {
    use pb::tensor_proto::DataType;
    let raw = &tensor.raw_data;
    if tensor.data_type == DataType::Int64 as i32 {
        if !tensor.int64_data.is_empty() {
            return Ok(tensor.int64_data.clone());
        }
        if raw.len().is_multiple_of(8) {
            return Ok(raw
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect());
        }
    } else if tensor.data_type == DataType::Int32 as i32 {
        if !tensor.int32_data.is_empty() {
            return Ok(tensor.int32_data.iter().map(|&v| i64::from(v)).collect());
        }
        if raw.len().is_multiple_of(4) {
            return Ok(raw
                .chunks_exact(4)
                .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect());
        }
    }
    unrecognised(format!("{:?} is not a list of integers", tensor.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// A Keras LSTM(25) → Dense(1) exported by tf2onnx 1.17 with a symbolic batch (the repo's
    /// `tools/keras/recipe.py export`; see `tests/fixtures/keras-lstm/forecast.json`).
    const KERAS_EXPORT: &[u8] = include_bytes!("../../cli/tests/fixtures/keras-lstm/model.onnx");
    /// The same model exported for a batch of 1.
    const KERAS_EXPORT_BATCH_1: &[u8] =
        include_bytes!("../../cli/tests/fixtures/keras-lstm/model-batch-1.onnx");

    fn decoded(bytes: &[u8]) -> pb::ModelProto {
        pb::ModelProto::decode(bytes).expect("decodes")
    }

    fn node<'a>(model: &'a mut pb::ModelProto, op: &str) -> &'a mut pb::NodeProto {
        let graph = model.graph.as_mut().expect("graph");
        graph.node.iter_mut().find(|n| n.op_type == op).expect("node")
    }

    fn initializer<'a>(model: &'a mut pb::ModelProto, name: &str) -> &'a mut pb::TensorProto {
        let graph = model.graph.as_mut().expect("graph");
        graph
            .initializer
            .iter_mut()
            .find(|t| t.name == name)
            .expect("initializer")
    }

    fn refusal(model: &pb::ModelProto) -> String {
        recognise(model).expect_err("refused").to_string()
    }

    #[test]
    fn recognises_real_tf2onnx_exports_of_a_keras_lstm() {
        for bytes in [KERAS_EXPORT, KERAS_EXPORT_BATCH_1] {
            let model = decoded(bytes);
            let native = recognise(&model).expect("recognised");
            assert_eq!(native.hidden(), 25);
        }
    }

    #[test]
    fn refuses_a_slice_that_is_not_the_last_step() {
        let mut model = decoded(KERAS_EXPORT);
        let sequence = node(&mut model, "LSTM").output[0].clone();
        let slice_starts = {
            let graph = model.graph.as_ref().expect("graph");
            let squeeze = graph
                .node
                .iter()
                .find(|n| n.op_type == "Squeeze" && n.input[0] == sequence)
                .expect("squeeze of Y");
            let slice = graph
                .node
                .iter()
                .find(|n| n.op_type == "Slice" && n.input[0] == squeeze.output[0])
                .expect("slice of Y");
            slice.input[1].clone()
        };
        let first_step = initializer(&mut model, &slice_starts);
        first_step.raw_data = 0i64.to_le_bytes().to_vec();
        first_step.int64_data.clear();
        assert!(
            refusal(&model).contains("not its last step"),
            "{}",
            refusal(&model)
        );
    }

    #[test]
    fn refuses_an_initial_state_that_is_not_zero() {
        let mut model = decoded(KERAS_EXPORT);
        let expand = node(&mut model, "Expand").input[0].clone();
        let value = initializer(&mut model, &expand);
        value.raw_data = 0.5f32.to_le_bytes().to_vec();
        value.float_data.clear();
        assert_eq!(
            refusal(&model),
            "not a plain LSTM → Dense graph: initial_h is not zero"
        );
        let mut model = decoded(KERAS_EXPORT_BATCH_1);
        let state = node(&mut model, "LSTM").input[LSTM_INITIAL_C].clone();
        let value = initializer(&mut model, &state);
        value.raw_data[0..4].copy_from_slice(&1.0f32.to_le_bytes());
        assert!(refusal(&model).ends_with("is not zero"), "{}", refusal(&model));
    }

    #[test]
    fn refuses_a_dense_layer_on_the_cell_state() {
        let mut model = decoded(KERAS_EXPORT_BATCH_1);
        let lstm = node(&mut model, "LSTM");
        lstm.output.truncate(1);
        lstm.output.extend(["y_h".to_owned(), "y_c".to_owned()]);
        let gemm = node(&mut model, "Gemm");
        gemm.input[0] = "y_c".to_owned();
        assert!(
            refusal(&model).contains("output 2, not a hidden state"),
            "{}",
            refusal(&model)
        );
    }

    #[test]
    fn refuses_unknown_operators_on_either_path() {
        let mut model = decoded(KERAS_EXPORT);
        node(&mut model, "Concat").op_type = "Max".to_owned();
        assert_eq!(refusal(&model), "not a plain LSTM → Dense graph: a Max node");
        let mut model = decoded(KERAS_EXPORT);
        node(&mut model, "Add").op_type = "Sub".to_owned();
        assert_eq!(refusal(&model), "not a plain LSTM → Dense graph: a Sub node");
    }

    #[test]
    fn reads_raw_little_endian_constants() {
        let tensor = pb::TensorProto {
            name: "w".to_owned(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            raw_data: [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        };
        assert_eq!(floats(&tensor).expect("floats"), vec![1.5, -2.0]);
        let tensor = pb::TensorProto {
            name: "axes".to_owned(),
            data_type: pb::tensor_proto::DataType::Int64 as i32,
            raw_data: [-1i64, 7].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        };
        assert_eq!(integers(&tensor).expect("integers"), vec![-1, 7]);
    }
}
