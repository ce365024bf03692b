//! Watermark strategies and their Flink semantics.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How the watermark follows the event times seen, as Flink's `WatermarkStrategy` does.
///
/// Flink's `forMonotonousTimestamps()` is `forBoundedOutOfOrderness(0)`: both give
/// watermark = highest event time seen − bound − 1 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "PascalCase")]
pub enum WatermarkStrategy {
    /// Event times are expected to rise: the watermark trails the highest one by 1 ms.
    Monotonous,
    /// Readings may arrive up to `max_out_of_orderness` behind the highest event time seen.
    BoundedOutOfOrderness {
        /// The bound.
        #[serde(with = "humantime_serde_compat")]
        max_out_of_orderness: Duration,
    },
}

impl WatermarkStrategy {
    /// The out-of-orderness bound in milliseconds (0 for monotonous).
    pub fn bound_ms(&self) -> i64 {
        match self {
            Self::Monotonous => 0,
            Self::BoundedOutOfOrderness { max_out_of_orderness } => {
                i64::try_from(max_out_of_orderness.as_millis()).unwrap_or(i64::MAX)
            }
        }
    }

    /// The watermark after seeing `max_event_ms` as the highest event time, as Flink's
    /// `BoundedOutOfOrdernessWatermarks.onPeriodicEmit` computes it.
    pub fn watermark_for(&self, max_event_ms: i64) -> i64 {
        max_event_ms.saturating_sub(self.bound_ms()).saturating_sub(1)
    }
}

/// Why a watermark strategy could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid watermark `{text}`: {reason} (expected `monotonous` or `bounded:<duration>`, e.g. `bounded:5s`)"
)]
pub struct ParseWatermarkError {
    text: String,
    reason: String,
}

impl FromStr for WatermarkStrategy {
    type Err = ParseWatermarkError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| ParseWatermarkError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        match text.trim().split_once(':') {
            None if text.trim().eq_ignore_ascii_case("monotonous") => Ok(Self::Monotonous),
            Some((kind, bound)) if kind.eq_ignore_ascii_case("bounded") => {
                let max_out_of_orderness =
                    humantime::parse_duration(bound.trim()).map_err(|error| fail(&error.to_string()))?;
                Ok(Self::BoundedOutOfOrderness { max_out_of_orderness })
            }
            _ => Err(fail("unknown strategy")),
        }
    }
}

impl fmt::Display for WatermarkStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Monotonous => write!(f, "monotonous"),
            Self::BoundedOutOfOrderness { max_out_of_orderness } => {
                write!(f, "bounded:{}", humantime::format_duration(*max_out_of_orderness))
            }
        }
    }
}

/// Serialises a `Duration` as a humantime string (`5s`).
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*duration))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_strategies() {
        assert_eq!("monotonous".parse(), Ok(WatermarkStrategy::Monotonous));
        let bounded: WatermarkStrategy = "bounded:5s".parse().unwrap();
        assert_eq!(bounded.bound_ms(), 5000);
        assert_eq!(bounded.to_string(), "bounded:5s");
        assert_eq!(
            "bounded:250ms".parse::<WatermarkStrategy>().unwrap().bound_ms(),
            250
        );
        let error = "bounded:soon".parse::<WatermarkStrategy>().unwrap_err();
        assert!(
            error.to_string().starts_with("invalid watermark `bounded:soon`"),
            "{error}"
        );
        assert!("punctuated".parse::<WatermarkStrategy>().is_err());
    }

    #[test]
    fn watermark_is_highest_event_time_minus_bound_minus_one_ms() {
        assert_eq!(WatermarkStrategy::Monotonous.watermark_for(60_000), 59_999);
        let bounded: WatermarkStrategy = "bounded:10s".parse().unwrap();
        assert_eq!(bounded.watermark_for(70_000), 59_999);
        assert_eq!(bounded.watermark_for(i64::MIN), i64::MIN);
    }
}
