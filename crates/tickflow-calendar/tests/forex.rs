//! Exact instants of the forex week: daylight-saving changes, holidays, the capture fixture,
//! segments, hours and the always-open market.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::DateTime;
use tickflow_calendar::{ForexCalendar, HourKind, MarketHours};
use tickflow_schema::UnixNanos;

const NS: i64 = 1;
const HOUR: i64 = 3_600_000_000_000;

/// An RFC 3339 instant as `UnixNanos`.
fn at(s: &str) -> UnixNanos {
    let t = DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    UnixNanos(t.timestamp_nanos_opt().unwrap())
}

fn plus(t: UnixNanos, ns: i64) -> UnixNanos {
    UnixNanos(t.0 + ns)
}

fn fx() -> ForexCalendar {
    ForexCalendar::standard()
}

/// The market closes exactly at `close`: open 1 ns before, closed at it and 1 ns after, and the
/// queries find it from both sides.
fn assert_closes_at(cal: &ForexCalendar, close: &str) {
    let c = at(close);
    assert!(cal.is_open(plus(c, -NS)), "open just before {close}");
    assert!(!cal.is_open(c), "closed at {close}");
    assert!(!cal.is_open(plus(c, NS)), "closed just after {close}");
    assert_eq!(
        cal.next_close(plus(c, -NS)),
        c,
        "next_close just before {close}"
    );
    assert_eq!(
        cal.next_close(plus(c, -3 * HOUR)),
        c,
        "next_close 3 h before {close}"
    );
    assert_eq!(cal.next_close(c), c);
}

/// The market opens exactly at `open`: closed 1 ns before, open at it and 1 ns after, and the
/// queries find it from both sides.
fn assert_opens_at(cal: &ForexCalendar, open: &str) {
    let o = at(open);
    assert!(!cal.is_open(plus(o, -NS)), "closed just before {open}");
    assert!(cal.is_open(o), "open at {open}");
    assert!(cal.is_open(plus(o, NS)), "open just after {open}");
    assert_eq!(
        cal.next_open(plus(o, -NS)),
        o,
        "next_open just before {open}"
    );
    assert_eq!(
        cal.next_open(plus(o, -3 * HOUR)),
        o,
        "next_open 3 h before {open}"
    );
    assert_eq!(cal.next_open(o), o);
}

/// A whole weekend: closes at `close`, reopens at `open`, closed in between.
fn assert_weekend(cal: &ForexCalendar, close: &str, open: &str) {
    assert_closes_at(cal, close);
    assert_opens_at(cal, open);
    assert_eq!(cal.next_open(at(close)), at(open));
    assert!(cal.next_close(at(open)) > at(open));
    assert_eq!(cal.open_duration(at(close), at(open)), 0);
    assert!(cal.open_segments(at(close), at(open)).is_empty());
}

// ---- daylight saving, 2024 ----

#[test]
fn spring_2024_week_before_the_change_is_on_est() {
    // DST starts Sun 2024-03-10 02:00 New York. The week before is all EST (UTC-5).
    assert_opens_at(&fx(), "2024-03-03T22:00:00Z");
    assert_closes_at(&fx(), "2024-03-08T22:00:00Z");
    assert!(fx().is_open(at("2024-03-08T21:30:00Z")));
}

#[test]
fn spring_2024_opening_on_the_change_day_is_on_edt() {
    // Sunday 2024-03-10 17:00 EDT = 21:00 UTC (the clocks went forward at 02:00 that morning).
    assert_weekend(&fx(), "2024-03-08T22:00:00Z", "2024-03-10T21:00:00Z");
    assert_closes_at(&fx(), "2024-03-15T21:00:00Z");
    // A full week is 120 h in New York time whichever offsets it runs on.
    assert_eq!(
        fx().open_duration(at("2024-03-09T00:00:00Z"), at("2024-03-16T00:00:00Z")),
        120 * HOUR
    );
}

#[test]
fn fall_2024_friday_before_is_edt_sunday_of_the_change_is_est() {
    // DST ends Sun 2024-11-03 02:00 New York: Friday 11-01 closes 17:00 EDT = 21:00 UTC,
    // Sunday 11-03 opens 17:00 EST = 22:00 UTC.
    assert_weekend(&fx(), "2024-11-01T21:00:00Z", "2024-11-03T22:00:00Z");
    assert_closes_at(&fx(), "2024-11-08T22:00:00Z");
    // The weekend across the change is 49 h long.
    assert_eq!(
        at("2024-11-03T22:00:00Z").0 - at("2024-11-01T21:00:00Z").0,
        49 * HOUR
    );
    assert_eq!(
        fx().open_duration(at("2024-11-02T00:00:00Z"), at("2024-11-09T00:00:00Z")),
        120 * HOUR
    );
}

#[test]
fn summer_and_winter_weeks_2024() {
    assert_weekend(&fx(), "2024-07-12T21:00:00Z", "2024-07-14T21:00:00Z");
    assert_weekend(&fx(), "2024-01-12T22:00:00Z", "2024-01-14T22:00:00Z");
    // Weekend across the spring change: 47 h.
    assert_eq!(
        at("2024-03-10T21:00:00Z").0 - at("2024-03-08T22:00:00Z").0,
        47 * HOUR
    );
}

// ---- daylight saving, 2025 ----

#[test]
fn spring_2025() {
    // DST starts Sun 2025-03-09.
    assert_weekend(&fx(), "2025-02-28T22:00:00Z", "2025-03-02T22:00:00Z");
    assert_weekend(&fx(), "2025-03-07T22:00:00Z", "2025-03-09T21:00:00Z");
    assert_closes_at(&fx(), "2025-03-14T21:00:00Z");
}

#[test]
fn fall_2025() {
    // DST ends Sun 2025-11-02.
    assert_weekend(&fx(), "2025-10-24T21:00:00Z", "2025-10-26T21:00:00Z");
    assert_weekend(&fx(), "2025-10-31T21:00:00Z", "2025-11-02T22:00:00Z");
    assert_closes_at(&fx(), "2025-11-07T22:00:00Z");
}

// ---- the capture fixture ----

#[test]
fn fixture_2020_10_23_stream_went_non_tradeable_after_21_utc() {
    // Friday 2020-10-23, New York on EDT: the close is 21:00 UTC.
    assert!(!fx().is_open(at("2020-10-23T21:02:02.692522548Z")));
    assert!(fx().is_open(at("2020-10-23T20:59:59Z")));
    assert_closes_at(&fx(), "2020-10-23T21:00:00Z");
    assert_eq!(
        fx().next_open(at("2020-10-23T21:02:02.692522548Z")),
        at("2020-10-25T21:00:00Z")
    );
}

// ---- holidays ----

#[test]
fn christmas_2024_closes_on_the_eve_and_reopens_on_the_day() {
    // Tuesday 2024-12-24 17:00 EST -> Wednesday 2024-12-25 17:00 EST.
    assert_closes_at(&fx(), "2024-12-24T22:00:00Z");
    assert_opens_at(&fx(), "2024-12-25T22:00:00Z");
    assert!(!fx().is_open(at("2024-12-25T12:00:00Z")));
    assert_eq!(
        fx().next_open(at("2024-12-24T22:00:00Z")),
        at("2024-12-25T22:00:00Z")
    );
    assert_eq!(
        fx().open_segments(at("2024-12-24T00:00:00Z"), at("2024-12-27T00:00:00Z")),
        vec![
            (at("2024-12-24T00:00:00Z"), at("2024-12-24T22:00:00Z")),
            (at("2024-12-25T22:00:00Z"), at("2024-12-27T00:00:00Z")),
        ]
    );
}

#[test]
fn new_year_2025_closes_on_the_eve_and_reopens_on_the_day() {
    // Tuesday 2024-12-31 17:00 EST -> Wednesday 2025-01-01 17:00 EST.
    assert_closes_at(&fx(), "2024-12-31T22:00:00Z");
    assert_opens_at(&fx(), "2025-01-01T22:00:00Z");
    assert_eq!(
        fx().next_open(at("2025-01-01T00:00:00Z")),
        at("2025-01-01T22:00:00Z")
    );
    // Christmas 2025 (Thursday) and New Year 2026 (Thursday) too.
    assert_closes_at(&fx(), "2025-12-24T22:00:00Z");
    assert_opens_at(&fx(), "2025-12-25T22:00:00Z");
    assert_closes_at(&fx(), "2025-12-31T22:00:00Z");
    assert_opens_at(&fx(), "2026-01-01T22:00:00Z");
}

#[test]
fn new_year_on_a_monday_keeps_the_market_shut_until_monday_evening() {
    // 2024-01-01 is a Monday: the Sunday 2023-12-31 opening is skipped.
    assert_weekend(&fx(), "2023-12-29T22:00:00Z", "2024-01-01T22:00:00Z");
}

#[test]
fn christmas_on_a_saturday_adds_nothing_to_the_weekend() {
    // 2021: Dec 24 is a Friday (eve after the normal close), Dec 25 a Saturday.
    assert!(fx().is_open(at("2021-12-24T21:59:59.999999999Z")));
    assert_weekend(&fx(), "2021-12-24T22:00:00Z", "2021-12-26T22:00:00Z");
    // Same for New Year: 2021-12-31 Friday, 2022-01-01 Saturday.
    assert_weekend(&fx(), "2021-12-31T22:00:00Z", "2022-01-02T22:00:00Z");
}

#[test]
fn christmas_on_a_sunday_adds_nothing_to_the_weekend() {
    // 2022: Dec 24 Saturday, Dec 25 Sunday: the week opens Sunday 17:00 New York as usual.
    assert_weekend(&fx(), "2022-12-23T22:00:00Z", "2022-12-25T22:00:00Z");
    assert_weekend(&fx(), "2022-12-30T22:00:00Z", "2023-01-01T22:00:00Z");
}

#[test]
fn holidays_are_configurable() {
    let plain = ForexCalendar::with_holidays(Vec::new());
    assert!(plain.holidays().is_empty());
    assert!(plain.is_open(at("2024-12-25T12:00:00Z")));
    assert_closes_at(&plain, "2024-12-27T22:00:00Z");

    // Independence Day 2025 is a Friday: closed from Thursday 17:00 EDT through the weekend.
    let july4 = ForexCalendar::with_holidays(vec![(7, 4), (12, 25), (1, 1)]);
    assert_weekend(&july4, "2025-07-03T21:00:00Z", "2025-07-06T21:00:00Z");
    assert!(fx().is_open(at("2025-07-04T12:00:00Z")));

    // Order, duplicates and impossible dates are normalised away.
    let messy =
        ForexCalendar::with_holidays(vec![(12, 25), (1, 1), (12, 25), (13, 1), (2, 30), (0, 0)]);
    assert_eq!(messy, ForexCalendar::standard());
    assert_eq!(messy.holidays(), &[(1, 1), (12, 25)]);
    assert_eq!(ForexCalendar::default(), ForexCalendar::standard());
}

#[test]
fn leap_day_holiday_applies_in_leap_years_only() {
    let cal = ForexCalendar::with_holidays(vec![(2, 29)]);
    // Thursday 2024-02-29: closed Wed 17:00 EST -> Thu 17:00 EST.
    assert_closes_at(&cal, "2024-02-28T22:00:00Z");
    assert_opens_at(&cal, "2024-02-29T22:00:00Z");
    // 2023 has no Feb 29: Tuesday 2023-02-28 -> Wednesday 2023-03-01 is an ordinary day.
    assert!(cal.is_open(at("2023-03-01T00:00:00Z")));
}

#[test]
fn a_calendar_closed_every_day_never_opens() {
    let mut all = Vec::new();
    for month in 1..=12 {
        for day in 1..=31 {
            all.push((month, day));
        }
    }
    let cal = ForexCalendar::with_holidays(all);
    assert_eq!(cal.holidays().len(), 366);
    let t = at("2024-06-12T12:00:00Z");
    assert!(!cal.is_open(t));
    assert_eq!(cal.next_open(t), UnixNanos(i64::MAX));
    assert_eq!(cal.next_close(t), t);
    assert!(cal.open_segments(t, at("2026-01-01T00:00:00Z")).is_empty());
    assert_eq!(cal.open_duration(t, at("2026-01-01T00:00:00Z")), 0);
    assert_eq!(MarketHours::Forex(cal).hour(t), HourKind::Closed);
}

// ---- segments ----

#[test]
fn segments_across_a_weekend() {
    let segs = fx().open_segments(at("2024-06-14T00:00:00Z"), at("2024-06-17T00:00:00Z"));
    assert_eq!(
        segs,
        vec![
            (at("2024-06-14T00:00:00Z"), at("2024-06-14T21:00:00Z")),
            (at("2024-06-16T21:00:00Z"), at("2024-06-17T00:00:00Z")),
        ]
    );
    assert_eq!(
        fx().open_duration(at("2024-06-14T00:00:00Z"), at("2024-06-17T00:00:00Z")),
        24 * HOUR
    );
}

#[test]
fn segments_are_merged_across_days_and_clipped() {
    // Monday to Wednesday inside one week: one segment, exactly the range.
    let (from, to) = (at("2024-06-17T03:00:00Z"), at("2024-06-19T05:00:00Z"));
    assert_eq!(fx().open_segments(from, to), vec![(from, to)]);
    // A whole week, Saturday to Saturday: exactly one segment, Sunday open to Friday close.
    assert_eq!(
        fx().open_segments(at("2024-06-15T00:00:00Z"), at("2024-06-22T00:00:00Z")),
        vec![(at("2024-06-16T21:00:00Z"), at("2024-06-21T21:00:00Z"))]
    );
    // Empty and reversed ranges.
    assert!(fx().open_segments(from, from).is_empty());
    assert!(fx().open_segments(to, from).is_empty());
    assert_eq!(fx().open_duration(to, from), 0);
}

#[test]
fn a_year_of_segments_is_one_per_week_plus_holidays() {
    let segs = fx().open_segments(at("2024-01-01T00:00:00Z"), at("2025-01-01T00:00:00Z"));
    // 2024 starts on New Year's Day (a Monday, closed until 17:00 New York); then one segment per
    // Sunday opening (52 Sundays, Jan 7 .. Dec 29), the Christmas week split in two, and the last
    // week cut at New Year's Eve 17:00 New York.
    assert_eq!(segs.first().unwrap().0, at("2024-01-01T22:00:00Z"));
    assert_eq!(
        segs.last().unwrap(),
        &(at("2024-12-29T22:00:00Z"), at("2024-12-31T22:00:00Z"))
    );
    assert_eq!(segs.len(), 1 + 52 + 1);
}

// ---- hours ----

#[test]
fn hour_kinds_summer() {
    let m = MarketHours::Forex(fx());
    // Friday 2024-07-12 (EDT): close at 21:00 UTC.
    assert_eq!(m.hour(at("2024-07-12T20:00:00Z")), HourKind::Open);
    assert_eq!(m.hour(at("2024-07-12T21:00:00Z")), HourKind::Closed);
    assert_eq!(m.hour(at("2024-07-12T20:30:00Z")), HourKind::Partial);
    assert_eq!(m.hour(at("2024-07-13T12:00:00Z")), HourKind::Closed);
    assert_eq!(m.hour(at("2024-07-14T20:00:00Z")), HourKind::Closed);
    assert_eq!(m.hour(at("2024-07-14T21:00:00Z")), HourKind::Open);
    assert_eq!(
        m.hour(at("2024-07-14T20:59:59.999999999Z")),
        HourKind::Partial
    );
}

#[test]
fn hour_kinds_winter() {
    let m = MarketHours::Forex(fx());
    // Friday 2024-01-12 (EST): close at 22:00 UTC.
    assert_eq!(m.hour(at("2024-01-12T21:00:00Z")), HourKind::Open);
    assert_eq!(m.hour(at("2024-01-12T22:00:00Z")), HourKind::Closed);
    assert_eq!(m.hour(at("2024-01-13T00:00:00Z")), HourKind::Closed);
    assert_eq!(m.hour(at("2024-01-14T21:00:00Z")), HourKind::Closed);
    assert_eq!(m.hour(at("2024-01-14T22:00:00Z")), HourKind::Open);
    // Christmas Day 2024.
    assert_eq!(m.hour(at("2024-12-25T12:00:00Z")), HourKind::Closed);
    assert_eq!(m.hour(at("2024-12-25T22:00:00Z")), HourKind::Open);
}

// ---- always open ----

#[test]
fn always_open() {
    let m = MarketHours::AlwaysOpen;
    for t in [i64::MIN, -1, 0, at("2024-07-13T12:00:00Z").0, i64::MAX] {
        let t = UnixNanos(t);
        assert!(m.is_open(t));
        assert_eq!(m.next_open(t), t);
        assert_eq!(m.next_close(t), UnixNanos(i64::MAX));
        assert_eq!(m.hour(t), HourKind::Open);
    }
    let (from, to) = (at("2024-07-12T00:00:00Z"), at("2024-07-15T00:00:00Z"));
    assert_eq!(m.open_segments(from, to), vec![(from, to)]);
    assert!(m.open_segments(to, from).is_empty());
    assert!(m.open_segments(from, from).is_empty());
    assert_eq!(m.open_duration(from, to), 72 * HOUR);
    assert_eq!(m.open_duration(to, from), 0);
    assert_eq!(
        m.open_duration(UnixNanos(i64::MIN), UnixNanos(i64::MAX)),
        i64::MAX
    );
}

#[test]
fn market_hours_delegates_to_the_calendar() {
    let m = MarketHours::from(fx());
    assert_eq!(m, MarketHours::Forex(ForexCalendar::standard()));
    let t = at("2024-07-13T12:00:00Z");
    assert!(!m.is_open(t));
    assert_eq!(m.next_open(t), at("2024-07-14T21:00:00Z"));
    assert_eq!(
        m.next_close(at("2024-07-15T00:00:00Z")),
        at("2024-07-19T21:00:00Z")
    );
    let (from, to) = (at("2024-07-12T00:00:00Z"), at("2024-07-15T00:00:00Z"));
    assert_eq!(m.open_segments(from, to), fx().open_segments(from, to));
    assert_eq!(m.open_duration(from, to), 24 * HOUR);
}

// ---- extremes ----

#[test]
fn extremes_do_not_panic_and_saturate() {
    let cal = fx();
    for t in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
        let t = UnixNanos(t);
        let _ = cal.is_open(t);
        let o = cal.next_open(t);
        let c = cal.next_close(t);
        assert!(o >= t && c >= t);
        let _ = MarketHours::Forex(cal.clone()).hour(t);
    }
    // The whole representable range: about 585 years, 30 000 weekly segments.
    let all = cal.open_segments(UnixNanos(i64::MIN), UnixNanos(i64::MAX));
    assert!(all.len() > 30_000);
    // About 70 % of 2^64 ns is open: more than an i64 holds, so the duration saturates.
    let sum: i128 = all.iter().map(|&(a, b)| i128::from(b.0 - a.0)).sum();
    assert!(sum > i128::from(i64::MAX));
    assert_eq!(
        cal.open_duration(UnixNanos(i64::MIN), UnixNanos(i64::MAX)),
        i64::MAX
    );
    // Half of it does fit.
    let half = cal.open_duration(UnixNanos(0), UnixNanos(i64::MAX));
    let half_sum: i128 = cal
        .open_segments(UnixNanos(0), UnixNanos(i64::MAX))
        .iter()
        .map(|&(a, b)| i128::from(b.0 - a.0))
        .sum();
    assert_eq!(i128::from(half), half_sum);
}
