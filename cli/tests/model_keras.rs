//! A real Keras model, exported by tf2onnx, forecasts through wattcast's forecaster as Keras
//! itself forecasts: on the native fast path and on tract, for a symbolic batch and a batch of 1.
//!
//! The fixture (`tests/fixtures/keras-lstm/`) was made by `make keras-model`
//! (`tools/keras/recipe.py export`, pinned tensorflow-cpu 2.15.1 and tf2onnx 1.17.0): the original
//! recipe trained in Keras on a reference device, exported, and Keras's own recursive 60-step
//! forecast recorded for a history from `data/samples`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

use std::path::{Path, PathBuf};
use wattcast_core::artifacts::ModelArtifacts;
use wattcast_model::{ForecastEngine, Forecaster};

const LOOK_BACK: usize = 60;
/// How far wattcast's forecast may be from Keras's, in watts (onnxruntime itself is within 5e-4).
const TOLERANCE_W: f64 = 5e-3;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras-lstm")
}

/// What `recipe.py export` recorded: where the history comes from and Keras's forecast.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recorded {
    history: HistorySource,
    keras_forecast: Vec<f64>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistorySource {
    csv: String,
    first_row: usize,
    readings: usize,
}

fn recorded() -> (Vec<f64>, Vec<f64>) {
    let path = fixture_dir().join("forecast.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let recorded: Recorded = serde_json::from_slice(&bytes).expect("forecast.json parses");
    let csv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(&recorded.history.csv);
    let mut reader = csv::Reader::from_path(&csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    let history: Vec<f64> = reader
        .records()
        .skip(recorded.history.first_row)
        .take(recorded.history.readings)
        .map(|row| {
            let row = row.expect("a CSV row");
            row[2].parse::<f64>().expect("sensor_energy_value is a number")
        })
        .collect();
    assert_eq!(history.len(), LOOK_BACK, "the history is one look-back long");
    (history, recorded.keras_forecast)
}

fn load(onnx_file: &str) -> Forecaster {
    let mut artifacts = ModelArtifacts::read_dir(&fixture_dir()).expect("the fixture's model files");
    artifacts.onnx = std::fs::read(fixture_dir().join(onnx_file)).expect("the ONNX file");
    Forecaster::load(&artifacts.onnx, artifacts.scaler, LOOK_BACK).expect("a Keras export loads")
}

/// The forecast computed by tract alone, one step at a time.
fn forecast_by_tract(forecaster: &Forecaster, history: &[f64]) -> Vec<f64> {
    let scaler = forecaster.scaler();
    let mut window: Vec<f32> = history.iter().map(|&v| scaler.scale(v) as f32).collect();
    (0..LOOK_BACK)
        .map(|_| {
            let next = forecaster
                .predict_scaled_by_tract(&window)
                .expect("tract runs it");
            window.remove(0);
            window.push(next);
            scaler.unscale(f64::from(next))
        })
        .collect()
}

fn largest_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn a_keras_export_forecasts_as_keras_does_on_the_fast_path() {
    let (history, keras) = recorded();
    assert_eq!(keras.len(), LOOK_BACK);
    for onnx_file in ["model.onnx", "model-batch-1.onnx"] {
        let forecaster = load(onnx_file);
        assert_eq!(
            forecaster.engine(),
            ForecastEngine::Native,
            "{onnx_file}: a tf2onnx export of a Keras LSTM → Dense runs natively"
        );
        let native = forecaster.forecast(&history, LOOK_BACK).expect("forecasts");
        let difference = largest_difference(&native, &keras);
        println!("{onnx_file}: native within {difference:.1e} W of Keras");
        assert!(
            difference <= TOLERANCE_W,
            "{onnx_file}: the native forecast is up to {difference} W from Keras's"
        );
        let tract = forecast_by_tract(&forecaster, &history);
        let difference = largest_difference(&tract, &keras);
        println!("{onnx_file}: tract within {difference:.1e} W of Keras");
        assert!(
            difference <= TOLERANCE_W,
            "{onnx_file}: tract's forecast is up to {difference} W from Keras's"
        );
    }
}

#[test]
fn the_forecast_moves_with_its_history() {
    // Guards the comparison above against a model that ignores its input: another history from
    // the same file gives another forecast.
    let (history, keras) = recorded();
    let forecaster = load("model.onnx");
    let shifted: Vec<f64> = history.iter().map(|v| v + 150.0).collect();
    let other = forecaster.forecast(&shifted, LOOK_BACK).expect("forecasts");
    assert!(largest_difference(&other, &keras) > 1.0);
}
