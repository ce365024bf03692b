//! The LSTM's numeric kernels, apart so that they are optimised in every build (test builds
//! train models; the workspace's `[profile.dev.package]` names this crate).
//!
//! # Layout
//!
//! - [`activations`]: `exp`, `sigmoid` and `tanh` as branch-free functions that vectorise; the
//!   native forecaster's cell loop and [`sequence`] use them.
//! - [`gates`]: the product of a step's input with the weights, in blocks that vectorise; the
//!   native forecaster's cell loop and [`sequence`] run it.
//! - [`sequence`]: the LSTM over a batch of whole sequences as one candle operation, its
//!   backward pass (backpropagation through time) written by hand, checked against candle's
//!   autograd of the unfused network.

pub mod activations;
pub mod gates;
pub mod sequence;
