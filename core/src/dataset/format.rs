//! The two CSV layouts of the original project and how to recognise them from a header.

use serde::{Deserialize, Serialize};

/// A CSV layout of the original project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CsvFormat {
    /// `sensor_timestamp,sensor_id,sensor_energy_value` with `2025-12-08 00:00:03` (UTC) or epoch seconds.
    InOrder,
    /// `id,aprt_power,timestamp` with `2025-12-08 00:00:03+00`.
    MissingTimestamps,
}

/// Where the three fields sit in a file's rows, and the names its header gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// The layout the header names belong to.
    pub format: CsvFormat,
    /// Index of the device id column.
    pub device: usize,
    /// Index of the event time column.
    pub time: usize,
    /// Index of the apparent power column.
    pub power: usize,
}

impl CsvFormat {
    /// The header the format writes: names in column order.
    pub fn header(self) -> [&'static str; 3] {
        match self {
            Self::InOrder => ["sensor_timestamp", "sensor_id", "sensor_energy_value"],
            Self::MissingTimestamps => ["id", "aprt_power", "timestamp"],
        }
    }

    /// Header names of the (device, time, power) fields, for error messages.
    pub fn field_names(self) -> FieldNames {
        match self {
            Self::InOrder => FieldNames {
                device: "sensor_id",
                time: "sensor_timestamp",
                power: "sensor_energy_value",
            },
            Self::MissingTimestamps => FieldNames {
                device: "id",
                time: "timestamp",
                power: "aprt_power",
            },
        }
    }

    /// Finds the columns of one of the known layouts in a header, in any column order.
    pub fn detect<'a>(header: impl IntoIterator<Item = &'a str>) -> Option<Columns> {
        let names: Vec<String> = header
            .into_iter()
            .map(|name| name.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        [Self::InOrder, Self::MissingTimestamps]
            .into_iter()
            .find_map(|format| {
                let fields = format.field_names();
                let position = |wanted: &str| names.iter().position(|name| name == wanted);
                Some(Columns {
                    format,
                    device: position(fields.device)?,
                    time: position(fields.time)?,
                    power: position(fields.power)?,
                })
            })
    }
}

/// The header names a format uses for the device, time and power fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldNames {
    /// Device id column name.
    pub device: &'static str,
    /// Event time column name.
    pub time: &'static str,
    /// Apparent power column name.
    pub power: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_both_layouts() {
        let in_order = CsvFormat::detect(["sensor_timestamp", "sensor_id", "sensor_energy_value"]);
        assert_eq!(
            in_order,
            Some(Columns {
                format: CsvFormat::InOrder,
                device: 1,
                time: 0,
                power: 2
            })
        );
        let missing = CsvFormat::detect(["id", "aprt_power", "timestamp"]);
        assert_eq!(
            missing,
            Some(Columns {
                format: CsvFormat::MissingTimestamps,
                device: 0,
                time: 2,
                power: 1
            })
        );
    }

    #[test]
    fn detection_tolerates_reordering_case_and_bom() {
        let columns = CsvFormat::detect(["\u{feff}Timestamp", "ID", " aprt_power "]).unwrap();
        assert_eq!(columns.format, CsvFormat::MissingTimestamps);
        assert_eq!((columns.device, columns.time, columns.power), (1, 0, 2));
    }

    #[test]
    fn unknown_headers_are_not_guessed() {
        assert_eq!(CsvFormat::detect(["time", "device", "watts"]), None);
        assert_eq!(CsvFormat::detect(["id", "aprt_power"]), None);
    }
}
