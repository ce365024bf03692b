//! Writing readings as a CSV in one of the original project's layouts.

use super::format::CsvFormat;
use super::timestamp::{format_plain, format_with_offset};
use crate::reading::Reading;
use std::io::Write;
use std::path::Path;

/// Writes readings, in the given order, to `path` in the given layout.
pub fn write_dataset(path: &Path, format: CsvFormat, readings: &[Reading]) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::new(file);
    write_rows(&mut out, format, readings)?;
    out.flush()
}

/// Writes the header and one row per reading to any writer.
pub fn write_rows(out: &mut impl Write, format: CsvFormat, readings: &[Reading]) -> std::io::Result<()> {
    writeln!(out, "{}", format.header().join(","))?;
    for reading in readings {
        match format {
            CsvFormat::InOrder => writeln!(
                out,
                "{},{},{:.1}",
                format_plain(reading.event_time),
                reading.device,
                reading.power_w
            )?,
            CsvFormat::MissingTimestamps => writeln!(
                out,
                "{},{:.1},{}",
                reading.device,
                reading.power_w,
                format_with_offset(reading.event_time)
            )?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::reader::{BadRowPolicy, read_dataset_from};
    use crate::reading::DeviceId;

    #[test]
    fn writes_the_original_layouts() {
        let readings = [Reading::new(DeviceId(1), 1_765_152_003, 695.3)];
        let mut in_order = Vec::new();
        write_rows(&mut in_order, CsvFormat::InOrder, &readings).unwrap();
        assert_eq!(
            String::from_utf8(in_order).unwrap(),
            "sensor_timestamp,sensor_id,sensor_energy_value\n2025-12-08 00:00:03,1,695.3\n"
        );
        let mut missing = Vec::new();
        write_rows(&mut missing, CsvFormat::MissingTimestamps, &readings).unwrap();
        assert_eq!(
            String::from_utf8(missing).unwrap(),
            "id,aprt_power,timestamp\n1,695.3,2025-12-08 00:00:03+00\n"
        );
    }

    #[test]
    fn what_is_written_reads_back() {
        let readings: Vec<Reading> = (0..5)
            .map(|i| Reading::new(DeviceId(3), 1_765_152_000 + 7 * i, 600.0 + i as f64 / 10.0))
            .collect();
        for format in [CsvFormat::InOrder, CsvFormat::MissingTimestamps] {
            let mut bytes = Vec::new();
            write_rows(&mut bytes, format, &readings).unwrap();
            let back =
                read_dataset_from(bytes.as_slice(), Path::new("x.csv"), BadRowPolicy::FailFast).unwrap();
            assert_eq!(back.format, format);
            assert_eq!(back.readings, readings);
        }
    }
}
