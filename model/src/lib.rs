//! wattcast-model: the LSTM forecasting model — training the original recipe with candle,
//! exporting ONNX, and forecasting with the native evaluator or tract. It reads and writes
//! model files through `wattcast-core`'s [`ModelArtifacts`]; it does no network I/O.
//!
//! # Layout
//!
//! - [`train`]: split, scale, fit and score a series ([`train()`], [`TrainedModel`]).
//! - [`lstm`], [`weights`]: the network in candle and its weights in ONNX's layout.
//! - [`onnx`]: the ONNX export of trained weights.
//! - [`recognise`], [`native`]: recognising an LSTM graph (ours or tf2onnx's) and running it
//!   natively; anything else runs on tract.
//! - [`forecaster`]: a loaded model that forecasts the next horizon recursively.
//! - [`threads`]: pinning the numeric libraries' thread pools.

pub mod forecaster;
pub mod lstm;
pub mod native;
pub mod onnx;
pub mod recognise;
pub mod threads;
pub mod train;
pub mod weights;

pub use forecaster::{ForecastEngine, ForecastError, Forecaster};
pub use train::{TrainError, TrainedModel, train};
pub use wattcast_core::artifacts::{ModelArtifacts, ModelVersion, TrainMetrics};
pub use wattcast_core::recipe::Recipe;
pub use wattcast_core::scaler::MinMaxScaler;
pub use weights::LstmWeights;

/// A value at the network's precision: the LSTM computes in `f32`, its inputs are scaled to
/// [0, 1] and its weights are small, so narrowing loses only digits beyond `f32`'s.
#[allow(clippy::cast_possible_truncation, reason = "narrowing to f32 is the point")]
pub(crate) fn to_model_precision(value: f64) -> f32 {
    value as f32
}
