//! The training recipe: the original Keras model and its hyper-parameters, overridable by the spec.

use serde::{Deserialize, Serialize};

/// How a model is built and trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipe {
    /// Readings per input sequence.
    pub look_back: usize,
    /// LSTM units.
    pub hidden: usize,
    /// Dropout rate between the LSTM and the dense layer (training only).
    pub dropout: f32,
    /// Passes over the training samples.
    pub epochs: usize,
    /// Samples per gradient step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// How many readings a model is trained on (the first of a CSV, the latest stored).
    pub training_readings: usize,
    /// Seed for weight initialisation, shuffling and dropout: the same seed and data give the
    /// same model.
    pub seed: u64,
}

impl Default for Recipe {
    /// The original: LSTM(25) → Dropout(0.1) → Dense(1), look-back 60, Adam 1e-3, 200 epochs,
    /// batch 32, on 600 readings.
    fn default() -> Self {
        Self {
            look_back: 60,
            hidden: 25,
            dropout: 0.1,
            epochs: 200,
            batch_size: 32,
            learning_rate: 1e-3,
            training_readings: 600,
            seed: 42,
        }
    }
}

impl Recipe {
    /// The recipe an experiment's `spec.forecasting` asks for.
    pub fn from_spec(forecasting: &wattcast_crds::ForecastingSpec) -> Self {
        Self {
            look_back: forecasting.look_back as usize,
            hidden: forecasting.model.hidden as usize,
            epochs: forecasting.model.epochs as usize,
            batch_size: forecasting.model.batch_size as usize,
            ..Self::default()
        }
    }

    /// The fewest readings training accepts: a look-back and a target in each half.
    pub fn min_readings(&self) -> usize {
        2 * (self.look_back + 1)
    }
}
