//! Publish throughput of tickflow's producer against Pulsar's own `pulsar-perf produce`, with the
//! same message size, duration, batching (1000 messages / 128 KiB / 5 ms), LZ4 and outstanding
//! limit, in the same run against the same broker. Prints both rates and the ratio (target: >= 0.8).
//!
//! Both run for a fixed time: pulsar-perf's "Aggregated throughput" divides by whole 10-second
//! reporting intervals, so a run by message count understates short runs (1M messages in 3 s
//! read as "100,000 msg/s").
//!
//! Needs the broker of `make infra` (`PULSAR_URL`, `PULSAR_ADMIN_URL` from `.tickflow/env`) and
//! `PULSAR_HOME` pointing at the unpacked distribution (for `bin/pulsar-perf`); `make bench` sets
//! all of them. `BENCH_SECONDS` (default 20) and `BENCH_ROUNDS` (default 2) tune the run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test and benchmark code: a failed setup should stop the run loudly"
)]

use std::collections::VecDeque;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context, bail};
use tickflow_pulsar::admin::AdminClient;
use tickflow_pulsar::{Namespace, PulsarClient, PulsarConfig, TopicName};
use tickflow_schema::{Decimal, Side, Source, Symbol, Tick, TickKind, Trade, UnixNanos};

const OUTSTANDING: usize = 10_000;

fn env_num(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    format!("{prefix}{}", &id[..10])
}

fn ticks(symbol: &Symbol, n: u64) -> Vec<Tick> {
    (0..n)
        .map(|i| {
            let t = 1_753_000_000_000_000_000i64 + i64::try_from(i).unwrap_or(0) * 1_000;
            Tick::Trade(Trade {
                source: Source::Kraken,
                symbol: symbol.clone(),
                venue_symbol: symbol.as_str().into(),
                event_time: UnixNanos(t),
                received_at: UnixNanos(t + 1_500_000),
                price: Decimal::from_str(&format!("108{:03}.{}", i % 1000, i % 10))
                    .unwrap_or_default(),
                size: Decimal::from_str(&format!("0.{:08}", i % 99_999_999 + 1))
                    .unwrap_or_default(),
                side: if i.is_multiple_of(2) {
                    Side::Buy
                } else {
                    Side::Sell
                },
                trade_id: (80_000_000 + i).to_string().into(),
            })
        })
        .collect()
}

/// Messages per second through the project's producer, sending for `secs` seconds.
async fn ours(
    client: &PulsarClient,
    admin: &AdminClient,
    secs: u64,
) -> anyhow::Result<(f64, usize)> {
    let symbol = Symbol::parse(&format!("{}/USD", unique("B")))?;
    let topic = TopicName::data(
        Namespace::Realtime,
        Source::Kraken,
        &symbol,
        TickKind::Trade,
    )?;
    admin.create_topic(&topic).await?;
    // A ring of distinct ticks, encoded afresh on every send as an ingester would.
    let ticks = ticks(&symbol, 100_000);
    let size = ticks[0].encode().len();
    let mut producer = client.tick_producer(&topic).await?;
    let mut pending = VecDeque::with_capacity(OUTSTANDING);
    let start = Instant::now();
    let deadline = start + std::time::Duration::from_secs(secs);
    let mut sent = 0u64;
    for t in ticks.iter().cycle() {
        if pending.len() >= OUTSTANDING
            && let Some(r) = pending.pop_front()
        {
            r.await?;
        }
        pending.push_back(Box::pin(producer.send(t).await?));
        sent += 1;
        if sent.is_multiple_of(1_000) && Instant::now() >= deadline {
            break;
        }
    }
    producer.flush().await?;
    for r in pending {
        r.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    producer.close().await?;
    admin.delete_topic(&topic, true).await?;
    Ok((sent as f64 / elapsed, size))
}

/// Messages per second through `pulsar-perf produce`, as it reports them.
async fn perf(
    cfg: &PulsarConfig,
    admin: &AdminClient,
    secs: u64,
    size: usize,
) -> anyhow::Result<f64> {
    let home = PathBuf::from(
        std::env::var("PULSAR_HOME").context("PULSAR_HOME is not set (make bench sets it)")?,
    );
    let topic = TopicName::control(&unique("bench-perf-").to_ascii_lowercase())?;
    admin.create_topic(&topic).await?;
    let out = tokio::process::Command::new(home.join("bin/pulsar-perf"))
        .env("PULSAR_MEM", "-Xms256m -Xmx512m")
        .args(["produce", "-u", &cfg.url, "-r", "100000000", "-m", "0"])
        .args([
            "-time",
            &secs.to_string(),
            "-s",
            &size.to_string(),
            "-z",
            "LZ4",
        ])
        .args([
            "-bm",
            "1000",
            "-bb",
            "131072",
            "-b",
            "5",
            "-o",
            &OUTSTANDING.to_string(),
        ])
        .arg(topic.to_string())
        .output()
        .await
        .context("running pulsar-perf")?;
    admin.delete_topic(&topic, true).await?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // "Aggregated throughput stats --- 1000000 records sent --- 123456.789 msg/s --- ..."
    let line = text
        .lines()
        .find(|l| l.contains("Aggregated throughput stats"));
    let Some(rate) = line
        .and_then(|l| l.split("---").nth(2))
        .and_then(|s| s.split_whitespace().next())
    else {
        bail!(
            "pulsar-perf printed no aggregated throughput; its output ends:\n{}",
            text.lines().rev().take(15).collect::<Vec<_>>().join("\n")
        );
    };
    rate.replace(',', "")
        .parse()
        .with_context(|| format!("pulsar-perf rate {rate:?}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let secs = env_num("BENCH_SECONDS", 20)?;
    let rounds = env_num("BENCH_ROUNDS", 2)?;
    let mut cfg = PulsarConfig::default();
    if let Ok(u) = std::env::var("PULSAR_URL") {
        cfg.url = u;
    }
    if let Ok(u) = std::env::var("PULSAR_ADMIN_URL") {
        cfg.admin_url = u;
    }
    let admin = AdminClient::new(&cfg.admin_url)?;
    admin.provision_layout().await?;
    let client = PulsarClient::connect(&cfg, "bench").await?;
    let (mut best_ours, mut best_perf) = (0f64, 0f64);
    for round in 1..=rounds {
        let (o, size) = ours(&client, &admin, secs).await?;
        let p = perf(&cfg, &admin, secs, size).await?;
        println!(
            "round {round}: tickflow {o:>10.0} msg/s   pulsar-perf {p:>10.0} msg/s   ({secs} s each, messages of {size} bytes)"
        );
        best_ours = best_ours.max(o);
        best_perf = best_perf.max(p);
    }
    println!(
        "publish throughput (best of {rounds}): tickflow {best_ours:.0} msg/s, anchor pulsar-perf {best_perf:.0} msg/s, ratio {:.2} (target >= 0.80)",
        best_ours / best_perf
    );
    Ok(())
}
