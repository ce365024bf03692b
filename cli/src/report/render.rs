//! The report's text: a comparison table and per-experiment sections, as Markdown and as one
//! self-contained HTML page with the SVG plots inline.

use super::data::ExperimentData;
use super::plots::{LineChart, Series, render};
use wattcast_io::store::summary::BaselineComparison;

/// A plot of the report: a file stem and its SVG.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File name without extension (`latency-cdf`, …).
    pub stem: String,
    /// Caption.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.decimals$}"))
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{:.2} %", v * 100.0))
}

/// The comparison table: one row per measure, one column per experiment.
pub fn comparison_rows(experiments: &[ExperimentData]) -> Vec<(String, Vec<String>)> {
    let row = |label: &str, value: &dyn Fn(&ExperimentData) -> String| {
        (
            label.to_owned(),
            experiments.iter().map(value).collect::<Vec<_>>(),
        )
    };
    vec![
        row("architecture", &|e| e.architecture()),
        row("devices", &|e| {
            e.devices().map_or_else(|| "–".to_owned(), |d| d.to_string())
        }),
        row("dataset", &|e| {
            e.run.as_ref().map_or_else(
                || "–".to_owned(),
                |r| {
                    r.spec
                        .dataset
                        .scenario
                        .map_or_else(|| "CSV".to_owned(), |s| format!("{s:?}"))
                },
            )
        }),
        row("watermark bound (s)", &|e| number(e.watermark_bound_s(), 0)),
        row("readings sent", &|e| e.readings_sent.to_string()),
        row("readings stored", &|e| e.summary.readings_stored.to_string()),
        row("late readings", &|e| e.summary.late.to_string()),
        row("windows (complete)", &|e| {
            format!("{} ({})", e.summary.windows, e.summary.complete_windows)
        }),
        row("coverage", &|e| percent(e.summary.coverage)),
        row("latency publish → stored p50 / p95 / p99 (ms)", &|e| {
            e.summary.latency_ms.map_or_else(
                || "–".to_owned(),
                |l| format!("{:.0} / {:.0} / {:.0}", l.p50, l.p95, l.p99),
            )
        }),
        row("window → forecast stored p50 / p99 (ms)", &|e| {
            e.forecast_latency_ms
                .map_or_else(|| "–".to_owned(), |l| format!("{:.0} / {:.0}", l.p50, l.p99))
        }),
        row("forecasts", &|e| e.summary.forecasts.to_string()),
        row("forecast MAE / RMSE (W), measured", &|e| {
            e.summary
                .accuracy
                .map_or_else(|| "–".to_owned(), |a| format!("{:.1} / {:.1}", a.mae, a.rmse))
        }),
        row("forecast MAPE, measured", &|e| {
            e.summary
                .accuracy
                .and_then(|a| a.mape)
                .map_or_else(|| "–".to_owned(), |m| format!("{m:.1} %"))
        }),
        row("persistence baseline MAE / RMSE (W), measured", &|e| {
            e.summary.baselines.map_or_else(
                || "–".to_owned(),
                |b| format!("{:.1} / {:.1}", b.persistence.mae, b.persistence.rmse),
            )
        }),
        row("window-mean baseline MAE / RMSE (W), measured", &|e| {
            e.summary.baselines.map_or_else(
                || "–".to_owned(),
                |b| format!("{:.1} / {:.1}", b.window_mean.mae, b.window_mean.rmse),
            )
        }),
        row(
            "LSTM skill vs persistence / window mean (1 − RMSE ratio)",
            &|e| {
                e.summary.baselines.map_or_else(
                    || "–".to_owned(),
                    |b| {
                        format!(
                            "{} / {}",
                            number(b.skill(&b.persistence), 2),
                            number(b.skill(&b.window_mean), 2)
                        )
                    },
                )
            },
        ),
        row("retrained model age p50 / p95 / max (s of event time)", &|e| {
            e.summary.model_age.map_or_else(
                || "–".to_owned(),
                |a| format!("{:.0} / {:.0} / {}", a.p50_s, a.p95_s, a.max_s),
            )
        }),
        row("forecast MAE / RMSE (W), imputed", &|e| {
            e.summary
                .accuracy_imputed
                .map_or_else(|| "–".to_owned(), |a| format!("{:.1} / {:.1}", a.mae, a.rmse))
        }),
        row("retrains (mean train s)", &|e| {
            format!("{} ({})", e.retrains.0, number(e.retrains.1, 2))
        }),
        row("CPU seconds (run, all workloads)", &|e| {
            number(e.run.as_ref().and_then(|r| r.cpu_seconds), 1)
        }),
        row("peak memory (MiB)", &|e| {
            number(
                e.run
                    .as_ref()
                    .and_then(|r| r.peak_rss_bytes)
                    .map(|b| b as f64 / 1_048_576.0),
                0,
            )
        }),
        row("duration (s)", &|e| {
            number(
                e.run
                    .as_ref()
                    .and_then(|r| r.finished_ms.map(|f| (f - r.started_ms) as f64 / 1000.0)),
                1,
            )
        }),
    ]
}

fn series(label: &str, points: &[(f64, f64)], markers: bool) -> Series {
    Series {
        label: label.to_owned(),
        points: points.to_vec(),
        markers,
    }
}

/// Every plot the experiments support.
pub fn figures(experiments: &[ExperimentData]) -> Vec<Figure> {
    let mut figures = Vec::new();
    let mut add = |stem: String, caption: String, chart: LineChart| {
        if let Some(svg) = render(&chart, 800, 420) {
            figures.push(Figure { stem, caption, svg });
        }
    };
    for e in experiments {
        // The first 30 minutes: enough to see the forecasts follow the load.
        let window = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
            points
                .iter()
                .filter(|(t, _)| *t < 1800.0)
                .map(|(t, w)| (t / 60.0, *w))
                .collect()
        };
        add(
            format!("forecast-{}", e.name),
            format!(
                "{}: forecast against the measured load of its first device",
                e.name
            ),
            LineChart {
                title: format!("{} — forecast vs actual (first device)", e.name),
                x_label: "minutes since the first reading".to_owned(),
                y_label: "apparent power (W)".to_owned(),
                series: vec![
                    series("measured", &window(&e.actual), false),
                    series("forecast", &window(&e.forecast), false),
                ],
            },
        );
        if !e.baselines_per_device.is_empty() {
            let rmse = |pick: &dyn Fn(&BaselineComparison) -> f64| -> Vec<(f64, f64)> {
                e.baselines_per_device
                    .iter()
                    .map(|(device, b)| (f64::from(device.0), pick(b)))
                    .collect()
            };
            add(
                format!("baselines-{}", e.name),
                format!(
                    "{}: forecast RMSE per device, the LSTM beside persistence and the window mean on the same seconds (measured readings)",
                    e.name
                ),
                LineChart {
                    title: format!("{} — LSTM vs baselines per device", e.name),
                    x_label: "device".to_owned(),
                    y_label: "RMSE (W)".to_owned(),
                    series: vec![
                        series("LSTM", &rmse(&|b| b.lstm.rmse), true),
                        series("persistence", &rmse(&|b| b.persistence.rmse), true),
                        series("window mean", &rmse(&|b| b.window_mean.rmse), true),
                    ],
                },
            );
        }
    }
    add(
        "latency-cdf".to_owned(),
        "Publish → stored latency, cumulative distribution per experiment".to_owned(),
        LineChart {
            title: "Latency CDF (sensor publish → stored)".to_owned(),
            x_label: "milliseconds".to_owned(),
            y_label: "fraction of readings".to_owned(),
            series: experiments
                .iter()
                .map(|e| {
                    series(
                        &format!("{} ({})", e.name, e.architecture()),
                        &e.latency_cdf,
                        false,
                    )
                })
                .collect(),
        },
    );
    add(
        "coverage".to_owned(),
        "Coverage of each minute (measured readings in windows / expected)".to_owned(),
        LineChart {
            title: "Coverage per minute".to_owned(),
            x_label: "minute".to_owned(),
            y_label: "coverage".to_owned(),
            series: experiments
                .iter()
                .map(|e| series(&e.name, &e.coverage_per_minute, false))
                .collect(),
        },
    );
    // A watermark sweep: Streaming runs with different bounds.
    let mut sweep: Vec<&ExperimentData> = experiments
        .iter()
        .filter(|e| e.architecture() == "Streaming" && e.watermark_bound_s().is_some())
        .collect();
    sweep.sort_by(|a, b| {
        a.watermark_bound_s()
            .partial_cmp(&b.watermark_bound_s())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let bounds: std::collections::BTreeSet<u64> = sweep
        .iter()
        .filter_map(|e| e.watermark_bound_s().map(whole_seconds))
        .collect();
    if bounds.len() > 1 {
        let points = |value: &dyn Fn(&ExperimentData) -> Option<f64>| -> Vec<(f64, f64)> {
            sweep
                .iter()
                .filter_map(|e| Some((e.watermark_bound_s()?, value(e)?)))
                .collect()
        };
        add(
            "watermark-completeness".to_owned(),
            "Watermark bound against window completeness and coverage".to_owned(),
            LineChart {
                title: "Watermark bound vs completeness".to_owned(),
                x_label: "bounded out-of-orderness (s)".to_owned(),
                y_label: "fraction".to_owned(),
                series: vec![
                    series(
                        "complete windows",
                        &points(&|e| {
                            (e.summary.windows > 0)
                                .then(|| e.summary.complete_windows as f64 / e.summary.windows as f64)
                        }),
                        true,
                    ),
                    series("coverage", &points(&|e| e.summary.coverage), true),
                ],
            },
        );
        add(
            "watermark-rmse".to_owned(),
            "Watermark bound against forecast RMSE (measured readings)".to_owned(),
            LineChart {
                title: "Watermark bound vs forecast RMSE".to_owned(),
                x_label: "bounded out-of-orderness (s)".to_owned(),
                y_label: "RMSE (W)".to_owned(),
                series: vec![series(
                    "RMSE",
                    &points(&|e| e.summary.accuracy.map(|a| a.rmse)),
                    true,
                )],
            },
        );
    }
    // Scaling: devices sending against latency, per minute of each run.
    let scaling: Vec<&ExperimentData> = experiments
        .iter()
        .filter(|e| e.run.as_ref().is_some_and(|r| r.spec.devices.ramp_up.is_some()))
        .collect();
    if !scaling.is_empty() {
        add(
            "scaling-latency".to_owned(),
            "Devices sending in a minute against that minute's p95 publish → stored latency".to_owned(),
            LineChart {
                title: "Scaling: devices vs p95 latency".to_owned(),
                x_label: "devices sending".to_owned(),
                y_label: "p95 latency (ms)".to_owned(),
                series: scaling
                    .iter()
                    .map(|e| {
                        let mut points = e.devices_vs_latency.clone();
                        points.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
                        series(&format!("{} ({})", e.name, e.architecture()), &points, true)
                    })
                    .collect(),
            },
        );
    }
    figures
}

/// A watermark bound in whole seconds, to tell a sweep's bounds apart.
#[allow(
    clippy::cast_possible_truncation,
    reason = "`as` saturates; bounds are seconds to minutes"
)]
fn whole_seconds(bound_s: f64) -> u64 {
    bound_s as u64
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Markdown report (the plots as SVG files beside it).
pub fn markdown(title: &str, experiments: &[ExperimentData], figures: &[Figure]) -> String {
    let mut out = format!("# {title}\n\n");
    let rows = comparison_rows(experiments);
    out.push_str(&format!(
        "| | {} |\n|---|{}\n",
        experiments
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(experiments.len())
    ));
    for (label, values) in &rows {
        out.push_str(&format!("| {label} | {} |\n", values.join(" | ")));
    }
    for e in experiments {
        if e.accuracy_per_device.is_empty() {
            continue;
        }
        out.push_str(&format!("\n## {} — forecast accuracy per device\n\nThe LSTM's errors, and beside them persistence's and the window mean's RMSE on the same seconds with the LSTM's skill over each (1 − RMSE ratio; above 0 the LSTM is better).\n\n| device | scored | MAE (W) | RMSE (W) | MAPE | persistence RMSE (W) | window mean RMSE (W) | skill vs persistence / window mean |\n|---|---|---|---|---|---|---|---|\n", e.name));
        for (device, a) in &e.accuracy_per_device {
            let baselines = e
                .baselines_per_device
                .iter()
                .find(|(d, _)| d == device)
                .map(|(_, b)| b);
            let (persistence, window_mean, skills) = match baselines {
                Some(b) => (
                    format!("{:.1}", b.persistence.rmse),
                    format!("{:.1}", b.window_mean.rmse),
                    format!(
                        "{} / {}",
                        number(b.skill(&b.persistence), 2),
                        number(b.skill(&b.window_mean), 2)
                    ),
                ),
                None => ("–".to_owned(), "–".to_owned(), "–".to_owned()),
            };
            out.push_str(&format!(
                "| {device} | {} | {:.1} | {:.1} | {} | {persistence} | {window_mean} | {skills} |\n",
                a.scored,
                a.mae,
                a.rmse,
                a.mape.map_or_else(|| "–".to_owned(), |m| format!("{m:.1} %"))
            ));
        }
    }
    out.push_str("\n## Plots\n\n");
    for figure in figures {
        out.push_str(&format!(
            "![{}]({}.svg)\n\n*{}*\n\n",
            figure.caption, figure.stem, figure.caption
        ));
    }
    out
}

/// The self-contained HTML report.
pub fn html(title: &str, experiments: &[ExperimentData], figures: &[Figure]) -> String {
    let rows = comparison_rows(experiments);
    let mut table = format!(
        "<table><thead><tr><th></th>{}</tr></thead><tbody>",
        experiments
            .iter()
            .map(|e| format!("<th>{}</th>", escape(&e.name)))
            .collect::<String>()
    );
    for (label, values) in &rows {
        table.push_str(&format!(
            "<tr><th>{}</th>{}</tr>",
            escape(label),
            values
                .iter()
                .map(|v| format!("<td>{}</td>", escape(v)))
                .collect::<String>()
        ));
    }
    table.push_str("</tbody></table>");
    let plots: String = figures
        .iter()
        .map(|f| {
            format!(
                "<figure>{}<figcaption>{}</figcaption></figure>",
                f.svg,
                escape(&f.caption)
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>\
body{{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222}}\
table{{border-collapse:collapse;margin:1em 0}}th,td{{border:1px solid #ccc;padding:4px 10px;text-align:right}}\
thead th,tbody th{{background:#f4f4f4;text-align:left}}figure{{margin:2em 0}}figcaption{{color:#555;font-size:90%}}\
</style></head><body><h1>{title}</h1>{table}<h2>Plots</h2>{plots}</body></html>\n",
        title = escape(title),
    )
}
