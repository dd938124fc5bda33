//! The control plane's state in PostgreSQL, schema `control` (the sink owns `public`), migrated
//! at start by sqlx under its advisory lock.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tickflow_schema::{Source, Symbol};

/// symbol, created_at, source, history_start
type ListRow = (String, DateTime<Utc>, Option<String>, Option<NaiveDate>);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The migrations failed.
    #[error("control schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value no longer parses (a row written by a newer version?).
    #[error("stored {what} {value:?} is not valid")]
    Corrupt {
        /// What.
        what: &'static str,
        /// The value.
        value: String,
    },
}

/// One source of a registered symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    /// The venue.
    pub source: Source,
    /// History start, for sources with history.
    pub history_start: Option<NaiveDate>,
}

/// A registered symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolRow {
    /// Canonical symbol.
    pub symbol: Symbol,
    /// Its sources.
    pub sources: Vec<SourceRow>,
    /// When it was first added.
    pub created_at: DateTime<Utc>,
}

/// A symbol of a source with history, as follow mode sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySource {
    /// Canonical symbol.
    pub symbol: Symbol,
    /// Its history start, if one was given.
    pub history_start: Option<NaiveDate>,
    /// When the source was registered for the symbol.
    pub registered_at: DateTime<Utc>,
}

/// The database handle.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

fn parse<T: FromStr>(what: &'static str, value: String) -> Result<T, StoreError> {
    value
        .parse()
        .map_err(|_| StoreError::Corrupt { what, value })
}

impl Store {
    /// Connects (search path `control`), creates the schema and runs the migrations.
    pub async fn connect(url: &str, acquire_timeout: Duration) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.options([("search_path", "control")]);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await?;
        sqlx::query("CREATE SCHEMA IF NOT EXISTS control")
            .execute(&pool)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Registers `symbol` for `sources`. Returns whether everything was already there.
    pub async fn add(
        &self,
        symbol: &Symbol,
        sources: &BTreeSet<Source>,
        history_start: Option<NaiveDate>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let new_symbol =
            sqlx::query("INSERT INTO symbols (symbol) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(symbol.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        let mut new_sources = 0;
        for source in sources {
            let start = if *source == Source::Dukascopy {
                history_start
            } else {
                None
            };
            new_sources += sqlx::query(
                "INSERT INTO symbol_sources (symbol, source, history_start) VALUES ($1, $2, $3) \
                 ON CONFLICT (symbol, source) DO UPDATE SET history_start = \
                   coalesce(LEAST(symbol_sources.history_start, excluded.history_start), \
                            symbol_sources.history_start, excluded.history_start) \
                 WHERE symbol_sources.history_start IS DISTINCT FROM \
                   coalesce(LEAST(symbol_sources.history_start, excluded.history_start), \
                            symbol_sources.history_start, excluded.history_start)",
            )
            .bind(symbol.as_str())
            .bind(source.as_str())
            .bind(start)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(!new_symbol && new_sources == 0)
    }

    /// Removes `sources` of `symbol` (all when empty); the symbol goes when its last source
    /// does. Returns whether anything was removed.
    pub async fn remove(
        &self,
        symbol: &Symbol,
        sources: &BTreeSet<Source>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let names: Vec<&str> = sources.iter().map(|s| s.as_str()).collect();
        let removed = if names.is_empty() {
            sqlx::query("DELETE FROM symbols WHERE symbol = $1")
                .bind(symbol.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
        } else {
            let n =
                sqlx::query("DELETE FROM symbol_sources WHERE symbol = $1 AND source = ANY($2)")
                    .bind(symbol.as_str())
                    .bind(&names)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            sqlx::query(
                "DELETE FROM symbols s WHERE symbol = $1 \
                 AND NOT EXISTS (SELECT 1 FROM symbol_sources x WHERE x.symbol = s.symbol)",
            )
            .bind(symbol.as_str())
            .execute(&mut *tx)
            .await?;
            n
        };
        tx.commit().await?;
        Ok(removed > 0)
    }

    /// One symbol.
    pub async fn get(&self, symbol: &Symbol) -> Result<Option<SymbolRow>, StoreError> {
        Ok(self
            .list(None, Some(symbol), "", 1)
            .await?
            .into_iter()
            .next())
    }

    /// Symbols in name order after `after` (exclusive: the paging token), at most `limit`,
    /// only those with `source` when given.
    pub async fn page(
        &self,
        source: Option<Source>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<SymbolRow>, StoreError> {
        self.list(source, None, after, limit).await
    }

    async fn list(
        &self,
        source: Option<Source>,
        only: Option<&Symbol>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<SymbolRow>, StoreError> {
        let rows: Vec<ListRow> = sqlx::query_as(
            "WITH page AS ( \
               SELECT s.symbol, s.created_at FROM symbols s \
               WHERE ($1::text IS NULL OR s.symbol = $1) AND s.symbol > $3 \
                 AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM symbol_sources y \
                                                 WHERE y.symbol = s.symbol AND y.source = $2)) \
               ORDER BY s.symbol LIMIT $4) \
             SELECT p.symbol, p.created_at, x.source, x.history_start FROM page p \
             LEFT JOIN symbol_sources x ON x.symbol = p.symbol \
             ORDER BY p.symbol, x.source",
        )
        .bind(only.map(Symbol::as_str))
        .bind(source.map(|s| s.as_str()))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out: BTreeMap<String, SymbolRow> = BTreeMap::new();
        for (symbol, created_at, source, history_start) in rows {
            if !out.contains_key(&symbol) {
                let parsed = Symbol::parse(&symbol).map_err(|_| StoreError::Corrupt {
                    what: "symbol",
                    value: symbol.clone(),
                })?;
                out.insert(
                    symbol.clone(),
                    SymbolRow {
                        symbol: parsed,
                        sources: Vec::new(),
                        created_at,
                    },
                );
            }
            if let (Some(row), Some(source)) = (out.get_mut(&symbol), source) {
                row.sources.push(SourceRow {
                    source: parse("source", source)?,
                    history_start,
                });
            }
        }
        Ok(out.into_values().collect())
    }

    /// Every symbol registered for `source`.
    pub async fn symbols_of(&self, source: Source) -> Result<BTreeSet<Symbol>, StoreError> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT symbol FROM symbol_sources WHERE source = $1")
                .bind(source.as_str())
                .fetch_all(&self.pool)
                .await?;
        names
            .into_iter()
            .map(|n| {
                Symbol::parse(&n).map_err(|_| StoreError::Corrupt {
                    what: "symbol",
                    value: n,
                })
            })
            .collect()
    }

    /// Every symbol registered for `source`, with its history start and when the source was
    /// registered: what follow mode keeps caught up.
    pub async fn history_sources(&self, source: Source) -> Result<Vec<HistorySource>, StoreError> {
        let rows: Vec<(String, Option<NaiveDate>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT symbol, history_start, created_at FROM symbol_sources \
             WHERE source = $1 ORDER BY symbol",
        )
        .bind(source.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(symbol, history_start, registered_at)| {
                Ok(HistorySource {
                    symbol: Symbol::parse(&symbol).map_err(|_| StoreError::Corrupt {
                        what: "symbol",
                        value: symbol.clone(),
                    })?,
                    history_start,
                    registered_at,
                })
            })
            .collect()
    }

    /// Every (symbol, source) pair: what the reconcile loop makes sure has its topics.
    pub async fn all_pairs(&self) -> Result<Vec<(Symbol, Source)>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT symbol, source FROM symbol_sources ORDER BY symbol, source")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(symbol, source)| {
                Ok((
                    Symbol::parse(&symbol).map_err(|_| StoreError::Corrupt {
                        what: "symbol",
                        value: symbol.clone(),
                    })?,
                    parse("source", source)?,
                ))
            })
            .collect()
    }
}

/// A stored backfill job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRow {
    /// Job id.
    pub id: uuid::Uuid,
    /// Canonical symbol.
    pub symbol: String,
    /// Source.
    pub source: String,
    /// First hour.
    pub from_time: DateTime<Utc>,
    /// End (exclusive).
    pub to_time: DateTime<Utc>,
    /// `queued`, `running`, `done`, `cancelled`, `failed`.
    pub state: String,
    /// Hours in the range.
    pub hours_total: i32,
    /// When it was started.
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// The pool (for reading the sink's tables).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Stores a new job.
    pub async fn insert_job(&self, job: &JobRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO backfill_jobs (id, symbol, source, from_time, to_time, state, hours_total) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(job.id)
        .bind(&job.symbol)
        .bind(&job.source)
        .bind(job.from_time)
        .bind(job.to_time)
        .bind(&job.state)
        .bind(job.hours_total)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One job.
    pub async fn job(&self, id: uuid::Uuid) -> Result<Option<JobRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, symbol, source, from_time, to_time, state, hours_total, created_at \
             FROM backfill_jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Jobs, newest first, of one symbol or all.
    pub async fn jobs(&self, symbol: Option<&str>) -> Result<Vec<JobRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, symbol, source, from_time, to_time, state, hours_total, created_at \
             FROM backfill_jobs WHERE ($1::text IS NULL OR symbol = $1) \
             ORDER BY created_at DESC LIMIT 1000",
        )
        .bind(symbol)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sets a job's state.
    pub async fn set_job_state(&self, id: uuid::Uuid, state: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE backfill_jobs SET state = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(state)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
