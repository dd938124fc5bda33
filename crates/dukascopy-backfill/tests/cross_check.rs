//! The key property for the database test: Dukascopy's own BID one-minute bars equal the bars
//! built from the bid side of its ticks.
//!
//! The fixtures hold two tick hours of the candle file's day, 2019-02-04 00h and 13h
//! (`EURUSD/2019/01/04/{00,13}h_ticks.bi5`, month zero-based). For all 120 minutes of those two
//! hours (00:00–00:59 and 13:00–13:59 UTC) the bar from ticks equals the stored bar: open =
//! first bid of the minute, close = last bid, high/low = extremes of the bid, and the volume =
//! the exact decimal sum of the ticks' bid volumes. Every one of these minutes has ticks, and no
//! tick falls exactly on a minute boundary, so the fixtures do not show how Dukascopy treats a
//! minute without ticks inside a trading hour (its file would carry a flat bar) or which minute a
//! tick at exactly :00.000 belongs to (we use `[m, m + 60 s)`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test code"
)]

mod common;

use common::*;
use dukascopy_backfill::candles::{Candle, bid_minute_candles, bid_minute_ohlc};
use dukascopy_backfill::ticks::quotes;
use tickflow_schema::{Symbol, UnixNanos};

#[test]
fn bid_minute_bars_equal_the_bars_built_from_the_ticks_bid() {
    let eurusd = Symbol::parse("EUR/USD").unwrap();
    let day = at("2019-02-04T00:00:00Z");
    let stored = bid_minute_candles(
        &eurusd,
        day,
        &candles("EURUSD/2019/01/04/BID_candles_min_1.bi5"),
    )
    .unwrap();
    let mut compared = Vec::new();
    for (path, hour) in [
        ("EURUSD/2019/01/04/00h_ticks.bi5", 0usize),
        ("EURUSD/2019/01/04/13h_ticks.bi5", 13),
    ] {
        let hour_start = UnixNanos(day.0 + hour as i64 * 3_600_000_000_000);
        let qs = quotes(&eurusd, "EURUSD", hour_start, &ticks(path), UnixNanos(0)).unwrap();
        let built = bid_minute_ohlc(&qs);
        // Every minute of the hour has ticks.
        assert_eq!(built.len(), 60, "{path}");
        // No tick sits exactly on a minute boundary (the boundary rule is untested by data).
        assert!(qs.iter().all(|q| q.event_time.0 % 60_000_000_000 != 0));
        let expected: &[Candle] = &stored[hour * 60..hour * 60 + 60];
        for (b, e) in built.iter().zip(expected) {
            assert_eq!(b, e, "{path}: minute {}", b.start);
            // Field for field, scale included.
            assert_eq!(b.open.to_string(), e.open.to_string());
            assert_eq!(b.close.to_string(), e.close.to_string());
        }
        compared.extend(built.iter().map(|b| b.start));
    }
    assert_eq!(compared.len(), 120);
    assert_eq!(compared[0], at("2019-02-04T00:00:00Z"));
    assert_eq!(compared[59], at("2019-02-04T00:59:00Z"));
    assert_eq!(compared[60], at("2019-02-04T13:00:00Z"));
    assert_eq!(compared[119], at("2019-02-04T13:59:00Z"));
}

#[test]
fn the_ask_side_does_not_make_the_bid_bars() {
    // Guard against an ask/bid swap: built from the first price of the record, the bars differ.
    let eurusd = Symbol::parse("EUR/USD").unwrap();
    let day = at("2019-02-04T00:00:00Z");
    let stored = bid_minute_candles(
        &eurusd,
        day,
        &candles("EURUSD/2019/01/04/BID_candles_min_1.bi5"),
    )
    .unwrap();
    let mut qs = quotes(
        &eurusd,
        "EURUSD",
        day,
        &ticks("EURUSD/2019/01/04/00h_ticks.bi5"),
        UnixNanos(0),
    )
    .unwrap();
    for q in &mut qs {
        std::mem::swap(&mut q.bid, &mut q.ask);
        std::mem::swap(&mut q.bid_size, &mut q.ask_size);
    }
    let built = bid_minute_ohlc(&qs);
    let equal = built
        .iter()
        .zip(&stored[..60])
        .filter(|(b, e)| b == e)
        .count();
    assert_eq!(equal, 0);
}
