//! SIGKILL in the middle of a large stream, then a restart: the table equals the input exactly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test code"
)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use rust_decimal::Decimal;
use tickflow_pulsar::Namespace;
use tickflow_schema::{Source, Tick, TickKind};

const T0: i64 = 1_700_000_000_000_000_000;
const PER_SYMBOL: u64 = 20_000;

fn spawn(env: &Env) -> Child {
    let cfg = env.config();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Command::new(env!("CARGO_BIN_EXE_timescale-sink"))
        .env("DATABASE_URL", &env.db_url)
        .env("PULSAR_URL", &cfg.pulsar.url)
        .env("PULSAR_ADMIN_URL", &cfg.pulsar.admin_url)
        .env("TIMESCALE_SINK_ADMIN_LISTEN", format!("127.0.0.1:{port}"))
        .env("TIMESCALE_SINK_SUBSCRIPTION__NAME", &cfg.subscription.name)
        .env(
            "TIMESCALE_SINK_SUBSCRIPTION__PATTERN",
            &cfg.subscription.pattern,
        )
        .env("TIMESCALE_SINK_BATCH__MAX_ROWS", "2000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sink_loses_nothing_and_duplicates_nothing() {
    let env = Env::new().await;
    let mut expected_sum = Decimal::ZERO;
    for s in 0..3 {
        let symbol = env.symbol(s);
        let ticks: Vec<Tick> = (0..PER_SYMBOL).map(|i| trade(&symbol, i, T0)).collect();
        for t in &ticks {
            if let Tick::Trade(t) = t {
                expected_sum += t.price;
            }
        }
        let mut p = env
            .producer(
                Namespace::Realtime,
                Source::Kraken,
                &symbol,
                TickKind::Trade,
            )
            .await;
        env.publish(&mut p, &ticks).await;
    }
    let total = i64::try_from(3 * PER_SYMBOL).unwrap();

    let mut first = spawn(&env);
    // Kill it mid-stream: some batches committed, the rest (and part of an entry) not.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let n = env.count("trades").await;
        if n >= total / 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress: {n} rows"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let at_kill = env.count("trades").await;
    assert!(
        at_kill < total,
        "killed before the end ({at_kill} of {total})"
    );

    let mut second = spawn(&env);
    env.wait_rows("trades", total, Duration::from_secs(180))
        .await;
    // Nothing more arrives afterwards either.
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.kill().unwrap();
    second.wait().unwrap();

    let (rows, keys, sum): (i64, i64, Decimal) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT (symbol, trade_id)), sum(price) FROM trades",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!((rows, keys), (total, total), "every trade exactly once");
    assert_eq!(sum, expected_sum, "the same prices");
    // The candles were written in the same transactions as the rows: still exact.
    let diff = trade_candle_mismatches(&env.db, "1m", "1 minute").await;
    assert_eq!(diff, 0, "candles equal the rows after the crash");
}
