//! The service: the job-queue worker, the admin server (`/healthz`, `/readyz`, `/metrics` on
//! 9103) and the shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tickflow_pulsar::PulsarClient;
use tickflow_runtime::admin::{AdminError, AdminServer, Health};
use tickflow_runtime::supervisor::{Supervisor, SupervisorError};
use tokio_util::sync::CancellationToken;

use crate::cache::HourCache;
use crate::config::{Config, DukascopyConfig, TransportKind};
use crate::hour::Downloader;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::transport::{Bi5Feed, JsonApi, Transport};
use crate::worker::Worker;

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// Pulsar is unreachable.
    #[error(transparent)]
    Pulsar(#[from] tickflow_pulsar::PulsarError),
    /// The admin server could not bind.
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// A built service, ready to [`run`](Backfill::run).
#[derive(Debug)]
pub struct Backfill {
    worker: Worker,
    admin: AdminServer,
    health: Health,
    drain: Duration,
}

/// What a caller can see of a running service.
#[derive(Debug, Clone)]
pub struct BackfillHandle {
    admin_addr: SocketAddr,
    limiter: Arc<Limiter>,
}

impl BackfillHandle {
    /// The admin server's address (useful with port 0).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The adaptive concurrency limit now.
    pub fn concurrency_limit(&self) -> usize {
        self.limiter.limit()
    }
}

/// The transport `cfg` names.
pub fn transport(cfg: &DukascopyConfig) -> Arc<dyn Transport> {
    match cfg.transport {
        TransportKind::Json => Arc::new(JsonApi::new(cfg.base_url(), cfg.max_json_ticks)),
        TransportKind::Bi5 => Arc::new(Bi5Feed::new(cfg.base_url(), cfg.max_decoded_bytes)),
    }
}

impl Backfill {
    /// Validates the config, connects to Pulsar and binds the admin server.
    pub async fn build(mut cfg: Config) -> Result<(Self, BackfillHandle), StartError> {
        let d = &cfg.dukascopy;
        let base = d.base_url();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(StartError::Config(format!(
                "dukascopy.url must be an http:// or https:// URL, not {base:?}"
            )));
        }
        if d.max_concurrency == 0 || d.attempts == 0 || cfg.worker.tasks_in_flight == 0 {
            return Err(StartError::Config(
                "dukascopy.max_concurrency, dukascopy.attempts and worker.tasks_in_flight must be at least 1".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(DukascopyConfig::ms(d.connect_timeout_ms))
            .pool_max_idle_per_host(d.max_concurrency)
            .user_agent(concat!(
                "tickflow-dukascopy-backfill/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| StartError::Config(format!("cannot build the HTTP client: {e}")))?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let limiter = Limiter::new(
            d.initial_concurrency,
            d.min_concurrency,
            d.max_concurrency,
            metrics.clone(),
        );
        let cache = d.cache_dir.as_deref().map(|dir: &Path| {
            HourCache::new(dir, d.transport, Duration::from_secs(d.cache_min_age_secs))
        });
        let downloader = Downloader {
            client,
            transport: transport(d),
            limiter: limiter.clone(),
            cache,
            cfg: Arc::new(d.clone()),
            metrics: metrics.clone(),
        };
        // The job consumer's prefetch: no more tasks than it works on, so idle replicas get
        // the rest of the queue.
        cfg.pulsar.receiver_queue = u32::try_from(cfg.worker.tasks_in_flight).unwrap_or(u32::MAX);
        let health = Health::new();
        let pulsar = PulsarClient::connect(&cfg.pulsar, "dukascopy-backfill").await?;
        tickflow_ingest::control::ensure_layout(&cfg.pulsar.admin_url).await;
        let admin =
            AdminServer::bind(cfg.runtime.admin.listen, Arc::new(registry), health.clone()).await?;
        let handle = BackfillHandle {
            admin_addr: admin.local_addr(),
            limiter,
        };
        tracing::info!(
            transport = cfg.dukascopy.transport.as_str(),
            host = cfg.dukascopy.base_url(),
            max_concurrency = cfg.dukascopy.max_concurrency,
            cache = cfg.dukascopy.cache_dir.is_some(),
            "dukascopy-backfill configured"
        );
        let worker = Worker::new(pulsar, downloader, cfg.worker.clone(), metrics);
        Ok((
            Self {
                worker,
                admin,
                health,
                drain: cfg.runtime.shutdown.drain_timeout(),
            },
            handle,
        ))
    }

    /// Runs until `shutdown` is cancelled or a task fails.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SupervisorError> {
        let ready = self.health.register("job queue");
        let mut supervisor = Supervisor::new(shutdown.clone()).with_drain_timeout(self.drain);
        supervisor.spawn("admin server", self.admin.serve(shutdown.clone()));
        supervisor.spawn("backfill worker", self.worker.run(ready, shutdown.clone()));
        supervisor.wait_until(shutdown.cancelled_owned()).await
    }
}
