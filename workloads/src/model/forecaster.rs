//! Forecasting with an ONNX model run by tract: loaded once, then recursive multi-step forecasts.

use super::scaler::MinMaxScaler;
use tract_onnx::prelude::*;

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
fn check_declared_input(onnx: &[u8], look_back: usize) -> Result<(), ForecastError> {
    use prost::Message;
    use tract_onnx::pb::{tensor_shape_proto::dimension::Value, type_proto};
    let model = tract_onnx::pb::ModelProto::decode(onnx).map_err(|e| ForecastError::Load(e.to_string()))?;
    let graph = model
        .graph
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
    scaler: MinMaxScaler,
    look_back: usize,
}

impl std::fmt::Debug for Forecaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forecaster")
            .field("scaler", &self.scaler)
            .field("look_back", &self.look_back)
            .finish()
    }
}

impl Forecaster {
    /// Loads an ONNX model whose single input is `[N, look_back, 1]` (N may be symbolic) and
    /// whose output is `[N, 1]`, fixing N to 1 and optimising it for repeated runs.
    pub fn load(onnx: &[u8], scaler: MinMaxScaler, look_back: usize) -> Result<Self, ForecastError> {
        if !scaler.is_valid() {
            return Err(ForecastError::Scaler {
                min: scaler.min,
                max: scaler.max,
            });
        }
        check_declared_input(onnx, look_back)?;
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
        Ok(Self {
            plan,
            scaler,
            look_back,
        })
    }

    /// Readings the model looks back over.
    pub fn look_back(&self) -> usize {
        self.look_back
    }

    /// The scaler the model's inputs are scaled with.
    pub fn scaler(&self) -> MinMaxScaler {
        self.scaler
    }

    /// The model's scaled output for one scaled input sequence.
    pub fn predict_scaled(&self, sequence: &[f32]) -> Result<f32, ForecastError> {
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
        let mut window: Vec<f32> = recent.iter().map(|&v| self.scaler.scale(v) as f32).collect();
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
