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
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tickflow_pulsar::{Namespace, PulsarClient, TopicName};
use tickflow_schema::{Decimal, Side, Source, Symbol, Tick, TickKind, Trade, UnixNanos};
use venue_sim::kraken::KrakenSim;

#[path = "../tests/common/mod.rs"]
mod common;
use common::{pulsar_config, sim_trade};

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

struct Service {
    child: Child,
    admin: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn published_trades(&self) -> u64 {
        let text = self.metrics().await;
        value(
            &text,
            "kraken_ingester_ticks_published_total{kind=\"trade\"}",
        ) as u64
    }

    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

fn value(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Cumulative latency buckets: (upper bound in seconds, count).
fn buckets(metrics: &str) -> Vec<(f64, f64)> {
    metrics
        .lines()
        .filter(|l| l.starts_with("kraken_ingester_publish_latency_seconds_bucket{le=\""))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

fn p99(before: &[(f64, f64)], after: &[(f64, f64)]) -> (f64, f64) {
    let diff: Vec<(f64, f64)> = after
        .iter()
        .zip(before)
        .map(|((le, a), (_, b))| (*le, a - b))
        .collect();
    let total = diff.last().map_or(0.0, |(_, c)| *c);
    let bound = diff
        .iter()
        .find(|(_, c)| *c >= total * 0.99)
        .map_or(f64::NAN, |(le, _)| *le);
    (bound, total)
}

async fn start_service(sim: &KrakenSim, symbols: &[Symbol]) -> Service {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let list: Vec<String> = symbols.iter().map(ToString::to_string).collect();
    let child = Command::new(env!("CARGO_BIN_EXE_kraken-ingester"))
        .env("KRAKEN_WS_URL", sim.url())
        .env("KRAKEN_SYMBOLS", list.join(","))
        .env("PULSAR_URL", pulsar_config().url)
        .env("KRAKEN_INGESTER_ADMIN_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let service = Service {
        child,
        admin: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = reqwest::get(format!("{}/readyz", service.admin))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "ingester not ready within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    service
}

async fn wait_published(service: &Service, target: u64, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        if service.published_trades().await >= target {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "not all trades published within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn anchor_direct_publish(symbols: &[Symbol], count: u64) -> f64 {
    let client = PulsarClient::connect(&pulsar_config(), "kraken-bench-anchor")
        .await
        .unwrap();
    let mut producers = Vec::new();
    for s in symbols {
        let topic =
            TopicName::data(Namespace::Realtime, Source::Kraken, s, TickKind::Trade).unwrap();
        producers.push(client.tick_producer(&topic).await.unwrap());
    }
    let mut in_flight = FuturesUnordered::new();
    let start = Instant::now();
    for i in 0..count {
        let idx = usize::try_from(i).unwrap() % symbols.len();
        let id = i / SYMBOLS as u64 + 1;
        let tick = Tick::Trade(Trade {
            source: Source::Kraken,
            symbol: symbols[idx].clone(),
            venue_symbol: symbols[idx].as_str().into(),
            event_time: UnixNanos::now(),
            received_at: UnixNanos::now(),
            price: Decimal::from_str_exact(&format!("{}.{}", 108_000 + id % 997, id % 10)).unwrap(),
            size: Decimal::from_str_exact(&format!("0.{:08}", 1 + id * 7_919 % 99_999_999))
                .unwrap(),
            side: Side::Buy,
            trade_id: id.to_string().into(),
        });
        in_flight.push(producers[idx].send(&tick).await.unwrap());
        while in_flight.len() >= 20_000 {
            in_flight.next().await.unwrap().unwrap();
        }
    }
    while let Some(r) = in_flight.next().await {
        r.unwrap();
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    for p in producers {
        p.close().await.unwrap();
    }
    rate
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
    let before = buckets(&service.metrics().await);
    let published_before = service.published_trades().await;
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
    let (p99_bound, observed) = p99(&before, &buckets(&service.metrics().await));
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
