//! The frame parser on every captured frame and on damaged and random input: it never panics,
//! every tick it accepts survives the codec, control frames are control. (The same property is
//! fuzzed with libFuzzer by `make fuzz`; this runs on stable in `make test`.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use kraken_ingester::kraken::parse::{Frame, parse_frame};
use proptest::prelude::*;
use tickflow_schema::{Tick, UnixNanos};

fn fixture_lines(path: &str) -> Vec<String> {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/kraken")
        .join(path);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn check(text: &str) {
    let mut ticks = Vec::new();
    let mut bad = Vec::new();
    let _ = parse_frame(text, UnixNanos(1), &mut ticks, &mut bad);
    for t in &ticks {
        assert_eq!(&Tick::decode(&t.encode()).unwrap(), t);
    }
    for e in &bad {
        assert!(e.to_string().len() < 400);
    }
}

fn corpus() -> Vec<String> {
    let mut all = fixture_lines("v2/docs_examples.ndjson");
    all.extend(
        fixture_lines("v2/book_BTCUSD_d10_2023-07-30.ndjson")
            .into_iter()
            .take(20),
    );
    all.extend(fixture_lines("v1/trade_10pairs_2021-04-17.ndjson"));
    all
}

#[test]
fn every_captured_frame_is_understood_or_refused_cleanly() {
    let docs = fixture_lines("v2/docs_examples.ndjson");
    let kinds: Vec<&str> = docs
        .iter()
        .map(|line| {
            let mut ticks = Vec::new();
            let mut bad = Vec::new();
            match parse_frame(line, UnixNanos(1), &mut ticks, &mut bad).unwrap() {
                Frame::Status { .. } => "status",
                Frame::Ack { .. } => "ack",
                Frame::Data { ticks: 2, .. } => "trade x2",
                Frame::Data { ticks: 1, .. } => "ticker",
                Frame::Heartbeat => "heartbeat",
                Frame::Pong { .. } => "pong",
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "status",
            "ack",
            "ack",
            "trade x2",
            "ticker",
            "heartbeat",
            "pong"
        ]
    );
    // The book capture: a channel we do not read, never an error.
    for line in fixture_lines("v2/book_BTCUSD_d10_2023-07-30.ndjson") {
        let mut ticks = Vec::new();
        let mut bad = Vec::new();
        let frame = parse_frame(&line, UnixNanos(1), &mut ticks, &mut bad).unwrap();
        assert_eq!(frame, Frame::OtherChannel("book".into()));
    }
    // v1 frames (arrays, `event` objects) are not v2: errors, not panics, not ticks.
    for path in [
        "v1/trade_10pairs_2021-04-17.ndjson",
        "v1/ticker_10pairs_2021-04-17.ndjson",
        "v1/misc_trade_book_spread_tardis.ndjson",
    ] {
        for line in fixture_lines(path) {
            let mut ticks = Vec::new();
            let mut bad = Vec::new();
            assert!(parse_frame(&line, UnixNanos(1), &mut ticks, &mut bad).is_err());
            assert!(ticks.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_text_never_panics(s in "\\PC{0,300}") {
        check(&s);
    }

    #[test]
    fn damaged_frames_never_panic(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let corpus = corpus();
        let mut bytes = corpus[pick.index(corpus.len())].clone().into_bytes();
        for (at, b) in flips {
            let i = at.index(bytes.len().max(1));
            if i < bytes.len() {
                bytes[i] = b;
            }
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(bytes.len() / 2));
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn trade_frames_with_odd_numbers_never_panic(
        price in "-?[0-9]{0,40}(\\.[0-9]{0,40})?([eE][+-]?[0-9]{1,4})?",
        id in any::<u64>(),
        ts in "[0-9T:.Z+-]{0,40}",
    ) {
        let frame = format!(
            r#"{{"channel":"trade","type":"update","data":[{{"symbol":"BTC/USD","side":"buy","price":{price},"qty":1,"ord_type":"limit","trade_id":{id},"timestamp":"{ts}"}}]}}"#
        );
        check(&frame);
    }
}
