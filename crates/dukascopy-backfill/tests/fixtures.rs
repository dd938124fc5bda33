//! Every Dukascopy fixture decodes to the values PROVENANCE.md §1.1 lists (sizes, counts,
//! first and last records, extremes), and the instrument table agrees with the datafeed's
//! decimal factors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    clippy::excessive_precision,
    reason = "test code; the float literals are PROVENANCE.md's values (each f32 printed as f64)"
)]

mod common;

use std::collections::BTreeMap;
use std::str::FromStr;

use common::*;
use dukascopy_backfill::bi5::{self, CandleRecord, TickRecord};
use dukascopy_backfill::candles::bid_minute_candles;
use dukascopy_backfill::instruments::{self, INSTRUMENTS};
use dukascopy_backfill::ticks::quotes;
use tickflow_schema::{Decimal, Quote, Source, Symbol, UnixNanos};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::parse(s).unwrap()
}

/// What PROVENANCE.md says about one tick hour.
struct Hour {
    path: &'static str,
    symbol: &'static str,
    venue: &'static str,
    hour_start_ms: i64,
    raw_len: usize,
    count: usize,
    first: TickRecord,
    last: TickRecord,
    ask_range: (u32, u32),
    bid_range: (u32, u32),
}

fn tick(ms_in_hour: u32, ask: u32, bid: u32, ask_volume: f32, bid_volume: f32) -> TickRecord {
    TickRecord {
        ms_in_hour,
        ask_points: ask,
        bid_points: bid,
        ask_volume,
        bid_volume,
    }
}

fn hours() -> Vec<Hour> {
    vec![
        Hour {
            path: "EURUSD/2019/01/04/00h_ticks.bi5",
            symbol: "EUR/USD",
            venue: "EURUSD",
            hour_start_ms: 1_549_238_400_000,
            raw_len: 74_660,
            count: 3733,
            first: tick(994, 114_545, 114_543, 1.0, 2.059_999_942_779_541),
            last: tick(3_599_808, 114_559, 114_555, 4.119_999_885_559_082, 1.0),
            ask_range: (114_533, 114_601),
            bid_range: (114_529, 114_597),
        },
        Hour {
            path: "EURUSD/2019/01/04/13h_ticks.bi5",
            symbol: "EUR/USD",
            venue: "EURUSD",
            hour_start_ms: 1_549_285_200_000,
            raw_len: 155_260,
            count: 7763,
            first: tick(92, 114_476, 114_475, 1.5, 5.699_999_809_265_137),
            last: tick(3_599_971, 114_490, 114_488, 1.0, 3.0),
            ask_range: (114_431, 114_514),
            bid_range: (114_429, 114_511),
        },
        Hour {
            path: "EURUSD/2019/01/05/22h_ticks.bi5",
            symbol: "EUR/USD",
            venue: "EURUSD",
            hour_start_ms: 1_549_404_000_000,
            raw_len: 35_140,
            count: 1757,
            first: tick(94, 114_062, 114_054, 0.75, 0.75),
            last: tick(
                3_599_731,
                114_058,
                114_040,
                2.690_000_057_220_459,
                8.560_000_419_616_7,
            ),
            ask_range: (114_036, 114_076),
            bid_range: (114_021, 114_064),
        },
        Hour {
            path: "BTCUSD/2023/01/20/12h_ticks.bi5",
            symbol: "BTC/USD",
            venue: "BTCUSD",
            hour_start_ms: 1_676_894_400_000,
            raw_len: 170_460,
            count: 8523,
            first: tick(
                84,
                249_215,
                248_494,
                9.999_999_974_752_427e-7,
                1.299_999_985_349_131_7e-5,
            ),
            last: tick(
                3_598_781,
                248_564,
                247_847,
                1.999_999_994_950_485_4e-6,
                1.999_999_994_950_485_4e-6,
            ),
            ask_range: (247_656, 249_527),
            bid_range: (246_936, 248_800),
        },
        Hour {
            path: "BTCUSD/2023/01/20/13h_ticks.bi5",
            symbol: "BTC/USD",
            venue: "BTCUSD",
            hour_start_ms: 1_676_898_000_000,
            raw_len: 123_860,
            count: 6193,
            first: tick(
                886,
                248_563,
                247_847,
                9.000_000_318_337_698e-6,
                1.999_999_994_950_485_4e-6,
            ),
            last: tick(
                3_599_233,
                248_928,
                248_226,
                1.999_999_994_950_485_4e-6,
                9.999_999_974_752_427e-7,
            ),
            ask_range: (248_445, 249_559),
            bid_range: (247_724, 248_832),
        },
    ]
}

#[test]
fn every_tick_hour_decodes_to_the_documented_records() {
    for h in hours() {
        let raw = raw(h.path);
        assert_eq!(raw.len(), h.raw_len, "{}", h.path);
        let records = bi5::tick_records(&raw).unwrap();
        assert_eq!(records.len(), h.count, "{}", h.path);
        assert_eq!(records.first(), Some(&h.first), "{}", h.path);
        assert_eq!(records.last(), Some(&h.last), "{}", h.path);
        let asks = records.iter().map(|r| r.ask_points);
        let bids = records.iter().map(|r| r.bid_points);
        assert_eq!(
            (asks.clone().min().unwrap(), asks.max().unwrap()),
            h.ask_range,
            "{}",
            h.path
        );
        assert_eq!(
            (bids.clone().min().unwrap(), bids.max().unwrap()),
            h.bid_range,
            "{}",
            h.path
        );
        // Ask comes first in the record: in every fixture ask >= bid.
        assert!(records.iter().all(|r| r.ask_points >= r.bid_points));
        assert!(
            records
                .windows(2)
                .all(|w| w[0].ms_in_hour <= w[1].ms_in_hour)
        );
        // The header's declared size is the real size.
        let body = fixture(h.path);
        let declared = u64::from_le_bytes(body[5..13].try_into().unwrap());
        assert_eq!(declared, h.raw_len as u64);
        assert_eq!(&body[..5], &[0x5d, 0x00, 0x00, 0x40, 0x00]);
    }
}

#[test]
fn every_tick_hour_becomes_exact_quotes() {
    let received = UnixNanos(1_800_000_000_000_000_000);
    for h in hours() {
        let symbol = sym(h.symbol);
        let records = ticks(h.path);
        let hour_start = ms(h.hour_start_ms);
        let qs = quotes(&symbol, h.venue, hour_start, &records, received).unwrap();
        assert_eq!(qs.len(), h.count);
        for (i, q) in qs.iter().enumerate() {
            assert_eq!(q.sequence, i as u64);
            assert_eq!(q.source, Source::Dukascopy);
            assert!(!q.indicative);
            assert_eq!(q.received_at, received);
            assert_eq!(q.venue_symbol, h.venue);
            assert!(q.event_time >= hour_start);
            assert!(q.event_time.0 < hour_start.0 + 3_600_000_000_000);
            assert!(q.ask >= q.bid);
        }
        // Decoding again gives the same keys: a rerun inserts nothing new.
        let again = quotes(&symbol, h.venue, hour_start, &records, received).unwrap();
        assert_eq!(qs, again);
    }
}

#[allow(clippy::too_many_arguments, reason = "one row of a table")]
fn quote(
    symbol: &str,
    venue: &str,
    event_ms: i64,
    ask: &str,
    bid: &str,
    ask_size: &str,
    bid_size: &str,
    sequence: u64,
) -> Quote {
    Quote {
        source: Source::Dukascopy,
        symbol: sym(symbol),
        venue_symbol: venue.into(),
        event_time: ms(event_ms),
        received_at: UnixNanos(7),
        bid: dec(bid),
        ask: dec(ask),
        bid_size: dec(bid_size),
        ask_size: dec(ask_size),
        sequence,
        indicative: false,
    }
}

#[test]
fn first_and_last_quotes_are_exactly_the_documented_ones() {
    // (path, symbol, venue, hour start ms, first quote, last quote) from PROVENANCE.md §1.1 and
    // PROTOCOLS.md §3.8; sizes are the stored millions × 10^6 (see `volume_units`).
    let cases = [
        (
            "EURUSD/2019/01/04/00h_ticks.bi5",
            "EUR/USD",
            "EURUSD",
            1_549_238_400_000,
            quote(
                "EUR/USD",
                "EURUSD",
                1_549_238_400_994,
                "1.14545",
                "1.14543",
                "1000000",
                "2060000",
                0,
            ),
            quote(
                "EUR/USD",
                "EURUSD",
                1_549_241_999_808,
                "1.14559",
                "1.14555",
                "4120000",
                "1000000",
                3732,
            ),
        ),
        (
            "EURUSD/2019/01/04/13h_ticks.bi5",
            "EUR/USD",
            "EURUSD",
            1_549_285_200_000,
            quote(
                "EUR/USD",
                "EURUSD",
                1_549_285_200_092,
                "1.14476",
                "1.14475",
                "1500000",
                "5700000",
                0,
            ),
            quote(
                "EUR/USD",
                "EURUSD",
                1_549_288_799_971,
                "1.14490",
                "1.14488",
                "1000000",
                "3000000",
                7762,
            ),
        ),
        (
            "EURUSD/2019/01/05/22h_ticks.bi5",
            "EUR/USD",
            "EURUSD",
            1_549_404_000_000,
            quote(
                "EUR/USD",
                "EURUSD",
                1_549_404_000_094,
                "1.14062",
                "1.14054",
                "750000",
                "750000",
                0,
            ),
            quote(
                "EUR/USD",
                "EURUSD",
                1_549_407_599_731,
                "1.14058",
                "1.14040",
                "2690000",
                "8560000",
                1756,
            ),
        ),
        (
            "BTCUSD/2023/01/20/12h_ticks.bi5",
            "BTC/USD",
            "BTCUSD",
            1_676_894_400_000,
            quote(
                "BTC/USD",
                "BTCUSD",
                1_676_894_400_084,
                "24921.5",
                "24849.4",
                "1",
                "13",
                0,
            ),
            quote(
                "BTC/USD",
                "BTCUSD",
                1_676_897_998_781,
                "24856.4",
                "24784.7",
                "2",
                "2",
                8522,
            ),
        ),
        (
            "BTCUSD/2023/01/20/13h_ticks.bi5",
            "BTC/USD",
            "BTCUSD",
            1_676_898_000_000,
            quote(
                "BTC/USD",
                "BTCUSD",
                1_676_898_000_886,
                "24856.3",
                "24784.7",
                "9",
                "2",
                0,
            ),
            quote(
                "BTC/USD",
                "BTCUSD",
                1_676_901_599_233,
                "24892.8",
                "24822.6",
                "2",
                "1",
                6192,
            ),
        ),
    ];
    for (path, symbol, venue, hour_ms, first, last) in cases {
        let qs = quotes(&sym(symbol), venue, ms(hour_ms), &ticks(path), UnixNanos(7)).unwrap();
        assert_eq!(qs.first(), Some(&first), "{path}");
        assert_eq!(qs.last(), Some(&last), "{path}");
        // Decimal equality is numeric; the text (scale) must be exact too.
        let q = qs.last().unwrap();
        assert_eq!(q.ask.to_string(), last.ask.to_string(), "{path}");
        assert_eq!(q.bid.to_string(), last.bid.to_string(), "{path}");
        assert_eq!(q.bid_size.to_string(), last.bid_size.to_string(), "{path}");
    }
    // The hour start is the URL's hour with the month zero-based: 2019/01/04/13h is 4 February.
    assert_eq!(
        ms(1_549_285_200_000).to_string(),
        "2019-02-04T13:00:00.000000000Z"
    );
    assert_eq!(at("2023-02-20T12:00:00Z"), ms(1_676_894_400_000));
}

/// What PROVENANCE.md says about one candle file.
struct CandleFile {
    path: &'static str,
    raw_len: usize,
    count: usize,
    first: CandleRecord,
    last: CandleRecord,
    flat: usize,
}

fn bar(secs: u32, open: u32, close: u32, low: u32, high: u32, volume: f32) -> CandleRecord {
    CandleRecord {
        secs_from_start: secs,
        open,
        close,
        low,
        high,
        volume,
    }
}

#[test]
fn every_candle_file_decodes_to_the_documented_records() {
    let files = [
        CandleFile {
            path: "EURUSD/2019/01/04/BID_candles_min_1.bi5",
            raw_len: 34_560,
            count: 1440,
            first: bar(0, 114_543, 114_569, 114_542, 114_570, 293.760_009_765_625),
            last: bar(
                86_340,
                114_351,
                114_349,
                114_349,
                114_353,
                115.410_003_662_109_38,
            ),
            flat: 0,
        },
        CandleFile {
            path: "EURUSD/2019/00/BID_candles_hour_1.bi5",
            raw_len: 17_856,
            count: 744,
            first: bar(0, 114_627, 114_627, 114_627, 114_627, 0.0),
            last: bar(
                2_674_800,
                114_459,
                114_482,
                114_446,
                114_484,
                5_765.209_960_937_5,
            ),
            flat: 214,
        },
        CandleFile {
            path: "EURUSD/2019/BID_candles_day_1.bi5",
            raw_len: 8760,
            count: 365,
            first: bar(0, 114_598, 114_612, 114_566, 114_676, 11_818.900_390_625),
            last: bar(
                31_449_600,
                112_013,
                112_072,
                111_987,
                112_391,
                107_777.312_5,
            ),
            flat: 52,
        },
    ];
    for f in files {
        let raw = raw(f.path);
        assert_eq!(raw.len(), f.raw_len, "{}", f.path);
        let records = bi5::candle_records(&raw).unwrap();
        assert_eq!(records.len(), f.count, "{}", f.path);
        assert_eq!(records.first(), Some(&f.first), "{}", f.path);
        assert_eq!(records.last(), Some(&f.last), "{}", f.path);
        assert_eq!(
            records.iter().filter(|r| r.volume == 0.0).count(),
            f.flat,
            "{}",
            f.path
        );
        // The O, C, L, H order is right: low and high bound open and close in every bar.
        for r in &records {
            assert!(r.low <= r.open.min(r.close) && r.high >= r.open.max(r.close));
        }
        // Flat bars really are flat.
        for r in records.iter().filter(|r| r.volume == 0.0) {
            assert!(r.open == r.close && r.low == r.open && r.high == r.open);
        }
        // Consecutive slots: minutes, hours, days.
        let step = records[1].secs_from_start - records[0].secs_from_start;
        assert!(
            records
                .windows(2)
                .all(|w| w[1].secs_from_start - w[0].secs_from_start == step)
        );
    }
}

#[test]
fn minute_bars_are_exact() {
    let records = candles("EURUSD/2019/01/04/BID_candles_min_1.bi5");
    let day = at("2019-02-04T00:00:00Z");
    let bars = bid_minute_candles(&sym("EUR/USD"), day, &records).unwrap();
    assert_eq!(bars.len(), 1440);
    let first = &bars[0];
    assert_eq!(first.start, day);
    assert_eq!(
        (
            first.open.to_string(),
            first.high.to_string(),
            first.low.to_string(),
            first.close.to_string(),
            first.volume.to_string()
        ),
        (
            "1.14543".into(),
            "1.14570".into(),
            "1.14542".into(),
            "1.14569".into(),
            "293760000".into()
        )
    );
    let last = &bars[1439];
    assert_eq!(last.start, at("2019-02-04T23:59:00Z"));
    assert_eq!(
        (last.open, last.high, last.low, last.close, last.volume),
        (
            dec("1.14351"),
            dec("1.14353"),
            dec("1.14349"),
            dec("1.14349"),
            dec("115410000")
        )
    );
    for (i, b) in bars.iter().enumerate() {
        assert_eq!(b.start, UnixNanos(day.0 + i as i64 * 60_000_000_000));
        assert!(b.low <= b.open && b.low <= b.close && b.high >= b.open && b.high >= b.close);
    }
}

#[test]
fn the_day_bar_is_the_days_minute_bars() {
    // Day bar of 2019-02-04 (slot 34 of the year file) = the aggregate of that day's M1 bars.
    let day_records = candles("EURUSD/2019/BID_candles_day_1.bi5");
    let d = day_records[34];
    assert_eq!(
        d.secs_from_start as i64,
        (at("2019-02-04T00:00:00Z").0 - at("2019-01-01T00:00:00Z").0) / 1_000_000_000
    );
    let m = candles("EURUSD/2019/01/04/BID_candles_min_1.bi5");
    assert_eq!(d.open, m[0].open);
    assert_eq!(d.close, m[1439].close);
    assert_eq!(d.low, m.iter().map(|r| r.low).min().unwrap());
    assert_eq!(d.high, m.iter().map(|r| r.high).max().unwrap());
}

#[test]
fn the_empty_body_is_an_empty_hour() {
    let body = fixture("empty.bi5");
    assert!(body.is_empty());
    let raw = bi5::decompress(&body, bi5::DEFAULT_MAX_OUTPUT).unwrap();
    assert!(raw.is_empty());
    assert!(bi5::tick_records(&raw).unwrap().is_empty());
    assert!(bi5::candle_records(&raw).unwrap().is_empty());
    let qs = quotes(
        &sym("EUR/USD"),
        "EURUSD",
        at("2019-02-02T10:00:00Z"),
        &[],
        UnixNanos(0),
    )
    .unwrap();
    assert!(qs.is_empty());
}

/// The CSV's decimal factor as a number of decimal places (`999999.9999999999` is the float
/// artefact of 10^6).
fn places(factor: &str) -> u32 {
    let f: f64 = factor.parse().unwrap();
    let places = f.log10().round() as u32;
    assert!(
        (10f64.powi(places as i32) - f).abs() < 1e-6,
        "{factor} is not a power of ten"
    );
    places
}

#[test]
fn the_instrument_table_agrees_with_the_datafeeds_decimal_factors() {
    let csv =
        std::fs::read_to_string(fixture_dir().join("instrument_decimal_factors.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("datafeed_symbol,name,decimal_factor,start_hour_for_ticks_utc")
    );
    let rows: BTreeMap<&str, (&str, &str)> = lines
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            assert_eq!(cols.len(), 4, "{l}");
            (cols[0], (cols[1], cols[2]))
        })
        .collect();
    assert_eq!(rows.len(), 1607);
    for i in INSTRUMENTS {
        let (name, factor) = rows
            .get(i.datafeed_symbol)
            .unwrap_or_else(|| panic!("{} is not a datafeed symbol", i.datafeed_symbol));
        assert_eq!(*name, i.symbol, "canonical symbol of {}", i.datafeed_symbol);
        assert_eq!(places(factor), i.scale, "scale of {}", i.symbol);
        // Canonical, parseable, and found both ways.
        let s = sym(i.symbol);
        assert_eq!(s.as_str(), i.symbol);
        assert_eq!(instruments::price_scale(&s), Some(i.scale));
        assert_eq!(
            instruments::by_datafeed_symbol(i.datafeed_symbol).map(|x| x.symbol),
            Some(i.symbol)
        );
    }
    // No duplicates.
    let mut symbols: Vec<&str> = INSTRUMENTS.iter().map(|i| i.symbol).collect();
    symbols.sort_unstable();
    symbols.dedup();
    assert_eq!(symbols.len(), INSTRUMENTS.len());
    // The ones PROTOCOLS.md §3.5 names, and the fixtures' instruments.
    for (s, scale) in [
        ("EUR/USD", 5),
        ("GBP/USD", 5),
        ("USD/CAD", 5),
        ("USD/CHF", 5),
        ("AUD/USD", 5),
        ("USD/HKD", 5),
        ("USD/JPY", 3),
        ("EUR/JPY", 3),
        ("XAU/USD", 3),
        ("XAG/USD", 3),
        ("BTC/USD", 1),
        ("ETH/USD", 1),
        ("EUR/CZK", 4),
        ("USD/CZK", 4),
        ("USD/THB", 4),
        ("USD/SAR", 2),
        ("USD/AED", 2),
    ] {
        assert_eq!(instruments::price_scale(&sym(s)), Some(scale), "{s}");
    }
    assert_eq!(instruments::price_scale(&sym("AAPL")), None);
    assert_eq!(
        instruments::price(114_476, 5).unwrap().to_string(),
        "1.14476"
    );
    assert_eq!(
        instruments::price(249_215, 1).unwrap().to_string(),
        "24921.5"
    );
}
