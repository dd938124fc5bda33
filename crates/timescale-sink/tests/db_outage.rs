//! PostgreSQL stopped for 30 s while ticks keep coming: nothing lost, nothing duplicated.
//!
//! Stops and starts the PostgreSQL of this checkout (`scripts/postgres.sh`, by its PID file),
//! so it lives in a test binary of its own: cargo runs test binaries one at a time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test code"
)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use tickflow_pulsar::Namespace;
use tickflow_schema::{Source, Tick, TickKind};

const T0: i64 = 1_700_000_000_000_000_000;

fn postgres(action: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(action)
        .status()
        .unwrap();
    assert!(status.success(), "scripts/postgres.sh {action} failed");
}

/// Starts PostgreSQL again when dropped, whatever happened to the test.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        postgres("start");
    }
}

async fn ready(sink: &Running) -> bool {
    reqwest::get(format!("http://{}/readyz", sink.admin))
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_under_load_loses_nothing() {
    let env = Env::new().await;
    let symbol = env.symbol(0);
    let sink = start(env.config()).await;
    let mut producer = env
        .producer(
            Namespace::Realtime,
            Source::Kraken,
            &symbol,
            TickKind::Trade,
        )
        .await;

    // Load: 500 trades every 100 ms, before, during and after the outage.
    let mut sent = 0u64;
    let mut publish_for = async |seconds: u64, producer: &mut tickflow_pulsar::TickProducer| {
        let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
        while tokio::time::Instant::now() < until {
            let ticks: Vec<Tick> = (sent..sent + 500).map(|i| trade(&symbol, i, T0)).collect();
            env.publish(producer, &ticks).await;
            sent += 500;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    publish_for(3, &mut producer).await;
    postgres("stop");
    let restart = Restart;
    let stopped = tokio::time::Instant::now();
    let mut seen_not_ready = false;
    // The outage lasts 30 s while the load goes on.
    while stopped.elapsed() < Duration::from_secs(30) {
        publish_for(1, &mut producer).await;
        seen_not_ready |= !ready(&sink).await;
    }
    assert!(seen_not_ready, "not ready while the database is away");
    drop(restart);
    publish_for(3, &mut producer).await;

    let total = i64::try_from(sent).unwrap();
    env.wait_rows("trades", total, Duration::from_secs(120))
        .await;
    let (rows, keys): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT trade_id) FROM trades")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!((rows, keys), (total, total), "every trade exactly once");
    assert!(sink.metric("timescale_sink_database_retries_total").await >= 1.0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !ready(&sink).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ready again after the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sink.stop().await;
}
