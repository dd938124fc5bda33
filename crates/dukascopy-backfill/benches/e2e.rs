//! End to end on this machine: one month of generated EUR/USD hours (January 2024, the forex
//! week's closed hours empty) served by the fake Dukascopy of `venue-sim`, backfilled by the
//! service (in this process) through the real Pulsar into the real PostgreSQL by the sink (in
//! this process too), until every hour has its coverage row and every tick its row.
//!
//! Prints, in one run:
//! - **into Pulsar**: the time until the service has every tick confirmed by Pulsar (its own
//!   pace, while the sink is still writing).
//! - **backfill**: ticks, wall time from the first task to the last row, ticks/s, and the time
//!   a year would take at that pace (× 8760 / 744 hours). Target < 2 min per instrument-year;
//!   the anchor is duka's "about 10 minutes per instrument-year" (600 s).
//! - **anchor `anchor_sink_only`**: as many quotes published straight to the same topic with
//!   tickflow's producer and stored by the same sink (no download, no decode, no backfill): the
//!   machine's ceiling for this path. The ratio says what the backfill costs on top.
//!
//! `BENCH_TRANSPORT=bi5` uses the `.bi5` transport instead of the JSON API; `BENCH_MEAN_TICKS`
//! sets the mean ticks per open hour (default 3000). Needs `make infra` (`PULSAR_URL`,
//! `DATABASE_URL`); `make bench` runs it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "benchmark code: a failed setup should stop the run loudly"
)]

use std::time::{Duration, Instant};

use dukascopy_backfill::config::TransportKind;
use dukascopy_backfill::{Backfill, Config};
use prost::Message as _;
use tickflow_calendar::ForexCalendar;
use tickflow_control::proto::BackfillTask;
use tickflow_pulsar::{Namespace, PulsarClient, SubscriptionType, TopicName};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::config::SecretString;
use tickflow_schema::{Decimal, Quote, Source, Symbol, Tick, TickKind, UnixNanos};
use tickflow_testkit::process::direct_publish;
use tickflow_testkit::pulsar_config;
use venue_sim::dukascopy::{DukascopySim, encode_bi5, encode_json, generate_hours};

#[path = "../tests/support/mod.rs"]
mod support;

use support::{HOUR_NS, database, subscribe_at_end, unique};

const HOURS: usize = 744;

async fn rows(db: &sqlx::PgPool, from: UnixNanos, to: UnixNanos) -> (i64, i64) {
    let at = |t: UnixNanos| chrono::DateTime::from_timestamp_nanos(t.0);
    let q: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM quotes WHERE source = 'dukascopy' AND symbol = 'EUR/USD' \
         AND time >= $1 AND time < $2",
    )
    .bind(at(from))
    .bind(at(to))
    .fetch_one(db)
    .await
    .unwrap_or(0);
    let c: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM coverage WHERE source = 'dukascopy' AND symbol = 'EUR/USD' \
         AND hour >= $1 AND hour < $2",
    )
    .bind(at(from))
    .bind(at(to))
    .fetch_one(db)
    .await
    .unwrap_or(0);
    (q, c)
}

async fn wait_rows(db: &sqlx::PgPool, from: UnixNanos, to: UnixNanos, quotes: i64, hours: i64) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let (q, c) = rows(db, from, to).await;
        if q >= quotes && c >= hours {
            assert_eq!(q, quotes, "no duplicate row");
            return;
        }
        assert!(Instant::now() < deadline, "stuck at {q} quotes, {c} hours");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let transport = match std::env::var("BENCH_TRANSPORT").as_deref() {
        Ok("bi5") => TransportKind::Bi5,
        _ => TransportKind::Json,
    };
    let mean: u32 = std::env::var("BENCH_MEAN_TICKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let calendar = ForexCalendar::standard();
    let from = UnixNanos::parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
    let to = UnixNanos(from.0 + i64::try_from(HOURS).unwrap() * HOUR_NS);
    let generated = generate_hours(
        "EURUSD",
        from.0 / 1_000_000,
        HOURS,
        5,
        110_000,
        2024,
        mean,
        |h| !calendar.is_open(UnixNanos(h * 1_000_000)),
    );
    let total: usize = generated.iter().map(|(_, t)| t.len()).sum();
    let open = generated.iter().filter(|(_, t)| !t.is_empty()).count();
    let sim = DukascopySim::start().await.unwrap();
    let mut bytes = 0usize;
    for (h, t) in &generated {
        match transport {
            TransportKind::Json => {
                let body = encode_json(*h, 5, t);
                bytes += body.len();
                sim.publish_json("EURUSD", *h, body.into_bytes().into());
            }
            TransportKind::Bi5 => {
                let body = encode_bi5(t);
                bytes += body.len();
                sim.publish_bi5("EURUSD", *h, body.into());
            }
        }
    }
    println!(
        "dukascopy e2e ({}): {HOURS} hours of EUR/USD, {open} open, {total} ticks, {:.1} MB of bodies",
        transport.as_str(),
        bytes as f64 / 1e6
    );

    let symbol = Symbol::parse("EUR/USD").unwrap();
    let topic = TopicName::data(
        Namespace::Historical,
        Source::Dukascopy,
        &symbol,
        TickKind::Quote,
    )
    .unwrap();
    let client = PulsarClient::connect(&pulsar_config(), "bench")
        .await
        .unwrap();
    let (db_name, db_url) = database("tickflow_bench_bf").await;
    let db = sqlx::PgPool::connect(&db_url).await.unwrap();
    let sink_subscription = unique("sink-bench");
    subscribe_at_end(
        topic.clone(),
        &sink_subscription,
        SubscriptionType::KeyShared,
    )
    .await;
    let mut sink_cfg = timescale_sink::Config {
        pulsar: pulsar_config(),
        ..Default::default()
    };
    sink_cfg.database.url = Some(SecretString::new(db_url));
    sink_cfg.runtime.admin.listen = "127.0.0.1:0".parse().unwrap();
    sink_cfg.subscription.name = sink_subscription;
    sink_cfg.subscription.pattern =
        r"persistent://market-data/historical/dukascopy\.eur-usd\.quote".to_owned();
    let sink = timescale_sink::Sink::build(sink_cfg).await.unwrap();
    let stop = CancellationToken::new();
    let sink_task = tokio::spawn(sink.run(stop.clone()));

    let jobs_topic = unique("bench-jobs");
    let mut cfg = Config {
        pulsar: pulsar_config(),
        ..Config::default()
    };
    cfg.runtime.admin.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dukascopy.transport = transport;
    cfg.dukascopy.url = Some(sim.base_url());
    cfg.worker.jobs_topic = jobs_topic.clone();
    cfg.worker.subscription = unique("bench-backfill");
    let (backfill, handle) = Backfill::build(cfg).await.unwrap();
    let backfill_task = tokio::spawn(backfill.run(stop.clone()));
    let producer_topic = TopicName::control(&jobs_topic).unwrap();
    let mut producer = client.raw_producer(&producer_topic).await.unwrap();

    let start = Instant::now();
    for day in 0..HOURS / 24 {
        let task = BackfillTask {
            job_id: "bench".into(),
            symbol: "EUR/USD".into(),
            source: "dukascopy".into(),
            hour_start_ns: from.0 + i64::try_from(day * 24).unwrap() * HOUR_NS,
            hours: 24,
        };
        producer
            .send_non_blocking(pulsar::producer::Message {
                payload: task.encode_to_vec(),
                partition_key: Some("EUR/USD".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // In Pulsar: every tick confirmed (the backfill's own pace, before the sink).
    let admin = handle.admin_addr();
    loop {
        let published =
            tickflow_testkit::metric(admin, "dukascopy_backfill_ticks_published_total").await;
        if published >= total as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let in_pulsar = start.elapsed().as_secs_f64();
    println!(
        "backfill into Pulsar: {total} ticks in {in_pulsar:.1} s = {:.0} ticks/s; a year: {:.0} s",
        total as f64 / in_pulsar,
        in_pulsar * 8760.0 / HOURS as f64
    );
    wait_rows(
        &db,
        from,
        to,
        i64::try_from(total).unwrap(),
        i64::try_from(HOURS).unwrap(),
    )
    .await;
    let elapsed = start.elapsed().as_secs_f64();
    let rate = total as f64 / elapsed;
    let year = elapsed * 8760.0 / HOURS as f64;
    println!(
        "backfill: {total} ticks in {elapsed:.1} s = {rate:.0} ticks/s; a year at this pace: {year:.0} s ({:.2} min; target < 120 s); anchor duka 600 s/instrument-year: ratio {:.2}",
        year / 60.0,
        year / 600.0
    );

    // The anchor: the same number of quotes straight to the topic, stored by the same sink.
    let anchor_from = UnixNanos::parse_rfc3339("2023-01-01T00:00:00Z").unwrap();
    let anchor_to = UnixNanos(anchor_from.0 + i64::try_from(HOURS).unwrap() * HOUR_NS);
    let flat: Vec<(i64, u64)> = generated
        .iter()
        .flat_map(|(h, t)| {
            t.iter().enumerate().map(move |(i, tick)| {
                (
                    h * 1_000_000 + i64::from(tick.ms_in_hour) * 1_000_000,
                    u64::try_from(i).unwrap(),
                )
            })
        })
        .collect();
    let shift = anchor_from.0 - from.0;
    let start = Instant::now();
    direct_publish(
        std::slice::from_ref(&topic),
        u64::try_from(total).unwrap(),
        |i| {
            let (t, seq) = flat[usize::try_from(i).unwrap()];
            Tick::Quote(Quote {
                source: Source::Dukascopy,
                symbol: symbol.clone(),
                venue_symbol: "EURUSD".into(),
                event_time: UnixNanos(t + shift),
                received_at: UnixNanos::now(),
                bid: Decimal::new(110_000 + i64::try_from(i % 50).unwrap(), 5),
                ask: Decimal::new(110_002 + i64::try_from(i % 50).unwrap(), 5),
                bid_size: Decimal::new(900_000, 0),
                ask_size: Decimal::new(1_800_000, 0),
                sequence: seq,
                indicative: false,
            })
        },
    )
    .await;
    wait_rows(
        &db,
        anchor_from,
        anchor_to,
        i64::try_from(total).unwrap(),
        0,
    )
    .await;
    let anchor = start.elapsed().as_secs_f64();
    println!(
        "anchor_sink_only: {total} ticks in {anchor:.1} s = {:.0} ticks/s; ratio backfill/anchor (throughput) {:.2}",
        total as f64 / anchor,
        anchor / elapsed
    );
    stop.cancel();
    let _ = backfill_task.await;
    let _ = sink_task.await;
    // The bench's database goes with it.
    db.close().await;
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://tickflow@127.0.0.1:55432/tickflow".to_owned());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    let name = db_name;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await;
}
