//! wattcast: the power-forecasting pipeline's library — readings and windows, datasets, the
//! event-time windowing engine and imputation. The `wattcast` binary's subcommands use it.

pub mod dataset;
pub mod imputation;
pub mod preview;
pub mod reading;
pub mod services;
pub mod window;
pub mod windowing;

pub use reading::{DeviceId, Reading};
pub use window::Window;
