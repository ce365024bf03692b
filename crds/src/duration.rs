//! Durations as Kubernetes writes them (Go's `time.Duration` text, e.g. `5s`, `1m`, `1h30m`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration in Go's notation, which the API server's CEL `duration()` understands:
/// a sequence of number+unit pairs with units `ms`, `s`, `m`, `h` (e.g. `500ms`, `5s`, `1h30m`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GoDuration {
    text: String,
    value: Duration,
}

/// Why a text is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration like `500ms`, `5s`, `1m` or `1h30m`")]
pub struct GoDurationError(String);

/// The pattern the CRD schema enforces (the same grammar `FromStr` accepts).
pub const GO_DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h))+$";

impl GoDuration {
    /// The duration.
    pub fn get(&self) -> Duration {
        self.value
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for GoDuration {
    type Err = GoDurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = || GoDurationError(text.to_owned());
        let mut total = Duration::ZERO;
        let mut rest = text;
        if rest.is_empty() {
            return Err(fail());
        }
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(fail)?;
            if digits == 0 {
                return Err(fail());
            }
            let amount: u64 = rest[..digits].parse().map_err(|_| fail())?;
            rest = &rest[digits..];
            let (unit, millis) = if rest.starts_with("ms") {
                ("ms", 1)
            } else if rest.starts_with('s') {
                ("s", 1_000)
            } else if rest.starts_with('m') {
                ("m", 60_000)
            } else if rest.starts_with('h') {
                ("h", 3_600_000)
            } else {
                return Err(fail());
            };
            rest = &rest[unit.len()..];
            let part = amount.checked_mul(millis).ok_or_else(fail)?;
            total = total.checked_add(Duration::from_millis(part)).ok_or_else(fail)?;
        }
        Ok(Self {
            text: text.to_owned(),
            value: total,
        })
    }
}

impl TryFrom<String> for GoDuration {
    type Error = GoDurationError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<GoDuration> for String {
    fn from(duration: GoDuration) -> Self {
        duration.text
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl JsonSchema for GoDuration {
    fn schema_name() -> Cow<'static, str> {
        "GoDuration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": GO_DURATION_PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("500ms", 500),
            ("5s", 5_000),
            ("1m", 60_000),
            ("2h", 7_200_000),
            ("1h30m", 5_400_000),
            ("0s", 0),
        ];
        for (text, millis) in cases {
            let duration: GoDuration = text.parse().unwrap();
            assert_eq!(duration.get(), Duration::from_millis(millis), "{text}");
            assert_eq!(duration.to_string(), text);
        }
    }

    #[test]
    fn refuses_other_notations() {
        for text in ["", "5", "s", "1d", "1.5s", "-5s", "5 s", "1m-"] {
            assert!(text.parse::<GoDuration>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn serde_uses_the_text() {
        let duration: GoDuration = serde_json::from_str("\"1h30m\"").unwrap();
        assert_eq!(serde_json::to_string(&duration).unwrap(), "\"1h30m\"");
        assert!(serde_json::from_str::<GoDuration>("\"soon\"").is_err());
    }
}
