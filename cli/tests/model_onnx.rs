//! The exported ONNX model, run by tract, computes what candle's network computes; the native
//! evaluator computes what tract computes and is used only when it does; the forecaster accepts
//! models meeting the contract (explicit zero states, Squeeze, a transposed Gemm; real Keras
//! exports are tested in `model_keras.rs`) and refuses the rest with a clear message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

use candle_core::{Device, Tensor};
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tract_onnx::pb;
use wattcast_model::lstm::LstmNetwork;
use wattcast_model::{
    ForecastEngine, ForecastError, Forecaster, LstmWeights, MinMaxScaler, Recipe, onnx, train,
};

const LOOK_BACK: usize = 60;

fn random_weights(seed: u64) -> LstmWeights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    LstmNetwork::init(25, &mut rng, &Device::Cpu)
        .and_then(|n| n.weights())
        .expect("weights")
}

fn trained_weights() -> LstmWeights {
    let series: Vec<f64> = (0..240)
        .map(|i| 700.0 + 150.0 * (i as f64 / 9.0).sin() + (i % 7) as f64)
        .collect();
    let recipe = Recipe {
        epochs: 5,
        ..Recipe::default()
    };
    train(&series, &recipe).expect("trains").weights
}

fn candle_forward(weights: &LstmWeights, sequence: &[f32]) -> f32 {
    let network = LstmNetwork::from_weights(weights, &Device::Cpu).expect("network");
    let input = Tensor::from_slice(sequence, (1, sequence.len(), 1), &Device::Cpu).expect("tensor");
    network
        .forward(&input, None)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .expect("forward")[0]
}

fn unit_scaler() -> MinMaxScaler {
    MinMaxScaler { min: 0.0, max: 1.0 }
}

#[test]
fn tract_runs_the_export_as_candle_computes_it() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for weights in [random_weights(1), random_weights(2), trained_weights()] {
        let forecaster =
            Forecaster::load(&onnx::export(&weights, LOOK_BACK), unit_scaler(), LOOK_BACK).expect("loads");
        assert_eq!(forecaster.engine(), ForecastEngine::Native);
        for _ in 0..20 {
            let sequence: Vec<f32> = (0..LOOK_BACK).map(|_| rng.random_range(-0.2..1.2)).collect();
            let tract = forecaster.predict_scaled_by_tract(&sequence).expect("runs");
            let candle = candle_forward(&weights, &sequence);
            assert!((tract - candle).abs() <= 1e-5, "tract {tract} vs candle {candle}");
            let native = forecaster.predict_scaled(&sequence).expect("runs");
            assert!((native - tract).abs() <= 1e-5, "native {native} vs tract {tract}");
        }
    }
}

#[test]
fn a_forecast_is_recursive_and_in_watts() {
    let weights = trained_weights();
    let scaler = MinMaxScaler {
        min: 500.0,
        max: 900.0,
    };
    let forecaster = Forecaster::load(&onnx::export(&weights, LOOK_BACK), scaler, LOOK_BACK).expect("loads");
    let history: Vec<f64> = (0..90).map(|i| 600.0 + 2.0 * i as f64).collect();
    let forecast = forecaster.forecast(&history, 5).expect("forecasts");
    // Step by step with the reference definition: each prediction joins the window.
    let mut window: Vec<f32> = history[30..].iter().map(|&v| scaler.scale(v) as f32).collect();
    for &value in &forecast {
        let next = weights.predict(&window);
        assert!(
            (scaler.unscale(f64::from(next)) - value).abs() < 1e-2,
            "{value} vs {next}"
        );
        window.remove(0);
        window.push(next);
    }
}

#[test]
fn refuses_too_little_history_or_nan() {
    let forecaster = Forecaster::load(
        &onnx::export(&random_weights(1), LOOK_BACK),
        unit_scaler(),
        LOOK_BACK,
    )
    .expect("loads");
    let error = forecaster.forecast(&[1.0; 59], 60).expect_err("too little");
    assert_eq!(
        error.to_string(),
        "59 readings are too few to forecast from: the model looks back over 60"
    );
    let mut history = vec![0.5; 70];
    history[65] = f64::NAN;
    let error = forecaster.forecast(&history, 60).expect_err("nan");
    assert_eq!(error.to_string(), "history value 65 is NaN: power must be finite");
}

#[test]
fn refuses_corrupt_bytes_and_wrong_shapes() {
    let error = Forecaster::load(b"not a model", unit_scaler(), LOOK_BACK).expect_err("corrupt");
    assert!(matches!(error, ForecastError::Load(_)), "{error}");
    let short = onnx::export(&random_weights(1), 30);
    let error = Forecaster::load(&short, unit_scaler(), LOOK_BACK).expect_err("wrong look-back");
    assert_eq!(
        error.to_string(),
        "model shape: input is [N, 30, 1], expected [N, 60, 1]"
    );
    let error = Forecaster::load(
        &onnx::export(&random_weights(1), LOOK_BACK),
        MinMaxScaler { min: 2.0, max: 1.0 },
        60,
    )
    .expect_err("bad scaler");
    assert!(matches!(error, ForecastError::Scaler { .. }), "{error}");
}

/// Rewrites the export with explicit zero initial states,
/// Squeeze (opset 13, axes as an input) instead of Reshape, and Gemm for the dense layer.
fn with_zero_states_and_a_transposed_gemm(weights: &LstmWeights) -> Vec<u8> {
    let mut model = pb::ModelProto::decode(onnx::export(weights, LOOK_BACK).as_slice()).expect("decodes");
    let graph = model.graph.as_mut().expect("graph");
    let h = weights.hidden as i64;
    let zeros = |name: &str| pb::TensorProto {
        name: name.to_owned(),
        dims: vec![1, 1, h],
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: vec![0.0; weights.hidden],
        ..Default::default()
    };
    graph.initializer.push(zeros("initial_h"));
    graph.initializer.push(zeros("initial_c"));
    graph.initializer.push(pb::TensorProto {
        name: "squeeze_axes".to_owned(),
        dims: vec![1],
        data_type: pb::tensor_proto::DataType::Int64 as i32,
        int64_data: vec![0],
        ..Default::default()
    });
    graph.initializer.push(pb::TensorProto {
        name: "dense_wt".to_owned(),
        dims: vec![1, h],
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: weights.dense.clone(),
        ..Default::default()
    });
    for node in &mut graph.node {
        match node.op_type.as_str() {
            "LSTM" => {
                node.input
                    .extend(["".to_owned(), "initial_h".to_owned(), "initial_c".to_owned()]);
            }
            "Reshape" => {
                node.op_type = "Squeeze".to_owned();
                node.input = vec!["lstm_h".to_owned(), "squeeze_axes".to_owned()];
            }
            _ => {}
        }
    }
    graph
        .node
        .retain(|node| node.op_type != "MatMul" && node.op_type != "Add");
    graph.node.push(pb::NodeProto {
        name: "dense".to_owned(),
        op_type: "Gemm".to_owned(),
        input: vec!["state".to_owned(), "dense_wt".to_owned(), "dense_b".to_owned()],
        output: vec![onnx::OUTPUT.to_owned()],
        attribute: vec![pb::AttributeProto {
            name: "transB".to_owned(),
            r#type: pb::attribute_proto::AttributeType::Int as i32,
            i: 1,
            ..Default::default()
        }],
        ..Default::default()
    });
    model.encode_to_vec()
}

#[test]
fn zero_states_squeeze_and_a_transposed_gemm_meet_the_contract() {
    let weights = random_weights(5);
    let forecaster = Forecaster::load(
        &with_zero_states_and_a_transposed_gemm(&weights),
        unit_scaler(),
        LOOK_BACK,
    )
    .expect("loads");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let sequence: Vec<f32> = (0..LOOK_BACK).map(|_| rng.random_range(0.0..1.0)).collect();
    assert_eq!(forecaster.engine(), ForecastEngine::Native);
    let tract = forecaster.predict_scaled_by_tract(&sequence).expect("runs");
    assert!((tract - weights.predict(&sequence)).abs() <= 1e-5);
    let native = forecaster.predict_scaled(&sequence).expect("runs");
    assert!((native - tract).abs() <= 1e-5, "native {native} vs tract {tract}");
}

/// A 60-step forecast from history in watts: the native evaluator's, and tract's step by step.
fn forecasts_by_both(forecaster: &Forecaster, scaler: MinMaxScaler, history: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let native = forecaster.forecast(history, 60).expect("forecasts");
    let mut window: Vec<f32> = history[history.len() - LOOK_BACK..]
        .iter()
        .map(|&v| scaler.scale(v) as f32)
        .collect();
    let mut tract = Vec::new();
    for _ in 0..60 {
        let next = forecaster.predict_scaled_by_tract(&window).expect("runs");
        tract.push(scaler.unscale(f64::from(next)));
        window.remove(0);
        window.push(next);
    }
    (native, tract)
}

#[test]
fn native_and_tract_forecasts_agree_over_the_whole_horizon() {
    let scaler = MinMaxScaler {
        min: 80.0,
        max: 2400.0,
    };
    let forecaster =
        Forecaster::load(&onnx::export(&trained_weights(), LOOK_BACK), scaler, LOOK_BACK).expect("loads");
    assert_eq!(forecaster.engine(), ForecastEngine::Native);
    let history: Vec<f64> = (0..LOOK_BACK)
        .map(|i| 900.0 + 700.0 * (i as f64 / 11.0).sin())
        .collect();
    let (native, tract) = forecasts_by_both(&forecaster, scaler, &history);
    for (step, (n, t)) in native.iter().zip(&tract).enumerate() {
        // 1e-5 of the scaled range, in watts.
        assert!(
            (n - t).abs() <= 1e-5 * (scaler.max - scaler.min),
            "step {step}: {n} vs {t}"
        );
    }
}

/// The export with one edit to its graph.
fn edited(weights: &LstmWeights, edit: impl FnOnce(&mut pb::GraphProto)) -> Vec<u8> {
    let mut model = pb::ModelProto::decode(onnx::export(weights, LOOK_BACK).as_slice()).expect("decodes");
    edit(model.graph.as_mut().expect("graph"));
    model.encode_to_vec()
}

#[test]
fn graphs_the_native_evaluator_does_not_know_run_on_tract() {
    let weights = random_weights(8);
    // A Relu on the output: a valid model with an operator the recogniser does not know.
    let with_relu = edited(&weights, |graph| {
        let add = graph.node.iter_mut().find(|n| n.op_type == "Add").expect("add");
        add.output = vec!["linear".to_owned()];
        graph.node.push(pb::NodeProto {
            op_type: "Relu".to_owned(),
            input: vec!["linear".to_owned()],
            output: vec![onnx::OUTPUT.to_owned()],
            ..Default::default()
        });
    });
    let forecaster = Forecaster::load(&with_relu, unit_scaler(), LOOK_BACK).expect("loads");
    assert_eq!(forecaster.engine(), ForecastEngine::Tract);
    let sequence: Vec<f32> = (0..LOOK_BACK).map(|i| i as f32 / 60.0).collect();
    let expected = weights.predict(&sequence).max(0.0);
    let got = forecaster.predict_scaled(&sequence).expect("runs");
    assert!((got - expected).abs() <= 1e-5, "{got} vs {expected}");
    // alpha = 2 on the Gemm doubles the dense layer: an attribute the recogniser refuses.
    let doubled = edited(&weights, |graph| {
        let matmul = graph
            .node
            .iter_mut()
            .find(|n| n.op_type == "MatMul")
            .expect("matmul");
        matmul.op_type = "Gemm".to_owned();
        matmul.attribute.push(pb::AttributeProto {
            name: "alpha".to_owned(),
            r#type: pb::attribute_proto::AttributeType::Float as i32,
            f: 2.0,
            ..Default::default()
        });
    });
    let forecaster = Forecaster::load(&doubled, unit_scaler(), LOOK_BACK).expect("loads");
    assert_eq!(forecaster.engine(), ForecastEngine::Tract);
    let expected = 2.0 * (weights.predict(&sequence) - weights.dense_bias) + weights.dense_bias;
    let got = forecaster.predict_scaled(&sequence).expect("runs");
    assert!((got - expected).abs() <= 1e-5, "{got} vs {expected}");
}
