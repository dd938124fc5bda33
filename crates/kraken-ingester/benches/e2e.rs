//! End to end on this machine: the fake Kraken of `venue-sim` sending as fast as it can into the
//! real `kraken-ingester` binary (a separate process, 100 symbols) and the real Pulsar.
//!
//! Measures, in one run:
//! - **throughput**: trades sent one per frame for `BENCH_SECONDS` (default 20), then until
//!   Pulsar acknowledged all of them; rate = trades / (first send → last acknowledgement).
//!   Target ≥ 100,000 ticks/s.
//! - **anchor `anchor_direct_publish`**: the same number of trade ticks published straight to the
//!   same 100 topics with `tickflow-pulsar`'s producer (no WebSocket, no parsing, no queue): the
//!   ceiling this machine's broker allows. The ratio says what the ingester costs on top.
//! - **latency at 10,000 ticks/s** for `BENCH_SECONDS`: the 99th percentile of frame arrival →
//!   Pulsar acknowledgement, read from the ingester's own histogram (buckets √2 apart, so the
//!   figure is the upper bound of the bucket holding the 99th percentile). Target < 20 ms.
//! - **resident memory** of the ingester process (VmRSS after the run and VmHWM, its peak).
//!   Target < 64 MiB.
//!
//! Needs the broker of `make infra` (`PULSAR_URL`); `make bench` runs it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "benchmark code: a failed setup should stop the run loudly"
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tickflow_pulsar::{Namespace, TopicName};
use tickflow_schema::{Source, Symbol, TickKind};
use venue_sim::kraken::KrakenSim;

#[path = "../tests/common/mod.rs"]
mod common;
use common::{pulsar_config, sim_trade};
use tickflow_testkit::process::{
    ServiceProcess, buckets, direct_publish, free_port, p99, synthetic_trade, value,
};

const SYMBOLS: usize = 100;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn symbols() -> Vec<Symbol> {
    let run = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    (0..SYMBOLS)
        .map(|i| Symbol::parse(&format!("B{}{i:03}/USD", &run[..6])).unwrap())
        .collect()
}

async fn start_service(sim: &KrakenSim, symbols: &[Symbol]) -> ServiceProcess {
    let port = free_port();
    let list: Vec<String> = symbols.iter().map(ToString::to_string).collect();
    ServiceProcess::start(
        env!("CARGO_BIN_EXE_kraken-ingester"),
        &[
            ("KRAKEN_WS_URL", sim.url()),
            ("KRAKEN_SYMBOLS", list.join(",")),
            ("PULSAR_URL", pulsar_config().url),
            ("KRAKEN_INGESTER_ADMIN_LISTEN", format!("127.0.0.1:{port}")),
        ],
        port,
    )
    .await
}

const PUBLISHED: &str = "kraken_ingester_ticks_published_total{kind=\"trade\"}";
const LATENCY: &str = "kraken_ingester_publish_latency_seconds";

async fn published_trades(service: &ServiceProcess) -> u64 {
    value(&service.metrics().await, PUBLISHED) as u64
}

async fn wait_published(service: &ServiceProcess, target: u64, limit: Duration) -> Instant {
    service.wait_metric(PUBLISHED, target as f64, limit).await
}

async fn anchor_direct_publish(symbols: &[Symbol], count: u64) -> f64 {
    let topics: Vec<TopicName> = symbols
        .iter()
        .map(|s| TopicName::data(Namespace::Realtime, Source::Kraken, s, TickKind::Trade).unwrap())
        .collect();
    direct_publish(&topics, count, |i| {
        let idx = usize::try_from(i).unwrap() % symbols.len();
        synthetic_trade(&symbols[idx], i / SYMBOLS as u64 + 1)
    })
    .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = env_num("BENCH_SECONDS", 20);
    let sim = KrakenSim::start().await.unwrap();
    let symbols = symbols();
    let service = start_service(&sim, &symbols).await;
    let (rss_idle, _) = service.memory_kib();
    let mut ids: BTreeMap<usize, u64> = BTreeMap::new();
    let mut next = |i: u64| {
        let idx = usize::try_from(i).unwrap() % SYMBOLS;
        let id = ids.entry(idx).or_insert(0);
        *id += 1;
        (idx, *id)
    };

    // Throughput: as fast as the sim can send, one trade per frame.
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut sent = 0u64;
    while Instant::now() < until {
        for _ in 0..1000 {
            let (idx, id) = next(sent);
            sim.trades(&[sim_trade(&symbols[idx], id)]).await;
            sent += 1;
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    let burst = sent;
    let done = wait_published(&service, sent, Duration::from_secs(300)).await;
    let rate = sent as f64 / done.duration_since(start).as_secs_f64();
    let (rss_after_burst, _) = service.memory_kib();

    // Latency at 10,000 ticks/s: 10 trades every millisecond.
    let before = buckets(&service.metrics().await, LATENCY);
    let published_before = published_trades(&service).await;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let paced_start = Instant::now();
    let mut paced = 0u64;
    while paced_start.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        for _ in 0..10 {
            let (idx, id) = next(sent);
            sim.trades(&[sim_trade(&symbols[idx], id)]).await;
            sent += 1;
            paced += 1;
        }
    }
    let paced_rate = paced as f64 / paced_start.elapsed().as_secs_f64();
    wait_published(&service, published_before + paced, Duration::from_secs(120)).await;
    let (p99_bound, observed) = p99(&before, &buckets(&service.metrics().await, LATENCY));
    let (rss_end, rss_peak) = service.memory_kib();
    drop(service);

    // Anchor: the same trades straight into the same topics.
    let anchor = anchor_direct_publish(&symbols, sent.min(2_000_000)).await;

    println!("\nkraken-ingester end to end ({SYMBOLS} symbols, real Pulsar, separate process):");
    println!(
        "  throughput        {rate:10.0} ticks/s   ({burst} trades; sending took {send_secs:.1} s)   target >= 100000: {}",
        if rate >= 100_000.0 { "met" } else { "MISSED" }
    );
    println!(
        "  anchor_direct_publish {anchor:8.0} ticks/s   ratio {:.2}x",
        rate / anchor
    );
    println!(
        "  latency @ {paced_rate:.0}/s  p99 <= {:.2} ms over {observed:.0} trades   target < 20 ms: {}",
        p99_bound * 1000.0,
        if p99_bound < 0.020 { "met" } else { "MISSED" }
    );
    println!(
        "  memory            RSS idle {} MiB, after burst {} MiB, at end {} MiB, peak {} MiB   target < 64 MiB: {}",
        rss_idle / 1024,
        rss_after_burst / 1024,
        rss_end / 1024,
        rss_peak / 1024,
        if rss_peak < 64 * 1024 {
            "met"
        } else {
            "MISSED"
        }
    );
}
