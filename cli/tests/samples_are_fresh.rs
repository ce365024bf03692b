//! The committed sample datasets are exactly what the generator makes from their manifests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

use std::path::Path;
use wattcast_core::dataset::generate::{Manifest, generate, manifest_path};

#[test]
fn every_committed_sample_regenerates_byte_for_byte() {
    let samples =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
            .join("../data/samples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&samples).expect("data/samples exists") {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let manifest: Manifest = serde_json::from_slice(&std::fs::read(manifest_path(&dir)).unwrap())
            .unwrap_or_else(|error| panic!("{}: {error}", manifest_path(&dir).display()));
        let fresh = tempfile::tempdir().unwrap();
        let regenerated = generate(&manifest.options, fresh.path()).unwrap();
        assert_eq!(
            regenerated,
            manifest,
            "{}: manifest is stale; run `make samples`",
            dir.display()
        );
        for file in &manifest.files {
            assert!(
                std::fs::read(dir.join(&file.file)).unwrap()
                    == std::fs::read(fresh.path().join(&file.file)).unwrap(),
                "{}/{} is stale; run `make samples`",
                dir.display(),
                file.file
            );
        }
        checked += 1;
    }
    assert_eq!(
        checked, 3,
        "expected the three sample directories of data/samples/README.md"
    );
}
