//! `wattcast dataset …`: generate datasets, summarise them, and preview their windows.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use wattcast_core::dataset::generate::{GapPattern, GenerateOptions, Scenario, generate};
use wattcast_core::dataset::{BadRowPolicy, Dataset, read_dataset, stats};
use wattcast_core::preview::preview;
use wattcast_core::windowing::{WatermarkStrategy, WindowConfig};

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Write a deterministic dataset: one CSV per device in the original project's layout.
    Generate(GenerateArgs),
    /// Replay a CSV in file (= arrival) order through the windowing engine; print each window
    /// as a JSON line, then a summary line.
    Window(WindowArgs),
    /// Print per-device statistics of a CSV (gaps per minute, out-of-order arrivals) as JSON lines.
    Stats(StatsArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// In-order data, or the original's missing-timestamp pattern.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Number of devices (1..=N).
    #[arg(long, default_value_t = 1)]
    devices: u32,
    /// Length of the data, whole minutes (e.g. `2h`, `15m`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2h")]
    duration: Duration,
    /// Seed: the same seed and options give the same files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Delay each reading's arrival by a random 0..jitter (e.g. `8s`), so readings cross minute
    /// boundaries.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    jitter: Duration,
    /// First second of the data (RFC 3339).
    #[arg(long, default_value = "2025-12-08T00:00:00Z")]
    start: String,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct InputArgs {
    /// The CSV file (either layout of the original project).
    #[arg(long)]
    input: PathBuf,
    /// What to do with a bad row: stop (default) or skip it and count it.
    #[arg(long, value_enum, default_value_t = BadRowPolicy::FailFast)]
    on_bad_row: BadRowPolicy,
}

#[derive(Debug, Args)]
pub struct WindowArgs {
    #[command(flatten)]
    input: InputArgs,
    /// `monotonous` or `bounded:<duration>` (e.g. `bounded:5s`).
    #[arg(long, default_value = "monotonous")]
    watermark: WatermarkStrategy,
    /// Fire a device's open windows after it sent nothing for this long (simulated processing time).
    #[arg(long, value_parser = humantime::parse_duration)]
    idle_timeout: Option<Duration>,
    /// Window size.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    window: Duration,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    input: InputArgs,
}

/// The last line of `dataset window`: `{"summary":{…}}`, fields in declaration order.
#[derive(serde::Serialize)]
struct SummaryLine<'a> {
    summary: &'a wattcast_core::preview::PreviewSummary,
}

pub fn run(command: DatasetCommand) -> Result<()> {
    match command {
        DatasetCommand::Generate(args) => run_generate(args),
        DatasetCommand::Window(args) => run_window(args),
        DatasetCommand::Stats(args) => run_stats(args),
    }
}

fn run_generate(args: GenerateArgs) -> Result<()> {
    let seconds = args.duration.as_secs();
    if seconds == 0 || !seconds.is_multiple_of(60) || args.duration.subsec_nanos() != 0 {
        bail!(
            "--duration must be a positive whole number of minutes (got {})",
            humantime::format_duration(args.duration)
        );
    }
    if args.devices == 0 {
        bail!("--devices must be at least 1");
    }
    let start = chrono::DateTime::parse_from_rfc3339(&args.start)
        .with_context(|| format!("--start `{}` is not an RFC 3339 time", args.start))?
        .timestamp();
    let options = GenerateOptions {
        scenario: args.scenario,
        devices: args.devices,
        minutes: u32::try_from(seconds / 60).context("--duration is too long")?,
        seed: args.seed,
        start,
        jitter_ms: u32::try_from(args.jitter.as_millis()).context("--jitter is too long")?,
        pattern: GapPattern::default(),
    };
    let manifest =
        generate(&options, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    let readings: u64 = manifest.files.iter().map(|f| f.stats.readings).sum();
    tracing::info!(files = manifest.files.len(), readings, out = %args.out.display(), "dataset written");
    Ok(())
}

fn load(input: &InputArgs) -> Result<Dataset> {
    let dataset = read_dataset(&input.input, input.on_bad_row)?;
    if dataset.skipped > 0 {
        tracing::warn!(skipped = dataset.skipped, file = %input.input.display(), "skipped bad rows");
        for example in &dataset.skipped_examples {
            tracing::warn!("{example}");
        }
    }
    Ok(dataset)
}

fn run_window(args: WindowArgs) -> Result<()> {
    let config = WindowConfig::new(args.window, args.watermark, args.idle_timeout)?;
    let dataset = load(&args.input)?;
    let result = preview(&dataset.readings, config);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in &result.windows {
        serde_json::to_writer(&mut out, line)?;
        writeln!(out)?;
    }
    serde_json::to_writer(
        &mut out,
        &SummaryLine {
            summary: &result.summary,
        },
    )?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

fn run_stats(args: StatsArgs) -> Result<()> {
    let dataset = load(&args.input)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for summary in stats::summarise(&dataset.readings) {
        serde_json::to_writer(&mut out, &summary)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}
