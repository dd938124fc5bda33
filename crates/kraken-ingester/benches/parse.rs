//! Kraken v2 frame → encoded tick, per message (target: under 1 µs per trade frame).
//!
//! Anchor: `anchor_json_value`, parsing the same frame into a generic `serde_json::Value` (what
//! a collector that does not type its frames pays before doing anything). For scale outside
//! this run: NautilusTrader's Rust adapter is reported at about 742 ns per trade frame and
//! 1.64 µs per quote on a much faster CPU. After criterion has measured everything the bench
//! prints each path's mean next to the anchor's and the ratio. Run with `make bench` or
//! `cargo bench -p kraken-ingester --bench parse`.

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
use kraken_ingester::kraken::parse::parse_frame;
use tickflow_schema::UnixNanos;

const TRADE: &str = r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":108000.1,"qty":0.00012340,"ord_type":"market","trade_id":83424531,"timestamp":"2025-07-20T08:26:40.123456Z"}]}"#;
const TICKER: &str = r#"{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":108000.0,"bid_qty":0.81500000,"ask":108000.1,"ask_qty":3.20119857,"last":108000.1,"volume":1732.94115731,"vwap":107124.6,"low":105530.0,"high":108444.0,"change":2077.2,"change_pct":1.96,"timestamp":"2025-07-20T08:26:40.123456Z"}]}"#;

const STEPS: [&str; 2] = ["anchor_json_value", "frame_to_encoded_tick"];

fn bench(c: &mut Criterion) {
    let rx = UnixNanos(1_753_000_000_125_000_000);
    for (name, frame) in [("trade", TRADE), ("ticker", TICKER)] {
        let mut g = c.benchmark_group(name);
        g.bench_function(STEPS[0], |b| {
            b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(frame)).unwrap())
        });
        let mut ticks = Vec::with_capacity(8);
        let mut bad = Vec::new();
        let mut buf = Vec::with_capacity(256);
        g.bench_function(STEPS[1], |b| {
            b.iter(|| {
                ticks.clear();
                buf.clear();
                parse_frame(black_box(frame), rx, &mut ticks, &mut bad).unwrap();
                for t in &ticks {
                    t.encode_into(&mut buf);
                }
                black_box(&buf);
            })
        });
        assert_eq!(ticks.len(), 1);
        assert!(bad.is_empty());
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
    println!("\nkraken frame → encoded tick, mean ns per frame (anchor: anchor_json_value):");
    for group in ["trade", "ticker"] {
        let (Some(anchor), Some(ns)) = (
            mean_ns(&dir, group, STEPS[0]),
            mean_ns(&dir, group, STEPS[1]),
        ) else {
            continue;
        };
        println!(
            "  {group:6} {ns:8.1} ns   anchor {anchor:8.1} ns   ratio {:5.2}x   target 1000 ns: {}",
            ns / anchor,
            if ns < 1000.0 { "met" } else { "MISSED" }
        );
    }
}
