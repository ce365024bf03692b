//! The committed CRD YAML (and the chart's copy) and the reference page must be what the Rust
//! types generate.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

/// Fails unless the file at `relative` (to the repository root) is exactly `generated`.
fn assert_committed(relative: &str, generated: &str) {
    // At run time, not env! at compile time: the target directory is shared between checkouts.
    let root = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"),
    )
    .join("..");
    let path = root.join(relative);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}; run `make crd`", path.display()));
    assert!(
        committed == generated,
        "{} is stale: run `make crd` and commit the result",
        path.display()
    );
}

#[test]
fn committed_crd_yaml_matches_the_types() {
    assert_committed(wattcast_crds::CRD_PATH, &wattcast_crds::crd_yaml().unwrap());
}

#[test]
fn the_charts_crd_is_the_committed_one() {
    assert_committed(
        "charts/wattcast/crds/pipelineexperiment.yaml",
        &wattcast_crds::crd_yaml().unwrap(),
    );
}

#[test]
fn the_reference_page_is_the_generated_one() {
    assert_committed(
        wattcast_crds::REFERENCE_PATH,
        &wattcast_crds::reference_markdown().unwrap(),
    );
}
