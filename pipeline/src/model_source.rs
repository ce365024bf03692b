//! A user's own model (`spec.forecasting.model.source`): read from a directory (the pod's mount of
//! a ConfigMap, or `--model-dir`) or the object store, and checked against the model contract
//! before it becomes every device's initial model.

use std::path::{Path, PathBuf};
use wattcast_core::artifacts::{ArtifactError, ModelArtifacts};
use wattcast_crds::PipelineExperimentSpec;
use wattcast_io::object_store::{ObjectStore, ObjectStoreError};
use wattcast_io::services::S3Endpoint;
use wattcast_model::{ForecastEngine, ForecastError, Forecaster};

/// Why the user's model cannot be used (each names the spec field and where the files are; the
/// cause is the error's source).
#[derive(Debug, thiserror::Error)]
pub enum ModelSourceError {
    /// A ConfigMap source where no mount of it exists.
    #[error(
        "spec.forecasting.model.source.configMap {name} is mounted into the setup pod in the cluster; here, save its model.onnx and scaler.json in a directory and pass --model-dir DIR"
    )]
    ConfigMapNotMounted {
        /// The ConfigMap.
        name: String,
    },
    /// An S3 source without an object store to read it from.
    #[error(
        "spec.forecasting.model.source.s3 needs the experiment's object store (WATTCAST_S3_* is not set)"
    )]
    NoObjectStore,
    /// Neither or both of the source's fields are set.
    #[error("spec.forecasting.model.source: set exactly one of configMap and s3")]
    Ambiguous,
    /// The files could not be read from the directory.
    #[error("spec.forecasting.model.source ({origin})")]
    Files {
        /// Where the model was read from.
        origin: String,
        /// What is wrong.
        #[source]
        source: ArtifactError,
    },
    /// The files could not be downloaded.
    #[error("spec.forecasting.model.source ({origin})")]
    Download {
        /// Where the model was read from.
        origin: String,
        /// What the object store said.
        #[source]
        source: ObjectStoreError,
    },
    /// The files are there but break the contract (`docs/model.md`).
    #[error("spec.forecasting.model.source ({origin}) does not fit the model contract")]
    Unfit {
        /// Where the model was read from.
        origin: String,
        /// What does not fit.
        #[source]
        source: ForecastError,
    },
}

impl ModelSourceError {
    /// Whether retrying cannot help (the model or its settings are wrong, rather than the
    /// object store being away).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Download { source, .. } => matches!(
                source,
                ObjectStoreError::NotFound { .. } | ObjectStoreError::Artifact(_)
            ),
            _ => true,
        }
    }
}

/// Where the user's model is.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// A directory holding `model.onnx` and `scaler.json`.
    Dir(PathBuf),
    /// A prefix in the experiment's object store.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, ending in `/`.
        prefix: String,
    },
}

/// A user's model that meets the contract, and what runs it.
#[derive(Debug, Clone)]
pub struct CheckedModel {
    /// Its files.
    pub artifacts: ModelArtifacts,
    /// Where it was read from, for logs and errors.
    pub origin: String,
    /// Whether the native evaluator or tract will run its forecasts.
    pub engine: ForecastEngine,
}

impl ModelSource {
    /// The spec's model source, if it has one; `model_dir` (the mount of a ConfigMap source, or
    /// `--model-dir`) takes the place of the ConfigMap, which only exists in the cluster.
    pub fn of(
        spec: &PipelineExperimentSpec,
        model_dir: Option<&Path>,
    ) -> Result<Option<Self>, ModelSourceError> {
        let Some(source) = &spec.forecasting.model.source else {
            return Ok(model_dir.map(|dir| Self::Dir(dir.to_owned())));
        };
        match (&source.config_map, &source.s3, model_dir) {
            (_, _, Some(dir)) => Ok(Some(Self::Dir(dir.to_owned()))),
            (Some(map), None, None) => Err(ModelSourceError::ConfigMapNotMounted {
                name: map.name.clone(),
            }),
            (None, Some(s3), None) => {
                let mut prefix = s3.prefix.clone();
                if !prefix.ends_with('/') {
                    prefix.push('/');
                }
                Ok(Some(Self::S3 {
                    bucket: s3.bucket.clone(),
                    prefix,
                }))
            }
            _ => Err(ModelSourceError::Ambiguous),
        }
    }

    /// Where the model is, as a user would write it.
    pub fn origin(&self) -> String {
        match self {
            Self::Dir(dir) => dir.display().to_string(),
            Self::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }

    /// Reads the model and checks it against the contract for `look_back`: loadable, the
    /// declared input `[N, look_back, 1]`, the output `[N, 1]`, a usable scaler.
    pub async fn load(
        &self,
        s3: Option<&S3Endpoint>,
        look_back: usize,
    ) -> Result<CheckedModel, ModelSourceError> {
        let origin = self.origin();
        let artifacts = match self {
            Self::Dir(dir) => ModelArtifacts::read_dir(dir).map_err(|source| ModelSourceError::Files {
                origin: origin.clone(),
                source,
            })?,
            Self::S3 { bucket, prefix } => {
                let endpoint = s3.ok_or(ModelSourceError::NoObjectStore)?;
                ObjectStore::new(endpoint, bucket)
                    .download_model(prefix)
                    .await
                    .map_err(|source| ModelSourceError::Download {
                        origin: origin.clone(),
                        source,
                    })?
            }
        };
        let forecaster =
            Forecaster::load(&artifacts.onnx, artifacts.scaler, look_back).map_err(|source| {
                ModelSourceError::Unfit {
                    origin: origin.clone(),
                    source,
                }
            })?;
        Ok(CheckedModel {
            // Scores are the recipe's, measured here; a model made elsewhere has none.
            artifacts: ModelArtifacts {
                metrics: None,
                ..artifacts
            },
            origin,
            engine: forecaster.engine(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattcast_model::{LstmWeights, MinMaxScaler, onnx};

    fn spec(source: &str) -> PipelineExperimentSpec {
        let yaml = format!(
            "architecture: Streaming\ndevices: {{count: 1}}\ndataset: {{scenario: InOrder}}\nforecasting:\n  model:\n    source: {source}\n"
        );
        serde_yaml::from_str(&yaml).expect("a spec")
    }

    fn model_dir(look_back: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let weights = LstmWeights {
            hidden: 2,
            input: vec![0.1; 8],
            recurrent: vec![0.1; 16],
            bias: vec![0.0; 8],
            dense: vec![0.5; 2],
            dense_bias: 0.0,
        };
        ModelArtifacts {
            onnx: onnx::export(&weights, look_back),
            scaler: MinMaxScaler {
                min: 100.0,
                max: 900.0,
            },
            metrics: None,
        }
        .write_dir(dir.path())
        .expect("writes");
        dir
    }

    #[test]
    fn the_spec_names_where_the_model_is() {
        let s3 = spec("{s3: {bucket: models, prefix: keras/lstm}}");
        assert_eq!(
            ModelSource::of(&s3, None).expect("a source"),
            Some(ModelSource::S3 {
                bucket: "models".to_owned(),
                prefix: "keras/lstm/".to_owned()
            })
        );
        let map = spec("{configMap: {name: my-model}}");
        let error = ModelSource::of(&map, None).expect_err("not mounted");
        assert!(error.to_string().contains("pass --model-dir DIR"), "{error}");
        assert_eq!(
            ModelSource::of(&map, Some(Path::new("/mnt/model"))).expect("mounted"),
            Some(ModelSource::Dir(PathBuf::from("/mnt/model")))
        );
        let none: PipelineExperimentSpec = serde_yaml::from_str(
            "architecture: Streaming\ndevices: {count: 1}\ndataset: {scenario: InOrder}\n",
        )
        .expect("a spec");
        assert_eq!(ModelSource::of(&none, None).expect("no source"), None);
    }

    #[tokio::test]
    async fn a_model_that_fits_is_checked_and_one_that_does_not_is_refused() {
        let dir = model_dir(60);
        let source = ModelSource::Dir(dir.path().to_owned());
        let checked = source.load(None, 60).await.expect("fits");
        assert_eq!(checked.engine, ForecastEngine::Native);
        assert_eq!(
            checked.artifacts.scaler,
            MinMaxScaler {
                min: 100.0,
                max: 900.0
            }
        );
        let error = source.load(None, 30).await.expect_err("wrong look-back");
        assert!(error.is_permanent());
        assert_eq!(
            format!("{:#}", anyhow::Error::from(error)),
            format!(
                "spec.forecasting.model.source ({}) does not fit the model contract: model shape: input is [N, 60, 1], expected [N, 30, 1]",
                dir.path().display()
            )
        );
        let empty = tempfile::tempdir().expect("temp dir");
        let error = ModelSource::Dir(empty.path().to_owned())
            .load(None, 60)
            .await
            .expect_err("no files");
        let message = format!("{:#}", anyhow::Error::from(error));
        assert!(
            message.contains("model.onnx") || message.contains("scaler.json"),
            "{message}"
        );
    }
}
