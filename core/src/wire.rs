//! Messages between the workloads (JSON on MQTT and Pulsar), and how a sensor message is judged.

use crate::reading::{DeviceId, InvalidReading, Reading};
use crate::window::Window;
use serde::{Deserialize, Serialize};

/// A window on the `windows` topic: emitted by the windower (Streaming) or sent by a smart
/// sensor as its minute's batch (Batching).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowMessage {
    /// The window.
    #[serde(flatten)]
    pub window: Window,
    /// When it was emitted (windower) or published (sensor), epoch milliseconds.
    pub emitted_ms: i64,
}

/// A sensor saying it has sent all its data: the device's open windows can fire, as when a
/// bounded Flink source finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndOfStream {
    /// The device.
    pub sensor_id: DeviceId,
    /// Always true; tells the message apart from a reading.
    pub end_of_stream: bool,
    /// How many readings the device sent.
    pub readings_sent: u64,
    /// When it was published, epoch milliseconds.
    pub message_creation_time: i64,
}

/// A reading that came after its window fired, on the `late` topic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LateMessage {
    /// The reading.
    #[serde(flatten)]
    pub reading: Reading,
    /// Start of the window it belonged to, epoch seconds.
    pub window_start: i64,
    /// The device's watermark when it arrived, epoch milliseconds.
    pub watermark_ms: i64,
}

/// A message that could not be processed, on the `dead-letter` topic with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The workload that gave up on it.
    pub stage: String,
    /// Where it came from (MQTT or Pulsar topic).
    pub source: String,
    /// Why it was refused.
    pub reason: String,
    /// The payload as received (lossy UTF-8).
    pub payload: String,
}

impl DeadLetter {
    /// A letter from `stage` about a message from `source`, keeping its payload as lossy UTF-8.
    pub fn new(stage: &str, source: impl Into<String>, reason: impl Into<String>, payload: &[u8]) -> Self {
        Self {
            stage: stage.to_owned(),
            source: source.into(),
            reason: reason.into(),
            payload: String::from_utf8_lossy(payload).into_owned(),
        }
    }
}

/// A request to retrain a device's model on the readings stored for `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrainRequest {
    /// The device.
    pub device: DeviceId,
    /// First second of the data, epoch seconds.
    pub from: i64,
    /// End of the data (exclusive), epoch seconds.
    pub to: i64,
}

/// A new model for a device, announced on `models` once its files and row are stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelAnnouncement {
    /// The device.
    pub device: DeviceId,
    /// `initial` or `{from}-{to}`.
    pub version: String,
    /// Where its files are in the models bucket.
    pub object_prefix: String,
}

/// What a streaming sensor's MQTT message turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum SensorPayload {
    /// A valid reading, with the sensor's sequence number when it sends one.
    Reading(Reading, Option<Sequence>),
    /// A sensor finished.
    EndOfStream(EndOfStream),
}

/// Why a message was refused; becomes the dead letter's reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    /// Not JSON of the expected shape.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A reading with an impossible value.
    #[error("invalid reading: {0}")]
    Invalid(#[from] InvalidReading),
    /// A device the experiment does not have.
    #[error("unknown device {0} (the experiment has devices 1..={1})")]
    UnknownDevice(DeviceId, u32),
    /// A batch whose readings do not fit its window.
    #[error("inconsistent batch: {0}")]
    InconsistentBatch(String),
}

/// Checks a device id against the experiment's device count.
pub fn check_device(device: DeviceId, devices: u32) -> Result<(), Refused> {
    if device.0 == 0 || device.0 > devices {
        return Err(Refused::UnknownDevice(device, devices));
    }
    Ok(())
}

/// Parses a streaming sensor's message: a reading or an end-of-stream marker.
pub fn parse_sensor_payload(payload: &[u8], devices: u32) -> Result<SensorPayload, Refused> {
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|error| Refused::Malformed(error.to_string()))?;
    if value.get("end_of_stream").is_some() {
        let end: EndOfStream =
            serde_json::from_value(value).map_err(|error| Refused::Malformed(error.to_string()))?;
        check_device(end.sensor_id, devices)?;
        return Ok(SensorPayload::EndOfStream(end));
    }
    let seq = match value.get("seq") {
        None => None,
        Some(seq) => Some(Sequence(seq.as_u64().ok_or_else(|| {
            Refused::Malformed(format!("seq is not a non-negative integer ({seq})"))
        })?)),
    };
    let reading: Reading =
        serde_json::from_value(value).map_err(|error| Refused::Malformed(error.to_string()))?;
    reading.validate()?;
    check_device(reading.device, devices)?;
    Ok(SensorPayload::Reading(reading, seq))
}

/// A reading's place in its device's replay (0 for the device's first row): the same reading
/// re-sent or redelivered carries the same number, so a stage can tell a copy from a new
/// reading of the same second. Optional on the wire (`seq`); the original sensors sent none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sequence(pub u64);

/// A reading as a wattcast sensor sends it: the original fields and its sequence number.
#[derive(Debug, Serialize)]
pub struct SequencedReading<'a> {
    /// The reading, in the original field names.
    #[serde(flatten)]
    pub reading: &'a Reading,
    /// Its place in the device's replay.
    pub seq: Sequence,
}

/// Parses a smart sensor's batch and checks that it is a consistent window of a known device.
pub fn parse_batch(payload: &[u8], devices: u32) -> Result<WindowMessage, Refused> {
    let message: WindowMessage =
        serde_json::from_slice(payload).map_err(|error| Refused::Malformed(error.to_string()))?;
    let window = &message.window;
    check_device(window.device, devices)?;
    if window.end <= window.start || window.expected as i64 != window.end - window.start {
        return Err(Refused::InconsistentBatch(format!(
            "window [{}, {}) with {} expected readings",
            window.start, window.end, window.expected
        )));
    }
    for reading in &window.readings {
        reading.validate()?;
        if reading.device != window.device
            || reading.event_time < window.start
            || reading.event_time >= window.end
        {
            return Err(Refused::InconsistentBatch(format!(
                "reading of device {} at {} does not belong to device {}'s window [{}, {})",
                reading.device, reading.event_time, window.device, window.start, window.end
            )));
        }
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_and_end_markers_are_told_apart() {
        let reading = br#"{"sensor_id":2,"sensor_energy_value":615.3,"sensor_timestamp":1765152000,"message_creation_time":1}"#;
        assert!(
            matches!(parse_sensor_payload(reading, 2), Ok(SensorPayload::Reading(r, None)) if r.device == DeviceId(2))
        );
        let sequenced = serde_json::to_vec(&SequencedReading {
            reading: &Reading::new(DeviceId(2), 1_765_152_000, 615.3),
            seq: Sequence(41),
        })
        .unwrap();
        assert!(
            matches!(parse_sensor_payload(&sequenced, 2), Ok(SensorPayload::Reading(r, Some(Sequence(41)))) if r.event_time == 1_765_152_000)
        );
        let end = br#"{"sensor_id":1,"end_of_stream":true,"readings_sent":900,"message_creation_time":5}"#;
        assert!(
            matches!(parse_sensor_payload(end, 2), Ok(SensorPayload::EndOfStream(e)) if e.readings_sent == 900)
        );
    }

    #[test]
    fn bad_sensor_messages_are_refused_with_a_reason() {
        let cases: [(&[u8], &str); 6] = [
            (
                br#"{"sensor_id":1,"sensor_energy_value":4.0,"sensor_timestamp":5,"seq":-1}"#,
                "malformed: seq is not a non-negative integer (-1)",
            ),
            (b"not json", "malformed: expected ident"),
            (br#"{"sensor_id":1}"#, "malformed: missing field"),
            (
                br#"{"sensor_id":1,"sensor_energy_value":-4.0,"sensor_timestamp":5}"#,
                "invalid reading: sensor_energy_value is negative",
            ),
            (
                br#"{"sensor_id":9,"sensor_energy_value":4.0,"sensor_timestamp":5}"#,
                "unknown device 9 (the experiment has devices 1..=2)",
            ),
            (
                br#"{"sensor_id":0,"sensor_energy_value":4.0,"sensor_timestamp":5}"#,
                "unknown device 0",
            ),
        ];
        for (payload, reason) in cases {
            let refused = parse_sensor_payload(payload, 2).unwrap_err().to_string();
            assert!(
                refused.starts_with(reason),
                "{refused} should start with {reason}"
            );
        }
    }

    #[test]
    fn batches_must_be_consistent_windows() {
        let window = |start: i64, times: &[i64]| WindowMessage {
            window: Window {
                device: DeviceId(1),
                start,
                end: start + 60,
                readings: times.iter().map(|t| Reading::new(DeviceId(1), *t, 1.0)).collect(),
                expected: 60,
                late: 0,
            },
            emitted_ms: 0,
        };
        let good = serde_json::to_vec(&window(60, &[60, 119])).unwrap();
        assert_eq!(parse_batch(&good, 1).unwrap(), window(60, &[60, 119]));
        let outside = serde_json::to_vec(&window(60, &[120])).unwrap();
        assert!(matches!(
            parse_batch(&outside, 1),
            Err(Refused::InconsistentBatch(_))
        ));
        assert!(matches!(parse_batch(&good, 0), Err(Refused::UnknownDevice(..))));
    }
}
