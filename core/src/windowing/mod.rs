//! Event-time tumbling windows with Apache Flink's watermark semantics (the Flink job's replacement).

pub mod engine;
pub mod watermark;

pub use engine::{EngineStats, LateReading, WindowConfig, WindowConfigError, WindowEngine, WindowEvent};
pub use watermark::WatermarkStrategy;
