//! The wattcast operator: turns a `PipelineExperiment` into the Kubernetes objects that run it.
//! Today: the builders of every object an experiment needs (`resources`); the controller that
//! applies them and drives the phases comes next.

pub mod experiment_ref;
pub mod images;
pub mod lifecycle;
pub mod resources;
