//! Where the original project's reference CSVs are, for the tests that read real data. They are
//! not part of this repository (their terms keep them apart): the directory
//! `WATTCAST_THESIS_DATA` names, else `../shared/reference/thesis-data` beside the clone.

use std::path::{Path, PathBuf};

/// The variable naming the directory of the reference CSVs.
pub const THESIS_DATA_VARIABLE: &str = "WATTCAST_THESIS_DATA";

/// A reference CSV that is not where it was looked for.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is missing: the original project's reference data is not part of this repository; set {THESIS_DATA_VARIABLE} to the directory holding its CSVs (see docs/contributing/testing.md, \"Reference data\")",
    .path.display()
)]
pub struct MissingThesisData {
    /// Where it was looked for.
    pub path: PathBuf,
}

/// The directory of the reference CSVs for the repository at `repo`.
pub fn thesis_data_dir(repo: &Path) -> PathBuf {
    std::env::var_os(THESIS_DATA_VARIABLE)
        .map_or_else(|| repo.join("../shared/reference/thesis-data"), PathBuf::from)
}

/// Device `device`'s reference CSV (devices 2–4: 40 minutes at 1 Hz, in order, no gaps).
pub fn thesis_device_csv(repo: &Path, device: u32) -> Result<PathBuf, MissingThesisData> {
    let path = thesis_data_dir(repo).join(format!("device_{device}_batch_data_2025-12-08.csv"));
    if path.exists() {
        Ok(path)
    } else {
        Err(MissingThesisData { path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_says_where_it_looked_and_how_to_point_elsewhere() {
        let error = thesis_device_csv(Path::new("/nonexistent-repo"), 9).expect_err("nothing there");
        let message = error.to_string();
        assert!(
            message.contains("device_9_batch_data_2025-12-08.csv is missing"),
            "{message}"
        );
        assert!(message.contains(THESIS_DATA_VARIABLE), "{message}");
    }
}
