//! A model's files — `model.onnx`, `scaler.json`, `metrics.json` — and where they live: a
//! directory, or the object store under `{experiment}/{device}/initial/` or
//! `{experiment}/{device}/{from}-{to}/` (DESIGN.md §2).

use crate::DeviceId;
use crate::scaler::MinMaxScaler;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The ONNX model's file name.
pub const MODEL_FILE: &str = "model.onnx";
/// The scaler's file name.
pub const SCALER_FILE: &str = "scaler.json";
/// The training metrics' file name.
pub const METRICS_FILE: &str = "metrics.json";

/// Why a model's files cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A file is missing or unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
    /// A JSON file is malformed.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: String,
        /// What is wrong.
        source: serde_json::Error,
    },
}

/// How well a trained model does, in watts; written as `metrics.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainMetrics {
    /// Readings trained on (both halves).
    pub readings: usize,
    /// One-step RMSE on the training half.
    pub train_rmse: f64,
    /// One-step MAE on the training half.
    pub train_mae: f64,
    /// One-step RMSE on the test half.
    pub test_rmse: f64,
    /// One-step MAE on the test half.
    pub test_mae: f64,
    /// RMSE of the persistence baseline (next = last) on the same test targets.
    pub baseline_rmse: f64,
    /// MAE of the persistence baseline on the test half.
    pub baseline_mae: f64,
    /// Epochs run.
    pub epochs: usize,
    /// Mean squared error (scaled) of the last epoch.
    pub final_loss: f64,
    /// Wall-clock seconds spent training.
    pub train_seconds: f64,
}

/// The files that make a deployable model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelArtifacts {
    /// The ONNX graph.
    pub onnx: Vec<u8>,
    /// The input scaler.
    pub scaler: MinMaxScaler,
    /// How it scored when trained (absent for models made elsewhere, e.g. Keras via tf2onnx).
    pub metrics: Option<TrainMetrics>,
}

impl ModelArtifacts {
    /// Writes the files into `dir` (created if needed).
    pub fn write_dir(&self, dir: &Path) -> Result<(), ArtifactError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| ArtifactError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(io(&path))
        };
        write(MODEL_FILE, &self.onnx)?;
        write(SCALER_FILE, &self.scaler_json())?;
        if let Some(metrics) = &self.metrics {
            write(METRICS_FILE, &json(metrics))?;
        }
        Ok(())
    }

    /// Reads the files from `dir`; `metrics.json` is optional.
    pub fn read_dir(dir: &Path) -> Result<Self, ArtifactError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| ArtifactError::Io {
                path: path.display().to_string(),
                source,
            })
        };
        let metrics = match read(METRICS_FILE) {
            Ok(bytes) => Some(parse(&dir.join(METRICS_FILE).display().to_string(), &bytes)?),
            Err(ArtifactError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(error),
        };
        Ok(Self {
            onnx: read(MODEL_FILE)?,
            scaler: parse(&dir.join(SCALER_FILE).display().to_string(), &read(SCALER_FILE)?)?,
            metrics,
        })
    }

    /// `scaler.json`'s bytes.
    pub fn scaler_json(&self) -> Vec<u8> {
        json(&self.scaler)
    }
}

fn json(value: &impl serde::Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Parses a JSON file's bytes, naming the file in errors.
pub fn parse<T: serde::de::DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, ArtifactError> {
    serde_json::from_slice(bytes).map_err(|source| ArtifactError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Which of a device's models: the initial one or one retrained on a range of event time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelVersion {
    /// Trained before the run (by the setup job or `wattcast model train --upload`).
    Initial,
    /// Retrained on readings with event times `from..=to` (epoch seconds).
    Retrained {
        /// First reading's event time.
        from: i64,
        /// Last reading's event time.
        to: i64,
    },
}

impl std::fmt::Display for ModelVersion {
    /// `initial` or `{from}-{to}`: the version recorded with forecasts and in object keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Initial => f.write_str("initial"),
            Self::Retrained { from, to } => write!(f, "{from}-{to}"),
        }
    }
}

impl std::str::FromStr for ModelVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "initial" {
            return Ok(Self::Initial);
        }
        let bad = || format!("model version `{text}` is neither `initial` nor `FROM-TO` epoch seconds");
        let (from, to) = text.split_once('-').ok_or_else(bad)?;
        let (from, to) = (from.parse().map_err(|_| bad())?, to.parse().map_err(|_| bad())?);
        if from > to {
            return Err(bad());
        }
        Ok(Self::Retrained { from, to })
    }
}

/// The object-store prefix (ending in `/`) of a device's model version.
pub fn object_prefix(experiment: &str, device: DeviceId, version: ModelVersion) -> String {
    format!("{experiment}/{device}/{version}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_through_their_names() {
        for version in [
            ModelVersion::Initial,
            ModelVersion::Retrained {
                from: 1765152000,
                to: 1765152599,
            },
        ] {
            assert_eq!(version.to_string().parse::<ModelVersion>(), Ok(version));
        }
        assert!("12-3".parse::<ModelVersion>().is_err());
        assert!("latest".parse::<ModelVersion>().is_err());
    }

    #[test]
    fn object_prefixes_follow_the_design_layout() {
        let device = DeviceId(3);
        assert_eq!(
            object_prefix("exp1", device, ModelVersion::Initial),
            "exp1/3/initial/"
        );
        assert_eq!(
            object_prefix("exp1", device, ModelVersion::Retrained { from: 10, to: 609 }),
            "exp1/3/10-609/"
        );
    }

    #[test]
    fn files_round_trip_through_a_directory_and_name_the_bad_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let artifacts = ModelArtifacts {
            onnx: vec![1, 2, 3],
            scaler: MinMaxScaler { min: 1.0, max: 2.0 },
            metrics: None,
        };
        artifacts.write_dir(dir.path()).expect("write");
        assert_eq!(ModelArtifacts::read_dir(dir.path()).expect("read"), artifacts);
        std::fs::write(dir.path().join(SCALER_FILE), "{\"min\": 1}").expect("write");
        let error = ModelArtifacts::read_dir(dir.path())
            .expect_err("bad scaler")
            .to_string();
        assert!(error.contains("scaler.json") && error.contains("max"), "{error}");
    }
}
