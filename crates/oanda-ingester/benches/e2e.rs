//! End to end on this machine: the fake OANDA of `venue-sim` streaming price lines as fast as it
//! can into the real `oanda-ingester` binary (a separate process, one stream carrying 20
//! instruments, as one replica holds them) and the real Pulsar.
//!
//! Measures, in one run:
//! - **throughput**: random-walk prices (generated beforehand) streamed for `BENCH_SECONDS`
//!   (default 20), then until Pulsar acknowledged all of them; rate = quotes / (first send →
//!   last acknowledgement). Target ≥ 100,000 quotes/s.
//! - **anchor `anchor_direct_publish`**: as many quote ticks published straight to the same 20
//!   topics with `tickflow-pulsar`'s producer (no HTTP, no parsing, no queue): this machine's
//!   ceiling. The ratio says what the ingester costs on top.
//! - **latency at 10,000 quotes/s** for `BENCH_SECONDS`: the 99th percentile of line arrival →
//!   Pulsar acknowledgement, from the ingester's histogram (buckets √2 apart: the figure is the
//!   upper bound of the bucket holding the 99th percentile).
//! - **resident memory** of the ingester process (VmRSS, and VmHWM, its peak).
//!
//! Needs the broker of `make infra` (`PULSAR_URL`); `make bench` runs it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "benchmark code: a failed setup should stop the run loudly"
)]

use std::time::{Duration, Instant};

use tickflow_pulsar::{Namespace, TopicName};
use tickflow_schema::{Decimal, Quote, Source, Symbol, Tick, TickKind, UnixNanos};
use tickflow_testkit::process::{ServiceProcess, buckets, direct_publish, free_port, p99, value};
use venue_sim::oanda::{OandaSim, SimPrice, random_walk};

const INSTRUMENTS: usize = 20;
/// Prices per instrument per batch handed to the sim.
const BATCH: usize = 250;
const PUBLISHED: &str = "oanda_ingester_ticks_published_total{kind=\"quote\"}";
const LATENCY: &str = "oanda_ingester_publish_latency_seconds";

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
    (0..INSTRUMENTS)
        .map(|i| Symbol::parse(&format!("B{}{i:02}/USD", &run[..6])).unwrap())
        .collect()
}

/// Generates the lines of successive batches: each instrument's random walk continues where
/// the previous batch ended (times strictly increase, so no price repeats another).
struct Prices {
    venues: Vec<String>,
    next_ns: i64,
    batch: u64,
}

impl Prices {
    fn next(&mut self, per_instrument: usize) -> Vec<String> {
        let mut lines = Vec::with_capacity(per_instrument * self.venues.len());
        let walks: Vec<Vec<SimPrice>> = self
            .venues
            .iter()
            .enumerate()
            .map(|(i, v)| {
                random_walk(
                    v,
                    UnixNanos(self.next_ns),
                    1_000,
                    per_instrument,
                    self.batch * 1_000 + i as u64,
                )
            })
            .collect();
        for k in 0..per_instrument {
            for w in &walks {
                lines.push(w[k].to_line());
            }
        }
        self.next_ns += 1_000 * per_instrument as i64;
        self.batch += 1;
        lines
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = env_num("BENCH_SECONDS", 20);
    let sim = OandaSim::start().await.unwrap();
    sim.set_heartbeat_interval(Some(Duration::from_secs(5)));
    let symbols = symbols();
    let port = free_port();
    let list: Vec<String> = symbols.iter().map(ToString::to_string).collect();
    let service = ServiceProcess::start(
        env!("CARGO_BIN_EXE_oanda-ingester"),
        &[
            ("OANDA_STREAM_URL", sim.url()),
            ("OANDA_API_TOKEN", "bench-token".to_owned()),
            ("OANDA_ACCOUNT_ID", "101-004-1-001".to_owned()),
            ("OANDA_INSTRUMENTS", list.join(",")),
            ("PULSAR_URL", tickflow_testkit::pulsar_config().url),
            ("OANDA_INGESTER_ADMIN_LISTEN", format!("127.0.0.1:{port}")),
        ],
        port,
    )
    .await;
    // Ready means the stream delivered a line; wait until it carries all 20.
    while sim.open_instruments().first().map(Vec::len) != Some(INSTRUMENTS) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss_idle, _) = service.memory_kib();
    let mut prices = Prices {
        venues: symbols
            .iter()
            .map(|s| s.as_str().replace('/', "_"))
            .collect(),
        next_ns: UnixNanos::parse_rfc3339("2025-01-06T00:00:00Z").unwrap().0,
        batch: 0,
    };

    // Throughput: as fast as the sim can stream. The lines are generated before the clock
    // starts (up to 200,000 a second), so formatting them does not take CPU from the ingester.
    let batches: Vec<Vec<String>> = (0..(seconds * 200_000 / (BATCH * INSTRUMENTS) as u64))
        .map(|_| prices.next(BATCH))
        .collect();
    let published_start = value(&service.metrics().await, PUBLISHED);
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut sent = 0u64;
    for lines in &batches {
        if Instant::now() >= until {
            break;
        }
        sim.send_lines(lines).await;
        sent += lines.len() as u64;
    }
    drop(batches);
    let send_secs = start.elapsed().as_secs_f64();
    let burst = sent;
    let done = service
        .wait_metric(
            PUBLISHED,
            published_start + sent as f64,
            Duration::from_secs(300),
        )
        .await;
    let rate = sent as f64 / done.duration_since(start).as_secs_f64();
    let (rss_after_burst, _) = service.memory_kib();

    // Latency at 10,000 quotes/s: 20 instruments × 1 price every 2 ms.
    let before = buckets(&service.metrics().await, LATENCY);
    let published_before = value(&service.metrics().await, PUBLISHED);
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let paced_start = Instant::now();
    let mut paced = 0u64;
    while paced_start.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let lines = prices.next(1);
        sim.send_lines(&lines).await;
        paced += lines.len() as u64;
    }
    let paced_rate = paced as f64 / paced_start.elapsed().as_secs_f64();
    service
        .wait_metric(
            PUBLISHED,
            published_before + paced as f64,
            Duration::from_secs(120),
        )
        .await;
    let (p99_bound, observed) = p99(&before, &buckets(&service.metrics().await, LATENCY));
    let (rss_end, rss_peak) = service.memory_kib();
    drop(service);

    // Anchor: as many quotes straight into the same topics.
    let topics: Vec<TopicName> = symbols
        .iter()
        .map(|s| TopicName::data(Namespace::Realtime, Source::Oanda, s, TickKind::Quote).unwrap())
        .collect();
    let anchor = direct_publish(&topics, burst.min(2_000_000), |i| {
        let idx = usize::try_from(i).unwrap() % symbols.len();
        Tick::Quote(Quote {
            source: Source::Oanda,
            symbol: symbols[idx].clone(),
            venue_symbol: symbols[idx].as_str().replace('/', "_").into(),
            event_time: UnixNanos(1_736_121_600_000_000_000 + i as i64),
            received_at: UnixNanos::now(),
            bid: Decimal::new(108_000 + (i % 97) as i64, 5),
            ask: Decimal::new(108_012 + (i % 97) as i64, 5),
            bid_size: Decimal::from(1_000_000),
            ask_size: Decimal::from(2_000_000),
            sequence: 0,
            indicative: false,
        })
    })
    .await;

    println!(
        "\noanda-ingester end to end ({INSTRUMENTS} instruments on one stream, real Pulsar, separate process):"
    );
    println!(
        "  throughput        {rate:10.0} quotes/s   ({burst} prices; streaming took {send_secs:.1} s)   target >= 100000: {}",
        if rate >= 100_000.0 { "met" } else { "MISSED" }
    );
    println!(
        "  anchor_direct_publish {anchor:8.0} quotes/s   ratio {:.2}x",
        rate / anchor
    );
    println!(
        "  latency @ {paced_rate:.0}/s  p99 <= {:.2} ms over {observed:.0} quotes",
        p99_bound * 1000.0
    );
    println!(
        "  memory            RSS idle {} MiB, after burst {} MiB, at end {} MiB, peak {} MiB",
        rss_idle / 1024,
        rss_after_burst / 1024,
        rss_end / 1024,
        rss_peak / 1024
    );
}
