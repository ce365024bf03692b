//! wattcast-pipeline: the pipeline's workloads — sensor, bridge, windower, coordinator,
//! trainer — over MQTT and Pulsar; the set-up that prepares an experiment; and `local`, which
//! runs every workload as tasks of one process.
//!
//! # Layout
//!
//! - [`workload`]: the five workloads, each an async task that runs as its own process (pod)
//!   or beside the others; [`workload::runner`], the loop the four Pulsar workloads share.
//! - [`setup`]: an experiment's topics, schema, bucket and initial models.
//! - [`model_registry`], [`model_source`]: models in the object store and the store, and a
//!   model the user brings.
//! - [`local`]: `wattcast local EXPERIMENT.yaml`, the whole pipeline in one process.
//! - [`process_usage`]: what this process has cost, from /proc.

pub mod local;
pub mod model_registry;
pub mod model_source;
pub mod process_usage;
pub mod setup;
pub mod workload;
