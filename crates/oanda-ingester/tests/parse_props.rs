//! The line parser on every captured line (exact values, `../shared/fixtures/PROVENANCE.md`
//! §3) and on damaged, random and generated input: it never panics, every price it accepts
//! survives the tick codec, and generated prices and times come back digit for digit. (The same
//! never-panic property is fuzzed with libFuzzer by `make fuzz`; this runs on stable.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use oanda_ingester::oanda::instruments;
use oanda_ingester::oanda::parse::{
    Line, ParseError, Price, parse_line, parse_line_via_serde, parse_unix_seconds,
};
use std::sync::LazyLock;

use proptest::prelude::*;
use rust_decimal::Decimal;
use tickflow_schema::{Source, Tick, UnixNanos};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/oanda/"
);
const PRICES_2016: &str = "pricing_stream_EURUSD_EURJPY_2016-10-27.ndjson";
const PRICES_2017: &str = "pricing_stream_EURUSD_EURJPY_2017-03-09_notebook.ndjson";
const FRIDAY_CLOSE: &str = "pricing_stream_EURUSD_2020-10-23_after_friday_close.ndjson";
const HEARTBEATS: &str = "transactions_stream_heartbeats_2017-03-09_notebook.ndjson";
const ALL: [&str; 4] = [PRICES_2016, PRICES_2017, FRIDAY_CLOSE, HEARTBEATS];

fn fixture_lines(name: &str) -> Vec<String> {
    let path = format!("{DIR}{name}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

/// A price as the fixtures' documentation states it: (instrument, time text, time ns, bid, bid
/// liquidity, ask, ask liquidity, tradeable).
type Want<'a> = (
    &'a str,
    &'a str,
    i64,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    bool,
);

fn assert_price(line: &str, want: Want<'_>) {
    let (instrument, time_text, ns, bid, bid_liq, ask, ask_liq, tradeable) = want;
    let Ok(Line::Price(p)) = parse_line(line.as_bytes()) else {
        panic!("not a price: {line}");
    };
    assert_eq!(
        p,
        Price {
            instrument: instrument.into(),
            time: UnixNanos(ns),
            bid: dec(bid),
            bid_liquidity: dec(bid_liq),
            ask: dec(ask),
            ask_liquidity: dec(ask_liq),
            tradeable,
        }
    );
    // Same value is not enough: the scale, too (`Decimal` equality ignores it).
    assert_eq!(p.bid.to_string(), bid);
    assert_eq!(p.ask.to_string(), ask);
    assert_eq!(p.bid_liquidity.to_string(), bid_liq);
    assert_eq!(p.ask_liquidity.to_string(), ask_liq);
    assert_eq!(p.time.to_string(), time_text);
}

fn assert_heartbeat(line: &str, time_text: &str, ns: i64) {
    assert_eq!(
        parse_line(line.as_bytes()),
        Ok(Line::Heartbeat {
            time: UnixNanos(ns)
        })
    );
    assert_eq!(UnixNanos(ns).to_string(), time_text);
}

#[test]
fn prices_2016_without_tradeable_flag() {
    let lines = fixture_lines(PRICES_2016);
    assert_eq!(lines.len(), 4);
    #[rustfmt::skip]
    assert_price(&lines[0], ("EUR_JPY", "2016-10-27T08:38:43.094548890Z", 1_477_557_523_094_548_890, "114.295", "1000000", "114.312", "1000000", true));
    assert_heartbeat(
        &lines[1],
        "2016-10-27T08:38:44.327443673Z",
        1_477_557_524_327_443_673,
    );
    #[rustfmt::skip]
    assert_price(&lines[2], ("EUR_USD", "2016-10-27T08:38:45.664613867Z", 1_477_557_525_664_613_867, "1.09177", "10000000", "1.09188", "10000000", true));
    #[rustfmt::skip]
    assert_price(&lines[3], ("EUR_JPY", "2016-10-27T08:38:45.681572782Z", 1_477_557_525_681_572_782, "114.298", "1000000", "114.315", "1000000", true));
}

#[test]
fn prices_2017_with_float_liquidity() {
    let lines = fixture_lines(PRICES_2017);
    assert_eq!(lines.len(), 4);
    assert!(lines[0].contains("\"liquidity\":10000000.0"));
    #[rustfmt::skip]
    let want: [Want<'_>; 4] = [
        ("EUR_USD", "2017-03-09T13:37:46.048197280Z", 1_489_066_666_048_197_280, "1.05522", "10000000", "1.05534", "10000000", true),
        // The per-instrument snapshot: older than the line before it.
        ("EUR_JPY", "2017-03-09T13:37:44.958026355Z", 1_489_066_664_958_026_355, "120.969", "1000000", "120.991", "1000000", true),
        ("EUR_JPY", "2017-03-09T13:37:47.550550833Z", 1_489_066_667_550_550_833, "120.975", "1000000", "120.995", "1000000", true),
        ("EUR_USD", "2017-03-09T13:37:49.349544372Z", 1_489_066_669_349_544_372, "1.05514", "10000000", "1.05527", "10000000", true),
    ];
    for (line, want) in lines.iter().zip(want) {
        assert_price(line, want);
    }
}

#[test]
fn after_friday_close_the_price_is_indicative() {
    let lines = fixture_lines(FRIDAY_CLOSE);
    assert_eq!(lines.len(), 1);
    #[rustfmt::skip]
    assert_price(&lines[0], ("EUR_USD", "2020-10-23T21:02:02.692522548Z", 1_603_486_922_692_522_548, "1.18571", "10000000", "1.18671", "10000000", false));
    let Ok(Line::Price(p)) = parse_line(lines[0].as_bytes()) else {
        panic!()
    };
    let symbol = instruments::canonical(&p.instrument).unwrap();
    assert_eq!(symbol.as_str(), "EUR/USD");
    let q = p.to_quote(symbol, UnixNanos(1_603_486_922_800_000_000), 3);
    assert!(q.indicative);
    assert_eq!(q.source, Source::Oanda);
    assert_eq!(q.venue_symbol, "EUR_USD");
    assert_eq!((q.bid_size, q.ask_size), (dec("10000000"), dec("10000000")));
    assert_eq!(q.sequence, 3);
}

#[test]
fn transactions_stream_heartbeats_are_heartbeats() {
    let lines = fixture_lines(HEARTBEATS);
    let want = [
        ("2017-03-09T15:08:57.512620407Z", 1_489_072_137_512_620_407),
        ("2017-03-09T15:09:02.594588344Z", 1_489_072_142_594_588_344),
        ("2017-03-09T15:09:07.657436396Z", 1_489_072_147_657_436_396),
        ("2017-03-09T15:09:12.721645564Z", 1_489_072_152_721_645_564),
    ];
    assert_eq!(lines.len(), want.len());
    for (line, (text, ns)) in lines.iter().zip(want) {
        assert_heartbeat(line, text, ns);
    }
}

/// Every captured line, as captured and with CRLF: understood, and each price's best levels
/// are the text of the first buckets (checked against a generic JSON parse), and survive the
/// tick codec.
#[test]
fn every_captured_line_is_understood() {
    let mut prices = 0;
    for name in ALL {
        for line in fixture_lines(name) {
            let parsed = parse_line(line.as_bytes()).unwrap();
            let crlf = format!("{line}\r");
            assert_eq!(parse_line(crlf.as_bytes()).unwrap(), parsed);
            let Line::Price(p) = parsed else {
                assert!(matches!(parsed, Line::Heartbeat { .. }), "{line}");
                continue;
            };
            prices += 1;
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(
                Some(p.bid.to_string().as_str()),
                v["bids"][0]["price"].as_str()
            );
            assert_eq!(
                Some(p.ask.to_string().as_str()),
                v["asks"][0]["price"].as_str()
            );
            assert_eq!(Some(p.instrument.as_str()), v["instrument"].as_str());
            let symbol = instruments::canonical(&p.instrument).unwrap();
            assert_eq!(instruments::venue_name(&symbol).unwrap(), p.instrument);
            let tick = Tick::Quote(p.to_quote(symbol, UnixNanos(1), 0));
            let mut buf = Vec::new();
            tick.encode_into(&mut buf);
            assert_eq!(Tick::decode(&buf).unwrap(), tick);
        }
    }
    assert_eq!(prices, 3 + 4 + 1);
}

/// What the ingester does with any line: parse (the fast path agreeing with serde), and for a
/// price map, quote and encode.
fn check(bytes: &[u8]) {
    let line = parse_line(bytes);
    assert_eq!(
        line,
        parse_line_via_serde(bytes),
        "{}",
        String::from_utf8_lossy(bytes)
    );
    match line {
        Ok(Line::Price(p)) => {
            if let Ok(symbol) = instruments::canonical(&p.instrument) {
                let tick = Tick::Quote(p.to_quote(symbol, UnixNanos(1), 0));
                assert_eq!(Tick::decode(&tick.encode()).unwrap(), tick);
            }
            assert!(p.bid > Decimal::ZERO && p.ask > Decimal::ZERO);
            assert!(!p.bid_liquidity.is_sign_negative() && !p.ask_liquidity.is_sign_negative());
            assert_eq!((p.bid_liquidity.scale(), p.ask_liquidity.scale()), (0, 0));
        }
        Ok(Line::Other { kind }) => assert!(kind.len() < 400),
        Ok(Line::Heartbeat { .. } | Line::Empty) => {}
        Err(e) => {
            assert!(e.to_string().len() < 400, "error text is bounded: {e}");
            assert!(!e.reason().is_empty());
        }
    }
}

/// Every captured line, read once.
static CORPUS: LazyLock<Vec<String>> =
    LazyLock::new(|| ALL.iter().flat_map(|name| fixture_lines(name)).collect());

/// A positive decimal as OANDA would print it (no leading zeros), and the text.
fn decimal_text() -> impl Strategy<Value = String> {
    ("0|[1-9][0-9]{0,12}", prop::option::of("[0-9]{1,12}"))
        .prop_map(|(whole, fraction)| match fraction {
            Some(f) => format!("{whole}.{f}"),
            None => whole,
        })
        .prop_filter("positive", |t| {
            t.bytes().any(|b| (b'1'..=b'9').contains(&b))
        })
}

/// Liquidity: an integer, sometimes printed as an integral float. (value, text)
fn liquidity_text() -> impl Strategy<Value = (u64, String)> {
    (0u64..=1_000_000_000_000_000_000, 0usize..3).prop_map(|(n, zeros)| {
        let text = if zeros == 0 {
            n.to_string()
        } else {
            format!("{n}.{}", "0".repeat(zeros))
        };
        (n, text)
    })
}

/// Up to 4 extra buckets behind the best.
fn depth() -> impl Strategy<Value = String> {
    prop::collection::vec((decimal_text(), liquidity_text()), 0..4).prop_map(|levels| {
        levels
            .into_iter()
            .map(|(p, (_, l))| format!(r#",{{"price":"{p}","liquidity":{l}}}"#))
            .collect()
    })
}

/// Any JSON value, valid or nearly so: nesting, escapes, odd numbers.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
        "[0-9.eE+-]{1,5}",
        "\"[a-zA-Z0-9 ._:-]{0,12}\"",
        "\"[a-z]{0,3}\\\\([nt\"\\\\/]|u00[0-9a-f]{2})[a-z]{0,3}\"",
        Just("\"1.09177\"".to_owned()),
        Just("\"2016-10-27T08:38:45.664613867Z\"".to_owned()),
        Just("\"1514852541.189833163\"".to_owned()),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone()), 0..4).prop_map(|items| {
                let items: Vec<String> =
                    items.into_iter().map(|(w, v)| format!("{w}{v}")).collect();
                format!("[{}]", items.join(","))
            }),
            prop::collection::vec((key(), ws(), inner), 0..4).prop_map(|fields| {
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, w, v)| format!("\"{k}\"{w}:{v}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", " ", "\t", "\r\n", "\u{c}"])
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "instrument",
            "time",
            "tradeable",
            "status",
            "bids",
            "asks",
            "price",
            "liquidity",
            "closeoutBid",
            "typ\\u0065",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z]{1,6}",
    ]
}

/// A bucket array: objects with the bucket's keys (good values or any), or anything.
fn book() -> impl Strategy<Value = String> {
    let bucket = prop::collection::vec(
        (
            prop::sample::select(vec!["price", "liquidity", "price", "liquidity", "other"]),
            prop_oneof![
                Just("\"1.09177\"".to_owned()),
                Just("10000000".to_owned()),
                Just("10000000.0".to_owned()),
                json_value(),
            ],
        ),
        0..4,
    )
    .prop_map(|fields| {
        let fields: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", fields.join(","))
    });
    prop_oneof![
        prop::collection::vec(prop_oneof![3 => bucket, 1 => json_value()], 0..4)
            .prop_map(|b| format!("[{}]", b.join(","))),
        json_value(),
    ]
}

/// A line with the fields tickflow reads and others, valid or nearly so.
fn json_like_line() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        (key(), json_value()),
        (Just("bids".to_owned()), book()),
        (Just("asks".to_owned()), book()),
        (
            Just("type".to_owned()),
            prop::sample::select(vec!["\"PRICE\"", "\"HEARTBEAT\"", "\"OTHER\""])
                .prop_map(str::to_owned)
        ),
        (
            Just("instrument".to_owned()),
            Just("\"EUR_USD\"".to_owned())
        ),
    ];
    (
        prop::collection::vec((ws(), field, ws()), 0..9),
        prop::sample::select(vec!["", "", "", ",", " x", "}"]),
    )
        .prop_map(|(fields, tail)| {
            let fields: Vec<String> = fields
                .into_iter()
                .map(|(w1, (k, v), w2)| format!("{w1}\"{k}\":{w2}{v}"))
                .collect();
            format!("{{{}}}{tail}", fields.join(","))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The fast scanner and serde agree on lines of every shape (`check` compares them).
    #[test]
    fn json_like_lines_agree_on_both_paths(line in json_like_line()) {
        check(line.as_bytes());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check(&bytes);
    }

    #[test]
    fn random_text_never_panics(s in "\\PC{0,300}") {
        check(s.as_bytes());
    }

    #[test]
    fn damaged_lines_never_panic(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let mut bytes = CORPUS[pick.index(CORPUS.len())].clone().into_bytes();
        for (at, b) in flips {
            let i = at.index(bytes.len().max(1));
            if i < bytes.len() {
                bytes[i] = b;
            }
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        check(&bytes);
    }

    #[test]
    fn generated_prices_round_trip(
        bid in decimal_text(),
        ask in decimal_text(),
        (bid_liq, bid_liq_text) in liquidity_text(),
        (ask_liq, ask_liq_text) in liquidity_text(),
        bid_depth in depth(),
        ask_depth in depth(),
        ns in 0i64..=i64::MAX,
        fraction_digits in 0u8..=9,
        tradeable in prop::option::of(any::<bool>()),
        status in prop::option::of(prop::sample::select(vec!["tradeable", "non-tradeable", "invalid"])),
        typed in any::<bool>(),
        order in Just((0..8).collect::<Vec<usize>>()).prop_shuffle(),
        crlf in any::<bool>(),
    ) {
        let time = UnixNanos(ns);
        let time_text = time.format_rfc3339(fraction_digits);
        let unit = 10i64.pow(9 - u32::from(fraction_digits));
        let want_time = UnixNanos(ns - ns.rem_euclid(unit));
        let fields = [
            typed.then(|| r#""type":"PRICE""#.to_owned()),
            Some(r#""instrument":"EUR_USD""#.to_owned()),
            Some(format!(r#""time":"{time_text}""#)),
            Some(format!(r#""bids":[{{"price":"{bid}","liquidity":{bid_liq_text}}}{bid_depth}]"#)),
            Some(format!(r#""asks":[{{"price":"{ask}","liquidity":{ask_liq_text}}}{ask_depth}]"#)),
            tradeable.map(|t| format!(r#""tradeable":{t}"#)),
            status.map(|s| format!(r#""status":"{s}""#)),
            Some(format!(r#""closeoutBid":"{bid}","closeoutAsk":"{ask}""#)),
        ];
        let body: Vec<String> = order.iter().filter_map(|&i| fields[i].clone()).collect();
        let line = format!("{{{}}}{}", body.join(","), if crlf { "\r" } else { "" });

        let Ok(Line::Price(p)) = parse_line(line.as_bytes()) else {
            panic!("not a price: {line} → {:?}", parse_line(line.as_bytes()));
        };
        prop_assert_eq!(p.bid.to_string(), bid);
        prop_assert_eq!(p.ask.to_string(), ask);
        prop_assert_eq!(p.bid_liquidity, Decimal::from(bid_liq));
        prop_assert_eq!(p.ask_liquidity, Decimal::from(ask_liq));
        prop_assert_eq!(p.bid_liquidity.to_string(), bid_liq.to_string());
        prop_assert_eq!(p.time, want_time);
        prop_assert_eq!(p.tradeable, tradeable.unwrap_or(status.is_none_or(|s| s == "tradeable")));
        check(line.as_bytes());
    }

    #[test]
    fn unix_times_parse_exactly(
        secs in 0i64..=9_223_372_035,
        fraction in prop::option::of("[0-9]{1,9}"),
    ) {
        let (text, ns) = match &fraction {
            Some(f) => {
                let digits: i64 = f.parse().unwrap();
                let scale = 10i64.pow(9 - u32::try_from(f.len()).unwrap());
                (format!("{secs}.{f}"), secs * 1_000_000_000 + digits * scale)
            }
            None => (secs.to_string(), secs * 1_000_000_000),
        };
        prop_assert_eq!(parse_unix_seconds(&text), Ok(UnixNanos(ns)));
        let line = format!(r#"{{"type":"HEARTBEAT","time":"{text}"}}"#);
        prop_assert_eq!(parse_line(line.as_bytes()), Ok(Line::Heartbeat { time: UnixNanos(ns) }));
        // A tenth fraction digit is refused, never rounded.
        let too_fine = format!("{secs}.{}7", fraction.as_deref().map_or("000000000".to_owned(), |f| format!("{f:0<9}")));
        let line = format!(r#"{{"type":"HEARTBEAT","time":"{too_fine}"}}"#);
        prop_assert!(matches!(parse_line(line.as_bytes()), Err(ParseError::BadTime(_))));
    }

    #[test]
    fn odd_numbers_never_panic(
        price in "-?[0-9]{0,40}(\\.[0-9]{0,40})?([eE][+-]?[0-9]{1,4})?",
        liquidity in "-?[0-9]{1,40}(\\.[0-9]{1,40})?([eE][+-]?[0-9]{1,4})?",
        time in "[0-9T:.Z+-]{0,40}",
    ) {
        let line = format!(
            r#"{{"type":"PRICE","instrument":"EUR_USD","time":"{time}","bids":[{{"price":"{price}","liquidity":{liquidity}}}],"asks":[{{"price":{price},"liquidity":1}}]}}"#
        );
        check(line.as_bytes());
    }
}
