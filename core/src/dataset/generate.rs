//! The dataset generator: in-order data, or the original's missing-timestamp arrival pattern,
//! optionally with per-reading arrival jitter.

use super::format::CsvFormat;
use super::signal::{DeviceProfile, DeviceSignal};
use super::writer::write_dataset;
use crate::reading::{DeviceId, Reading};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// 2025-12-08 00:00:00 UTC, where the original data starts.
pub const DEFAULT_START: i64 = 1_765_152_000;

/// Which kind of data to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Every second of every minute, in time order.
    InOrder,
    /// The original's pattern: 5–15 seconds of each minute missing, each minute's readings
    /// arriving as 2–4 interleaved runs, and in ~30 % of minutes one run deferred 1–3 minutes.
    MissingTimestamps,
}

impl Scenario {
    /// The CSV layout the original project used for this kind of data.
    pub fn format(self) -> CsvFormat {
        match self {
            Self::InOrder => CsvFormat::InOrder,
            Self::MissingTimestamps => CsvFormat::MissingTimestamps,
        }
    }

    fn file_stem(self) -> &'static str {
        match self {
            Self::InOrder => "in_order",
            Self::MissingTimestamps => "missing_timestamps",
        }
    }
}

/// The parameters of the missing-timestamp pattern (the original's values by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GapPattern {
    /// Fewest seconds dropped from a minute.
    pub min_missing: usize,
    /// Most seconds dropped from a minute.
    pub max_missing: usize,
    /// Fewest runs a minute's readings arrive in.
    pub min_runs: usize,
    /// Most runs a minute's readings arrive in.
    pub max_runs: usize,
    /// Probability that one run of a minute is deferred.
    pub defer_probability: f64,
    /// Most minutes a run is deferred by (at least one).
    pub max_defer_minutes: usize,
}

impl Default for GapPattern {
    fn default() -> Self {
        Self {
            min_missing: 5,
            max_missing: 15,
            min_runs: 2,
            max_runs: 4,
            defer_probability: 0.3,
            max_defer_minutes: 3,
        }
    }
}

/// Everything that determines a generated dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateOptions {
    /// In-order or missing-timestamp data.
    pub scenario: Scenario,
    /// Devices 1..=devices are generated.
    pub devices: u32,
    /// Length of the data in whole minutes.
    pub minutes: u32,
    /// The seed; the same options always give the same files.
    pub seed: u64,
    /// First second of the data, epoch seconds.
    pub start: i64,
    /// Each reading's arrival is delayed by a uniform random 0..jitter, in milliseconds.
    pub jitter_ms: u32,
    /// The missing-timestamp pattern (ignored for in-order data).
    pub pattern: GapPattern,
}

/// What the generator did to one device's data, from its own bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceStats {
    /// Readings written.
    pub readings: u64,
    /// Seconds dropped in all.
    pub missing: u64,
    /// Fewest seconds dropped from one minute.
    pub min_missing_per_minute: u64,
    /// Most seconds dropped from one minute.
    pub max_missing_per_minute: u64,
    /// Runs deferred to a later minute.
    pub deferred_runs: u64,
    /// Readings in deferred runs.
    pub deferred_readings: u64,
}

/// One device's generated data.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceData {
    /// The device.
    pub device: DeviceId,
    /// Its readings in arrival (file) order.
    pub readings: Vec<Reading>,
    /// What the generator did.
    pub stats: DeviceStats,
}

/// A written file of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The device.
    pub device: DeviceId,
    /// File name inside the output directory.
    pub file: String,
    /// What the generator did.
    pub stats: DeviceStats,
}

/// `manifest.json`: the options and what was written, so a dataset documents itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The options the data was made with.
    pub options: GenerateOptions,
    /// The CSV layout of the files.
    pub format: CsvFormat,
    /// One entry per device.
    pub files: Vec<ManifestEntry>,
}

/// Generates one device's data. Its values depend only on the seed and the device, so the
/// in-order and missing-timestamp data of a seed share the same signal.
pub fn generate_device(options: &GenerateOptions, device: DeviceId) -> DeviceData {
    let mut signal_rng = device_rng(options.seed, device, 0);
    let mut pattern_rng = device_rng(options.seed, device, 1);
    let mut signal = DeviceSignal::new(DeviceProfile::draw(&mut signal_rng));
    let seconds = i64::from(options.minutes) * 60;
    let readings: Vec<Reading> = (0..seconds)
        .map(|offset| {
            let event_time = options.start + offset;
            Reading::new(device, event_time, signal.next(&mut signal_rng, event_time))
        })
        .collect();

    let (blocks, mut stats) = match options.scenario {
        Scenario::InOrder => (in_order_blocks(&readings), DeviceStats::default()),
        Scenario::MissingTimestamps => {
            missing_timestamp_blocks(&readings, &options.pattern, &mut pattern_rng)
        }
    };
    let readings = arrival_order(blocks, options.jitter_ms, &mut pattern_rng);
    stats.readings = readings.len() as u64;
    DeviceData {
        device,
        readings,
        stats,
    }
}

/// Generates every device's data into `out_dir` (one CSV per device) plus `manifest.json`.
pub fn generate(options: &GenerateOptions, out_dir: &Path) -> std::io::Result<Manifest> {
    std::fs::create_dir_all(out_dir)?;
    let format = options.scenario.format();
    let mut files = Vec::new();
    for id in 1..=options.devices {
        let data = generate_device(options, DeviceId(id));
        let file = format!("device_{id}_{}.csv", options.scenario.file_stem());
        write_dataset(&out_dir.join(&file), format, &data.readings)?;
        files.push(ManifestEntry {
            device: data.device,
            file,
            stats: data.stats,
        });
    }
    let manifest = Manifest {
        options: options.clone(),
        format,
        files,
    };
    let json = serde_json::to_string_pretty(&manifest).map_err(std::io::Error::other)?;
    std::fs::write(manifest_path(out_dir), json + "\n")?;
    Ok(manifest)
}

/// Where `generate` writes the manifest.
pub fn manifest_path(out_dir: &Path) -> PathBuf {
    out_dir.join("manifest.json")
}

fn device_rng(seed: u64, device: DeviceId, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::from(device.0) * 2 + purpose);
    rng
}

/// A group of readings that arrive together, with the nominal arrival time (ms) of its first
/// reading and the time its readings spread over.
struct ArrivalBlock {
    start_ms: i64,
    span_ms: i64,
    readings: Vec<Reading>,
}

fn in_order_blocks(readings: &[Reading]) -> Vec<ArrivalBlock> {
    readings
        .iter()
        .map(|reading| ArrivalBlock {
            start_ms: reading.event_time_ms(),
            span_ms: 1000,
            readings: vec![*reading],
        })
        .collect()
}

/// Applies the original's pattern minute by minute.
fn missing_timestamp_blocks(
    readings: &[Reading],
    pattern: &GapPattern,
    rng: &mut ChaCha8Rng,
) -> (Vec<ArrivalBlock>, DeviceStats) {
    let mut stats = DeviceStats {
        min_missing_per_minute: u64::MAX,
        ..DeviceStats::default()
    };
    let mut deferred: BTreeMap<usize, Vec<Vec<Reading>>> = BTreeMap::new();
    let mut blocks = Vec::new();
    let minutes: Vec<&[Reading]> = readings
        .chunk_by(|a, b| a.event_time.div_euclid(60) == b.event_time.div_euclid(60))
        .collect();

    for (index, minute) in minutes.iter().enumerate() {
        let missing = rng
            .random_range(pattern.min_missing..=pattern.max_missing)
            .min(minute.len().saturating_sub(1));
        let mut dropped = sample(rng, minute.len(), missing).into_vec();
        dropped.sort_unstable();
        let kept: Vec<Reading> = minute
            .iter()
            .enumerate()
            .filter(|(position, _)| dropped.binary_search(position).is_err())
            .map(|(_, reading)| *reading)
            .collect();
        stats.missing += missing as u64;
        stats.min_missing_per_minute = stats.min_missing_per_minute.min(missing as u64);
        stats.max_missing_per_minute = stats.max_missing_per_minute.max(missing as u64);

        let mut runs = split_into_runs(kept, pattern, rng);
        if runs.len() > 1 && rng.random_bool(pattern.defer_probability) {
            let run = runs.remove(rng.random_range(0..runs.len()));
            let delay = rng.random_range(1..=pattern.max_defer_minutes.max(1));
            stats.deferred_runs += 1;
            stats.deferred_readings += run.len() as u64;
            deferred.entry(index + delay).or_default().push(run);
        }
        runs.extend(deferred.remove(&index).unwrap_or_default());
        blocks.push(ArrivalBlock {
            start_ms: minute[0].event_time.div_euclid(60) * 60_000,
            span_ms: 60_000,
            readings: interleave(runs, rng),
        });
    }
    // Runs deferred past the end arrive after the last minute: nothing generated is lost.
    let mut next_start = blocks.last().map_or(0, |block| block.start_ms + 60_000);
    for (_, runs) in deferred {
        blocks.push(ArrivalBlock {
            start_ms: next_start,
            span_ms: 60_000,
            readings: interleave(runs, rng),
        });
        next_start += 60_000;
    }
    if stats.min_missing_per_minute == u64::MAX {
        stats.min_missing_per_minute = 0;
    }
    (blocks, stats)
}

/// Cuts a minute's readings (in time order) into 2–4 contiguous, non-empty runs.
fn split_into_runs(kept: Vec<Reading>, pattern: &GapPattern, rng: &mut ChaCha8Rng) -> Vec<Vec<Reading>> {
    let wanted = rng
        .random_range(pattern.min_runs..=pattern.max_runs)
        .min(kept.len())
        .max(1);
    let mut cuts = sample(rng, kept.len().saturating_sub(1), wanted - 1)
        .into_iter()
        .map(|cut| cut + 1)
        .collect::<Vec<_>>();
    cuts.sort_unstable();
    let mut runs = Vec::with_capacity(wanted);
    let mut rest = kept;
    for cut in cuts.into_iter().rev() {
        runs.push(rest.split_off(cut));
    }
    runs.push(rest);
    runs.reverse();
    runs
}

/// Merges runs by repeatedly taking the next reading of a random run: each run keeps its order.
fn interleave(runs: Vec<Vec<Reading>>, rng: &mut ChaCha8Rng) -> Vec<Reading> {
    let total = runs.iter().map(Vec::len).sum();
    let mut cursors: Vec<std::vec::IntoIter<Reading>> = runs.into_iter().map(Vec::into_iter).collect();
    let mut merged = Vec::with_capacity(total);
    while !cursors.is_empty() {
        let pick = rng.random_range(0..cursors.len());
        match cursors[pick].next() {
            Some(reading) => merged.push(reading),
            None => {
                cursors.swap_remove(pick);
            }
        }
    }
    merged
}

/// Flattens the blocks into arrival order. With jitter, each reading's nominal arrival time
/// (its block's start plus its share of the block's span) is delayed by a random 0..jitter and
/// the readings are re-ordered by that time, so readings cross minute boundaries.
fn arrival_order(blocks: Vec<ArrivalBlock>, jitter_ms: u32, rng: &mut ChaCha8Rng) -> Vec<Reading> {
    if jitter_ms == 0 {
        return blocks.into_iter().flat_map(|block| block.readings).collect();
    }
    let mut timed: Vec<(i64, Reading)> = Vec::new();
    for block in blocks {
        let count = block.readings.len() as i64;
        for (position, reading) in block.readings.into_iter().enumerate() {
            let nominal = block.start_ms + block.span_ms * position as i64 / count.max(1);
            timed.push((nominal + i64::from(rng.random_range(0..jitter_ms)), reading));
        }
    }
    timed.sort_by_key(|(arrival, _)| *arrival);
    timed.into_iter().map(|(_, reading)| reading).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    fn options(scenario: Scenario, minutes: u32, jitter_ms: u32) -> GenerateOptions {
        GenerateOptions {
            scenario,
            devices: 2,
            minutes,
            seed: 42,
            start: DEFAULT_START,
            jitter_ms,
            pattern: GapPattern::default(),
        }
    }

    #[test]
    fn in_order_data_has_every_second_in_order() {
        let data = generate_device(&options(Scenario::InOrder, 10, 0), DeviceId(1));
        let times: Vec<i64> = data.readings.iter().map(|r| r.event_time).collect();
        assert_eq!(times, (DEFAULT_START..DEFAULT_START + 600).collect::<Vec<_>>());
    }

    #[test]
    fn generation_is_deterministic_per_seed_and_device() {
        let opts = options(Scenario::MissingTimestamps, 30, 8000);
        assert_eq!(
            generate_device(&opts, DeviceId(1)),
            generate_device(&opts, DeviceId(1))
        );
        assert_ne!(
            generate_device(&opts, DeviceId(1)).readings,
            generate_device(&opts, DeviceId(2)).readings
        );
        let other_seed = GenerateOptions {
            seed: 43,
            ..opts.clone()
        };
        assert_ne!(
            generate_device(&opts, DeviceId(1)).readings,
            generate_device(&other_seed, DeviceId(1)).readings
        );
    }

    #[test]
    fn both_scenarios_share_the_signal_of_a_seed() {
        let in_order = generate_device(&options(Scenario::InOrder, 20, 0), DeviceId(1));
        let missing = generate_device(&options(Scenario::MissingTimestamps, 20, 0), DeviceId(1));
        let by_time: HashMap<i64, f64> = in_order
            .readings
            .iter()
            .map(|r| (r.event_time, r.power_w))
            .collect();
        for reading in &missing.readings {
            assert_eq!(by_time[&reading.event_time], reading.power_w);
        }
    }

    #[test]
    fn missing_timestamps_follow_the_original_pattern() {
        let minutes = 240;
        let data = generate_device(&options(Scenario::MissingTimestamps, minutes, 0), DeviceId(1));

        // No second appears twice, and 5–15 seconds are missing from every minute.
        let mut per_minute: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        for reading in &data.readings {
            assert!(
                per_minute
                    .entry(reading.event_time.div_euclid(60))
                    .or_default()
                    .insert(reading.event_time)
            );
        }
        assert_eq!(per_minute.len(), minutes as usize);
        for seconds in per_minute.values() {
            assert!(
                (45..=55).contains(&seconds.len()),
                "{} readings in a minute",
                seconds.len()
            );
        }
        assert_eq!(data.stats.min_missing_per_minute, 5);
        assert_eq!(data.stats.max_missing_per_minute, 15);

        // About 30 % of minutes defer one run.
        let deferred_share = data.stats.deferred_runs as f64 / f64::from(minutes);
        assert!(
            (0.2..0.4).contains(&deferred_share),
            "deferred share {deferred_share}"
        );

        // Readings arrive out of order inside minutes, and some arrive after a later minute's.
        let mut out_of_order = 0;
        let mut minutes_late = 0;
        let mut highest = i64::MIN;
        for reading in &data.readings {
            if reading.event_time < highest {
                out_of_order += 1;
                if highest - reading.event_time >= 60 {
                    minutes_late += 1;
                }
            }
            highest = highest.max(reading.event_time);
        }
        assert!(out_of_order > 1000, "out of order: {out_of_order}");
        assert!(minutes_late > 0);
    }

    #[test]
    fn runs_keep_their_order_when_interleaved() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let runs: Vec<Vec<Reading>> = (0..3)
            .map(|run| (0..10).map(|i| Reading::new(DeviceId(run), i, 0.0)).collect())
            .collect();
        let merged = interleave(runs, &mut rng);
        assert_eq!(merged.len(), 30);
        for run in 0..3 {
            let times: Vec<i64> = merged
                .iter()
                .filter(|r| r.device == DeviceId(run))
                .map(|r| r.event_time)
                .collect();
            assert_eq!(times, (0..10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn jitter_moves_readings_across_minute_boundaries_without_losing_any() {
        let plain = generate_device(&options(Scenario::InOrder, 30, 0), DeviceId(1));
        let jittered = generate_device(&options(Scenario::InOrder, 30, 8000), DeviceId(1));
        let mut sorted = jittered.readings.clone();
        sorted.sort_by_key(|r| r.event_time);
        assert_eq!(sorted, plain.readings);
        assert_ne!(jittered.readings, plain.readings);
        let crossings = jittered
            .readings
            .windows(2)
            .filter(|pair| pair[1].event_time.div_euclid(60) < pair[0].event_time.div_euclid(60))
            .count();
        assert!(crossings > 0);
    }

    #[test]
    fn writes_one_file_per_device_and_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = generate(&options(Scenario::MissingTimestamps, 5, 0), dir.path()).unwrap();
        assert_eq!(manifest.files.len(), 2);
        assert_eq!(manifest.files[0].file, "device_1_missing_timestamps.csv");
        let written: Manifest =
            serde_json::from_slice(&std::fs::read(manifest_path(dir.path())).unwrap()).unwrap();
        assert_eq!(written, manifest);
        let text = std::fs::read_to_string(dir.path().join("device_2_missing_timestamps.csv")).unwrap();
        assert!(text.starts_with("id,aprt_power,timestamp\n2,"));
        assert_eq!(text.lines().count() as u64, manifest.files[1].stats.readings + 1);
    }
}
