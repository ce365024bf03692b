//! wattcast-core: the pipeline's vocabulary and its pure logic — readings and windows, the
//! event-time windowing engine, imputation, datasets, the messages workloads exchange, the
//! names an experiment's topics and schema take, and a model's files. No network, no async:
//! everything here is tested without a service.
//!
//! # Layout
//!
//! - [`reading`], [`window`]: one device's reading and a minute of them.
//! - [`windowing`]: event-time tumbling windows with Apache Flink's watermark semantics.
//! - [`imputation`]: filling a window's missing seconds (mean, linear, previous value).
//! - [`dataset`]: the original project's CSV formats — reading, writing, generating, statistics.
//! - [`preview`]: a dataset replayed through the windowing engine (`wattcast dataset window`).
//! - [`wire`]: the JSON messages on MQTT and Pulsar, and how a sensor message is judged.
//! - [`topics`]: the names of an experiment's topics and PostgreSQL schema.
//! - [`experiment`]: from a `PipelineExperiment` spec to the workloads' settings.
//! - [`recipe`], [`scaler`], [`artifacts`]: how a model is trained, its input scaler, and the
//!   files that deploy it — shared by the model crate, the stores and the operator.

pub mod artifacts;
pub mod dataset;
pub mod experiment;
pub mod imputation;
pub mod preview;
pub mod reading;
pub mod recipe;
pub mod scaler;
pub mod topics;
pub mod window;
pub mod windowing;
pub mod wire;

pub use reading::{DeviceId, Reading};
pub use window::Window;
