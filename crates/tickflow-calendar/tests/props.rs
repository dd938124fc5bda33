//! Property tests: the point queries and the segments agree with each other, for any instant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tickflow_calendar::{ForexCalendar, HourKind, MarketHours};
use tickflow_schema::UnixNanos;

/// 1990-01-01 .. 2100-01-01 in nanoseconds: where the market data lives.
const REALISTIC: std::ops::Range<i64> = 631_152_000_000_000_000..4_102_444_800_000_000_000;
const DAY: i64 = 86_400_000_000_000;
const HOUR: i64 = 3_600_000_000_000;

/// Any instant, with the extremes and the realistic range well represented.
fn instant() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => REALISTIC,
        2 => any::<i64>(),
        1 => prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            (i64::MAX - 30 * DAY)..=i64::MAX,
            i64::MIN..(i64::MIN + 30 * DAY),
        ],
    ]
}

/// The standard calendar or a random set of holidays (invalid pairs included).
fn calendar() -> impl Strategy<Value = ForexCalendar> {
    prop_oneof![
        3 => Just(ForexCalendar::standard()),
        1 => prop::collection::vec((0_u32..=13, 0_u32..=32), 0..40).prop_map(ForexCalendar::with_holidays),
    ]
}

/// A few points of `[a, b)`, including both ends of it.
fn samples(a: i64, b: i64) -> Vec<i64> {
    let span = i128::from(b) - i128::from(a);
    let mut points: Vec<i64> = (0..8)
        .map(|k| i64::try_from(i128::from(a) + span * k / 8).unwrap())
        .collect();
    points.push(b - 1);
    points
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn next_open_is_the_first_open_instant(cal in calendar(), t in instant()) {
        let t = UnixNanos(t);
        let o = cal.next_open(t);
        prop_assert!(o >= t);
        if cal.is_open(t) {
            prop_assert_eq!(o, t);
        } else if o.0 != i64::MAX {
            prop_assert!(cal.is_open(o));
            for p in samples(t.0, o.0) {
                prop_assert!(!cal.is_open(UnixNanos(p)), "open at {} inside [{}, {})", p, t.0, o.0);
            }
        }
    }

    #[test]
    fn next_close_is_the_first_closed_instant(cal in calendar(), t in instant()) {
        let t = UnixNanos(t);
        let c = cal.next_close(t);
        prop_assert!(c >= t);
        if !cal.is_open(t) {
            prop_assert_eq!(c, t);
        } else {
            if c.0 != i64::MAX {
                prop_assert!(!cal.is_open(c));
            }
            for p in samples(t.0, c.0) {
                prop_assert!(cal.is_open(UnixNanos(p)), "closed at {} inside [{}, {})", p, t.0, c.0);
            }
            // A forex week never lasts longer than Sunday 17:00 to Friday 17:00 (+1 h for DST).
            if c.0 != i64::MAX {
                prop_assert!(c.0 - t.0 <= 5 * DAY + HOUR);
            }
        }
    }

    #[test]
    fn segments_are_sorted_disjoint_merged_and_inside(
        cal in calendar(),
        from in instant(),
        len in prop_oneof![0_i64..(2 * DAY), 0_i64..(90 * DAY), Just(0_i64)],
    ) {
        let to = from.saturating_add(len);
        let (from, to) = (UnixNanos(from), UnixNanos(to));
        let segs = cal.open_segments(from, to);
        let mut total: i128 = 0;
        let mut previous_end: Option<i64> = None;
        for &(a, b) in &segs {
            prop_assert!(from <= a && a < b && b <= to);
            if let Some(end) = previous_end {
                // Strictly after: adjacent open spans would have been merged.
                prop_assert!(end < a.0);
                prop_assert!(!cal.is_open(UnixNanos(end)));
            }
            prop_assert!(cal.is_open(a) && cal.is_open(UnixNanos(b.0 - 1)));
            if b < to {
                prop_assert!(!cal.is_open(b));
            }
            previous_end = Some(b.0);
            total += i128::from(b.0) - i128::from(a.0);
        }
        prop_assert_eq!(i128::from(cal.open_duration(from, to)), total);
        // Nothing open is left out.
        if segs.is_empty() && from < to {
            prop_assert!(cal.next_open(from) >= to);
        }
        if from >= to {
            prop_assert!(segs.is_empty());
        }
    }

    #[test]
    fn hours_agree_with_durations(cal in calendar(), t in instant()) {
        let m = MarketHours::Forex(cal.clone());
        let start = UnixNanos(t);
        let end = UnixNanos(t.saturating_add(HOUR));
        let open = m.open_duration(start, end);
        let expected = if open == 0 && start < end {
            HourKind::Closed
        } else if open == end.0 - start.0 {
            HourKind::Open
        } else {
            HourKind::Partial
        };
        if start < end {
            prop_assert_eq!(m.hour(start), expected);
        } else {
            let _ = m.hour(start);
        }
    }

    #[test]
    fn always_open_is_open(t in any::<i64>(), u in any::<i64>()) {
        let m = MarketHours::AlwaysOpen;
        prop_assert!(m.is_open(UnixNanos(t)));
        prop_assert_eq!(m.next_open(UnixNanos(t)), UnixNanos(t));
        let segs = m.open_segments(UnixNanos(t), UnixNanos(u));
        if t < u {
            prop_assert_eq!(segs, vec![(UnixNanos(t), UnixNanos(u))]);
            prop_assert_eq!(
                i128::from(m.open_duration(UnixNanos(t), UnixNanos(u))),
                (i128::from(u) - i128::from(t)).min(i128::from(i64::MAX))
            );
        } else {
            prop_assert!(segs.is_empty());
            prop_assert_eq!(m.open_duration(UnixNanos(t), UnixNanos(u)), 0);
        }
    }
}

proptest! {
    // Arbitrary ranges can span centuries (tens of thousands of segments): fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn never_panics_for_any_pair(cal in calendar(), a in any::<i64>(), b in any::<i64>()) {
        let (a, b) = (UnixNanos(a), UnixNanos(b));
        let _ = cal.is_open(a);
        let _ = cal.next_open(a);
        let _ = cal.next_close(a);
        let d = cal.open_duration(a, b);
        prop_assert!(d >= 0);
        let _ = MarketHours::Forex(cal).hour(a);
    }
}
