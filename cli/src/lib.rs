//! wattcast: the `wattcast` command's library — reports that compare experiments, and the
//! process footprints the soak watches. The pipeline itself lives in the layered crates
//! (`wattcast-core`, `wattcast-model`, `wattcast-io`, `wattcast-pipeline`).

pub mod footprint;
pub mod report;
