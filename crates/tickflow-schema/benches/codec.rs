//! Tick encode and decode cost in ns per tick (target: under 200 ns for both together).
//!
//! Anchor: `anchor_copy`, a plain copy of the encoded bytes into a reused buffer. After criterion
//! has measured everything, the bench prints each codec step's mean next to the anchor's and the
//! ratio between them. Run with `make bench` or `cargo bench -p tickflow-schema --bench codec`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test and benchmark code: a failed setup should stop the run loudly"
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use criterion::Criterion;
use tickflow_schema::{Decimal, Quote, Side, Source, Symbol, Tick, Trade, UnixNanos};

fn trade() -> Tick {
    Tick::Trade(Trade {
        source: Source::Kraken,
        symbol: Symbol::parse("BTC/USD").unwrap(),
        venue_symbol: "BTC/USD".into(),
        event_time: UnixNanos(1_753_000_000_123_456_000),
        received_at: UnixNanos(1_753_000_000_125_000_000),
        price: Decimal::from_str("108000.1").unwrap(),
        size: Decimal::from_str("0.00012340").unwrap(),
        side: Side::Buy,
        trade_id: "83424531".into(),
    })
}

fn quote() -> Tick {
    Tick::Quote(Quote {
        source: Source::Oanda,
        symbol: Symbol::parse("EUR/USD").unwrap(),
        venue_symbol: "EUR_USD".into(),
        event_time: UnixNanos(1_753_000_000_123_456_789),
        received_at: UnixNanos(1_753_000_000_125_000_000),
        bid: Decimal::from_str("1.17421").unwrap(),
        ask: Decimal::from_str("1.17436").unwrap(),
        bid_size: Decimal::from_str("1000000").unwrap(),
        ask_size: Decimal::from_str("1000000").unwrap(),
        sequence: 0,
        indicative: false,
    })
}

const STEPS: [&str; 4] = ["anchor_copy", "encode", "decode", "roundtrip"];

fn bench(c: &mut Criterion) {
    for (name, tick) in [("trade", trade()), ("quote", quote())] {
        let bytes = tick.encode();
        let mut buf = Vec::with_capacity(256);
        let mut g = c.benchmark_group(name);
        g.bench_function(STEPS[0], |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(black_box(&bytes));
                black_box(&buf);
            })
        });
        g.bench_function(STEPS[1], |b| {
            b.iter(|| {
                buf.clear();
                black_box(&tick).encode_into(&mut buf);
                black_box(&buf);
            })
        });
        g.bench_function(STEPS[2], |b| {
            b.iter(|| Tick::decode(black_box(&bytes)).unwrap())
        });
        g.bench_function(STEPS[3], |b| {
            b.iter(|| {
                buf.clear();
                black_box(&tick).encode_into(&mut buf);
                Tick::decode(black_box(&buf)).unwrap()
            })
        });
        g.finish();
    }
}

fn mean_ns(dir: &Path, group: &str, step: &str) -> Option<f64> {
    let text =
        std::fs::read_to_string(dir.join(group).join(step).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion");
    let mut c = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    println!("\ncodec, mean ns per tick (anchor: anchor_copy, a memcpy of the encoded bytes):");
    for group in ["trade", "quote"] {
        let Some(anchor) = mean_ns(&dir, group, STEPS[0]) else {
            continue;
        };
        for step in &STEPS[1..] {
            if let Some(ns) = mean_ns(&dir, group, step) {
                println!(
                    "  {group:5} {step:9} {ns:8.1} ns   anchor {anchor:6.1} ns   ratio {:6.1}x",
                    ns / anchor
                );
            }
        }
    }
    println!("target: encode + decode (roundtrip) under 200 ns per tick");
}
