//! Forecasting with an ONNX model run by tract: loaded once, then recursive multi-step forecasts.
//!
//! tract loads, types and checks every model, and runs any model meeting the contract. A model
//! recognised as a plain LSTM → Dense graph is then also compiled into [`NativeLstm`], which is
//! used instead only if it gives tract's outputs on a set of probe sequences.

use super::native::NativeLstm;
use rand::{Rng, SeedableRng};
use tract_onnx::prelude::*;
use wattcast_core::scaler::MinMaxScaler;

/// Probe sequences a native evaluator must agree with tract on before it replaces it.
const PROBES: usize = 16;
/// How far a native output may be from tract's, relative to the output's size (at least 1).
const PROBE_TOLERANCE: f32 = 1e-5;

/// What runs a loaded model's forecasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForecastEngine {
    /// The compiled LSTM → Dense evaluator, checked against tract at load.
    Native,
    /// tract's interpreter (any model meeting the contract).
    Tract,
}

impl ForecastEngine {
    /// A label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Tract => "tract",
        }
    }
}

/// Why a model cannot be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// The bytes are not an ONNX model tract can run.
    #[error("not a usable ONNX model: {0}")]
    Load(String),
    /// The model's inputs or outputs break the contract (`[N, look_back, 1]` f32 → `[N, 1]`).
    #[error("model shape: {0}")]
    Shape(String),
    /// The scaler is not usable.
    #[error("scaler: min {min} and max {max} are not finite bounds in order")]
    Scaler {
        /// Its minimum.
        min: f64,
        /// Its maximum.
        max: f64,
    },
    /// Not enough history to look back over.
    #[error("{got} readings are too few to forecast from: the model looks back over {need}")]
    TooLittleHistory {
        /// Readings given.
        got: usize,
        /// The model's look-back.
        need: usize,
    },
    /// A history value is NaN or infinite.
    #[error("history value {index} is {value}: power must be finite")]
    NotFinite {
        /// Its position in the history given.
        index: usize,
        /// The value.
        value: f64,
    },
    /// tract failed while running the model.
    #[error("running the model: {0}")]
    Run(String),
}

/// Checks the graph's one input against `[N, look_back, 1]` where its dimensions are declared
/// (an LSTM runs on any sequence length, so a wrong look-back would otherwise go unnoticed).
fn check_declared_input(model: &tract_onnx::pb::ModelProto, look_back: usize) -> Result<(), ForecastError> {
    use tract_onnx::pb::{tensor_shape_proto::dimension::Value, type_proto};
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| ForecastError::Load("the model has no graph".to_owned()))?;
    let constants: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !constants.contains(i.name.as_str()))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(ForecastError::Shape(format!(
            "{} inputs, expected one",
            inputs.len()
        )));
    };
    let Some(type_proto::Value::TensorType(tensor)) = input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Ok(()); // undeclared: tract checks what it can when typing the graph
    };
    let Some(shape) = &tensor.shape else { return Ok(()) };
    let dims: Vec<String> = shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(Value::DimValue(v)) => v.to_string(),
            _ => "N".to_owned(),
        })
        .collect();
    let fits = dims.len() == 3
        && (dims[1] == "N" || dims[1] == look_back.to_string())
        && (dims[2] == "N" || dims[2] == "1");
    if !fits {
        return Err(ForecastError::Shape(format!(
            "input is [{}], expected [N, {look_back}, 1]",
            dims.join(", ")
        )));
    }
    Ok(())
}

/// A loaded model and its scaler, ready to forecast; cheap to share between tasks.
pub struct Forecaster {
    plan: TypedSimplePlan<TypedModel>,
    native: Option<NativeLstm>,
    scaler: MinMaxScaler,
    look_back: usize,
}

impl std::fmt::Debug for Forecaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forecaster")
            .field("scaler", &self.scaler)
            .field("look_back", &self.look_back)
            .field("engine", &self.engine())
            .finish()
    }
}

impl Forecaster {
    /// Loads an ONNX model whose single input is `[N, look_back, 1]` (N may be symbolic) and
    /// whose output is `[N, 1]`, fixing N to 1 and optimising it for repeated runs; a plain
    /// LSTM → Dense model that the native evaluator computes as tract does runs natively.
    pub fn load(onnx: &[u8], scaler: MinMaxScaler, look_back: usize) -> Result<Self, ForecastError> {
        if !scaler.is_valid() {
            return Err(ForecastError::Scaler {
                min: scaler.min,
                max: scaler.max,
            });
        }
        let proto = {
            use prost::Message;
            tract_onnx::pb::ModelProto::decode(onnx).map_err(|e| ForecastError::Load(e.to_string()))?
        };
        check_declared_input(&proto, look_back)?;
        let model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(onnx))
            .map_err(|e| ForecastError::Load(format!("{e:#}")))?;
        let typed = model
            .with_input_fact(0, f32::fact([1, look_back, 1]).into())
            .and_then(|m| m.into_optimized())
            .map_err(|e| {
                ForecastError::Shape(format!("input [1, {look_back}, 1] f32 does not fit: {e:#}"))
            })?;
        let output = typed
            .output_fact(0)
            .map_err(|e| ForecastError::Shape(format!("{e:#}")))?;
        let volume = output.shape.as_concrete().map(|s| s.iter().product::<usize>());
        if output.datum_type != f32::datum_type() || volume != Some(1) {
            return Err(ForecastError::Shape(format!(
                "output is {:?} {:?}, expected [1, 1] f32",
                output.datum_type, output.shape
            )));
        }
        let plan = typed
            .into_runnable()
            .map_err(|e| ForecastError::Load(format!("{e:#}")))?;
        let mut forecaster = Self {
            plan,
            native: None,
            scaler,
            look_back,
        };
        forecaster.native = match NativeLstm::recognise(&proto) {
            Ok(native) => forecaster.agrees_with_tract(native)?,
            Err(why) => {
                // Info, not debug: tract is tens of times slower per forecast, which a user
                // bringing their own model needs to know.
                tracing::info!(%why, "the model is not a plain LSTM → Dense the native evaluator recognises; tract runs it");
                None
            }
        };
        Ok(forecaster)
    }

    /// `native` if it gives tract's outputs on [`PROBES`] seeded random sequences spanning the
    /// scaled range and beyond; otherwise `None`, with a warning (tract then runs the model).
    fn agrees_with_tract(&self, native: NativeLstm) -> Result<Option<NativeLstm>, ForecastError> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5EED);
        for _ in 0..PROBES {
            let sequence: Vec<f32> = (0..self.look_back)
                .map(|_| rng.random_range(-0.25..1.25))
                .collect();
            let by_tract = self.predict_scaled_by_tract(&sequence)?;
            let by_native = native.predict(&sequence);
            if (by_native - by_tract).abs() > PROBE_TOLERANCE * by_tract.abs().max(1.0) {
                tracing::warn!(
                    by_tract,
                    by_native,
                    "the native evaluator disagrees with tract on this model; tract runs it"
                );
                return Ok(None);
            }
        }
        Ok(Some(native))
    }

    /// What runs this model's forecasts.
    pub fn engine(&self) -> ForecastEngine {
        if self.native.is_some() {
            ForecastEngine::Native
        } else {
            ForecastEngine::Tract
        }
    }

    /// Readings the model looks back over.
    pub fn look_back(&self) -> usize {
        self.look_back
    }

    /// The scaler the model's inputs are scaled with.
    pub fn scaler(&self) -> MinMaxScaler {
        self.scaler
    }

    /// The model's scaled output for one scaled input sequence (`look_back` long).
    pub fn predict_scaled(&self, sequence: &[f32]) -> Result<f32, ForecastError> {
        match &self.native {
            Some(native) if sequence.len() == self.look_back => Ok(native.predict(sequence)),
            _ => self.predict_scaled_by_tract(sequence),
        }
    }

    /// The model's scaled output for one scaled input sequence, always computed by tract (the
    /// reference the native evaluator is held to).
    pub fn predict_scaled_by_tract(&self, sequence: &[f32]) -> Result<f32, ForecastError> {
        let input = Tensor::from_shape(&[1, self.look_back, 1], sequence)
            .map_err(|e| ForecastError::Run(format!("{e:#}")))?;
        let outputs = self
            .plan
            .run(tvec!(input.into()))
            .map_err(|e| ForecastError::Run(format!("{e:#}")))?;
        let values = outputs[0]
            .as_slice::<f32>()
            .map_err(|e| ForecastError::Run(format!("{e:#}")))?;
        values
            .first()
            .copied()
            .ok_or_else(|| ForecastError::Run("empty output".to_owned()))
    }

    /// Forecasts `horizon` readings (watts) after `history` (watts, time order), one step at a
    /// time: each prediction joins the look-back window for the next, as the original did.
    pub fn forecast(&self, history: &[f64], horizon: usize) -> Result<Vec<f64>, ForecastError> {
        if history.len() < self.look_back {
            return Err(ForecastError::TooLittleHistory {
                got: history.len(),
                need: self.look_back,
            });
        }
        let recent = &history[history.len() - self.look_back..];
        if let Some((index, &value)) = recent.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ForecastError::NotFinite {
                index: history.len() - self.look_back + index,
                value,
            });
        }
        let mut window: Vec<f32> = recent
            .iter()
            .map(|&v| crate::to_model_precision(self.scaler.scale(v)))
            .collect();
        if let Some(native) = &self.native {
            let scaled = native.forecast_scaled(&window, horizon);
            return Ok(scaled
                .into_iter()
                .map(|v| self.scaler.unscale(f64::from(v)))
                .collect());
        }
        let mut forecasts = Vec::with_capacity(horizon);
        for _ in 0..horizon {
            let next = self.predict_scaled(&window)?;
            forecasts.push(self.scaler.unscale(f64::from(next)));
            window.remove(0);
            window.push(next);
        }
        Ok(forecasts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LstmWeights, onnx};
    use rand_chacha::ChaCha8Rng;

    fn weights(seed: u64) -> LstmWeights {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut values = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-0.5..0.5)).collect() };
        LstmWeights {
            hidden: 6,
            input: values(24),
            recurrent: values(144),
            bias: values(24),
            dense: values(6),
            dense_bias: 0.1,
        }
    }

    #[test]
    fn the_native_evaluator_is_used_only_when_it_agrees_with_tract() {
        let scaler = MinMaxScaler { min: 0.0, max: 1.0 };
        let forecaster = Forecaster::load(&onnx::export(&weights(1), 60), scaler, 60).expect("loads");
        assert_eq!(forecaster.engine(), ForecastEngine::Native);
        let same = NativeLstm::from_weights(&weights(1)).expect("consistent");
        assert!(forecaster.agrees_with_tract(same).expect("runs").is_some());
        let other = NativeLstm::from_weights(&weights(2)).expect("consistent");
        assert!(forecaster.agrees_with_tract(other).expect("runs").is_none());
    }
}
