//! One power reading of one device, and its JSON wire format (the original field names).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A device (sensor) identifier, as in the original CSVs (`sensor_id` / `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceId(pub u32);

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One apparent-power reading.
///
/// On the wire it is the original project's JSON:
/// `{"sensor_id":1,"sensor_energy_value":695.3,"sensor_timestamp":1765152003,"message_creation_time":1765152003120}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The device that measured it.
    #[serde(rename = "sensor_id")]
    pub device: DeviceId,
    /// When it was measured (event time), epoch seconds.
    #[serde(rename = "sensor_timestamp")]
    pub event_time: i64,
    /// Apparent power in watts.
    #[serde(rename = "sensor_energy_value")]
    pub power_w: f64,
    /// When the sensor published it, epoch milliseconds; `None` until it is published.
    #[serde(
        rename = "message_creation_time",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub published_ms: Option<i64>,
}

/// Why a reading is not acceptable input for the pipeline.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidReading {
    /// The power value is NaN or infinite.
    #[error("sensor_energy_value is not a finite number ({0})")]
    NotFinite(f64),
    /// Apparent power cannot be negative.
    #[error("sensor_energy_value is negative ({0} W)")]
    Negative(f64),
    /// The event time is before 1970 (almost certainly a unit or parsing error).
    #[error("sensor_timestamp is before the epoch ({0})")]
    BeforeEpoch(i64),
}

impl Reading {
    /// A reading that has not been published yet.
    pub fn new(device: DeviceId, event_time: i64, power_w: f64) -> Self {
        Self {
            device,
            event_time,
            power_w,
            published_ms: None,
        }
    }

    /// Checks the values a sensor could get wrong: power must be finite and non-negative,
    /// and the event time must not be before the epoch.
    pub fn validate(&self) -> Result<(), InvalidReading> {
        if !self.power_w.is_finite() {
            return Err(InvalidReading::NotFinite(self.power_w));
        }
        if self.power_w < 0.0 {
            return Err(InvalidReading::Negative(self.power_w));
        }
        if self.event_time < 0 {
            return Err(InvalidReading::BeforeEpoch(self.event_time));
        }
        Ok(())
    }

    /// Event time in epoch milliseconds, the unit Flink's watermarks work in.
    pub fn event_time_ms(&self) -> i64 {
        self.event_time * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_uses_the_original_field_names() {
        let reading = Reading {
            device: DeviceId(1),
            event_time: 1_765_152_003,
            power_w: 695.3,
            published_ms: Some(1_765_152_003_120),
        };
        let json = serde_json::to_value(reading).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "sensor_id": 1,
                "sensor_timestamp": 1_765_152_003_i64,
                "sensor_energy_value": 695.3,
                "message_creation_time": 1_765_152_003_120_i64,
            })
        );
        let back: Reading = serde_json::from_value(json).unwrap();
        assert_eq!(back, reading);
    }

    #[test]
    fn publish_time_is_optional_on_the_wire() {
        let reading: Reading =
            serde_json::from_str(r#"{"sensor_id":7,"sensor_energy_value":600.0,"sensor_timestamp":60}"#)
                .unwrap();
        assert_eq!(reading, Reading::new(DeviceId(7), 60, 600.0));
        assert!(
            !serde_json::to_string(&reading)
                .unwrap()
                .contains("message_creation_time")
        );
    }

    #[test]
    fn validation_refuses_nan_negative_and_pre_epoch() {
        let ok = Reading::new(DeviceId(1), 0, 0.0);
        assert_eq!(ok.validate(), Ok(()));
        assert!(matches!(
            Reading::new(DeviceId(1), 5, f64::NAN).validate(),
            Err(InvalidReading::NotFinite(_))
        ));
        assert_eq!(
            Reading::new(DeviceId(1), 5, -1.5).validate(),
            Err(InvalidReading::Negative(-1.5))
        );
        assert_eq!(
            Reading::new(DeviceId(1), -5, 1.0).validate(),
            Err(InvalidReading::BeforeEpoch(-5))
        );
    }
}
