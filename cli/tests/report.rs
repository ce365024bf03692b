//! `wattcast report` on real runs: three small experiments (Streaming with watermark bounds 0 s
//! and 5 s on jittered missing-timestamp data, Batching on in-order data) run through the real
//! pipeline on the test services; the report compares them with the numbers their runs printed
//! and draws every plot they allow. A report on an experiment that never ran is refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use common::{reachable, services, unique};
use std::time::Duration;
use wattcast::report::write_report;
use wattcast_crds::PipelineExperiment;
use wattcast_io::object_store::DEFAULT_BUCKET;
use wattcast_pipeline::local::{LocalOptions, LocalSummary, run_local};

fn experiment(name: &str, architecture: &str, scenario: &str, bound: &str) -> PipelineExperiment {
    let yaml = format!(
        "apiVersion: wattcast.io/v1alpha1
kind: PipelineExperiment
metadata: {{ name: {name} }}
spec:
  architecture: {architecture}
  devices: {{ count: 2 }}
  dataset: {{ scenario: {scenario}, seed: 11, duration: 12m, jitter: 8s }}
  replay: {{ speedup: 300 }}
  windowing:
    size: 1m
    watermark: {{ strategy: BoundedOutOfOrderness, maxOutOfOrderness: {bound}, idleTimeout: 1m }}
  forecasting: {{ retrainEvery: 10m, model: {{ epochs: 5 }} }}
"
    );
    serde_yaml::from_str(&yaml).expect("a valid experiment")
}

async fn run(experiment: &PipelineExperiment) -> LocalSummary {
    reachable(
        "the test services",
        run_local(
            experiment,
            LocalOptions {
                services: services(),
                drain_timeout: Duration::from_secs(180),
                progress: false,
                models_bucket: DEFAULT_BUCKET.to_owned(),
                initial_models: true,
                hold_replay: None,
                forecast_stats: None,
                dataset: None,
                model_dir: None,
            },
        )
        .await
        .map_err(|error| format!("{error:#}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_compares_real_runs_with_their_numbers_and_plots() {
    let suffix = unique("r");
    let suffix = &suffix[suffix.len() - 8..];
    let runs = [
        experiment(
            &format!("rep-s0-{suffix}"),
            "Streaming",
            "MissingTimestamps",
            "0s",
        ),
        experiment(
            &format!("rep-s5-{suffix}"),
            "Streaming",
            "MissingTimestamps",
            "5s",
        ),
        experiment(&format!("rep-b-{suffix}"), "Batching", "InOrder", "0s"),
    ];
    let _cleanup: Vec<common::Cleanup> = runs
        .iter()
        .map(|run| {
            let name = run.metadata.name.as_deref().expect("a named experiment");
            common::Cleanup::experiment(
                &wattcast_core::topics::ExperimentNames::new(name).expect("a valid name"),
            )
        })
        .collect();
    let mut summaries = Vec::new();
    for experiment in &runs {
        summaries.push(run(experiment).await);
    }
    let names: Vec<String> = summaries.iter().map(|s| s.experiment.clone()).collect();
    let out = tempfile::tempdir().expect("a temporary directory");
    let written = write_report(&services().postgres, &names, "Report test", out.path())
        .await
        .unwrap_or_else(|error| panic!("the report: {error:#}"));

    let markdown = std::fs::read_to_string(&written.markdown).expect("report.md");
    let html = std::fs::read_to_string(&written.html).expect("report.html");
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg"),
        "the HTML holds its plots inline"
    );
    assert!(!html.contains("src=\""), "the HTML is self-contained");
    for summary in &summaries {
        assert!(
            markdown.contains(&summary.experiment),
            "the report names {}",
            summary.experiment
        );
        let coverage = format!("{:.2} %", summary.coverage.expect("coverage") * 100.0);
        assert!(
            markdown.contains(&coverage),
            "{}'s coverage {coverage} is in the table",
            summary.experiment
        );
        let accuracy = summary.accuracy.expect("forecasts were scored");
        let rmse = format!("{:.1} / {:.1}", accuracy.mae, accuracy.rmse);
        assert!(
            markdown.contains(&rmse),
            "{}'s MAE / RMSE {rmse} is in the table",
            summary.experiment
        );
        assert!(markdown.contains(&summary.readings_sent.to_string()));
    }
    assert!(
        markdown.contains("| architecture | Streaming | Streaming | Batching |"),
        "{markdown}"
    );
    assert!(markdown.contains("forecast accuracy per device"));
    assert!(markdown.contains("| persistence RMSE (W) | window mean RMSE (W) |"));
    // The per-device comparisons partition the run's: their scored seconds add up to it, and
    // each device's persistence RMSE is in its row.
    for summary in &summaries {
        let names = wattcast_core::topics::ExperimentNames::new(&summary.experiment).expect("a valid name");
        let store = wattcast_io::store::Store::connect(&services().postgres, &names.postgres_schema(), 1)
            .await
            .expect("the experiment's store");
        let per_device = store.baselines_per_device(false).await.expect("per device");
        let overall = summary.baselines.expect("the run's baselines");
        assert!(!per_device.is_empty());
        assert_eq!(
            per_device.iter().map(|(_, b)| b.lstm.scored).sum::<i64>(),
            overall.lstm.scored,
            "{}",
            summary.experiment
        );
        for (device, b) in &per_device {
            let row = format!("| {device} | ");
            let line = markdown.lines().find(|line| {
                line.starts_with(&row) && line.contains(&format!("| {:.1} |", b.persistence.rmse))
            });
            assert!(
                line.is_some(),
                "{}: device {device}'s row with its baselines",
                summary.experiment
            );
        }
    }

    let stems: Vec<String> = written
        .plots
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for stem in [
        "latency-cdf",
        "coverage",
        "watermark-completeness",
        "watermark-rmse",
    ] {
        assert!(stems.contains(&stem.to_owned()), "a {stem} plot in {stems:?}");
    }
    for name in &names {
        assert!(
            stems.contains(&format!("forecast-{name}")),
            "a forecast plot of {name}"
        );
        let baselines = out.path().join(format!("baselines-{name}.svg"));
        let svg = std::fs::read_to_string(&baselines).expect("a baselines plot of each experiment");
        for label in ["LSTM", "persistence", "window mean"] {
            assert!(svg.contains(label), "{} has a {label} line", baselines.display());
        }
    }
    for plot in &written.plots {
        let svg = std::fs::read_to_string(plot).unwrap();
        assert!(svg.contains("<polyline"), "{} draws lines", plot.display());
        assert!(markdown.contains(&format!("{}.svg", plot.file_stem().unwrap().to_string_lossy())));
    }
    let latency = std::fs::read_to_string(out.path().join("latency-cdf.svg")).unwrap();
    for name in &names {
        assert!(
            latency.contains(name.as_str()),
            "the latency CDF has a line for {name}"
        );
    }
}

#[tokio::test]
async fn a_report_on_an_experiment_that_never_ran_says_so() {
    let out = tempfile::tempdir().expect("a temporary directory");
    let stamp = unique("n");
    let name = format!("never-{}", &stamp[stamp.len() - 8..]);
    let error = write_report(&services().postgres, std::slice::from_ref(&name), "t", out.path())
        .await
        .expect_err("nothing to report");
    let message = format!("{error:#}");
    assert!(message.contains(&name), "{message}");
}
