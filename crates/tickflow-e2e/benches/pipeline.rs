//! The whole pipeline under load, on this machine: the venue simulator's Kraken market at a high
//! rate → `kraken-ingester` → Pulsar → `timescale-sink` → PostgreSQL, every service its own
//! release-built process (started the way `make demo` starts them), for 1, 10 and 100 symbols.
//!
//! For each symbol count, in one run:
//! - **sustained ticks/s, venue → committed row**: the market offers `BENCH_RATE` messages a second
//!   in all (default 80,000, more than this machine stores; trades, and one ticker per symbol per 10 ms step) for
//!   `BENCH_SECONDS` (default 20); the rate is the rows the sink committed over that window
//!   (`timescale_sink_rows_written_total`), measured after a 3 s warm-up.
//! - **p99 venue event → commit** at `BENCH_LATENCY_RATE` (default 2,000 a second) for
//!   `BENCH_SECONDS`: from the sink's `lag_seconds` histogram (commit time minus the venue's
//!   timestamp; buckets double, so the figure is the upper bound of the bucket holding the 99th
//!   percentile).
//! - **anchor `anchor_sink_only`**: the same number of trade ticks published straight to the same
//!   topics with tickflow's producer, timed until the sink has committed them: what storing alone
//!   allows here. The ratio says what the venue, the ingester and the control plane cost on top.
//!
//! Needs `make infra` and the release binaries (`make bench` builds them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    clippy::print_stdout,
    reason = "benchmark code: a failed setup should stop the run loudly"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickflow_e2e::{Stack, StackConfig, run_id};
use tickflow_pulsar::{Namespace, TopicName};
use tickflow_schema::{Source, Symbol, TickKind};
use tickflow_testkit::process::{buckets, direct_publish, p99, synthetic_trade, value};
use tokio_util::sync::CancellationToken;
use venue_sim::dukascopy::DukascopySim;
use venue_sim::kraken::KrakenSim;
use venue_sim::market::{self, MarketConfig, Sent};
use venue_sim::oanda::OandaSim;

const WRITTEN: [&str; 2] = [
    "timescale_sink_rows_written_total{table=\"trades\"}",
    "timescale_sink_rows_written_total{table=\"quotes\"}",
];
const LAG: &str = "timescale_sink_lag_seconds";
const SUBSCRIBED: &str = "kraken_ingester_symbols_subscribed";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn written(stack: &Stack) -> f64 {
    let text = stack.sink.metrics().await;
    WRITTEN.iter().map(|m| value(&text, m)).sum()
}

async fn wait_written(stack: &Stack, target: f64, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        if written(stack).await >= target {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the sink did not commit {target} rows within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the market over the subscribed symbols at `rate` messages a second in all for `seconds`.
async fn drive(
    sim: &Arc<KrakenSim>,
    symbols: usize,
    rate: f64,
    seconds: u64,
    first_trade_id: u64,
) -> Arc<Sent> {
    let sent = Sent::counting();
    let stop = CancellationToken::new();
    // Every 10 ms step in which a symbol trades also sends one ticker: below 100 trades a second
    // that is one ticker per trade, above it 100 tickers a second.
    let per_symbol = rate / symbols as f64;
    let trades = if per_symbol <= 200.0 {
        per_symbol / 2.0
    } else {
        per_symbol - 100.0
    };
    let task = tokio::spawn(market::run_kraken(
        Arc::clone(sim),
        MarketConfig {
            seed: 3,
            rate: trades,
            bursts: false,
            forex_hours: false,
            first_trade_id,
            ..MarketConfig::default()
        },
        Arc::clone(&sent),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.cancel();
    task.await.unwrap();
    sent
}

async fn anchor_sink_only(stack: &Stack, symbols: &[Symbol], count: u64) -> f64 {
    let topics: Vec<TopicName> = symbols
        .iter()
        .map(|s| TopicName::data(Namespace::Realtime, Source::Kraken, s, TickKind::Trade).unwrap())
        .collect();
    let before = written(stack).await;
    let start = Instant::now();
    let n = symbols.len() as u64;
    direct_publish(&topics, count, |i| {
        let idx = usize::try_from(i % n).unwrap();
        synthetic_trade(&symbols[idx], 10_000_000 + i / n)
    })
    .await;
    let done = wait_written(stack, before + count as f64, Duration::from_secs(600)).await;
    count as f64 / (done - start).as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = env_num("BENCH_SECONDS", 20);
    let rate = env_num("BENCH_RATE", 80_000) as f64;
    let latency_rate = env_num("BENCH_LATENCY_RATE", 2_000) as f64;
    let run = run_id().to_ascii_uppercase();
    let sim = Arc::new(KrakenSim::start().await.unwrap());
    let oanda = OandaSim::start().await.unwrap();
    let dukascopy = DukascopySim::start().await.unwrap();
    let stack = Stack::start(StackConfig {
        kraken_url: sim.url(),
        oanda_url: oanda.url(),
        dukascopy_url: dukascopy.base_url(),
        sink_pattern: format!(
            r"persistent://market-data/realtime/kraken\.b{}.*",
            run.to_ascii_lowercase()
        ),
        sink_skip_backlog: Vec::new(),
        kraken_replicas: 1,
        log: "warn".into(),
    })
    .await;

    println!(
        "\nthe whole pipeline, venue → committed row (release processes, real Pulsar and PostgreSQL):"
    );
    println!(
        "  {:>7}  {:>14}  {:>14}  {:>7}  {:>12}  {:>16}",
        "symbols", "ticks/s", "anchor ticks/s", "ratio", "p99 latency", "(at ticks/s)"
    );
    for (phase, count) in [1_usize, 10, 100].into_iter().enumerate() {
        let symbols: Vec<Symbol> = (0..count)
            .map(|i| Symbol::parse(&format!("B{run}{phase}{i:03}/USD")).unwrap())
            .collect();
        for s in &symbols {
            stack
                .tickctl_ok(&["symbols", "add", s.as_str(), "--source", "kraken"])
                .await;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while value(&stack.kraken[0].metrics().await, SUBSCRIBED) < count as f64 {
            assert!(Instant::now() < deadline, "{count} symbols not subscribed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Sustained: offer more than the pipeline takes; count what it commits.
        let warmup = tokio::spawn({
            let sim = Arc::clone(&sim);
            async move { drive(&sim, count, rate, seconds + 3, 1).await }
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (w0, t0) = (written(&stack).await, Instant::now());
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let (w1, t1) = (written(&stack).await, Instant::now());
        let offered = warmup.await.unwrap().total();
        let sustained = (w1 - w0) / (t1 - t0).as_secs_f64();
        // Let the backlog drain before the next measurement.
        drain(&stack).await;

        // Latency at a rate the pipeline keeps up with.
        let before = buckets(&stack.sink.metrics().await, LAG);
        let sent = drive(&sim, count, latency_rate, seconds, 1_000_000_000).await;
        drain(&stack).await;
        let after = buckets(&stack.sink.metrics().await, LAG);
        let (bound, observed) = p99(&before, &after);
        let achieved = sent.total() as f64 / seconds as f64;

        let anchor = anchor_sink_only(&stack, &symbols, 200_000).await;
        println!(
            "  {count:>7}  {sustained:>14.0}  {anchor:>14.0}  {:>7.2}  {:>9.0} ms  {achieved:>16.0}   (offered {:.0}/s; {observed:.0} latency samples)",
            sustained / anchor,
            bound * 1_000.0,
            offered as f64 / (seconds + 3) as f64,
        );
        for s in &symbols {
            stack.tickctl_ok(&["symbols", "remove", s.as_str()]).await;
        }
    }
}

/// Waits until the sink's committed-row count stops moving for a second.
async fn drain(stack: &Stack) {
    let mut last = written(stack).await;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = written(stack).await;
        if now == last {
            return;
        }
        last = now;
    }
}
