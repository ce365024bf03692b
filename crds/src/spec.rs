//! The desired state of an experiment: what to run, on how much data, with which windowing.

use crate::duration::GoDuration;
use crate::status::PipelineExperimentStatus;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A TCP port, 1 to 65535, as a regular expression (CEL's RE2).
macro_rules! port {
    () => {
        "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9][0-9]|6[0-4][0-9][0-9][0-9]|[1-5][0-9][0-9][0-9][0-9]|[1-9][0-9]{0,3})"
    };
}

/// The longest experiment name whose objects all fit Kubernetes' 63-character limits: the
/// longest is a StatefulSet pod's revision label, `<name>-postgres-<hash of up to 10>` (62).
pub const MAX_NAME_LENGTH: usize = 42;

/// CEL: the name is a DNS label short enough for every object the operator creates from it.
const NAME_RULE: &str =
    "size(self.metadata.name) <= 42 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')";
const NAME_MESSAGE: &str = "metadata.name must be at most 42 characters of a-z, 0-9 and '-', \
    starting with a letter: the operator names objects <name>-coordinator, <name>-postgres, … \
    and Kubernetes limits their names and labels to 63 characters";
/// CEL transition rule: once the operator has started the run, the spec stays as it was.
const IMMUTABLE_RULE: &str =
    "!has(oldSelf.status) || oldSelf.status.phase == 'Pending' || self.spec == oldSelf.spec";
const IMMUTABLE_MESSAGE: &str = "spec cannot change once the run has started (a run is a \
    reproducible experiment): create a new PipelineExperiment with the changed spec";

/// A power-forecasting pipeline run as a reproducible experiment: sensors → MQTT → Pulsar →
/// windowing → LSTM forecasting → PostgreSQL, with results written back into the status.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "wattcast.io",
    version = "v1alpha1",
    kind = "PipelineExperiment",
    plural = "pipelineexperiments",
    shortname = "pe",
    category = "wattcast",
    namespaced,
    status = "PipelineExperimentStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Architecture","type":"string","jsonPath":".spec.architecture"}"#,
    printcolumn = r#"{"name":"Devices","type":"integer","jsonPath":".spec.devices.count"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Coverage","type":"number","jsonPath":".status.results.coverage"}"#,
    printcolumn = r#"{"name":"RMSE","type":"number","jsonPath":".status.results.forecast.rmse"}"#,
    printcolumn = r#"{"name":"Skill","type":"number","jsonPath":".status.results.baselines.skillVsPersistence"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new(NAME_RULE).message(NAME_MESSAGE),
    validation = Rule::new(IMMUTABLE_RULE).message(IMMUTABLE_MESSAGE).field_path(".spec")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.dataset.source) || !has(self.dataset.source.s3) || has(self.infrastructure.objectStore)").message("dataset.source.s3 is read from the experiment's object store, so it needs infrastructure.objectStore (the managed one starts empty)"))]
#[x_kube(validation = Rule::new("!has(self.forecasting.model.source) || !has(self.forecasting.model.source.s3) || has(self.infrastructure.objectStore)").message("forecasting.model.source.s3 is read from the experiment's object store, so it needs infrastructure.objectStore (the managed one starts empty)"))]
#[x_kube(validation = Rule::new("!has(self.dataset.scenario) || duration(self.dataset.duration).getSeconds() >= 3 * (self.forecasting.lookBack + 1)").message("dataset.duration is too short for forecasting.lookBack: each device's initial model trains on at least 2 × (lookBack + 1) readings, and generated data keeps about two thirds of its seconds or more, so give at least 3 × (lookBack + 1) seconds"))]
pub struct PipelineExperimentSpec {
    /// Streaming (architecture A: one message per reading, windowed by the windower) or
    /// Batching (architecture B: smart sensors send one 60-reading batch per minute).
    pub architecture: Architecture,
    /// How many devices send data, and how they join.
    pub devices: DevicesSpec,
    /// The data the sensors replay: a generated scenario or your own CSV.
    pub dataset: DatasetSpec,
    /// How fast the sensors replay the data.
    #[serde(default)]
    pub replay: ReplaySpec,
    /// How readings are grouped into windows (Streaming only).
    #[serde(default)]
    pub windowing: WindowingSpec,
    /// How missing seconds of a window are filled before forecasting.
    #[serde(default)]
    pub imputation: Imputation,
    /// The forecasting model and its retraining schedule.
    #[serde(default)]
    pub forecasting: ForecastingSpec,
    /// Where Pulsar, MQTT, PostgreSQL and the object store run: managed by the operator
    /// (default) or existing services.
    #[serde(default)]
    pub infrastructure: InfrastructureSpec,
    /// What to remove when the run completes or the experiment is deleted.
    #[serde(default)]
    pub cleanup: CleanupPolicy,
    /// How long deletion retries removing the experiment's side effects from an unreachable
    /// external service before it gives up, records what it left behind (a Warning Event) and
    /// lets the experiment go.
    #[serde(default = "default_cleanup_timeout")]
    pub cleanup_timeout: GoDuration,
}

/// The two architectures the original thesis compared.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Architecture {
    /// A: simple sensors publish every reading; the windower groups them by event time.
    Streaming,
    /// B: smart sensors batch a minute of readings themselves; no stream processor.
    Batching,
}

/// The devices of an experiment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.rampUp) || self.count > 1").message("rampUp needs more than one device"))]
pub struct DevicesSpec {
    /// Number of devices (1 to 10000); devices are numbered 1..=count.
    #[schemars(range(min = 1, max = 10000))]
    pub count: u32,
    /// Start devices one after another instead of all at once (the scaling experiment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_up: Option<RampUpSpec>,
    /// Devices one sensor pod replays: the sensors' indexed Job runs ⌈count / perSensorPod⌉
    /// pods, pod i replaying devices i × perSensorPod + 1 onwards (10,000 devices are 40 pods,
    /// not 10,000).
    #[serde(default = "default_per_sensor_pod")]
    #[schemars(range(min = 1, max = 10000))]
    pub per_sensor_pod: u32,
}

impl DevicesSpec {
    /// How many sensor pods replay the devices.
    pub fn sensor_pods(&self) -> u32 {
        self.count.div_ceil(self.per_sensor_pod.max(1))
    }

    /// The devices sensor pod `index` (0-based) replays: a slice of `1..=count`, empty past the
    /// last pod.
    pub fn sensor_slice(&self, index: u32) -> std::ops::RangeInclusive<u32> {
        let per = self.per_sensor_pod.max(1);
        let first = index.saturating_mul(per).saturating_add(1);
        let last = first.saturating_add(per - 1).min(self.count);
        first..=last
    }
}

/// Devices join one at a time.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.every) > duration('0s')").message("rampUp.every must be positive"))]
pub struct RampUpSpec {
    /// Device i starts i × every after the first (replay time, e.g. `5m`).
    pub every: GoDuration,
}

/// The data the sensors replay.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.scenario) != has(self.source)").message("set exactly one of dataset.scenario (generated data) and dataset.source (your own CSV)"))]
#[x_kube(validation = Rule::new("!has(self.scenario) || (duration(self.duration) >= duration('1m') && duration(self.duration).getMilliseconds() % 60000 == 0)").message("dataset.duration must be a whole number of minutes, at least 1m"))]
pub struct DatasetSpec {
    /// Generate data of this kind (deterministic for the seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<Scenario>,
    /// Replay your own CSV (either layout of the original project) instead of generating: its
    /// devices, in id order, become devices 1..=count (more are left out, fewer are refused),
    /// each needing at least 2 × (lookBack + 1) readings; `seed`, `duration` and `jitter`
    /// apply to generated data only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DatasetSource>,
    /// Seed of the generator.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How much data to generate, in whole minutes (e.g. `2h`).
    #[serde(default = "default_dataset_duration")]
    pub duration: GoDuration,
    /// Delay each generated reading's arrival by a random 0..jitter, so readings cross minute
    /// boundaries (what makes watermark bounds matter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<GoDuration>,
}

/// Kinds of generated data.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Scenario {
    /// Every second, in order.
    InOrder,
    /// The original's pattern: 5–15 seconds missing per minute, 2–4 interleaved runs per
    /// minute, one run deferred 1–3 minutes in ~30 % of minutes.
    MissingTimestamps,
}

/// A CSV the user provides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMap) != has(self.s3)").message("set exactly one of configMap and s3"))]
pub struct DatasetSource {
    /// A key of a ConfigMap in the experiment's namespace, mounted into the setup and sensor
    /// pods (a ConfigMap holds at most 1 MiB: about 30,000 readings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapKey>,
    /// An object in the experiment's object store (`infrastructure.objectStore`: the managed
    /// one starts empty), downloaded by the setup and sensor pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Object>,
}

/// A key of a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct ConfigMapKey {
    /// The ConfigMap's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key holding the CSV.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// An object in S3-compatible storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct S3Object {
    /// The bucket.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// The object key.
    #[schemars(length(min = 1, max = 1024))]
    pub key: String,
}

/// How fast the data is replayed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.speedup > 0.0").message("replay.speedup must be greater than 0"))]
pub struct ReplaySpec {
    /// Replay speed: 1 is real time (one reading per device per second), 60 replays a minute
    /// of data per second.
    #[serde(default = "default_speedup")]
    pub speedup: f64,
}

/// Event-time windowing, as the original Flink job did it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.size) >= duration('1s') && duration(self.size).getMilliseconds() % 1000 == 0").message("windowing.size must be a whole number of seconds, at least 1s"))]
#[x_kube(validation = Rule::new("self.watermark.strategy != 'BoundedOutOfOrderness' || duration(self.watermark.maxOutOfOrderness) < duration(self.size)").message("watermark.maxOutOfOrderness must be below windowing.size"))]
pub struct WindowingSpec {
    /// Tumbling window size (whole seconds).
    #[serde(default = "default_window_size")]
    pub size: GoDuration,
    /// How the watermark follows event time.
    #[serde(default)]
    pub watermark: WatermarkSpec,
}

/// The watermark strategy (Apache Flink's semantics).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.strategy == 'Monotonous' ? !has(self.maxOutOfOrderness) : has(self.maxOutOfOrderness)").message("maxOutOfOrderness is required with BoundedOutOfOrderness and not allowed with Monotonous"))]
#[x_kube(validation = Rule::new("!has(self.idleTimeout) || duration(self.idleTimeout) > duration('0s')").message("watermark.idleTimeout must be positive (leave it out for no idleness)"))]
pub struct WatermarkSpec {
    /// Monotonous (watermark = highest event time − 1 ms) or BoundedOutOfOrderness.
    #[serde(default)]
    pub strategy: WatermarkStrategy,
    /// How far behind the highest event time a reading may arrive and still count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_out_of_orderness: Option<GoDuration>,
    /// Fire a device's open windows after it sent nothing for this long (processing time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<GoDuration>,
}

/// Watermark strategies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum WatermarkStrategy {
    /// Flink's `forMonotonousTimestamps()`.
    #[default]
    Monotonous,
    /// Flink's `forBoundedOutOfOrderness(maxOutOfOrderness)`.
    BoundedOutOfOrderness,
}

/// How missing seconds are filled.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Imputation {
    /// The window's mean (the original's choice).
    #[default]
    Mean,
    /// Straight line between neighbouring readings.
    Linear,
    /// The previous reading carried forward.
    Previous,
}

/// Forecasting and retraining.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.retrainEvery) >= duration('1m')").message("forecasting.retrainEvery must be at least 1m"))]
pub struct ForecastingSpec {
    /// Readings the model looks back over (at most 299: a model trains on 600 readings, split
    /// in halves that each need lookBack + 1).
    #[serde(default = "default_look_back")]
    #[schemars(range(min = 1, max = 299))]
    pub look_back: u32,
    /// Seconds forecast ahead (recursively, one step at a time).
    #[serde(default = "default_horizon")]
    #[schemars(range(min = 1, max = 3600))]
    pub horizon: u32,
    /// Retrain each device's model after this much event time.
    #[serde(default = "default_retrain_every")]
    pub retrain_every: GoDuration,
    /// Trainer replicas. Retrain requests are shared among them by device (a Pulsar Key_Shared
    /// subscription), so each device's requests are trained in order while N trainers train N
    /// devices at once; each trainer requests the training resources (about one CPU).
    #[serde(default = "default_trainers")]
    #[schemars(range(min = 1, max = 32))]
    pub trainers: u32,
    /// The LSTM and its training recipe, or your own model.
    #[serde(default)]
    pub model: ModelSpec,
    /// Every: each device's model is retrained with the recipe every `retrainEvery` of event
    /// time, on its latest 600 stored readings. Never: each device keeps its initial model for
    /// the whole run (no trainer runs), e.g. to measure your own model as it is.
    #[serde(default)]
    pub retrain: Retrain,
}

/// Whether models are retrained during the run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Retrain {
    /// Every `retrainEvery` of event time.
    #[default]
    Every,
    /// Never: the initial models forecast the whole run.
    Never,
}

/// A model you bring, meeting the contract of `docs/model.md`: an ONNX graph `model.onnx` with
/// one input `[N, lookBack, 1]` f32 and one output `[N, 1]`, and `scaler.json`
/// (`{"min": …, "max": …}` in watts). Setup checks it against `forecasting.lookBack` and makes it
/// every device's initial model; the experiment fails at setup, saying why, if it does not fit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMap) != has(self.s3)").message("set exactly one of configMap and s3"))]
pub struct ModelSource {
    /// A ConfigMap in the experiment's namespace holding the keys `model.onnx` (binaryData) and
    /// `scaler.json`, mounted into the setup pod (a ConfigMap holds at most 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapName>,
    /// A prefix in the experiment's object store (`infrastructure.objectStore`) under which
    /// `model.onnx` and `scaler.json` are, e.g. `models/my-lstm/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Prefix>,
}

/// A ConfigMap, by name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct ConfigMapName {
    /// The ConfigMap's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A prefix in S3-compatible storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct S3Prefix {
    /// The bucket.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// The key prefix (a trailing `/` is added if missing).
    #[schemars(length(min = 1, max = 1024))]
    pub prefix: String,
}

/// The LSTM model: LSTM(hidden) → Dropout(0.1) → Dense(1).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// LSTM units.
    #[serde(default = "default_hidden")]
    #[schemars(range(min = 1, max = 1024))]
    pub hidden: u32,
    /// Training epochs.
    #[serde(default = "default_epochs")]
    #[schemars(range(min = 1, max = 10000))]
    pub epochs: u32,
    /// Mini-batch size.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 4096))]
    pub batch_size: u32,
    /// Your own model as every device's initial model, instead of one trained with the recipe
    /// (hidden, epochs and batchSize then apply to retrains only; see `forecasting.retrain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ModelSource>,
}

/// Where the infrastructure runs; each service left out is managed by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfrastructureSpec {
    /// An existing Pulsar cluster: `pulsar://host:6650`, or `pulsar+ssl://host:6651` for TLS.
    /// Its admin API is `adminUrl`, or else taken to be on the same host: `http://host:8080`,
    /// or `https://host:8443` for TLS (Pulsar's default ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new(concat!("self.url.matches('^pulsar([+]ssl)?://[^/:@]+(:", port!(), ")?/?$')")).message("pulsar.url must look like pulsar://host:6650 or pulsar+ssl://host:6651"),
        validation = Rule::new("!has(self.caSecret) || self.url.startsWith('pulsar+ssl://')").message("pulsar.caSecret is only used over TLS: use a pulsar+ssl:// URL, or leave caSecret out"),
        validation = Rule::new(concat!("!has(self.adminUrl) || self.adminUrl.matches('^https?://[^/:@]+(:", port!(), ")?/?$')")).message("pulsar.adminUrl must look like https://host:8443, without a path or credentials"),
    )]
    pub pulsar: Option<ExternalService>,
    /// An existing MQTT broker: `mqtt://host:1883`, or `mqtts://host:8883` for TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new(concat!("self.url.matches('^mqtts?://[^/:@]+(:", port!(), ")?/?$')")).message("mqtt.url must look like mqtt://host:1883 or mqtts://host:8883"),
        validation = Rule::new("!has(self.caSecret) || self.url.startsWith('mqtts://')").message("mqtt.caSecret is only used over TLS: use an mqtts:// URL, or leave caSecret out"),
        validation = Rule::new("!has(self.adminUrl)").message("adminUrl is for pulsar only"),
    )]
    pub mqtt: Option<ExternalService>,
    /// An existing PostgreSQL (`postgres://host:port/db` or `postgresql://…`, without
    /// credentials). TLS follows `sslmode`: `require` encrypts (and, with a `caSecret`, checks
    /// the certificate's CA, as libpq does); `verify-ca` checks the CA; `verify-full` also
    /// the host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new("self.url.matches('^postgres(ql)?://[^/@]+(/[^/?#]*)?([?].*)?$')").message("postgres.url must look like postgres://host:5432/db, without credentials"),
        validation = Rule::new("!self.url.matches('[?&]sslmode=') || self.url.matches('[?&]sslmode=(disable|allow|prefer|require|verify-ca|verify-full)(&|$)')").message("postgres.url's sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full"),
        validation = Rule::new("!has(self.caSecret) || self.url.matches('[?&]sslmode=(require|verify-ca|verify-full)(&|$)')").message("postgres.caSecret is only used over TLS: add sslmode=verify-full (or require, verify-ca) to the URL, or leave caSecret out"),
        validation = Rule::new("!has(self.adminUrl)").message("adminUrl is for pulsar only"),
    )]
    pub postgres: Option<ExternalService>,
    /// An existing S3-compatible object store (`http://` or `https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new("self.url.matches('^https?://[^/@]+(/.*)?$')").message("objectStore.url must look like https://host:9000, without credentials"),
        validation = Rule::new("!has(self.caSecret) || self.url.startsWith('https://')").message("objectStore.caSecret is only used over TLS: use an https:// URL, or leave caSecret out"),
        validation = Rule::new("!has(self.adminUrl)").message("adminUrl is for pulsar only"),
    )]
    pub object_store: Option<ExternalService>,
}

/// A service the experiment uses instead of a managed one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalService {
    /// Where it listens, without credentials.
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// A Secret in the experiment's namespace with the credentials (`username`/`password`,
    /// or `accessKey`/`secretKey` for S3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// A Secret in the experiment's namespace whose key `ca.crt` holds the PEM CA bundle the
    /// service's certificate must chain to (TLS URLs only). Without it, certificates are checked
    /// against the public web PKI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub ca_secret: Option<String>,
    /// Pulsar only: its admin API (`https://pulsar-admin.example.com`), when it is not on the
    /// broker's host at 8080 (8443 for `pulsar+ssl`). The same `caSecret` applies to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub admin_url: Option<String>,
}

/// What is removed when the run completes (the finalizer always removes the experiment's
/// Pulsar namespace and S3 prefix on deletion unless `Keep`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum CleanupPolicy {
    /// Remove the workloads when the run completes; keep infrastructure and data for inspection.
    #[default]
    DeleteWorkloads,
    /// Remove workloads and managed infrastructure when the run completes.
    DeleteAll,
    /// Remove nothing when the run completes, and leave external side effects on deletion.
    Keep,
}

#[allow(
    clippy::expect_used,
    reason = "called only with the literal defaults below, which parse"
)]
fn duration(text: &str) -> GoDuration {
    text.parse().expect("built-in default durations are valid")
}
fn default_per_sensor_pod() -> u32 {
    250
}
fn default_cleanup_timeout() -> GoDuration {
    duration("10m")
}
fn default_seed() -> u64 {
    42
}
fn default_dataset_duration() -> GoDuration {
    duration("2h")
}
fn default_speedup() -> f64 {
    1.0
}
fn default_window_size() -> GoDuration {
    duration("1m")
}
fn default_look_back() -> u32 {
    60
}
fn default_horizon() -> u32 {
    60
}
fn default_retrain_every() -> GoDuration {
    duration("10m")
}
fn default_trainers() -> u32 {
    1
}
fn default_hidden() -> u32 {
    25
}
fn default_epochs() -> u32 {
    200
}
fn default_batch_size() -> u32 {
    32
}

impl Default for ReplaySpec {
    fn default() -> Self {
        Self {
            speedup: default_speedup(),
        }
    }
}

impl Default for WindowingSpec {
    fn default() -> Self {
        Self {
            size: default_window_size(),
            watermark: WatermarkSpec::default(),
        }
    }
}

impl Default for WatermarkSpec {
    fn default() -> Self {
        Self {
            strategy: WatermarkStrategy::Monotonous,
            max_out_of_orderness: None,
            idle_timeout: Some(duration("1m")),
        }
    }
}

impl Default for ForecastingSpec {
    fn default() -> Self {
        Self {
            look_back: default_look_back(),
            horizon: default_horizon(),
            retrain_every: default_retrain_every(),
            trainers: default_trainers(),
            model: ModelSpec::default(),
            retrain: Retrain::default(),
        }
    }
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            hidden: default_hidden(),
            epochs: default_epochs(),
            batch_size: default_batch_size(),
            source: None,
        }
    }
}
