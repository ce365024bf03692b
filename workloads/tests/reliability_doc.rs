//! docs/reliability.md's fault table is what the harness renders from the committed JSON of its
//! last run: the published numbers are the measured ones (`make reliability-table`).

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
