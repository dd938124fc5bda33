//! Shared helpers: a database of its own per test (created on the PostgreSQL of `make test`),
//! topics and a subscription of its own per test (on the real Pulsar), a sink in-process or as
//! a separate process.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test code: a failed setup should stop the run loudly"
)]

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tickflow_pulsar::admin::AdminClient;
use tickflow_pulsar::{Namespace, PulsarClient, PulsarConfig, TickProducer, TopicName};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::config::SecretString;
use tickflow_schema::{Decimal, Quote, Side, Source, Symbol, Tick, TickKind, Trade, UnixNanos};
use timescale_sink::{Config, Sink};

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://tickflow@127.0.0.1:55432/tickflow".to_owned())
}

pub fn pulsar_config() -> PulsarConfig {
    let mut c = PulsarConfig::default();
    if let Ok(url) = std::env::var("PULSAR_URL") {
        c.url = url;
    }
    if let Ok(url) = std::env::var("PULSAR_ADMIN_URL") {
        c.admin_url = url;
    }
    c
}

/// What one test owns: a database, a symbol prefix (its topics), a subscription.
pub struct Env {
    pub db_url: String,
    pub db: PgPool,
    /// Lower-case prefix of this test's symbol slugs, e.g. `s1a2b3c4`.
    pub prefix: String,
    pub subscription: String,
    pub client: PulsarClient,
}

impl Env {
    pub async fn new() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,timescale_sink=info".into()),
            )
            .with_test_writer()
            .try_init();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let id = &id[..8];
        let name = format!("tickflow_test_{id}");
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&database_url())
            .await
            .expect("is PostgreSQL running? `make infra`");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let base = database_url();
        let db_url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("DATABASE_URL without a database: {base}"),
        };
        let db = PgPoolOptions::new()
            .max_connections(4)
            .connect(&db_url)
            .await
            .unwrap();
        AdminClient::new(&pulsar_config().admin_url)
            .unwrap()
            .provision_layout()
            .await
            .expect("is Pulsar running? `make infra`");
        let client = PulsarClient::connect(&pulsar_config(), "timescale-sink-test")
            .await
            .unwrap();
        Self {
            db_url,
            db,
            prefix: format!("s{id}"),
            subscription: format!("sink-test-{id}"),
            client,
        }
    }

    /// The `i`th symbol of this test: `S1A2B3C4X0/USD`.
    pub fn symbol(&self, i: usize) -> Symbol {
        Symbol::parse(&format!("{}x{i}/USD", self.prefix)).unwrap()
    }

    /// A sink config for this test: its database, its topics only, admin on port 0.
    pub fn config(&self) -> Config {
        let mut cfg = Config {
            pulsar: pulsar_config(),
            ..Config::default()
        };
        cfg.database.url = Some(SecretString::new(self.db_url.clone()));
        cfg.runtime.admin.listen = "127.0.0.1:0".parse().unwrap();
        cfg.subscription.name = self.subscription.clone();
        cfg.subscription.pattern = format!(
            r"persistent://market-data/(realtime|historical)/[a-z]+\.{}x.*",
            self.prefix
        );
        cfg.subscription.refresh_ms = 500;
        cfg.batch.linger_ms = 50;
        cfg.retry.max_ms = 1_000;
        cfg
    }

    pub async fn producer(
        &self,
        ns: Namespace,
        source: Source,
        symbol: &Symbol,
        kind: TickKind,
    ) -> TickProducer {
        let topic = TopicName::data(ns, source, symbol, kind).unwrap();
        self.client.tick_producer(&topic).await.unwrap()
    }

    /// Publishes and waits for every receipt.
    pub async fn publish(&self, producer: &mut TickProducer, ticks: &[Tick]) {
        let mut receipts = Vec::with_capacity(ticks.len());
        for t in ticks {
            receipts.push(producer.send(t).await.unwrap());
        }
        for r in receipts {
            r.await.unwrap();
        }
    }

    /// Rows in `table`; 0 while the sink has not created it yet.
    pub async fn count(&self, table: &str) -> i64 {
        match sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db)
            .await
        {
            Ok(n) => n,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => 0,
            Err(e) => panic!("counting {table}: {e}"),
        }
    }

    /// Polls until `table` holds `n` rows (fails at more, or after `limit`).
    pub async fn wait_rows(&self, table: &str, n: i64, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let c = self.count(table).await;
            assert!(c <= n, "{table}: {c} rows, more than the {n} expected");
            if c == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{table}: {c} rows of {n} after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A sink running in this process.
pub struct Running {
    pub admin: std::net::SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), tickflow_runtime::supervisor::SupervisorError>>,
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the sink stops within 30 s")
            .unwrap()
            .expect("the sink stops cleanly");
    }

    pub async fn metric(&self, prefix: &str) -> f64 {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

pub async fn start(cfg: Config) -> Running {
    let sink = Sink::build(cfg).await.unwrap();
    let admin = sink.admin_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(sink.run(shutdown.clone()));
    Running {
        admin,
        shutdown,
        task,
    }
}

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

/// The `i`th trade of a deterministic stream for `symbol`, starting at `t0`.
pub fn trade(symbol: &Symbol, i: u64, t0: i64) -> Tick {
    Tick::Trade(Trade {
        source: Source::Kraken,
        symbol: symbol.clone(),
        venue_symbol: symbol.as_str().into(),
        event_time: UnixNanos(t0 + i64::try_from(i).unwrap() * 1_234_567_891),
        received_at: UnixNanos(t0 + i64::try_from(i).unwrap() * 1_234_567_891 + 2_000_123),
        price: dec(&format!("{}.{:02}", 60_000 + (i * 7_919) % 1_000, i % 100)),
        size: dec(&format!("0.{:08}", 1 + i * 104_729 % 99_999_999)),
        side: if i.is_multiple_of(3) {
            Side::Sell
        } else {
            Side::Buy
        },
        trade_id: i.to_string().into(),
    })
}

/// The `i`th quote of a deterministic stream for `symbol`.
pub fn quote(symbol: &Symbol, i: u64, t0: i64) -> Tick {
    Tick::Quote(Quote {
        source: Source::Oanda,
        symbol: symbol.clone(),
        venue_symbol: symbol.as_str().replace('/', "_").into(),
        event_time: UnixNanos(t0 + i64::try_from(i).unwrap() * 987_654_321),
        received_at: UnixNanos(t0 + i64::try_from(i).unwrap() * 987_654_321 + 1_000_001),
        bid: dec(&format!("1.{:05}", 10_000 + (i * 31) % 5_000)),
        ask: dec(&format!("1.{:05}", 10_012 + (i * 31) % 5_000)),
        bid_size: dec("1000000"),
        ask_size: dec(&format!("{}.5", 500_000 + i)),
        sequence: i % 3,
        indicative: i.is_multiple_of(7),
    })
}

/// Rows that differ between `trade_candles_<tf>` and the same candles computed independently
/// from the raw `trades` rows (0 when they are equal).
pub async fn trade_candle_mismatches(db: &PgPool, tf: &str, interval: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "WITH raw AS (
           SELECT date_bin(interval '{interval}', time, timestamptz 'epoch') AS bucket, source, symbol,
                  (array_agg(price ORDER BY time_ns, trade_id))[1] AS open, max(price) AS high,
                  min(price) AS low, (array_agg(price ORDER BY time_ns DESC, trade_id DESC))[1] AS close,
                  sum(size) AS volume, count(*) AS trades
           FROM trades GROUP BY 1, 2, 3)
         SELECT count(*) FROM (
           (SELECT * FROM raw EXCEPT SELECT * FROM trade_candles_{tf})
           UNION ALL
           (SELECT * FROM trade_candles_{tf} EXCEPT SELECT * FROM raw)) d"
    ))
    .fetch_one(db)
    .await
    .unwrap()
}
