//! The wattcast operator: turns a `PipelineExperiment` into the Kubernetes objects that run it,
//! drives it through its phases, and reports what it measured.

pub mod apply;
pub mod cleanup;
pub mod component;
pub mod controller;
pub mod endpoints;
pub mod experiment_ref;
pub mod images;
pub mod leader;
pub mod lifecycle;
pub mod measurements;
pub mod metrics;
pub mod observe;
pub mod resources;
pub mod status;
pub mod store_reader;
