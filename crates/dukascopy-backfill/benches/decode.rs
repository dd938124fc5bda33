//! Dukascopy hour decoding, ticks per second on one core (target: 2,000,000 ticks/s for the full
//! `.bi5` path).
//!
//! - `bi5`: `bi5::decompress` + `bi5::tick_records` + `ticks::quotes` (body → exact domain
//!   quotes) on the BTCUSD 2023/01/20 12h (8523 ticks) and EURUSD 2019/01/04 13h (7763 ticks)
//!   fixtures. Anchor: `anchor_lzma_decompress_only`, the `bi5::decompress` step alone on the
//!   same body (the floor of the path).
//! - `json`: `jetta::quotes` on the JSON API fixture (EUR-USD 2026-07-13 12h, 3551 ticks).
//!   Anchor: `anchor_serde_json_value`, parsing the same body into a generic
//!   `serde_json::Value` (what a decoder that does not type the answer pays before doing
//!   anything).
//!
//! The bodies are read from `../shared/fixtures/dukascopy` (next to the repository) when the
//! bench starts. After criterion has measured everything the bench prints ticks/s of each step
//! next to its anchor and the ratio of their times. Run with
//! `cargo bench -p dukascopy-backfill --bench decode`.

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

use criterion::{BenchmarkId, Criterion, Throughput};
use dukascopy_backfill::bi5;
use dukascopy_backfill::jetta;
use dukascopy_backfill::ticks;
use tickflow_schema::{Quote, Symbol, UnixNanos};

/// A fixture hour: file, canonical symbol, venue symbol, hour start (ms), ticks.
struct Case {
    name: &'static str,
    path: &'static str,
    symbol: &'static str,
    venue: &'static str,
    hour_ms: i64,
    ticks: u64,
}

const BI5: [Case; 2] = [
    Case {
        name: "btcusd_2023_01_20_12h",
        path: "BTCUSD/2023/01/20/12h_ticks.bi5",
        symbol: "BTC/USD",
        venue: "BTCUSD",
        hour_ms: 1_676_894_400_000,
        ticks: 8523,
    },
    Case {
        name: "eurusd_2019_01_04_13h",
        path: "EURUSD/2019/01/04/13h_ticks.bi5",
        symbol: "EUR/USD",
        venue: "EURUSD",
        hour_ms: 1_549_285_200_000,
        ticks: 7763,
    },
];

const JSON: [Case; 1] = [Case {
    name: "eurusd_2026_07_13_12h",
    path: "jetta_json/ticks-EUR-USD-2026-7-13-12.json",
    symbol: "EUR/USD",
    venue: "EUR-USD",
    hour_ms: 1_783_944_000_000,
    ticks: 3551,
}];

/// (group, anchor step, measured step, cases)
const GROUPS: [(&str, &str, &str, &[Case]); 2] = [
    ("bi5", "anchor_lzma_decompress_only", "bi5_to_quotes", &BI5),
    ("json", "anchor_serde_json_value", "json_to_quotes", &JSON),
];

const TARGET_TICKS_PER_SEC: f64 = 2_000_000.0;

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/dukascopy")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "fixture {} is missing ({e}): the bench expects the shared fixtures at ../shared next to the repository",
            p.display()
        )
    })
}

fn ms(ms: i64) -> UnixNanos {
    UnixNanos(ms * 1_000_000)
}

const RECEIVED: UnixNanos = UnixNanos(1_800_000_000_000_000_000);

/// The full `.bi5` path: body → records → quotes.
fn bi5_to_quotes(body: &[u8], symbol: &Symbol, case: &Case) -> Vec<Quote> {
    let raw = bi5::decompress(body, bi5::DEFAULT_MAX_OUTPUT).unwrap();
    let records = bi5::tick_records(&raw).unwrap();
    ticks::quotes(symbol, case.venue, ms(case.hour_ms), &records, RECEIVED).unwrap()
}

fn json_to_quotes(body: &[u8], symbol: &Symbol, case: &Case) -> Vec<Quote> {
    jetta::quotes(
        body,
        symbol,
        case.venue,
        ms(case.hour_ms),
        RECEIVED,
        jetta::DEFAULT_MAX_TICKS,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    for (group, anchor, step, cases) in GROUPS {
        let mut g = c.benchmark_group(group);
        for case in cases {
            let body = fixture(case.path);
            let symbol = Symbol::parse(case.symbol).unwrap();
            g.throughput(Throughput::Elements(case.ticks));
            let decode: fn(&[u8], &Symbol, &Case) -> Vec<Quote> = match group {
                "bi5" => bi5_to_quotes,
                _ => json_to_quotes,
            };
            assert_eq!(decode(&body, &symbol, case).len() as u64, case.ticks);
            g.bench_with_input(
                BenchmarkId::new(anchor, case.name),
                &body,
                |b, body| match group {
                    "bi5" => b.iter(|| {
                        bi5::decompress(black_box(body), bi5::DEFAULT_MAX_OUTPUT).unwrap()
                    }),
                    _ => b.iter(|| {
                        serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap()
                    }),
                },
            );
            g.bench_with_input(BenchmarkId::new(step, case.name), &body, |b, body| {
                b.iter(|| decode(black_box(body), &symbol, case))
            });
        }
        g.finish();
    }
}

fn mean_ns(dir: &Path, group: &str, step: &str, case: &str) -> Option<f64> {
    let path = dir
        .join(group)
        .join(step)
        .join(case)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
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
    println!("\nDukascopy hour → quotes, ticks/s on one core (ratio = step time / anchor time):");
    for (group, anchor, step, cases) in GROUPS {
        for case in cases {
            let (Some(anchor_ns), Some(step_ns)) = (
                mean_ns(&dir, group, anchor, case.name),
                mean_ns(&dir, group, step, case.name),
            ) else {
                continue;
            };
            let per_sec = |ns: f64| case.ticks as f64 / ns * 1e9;
            let target = if group == "bi5" {
                if per_sec(step_ns) >= TARGET_TICKS_PER_SEC {
                    "   target 2M ticks/s: met"
                } else {
                    "   target 2M ticks/s: MISSED"
                }
            } else {
                ""
            };
            println!(
                "  {group:4} {:22} {step:14} {:>11.0} ticks/s ({:8.1} µs)   {anchor:27} {:>11.0} ticks/s ({:8.1} µs)   ratio {:5.2}x{target}",
                case.name,
                per_sec(step_ns),
                step_ns / 1e3,
                per_sec(anchor_ns),
                anchor_ns / 1e3,
                step_ns / anchor_ns,
            );
        }
    }
}
