//! wattcast-io: where the pipeline's state lives and how it is reached — service endpoints
//! and TLS, the experiment's PostgreSQL store, the object store, Pulsar's admin API, and what
//! every long-running process serves (`/metrics`, `/healthz`, `/readyz`). The operator uses
//! this crate and `wattcast-core` only: no ML stack, no MQTT or Pulsar client.
//!
//! # Layout
//!
//! - [`services`], [`tls`]: endpoints with credentials from the environment, and CA bundles.
//! - [`reach`]: waiting until the services accept connections.
//! - [`store`]: the experiment's PostgreSQL schema — windows, readings, forecasts, models,
//!   sensor reports, and the summaries reports and the operator read.
//! - [`object_store`]: S3 buckets and model files.
//! - [`pulsar_admin`]: namespaces, topics and backlogs through Pulsar's admin API.
//! - [`dataset_source`]: where an experiment's readings come from (generated, a file, S3).
//! - [`observe`]: logging, readiness, the metrics server, and shutdown on signals.

pub mod dataset_source;
pub mod object_store;
pub mod observe;
pub mod pulsar_admin;
pub mod reach;
pub mod services;
pub mod store;
pub mod tls;
