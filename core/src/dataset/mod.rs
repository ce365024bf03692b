//! Datasets: the original project's CSV formats, a reader and writer, a generator and statistics.

pub mod format;
pub mod generate;
pub mod reader;
pub mod signal;
pub mod stats;
pub mod thesis_data;
pub mod timestamp;
pub mod writer;

pub use format::CsvFormat;
pub use reader::{BadRowPolicy, Dataset, DatasetError, RowError, read_dataset};
pub use writer::write_dataset;
