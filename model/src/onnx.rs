//! Export of trained weights as an ONNX model: Transpose → LSTM → Reshape → MatMul → Add.
//!
//! The graph takes `input` `[N, look_back, 1]` f32 (batch first, as Keras/tf2onnx models do)
//! and gives `forecast` `[N, 1]`; the LSTM node holds the recurrent layer in ONNX's standard
//! layout, so any ONNX runtime runs it.

use super::weights::LstmWeights;
use prost::Message;
use tract_onnx::pb;

/// The ONNX operator set the exported graph uses.
pub const OPSET: i64 = 14;
/// The graph's input name.
pub const INPUT: &str = "input";
/// The graph's output name.
pub const OUTPUT: &str = "forecast";

/// Encodes the weights as an ONNX model for sequences of `look_back` readings.
pub fn export(weights: &LstmWeights, look_back: usize) -> Vec<u8> {
    let h = weights.hidden as i64;
    // ONNX's B is [Wb, Rb]; the trained gate biases are all in Wb.
    let mut bias = weights.bias.clone();
    bias.extend(std::iter::repeat_n(0.0, weights.bias.len()));
    let initializer = vec![
        float_tensor("W", &[1, 4 * h, 1], &weights.input),
        float_tensor("R", &[1, 4 * h, h], &weights.recurrent),
        float_tensor("B", &[1, 8 * h], &bias),
        int_tensor("state_shape", &[2], &[-1, h]),
        float_tensor("dense_w", &[h, 1], &weights.dense),
        float_tensor("dense_b", &[1], &[weights.dense_bias]),
    ];
    let node = vec![
        node(
            "Transpose",
            &[INPUT],
            &["time_major"],
            vec![ints_attribute("perm", &[1, 0, 2])],
        ),
        node(
            "LSTM",
            &["time_major", "W", "R", "B"],
            &["lstm_y", "lstm_h"],
            vec![int_attribute("hidden_size", h)],
        ),
        node("Reshape", &["lstm_h", "state_shape"], &["state"], vec![]),
        node("MatMul", &["state", "dense_w"], &["dense"], vec![]),
        node("Add", &["dense", "dense_b"], &[OUTPUT], vec![]),
    ];
    let graph = pb::GraphProto {
        name: "wattcast-lstm".to_owned(),
        node,
        initializer,
        input: vec![value_info(
            INPUT,
            vec![dim_param("batch"), dim(look_back as i64), dim(1)],
        )],
        output: vec![value_info(OUTPUT, vec![dim_param("batch"), dim(1)])],
        ..Default::default()
    };
    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "wattcast".to_owned(),
        producer_version: env!("CARGO_PKG_VERSION").to_owned(),
        doc_string: format!("LSTM({}) -> Dense(1), look-back {look_back}", weights.hidden),
        graph: Some(graph),
        ..Default::default()
    };
    model.encode_to_vec()
}

fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_owned(),
        dims: dims.to_vec(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: values.to_vec(),
        ..Default::default()
    }
}

fn int_tensor(name: &str, dims: &[i64], values: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_owned(),
        dims: dims.to_vec(),
        data_type: pb::tensor_proto::DataType::Int64 as i32,
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

fn node(
    op_type: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        name: format!("{op_type}_{}", outputs[0]),
        op_type: op_type.to_owned(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        attribute,
        ..Default::default()
    }
}

fn int_attribute(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_owned(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn ints_attribute(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_owned(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn dim(value: i64) -> pb::tensor_shape_proto::Dimension {
    pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(value)),
        ..Default::default()
    }
}

fn dim_param(name: &str) -> pb::tensor_shape_proto::Dimension {
    pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimParam(
            name.to_owned(),
        )),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: Vec<pb::tensor_shape_proto::Dimension>) -> pb::ValueInfoProto {
    let tensor = pb::type_proto::Tensor {
        elem_type: pb::tensor_proto::DataType::Float as i32,
        shape: Some(pb::TensorShapeProto { dim: dims }),
    };
    pb::ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}
