//! The database schema: sqlx migrations (`migrations/`, embedded), run at start under sqlx's
//! advisory lock so that replicas starting together do not race, then the engine-specific candle
//! objects under our own advisory lock:
//!
//! - **TimescaleDB**: continuous aggregates `trade_candles_<tf>` and `quote_candles_<tf>` over the
//!   hypertables (real-time: `materialized_only = false`). Their DDL cannot run in a transaction,
//!   which is why it lives here and not in a migration. After each commit the writer refreshes
//!   exactly the buckets the batch touched (late and backfilled data included).
//! - **Plain PostgreSQL**: views of the same names and columns: 1m straight from the
//!   `*_candles_1m_store` tables the writer keeps in the same transaction as the rows, longer
//!   timeframes aggregated from the 1m store. The same numbers as the continuous aggregates.
//!
//! Plain PostgreSQL also needs partitions: [`Partitions`] creates one per table and UTC day,
//! ahead of the data (today and the next days at start and hourly) and on demand before a batch
//! that reaches a day without one (a backfill of 2019).

use std::collections::HashSet;

use sqlx::{PgPool, Postgres, Transaction};
use tickflow_schema::UnixNanos;

use crate::SinkError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The candle timeframes: name suffix and interval.
pub const TIMEFRAMES: [(&str, &str); 7] = [
    ("1m", "1 minute"),
    ("5m", "5 minutes"),
    ("15m", "15 minutes"),
    ("1h", "1 hour"),
    ("4h", "4 hours"),
    ("12h", "12 hours"),
    ("1d", "1 day"),
];

/// Which engine the schema runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The TimescaleDB extension is installed: hypertables and continuous aggregates.
    Timescale,
    /// Plain PostgreSQL: partitioned tables, sink-kept candles.
    Plain,
}

/// An arbitrary but fixed key for `pg_advisory_lock` around the candle DDL.
const CANDLE_DDL_LOCK: i64 = 0x7469_636b_666c_6f77; // "tickflow"

/// Runs the migrations and creates the candle objects; returns the engine found.
pub async fn prepare(pool: &PgPool) -> Result<Engine, SinkError> {
    MIGRATOR.run(pool).await?;
    let timescale: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
    )
    .fetch_one(pool)
    .await?;
    let engine = if timescale {
        Engine::Timescale
    } else {
        Engine::Plain
    };
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(CANDLE_DDL_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = async {
        for statement in candle_ddl(engine) {
            sqlx::query(&statement).execute(&mut *conn).await?;
        }
        Ok::<(), sqlx::Error>(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(CANDLE_DDL_LOCK)
        .execute(&mut *conn)
        .await?;
    result?;
    Ok(engine)
}

/// The candle DDL for an engine, idempotent, one statement per string.
pub fn candle_ddl(engine: Engine) -> Vec<String> {
    let mut out = Vec::new();
    for (tf, interval) in TIMEFRAMES {
        match engine {
            Engine::Timescale => {
                out.push(format!(
                    "CREATE MATERIALIZED VIEW IF NOT EXISTS trade_candles_{tf} \
                     WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS \
                     SELECT time_bucket(interval '{interval}', time) AS bucket, source, symbol, \
                       first(price, time) AS open, max(price) AS high, min(price) AS low, \
                       last(price, time) AS close, sum(size) AS volume, count(*) AS trades \
                     FROM trades GROUP BY 1, 2, 3 WITH NO DATA"
                ));
                out.push(format!(
                    "CREATE MATERIALIZED VIEW IF NOT EXISTS quote_candles_{tf} \
                     WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS \
                     SELECT time_bucket(interval '{interval}', time) AS bucket, source, symbol, \
                       first(bid, time) AS bid_open, max(bid) AS bid_high, min(bid) AS bid_low, \
                       last(bid, time) AS bid_close, first(ask, time) AS ask_open, \
                       max(ask) AS ask_high, min(ask) AS ask_low, last(ask, time) AS ask_close, \
                       count(*) AS ticks \
                     FROM quotes GROUP BY 1, 2, 3 WITH NO DATA"
                ));
            }
            Engine::Plain if tf == "1m" => {
                out.push(
                    "CREATE OR REPLACE VIEW trade_candles_1m AS \
                     SELECT bucket, source, symbol, open, high, low, close, volume, trades \
                     FROM trade_candles_1m_store"
                        .to_owned(),
                );
                out.push(
                    "CREATE OR REPLACE VIEW quote_candles_1m AS \
                     SELECT bucket, source, symbol, bid_open, bid_high, bid_low, bid_close, \
                       ask_open, ask_high, ask_low, ask_close, ticks \
                     FROM quote_candles_1m_store"
                        .to_owned(),
                );
            }
            Engine::Plain => {
                out.push(format!(
                    "CREATE OR REPLACE VIEW trade_candles_{tf} AS \
                     SELECT date_bin(interval '{interval}', bucket, timestamptz 'epoch') AS bucket, \
                       source, symbol, \
                       (array_agg(open ORDER BY open_ns, open_key))[1] AS open, \
                       max(high) AS high, min(low) AS low, \
                       (array_agg(close ORDER BY close_ns DESC, close_key DESC))[1] AS close, \
                       sum(volume) AS volume, sum(trades)::bigint AS trades \
                     FROM trade_candles_1m_store GROUP BY 1, 2, 3"
                ));
                out.push(format!(
                    "CREATE OR REPLACE VIEW quote_candles_{tf} AS \
                     SELECT date_bin(interval '{interval}', bucket, timestamptz 'epoch') AS bucket, \
                       source, symbol, \
                       (array_agg(bid_open ORDER BY open_ns, open_seq))[1] AS bid_open, \
                       max(bid_high) AS bid_high, min(bid_low) AS bid_low, \
                       (array_agg(bid_close ORDER BY close_ns DESC, close_seq DESC))[1] AS bid_close, \
                       (array_agg(ask_open ORDER BY open_ns, open_seq))[1] AS ask_open, \
                       max(ask_high) AS ask_high, min(ask_low) AS ask_low, \
                       (array_agg(ask_close ORDER BY close_ns DESC, close_seq DESC))[1] AS ask_close, \
                       sum(ticks)::bigint AS ticks \
                     FROM quote_candles_1m_store GROUP BY 1, 2, 3"
                ));
            }
        }
    }
    out
}

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// The UTC day (days since the epoch) of an instant.
pub fn day_of(t: UnixNanos) -> i64 {
    t.0.div_euclid(DAY_NS)
}

/// Daily partitions of `trades` and `quotes` on plain PostgreSQL.
#[derive(Debug, Default)]
pub struct Partitions {
    known: HashSet<(&'static str, i64)>,
}

/// Tables partitioned by day.
pub const PARTITIONED: [&str; 2] = ["trades", "quotes"];

impl Partitions {
    /// Loads the partitions that exist.
    pub async fn load(pool: &PgPool) -> Result<Self, SinkError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
             WHERE p.relname IN ('trades', 'quotes')",
        )
        .fetch_all(pool)
        .await?;
        let mut known = HashSet::new();
        for name in names {
            for table in PARTITIONED {
                if let Some(day) = name
                    .strip_prefix(table)
                    .and_then(|rest| rest.strip_prefix("_d"))
                    .and_then(|d| d.parse::<i64>().ok())
                {
                    known.insert((table, day));
                }
            }
        }
        Ok(Self { known })
    }

    /// Makes sure `table` has a partition for each of `days` (days since the epoch). Each
    /// creation is its own short transaction under a transaction-level advisory lock, so replicas
    /// creating the same day wait for each other instead of failing.
    pub async fn ensure(
        &mut self,
        pool: &PgPool,
        table: &'static str,
        days: impl IntoIterator<Item = i64>,
    ) -> Result<(), SinkError> {
        for day in days {
            if self.known.contains(&(table, day)) {
                continue;
            }
            let mut tx: Transaction<'_, Postgres> = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("{table}_d{day}"))
                .execute(&mut *tx)
                .await?;
            let from = day * 86_400;
            let to = from + 86_400;
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {table}_d{day} PARTITION OF {table} \
                 FOR VALUES FROM (to_timestamp({from})) TO (to_timestamp({to}))"
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            self.known.insert((table, day));
        }
        Ok(())
    }
}
