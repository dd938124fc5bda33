//! One batch of ticks → one database transaction.
//!
//! Rows go in with `INSERT … SELECT FROM UNNEST($1, $2, …) ON CONFLICT DO NOTHING`: one statement
//! per table, every column an array parameter (binary protocol, one round trip), duplicates
//! (redeliveries, re-backfills) skipped by the unique keys. On plain PostgreSQL the same statement
//! feeds the rows it actually inserted (`RETURNING`) into the one-minute candle store, so a
//! duplicate can never count twice and a late row lands in its own minute. On TimescaleDB the
//! writer returns the time range the batch touched, and the caller refreshes exactly those
//! buckets of the continuous aggregates after the commit.
//!
//! Errors are sorted into [`WriteError::Retry`] (the database is away: connection lost, shutting
//! down, out of resources, a serialisation failure; try the same batch again later) and
//! [`WriteError::Rejected`] (the data itself was refused, SQLSTATE classes 22 and 23: split the
//! batch to find the row, dead-letter it, commit the rest).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, Transaction};
use tickflow_schema::{Coverage, Gap, Quote, Side, Tick, TickKind, Trade, UnixNanos};

use crate::schema::{Engine, PARTITIONED, Partitions, day_of};

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The database is unavailable or busy: the same batch may succeed later.
    #[error("database unavailable: {0}")]
    Retry(sqlx::Error),
    /// The database refused the data: some row of the batch is poison.
    #[error("database refused the data: {0}")]
    Rejected(sqlx::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        let rejected = match &e {
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
            sqlx::Error::Encode(_) | sqlx::Error::ColumnDecode { .. } => true,
            _ => false,
        };
        if rejected {
            WriteError::Rejected(e)
        } else {
            WriteError::Retry(e)
        }
    }
}

impl From<crate::SinkError> for WriteError {
    fn from(e: crate::SinkError) -> Self {
        match e {
            crate::SinkError::Database(e) => e.into(),
            other => WriteError::Retry(sqlx::Error::Protocol(other.to_string())),
        }
    }
}

/// What a committed batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// Rows inserted into `trades`.
    pub trades: u64,
    /// Rows inserted into `quotes`.
    pub quotes: u64,
    /// Rows inserted into `gaps`.
    pub gaps: u64,
    /// Rows inserted or updated in `coverage`.
    pub coverage: u64,
    /// Rows skipped because they were already stored (redelivery, re-backfill).
    pub duplicates: u64,
    /// Time range of inserted trades, for a continuous-aggregate refresh.
    pub trade_range: Option<(UnixNanos, UnixNanos)>,
    /// Time range of inserted quotes.
    pub quote_range: Option<(UnixNanos, UnixNanos)>,
}

fn ts(t: UnixNanos) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(t.0)
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
        Side::Unknown => "unknown",
    }
}

fn kind(k: TickKind) -> &'static str {
    match k {
        TickKind::Trade => "trade",
        TickKind::Quote => "quote",
    }
}

fn reason(r: tickflow_schema::GapReason) -> &'static str {
    use tickflow_schema::GapReason as R;
    match r {
        R::Unspecified => "unspecified",
        R::Disconnect => "disconnect",
        R::VenueError => "venue_error",
        R::Handover => "handover",
        R::Dropped => "dropped",
        R::Unavailable => "unavailable",
    }
}

const TRADES_PLAIN: &str = "
WITH ins AS (
    INSERT INTO trades (time, source, symbol, venue_symbol, price, size, side, trade_id,
                        received_at, time_ns, received_ns)
    SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::numeric[],
                         $6::numeric[], $7::text[], $8::text[], $9::timestamptz[], $10::int8[],
                         $11::int8[])
    ON CONFLICT DO NOTHING
    RETURNING time, source, symbol, price, size, trade_id, time_ns
), agg AS (
    SELECT date_bin(interval '1 minute', time, timestamptz 'epoch') AS bucket, source, symbol,
           (array_agg(price ORDER BY time_ns, trade_id))[1] AS open,
           min(time_ns) AS open_ns,
           (array_agg(trade_id ORDER BY time_ns, trade_id))[1] AS open_key,
           max(price) AS high, min(price) AS low,
           (array_agg(price ORDER BY time_ns DESC, trade_id DESC))[1] AS close,
           max(time_ns) AS close_ns,
           (array_agg(trade_id ORDER BY time_ns DESC, trade_id DESC))[1] AS close_key,
           sum(size) AS volume, count(*) AS trades
    FROM ins GROUP BY 1, 2, 3
), up AS (
    INSERT INTO trade_candles_1m_store AS c
        (bucket, source, symbol, open, open_ns, open_key, high, low, close, close_ns, close_key,
         volume, trades)
    SELECT bucket, source, symbol, open, open_ns, open_key, high, low, close, close_ns, close_key,
           volume, trades
    FROM agg
    ON CONFLICT (source, symbol, bucket) DO UPDATE SET
        open = CASE WHEN (excluded.open_ns, excluded.open_key) < (c.open_ns, c.open_key)
                    THEN excluded.open ELSE c.open END,
        open_key = CASE WHEN (excluded.open_ns, excluded.open_key) < (c.open_ns, c.open_key)
                        THEN excluded.open_key ELSE c.open_key END,
        open_ns = LEAST(c.open_ns, excluded.open_ns),
        high = GREATEST(c.high, excluded.high),
        low = LEAST(c.low, excluded.low),
        close = CASE WHEN (excluded.close_ns, excluded.close_key) > (c.close_ns, c.close_key)
                     THEN excluded.close ELSE c.close END,
        close_key = CASE WHEN (excluded.close_ns, excluded.close_key) > (c.close_ns, c.close_key)
                         THEN excluded.close_key ELSE c.close_key END,
        close_ns = GREATEST(c.close_ns, excluded.close_ns),
        volume = c.volume + excluded.volume,
        trades = c.trades + excluded.trades
    RETURNING 1
)
SELECT count(*), min(time_ns), max(time_ns), (SELECT count(*) FROM up) FROM ins";

const TRADES_TIMESCALE: &str = "
WITH ins AS (
    INSERT INTO trades (time, source, symbol, venue_symbol, price, size, side, trade_id,
                        received_at, time_ns, received_ns)
    SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::numeric[],
                         $6::numeric[], $7::text[], $8::text[], $9::timestamptz[], $10::int8[],
                         $11::int8[])
    ON CONFLICT DO NOTHING
    RETURNING time_ns
)
SELECT count(*), min(time_ns), max(time_ns), 0::bigint FROM ins";

const QUOTES_PLAIN: &str = "
WITH ins AS (
    INSERT INTO quotes (time, source, symbol, venue_symbol, bid, ask, bid_size, ask_size,
                        sequence, indicative, received_at, time_ns, received_ns)
    SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::numeric[],
                         $6::numeric[], $7::numeric[], $8::numeric[], $9::int8[], $10::bool[],
                         $11::timestamptz[], $12::int8[], $13::int8[])
    ON CONFLICT DO NOTHING
    RETURNING time, source, symbol, bid, ask, sequence, time_ns
), agg AS (
    SELECT date_bin(interval '1 minute', time, timestamptz 'epoch') AS bucket, source, symbol,
           (array_agg(bid ORDER BY time_ns, sequence))[1] AS bid_open,
           max(bid) AS bid_high, min(bid) AS bid_low,
           (array_agg(bid ORDER BY time_ns DESC, sequence DESC))[1] AS bid_close,
           (array_agg(ask ORDER BY time_ns, sequence))[1] AS ask_open,
           max(ask) AS ask_high, min(ask) AS ask_low,
           (array_agg(ask ORDER BY time_ns DESC, sequence DESC))[1] AS ask_close,
           min(time_ns) AS open_ns,
           (array_agg(sequence ORDER BY time_ns, sequence))[1] AS open_seq,
           max(time_ns) AS close_ns,
           (array_agg(sequence ORDER BY time_ns DESC, sequence DESC))[1] AS close_seq,
           count(*) AS ticks
    FROM ins GROUP BY 1, 2, 3
), up AS (
    INSERT INTO quote_candles_1m_store AS c
        (bucket, source, symbol, bid_open, bid_high, bid_low, bid_close, ask_open, ask_high,
         ask_low, ask_close, open_ns, open_seq, close_ns, close_seq, ticks)
    SELECT bucket, source, symbol, bid_open, bid_high, bid_low, bid_close, ask_open, ask_high,
           ask_low, ask_close, open_ns, open_seq, close_ns, close_seq, ticks
    FROM agg
    ON CONFLICT (source, symbol, bucket) DO UPDATE SET
        bid_open = CASE WHEN (excluded.open_ns, excluded.open_seq) < (c.open_ns, c.open_seq)
                        THEN excluded.bid_open ELSE c.bid_open END,
        ask_open = CASE WHEN (excluded.open_ns, excluded.open_seq) < (c.open_ns, c.open_seq)
                        THEN excluded.ask_open ELSE c.ask_open END,
        open_seq = CASE WHEN (excluded.open_ns, excluded.open_seq) < (c.open_ns, c.open_seq)
                        THEN excluded.open_seq ELSE c.open_seq END,
        open_ns = LEAST(c.open_ns, excluded.open_ns),
        bid_close = CASE WHEN (excluded.close_ns, excluded.close_seq) > (c.close_ns, c.close_seq)
                         THEN excluded.bid_close ELSE c.bid_close END,
        ask_close = CASE WHEN (excluded.close_ns, excluded.close_seq) > (c.close_ns, c.close_seq)
                         THEN excluded.ask_close ELSE c.ask_close END,
        close_seq = CASE WHEN (excluded.close_ns, excluded.close_seq) > (c.close_ns, c.close_seq)
                         THEN excluded.close_seq ELSE c.close_seq END,
        close_ns = GREATEST(c.close_ns, excluded.close_ns),
        bid_high = GREATEST(c.bid_high, excluded.bid_high),
        bid_low = LEAST(c.bid_low, excluded.bid_low),
        ask_high = GREATEST(c.ask_high, excluded.ask_high),
        ask_low = LEAST(c.ask_low, excluded.ask_low),
        ticks = c.ticks + excluded.ticks
    RETURNING 1
)
SELECT count(*), min(time_ns), max(time_ns), (SELECT count(*) FROM up) FROM ins";

const QUOTES_TIMESCALE: &str = "
WITH ins AS (
    INSERT INTO quotes (time, source, symbol, venue_symbol, bid, ask, bid_size, ask_size,
                        sequence, indicative, received_at, time_ns, received_ns)
    SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::numeric[],
                         $6::numeric[], $7::numeric[], $8::numeric[], $9::int8[], $10::bool[],
                         $11::timestamptz[], $12::int8[], $13::int8[])
    ON CONFLICT DO NOTHING
    RETURNING time_ns
)
SELECT count(*), min(time_ns), max(time_ns), 0::bigint FROM ins";

const GAPS: &str = "
INSERT INTO gaps (source, symbol, kind, from_time, to_time, reason, detail, detected_at)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                     $6::text[], $7::text[], $8::timestamptz[])
ON CONFLICT DO NOTHING";

const COVERAGE: &str = "
INSERT INTO coverage AS c (source, symbol, kind, hour, status, ticks, detail, recorded_at)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                     $6::int8[], $7::text[], $8::timestamptz[])
ON CONFLICT (source, symbol, kind, hour) DO UPDATE SET
    status = excluded.status, ticks = excluded.ticks, detail = excluded.detail,
    recorded_at = excluded.recorded_at, stored_at = now()
WHERE excluded.recorded_at >= c.recorded_at";

type Counts = (i64, Option<i64>, Option<i64>, i64);

fn range(counts: &Counts) -> Option<(UnixNanos, UnixNanos)> {
    match (counts.1, counts.2) {
        (Some(lo), Some(hi)) => Some((UnixNanos(lo), UnixNanos(hi))),
        _ => None,
    }
}

/// Writes batches. Holds the partition cache on plain PostgreSQL.
#[derive(Debug)]
pub struct Writer {
    pool: PgPool,
    engine: Engine,
    partitions: Partitions,
}

impl Writer {
    /// A writer for a prepared schema ([`crate::schema::prepare`]).
    pub async fn new(pool: PgPool, engine: Engine) -> Result<Self, crate::SinkError> {
        let partitions = match engine {
            Engine::Plain => Partitions::load(&pool).await?,
            Engine::Timescale => Partitions::default(),
        };
        let mut w = Self {
            pool,
            engine,
            partitions,
        };
        w.ensure_days_ahead().await?;
        Ok(w)
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Partitions for yesterday, today and the next three days (plain PostgreSQL).
    pub async fn ensure_days_ahead(&mut self) -> Result<(), crate::SinkError> {
        if self.engine == Engine::Plain {
            let today = day_of(UnixNanos::now());
            for table in PARTITIONED {
                self.partitions
                    .ensure(&self.pool, table, today - 1..=today + 3)
                    .await?;
            }
        }
        Ok(())
    }

    /// Writes `ticks` in one transaction.
    pub async fn write(&mut self, ticks: &[&Tick]) -> Result<Written, WriteError> {
        let mut trades: Vec<&Trade> = Vec::new();
        let mut quotes: Vec<&Quote> = Vec::new();
        let mut gaps: Vec<&Gap> = Vec::new();
        // One marker per hour: the latest wins (a statement may not update a row twice).
        let mut coverage: BTreeMap<(&str, &str, TickKind, i64), &Coverage> = BTreeMap::new();
        for tick in ticks {
            match tick {
                Tick::Trade(t) => trades.push(t),
                Tick::Quote(q) => quotes.push(q),
                Tick::Gap(g) => gaps.push(g),
                Tick::Coverage(c) => {
                    let key = (c.source.as_str(), c.symbol.as_str(), c.kind, c.hour.0);
                    match coverage.get(&key) {
                        Some(old) if old.recorded_at > c.recorded_at => {}
                        _ => {
                            coverage.insert(key, c);
                        }
                    }
                }
            }
        }
        if self.engine == Engine::Plain {
            let trade_days = trades.iter().map(|t| day_of(t.event_time));
            self.partitions
                .ensure(&self.pool, "trades", unique_days(trade_days))
                .await?;
            let quote_days = quotes.iter().map(|q| day_of(q.event_time));
            self.partitions
                .ensure(&self.pool, "quotes", unique_days(quote_days))
                .await?;
        }

        let mut tx = self.pool.begin().await?;
        let mut written = Written::default();
        if !trades.is_empty() {
            let counts = self.insert_trades(&mut tx, &trades).await?;
            written.trades = u64::try_from(counts.0).unwrap_or(0);
            written.duplicates += trades.len() as u64 - written.trades;
            written.trade_range = range(&counts);
        }
        if !quotes.is_empty() {
            let counts = self.insert_quotes(&mut tx, &quotes).await?;
            written.quotes = u64::try_from(counts.0).unwrap_or(0);
            written.duplicates += quotes.len() as u64 - written.quotes;
            written.quote_range = range(&counts);
        }
        if !gaps.is_empty() {
            let done = sqlx::query(GAPS)
                .bind(gaps.iter().map(|g| g.source.as_str()).collect::<Vec<_>>())
                .bind(gaps.iter().map(|g| g.symbol.as_str()).collect::<Vec<_>>())
                .bind(gaps.iter().map(|g| kind(g.kind)).collect::<Vec<_>>())
                .bind(gaps.iter().map(|g| ts(g.from)).collect::<Vec<_>>())
                .bind(gaps.iter().map(|g| ts(g.to)).collect::<Vec<_>>())
                .bind(gaps.iter().map(|g| reason(g.reason)).collect::<Vec<_>>())
                .bind(gaps.iter().map(|g| g.detail.as_str()).collect::<Vec<_>>())
                .bind(gaps.iter().map(|g| ts(g.detected_at)).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
            written.gaps = done.rows_affected();
            written.duplicates += gaps.len() as u64 - written.gaps;
        }
        if !coverage.is_empty() {
            let cov: Vec<&Coverage> = coverage.into_values().collect();
            let done = sqlx::query(COVERAGE)
                .bind(cov.iter().map(|c| c.source.as_str()).collect::<Vec<_>>())
                .bind(cov.iter().map(|c| c.symbol.as_str()).collect::<Vec<_>>())
                .bind(cov.iter().map(|c| kind(c.kind)).collect::<Vec<_>>())
                .bind(cov.iter().map(|c| ts(c.hour)).collect::<Vec<_>>())
                .bind(cov.iter().map(|c| c.status.as_str()).collect::<Vec<_>>())
                .bind(
                    cov.iter()
                        .map(|c| i64::try_from(c.ticks).unwrap_or(i64::MAX))
                        .collect::<Vec<_>>(),
                )
                .bind(cov.iter().map(|c| c.detail.as_str()).collect::<Vec<_>>())
                .bind(cov.iter().map(|c| ts(c.recorded_at)).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
            written.coverage = done.rows_affected();
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn insert_trades(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        trades: &[&Trade],
    ) -> Result<Counts, WriteError> {
        let sql = match self.engine {
            Engine::Plain => TRADES_PLAIN,
            Engine::Timescale => TRADES_TIMESCALE,
        };
        Ok(sqlx::query_as::<_, Counts>(sql)
            .bind(trades.iter().map(|t| ts(t.event_time)).collect::<Vec<_>>())
            .bind(trades.iter().map(|t| t.source.as_str()).collect::<Vec<_>>())
            .bind(trades.iter().map(|t| t.symbol.as_str()).collect::<Vec<_>>())
            .bind(
                trades
                    .iter()
                    .map(|t| t.venue_symbol.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(trades.iter().map(|t| t.price).collect::<Vec<Decimal>>())
            .bind(trades.iter().map(|t| t.size).collect::<Vec<Decimal>>())
            .bind(trades.iter().map(|t| side(t.side)).collect::<Vec<_>>())
            .bind(
                trades
                    .iter()
                    .map(|t| t.trade_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(trades.iter().map(|t| ts(t.received_at)).collect::<Vec<_>>())
            .bind(trades.iter().map(|t| t.event_time.0).collect::<Vec<_>>())
            .bind(trades.iter().map(|t| t.received_at.0).collect::<Vec<_>>())
            .fetch_one(&mut **tx)
            .await?)
    }

    async fn insert_quotes(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        quotes: &[&Quote],
    ) -> Result<Counts, WriteError> {
        let sql = match self.engine {
            Engine::Plain => QUOTES_PLAIN,
            Engine::Timescale => QUOTES_TIMESCALE,
        };
        Ok(sqlx::query_as::<_, Counts>(sql)
            .bind(quotes.iter().map(|q| ts(q.event_time)).collect::<Vec<_>>())
            .bind(quotes.iter().map(|q| q.source.as_str()).collect::<Vec<_>>())
            .bind(quotes.iter().map(|q| q.symbol.as_str()).collect::<Vec<_>>())
            .bind(
                quotes
                    .iter()
                    .map(|q| q.venue_symbol.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(quotes.iter().map(|q| q.bid).collect::<Vec<Decimal>>())
            .bind(quotes.iter().map(|q| q.ask).collect::<Vec<Decimal>>())
            .bind(quotes.iter().map(|q| q.bid_size).collect::<Vec<Decimal>>())
            .bind(quotes.iter().map(|q| q.ask_size).collect::<Vec<Decimal>>())
            .bind(
                quotes
                    .iter()
                    .map(|q| i64::try_from(q.sequence).unwrap_or(i64::MAX))
                    .collect::<Vec<_>>(),
            )
            .bind(quotes.iter().map(|q| q.indicative).collect::<Vec<_>>())
            .bind(quotes.iter().map(|q| ts(q.received_at)).collect::<Vec<_>>())
            .bind(quotes.iter().map(|q| q.event_time.0).collect::<Vec<_>>())
            .bind(quotes.iter().map(|q| q.received_at.0).collect::<Vec<_>>())
            .fetch_one(&mut **tx)
            .await?)
    }

    /// TimescaleDB: refreshes the buckets of every continuous aggregate that `written` touched
    /// (after the commit; `CALL refresh_continuous_aggregate` cannot run in a transaction).
    pub async fn refresh_candles(&self, written: &Written) -> Result<(), WriteError> {
        if self.engine != Engine::Timescale {
            return Ok(());
        }
        for (prefix, range) in [
            ("trade", written.trade_range),
            ("quote", written.quote_range),
        ] {
            let Some((lo, hi)) = range else { continue };
            for (tf, interval) in crate::schema::TIMEFRAMES {
                sqlx::query(&format!(
                    "CALL refresh_continuous_aggregate('{prefix}_candles_{tf}', \
                     time_bucket(interval '{interval}', $1::timestamptz), \
                     time_bucket(interval '{interval}', $2::timestamptz) + interval '{interval}')"
                ))
                .bind(ts(lo))
                .bind(ts(hi))
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }
}

fn unique_days(days: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut v: Vec<i64> = days.collect();
    v.sort_unstable();
    v.dedup();
    v
}
