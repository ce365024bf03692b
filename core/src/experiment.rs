//! From a `PipelineExperiment` spec (the crds crate's types) to the settings of the workloads.

use crate::dataset::generate::{DEFAULT_START, GapPattern, GenerateOptions, Scenario};
use crate::imputation::ImputationMethod;
use crate::windowing::{WatermarkStrategy, WindowConfig, WindowConfigError};
use wattcast_crds::{
    Imputation, PipelineExperiment, PipelineExperimentSpec, Scenario as SpecScenario,
    WatermarkStrategy as SpecStrategy,
};

/// The exit code of a workload that refuses its experiment's input (a dataset that does not
/// fit the spec, a spec it cannot run): retrying the pod cannot help, so the setup Job's pod
/// failure policy fails the Job at once.
pub const EXIT_INVALID_INPUT: u8 = 3;

/// Why a spec cannot be run as it is.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The experiment has no name.
    #[error("the experiment has no metadata.name")]
    Unnamed,
    /// A field the API server would have refused.
    #[error("spec.{field}: {problem}")]
    Field {
        /// The field's path under `spec`.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The windowing settings are not usable.
    #[error("spec.windowing: {0}")]
    Windowing(#[from] WindowConfigError),
}

/// Why an experiment file cannot be read; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentFileError {
    /// The file cannot be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: String,
        /// What happened.
        #[source]
        source: std::io::Error,
    },
    /// The file is not one `PipelineExperiment`.
    #[error("{path}: not a PipelineExperiment")]
    NotAnExperiment {
        /// The file.
        path: String,
        /// What is wrong.
        #[source]
        source: serde_yaml::Error,
    },
    /// A document of a multi-document file is not YAML.
    #[error("{path}: document {document} is not YAML")]
    NotYaml {
        /// The file.
        path: String,
        /// The document's position, from 1.
        document: usize,
        /// What is wrong.
        #[source]
        source: serde_yaml::Error,
    },
    /// A document of kind `PipelineExperiment` (or of no kind) does not fit the resource.
    #[error("{path}: document {document} is not a PipelineExperiment")]
    DocumentNotAnExperiment {
        /// The file.
        path: String,
        /// The document's position, from 1.
        document: usize,
        /// What is wrong.
        #[source]
        source: serde_yaml::Error,
    },
    /// No document of the file is a `PipelineExperiment`.
    #[error("{path}: no PipelineExperiment in it")]
    Empty {
        /// The file.
        path: String,
    },
}

fn read_file(path: &std::path::Path) -> Result<String, ExperimentFileError> {
    std::fs::read_to_string(path).map_err(|source| ExperimentFileError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Reads a `PipelineExperiment` from YAML, naming the file in errors.
pub fn read_experiment(path: &std::path::Path) -> Result<PipelineExperiment, ExperimentFileError> {
    serde_yaml::from_str(&read_file(path)?).map_err(|source| ExperimentFileError::NotAnExperiment {
        path: path.display().to_string(),
        source,
    })
}

/// Every `PipelineExperiment` of a (possibly multi-document) YAML file, in order; documents of
/// other kinds are left out.
pub fn read_experiments(path: &std::path::Path) -> Result<Vec<PipelineExperiment>, ExperimentFileError> {
    use serde::Deserialize;
    let text = read_file(path)?;
    let name = || path.display().to_string();
    let mut experiments = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let value =
            serde_yaml::Value::deserialize(document).map_err(|source| ExperimentFileError::NotYaml {
                path: name(),
                document: index + 1,
                source,
            })?;
        // Other objects of the file (a ConfigMap holding the dataset) are for kubectl.
        let other_kind = value
            .get("kind")
            .and_then(serde_yaml::Value::as_str)
            .is_some_and(|kind| kind != "PipelineExperiment");
        if value.is_null() || other_kind {
            continue;
        }
        let experiment: PipelineExperiment =
            serde_yaml::from_value(value).map_err(|source| ExperimentFileError::DocumentNotAnExperiment {
                path: name(),
                document: index + 1,
                source,
            })?;
        experiments.push(experiment);
    }
    if experiments.is_empty() {
        return Err(ExperimentFileError::Empty { path: name() });
    }
    Ok(experiments)
}

/// The experiment's name.
pub fn name(experiment: &PipelineExperiment) -> Result<&str, SpecError> {
    experiment.metadata.name.as_deref().ok_or(SpecError::Unnamed)
}

/// The windower's window size, watermark and idle timeout.
pub fn window_config(spec: &PipelineExperimentSpec) -> Result<WindowConfig, SpecError> {
    let watermark = &spec.windowing.watermark;
    let strategy = match watermark.strategy {
        SpecStrategy::Monotonous => WatermarkStrategy::Monotonous,
        SpecStrategy::BoundedOutOfOrderness => WatermarkStrategy::BoundedOutOfOrderness {
            max_out_of_orderness: watermark
                .max_out_of_orderness
                .as_ref()
                .ok_or_else(|| SpecError::Field {
                    field: "windowing.watermark.maxOutOfOrderness",
                    problem: "required with BoundedOutOfOrderness".to_owned(),
                })?
                .get(),
        },
    };
    Ok(WindowConfig::new(
        spec.windowing.size.get(),
        strategy,
        watermark.idle_timeout.as_ref().map(|timeout| timeout.get()),
    )?)
}

/// The imputation method.
pub fn imputation(spec: &PipelineExperimentSpec) -> ImputationMethod {
    match spec.imputation {
        Imputation::Mean => ImputationMethod::Mean,
        Imputation::Linear => ImputationMethod::Linear,
        Imputation::Previous => ImputationMethod::Previous,
    }
}

/// The generator settings of a generated dataset.
pub fn generate_options(spec: &PipelineExperimentSpec) -> Result<GenerateOptions, SpecError> {
    let scenario = match spec.dataset.scenario {
        Some(SpecScenario::InOrder) => Scenario::InOrder,
        Some(SpecScenario::MissingTimestamps) => Scenario::MissingTimestamps,
        None => {
            return Err(SpecError::Field {
                field: "dataset.source",
                problem: "a dataset source (ConfigMap or S3 CSV) is read by the sensors in the cluster; locally, use a generated scenario".to_owned(),
            });
        }
    };
    let duration = spec.dataset.duration.get();
    if duration.as_secs() == 0 || !duration.as_secs().is_multiple_of(60) || duration.subsec_nanos() != 0 {
        return Err(SpecError::Field {
            field: "dataset.duration",
            problem: format!(
                "must be a positive whole number of minutes (got {})",
                spec.dataset.duration
            ),
        });
    }
    Ok(GenerateOptions {
        scenario,
        devices: spec.devices.count,
        minutes: u32::try_from(duration.as_secs() / 60).unwrap_or(u32::MAX),
        seed: spec.dataset.seed,
        start: DEFAULT_START,
        jitter_ms: spec.dataset.jitter.as_ref().map_or(0, |jitter| {
            u32::try_from(jitter.get().as_millis()).unwrap_or(u32::MAX)
        }),
        pattern: GapPattern::default(),
    })
}
