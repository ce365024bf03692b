//! `wattcast report EXPERIMENT… --out DIR`: the experiments' results as Markdown, HTML and SVG.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use wattcast::report::write_report;
use wattcast_io::services::{PostgresEndpoint, ServiceEnv, find_test_env_file};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The experiments to report on, side by side (their names, as in metadata.name).
    #[arg(required = true)]
    experiments: Vec<String>,
    /// Where to write report.md, report.html and the plots.
    #[arg(long)]
    out: PathBuf,
    /// PostgreSQL holding the experiments' schemas (default: WATTCAST_POSTGRES_URL, or the test
    /// env's).
    #[arg(long, env = "WATTCAST_POSTGRES_URL")]
    postgres: Option<String>,
    /// The report's title.
    #[arg(long, default_value = "wattcast experiment report")]
    title: String,
}

pub fn run(args: ReportArgs) -> Result<()> {
    let postgres = match args.postgres {
        Some(url) => PostgresEndpoint::new(url),
        None => {
            let env_file = std::env::current_dir()
                .ok()
                .and_then(|dir| find_test_env_file(&dir));
            ServiceEnv::load(env_file.as_deref())?.postgres().context(
                "no --postgres given and no WATTCAST_POSTGRES_URL (start the test env with `make test-env`)",
            )?
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let written = runtime.block_on(write_report(&postgres, &args.experiments, &args.title, &args.out))?;
    println!("{}", written.markdown.display());
    println!("{}", written.html.display());
    for plot in &written.plots {
        println!("{}", plot.display());
    }
    Ok(())
}
