//! Market hours: when a venue is open for trading.
//!
//! Shared by the live ingesters (is an outage a gap, or is the market simply closed?) and the
//! backfills (is an empty hour "closed" or "missing"?).
//!
//! - [`MarketHours::AlwaysOpen`]: crypto venues, open every instant.
//! - [`MarketHours::Forex`] with a [`ForexCalendar`]: the spot-FX week, Sunday 17:00 to Friday
//!   17:00 **New York time**, minus configurable holidays (Christmas Day and New Year's Day by
//!   default).
//!
//! # The forex model
//!
//! The week is defined in the `America/New_York` zone of the IANA time-zone database (via
//! `chrono-tz`), never by fixed UTC offsets, so it moves with US daylight saving:
//!
//! | New York | opens (Sunday) | closes (Friday) |
//! |---|---|---|
//! | EDT, UTC−4 (2nd Sunday of March → 1st Sunday of November) | 21:00 UTC | 21:00 UTC |
//! | EST, UTC−5 (the rest of the year) | 22:00 UTC | 22:00 UTC |
//!
//! Internally every instant belongs to a *trading day*: trading day `D` is the span
//! `[D−1 17:00, D 17:00)` New York time (the market "rolls" at 17:00 New York). The market is
//! open during trading day `D` exactly when `D` is a Monday–Friday and `(month, day)` of `D` is
//! not a holiday. That single rule gives:
//!
//! - the weekly hours: Monday's trading day starts Sunday 17:00, Friday's ends Friday 17:00;
//! - the holiday closures: a holiday `H` closes `[H−1 17:00, H 17:00)` New York time (for
//!   Christmas: Dec 24 17:00 → Dec 25 17:00) — but only when `H` is a weekday; a holiday on a
//!   Saturday or Sunday adds nothing to the weekend.
//!
//! All transitions happen at 17:00 New York, which is never inside a daylight-saving change
//! (those happen at 02:00), so each has exactly one UTC instant.
//!
//! OANDA's exact 16:58/17:03 times and its daily five-minute break are deliberately not modeled:
//! an outage during them is recorded as a gap, the conservative choice.
//!
//! # Range and saturation
//!
//! [`UnixNanos`] spans 1677-09-21 to 2262-04-11; every `i64` is accepted and nothing panics.
//! Results that would lie after the last representable instant saturate to
//! `UnixNanos(i64::MAX)`, which therefore means "never (within representable time)": for
//! example [`MarketHours::next_close`] of an always-open market, or [`ForexCalendar::next_open`]
//! of a calendar whose holidays cover every weekday. Durations saturate at `i64::MAX`.
//!
//! The zone data is the tz database compiled into `chrono-tz`: before 1883 New York is on local
//! mean time (UTC−4:56:02), and its table of daylight-saving transitions ends in 2099, after which
//! the zone stays on EST. The rules are applied unchanged to those years; neither matters for
//! market data.
//!
//! # Example
//!
//! ```
//! use tickflow_calendar::{ForexCalendar, HourKind, MarketHours};
//! use tickflow_schema::UnixNanos;
//!
//! const SEC: i64 = 1_000_000_000;
//! // Friday 2024-07-12 21:00 UTC: 17:00 in New York (EDT), the weekly close.
//! let friday_close = UnixNanos(1_720_818_000 * SEC);
//! let fx = MarketHours::Forex(ForexCalendar::standard());
//! assert!(fx.is_open(UnixNanos(friday_close.0 - 1)));
//! assert!(!fx.is_open(friday_close));
//! assert_eq!(fx.next_close(UnixNanos(friday_close.0 - 3_600 * SEC)), friday_close);
//! // It reopens on Sunday 2024-07-14 at 17:00 New York = 21:00 UTC.
//! assert_eq!(fx.next_open(friday_close), UnixNanos((1_720_818_000 + 48 * 3_600) * SEC));
//! assert_eq!(fx.hour(UnixNanos(friday_close.0 - 3_600 * SEC)), HourKind::Open);
//! assert_eq!(fx.hour(friday_close), HourKind::Closed);
//! assert!(MarketHours::AlwaysOpen.is_open(friday_close));
//! ```

#![warn(missing_docs)]

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Timelike,
    Weekday,
};
use chrono_tz::America::New_York;
use tickflow_schema::UnixNanos;

/// One hour in nanoseconds.
const HOUR_NANOS: i64 = 3_600_000_000_000;

/// The New York hour at which the FX trading day rolls (17:00).
const ROLL_HOUR: u32 = 17;

/// How many days [`ForexCalendar::next_open`] looks ahead before concluding "never": 31 years.
///
/// Any `(month, day)` that is not a holiday falls on a weekday within a few years (a Feb 29 within
/// twelve), so a calendar with no open day in this window is never open.
const MAX_SCAN_DAYS: u32 = 31 * 366;

/// The default holidays: New Year's Day and Christmas Day, as `(month, day)`.
const STANDARD_HOLIDAYS: [(u32, u32); 2] = [(1, 1), (12, 25)];

/// When a market is open.
#[derive(Debug, Clone, PartialEq)]
pub enum MarketHours {
    /// Open at every instant (crypto venues).
    AlwaysOpen,
    /// The spot-FX week in New York time, with holidays.
    Forex(ForexCalendar),
}

/// How much of one hour `[start, start + 1 h)` the market is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HourKind {
    /// Open for the whole hour.
    Open,
    /// Closed for the whole hour.
    Closed,
    /// Open for part of the hour and closed for the rest.
    Partial,
}

/// The spot-FX calendar: open Sunday 17:00 to Friday 17:00 New York time, closed on holidays.
///
/// A holiday `(month, day)` closes the trading day ending at 17:00 New York on that date, i.e.
/// from 17:00 on the eve to 17:00 on the day, when that date is a Monday–Friday. See the
/// [crate documentation](crate) for the full model. [`Default`] is [`ForexCalendar::standard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForexCalendar {
    /// The holidays as `(month, day)`, sorted, without duplicates, all valid dates.
    holidays: Vec<(u32, u32)>,
    /// `mask[month - 1]` has bit `day` set for each holiday: the lookup used on every query.
    mask: [u32; 12],
}

impl Default for ForexCalendar {
    fn default() -> Self {
        Self::standard()
    }
}

impl ForexCalendar {
    /// The standard FX calendar: the weekly hours, closed on Christmas Day (Dec 25) and New
    /// Year's Day (Jan 1).
    pub fn standard() -> Self {
        Self::with_holidays(STANDARD_HOLIDAYS.to_vec())
    }

    /// The weekly hours with these holidays, as `(month 1–12, day 1–31)`.
    ///
    /// Order and duplicates don't matter. Pairs that are no date in any year (`(13, 1)`,
    /// `(2, 30)`, `(4, 31)`, `(0, 5)`) are ignored; `(2, 29)` applies in leap years only. An
    /// empty list gives the plain weekly hours.
    pub fn with_holidays(holidays: Vec<(u32, u32)>) -> Self {
        let mut holidays = holidays;
        // 2000 is a leap year, so this accepts exactly the pairs that are a date in some year.
        holidays.retain(|&(month, day)| NaiveDate::from_ymd_opt(2000, month, day).is_some());
        holidays.sort_unstable();
        holidays.dedup();
        let mut mask = [0_u32; 12];
        for &(month, day) in &holidays {
            if let Some(bits) = mask.get_mut(month.wrapping_sub(1) as usize) {
                *bits |= 1 << day;
            }
        }
        Self { holidays, mask }
    }

    /// The holidays as `(month, day)`, sorted, without duplicates or invalid pairs.
    pub fn holidays(&self) -> &[(u32, u32)] {
        &self.holidays
    }

    /// Whether the market is open at `t`.
    pub fn is_open(&self, t: UnixNanos) -> bool {
        self.is_trading_day(trading_date(t.0))
    }

    /// The first instant `>= t` at which the market is open (`t` itself if open).
    ///
    /// `UnixNanos(i64::MAX)` if there is none within representable time (near the end of the
    /// range, or a calendar whose holidays cover every weekday).
    pub fn next_open(&self, t: UnixNanos) -> UnixNanos {
        let mut day = trading_date(t.0);
        if self.is_trading_day(day) {
            return t;
        }
        for _ in 0..MAX_SCAN_DAYS {
            let Some(next) = day.succ_opt() else { break };
            if self.is_trading_day(next) {
                // Trading day `next` starts at 17:00 New York on `day`.
                return UnixNanos(roll_instant(day).max(t.0));
            }
            day = next;
        }
        UnixNanos(i64::MAX)
    }

    /// The first instant `>= t` at which the market is closed (`t` itself if closed).
    ///
    /// `UnixNanos(i64::MAX)` if that would lie after the last representable instant.
    pub fn next_close(&self, t: UnixNanos) -> UnixNanos {
        let mut day = trading_date(t.0);
        if !self.is_trading_day(day) {
            return t;
        }
        // Every Saturday is closed, so this ends within a week.
        for _ in 0..8 {
            let Some(next) = day.succ_opt() else { break };
            if !self.is_trading_day(next) {
                // Open trading day `day` ends at 17:00 New York on `day`.
                return UnixNanos(roll_instant(day).max(t.0));
            }
            day = next;
        }
        UnixNanos(i64::MAX)
    }

    /// The parts of `[from, to)` during which the market is open, in order, merged (adjacent open
    /// spans are one segment) and clipped to `[from, to)`. Empty if `from >= to`.
    ///
    /// Walks the days as dates and converts to UTC only at transitions: a year costs about 365
    /// date steps and a hundred time-zone conversions, never a per-minute loop.
    pub fn open_segments(&self, from: UnixNanos, to: UnixNanos) -> Vec<(UnixNanos, UnixNanos)> {
        let mut segments = Vec::new();
        self.for_each_segment(from.0, to.0, |start, end| {
            segments.push((UnixNanos(start), UnixNanos(end)));
        });
        segments
    }

    /// Open nanoseconds inside `[from, to)` (0 if `from >= to`), saturating at `i64::MAX`.
    pub fn open_duration(&self, from: UnixNanos, to: UnixNanos) -> i64 {
        let mut total: i128 = 0;
        self.for_each_segment(from.0, to.0, |start, end| {
            total += i128::from(end) - i128::from(start);
        });
        saturate(total)
    }

    /// How much of the hour `[hour_start, hour_start + 1 h)` is open. Any instant works as the
    /// start; the hour is cut short at `i64::MAX`.
    pub fn hour(&self, hour_start: UnixNanos) -> HourKind {
        classify_hour(
            hour_start,
            |t| self.is_open(t),
            |t| self.next_open(t),
            |t| self.next_close(t),
        )
    }

    /// Calls `f(start, end)` for each open segment of `[from, to)`, in order.
    ///
    /// Walks the trading days from the one holding `from` to the one holding `to - 1`, a cheap
    /// date step each, and converts to UTC only where open and closed days meet. Always
    /// terminates: the walk is bounded by the dates of `from` and `to`.
    fn for_each_segment(&self, from: i64, to: i64, mut f: impl FnMut(i64, i64)) {
        if from >= to {
            return;
        }
        let mut day = trading_date(from);
        let last = trading_date(to - 1);
        let mut start = self.is_trading_day(day).then_some(from);
        while day < last {
            let Some(next) = day.succ_opt() else { break };
            let next_open = self.is_trading_day(next);
            match start {
                Some(s) if !next_open => {
                    let end = roll_instant(day).min(to);
                    if s < end {
                        f(s, end);
                    }
                    start = None;
                }
                None if next_open => start = Some(roll_instant(day).max(from)),
                _ => {}
            }
            day = next;
        }
        if let Some(s) = start.filter(|&s| s < to) {
            f(s, to);
        }
    }

    /// Whether trading day `date` (ending 17:00 New York on `date`) is open.
    fn is_trading_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.is_holiday(date)
    }

    fn is_holiday(&self, date: NaiveDate) -> bool {
        self.mask
            .get(date.month0() as usize)
            .is_some_and(|bits| bits & (1 << date.day()) != 0)
    }
}

impl From<ForexCalendar> for MarketHours {
    fn from(calendar: ForexCalendar) -> Self {
        Self::Forex(calendar)
    }
}

impl MarketHours {
    /// Whether the market is open at `t`.
    pub fn is_open(&self, t: UnixNanos) -> bool {
        match self {
            Self::AlwaysOpen => true,
            Self::Forex(calendar) => calendar.is_open(t),
        }
    }

    /// The first instant `>= t` at which the market is open (`t` itself if open).
    ///
    /// See [`ForexCalendar::next_open`]; always `t` for [`MarketHours::AlwaysOpen`].
    pub fn next_open(&self, t: UnixNanos) -> UnixNanos {
        match self {
            Self::AlwaysOpen => t,
            Self::Forex(calendar) => calendar.next_open(t),
        }
    }

    /// The first instant `>= t` at which the market is closed (`t` itself if closed).
    ///
    /// `UnixNanos(i64::MAX)` ("never") for [`MarketHours::AlwaysOpen`]; see
    /// [`ForexCalendar::next_close`].
    pub fn next_close(&self, t: UnixNanos) -> UnixNanos {
        match self {
            Self::AlwaysOpen => UnixNanos(i64::MAX),
            Self::Forex(calendar) => calendar.next_close(t),
        }
    }

    /// The parts of `[from, to)` during which the market is open, in order, merged, clipped to
    /// `[from, to)`. Empty if `from >= to`; the single segment `[from, to)` when always open.
    pub fn open_segments(&self, from: UnixNanos, to: UnixNanos) -> Vec<(UnixNanos, UnixNanos)> {
        match self {
            Self::AlwaysOpen if from < to => vec![(from, to)],
            Self::AlwaysOpen => Vec::new(),
            Self::Forex(calendar) => calendar.open_segments(from, to),
        }
    }

    /// Open nanoseconds inside `[from, to)` (0 if `from >= to`), saturating at `i64::MAX`.
    pub fn open_duration(&self, from: UnixNanos, to: UnixNanos) -> i64 {
        match self {
            Self::AlwaysOpen => saturate((i128::from(to.0) - i128::from(from.0)).max(0)),
            Self::Forex(calendar) => calendar.open_duration(from, to),
        }
    }

    /// How much of the hour `[hour_start, hour_start + 1 h)` is open.
    ///
    /// `hour_start` is meant to be an hour boundary, but any instant works (the hour is cut short
    /// at `i64::MAX`).
    pub fn hour(&self, hour_start: UnixNanos) -> HourKind {
        match self {
            Self::AlwaysOpen => HourKind::Open,
            Self::Forex(calendar) => calendar.hour(hour_start),
        }
    }
}

/// Classifies `[start, start + 1 h)` from the three point queries.
fn classify_hour(
    start: UnixNanos,
    is_open: impl Fn(UnixNanos) -> bool,
    next_open: impl Fn(UnixNanos) -> UnixNanos,
    next_close: impl Fn(UnixNanos) -> UnixNanos,
) -> HourKind {
    let end = start.0.saturating_add(HOUR_NANOS);
    if is_open(start) {
        if next_close(start).0 >= end {
            HourKind::Open
        } else {
            HourKind::Partial
        }
    } else if next_open(start).0 >= end {
        HourKind::Closed
    } else {
        HourKind::Partial
    }
}

/// The trading day `t` belongs to: its New York date, plus one from 17:00 on.
fn trading_date(t: i64) -> NaiveDate {
    let local = DateTime::from_timestamp_nanos(t)
        .with_timezone(&New_York)
        .naive_local();
    let date = local.date();
    if local.hour() >= ROLL_HOUR {
        // `succ_opt` only fails at chrono's maximum date, far past anything an i64 can hold.
        date.succ_opt().unwrap_or(date)
    } else {
        date
    }
}

/// The instant of 17:00 New York on `date`, saturated to the `i64` range.
fn roll_instant(date: NaiveDate) -> i64 {
    let local = NaiveDateTime::new(date, chrono::NaiveTime::MIN)
        .checked_add_signed(TimeDelta::hours(i64::from(ROLL_HOUR)));
    let Some(local) = local else {
        return saturate_toward(date);
    };
    let utc = match New_York.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.naive_utc()),
        // 17:00 inside a daylight-saving gap never happens in New York (changes are at 02:00).
        // Should the zone data ever say so, use the offset in force near that wall-clock time
        // rather than fail: the result is within the gap's width of the intended instant.
        LocalResult::None => {
            let offset = New_York.offset_from_utc_datetime(&local);
            local.checked_sub_signed(TimeDelta::seconds(i64::from(
                chrono::Offset::fix(&offset).local_minus_utc(),
            )))
        }
    };
    match utc.and_then(|utc| utc.and_utc().timestamp_nanos_opt()) {
        Some(nanos) => nanos,
        None => saturate_toward(date),
    }
}

/// `i64::MAX` for a date after the epoch, `i64::MIN` before: the saturated instant of `date`.
fn saturate_toward(date: NaiveDate) -> i64 {
    if date.year() >= 1970 {
        i64::MAX
    } else {
        i64::MIN
    }
}

/// Clamps an `i128` into `i64`.
fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}
