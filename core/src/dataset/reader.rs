//! Reading a dataset CSV into readings, with errors that name the file, line and field.

use super::format::{Columns, CsvFormat};
use super::timestamp::parse_epoch_seconds;
use crate::reading::{DeviceId, InvalidReading, Reading};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What to do with a row that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BadRowPolicy {
    /// Stop at the first bad row with an error naming it (the default).
    #[default]
    FailFast,
    /// Leave bad rows out, count them and keep a few examples.
    Skip,
}

/// How many skipped rows are kept as examples; the rest are only counted.
pub const SKIPPED_EXAMPLES: usize = 20;

/// A row that could not be read: where it is and what was wrong with which field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{line}: field `{field}`: {problem}", path.display())]
pub struct RowError {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line number (the header is line 1).
    pub line: u64,
    /// The header name of the offending field (or `row` when the row itself is malformed).
    pub field: String,
    /// What was wrong.
    pub problem: String,
}

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened or read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The header matches neither layout of the original project.
    #[error(
        "{}:1: unrecognised header `{found}`; expected `sensor_timestamp,sensor_id,sensor_energy_value` or `id,aprt_power,timestamp`",
        path.display()
    )]
    UnknownHeader {
        /// The file.
        path: PathBuf,
        /// The header that was found.
        found: String,
    },
    /// A row could not be read (fail-fast policy).
    #[error(transparent)]
    Row(#[from] RowError),
}

/// The readings of a dataset file, in file (= arrival) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The layout the file was written in.
    pub format: CsvFormat,
    /// Every good row, in file order.
    pub readings: Vec<Reading>,
    /// How many rows were skipped (skip policy only).
    pub skipped: u64,
    /// The first [`SKIPPED_EXAMPLES`] skipped rows.
    pub skipped_examples: Vec<RowError>,
}

/// Reads a dataset file in either layout of the original project.
pub fn read_dataset(path: &Path, policy: BadRowPolicy) -> Result<Dataset, DatasetError> {
    let file = std::fs::File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_owned(),
        source,
    })?;
    read_dataset_from(std::io::BufReader::new(file), path, policy)
}

/// Reads a dataset from any reader; `path` names it in errors.
pub fn read_dataset_from(
    input: impl Read,
    path: &Path,
    policy: BadRowPolicy,
) -> Result<Dataset, DatasetError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let io_error = |error: csv::Error| DatasetError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(error),
    };
    let header = csv.headers().map_err(io_error)?.clone();
    let columns = CsvFormat::detect(header.iter()).ok_or_else(|| DatasetError::UnknownHeader {
        path: path.to_owned(),
        found: header.iter().collect::<Vec<_>>().join(","),
    })?;

    let mut dataset = Dataset {
        format: columns.format,
        readings: Vec::new(),
        skipped: 0,
        skipped_examples: Vec::new(),
    };
    let mut record = csv::ByteRecord::new();
    loop {
        let next_line = csv.position().line();
        let parsed = match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(next_line, |position| position.line());
                parse_row(&record, &columns).map_err(|fault| fault.at(path, line))
            }
            Err(error) => Err(RowError {
                path: path.to_owned(),
                line: error.position().map_or(next_line, |position| position.line()),
                field: "row".to_owned(),
                problem: error.to_string(),
            }),
        };
        match (parsed, policy) {
            (Ok(reading), _) => dataset.readings.push(reading),
            (Err(error), BadRowPolicy::FailFast) => return Err(error.into()),
            (Err(error), BadRowPolicy::Skip) => {
                dataset.skipped += 1;
                if dataset.skipped_examples.len() < SKIPPED_EXAMPLES {
                    dataset.skipped_examples.push(error);
                }
            }
        }
    }
    Ok(dataset)
}

/// A fault in one row, before it is placed in a file and line.
struct FieldFault {
    field: &'static str,
    problem: String,
}

impl FieldFault {
    fn at(self, path: &Path, line: u64) -> RowError {
        RowError {
            path: path.to_owned(),
            line,
            field: self.field.to_owned(),
            problem: self.problem,
        }
    }
}

fn parse_row(record: &csv::ByteRecord, columns: &Columns) -> Result<Reading, FieldFault> {
    let names = columns.format.field_names();
    let field = |index: usize, name: &'static str| -> Result<&str, FieldFault> {
        let bytes = record.get(index).ok_or_else(|| FieldFault {
            field: name,
            problem: format!("missing (the row has {} fields)", record.len()),
        })?;
        let text = std::str::from_utf8(bytes).map_err(|_| FieldFault {
            field: name,
            problem: "not valid UTF-8".to_owned(),
        })?;
        if text.is_empty() {
            return Err(FieldFault {
                field: name,
                problem: "empty".to_owned(),
            });
        }
        Ok(text)
    };

    let device_text = field(columns.device, names.device)?;
    let device = device_text.parse::<u32>().map_err(|_| FieldFault {
        field: names.device,
        problem: format!("expected a device number, found {}", Quoted(device_text)),
    })?;
    let time_text = field(columns.time, names.time)?;
    let event_time = parse_epoch_seconds(time_text).ok_or_else(|| FieldFault {
        field: names.time,
        problem: format!(
            "expected `2025-12-08 00:00:03[+00]` or epoch seconds, found {}",
            Quoted(time_text)
        ),
    })?;
    let power_text = field(columns.power, names.power)?;
    let power_w = power_text.parse::<f64>().map_err(|_| FieldFault {
        field: names.power,
        problem: format!("expected watts as a number, found {}", Quoted(power_text)),
    })?;

    let reading = Reading::new(DeviceId(device), event_time, power_w);
    reading.validate().map_err(|invalid| FieldFault {
        field: match invalid {
            InvalidReading::NotFinite(_) | InvalidReading::Negative(_) => names.power,
            InvalidReading::BeforeEpoch(_) => names.time,
        },
        problem: invalid.to_string(),
    })?;
    Ok(reading)
}

/// Shows a field's text in quotes, shortened if it is long.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LIMIT: usize = 40;
        match self.0.char_indices().nth(LIMIT) {
            Some((cut, _)) => write!(f, "\"{}…\"", &self.0[..cut]),
            None => write!(f, "\"{}\"", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, policy: BadRowPolicy) -> Result<Dataset, DatasetError> {
        read_dataset_from(text.as_bytes(), Path::new("data.csv"), policy)
    }

    #[test]
    fn reads_the_in_order_layout_with_datetimes_and_epoch_seconds() {
        let dataset = read(
            "sensor_timestamp,sensor_id,sensor_energy_value\n\
             2025-12-08 00:00:00,1,699.6\n\
             1765152001,1,710.8\n",
            BadRowPolicy::FailFast,
        )
        .unwrap();
        assert_eq!(dataset.format, CsvFormat::InOrder);
        assert_eq!(
            dataset.readings,
            vec![
                Reading::new(DeviceId(1), 1_765_152_000, 699.6),
                Reading::new(DeviceId(1), 1_765_152_001, 710.8),
            ]
        );
    }

    #[test]
    fn reads_the_missing_timestamp_layout_in_file_order() {
        let dataset = read(
            "id,aprt_power,timestamp\n\
             1,695.3,2025-12-08 00:00:03+00\n\
             1,701.2,2025-12-08 00:00:41+00\n\
             1,688.0,2025-12-08 00:00:05+00\n",
            BadRowPolicy::FailFast,
        )
        .unwrap();
        assert_eq!(dataset.format, CsvFormat::MissingTimestamps);
        let times: Vec<i64> = dataset
            .readings
            .iter()
            .map(|r| r.event_time - 1_765_152_000)
            .collect();
        assert_eq!(times, vec![3, 41, 5]);
    }

    #[test]
    fn bad_rows_name_file_line_and_field() {
        let cases = [
            (
                "1,abc,2025-12-08 00:00:03+00",
                "data.csv:3: field `aprt_power`: expected watts as a number, found \"abc\"",
            ),
            (
                "x,1.0,2025-12-08 00:00:03+00",
                "data.csv:3: field `id`: expected a device number, found \"x\"",
            ),
            (
                "1,1.0,2025-12-08",
                "data.csv:3: field `timestamp`: expected `2025-12-08 00:00:03[+00]` or epoch seconds, found \"2025-12-08\"",
            ),
            (
                "1,NaN,2025-12-08 00:00:03+00",
                "data.csv:3: field `aprt_power`: sensor_energy_value is not a finite number (NaN)",
            ),
            (
                "1,-3,2025-12-08 00:00:03+00",
                "data.csv:3: field `aprt_power`: sensor_energy_value is negative (-3 W)",
            ),
            (
                "1,,2025-12-08 00:00:03+00",
                "data.csv:3: field `aprt_power`: empty",
            ),
            (
                "1,2.0",
                "data.csv:3: field `timestamp`: missing (the row has 2 fields)",
            ),
        ];
        for (row, message) in cases {
            let text = format!("id,aprt_power,timestamp\n1,1.0,2025-12-08 00:00:02+00\n{row}\n");
            let error = read(&text, BadRowPolicy::FailFast).unwrap_err();
            assert_eq!(error.to_string(), message, "row {row:?}");
        }
    }

    #[test]
    fn skip_policy_keeps_good_rows_and_counts_bad_ones() {
        let dataset = read(
            "id,aprt_power,timestamp\n\
             1,1.0,2025-12-08 00:00:01+00\n\
             1,oops,2025-12-08 00:00:02+00\n\
             1,3.0,2025-12-08 00:00:03+00\n\
             1,4.0,never\n",
            BadRowPolicy::Skip,
        )
        .unwrap();
        assert_eq!(dataset.readings.len(), 2);
        assert_eq!(dataset.skipped, 2);
        let lines: Vec<u64> = dataset.skipped_examples.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 5]);
    }

    #[test]
    fn an_unknown_header_is_refused_with_what_was_expected() {
        let error = read("time,watts\n1,2\n", BadRowPolicy::Skip).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("data.csv:1: unrecognised header `time,watts`")
        );
    }

    #[test]
    fn reads_the_reference_data_of_the_original_project() {
        let repo =
            Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
                .join("..");
        let path = crate::dataset::thesis_data::thesis_device_csv(&repo, 2)
            .unwrap_or_else(|error| panic!("{error}"));
        let dataset = read_dataset(&path, BadRowPolicy::FailFast).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(dataset.readings.len(), 2400);
        assert!(dataset.readings.iter().all(|r| r.device == DeviceId(2)));
        assert_eq!(dataset.readings[0].event_time, 1_765_152_000);
        assert_eq!(dataset.readings[2399].event_time, 1_765_152_000 + 2399);
    }
}
