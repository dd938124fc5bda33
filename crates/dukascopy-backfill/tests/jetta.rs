//! Dukascopy's JSON data API: the fixture hour decodes to the values PROVENANCE.md lists, every
//! error is reachable with a crafted body, hostile bytes never panic, and whatever a (test-only)
//! encoder writes decodes back to the same quotes, the same ones `ticks::quotes` makes from bi5.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test code"
)]

mod common;

use std::fmt::Write as _;
use std::str::FromStr;

use common::*;
use dukascopy_backfill::instruments::INSTRUMENTS;
use dukascopy_backfill::jetta::{self, DEFAULT_MAX_TICKS, JettaError};
use dukascopy_backfill::ticks;
use proptest::prelude::*;
use tickflow_schema::{Decimal, Quote, Source, Symbol, UnixNanos};

const FIXTURE: &str = "jetta_json/ticks-EUR-USD-2026-7-13-12.json";
const HOUR_MS: i64 = 1_783_944_000_000;
const RECEIVED: UnixNanos = UnixNanos(1_800_000_000_000_000_000);

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::parse(s).unwrap()
}

fn eurusd() -> Symbol {
    sym("EUR/USD")
}

/// The fixture hour, decoded as EUR/USD.
fn decode(body: &[u8]) -> Result<Vec<Quote>, JettaError> {
    jetta::quotes(
        body,
        &eurusd(),
        "EUR-USD",
        ms(HOUR_MS),
        RECEIVED,
        DEFAULT_MAX_TICKS,
    )
}

/// A small EUR/USD answer for the fixture hour with the given fields (raw JSON text).
fn body(ask: &str, bid: &str, times: &str, asks: &str, bids: &str, vols: &str) -> String {
    format!(
        r#"{{"timestamp":{HOUR_MS},"multiplier":1.0E-5,"ask":{ask},"bid":{bid},"times":[{times}],"asks":[{asks}],"bids":[{bids}],"askVolumes":[{vols}],"bidVolumes":[{vols}]}}"#
    )
}

/// Two good ticks, as a base for the crafted errors.
fn good() -> String {
    body(
        "1.14277",
        "1.14273",
        "93,104",
        "0,-1",
        "0,2",
        "1800000.0,900000.0",
    )
}

#[test]
fn the_fixture_hour_decodes_to_the_documented_quotes() {
    let qs = decode(&fixture(FIXTURE)).unwrap();
    assert_eq!(qs.len(), 3551);
    let first = &qs[0];
    assert_eq!(first.event_time, ms(1_783_944_000_093));
    assert_eq!(first.ask.to_string(), "1.14277");
    assert_eq!(first.bid.to_string(), "1.14273");
    assert_eq!(first.ask_size.to_string(), "1800000");
    assert_eq!(first.bid_size.to_string(), "2700000");
    let last = qs.last().unwrap();
    assert_eq!(last.event_time, ms(1_783_947_597_150));
    assert_eq!(last.ask.to_string(), "1.14310");
    assert_eq!(last.bid.to_string(), "1.14309");
    assert_eq!(last.ask_size.to_string(), "900000");
    assert_eq!(last.bid_size.to_string(), "900000");
    assert_eq!(last.sequence, 3550);

    let start = ms(HOUR_MS);
    let end = ms(HOUR_MS + 3_600_000);
    for (i, q) in qs.iter().enumerate() {
        assert!(q.event_time > start && q.event_time < end, "tick {i}");
        assert_eq!(q.sequence, i as u64);
        assert_eq!(q.source, Source::Dukascopy);
        assert_eq!(q.symbol, eurusd());
        assert_eq!(q.venue_symbol, "EUR-USD");
        assert_eq!(q.received_at, RECEIVED);
        assert!(!q.indicative);
        // Prices at the instrument's scale, sizes whole units.
        assert_eq!((q.ask.scale(), q.bid.scale()), (5, 5));
        assert_eq!((q.ask_size.scale(), q.bid_size.scale()), (0, 0));
        assert!(q.ask_size > Decimal::ZERO && q.bid_size > Decimal::ZERO);
        assert!(q.ask >= q.bid, "tick {i}");
    }
    assert!(qs.windows(2).all(|w| w[0].event_time < w[1].event_time));
    // The second tick: deltas -2/-2 from the first, 104 ms later.
    assert_eq!((qs[1].ask, qs[1].bid), (dec("1.14275"), dec("1.14271")));
    assert_eq!(qs[1].event_time, ms(HOUR_MS + 197));
}

#[test]
fn an_empty_hour_is_no_quotes() {
    let empty = format!(
        r#"{{"timestamp":{HOUR_MS},"multiplier":1.0E-5,"ask":null,"bid":null,"times":[],"asks":[],"bids":[],"askVolumes":[],"bidVolumes":[]}}"#
    );
    assert_eq!(decode(empty.as_bytes()), Ok(vec![]));
    // Base prices with no ticks, a null multiplier with no ticks, whitespace, unknown fields.
    let quiet = body("1.14277", "1.14273", "", "", "", "");
    assert_eq!(decode(quiet.as_bytes()), Ok(vec![]));
    let null_multiplier = empty.replace("1.0E-5", "null");
    assert_eq!(decode(null_multiplier.as_bytes()), Ok(vec![]));
    let spaced = format!(
        " \n{}\n ",
        empty.replace(',', " , ").replace('{', "{\"shift\":60000,")
    );
    assert_eq!(decode(spaced.as_bytes()), Ok(vec![]));
}

#[test]
fn the_good_crafted_body_decodes() {
    let qs = decode(good().as_bytes()).unwrap();
    assert_eq!(qs.len(), 2);
    assert_eq!(qs[1].event_time, ms(HOUR_MS + 197));
    assert_eq!((qs[1].ask, qs[1].bid), (dec("1.14276"), dec("1.14275")));
    assert_eq!(qs[1].ask_size, dec("900000"));
}

fn err(body: &str) -> JettaError {
    decode(body.as_bytes()).unwrap_err()
}

#[test]
fn html_is_a_block_page() {
    for page in [
        "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title>",
        "\n  <html>\r\n<body>503</body></html>",
        "\u{feff}<html>",
    ] {
        let e = err(page);
        assert!(matches!(e, JettaError::Html { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("HTML page instead of JSON (a block page?)"),
            "{e}"
        );
    }
}

#[test]
fn bad_json_is_an_error_with_serdes_message() {
    let good = good();
    let cases = [
        String::new(),
        "{".to_owned(),
        "[]".to_owned(),
        "null".to_owned(),
        format!("{good} trailing"),
        good[..good.len() - 1].to_owned(),
        good.replace(
            r#""timestamp":1783944000000"#,
            r#""timestamp":"1783944000000""#,
        ),
        good.replace(r#""times":[93,104]"#, r#""times":[93,104.5]"#),
        good.replace(r#""asks":[0,-1]"#, r#""asks":[0,"x"]"#),
        good.replace(r#","bid":1.14273"#, ""),
        good.replace(r#""bidVolumes""#, r#""times":[1],"bidVolumes""#),
        good.replace(
            r#""askVolumes":[1800000.0,900000.0]"#,
            r#""askVolumes":[1e999,1]"#,
        ),
    ];
    for case in cases {
        let e = err(&case);
        assert!(matches!(e, JettaError::Json(_)), "{case}: {e}");
        assert!(
            e.to_string()
                .starts_with("not a Dukascopy JSON tick answer: ")
        );
    }
    assert!(
        err(&good.replace(r#","bid":1.14273"#, ""))
            .to_string()
            .contains("missing field `bid`")
    );
    assert!(
        err(&good.replace(r#""bidVolumes""#, r#""times":[1],"bidVolumes""#))
            .to_string()
            .contains("duplicate field `times`")
    );
    // A long message is cut.
    let long = good.replace("1783944000000", &format!("\"{}\"", "x".repeat(10_000)));
    let e = err(&long);
    assert!(matches!(e, JettaError::Json(_)));
    assert!(e.to_string().len() < 300, "{}", e.to_string().len());
}

#[test]
fn every_other_error_is_reachable() {
    let good = good();
    let hour = ms(HOUR_MS);
    let call = |body: &str, symbol: &str, hour_start: UnixNanos, max: usize| {
        jetta::quotes(
            body.as_bytes(),
            &sym(symbol),
            "X",
            hour_start,
            RECEIVED,
            max,
        )
        .unwrap_err()
    };

    let e = call(&good, "USD/RUB", hour, DEFAULT_MAX_TICKS);
    assert_eq!(e, JettaError::UnknownInstrument("USD/RUB".into()));
    assert!(e.to_string().contains("USD/RUB"));

    let e = call(&good, "EUR/USD", UnixNanos(hour.0 + 1), DEFAULT_MAX_TICKS);
    assert!(matches!(e, JettaError::NotAligned(_)), "{e}");

    let e = call(&good, "EUR/USD", ms(HOUR_MS + 3_600_000), DEFAULT_MAX_TICKS);
    assert_eq!(
        e,
        JettaError::WrongHour {
            timestamp_ms: HOUR_MS,
            expected_ms: HOUR_MS + 3_600_000
        }
    );
    assert!(e.to_string().contains("answer for another hour"), "{e}");

    // The table is the authority: the answer's multiplier must match it.
    let e = call(&good, "USD/JPY", hour, DEFAULT_MAX_TICKS);
    assert_eq!(
        e,
        JettaError::Multiplier {
            found: "1.0E-5".into(),
            symbol: "USD/JPY".into(),
            scale: 3
        }
    );
    assert!(e.to_string().contains("1.0E-5") && e.to_string().contains("USD/JPY"));
    for m in ["1.0E-3", "null", "-1.0E-5", "\"1.0E-5\"", "2.0E-5"] {
        let e = err(&good.replace("1.0E-5", m));
        assert!(matches!(e, JettaError::Multiplier { .. }), "{m}: {e}");
    }
    // Other spellings of 10^-5 are fine.
    for m in ["0.00001", "1e-5", "1.00E-5", "10E-6"] {
        assert_eq!(
            decode(good.replace("1.0E-5", m).as_bytes()).unwrap().len(),
            2
        );
    }

    let e = call(&good, "EUR/USD", hour, 1);
    assert_eq!(
        e,
        JettaError::TooManyTicks {
            column: "times",
            max: 1
        }
    );
    let e = decode_max(&fixture(FIXTURE), 3550);
    assert!(matches!(e, Err(JettaError::TooManyTicks { max: 3550, .. })));
    assert_eq!(decode_max(&fixture(FIXTURE), 3551).unwrap().len(), 3551);
    let e = call(&good.replace("0,2", "0,2,3"), "EUR/USD", hour, 2);
    assert_eq!(
        e,
        JettaError::TooManyTicks {
            column: "bids",
            max: 2
        }
    );

    let e = err(&good.replace("0,2", "0,2,3"));
    assert_eq!(
        e,
        JettaError::ColumnLengths {
            times: 2,
            asks: 2,
            bids: 3,
            ask_volumes: 2,
            bid_volumes: 2
        }
    );
    let e = err(&good.replace(r#""bidVolumes":[1800000.0,900000.0]"#, r#""bidVolumes":[]"#));
    assert!(
        matches!(e, JettaError::ColumnLengths { bid_volumes: 0, .. }),
        "{e}"
    );

    let e = err(&good.replace("1.14277", "null"));
    assert_eq!(
        e,
        JettaError::MissingBase {
            which: "ask",
            ticks: 2
        }
    );
    let e = err(&good.replace("1.14273", "null"));
    assert!(
        matches!(e, JettaError::MissingBase { which: "bid", .. }),
        "{e}"
    );

    for (base, reason) in [
        ("1.142775", "not a whole number of points"),
        ("-1.14277", "negative"),
        ("\"1.14277\"", "not a JSON number"),
        ("{}", "not a JSON number"),
        ("1e30", "too large"),
    ] {
        let e = err(&good.replace("1.14277", base));
        assert!(
            matches!(e, JettaError::BasePrice { which: "ask", reason: r, .. } if r == reason),
            "{base}: {e}"
        );
    }
    // Exact text, no float: 17 significant digits that a double would round are refused.
    let e = err(&good.replace("1.14277", "1.1427700000000001"));
    assert!(matches!(e, JettaError::BasePrice { .. }), "{e}");
    assert_eq!(
        decode(
            good.replace("1.14277", "1.142770000000000000000000000000000")
                .as_bytes()
        )
        .unwrap()[0]
            .ask,
        dec("1.14277")
    );

    for (times, index, offset) in [
        ("3600000,1", 0, 3_600_000),
        ("93,3599907", 1, 3_600_000),
        ("-1,1", 0, -1),
        ("93,-94", 1, -1),
        ("93,9223372036854775807", 1, 93 + i128::from(i64::MAX)),
    ] {
        let e = err(&good.replace("93,104", times));
        assert_eq!(
            e,
            JettaError::TickOutsideHour {
                index,
                offset_ms: offset
            },
            "{times}"
        );
    }
    // Times need not increase, as long as they stay inside the hour.
    assert_eq!(
        decode(good.replace("93,104", "93,-93").as_bytes()).unwrap()[1].event_time,
        hour
    );

    let e = err(&good.replace("0,-1", "-114278,0"));
    assert_eq!(
        e,
        JettaError::Price {
            index: 0,
            side: "ask",
            reason: "goes negative"
        }
    );
    let e = err(&good.replace("0,2", "0,9223372036854775807"));
    assert_eq!(
        e,
        JettaError::Price {
            index: 1,
            side: "bid",
            reason: "overflows"
        }
    );

    let e = err(&good.replace(
        r#""askVolumes":[1800000.0,900000.0]"#,
        r#""askVolumes":[1.0,-2.5]"#,
    ));
    assert_eq!(
        e,
        JettaError::Volume {
            what: "tick 1 ask volume".into(),
            value: "-2.5".into(),
            reason: "negative"
        }
    );
    let e = err(&good.replace(
        r#""askVolumes":[1800000.0,900000.0]"#,
        r#""askVolumes":[1e300,1]"#,
    ));
    assert!(matches!(e, JettaError::Volume { .. }), "{e}");
    // JSON has no NaN or infinity (serde refuses 1e999 as JSON); the conversion refuses them.
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = jetta::volume_units(v).unwrap_err().at("x".into());
        assert!(e.to_string().contains("not a finite number"), "{e}");
    }

    // The last aligned hour of UnixNanos: a late tick does not fit.
    let last_hour_ms = i64::MAX / 3_600_000_000_000 * 3_600_000;
    let late = good
        .replace("1783944000000", &last_hour_ms.to_string())
        .replace("93,104", "3599999,0");
    let e = call(&late, "EUR/USD", ms(last_hour_ms), DEFAULT_MAX_TICKS);
    assert_eq!(e, JettaError::TimeOutOfRange { index: 0 });
}

fn decode_max(body: &[u8], max: usize) -> Result<Vec<Quote>, JettaError> {
    jetta::quotes(body, &eurusd(), "EUR-USD", ms(HOUR_MS), RECEIVED, max)
}

// -------------------------------------------------------------------------------------------
// A test-only encoder, the inverse of `jetta::quotes`.

/// What the encoder writes for one tick: points and volumes in units (exact decimal text).
#[derive(Debug, Clone)]
struct EncTick {
    ms_in_hour: i64,
    ask: i64,
    bid: i64,
    ask_volume: Decimal,
    bid_volume: Decimal,
}

/// Java's `Double.toString` of 10^-scale, as Dukascopy writes the multiplier.
fn multiplier(scale: u32) -> String {
    if scale >= 4 {
        format!("1.0E-{scale}")
    } else {
        Decimal::new(1, scale).to_string()
    }
}

fn encode(hour_ms: i64, scale: u32, base: (i64, i64), ticks: &[EncTick]) -> String {
    let mut s = format!(
        r#"{{"timestamp":{hour_ms},"multiplier":{},"ask":{},"bid":{}"#,
        multiplier(scale),
        Decimal::new(base.0, scale).normalize(),
        Decimal::new(base.1, scale),
    );
    let column = |s: &mut String, name: &str, values: Vec<String>| {
        write!(s, r#","{name}":[{}]"#, values.join(",")).unwrap();
    };
    let deltas = |f: fn(&EncTick) -> i64, start: i64| {
        let mut prev = start;
        ticks
            .iter()
            .map(|t| {
                let d = f(t) - prev;
                prev = f(t);
                d.to_string()
            })
            .collect::<Vec<_>>()
    };
    column(&mut s, "times", deltas(|t| t.ms_in_hour, 0));
    column(&mut s, "asks", deltas(|t| t.ask, base.0));
    column(&mut s, "bids", deltas(|t| t.bid, base.1));
    // Volumes as the float text Dukascopy writes (`1800000.0`): f64's Debug text.
    let vols = |f: fn(&EncTick) -> Decimal| {
        ticks
            .iter()
            .map(|t| format!("{:?}", f64::from_str(&f(t).to_string()).unwrap()))
            .collect()
    };
    column(&mut s, "askVolumes", vols(|t| t.ask_volume));
    column(&mut s, "bidVolumes", vols(|t| t.bid_volume));
    s.push('}');
    s
}

/// The EUR/USD bi5 fixture hour, re-encoded as a JSON answer, decodes to exactly the quotes
/// `ticks::quotes` makes from the bi5 file (apart from the venue symbol, which is the caller's).
#[test]
fn a_bi5_hour_reencoded_as_json_gives_the_same_quotes() {
    for (path, symbol, hour_ms) in [
        (
            "EURUSD/2019/01/04/13h_ticks.bi5",
            "EUR/USD",
            1_549_285_200_000,
        ),
        (
            "BTCUSD/2023/01/20/12h_ticks.bi5",
            "BTC/USD",
            1_676_894_400_000,
        ),
    ] {
        let symbol = sym(symbol);
        let from_bi5 = ticks::quotes(&symbol, "V", ms(hour_ms), &ticks(path), RECEIVED).unwrap();
        let enc: Vec<EncTick> = from_bi5
            .iter()
            .map(|q| EncTick {
                ms_in_hour: (q.event_time.0 - ms(hour_ms).0) / 1_000_000,
                ask: q.ask.mantissa() as i64,
                bid: q.bid.mantissa() as i64,
                ask_volume: q.ask_size,
                bid_volume: q.bid_size,
            })
            .collect();
        let scale = from_bi5[0].ask.scale();
        let base = (enc[0].ask, enc[0].bid);
        let body = encode(hour_ms, scale, base, &enc);
        let from_json = jetta::quotes(
            body.as_bytes(),
            &symbol,
            "V",
            ms(hour_ms),
            RECEIVED,
            DEFAULT_MAX_TICKS,
        )
        .unwrap();
        assert_eq!(from_json, from_bi5, "{path}");
    }
}

fn volume() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        // FX: whole units, usually multiples of 10^4 … 10^6.
        (0i64..100, 4u32..7).prop_map(|(n, e)| Decimal::from(n * 10i64.pow(e))),
        // Anything with at most 15 significant digits (a double round-trips its text).
        (0i64..1_000_000_000_000, 0u32..4).prop_map(|(m, s)| Decimal::new(m, s).normalize()),
        // Crypto-sized fractions.
        (1i64..100, 5u32..9).prop_map(|(m, s)| Decimal::new(m, s)),
    ]
}

fn hour_data() -> impl Strategy<Value = (usize, i64, (i64, i64), Vec<EncTick>)> {
    let tick = (
        0i64..3_600_000,
        0i64..10_000_000,
        0i64..10_000_000,
        volume(),
        volume(),
    )
        .prop_map(|(ms_in_hour, ask, bid, ask_volume, bid_volume)| EncTick {
            ms_in_hour,
            ask,
            bid,
            ask_volume,
            bid_volume,
        });
    (
        0..INSTRUMENTS.len(),
        0i64..500_000,
        (0i64..10_000_000, 0i64..10_000_000),
        proptest::collection::vec(tick, 0..64),
        any::<bool>(),
    )
        .prop_map(|(instrument, hour, base, mut ticks, sorted)| {
            if sorted {
                ticks.sort_by_key(|t| t.ms_in_hour);
            }
            (instrument, hour * 3_600_000, base, ticks)
        })
}

fn mutated_fixture() -> impl Strategy<Value = Vec<u8>> {
    let body = fixture(FIXTURE);
    let len = body.len();
    (
        proptest::collection::vec((0..len, any::<u8>()), 0..8),
        proptest::collection::vec((0..len, 0usize..64), 0..3),
        0..=len,
    )
        .prop_map(move |(flips, cuts, truncate)| {
            let alphabet = b"0123456789-,.eE[]{}\" n";
            let mut b = body.clone();
            for (at, byte) in flips {
                // Mostly JSON-ish bytes, so the damage reaches past the tokenizer.
                let byte = if byte < 200 {
                    alphabet[usize::from(byte) % alphabet.len()]
                } else {
                    byte
                };
                if let Some(slot) = b.get_mut(at) {
                    *slot = byte;
                }
            }
            for (at, n) in cuts {
                let at = at.min(b.len());
                let end = (at + n).min(b.len());
                b.drain(at..end);
            }
            b.truncate(truncate);
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_through_the_encoder((instrument, hour_ms, base, enc) in hour_data()) {
        let inst = INSTRUMENTS[instrument];
        let symbol = sym(inst.symbol);
        let body = encode(hour_ms, inst.scale, base, &enc);
        let got = jetta::quotes(
            body.as_bytes(), &symbol, inst.datafeed_symbol, ms(hour_ms), RECEIVED, DEFAULT_MAX_TICKS,
        ).unwrap();
        prop_assert_eq!(got.len(), enc.len());
        for (i, (q, t)) in got.iter().zip(&enc).enumerate() {
            prop_assert_eq!(q.event_time, ms(hour_ms + t.ms_in_hour));
            prop_assert_eq!(q.ask, Decimal::new(t.ask, inst.scale));
            prop_assert_eq!(q.bid, Decimal::new(t.bid, inst.scale));
            prop_assert_eq!(q.ask_size, t.ask_volume.normalize());
            prop_assert_eq!(q.bid_size, t.bid_volume.normalize());
            prop_assert_eq!(q.sequence, i as u64);
            prop_assert_eq!(&q.symbol, &symbol);
            prop_assert_eq!(q.venue_symbol.as_str(), inst.datafeed_symbol);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = decode(&bytes) {
            prop_assert!(e.to_string().len() < 400);
        }
    }

    #[test]
    fn json_shaped_noise_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("{".to_owned()), Just("}".to_owned()), Just("[".to_owned()), Just("]".to_owned()),
                Just(",".to_owned()), Just(":".to_owned()), Just("null".to_owned()),
                Just("\"timestamp\"".to_owned()), Just("\"times\"".to_owned()), Just("\"ask\"".to_owned()),
                Just("\"askVolumes\"".to_owned()), Just("\"multiplier\"".to_owned()),
                Just(HOUR_MS.to_string()), Just("1.0E-5".to_owned()),
                any::<i64>().prop_map(|n| n.to_string()), any::<f64>().prop_map(|v| format!("{v:?}")),
            ],
            0..48,
        )
    ) {
        let text = parts.concat();
        if let Err(e) = decode(text.as_bytes()) {
            prop_assert!(e.to_string().len() < 400);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_mutated_fixture_never_panics(body in mutated_fixture()) {
        match decode(&body) {
            Ok(qs) => {
                for q in qs {
                    prop_assert!(q.event_time >= ms(HOUR_MS) && q.event_time < ms(HOUR_MS + 3_600_000));
                    prop_assert!(!q.ask.is_sign_negative() && !q.bid.is_sign_negative());
                }
            }
            Err(e) => prop_assert!(e.to_string().len() < 400),
        }
    }
}
