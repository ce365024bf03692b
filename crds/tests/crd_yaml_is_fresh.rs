//! The committed CRD YAML must be what the Rust types generate.

#[test]
fn committed_crd_yaml_matches_the_types() {
    let path = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"),
    )
    .join("..")
    .join(wattcast_crds::CRD_PATH);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}; run `make crd`", path.display()));
    let generated = wattcast_crds::crd_yaml().unwrap();
    assert!(
        committed == generated,
        "{} is stale: run `make crd` and commit the result",
        path.display()
    );
}

#[test]
fn the_charts_crd_is_the_committed_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let chart = root.join("charts/wattcast/crds/pipelineexperiment.yaml");
    let chart_crd = std::fs::read_to_string(&chart)
        .unwrap_or_else(|error| panic!("{}: {error}; run `make crd`", chart.display()));
    let generated = wattcast_crds::crd_yaml().unwrap();
    assert!(
        chart_crd == generated,
        "{} is stale: run `make crd` and commit the result",
        chart.display()
    );
}

#[test]
fn the_reference_page_is_the_generated_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join(wattcast_crds::REFERENCE_PATH);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}; run `make crd`", path.display()));
    let generated = wattcast_crds::reference_markdown().unwrap();
    assert!(
        committed == generated,
        "{} is stale: run `make crd` and commit the result",
        path.display()
    );
}
