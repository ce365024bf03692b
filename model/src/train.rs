//! Training the original recipe on a series of readings: split, scale, fit, score.

use super::lstm::LstmNetwork;
use super::weights::LstmWeights;
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use wattcast_core::artifacts::{ModelArtifacts, TrainMetrics};
use wattcast_core::recipe::Recipe;
use wattcast_core::scaler::MinMaxScaler;

/// Why a series cannot be trained on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Not enough readings for a look-back and a target in each half.
    #[error(
        "{got} readings are too few to train on: need at least {need} (look-back {look_back} + 1 in each half)"
    )]
    TooFewReadings {
        /// Readings given.
        got: usize,
        /// Readings needed.
        need: usize,
        /// The recipe's look-back.
        look_back: usize,
    },
    /// A reading is NaN or infinite.
    #[error("reading {index} is {value}: power must be a finite number of watts")]
    NotFinite {
        /// Its position in the series (0-based).
        index: usize,
        /// The value.
        value: f64,
    },
    /// The recipe itself is unusable.
    #[error("recipe: {0}")]
    Recipe(&'static str),
    /// The training library failed.
    #[error("training failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// A trained model: its weights, the scaler of its inputs and how well it did.
#[derive(Clone, Debug)]
pub struct TrainedModel {
    /// The weights, in ONNX's LSTM layout.
    pub weights: LstmWeights,
    /// The scaler fitted on the training half.
    pub scaler: MinMaxScaler,
    /// Scores in watts.
    pub metrics: TrainMetrics,
    /// The recipe it was trained with.
    pub recipe: Recipe,
}

impl TrainedModel {
    /// The files that deploy this model: its ONNX export, its scaler and its scores.
    pub fn artifacts(&self) -> ModelArtifacts {
        ModelArtifacts {
            onnx: crate::onnx::export(&self.weights, self.recipe.look_back),
            scaler: self.scaler,
            metrics: Some(self.metrics.clone()),
        }
    }
}

/// Supervised samples: each input is `look_back` consecutive scaled readings, its target the next.
struct Samples {
    inputs: Vec<f32>,
    targets: Vec<f32>,
    look_back: usize,
}

impl Samples {
    /// Samples whose targets are `scaled[targets]`, each with the `look_back` readings before it.
    fn new(scaled: &[f32], targets: std::ops::Range<usize>, look_back: usize) -> Self {
        let mut inputs = Vec::with_capacity(targets.len() * look_back);
        let mut values = Vec::with_capacity(targets.len());
        for target in targets {
            inputs.extend_from_slice(&scaled[target - look_back..target]);
            values.push(scaled[target]);
        }
        Self {
            inputs,
            targets: values,
            look_back,
        }
    }

    fn len(&self) -> usize {
        self.targets.len()
    }

    fn inputs_tensor(&self, device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_slice(&self.inputs, (self.len(), self.look_back, 1), device)
    }

    fn targets_tensor(&self, device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_slice(&self.targets, (self.len(), 1), device)
    }
}

/// Trains the recipe on `series` (watts, time order): the first half trains (its scaler, its
/// samples), the second half tests. Samples are formed within each half, so no test input holds
/// a training reading: the first test target is `look_back` readings into the second half.
pub fn train(series: &[f64], recipe: &Recipe) -> Result<TrainedModel, TrainError> {
    check_recipe(recipe)?;
    if series.len() < recipe.min_readings() {
        return Err(TrainError::TooFewReadings {
            got: series.len(),
            need: recipe.min_readings(),
            look_back: recipe.look_back,
        });
    }
    if let Some((index, &value)) = series.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(TrainError::NotFinite { index, value });
    }
    let started = Instant::now();
    let split = series.len() / 2;
    let scaler = MinMaxScaler::fit(&series[..split]).ok_or(TrainError::Recipe("empty training half"))?;
    let scaled: Vec<f32> = series
        .iter()
        .map(|&v| crate::to_model_precision(scaler.scale(v)))
        .collect();
    let training = Samples::new(&scaled, recipe.look_back..split, recipe.look_back);
    let testing = Samples::new(&scaled, split + recipe.look_back..series.len(), recipe.look_back);

    let device = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(recipe.seed);
    let network = LstmNetwork::init(recipe.hidden, &mut rng, &device)?;
    let params = ParamsAdamW {
        lr: recipe.learning_rate,
        weight_decay: 0.0,
        eps: 1e-7,
        ..Default::default()
    };
    let mut optimiser = AdamW::new(network.variables(), params)?;
    let inputs = training.inputs_tensor(&device)?;
    let targets = training.targets_tensor(&device)?;
    let mut order: Vec<u32> = (0..u32::try_from(training.len()).unwrap_or(u32::MAX)).collect();
    let keep = 1.0 - recipe.dropout;
    let mut final_loss = f64::NAN;
    for _ in 0..recipe.epochs {
        order.shuffle(&mut rng);
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        for batch in order.chunks(recipe.batch_size) {
            let mask = if recipe.dropout > 0.0 {
                let mask: Vec<f32> = (0..batch.len() * recipe.hidden)
                    .map(|_| {
                        if rng.random::<f32>() < keep {
                            1.0 / keep
                        } else {
                            0.0
                        }
                    })
                    .collect();
                Some(Tensor::from_vec(mask, (batch.len(), recipe.hidden), &device)?)
            } else {
                None
            };
            let (loss, gradients) = batch_gradients(&network, &inputs, &targets, batch, mask.as_ref())?;
            optimiser.step(&gradients)?;
            loss_sum += f64::from(loss) * batch.len() as f64;
            seen += batch.len();
        }
        final_loss = loss_sum / seen as f64;
    }
    let train_seconds = started.elapsed().as_secs_f64();

    let score = |samples: &Samples| -> Result<(f64, f64), TrainError> {
        let predicted = network
            .forward(&samples.inputs_tensor(&device)?, None)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let errors = predicted
            .iter()
            .zip(&samples.targets)
            .map(|(&p, &t)| scaler.unscale(f64::from(p)) - scaler.unscale(f64::from(t)));
        Ok(rmse_mae(errors))
    };
    let (train_rmse, train_mae) = score(&training)?;
    let (test_rmse, test_mae) = score(&testing)?;
    let test_targets = split + recipe.look_back..series.len();
    let (baseline_rmse, baseline_mae) = rmse_mae(test_targets.map(|i| series[i - 1] - series[i]));
    Ok(TrainedModel {
        weights: network.weights()?,
        scaler,
        metrics: TrainMetrics {
            readings: series.len(),
            train_rmse,
            train_mae,
            test_rmse,
            test_mae,
            baseline_rmse,
            baseline_mae,
            epochs: recipe.epochs,
            final_loss,
            train_seconds,
        },
        recipe: recipe.clone(),
    })
}

/// The mean squared error of one batch and its gradients. The batch's two halves go forwards
/// and backwards on two threads (the LSTM's sequence operation runs on one). The batch's
/// gradient is the halves' gradients weighted by their sizes, as one pass over the whole batch
/// would give (up to rounding), and the split is the same on any machine.
fn batch_gradients(
    network: &LstmNetwork,
    inputs: &Tensor,
    targets: &Tensor,
    batch: &[u32],
    mask: Option<&Tensor>,
) -> candle_core::Result<(f32, GradStore)> {
    let device = inputs.device();
    let half = |start: usize, len: usize| -> candle_core::Result<(f32, GradStore)> {
        let index = Tensor::from_slice(&batch[start..start + len], len, device)?;
        let mask = mask.map(|m| m.narrow(0, start, len)).transpose()?;
        let predictions = network.forward(&inputs.index_select(&index, 0)?, mask.as_ref())?;
        let loss = (predictions - targets.index_select(&index, 0)?)?
            .sqr()?
            .mean_all()?;
        Ok((loss.to_scalar::<f32>()?, loss.backward()?))
    };
    if batch.len() < 2 {
        return half(0, batch.len());
    }
    let first_len = batch.len().div_ceil(2);
    let second_len = batch.len() - first_len;
    let (first, second) = rayon::join(|| half(0, first_len), || half(first_len, second_len));
    let ((first_loss, mut gradients), (second_loss, second_gradients)) = (first?, second?);
    let total = batch.len() as f64;
    let (first_weight, second_weight) = (first_len as f64 / total, second_len as f64 / total);
    for variable in network.variables() {
        let combined = match (gradients.get(&variable), second_gradients.get(&variable)) {
            (Some(a), Some(b)) => ((a * first_weight)? + (b * second_weight)?)?,
            (Some(a), None) => (a * first_weight)?,
            (None, Some(b)) => (b * second_weight)?,
            (None, None) => continue,
        };
        gradients.insert(&variable, combined);
    }
    let loss = f64::from(first_loss) * first_weight + f64::from(second_loss) * second_weight;
    Ok((crate::to_model_precision(loss), gradients))
}

fn check_recipe(recipe: &Recipe) -> Result<(), TrainError> {
    if recipe.look_back == 0 {
        return Err(TrainError::Recipe("lookBack must be at least 1"));
    }
    if recipe.hidden == 0 {
        return Err(TrainError::Recipe("hidden must be at least 1"));
    }
    if recipe.batch_size == 0 {
        return Err(TrainError::Recipe("batchSize must be at least 1"));
    }
    if !(0.0..1.0).contains(&recipe.dropout) {
        return Err(TrainError::Recipe("dropout must be in [0, 1)"));
    }
    Ok(())
}

/// Root mean squared and mean absolute value of `errors`.
pub fn rmse_mae(errors: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut squares, mut absolutes, mut n) = (0.0, 0.0, 0usize);
    for error in errors {
        squares += error * error;
        absolutes += error.abs();
        n += 1;
    }
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    ((squares / n as f64).sqrt(), absolutes / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Recipe {
        Recipe {
            look_back: 8,
            hidden: 4,
            epochs: 3,
            batch_size: 8,
            ..Recipe::default()
        }
    }

    fn series(n: usize) -> Vec<f64> {
        (0..n).map(|i| 500.0 + 100.0 * (i as f64 / 5.0).sin()).collect()
    }

    #[test]
    fn refuses_too_few_readings_naming_the_need() {
        let error = train(&series(17), &quick()).expect_err("too few");
        assert_eq!(
            error.to_string(),
            "17 readings are too few to train on: need at least 18 (look-back 8 + 1 in each half)"
        );
    }

    #[test]
    fn refuses_nan_naming_the_reading() {
        let mut data = series(40);
        data[13] = f64::NAN;
        let error = train(&data, &quick()).expect_err("nan");
        assert_eq!(
            error.to_string(),
            "reading 13 is NaN: power must be a finite number of watts"
        );
    }

    #[test]
    fn the_same_seed_and_data_give_the_same_model() {
        let first = train(&series(60), &quick()).expect("trains");
        let second = train(&series(60), &quick()).expect("trains");
        assert_eq!(first.weights, second.weights);
        let other = train(&series(60), &Recipe { seed: 9, ..quick() }).expect("trains");
        assert_ne!(first.weights, other.weights);
    }

    #[test]
    fn scores_are_in_watts_and_the_baseline_is_persistence() {
        let data = series(60);
        let model = train(&data, &quick()).expect("trains");
        let (rmse, _) = rmse_mae((38..60).map(|i| data[i - 1] - data[i]));
        assert_eq!(model.metrics.baseline_rmse, rmse);
        assert!(model.metrics.test_rmse.is_finite() && model.metrics.test_rmse > 0.0);
        assert_eq!(model.scaler, MinMaxScaler::fit(&data[..30]).expect("fits"));
    }

    #[test]
    fn rmse_and_mae_of_known_errors() {
        let (rmse, mae) = rmse_mae([3.0, -4.0].into_iter());
        assert!((rmse - (12.5f64).sqrt()).abs() < 1e-12);
        assert_eq!(mae, 3.5);
    }
}
