//! The `wattcast dataset` commands, run as the binary a user runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn wattcast(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wattcast"))
        .args(args)
        .output()
        .expect("the wattcast binary runs");
    assert!(
        output.status.success(),
        "wattcast {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn generate(dir: &Path, scenario: &str, jitter: &str) {
    wattcast(&[
        "dataset",
        "generate",
        "--scenario",
        scenario,
        "--devices",
        "2",
        "--duration",
        "2h",
        "--seed",
        "42",
        "--jitter",
        jitter,
        "--out",
        dir.to_str().unwrap(),
    ]);
}

#[test]
fn missing_timestamp_data_reproduces_the_original_statistics() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "missing-timestamps", "0s");
    let file = dir.path().join("device_1_missing_timestamps.csv");
    let stats = json_lines(&wattcast(&[
        "dataset",
        "stats",
        "--input",
        file.to_str().unwrap(),
    ]));
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0]["minutes"], 120);
    assert_eq!(stats[0]["min_missing_per_minute"], 5);
    assert_eq!(stats[0]["max_missing_per_minute"], 15);
    assert!(
        stats[0]["behind_a_minute_or_more"].as_u64().unwrap() > 0,
        "deferred runs arrive minutes late"
    );

    let lines = json_lines(&wattcast(&[
        "dataset",
        "window",
        "--input",
        file.to_str().unwrap(),
    ]));
    let (windows, summary) = lines.split_at(lines.len() - 1);
    let summary = &summary[0]["summary"];
    assert_eq!(windows.len(), 120);
    assert_eq!(summary["windows"], 120);
    assert_eq!(summary["readings"], stats[0]["readings"]);
    assert!(summary["late"].as_u64().unwrap() > 0);
    let late_in_lines: u64 = windows.iter().map(|w| w["late"].as_u64().unwrap()).sum();
    assert_eq!(
        late_in_lines + summary["late_without_window"].as_u64().unwrap(),
        summary["late"].as_u64().unwrap()
    );
    let received: u64 = windows.iter().map(|w| w["received"].as_u64().unwrap()).sum();
    assert_eq!(received, summary["windowed"].as_u64().unwrap());
    for window in windows {
        assert_eq!(window["device"], 1);
        assert_eq!(window["expected"], 60);
        assert!(
            window["received"].as_u64().unwrap() <= 55,
            "5–15 seconds are missing from every minute"
        );
    }
}

#[test]
fn with_jitter_late_readings_shrink_as_the_bound_grows() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "missing-timestamps", "8s");
    let file = dir.path().join("device_2_missing_timestamps.csv");
    let late: Vec<u64> = ["bounded:0s", "bounded:5s", "bounded:10s"]
        .iter()
        .map(|watermark| {
            let lines = json_lines(&wattcast(&[
                "dataset",
                "window",
                "--input",
                file.to_str().unwrap(),
                "--watermark",
                watermark,
            ]));
            lines.last().unwrap()["summary"]["late"].as_u64().unwrap()
        })
        .collect();
    assert!(
        late[0] > late[1] && late[1] > late[2],
        "late per bound 0/5/10 s: {late:?}"
    );
}

#[test]
fn in_order_data_gives_complete_windows_and_no_late_readings() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "in-order", "0s");
    let file = dir.path().join("device_1_in_order.csv");
    let lines = json_lines(&wattcast(&[
        "dataset",
        "window",
        "--input",
        file.to_str().unwrap(),
    ]));
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["windows"], 120);
    assert_eq!(summary["complete_windows"], 120);
    assert_eq!(summary["late"], 0);
    assert_eq!(summary["coverage"], 1.0);
}

#[test]
fn the_same_seed_writes_the_same_files() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    generate(first.path(), "missing-timestamps", "8s");
    generate(second.path(), "missing-timestamps", "8s");
    for name in [
        "device_1_missing_timestamps.csv",
        "device_2_missing_timestamps.csv",
        "manifest.json",
    ] {
        assert_eq!(
            std::fs::read(first.path().join(name)).unwrap(),
            std::fs::read(second.path().join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn a_bad_row_is_reported_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.csv");
    std::fs::write(
        &file,
        "id,aprt_power,timestamp\n1,600.0,2025-12-08 00:00:00+00\n1,lots,2025-12-08 00:00:01+00\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wattcast"))
        .args(["dataset", "window", "--input", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.csv:3: field `aprt_power`: expected watts as a number, found \"lots\""),
        "{stderr}"
    );

    // Skipping keeps the good row and still windows it.
    let lines = json_lines(&wattcast(&[
        "dataset",
        "window",
        "--input",
        file.to_str().unwrap(),
        "--on-bad-row",
        "skip",
    ]));
    assert_eq!(lines.last().unwrap()["summary"]["readings"], 1);
}

#[test]
fn the_reference_data_of_the_original_project_windows_completely() {
    let repo =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
            .join("..");
    let file = wattcast_core::dataset::thesis_data::thesis_device_csv(&repo, 3)
        .unwrap_or_else(|error| panic!("{error}"));
    let lines = json_lines(&wattcast(&[
        "dataset",
        "window",
        "--input",
        file.to_str().unwrap(),
        "--watermark",
        "bounded:5s",
    ]));
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["windows"], 40);
    assert_eq!(summary["complete_windows"], 40);
    assert_eq!(lines[0]["window_start"], 1_765_152_000);
}
