//! STIX timestamps (STIX 2.1 §3.1 `timestamp`): RFC 3339 in UTC with an upper-case `T` and `Z`,
//! an optional fraction, nothing else (no offsets, no lower case, no missing seconds).

use cynex_model::time::{days_from_civil, rfc3339_us};

/// The fields of `YYYY-MM-DDTHH:MM:SS[.f+]Z`, checked for their ranges only (month 1-12, day
/// 1-31, hour 0-23, minute 0-59, second 0-60), as the STIX pattern grammar checks timestamp
/// literals. `None` when the shape is wrong.
fn fields(s: &str) -> Option<(i64, u32, u32, i64, i64, i64, i64)> {
    let b = s.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        (t.bytes().all(|c| c.is_ascii_digit())).then(|| t.parse().ok())?
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d, h, mi, se) =
        (digits(0..4)?, digits(5..7)?, digits(8..10)?, digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let rest = &s[19..s.len() - 1];
    let us = if rest.is_empty() {
        0
    } else {
        let frac = rest.strip_prefix('.')?;
        if frac.is_empty() || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let mut us = 0i64;
        for (i, c) in frac.bytes().take(6).enumerate() {
            us += i64::from(c - b'0') * 10i64.pow(5 - i as u32);
        }
        us
    };
    Some((y, mo as u32, d as u32, h, mi, se, us))
}

/// The shape and ranges are right (the pattern grammar's test; it accepts Feb 30).
pub fn timestamp_syntax_ok(s: &str) -> bool {
    fields(s).is_some()
}

/// A STIX timestamp as µs since the epoch (sub-µs digits dropped), or `None` when it is not a
/// valid STIX timestamp or names a day the calendar does not have.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let (y, mo, d, h, mi, se, us) = fields(s)?;
    let days = days_from_civil(y, mo, d);
    if cynex_model::time::civil_from_days(days) != (y, mo, d) {
        return None;
    }
    Some((days * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000 + us)
}

/// A timestamp as STIX writes `created`/`modified`: millisecond precision, `Z`.
pub fn format_ms(ts_us: i64) -> String {
    let s = rfc3339_us(ts_us);
    // rfc3339_us gives six fraction digits: keep three.
    format!("{}Z", &s[..s.len() - 4])
}

/// A timestamp with microsecond precision (TAXII `date_added` and its headers).
pub fn format_us(ts_us: i64) -> String {
    rfc3339_us(ts_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_stix_timestamps() {
        assert_eq!(parse_timestamp("2016-04-06T20:03:00.000Z"), Some(1_459_972_980_000_000));
        assert_eq!(parse_timestamp("2016-04-06T20:03:00Z"), Some(1_459_972_980_000_000));
        assert_eq!(parse_timestamp("2016-04-06T20:03:00.1234567Z"), Some(1_459_972_980_123_456));
        for bad in [
            "2016-04-06 20:03:00Z",
            "2016-04-06T20:03:00",
            "2016-04-06T20:03:00+00:00",
            "2016-04-06t20:03:00z",
            "2016-04-06T20:03Z",
            "2016-02-30T00:00:00Z",
            "2016-04-06T20:03:00.Z",
            "x016-04-06T20:03:00Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
        assert!(timestamp_syntax_ok("2024-02-30T12:00:00Z"), "the grammar only checks ranges");
        assert_eq!(format_ms(1_459_972_980_123_456), "2016-04-06T20:03:00.123Z");
        assert_eq!(format_us(1_459_972_980_123_456), "2016-04-06T20:03:00.123456Z");
    }
}
