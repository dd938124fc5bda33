//! OANDA pricing-stream line → encoded tick, per line (target: under 1 µs per PRICE line).
//!
//! Anchor: `anchor_json_value`, parsing the same line into a generic `serde_json::Value` (what a
//! collector that does not type its lines pays before doing anything). The measured step,
//! `line_to_encoded_tick`, is everything the ingester does with a price line before Pulsar:
//! `parse_line`, the instrument → canonical symbol mapping, `Price::to_quote` and
//! `Tick::encode_into` a reused buffer. Two shapes: EUR_USD with 2 buckets a side and EUR_JPY
//! with 4 (OANDA's usual depths for these). After criterion has measured everything the bench
//! prints each step's mean next to the anchor's and the ratio. Run with `make bench` or
//! `cargo bench -p oanda-ingester --bench parse`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "benchmark code: a failed setup should stop the run loudly"
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;
use oanda_ingester::oanda::instruments;
use oanda_ingester::oanda::parse::{Line, parse_line};
use tickflow_schema::{Tick, UnixNanos};

/// Today's shape (`type`, `tradeable` and the deprecated `status`), 2 buckets a side.
const EUR_USD: &str = r#"{"type":"PRICE","time":"2016-10-27T08:38:45.664613867Z","bids":[{"price":"1.09177","liquidity":10000000},{"price":"1.09175","liquidity":10000000}],"asks":[{"price":"1.09188","liquidity":10000000},{"price":"1.09190","liquidity":10000000}],"closeoutBid":"1.09173","closeoutAsk":"1.09192","status":"tradeable","tradeable":true,"instrument":"EUR_USD"}"#;
/// The same shape, 4 buckets a side.
const EUR_JPY: &str = r#"{"type":"PRICE","time":"2016-10-27T08:38:43.094548890Z","bids":[{"price":"114.295","liquidity":1000000},{"price":"114.294","liquidity":2000000},{"price":"114.293","liquidity":5000000},{"price":"114.291","liquidity":10000000}],"asks":[{"price":"114.312","liquidity":1000000},{"price":"114.313","liquidity":2000000},{"price":"114.314","liquidity":5000000},{"price":"114.316","liquidity":10000000}],"closeoutBid":"114.291","closeoutAsk":"114.316","status":"tradeable","tradeable":true,"instrument":"EUR_JPY"}"#;

const GROUPS: [(&str, &str); 2] = [("eur_usd_2_levels", EUR_USD), ("eur_jpy_4_levels", EUR_JPY)];
const STEPS: [&str; 2] = ["anchor_json_value", "line_to_encoded_tick"];

/// parse → symbol → quote → encoded bytes, as the ingester does per line.
fn line_to_encoded_tick(line: &[u8], rx: UnixNanos, sequence: u64, buf: &mut Vec<u8>) {
    let Ok(Line::Price(p)) = parse_line(line) else {
        panic!("not a price line");
    };
    let symbol = instruments::canonical(&p.instrument).unwrap();
    Tick::Quote(p.to_quote(symbol, rx, sequence)).encode_into(buf);
}

fn bench(c: &mut Criterion) {
    let rx = UnixNanos(1_477_557_525_700_000_000);
    for (name, line) in GROUPS {
        let mut g = c.benchmark_group(name);
        g.bench_function(STEPS[0], |b| {
            b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(line)).unwrap())
        });
        let mut buf = Vec::with_capacity(256);
        g.bench_function(STEPS[1], |b| {
            b.iter(|| {
                buf.clear();
                line_to_encoded_tick(black_box(line.as_bytes()), rx, 0, &mut buf);
                black_box(&buf);
            })
        });
        assert!(!buf.is_empty());
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
    println!("\noanda line → encoded tick, mean ns per line (anchor: anchor_json_value):");
    for (group, _) in GROUPS {
        let (Some(anchor), Some(ns)) = (
            mean_ns(&dir, group, STEPS[0]),
            mean_ns(&dir, group, STEPS[1]),
        ) else {
            continue;
        };
        println!(
            "  {group:16} {ns:8.1} ns   anchor {anchor:8.1} ns   ratio {:5.2}x   target 1000 ns: {}",
            ns / anchor,
            if ns < 1000.0 { "met" } else { "MISSED" }
        );
    }
}
