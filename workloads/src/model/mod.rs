//! The LSTM forecasting model: training with candle, ONNX export, forecasting with tract, and
//! the artefacts (model, scaler, metrics) stored in the object store.

pub mod artifacts;
pub mod forecaster;
pub mod lstm;
pub mod native;
pub mod onnx;
pub mod recipe;
pub mod recognise;
pub mod scaler;
pub mod threads;
pub mod train;
pub mod weights;

pub use artifacts::{ModelArtifacts, ModelVersion};
pub use forecaster::{ForecastEngine, ForecastError, Forecaster};
pub use recipe::Recipe;
pub use scaler::MinMaxScaler;
pub use train::{TrainError, TrainMetrics, TrainedModel, train};
pub use weights::LstmWeights;
