//! The observed state of an experiment: phase, conditions, progress and results.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator observed and measured.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineExperimentStatus {
    /// Where the experiment is in its life.
    #[serde(default)]
    pub phase: Phase,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions per Kubernetes API conventions (e.g. InfrastructureReady, ModelsReady, Ready).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Counts so far.
    #[serde(default)]
    pub progress: Progress,
    /// What was measured, once there is something to report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Results>,
}

/// The experiment's life: Pending → Provisioning → Training → Running → Draining →
/// Completed, or Failed from any of them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Phase {
    /// Accepted, nothing created yet.
    #[default]
    Pending,
    /// Infrastructure and setup (topics, schema, bucket) are being created.
    Provisioning,
    /// Initial models are being trained.
    Training,
    /// Sensors are sending data.
    Running,
    /// Sensors are done; the pipeline is emptying.
    Draining,
    /// Every reading was processed and results are final.
    Completed,
    /// The experiment cannot go on; see conditions and Events.
    Failed,
}

impl Phase {
    /// Whether the experiment has ended (no more transitions).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }

    /// Whether the run is still starting: nothing has been sent yet.
    pub fn is_starting(self) -> bool {
        matches!(self, Self::Pending | Self::Provisioning | Self::Training)
    }
}

/// A condition per Kubernetes API conventions.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// CamelCase type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// CamelCase reason for the last transition.
    pub reason: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The spec generation the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A condition's status.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// It does not.
    False,
    /// Not known yet.
    Unknown,
}

/// Counts of what has flowed through the pipeline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Readings the sensors published.
    #[serde(default)]
    pub readings_sent: u64,
    /// Readings stored in PostgreSQL.
    #[serde(default)]
    pub readings_stored: u64,
    /// Windows emitted (by the windower, or sent by smart sensors).
    #[serde(default)]
    pub windows_emitted: u64,
    /// Readings that arrived after their window fired.
    #[serde(default)]
    pub late_readings: u64,
    /// Forecast points stored.
    #[serde(default)]
    pub forecasts: u64,
    /// Models retrained.
    #[serde(default)]
    pub retrains: u64,
}

/// What the experiment measured.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    /// Readings placed in windows / expected readings, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// Reading published → stored, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<LatencySummary>,
    /// The last reading of a window published → the window stored, milliseconds: what the
    /// pipeline adds once a window's data is all sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_latency_ms: Option<LatencySummary>,
    /// Forecasts against the measured readings that arrived later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<ForecastAccuracy>,
    /// Forecasts against imputed fillers (reported apart: not real data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_imputed: Option<ForecastAccuracy>,
    /// The LSTM beside two baselines, on the same seconds, against measured readings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baselines: Option<Baselines>,
    /// How old the retrained models were: event time from the end of a model's training data to
    /// each forecast it made (initial models, trained at setup, are left out). It grows between
    /// retrains, and without bound when the trainers do not keep up (raise
    /// `forecasting.trainers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_age_seconds: Option<ModelAgeSummary>,
}

/// Model age percentiles in seconds of event time.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
pub struct ModelAgeSummary {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// The oldest model's age at a forecast.
    pub max: i64,
}

/// The LSTM's forecasts beside two baselines, scored on exactly the same seconds (those whose
/// window had a measured reading) against the same measured readings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Baselines {
    /// The LSTM on these seconds.
    pub lstm: ForecastAccuracy,
    /// The forecast window's last measured reading, held for the horizon.
    pub persistence: ForecastAccuracy,
    /// The forecast window's mean, held for the horizon.
    pub window_mean: ForecastAccuracy,
    /// 1 − RMSE_lstm / RMSE_persistence: above 0 the LSTM beats persistence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill_vs_persistence: Option<f64>,
    /// 1 − RMSE_lstm / RMSE_windowMean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill_vs_window_mean: Option<f64>,
}

/// Latency percentiles in milliseconds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Forecast error in watts (MAPE in percent).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
pub struct ForecastAccuracy {
    /// Mean absolute error, W.
    pub mae: f64,
    /// Root mean squared error, W.
    pub rmse: f64,
    /// Mean absolute percentage error, %, over actual values other than zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mape: Option<f64>,
    /// Forecast values scored.
    #[serde(default)]
    pub scored: u64,
}
