//! The calendar against a brute-force reference that steps minute by minute through New York
//! wall-clock time and applies the rules as written in the protocol notes (test-only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Datelike, Days, NaiveDateTime, Timelike, Weekday};
use chrono_tz::America::New_York;
use tickflow_calendar::{ForexCalendar, MarketHours};
use tickflow_schema::UnixNanos;

const MINUTE: i64 = 60_000_000_000;

fn at(s: &str) -> UnixNanos {
    UnixNanos(
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap(),
    )
}

/// The rules as stated: open Sunday 17:00 to Friday 17:00 New York; a holiday closes from 17:00 on
/// its eve to 17:00 on the day.
fn reference_open(holidays: &[(u32, u32)], local: NaiveDateTime) -> bool {
    let after_roll = local.hour() >= 17;
    let weekly = match local.weekday() {
        Weekday::Sun => after_roll,
        Weekday::Mon | Weekday::Tue | Weekday::Wed | Weekday::Thu => true,
        Weekday::Fri => !after_roll,
        Weekday::Sat => false,
    };
    let is_holiday = |d: chrono::NaiveDate| holidays.contains(&(d.month(), d.day()));
    let date = local.date();
    let tomorrow = date.checked_add_days(Days::new(1)).unwrap();
    let holiday_day = is_holiday(date) && !after_roll;
    let holiday_eve = is_holiday(tomorrow) && after_roll;
    weekly && !holiday_day && !holiday_eve
}

/// Open segments of `[from, to)` (both on whole minutes) by stepping one minute at a time.
fn brute_segments(
    holidays: &[(u32, u32)],
    from: UnixNanos,
    to: UnixNanos,
) -> Vec<(UnixNanos, UnixNanos)> {
    assert_eq!(from.0 % MINUTE, 0);
    assert_eq!(to.0 % MINUTE, 0);
    let mut segments: Vec<(UnixNanos, UnixNanos)> = Vec::new();
    let mut t = from.0;
    while t < to.0 {
        let local = DateTime::from_timestamp_nanos(t)
            .with_timezone(&New_York)
            .naive_local();
        if reference_open(holidays, local) {
            match segments.last_mut() {
                Some(last) if last.1.0 == t => last.1 = UnixNanos(t + MINUTE),
                _ => segments.push((UnixNanos(t), UnixNanos(t + MINUTE))),
            }
        }
        t += MINUTE;
    }
    segments
}

fn check(cal: &ForexCalendar, from: &str, to: &str) -> usize {
    let (from, to) = (at(from), at(to));
    let expected = brute_segments(cal.holidays(), from, to);
    let got = cal.open_segments(from, to);
    assert_eq!(got, expected);
    let expected_ns: i64 = expected.iter().map(|&(a, b)| b.0 - a.0).sum();
    assert_eq!(cal.open_duration(from, to), expected_ns);
    assert_eq!(
        MarketHours::Forex(cal.clone()).open_duration(from, to),
        expected_ns
    );
    // Every segment boundary is a transition the point queries agree with.
    for &(a, b) in &got {
        if a != from {
            assert!(!cal.is_open(UnixNanos(a.0 - 1)));
            assert_eq!(cal.next_open(UnixNanos(a.0 - 1)), a);
        }
        assert!(cal.is_open(a));
        assert!(cal.is_open(UnixNanos(b.0 - 1)));
        if b != to {
            assert!(!cal.is_open(b));
            assert_eq!(cal.next_close(a), b);
        }
    }
    got.len()
}

#[test]
fn standard_calendar_2024_and_2025_matches_the_reference() {
    // Two whole years, both daylight-saving changes each, Christmas and New Year on weekdays.
    let segments = check(
        &ForexCalendar::standard(),
        "2023-12-01T00:00:00Z",
        "2026-01-15T00:00:00Z",
    );
    assert!(segments > 100);
}

#[test]
fn standard_calendar_2021_2022_weekend_holidays_match_the_reference() {
    // 2021: Christmas and New Year on Saturdays; 2022: on Sundays.
    check(
        &ForexCalendar::standard(),
        "2021-12-01T00:00:00Z",
        "2023-01-15T00:00:00Z",
    );
}

#[test]
fn the_2007_us_rule_change_comes_from_the_zone() {
    // 2006: DST from the first Sunday of April to the last Sunday of October; 2007 onwards: the
    // second Sunday of March to the first Sunday of November.
    let cal = ForexCalendar::standard();
    check(&cal, "2006-03-01T00:00:00Z", "2007-12-01T00:00:00Z");
    assert_eq!(
        cal.next_open(at("2006-03-11T00:00:00Z")),
        at("2006-03-12T22:00:00Z")
    );
    assert_eq!(
        cal.next_open(at("2006-04-01T00:00:00Z")),
        at("2006-04-02T21:00:00Z")
    );
    assert_eq!(
        cal.next_open(at("2007-03-10T00:00:00Z")),
        at("2007-03-11T21:00:00Z")
    );
    assert_eq!(
        cal.next_open(at("2006-10-28T00:00:00Z")),
        at("2006-10-29T22:00:00Z")
    );
}

#[test]
fn custom_holidays_match_the_reference() {
    let cal =
        ForexCalendar::with_holidays(vec![(7, 4), (12, 25), (1, 1), (11, 28), (3, 10), (2, 29)]);
    check(&cal, "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z");
    check(
        &ForexCalendar::with_holidays(Vec::new()),
        "2024-11-15T00:00:00Z",
        "2025-02-01T00:00:00Z",
    );
}

#[test]
fn sub_ranges_of_a_year_are_consistent() {
    // Splitting a range anywhere never changes the total.
    let cal = ForexCalendar::standard();
    let (from, to) = (at("2024-01-01T00:00:00Z"), at("2025-01-01T00:00:00Z"));
    let total = cal.open_duration(from, to);
    let mut cut = from.0;
    while cut < to.0 {
        let left = cal.open_duration(from, UnixNanos(cut));
        let right = cal.open_duration(UnixNanos(cut), to);
        assert_eq!(left + right, total);
        cut += 7 * 3_600_000_000_000 + 12_345_678_901;
    }
}
