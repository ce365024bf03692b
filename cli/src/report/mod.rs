//! `wattcast report`: one or several experiments' results from their stores, as `report.md`,
//! `report.html` (self-contained, SVG plots inline) and the plots as SVG files.

pub mod data;
pub mod plots;
pub mod render;

use anyhow::Context;
use std::path::{Path, PathBuf};
use wattcast_core::topics::ExperimentNames;
use wattcast_io::store::Store;

/// What a report wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// The SVG plots.
    pub plots: Vec<PathBuf>,
}

/// Reads each experiment's store at `postgres` and writes the report into `out`.
pub async fn write_report(
    postgres: &wattcast_io::services::PostgresEndpoint,
    experiments: &[String],
    title: &str,
    out: &Path,
) -> anyhow::Result<Written> {
    anyhow::ensure!(!experiments.is_empty(), "name at least one experiment");
    let mut loaded = Vec::new();
    for name in experiments {
        let names = ExperimentNames::new(name)?;
        let store = Store::connect(postgres, &names.postgres_schema(), 2)
            .await
            .with_context(|| format!("connecting to PostgreSQL for experiment {name}"))?;
        let experiment = data::load(&store, name)
            .await
            .with_context(|| format!("reading experiment {name}'s results (has it run?)"))?;
        anyhow::ensure!(
            experiment.summary.windows > 0,
            "experiment {name} has no stored windows in schema {}; run it first",
            names.postgres_schema()
        );
        loaded.push(experiment);
        store.pool().close().await;
    }
    let figures = render::figures(&loaded);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut plots = Vec::new();
    for figure in &figures {
        let path = out.join(format!("{}.svg", figure.stem));
        std::fs::write(&path, &figure.svg).with_context(|| format!("writing {}", path.display()))?;
        plots.push(path);
    }
    let markdown = out.join("report.md");
    std::fs::write(&markdown, render::markdown(title, &loaded, &figures))
        .with_context(|| format!("writing {}", markdown.display()))?;
    let html = out.join("report.html");
    std::fs::write(&html, render::html(title, &loaded, &figures))
        .with_context(|| format!("writing {}", html.display()))?;
    Ok(Written {
        markdown,
        html,
        plots,
    })
}
