//! wattcast: the power-forecasting pipeline's library — readings and windows, datasets, the
//! event-time windowing engine and imputation. The `wattcast` binary's subcommands use it.

pub mod dataset;
pub mod experiment;
pub mod footprint;
pub mod imputation;
pub mod local;
pub mod model;
pub mod model_registry;
pub mod model_source;
pub mod object_store;
pub mod observe;
pub mod preview;
pub mod process_usage;
pub mod pulsar_admin;
pub mod reach;
pub mod reading;
pub mod report;
pub mod services;
pub mod setup;
pub mod store;
pub mod tls;
pub mod topics;
pub mod window;
pub mod windowing;
pub mod wire;
pub mod workload;

pub use reading::{DeviceId, Reading};
pub use window::Window;
