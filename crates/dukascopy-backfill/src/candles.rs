//! One day of 1-minute candle records → exact bars, and the same bars built from quotes.
//!
//! The two agree on the fixtures: the BID bars of 2019-02-04 00:00–00:59 and 13:00–13:59 equal,
//! field for field (open, high, low, close and volume), the bars [`bid_minute_ohlc`] builds from
//! the bid side of that day's 00h and 13h tick files. That is the property a database test can
//! check: ticks stored, bars queried, Dukascopy's own bars as the expected value.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use tickflow_schema::{Quote, Symbol, UnixNanos};

use crate::Bi5Error;
use crate::bi5::CandleRecord;
use crate::instruments::{price, require_scale};
use crate::ticks::volume_units;

/// Nanoseconds in a minute.
pub const NANOS_PER_MINUTE: i64 = 60_000_000_000;

/// Nanoseconds in a day.
pub const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// Seconds in a day.
const SECS_PER_DAY: u32 = 86_400;

/// One bar with exact prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candle {
    /// Start of the bar (UTC).
    pub start: UnixNanos,
    /// First price.
    pub open: Decimal,
    /// Highest price.
    pub high: Decimal,
    /// Lowest price.
    pub low: Decimal,
    /// Last price.
    pub close: Decimal,
    /// Volume in units of the base currency (the stored millions × 10^6, as for quote sizes:
    /// see [`volume_units`]). 0 marks Dukascopy's flat filler bars of closed-market minutes.
    pub volume: Decimal,
}

/// Decodes the records of a `{BID|ASK}_candles_min_1.bi5` file (one UTC day) into bars.
///
/// `day_start` is the file's UTC midnight (URL month zero-based) and must be on a day boundary.
/// Every record's offset must be a whole minute of the day (0, 60, …, 86 340 s), else
/// [`Bi5Error::CandleOffset`]. Prices are exact at the instrument's scale; the stored order
/// open, close, low, high is put back into OHLC here. Flat filler bars (volume 0) are kept: the
/// file has one record per minute, traded or not. The ASK file decodes the same way.
pub fn bid_minute_candles(
    symbol: &Symbol,
    day_start: UnixNanos,
    records: &[CandleRecord],
) -> Result<Vec<Candle>, Bi5Error> {
    let scale = require_scale(symbol)?;
    if day_start.0.rem_euclid(NANOS_PER_DAY) != 0 {
        return Err(Bi5Error::NotAligned {
            what: "day_start",
            at: day_start,
            boundary: "day",
        });
    }
    records
        .iter()
        .enumerate()
        .map(|(index, r)| {
            if r.secs_from_start >= SECS_PER_DAY || r.secs_from_start % 60 != 0 {
                return Err(Bi5Error::CandleOffset {
                    index,
                    secs_from_start: r.secs_from_start,
                    expected: "a whole minute of the day (0..=86340, step 60)",
                });
            }
            let start = i64::from(r.secs_from_start)
                .checked_mul(1_000_000_000)
                .and_then(|offset| day_start.0.checked_add(offset))
                .map(UnixNanos)
                .ok_or_else(|| Bi5Error::TimeOutOfRange {
                    what: format!("candle {index}"),
                })?;
            Ok(Candle {
                start,
                open: price(r.open, scale)?,
                high: price(r.high, scale)?,
                low: price(r.low, scale)?,
                close: price(r.close, scale)?,
                volume: volume_units(r.volume)
                    .map_err(|e| e.at(format!("candle {index} volume")))?,
            })
        })
        .collect()
}

/// One-minute bars of the **bid** side of quotes of one symbol, the way Dukascopy builds its
/// BID bars: a bar for every minute that has at least one quote (minutes without quotes get no
/// bar here, where Dukascopy's file has a flat filler bar), open = the first quote's bid in the
/// minute, close = the last, high/low = the extremes, volume = the sum of the bid sizes.
///
/// Minutes are `[m, m + 60 s)` of the event time; quotes are taken in (event time, sequence)
/// order whatever order they come in.
pub fn bid_minute_ohlc(quotes: &[Quote]) -> Vec<Candle> {
    let mut sorted: Vec<&Quote> = quotes.iter().collect();
    sorted.sort_by_key(|q| (q.event_time, q.sequence));
    let mut bars: BTreeMap<i64, Candle> = BTreeMap::new();
    for q in sorted {
        let start = q.event_time.0.div_euclid(NANOS_PER_MINUTE) * NANOS_PER_MINUTE;
        bars.entry(start)
            .and_modify(|bar| {
                bar.high = bar.high.max(q.bid);
                bar.low = bar.low.min(q.bid);
                bar.close = q.bid;
                bar.volume = bar.volume.saturating_add(q.bid_size);
            })
            .or_insert_with(|| Candle {
                start: UnixNanos(start),
                open: q.bid,
                high: q.bid,
                low: q.bid,
                close: q.bid,
                volume: q.bid_size,
            });
    }
    bars.into_values().collect()
}
