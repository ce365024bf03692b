//! Parsing and formatting the timestamps found in the original CSVs.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Parses an event time into epoch seconds.
///
/// Accepts epoch seconds (`1765152003`), `2025-12-08 00:00:03` (taken as UTC),
/// `2025-12-08 00:00:03+00`, `+00:00`, `+0000`, `Z`, a `T` separator, and other RFC 3339 forms.
pub fn parse_epoch_seconds(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    parse_fixed_layout(text.as_bytes()).or_else(|| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|time| time.timestamp())
    })
}

/// Fast path for `YYYY-MM-DD HH:MM:SS` with an optional `Z`, `±HH`, `±HHMM` or `±HH:MM` offset.
fn parse_fixed_layout(bytes: &[u8]) -> Option<i64> {
    if bytes.len() < 19
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b' ' | b'T')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0u32, |acc, &digit| {
            digit.is_ascii_digit().then(|| acc * 10 + u32::from(digit - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)?;
    let time = date.and_hms_opt(number(11..13)?, number(14..16)?, number(17..19)?)?;
    let offset_seconds = parse_offset(&bytes[19..])?;
    Some(time.and_utc().timestamp() - i64::from(offset_seconds))
}

/// Parses the offset suffix: empty or `Z` (UTC), `±HH`, `±HHMM`, `±HH:MM`.
fn parse_offset(suffix: &[u8]) -> Option<i32> {
    let two_digits = |pair: &[u8]| -> Option<i32> {
        (pair.len() == 2 && pair.iter().all(u8::is_ascii_digit))
            .then(|| i32::from(pair[0] - b'0') * 10 + i32::from(pair[1] - b'0'))
    };
    let (sign, rest) = match suffix {
        [] | [b'Z'] => return Some(0),
        [b'+', rest @ ..] => (1, rest),
        [b'-', rest @ ..] => (-1, rest),
        _ => return None,
    };
    let (hours, minutes) = match rest.len() {
        2 => (two_digits(rest)?, 0),
        4 => (two_digits(&rest[..2])?, two_digits(&rest[2..])?),
        5 if rest[2] == b':' => (two_digits(&rest[..2])?, two_digits(&rest[3..])?),
        _ => return None,
    };
    (hours < 24 && minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
}

/// Formats epoch seconds as the in-order files do: `2025-12-08 00:00:03` (UTC).
pub fn format_plain(epoch_seconds: i64) -> String {
    utc(epoch_seconds).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Formats epoch seconds as the missing-timestamp files do: `2025-12-08 00:00:03+00`.
pub fn format_with_offset(epoch_seconds: i64) -> String {
    utc(epoch_seconds).format("%Y-%m-%d %H:%M:%S+00").to_string()
}

fn utc(epoch_seconds: i64) -> NaiveDateTime {
    DateTime::from_timestamp(epoch_seconds, 0)
        .unwrap_or(DateTime::UNIX_EPOCH)
        .naive_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-12-08 00:00:00 UTC, the first second of the original data.
    const DEC_8: i64 = 1_765_152_000;

    #[test]
    fn parses_every_layout_of_the_original_files() {
        assert_eq!(parse_epoch_seconds("2025-12-08 00:00:00"), Some(DEC_8));
        assert_eq!(parse_epoch_seconds("2025-12-08 00:00:03+00"), Some(DEC_8 + 3));
        assert_eq!(parse_epoch_seconds("2025-12-08T00:00:03Z"), Some(DEC_8 + 3));
        assert_eq!(parse_epoch_seconds("2025-12-08 02:00:03+02:00"), Some(DEC_8 + 3));
        assert_eq!(parse_epoch_seconds("2025-12-07 23:00:03-0100"), Some(DEC_8 + 3));
        assert_eq!(parse_epoch_seconds(" 1765152003 "), Some(DEC_8 + 3));
        assert_eq!(
            parse_epoch_seconds("2025-12-08T00:00:03.000+00:00"),
            Some(DEC_8 + 3)
        );
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for text in [
            "",
            "yesterday",
            "2025-13-08 00:00:00",
            "2025-12-08 24:00:00",
            "2025-12-08 00:00:00+0",
            "2025-12-08 00:00:00 UTC",
        ] {
            assert_eq!(parse_epoch_seconds(text), None, "{text:?}");
        }
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_plain(DEC_8 + 3), "2025-12-08 00:00:03");
        assert_eq!(format_with_offset(DEC_8 + 3), "2025-12-08 00:00:03+00");
        for seconds in [0, DEC_8, DEC_8 + 86_399] {
            assert_eq!(parse_epoch_seconds(&format_plain(seconds)), Some(seconds));
            assert_eq!(parse_epoch_seconds(&format_with_offset(seconds)), Some(seconds));
        }
    }
}
