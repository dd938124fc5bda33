//! RFC 3339 timestamps to and from [`UnixNanos`], without a date library and without floats.
//!
//! Venues send their event times as text: Kraken v2 with microseconds
//! (`2023-09-25T07:48:36.925533Z`), OANDA with nanoseconds (`2016-10-27T08:38:43.094548890Z`).
//! Parsing them is on every tick's path, so it is a single pass over the bytes.

use std::fmt;

use crate::UnixNanos;

/// Why a timestamp is not RFC 3339 as tickflow accepts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 UTC timestamp ({reason}): {shown:?}")]
pub struct TimeParseError {
    reason: &'static str,
    shown: String,
}

impl TimeParseError {
    fn new(reason: &'static str, input: &str) -> Self {
        // Bounded, so that a hostile megabyte-long "timestamp" does not end up in a log line.
        let shown: String = input.chars().take(40).collect();
        Self { reason, shown }
    }

    /// What is wrong, in a few words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

fn digits(bytes: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = bytes.get(at..at + n)?;
    let mut v = 0i64;
    for &b in part {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(b - b'0');
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl UnixNanos {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]` followed by `Z` or a `±HH:MM` offset. The fraction
    /// has 1 to 9 digits; `t` and `z` are accepted in lower case, as RFC 3339 allows. Leap seconds
    /// (`:60`) are refused: no venue sends them and they have no Unix time.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimeParseError> {
        let b = text.as_bytes();
        let err = |reason| TimeParseError::new(reason, text);
        if b.len() < 20 {
            return Err(err("too short"));
        }
        let year = digits(b, 0, 4).ok_or_else(|| err("bad year"))?;
        if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return Err(err("bad separators"));
        }
        if b[10] != b'T' && b[10] != b't' {
            return Err(err("no 'T' between date and time"));
        }
        let month = digits(b, 5, 2).ok_or_else(|| err("bad month"))?;
        let day = digits(b, 8, 2).ok_or_else(|| err("bad day"))?;
        let hour = digits(b, 11, 2).ok_or_else(|| err("bad hour"))?;
        let minute = digits(b, 14, 2).ok_or_else(|| err("bad minute"))?;
        let second = digits(b, 17, 2).ok_or_else(|| err("bad second"))?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(err("no such date"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(err("no such time of day"));
        }
        let mut at = 19;
        let mut nanos = 0i64;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while at < b.len() && b[at].is_ascii_digit() {
                if at - start == 9 {
                    return Err(err("more than 9 fraction digits"));
                }
                nanos = nanos * 10 + i64::from(b[at] - b'0');
                at += 1;
            }
            let n = at - start;
            if n == 0 {
                return Err(err("empty fraction"));
            }
            for _ in n..9 {
                nanos *= 10;
            }
        }
        let offset_secs = match b.get(at..) {
            Some([b'Z' | b'z']) => 0,
            Some([sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]) => {
                let hh = digits(&[*h1, *h2], 0, 2).ok_or_else(|| err("bad offset"))?;
                let mm = digits(&[*m1, *m2], 0, 2).ok_or_else(|| err("bad offset"))?;
                if hh > 23 || mm > 59 {
                    return Err(err("bad offset"));
                }
                let secs = hh * 3600 + mm * 60;
                if *sign == b'+' { secs } else { -secs }
            }
            _ => return Err(err("no 'Z' or offset at the end")),
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
        secs.checked_mul(1_000_000_000)
            .and_then(|s| s.checked_add(nanos))
            .map(UnixNanos)
            .ok_or_else(|| err("out of range"))
    }

    /// Formats as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (always nine fraction digits, UTC).
    pub fn to_rfc3339(self) -> String {
        self.to_string()
    }

    /// Formats as RFC 3339 UTC with `digits` fraction digits (0 to 9, truncated toward the
    /// past): 6 gives Kraken's `2023-09-25T07:48:36.925533Z`.
    pub fn format_rfc3339(self, digits: u8) -> String {
        let mut out = String::with_capacity(30);
        // Writing into a String cannot fail.
        let _ = self.write_rfc3339(&mut out, digits.min(9));
        out
    }

    fn write_rfc3339(self, f: &mut impl fmt::Write, digits: u8) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )?;
        if digits > 0 {
            let fraction = nanos / 10i64.pow(9 - u32::from(digits));
            write!(f, ".{fraction:0width$}", width = usize::from(digits))?;
        }
        f.write_char('Z')
    }
}

impl fmt::Display for UnixNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_rfc3339(f, 9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_venue_timestamps_exactly() {
        // Kraken v2 (docs example trade): microseconds.
        let t = UnixNanos::parse_rfc3339("2023-09-25T07:48:36.925533Z").unwrap();
        assert_eq!(t, UnixNanos(1_695_628_116_925_533_000));
        // OANDA: nanoseconds.
        let t = UnixNanos::parse_rfc3339("2016-10-27T08:38:43.094548890Z").unwrap();
        assert_eq!(t, UnixNanos(1_477_557_523_094_548_890));
        // No fraction, lower case, offsets.
        assert_eq!(
            UnixNanos::parse_rfc3339("1970-01-01t00:00:00z").unwrap(),
            UnixNanos(0)
        );
        assert_eq!(
            UnixNanos::parse_rfc3339("1970-01-01T01:00:00+01:00").unwrap(),
            UnixNanos(0)
        );
        assert_eq!(
            UnixNanos::parse_rfc3339("1969-12-31T23:00:00.5-01:00").unwrap(),
            UnixNanos(500_000_000)
        );
        assert_eq!(
            UnixNanos::parse_rfc3339("2024-02-29T23:59:59.999999999Z").unwrap(),
            UnixNanos(1_709_251_199_999_999_999)
        );
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for bad in [
            "",
            "2023-09-25",
            "2023-09-25T07:48:36",
            "2023-09-25T07:48:36.Z",
            "2023-09-25T07:48:36.1234567891Z",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-00-01T00:00:00Z",
            "2023-01-01T24:00:00Z",
            "2023-01-01T23:60:00Z",
            "2023-01-01T23:59:60Z",
            "2023-01-01 23:59:59Z",
            "2023-01-01T23:59:59+0100",
            "2023-01-01T23:59:59Zjunk",
            "+023-01-01T23:59:59Z",
            "2023-01-01T23:59:59.12a4Z",
            "２０２３-01-01T23:59:59Z",
        ] {
            let e = UnixNanos::parse_rfc3339(bad).unwrap_err();
            assert!(e.to_string().contains("RFC 3339"), "{bad}: {e}");
        }
    }

    #[test]
    fn formats_with_any_precision() {
        let t = UnixNanos(1_695_628_116_925_533_999);
        assert_eq!(t.format_rfc3339(6), "2023-09-25T07:48:36.925533Z");
        assert_eq!(t.format_rfc3339(0), "2023-09-25T07:48:36Z");
        assert_eq!(t.format_rfc3339(3), "2023-09-25T07:48:36.925Z");
        assert_eq!(t.format_rfc3339(12), t.to_string());
    }

    #[test]
    fn display_is_rfc3339_with_nanoseconds() {
        assert_eq!(
            UnixNanos(1_477_557_523_094_548_890).to_string(),
            "2016-10-27T08:38:43.094548890Z"
        );
        assert_eq!(UnixNanos(-1).to_string(), "1969-12-31T23:59:59.999999999Z");
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(n in -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000i64) {
            let t = UnixNanos(n);
            prop_assert_eq!(UnixNanos::parse_rfc3339(&t.to_string()).unwrap(), t);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = UnixNanos::parse_rfc3339(&s);
        }

        #[test]
        fn never_panics_near_the_format(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,11})?([Zz]|[+-][0-9]{2}:[0-9]{2})?") {
            let _ = UnixNanos::parse_rfc3339(&s);
        }
    }
}
