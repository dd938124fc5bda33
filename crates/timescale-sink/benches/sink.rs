//! From a pre-filled Pulsar topic to committed rows, against a raw `COPY` of the same rows by
//! `psql` in the same run (target: at least 0.7 of COPY's rows/s, and at least 100,000 rows/s),
//! plus the write-path comparison: UNNEST (what the writer uses) vs COPY into a staging table
//! then `INSERT … SELECT … ON CONFLICT DO NOTHING` vs multi-row `INSERT … VALUES`.
//!
//! Needs the infrastructure of `make infra` (`DATABASE_URL`, `PULSAR_URL`); `make bench` runs
//! it. `BENCH_ROWS` (default 500,000) sets the size.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "benchmark code: a failed setup should stop the run loudly"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::*;
use sqlx::PgPool;
use tickflow_pulsar::Namespace;
use tickflow_schema::{Source, Tick, TickKind, Trade};

const SYMBOLS: usize = 10;
const T0: i64 = 1_700_000_000_000_000_000;

fn rows() -> u64 {
    std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000)
}

fn csv_line(t: &Trade, out: &mut Vec<u8>) {
    let time = chrono::DateTime::from_timestamp_nanos(t.event_time.0).to_rfc3339();
    let rx = chrono::DateTime::from_timestamp_nanos(t.received_at.0).to_rfc3339();
    let side = match t.side {
        tickflow_schema::Side::Buy => "buy",
        tickflow_schema::Side::Sell => "sell",
        tickflow_schema::Side::Unknown => "unknown",
    };
    writeln!(
        out,
        "{time},{},{},{},{},{},{side},{},{rx},{},{}",
        t.source.as_str(),
        t.symbol,
        t.venue_symbol,
        t.price,
        t.size,
        t.trade_id,
        t.event_time.0,
        t.received_at.0
    )
    .unwrap();
}

const COLUMNS: &str = "time, source, symbol, venue_symbol, price, size, side, trade_id, received_at, time_ns, received_ns";

/// A fresh database with the sink's schema and partitions for the bench's days.
async fn fresh_schema() -> (Env, PgPool) {
    let env = Env::new().await;
    let engine = timescale_sink::schema::prepare(&env.db).await.unwrap();
    let mut parts = timescale_sink::schema::Partitions::load(&env.db)
        .await
        .unwrap();
    let day = timescale_sink::schema::day_of(tickflow_schema::UnixNanos(T0));
    for table in timescale_sink::schema::PARTITIONED {
        parts
            .ensure(&env.db, table, day - 1..=day + 30)
            .await
            .unwrap();
    }
    assert_eq!(engine, timescale_sink::Engine::Plain);
    let db = env.db.clone();
    (env, db)
}

fn trades(env: &Env, n: u64) -> Vec<Tick> {
    (0..n)
        .map(|i| {
            let symbol = env.symbol(usize::try_from(i).unwrap() % SYMBOLS);
            trade(&symbol, i, T0)
        })
        .collect()
}

async fn psql_copy(env: &Env, ticks: &[Tick]) -> f64 {
    let mut csv = Vec::with_capacity(ticks.len() * 160);
    for t in ticks {
        if let Tick::Trade(t) = t {
            csv_line(t, &mut csv);
        }
    }
    let path = std::env::temp_dir().join(format!("{}.csv", env.prefix));
    std::fs::write(&path, &csv).unwrap();
    let start = Instant::now();
    let status = std::process::Command::new("psql")
        .arg(&env.db_url)
        .arg("-q")
        .arg("-c")
        .arg(format!(
            "\\copy trades ({COLUMNS}) FROM '{}' (FORMAT csv)",
            path.display()
        ))
        .status()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        env.count("trades").await,
        i64::try_from(ticks.len()).unwrap()
    );
    ticks.len() as f64 / secs
}

async fn sink_from_pulsar(env: &Env, ticks: &[Tick]) -> f64 {
    for s in 0..SYMBOLS {
        let symbol = env.symbol(s);
        let mut p = env
            .producer(
                Namespace::Realtime,
                Source::Kraken,
                &symbol,
                TickKind::Trade,
            )
            .await;
        let mine: Vec<Tick> = ticks
            .iter()
            .filter(|t| *t.symbol() == symbol)
            .cloned()
            .collect();
        env.publish(&mut p, &mine).await;
    }
    let mut cfg = env.config();
    cfg.batch.max_rows = 10_000;
    if let Some(w) = std::env::var("BENCH_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.batch.writers = w;
    }
    cfg.batch.max_bytes = 16 << 20;
    cfg.pulsar.receiver_queue = 10_000;
    let start = Instant::now();
    let sink = start_sink(cfg).await;
    env.wait_rows(
        "trades",
        i64::try_from(ticks.len()).unwrap(),
        Duration::from_secs(600),
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    let in_db = sink.metric("timescale_sink_batch_seconds_sum").await;
    let batches = sink.metric("timescale_sink_batch_seconds_count").await;
    println!(
        "  sink: {secs:.2} s in all, {in_db:.2} s of it writing and committing {batches} batches"
    );
    sink.stop().await;
    ticks.len() as f64 / secs
}

async fn start_sink(cfg: timescale_sink::Config) -> Running {
    start(cfg).await
}

/// The three write paths, same rows, batches of `batch`, rows only (no candles).
async fn write_paths(ticks: &[Tick], batch: usize) -> Vec<(&'static str, f64)> {
    let trades: Vec<&Trade> = ticks
        .iter()
        .filter_map(|t| match t {
            Tick::Trade(t) => Some(t),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for path in [
        "writer_with_candles",
        "unnest",
        "copy_merge",
        "multi_row_insert",
    ] {
        let (_env, db) = fresh_schema().await;
        let start = Instant::now();
        if path == "writer_with_candles" {
            let mut w =
                timescale_sink::writer::Writer::new(db.clone(), timescale_sink::Engine::Plain)
                    .await
                    .unwrap();
            for chunk in ticks.chunks(batch) {
                let refs: Vec<&Tick> = chunk.iter().collect();
                w.write(&refs).await.unwrap();
            }
        }
        for chunk in trades
            .chunks(batch)
            .filter(|_| path != "writer_with_candles")
        {
            let mut tx = db.begin().await.unwrap();
            match path {
                "unnest" => {
                    sqlx::query(&format!(
                        "INSERT INTO trades ({COLUMNS}) SELECT * FROM UNNEST($1::timestamptz[], $2::text[], \
                         $3::text[], $4::text[], $5::numeric[], $6::numeric[], $7::text[], $8::text[], \
                         $9::timestamptz[], $10::int8[], $11::int8[]) ON CONFLICT DO NOTHING"
                    ))
                    .bind(chunk.iter().map(|t| chrono::DateTime::from_timestamp_nanos(t.event_time.0)).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|t| t.source.as_str()).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|t| t.symbol.as_str()).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|t| t.venue_symbol.as_str()).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|t| t.price).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|t| t.size).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|t| if t.side == tickflow_schema::Side::Buy { "buy" } else { "sell" }).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|t| t.trade_id.as_str()).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|t| chrono::DateTime::from_timestamp_nanos(t.received_at.0)).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|t| t.event_time.0).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|t| t.received_at.0).collect::<Vec<_>>())
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                }
                "copy_merge" => {
                    sqlx::query(
                        "CREATE TEMP TABLE IF NOT EXISTS stage (LIKE trades INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
                    )
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    let mut csv = Vec::with_capacity(chunk.len() * 160);
                    for t in chunk {
                        csv_line(t, &mut csv);
                    }
                    let mut copy = tx
                        .copy_in_raw(&format!("COPY stage ({COLUMNS}) FROM STDIN (FORMAT csv)"))
                        .await
                        .unwrap();
                    copy.send(csv).await.unwrap();
                    copy.finish().await.unwrap();
                    sqlx::query(&format!(
                        "INSERT INTO trades ({COLUMNS}) SELECT {COLUMNS} FROM stage ON CONFLICT DO NOTHING"
                    ))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                }
                _ => {
                    // 11 parameters a row, at most 65,535 parameters a statement.
                    for sub in chunk.chunks(5_000) {
                        let mut q =
                            sqlx::QueryBuilder::new(format!("INSERT INTO trades ({COLUMNS}) "));
                        q.push_values(sub, |mut b, t| {
                            b.push_bind(chrono::DateTime::from_timestamp_nanos(t.event_time.0))
                                .push_bind(t.source.as_str())
                                .push_bind(t.symbol.as_str())
                                .push_bind(t.venue_symbol.as_str())
                                .push_bind(t.price)
                                .push_bind(t.size)
                                .push_bind(if t.side == tickflow_schema::Side::Buy {
                                    "buy"
                                } else {
                                    "sell"
                                })
                                .push_bind(t.trade_id.as_str())
                                .push_bind(chrono::DateTime::from_timestamp_nanos(t.received_at.0))
                                .push_bind(t.event_time.0)
                                .push_bind(t.received_at.0);
                        });
                        q.push(" ON CONFLICT DO NOTHING");
                        q.build().execute(&mut *tx).await.unwrap();
                    }
                }
            }
            tx.commit().await.unwrap();
        }
        let rate = trades.len() as f64 / start.elapsed().as_secs_f64();
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM trades")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(stored, i64::try_from(trades.len()).unwrap(), "{path}");
        out.push((path, rate));
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = rows();
    // Anchor: psql's COPY of the same rows into the same table.
    let (copy_env, _) = fresh_schema().await;
    let ticks = trades(&copy_env, n);
    let copy_rate = psql_copy(&copy_env, &ticks).await;
    // The sink, from a pre-filled topic (its own database and topics).
    let sink_env = Env::new().await;
    let ticks = trades(&sink_env, n);
    let sink_rate = sink_from_pulsar(&sink_env, &ticks).await;
    let paths = write_paths(&ticks[..usize::try_from(n.min(200_000)).unwrap()], 10_000).await;

    println!("\ntimescale-sink, {n} trades, plain PostgreSQL 15, real Pulsar:");
    println!("  anchor psql \\copy        {copy_rate:10.0} rows/s");
    println!(
        "  sink from Pulsar         {sink_rate:10.0} rows/s   ratio {:.2}   targets: >= 0.70 of COPY {}, >= 100000 rows/s {}",
        sink_rate / copy_rate,
        if sink_rate / copy_rate >= 0.7 {
            "met"
        } else {
            "MISSED"
        },
        if sink_rate >= 100_000.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "  write paths (rows only, no candles, batches of 10,000, {} rows):",
        n.min(200_000)
    );
    for (path, rate) in paths {
        println!(
            "    {path:18} {rate:10.0} rows/s   ratio to COPY {:.2}",
            rate / copy_rate
        );
    }
}
