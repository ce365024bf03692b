//! docs/reliability.md's fault table is what the harness renders from the committed JSON of its
//! last run: the published numbers are the measured ones (`make reliability-table`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

use std::path::Path;
use std::process::Command;

#[test]
fn the_published_fault_table_is_rendered_from_the_committed_run() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO_BIN_EXE_wattcast"))
        .args(["faults", "table"])
        .arg(repo.join("docs/reliability/faults-local.json"))
        .output()
        .expect("running wattcast faults table");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8(output.stdout).expect("UTF-8");
    let doc = std::fs::read_to_string(repo.join("docs/reliability.md")).expect("docs/reliability.md");
    assert!(
        doc.contains(&table),
        "docs/reliability.md's table differs from docs/reliability/faults-local.json; run `make reliability-table`"
    );
    assert!(table.lines().count() > 12, "a row per fault:\n{table}");
}

#[test]
fn the_published_cluster_table_is_the_one_the_cluster_run_wrote() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let table = std::fs::read_to_string(repo.join("docs/reliability/faults-cluster.md"))
        .expect("docs/reliability/faults-cluster.md, written by `make e2e-faults`");
    let runs = std::fs::read_to_string(repo.join("docs/reliability/faults-cluster.json"))
        .expect("docs/reliability/faults-cluster.json, written by `make e2e-faults`");
    let rows: Vec<serde_json::Value> = runs
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert!(rows.len() >= 10, "a row per fault: {} rows", rows.len());
    assert_eq!(
        table.lines().count(),
        rows.len() + 2,
        "the table has a line per run (and its header)"
    );
    for row in &rows {
        let what = row["what"].as_str().expect("what");
        assert!(table.contains(&format!("| {what} |")), "{what} is in the table");
    }
    let doc = std::fs::read_to_string(repo.join("docs/reliability.md")).expect("docs/reliability.md");
    assert!(
        doc.contains(&table),
        "docs/reliability.md's cluster table differs from docs/reliability/faults-cluster.md"
    );
}
