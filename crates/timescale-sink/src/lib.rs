//! `timescale-sink`: Pulsar → TimescaleDB (or plain PostgreSQL), every tick stored exactly once.
//!
//! One Key_Shared subscription over the `realtime` and `historical` namespaces (a topic pattern,
//! so new symbols are picked up without a restart; replicas share the load with per-symbol
//! order). Ticks are written in batches inside one transaction each, duplicates skipped by the
//! tables' unique keys, and a Pulsar message is acknowledged only after the transaction holding
//! it committed.
//!
//! # Layout
//!
//! - `migrations/`: the schema (sqlx migrations, run at start under an advisory lock).
//! - [`schema`]: migrations, the engine (TimescaleDB or plain), candle objects, partitions.
//! - [`writer`]: one batch → one transaction (`INSERT … SELECT FROM UNNEST … ON CONFLICT DO
//!   NOTHING`, candles from the rows actually inserted); errors sorted into retry and rejected.
//! - [`pipeline`]: pull, route by symbol to parallel writers, batch, write, dead-letter,
//!   acknowledge (whole batch entries only).
//! - [`config`], [`metrics`]; [`Sink::build`] / [`Sink::run`].

pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod schema;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use sqlx::postgres::PgPoolOptions;
use tickflow_pulsar::{
    ConsumerSpec, DeadLetterProducer, InitialPosition, Namespace, PulsarClient, PulsarError,
    SubscriptionType, TopicSelection,
};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::admin::{AdminError, AdminServer, Health};
use tickflow_runtime::log_limit::LogLimiter;
use tickflow_runtime::supervisor::{Supervisor, SupervisorError};

pub use config::Config;
pub use metrics::Metrics;
pub use schema::Engine;

/// Why the sink could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The database failed in a way that is not about one batch.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The migrations failed.
    #[error("schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Pulsar failed.
    #[error(transparent)]
    Pulsar(#[from] PulsarError),
    /// The admin server could not bind.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// A required setting is missing.
    #[error("{0}")]
    Config(String),
    /// Stopped with work left undone (it will be redelivered).
    #[error("{0}")]
    Stopped(String),
}

/// A built, not yet running sink.
#[derive(Debug)]
pub struct Sink {
    cfg: Config,
    admin: AdminServer,
    health: Health,
    pool: sqlx::PgPool,
    engine: Engine,
    pulsar: PulsarClient,
    metrics: Metrics,
}

impl Sink {
    /// Connects to the database (waiting up to `database.connect_timeout_ms` for it), runs the
    /// migrations, connects to Pulsar and binds the admin server.
    pub async fn build(cfg: Config) -> Result<Self, SinkError> {
        let url = cfg.database.url.as_ref().ok_or_else(|| {
            SinkError::Config(
                "database.url is not set: give DATABASE_URL (or TIMESCALE_SINK_DATABASE__URL)"
                    .to_owned(),
            )
        })?;
        let options = PgPoolOptions::new()
            .max_connections(cfg.database.max_connections.max(1))
            .acquire_timeout(Duration::from_millis(
                cfg.database.acquire_timeout_ms.max(100),
            ));
        // At start, wait for the database up to `connect_timeout_ms` (it may be starting too).
        let deadline =
            std::time::Instant::now() + Duration::from_millis(cfg.database.connect_timeout_ms);
        let pool = loop {
            match options.clone().connect(url.expose()).await {
                Ok(pool) => break pool,
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "database not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let engine = schema::prepare(&pool).await?;
        tracing::info!(?engine, "database schema ready");
        let pulsar = PulsarClient::connect(&cfg.pulsar, "timescale-sink").await?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let health = Health::new();
        let admin =
            AdminServer::bind(cfg.runtime.admin.listen, Arc::new(registry), health.clone()).await?;
        Ok(Self {
            cfg,
            admin,
            health,
            pool,
            engine,
            pulsar,
            metrics,
        })
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.admin.local_addr()
    }

    /// The engine the schema runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Runs until `shutdown` is cancelled (the batch in hand is finished and acknowledged
    /// first) or a task fails.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SupervisorError> {
        let ready = self.health.register("pipeline");
        let mut supervisor = Supervisor::new(shutdown.clone())
            .with_drain_timeout(self.cfg.runtime.shutdown.drain_timeout());
        supervisor.spawn("admin server", self.admin.serve(shutdown.clone()));
        let cfg = self.cfg;
        let (pool, engine, pulsar, metrics) = (self.pool, self.engine, self.pulsar, self.metrics);
        let token = shutdown.clone();
        supervisor.spawn("pipeline", async move {
            let consumer = pulsar
                .tick_consumer(ConsumerSpec {
                    topics: TopicSelection::Pattern {
                        namespaces: vec![Namespace::Realtime, Namespace::Historical],
                        pattern: cfg.subscription.pattern.clone(),
                        refresh: Duration::from_millis(cfg.subscription.refresh_ms.max(100)),
                    },
                    subscription: cfg.subscription.name.clone(),
                    sub_type: SubscriptionType::KeyShared,
                    initial_position: InitialPosition::Earliest,
                    consumer_name: None,
                })
                .await?;
            let mut writers = Vec::new();
            for _ in 0..cfg.batch.writers.max(1) {
                writers.push(pipeline::BatchWriter {
                    writer: writer::Writer::new(pool.clone(), engine).await?,
                    dlq: DeadLetterProducer::new(&pulsar).await?,
                    metrics: metrics.clone(),
                    retry: cfg.retry.clone(),
                    ready: ready.clone(),
                    shutdown: token.clone(),
                    log: LogLimiter::new(Duration::from_secs(10)),
                });
            }
            let receiver = pipeline::Receiver {
                consumer,
                metrics,
                batch: cfg.batch.clone(),
                shutdown: token,
                acks: pipeline::AckTracker::default(),
                log: LogLimiter::new(Duration::from_secs(10)),
            };
            pipeline::run(receiver, writers).await
        });
        supervisor.wait_until(shutdown.cancelled_owned()).await
    }
}
