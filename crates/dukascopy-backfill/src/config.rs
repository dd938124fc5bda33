//! The service's configuration: defaults here, then an optional TOML file, then
//! `DUKASCOPY_BACKFILL_*` variables (`DUKASCOPY_BACKFILL_DUKASCOPY__MAX_CONCURRENCY=4`), then the
//! command line and the well-known variables (`DUKASCOPY_URL`, `DUKASCOPY_TRANSPORT`,
//! `DUKASCOPY_CACHE_DIR`, `PULSAR_URL`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tickflow_pulsar::PulsarConfig;
use tickflow_runtime::RuntimeConfig;
use tickflow_runtime::backoff::BackoffConfig;

/// Everything the service reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Telemetry, admin server (default `0.0.0.0:9103`), shutdown.
    pub runtime: RuntimeConfig,
    /// The Pulsar cluster.
    pub pulsar: PulsarConfig,
    /// Downloading from Dukascopy.
    pub dukascopy: DukascopyConfig,
    /// Taking tasks from the job queue.
    pub worker: WorkerConfig,
}

impl Default for Config {
    fn default() -> Self {
        let mut runtime = RuntimeConfig::default();
        runtime.admin.listen = SocketAddr::from(([0, 0, 0, 0], 9103));
        Self {
            runtime,
            pulsar: PulsarConfig::default(),
            dukascopy: DukascopyConfig::default(),
            worker: WorkerConfig::default(),
        }
    }
}

/// Which of Dukascopy's two interfaces to download from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// The JSON API, `https://jetta.dukascopy.com/v1/ticks/{CODE}/{YYYY}/{M}/{D}/{H}` (one-based
    /// month). The default: what current clients use since the `.bi5` host stopped answering
    /// in July 2026.
    Json,
    /// The legacy datafeed, `https://datafeed.dukascopy.com/datafeed/{SYM}/{YYYY}/{MM0}/{DD}/{HH}h_ticks.bi5`
    /// (zero-based month).
    Bi5,
}

impl TransportKind {
    /// The public host of this interface.
    pub fn default_url(self) -> &'static str {
        match self {
            TransportKind::Json => "https://jetta.dukascopy.com",
            TransportKind::Bi5 => "https://datafeed.dukascopy.com",
        }
    }

    /// `json` or `bi5`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Json => "json",
            TransportKind::Bi5 => "bi5",
        }
    }
}

impl std::str::FromStr for TransportKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "json" => Ok(TransportKind::Json),
            "bi5" => Ok(TransportKind::Bi5),
            other => Err(format!(
                "DUKASCOPY_TRANSPORT must be json or bi5, not {other:?}"
            )),
        }
    }
}

/// The download side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DukascopyConfig {
    /// Which interface. Default JSON.
    pub transport: TransportKind,
    /// The host, overriding the interface's public one (tests point it at a fake server). For
    /// the JSON API the paths are `{url}/v1/ticks/...`; for `.bi5`, `{url}/datafeed/...`.
    pub url: Option<String>,
    /// Connecting to the host. Default 10 s.
    pub connect_timeout_ms: u64,
    /// A whole request, headers and body. Default 30 s.
    pub request_timeout_ms: u64,
    /// Requests in flight, at most. Default 8.
    pub max_concurrency: usize,
    /// Requests in flight the limit never goes under. Default 1.
    pub min_concurrency: usize,
    /// The limit to start from. Default 4.
    pub initial_concurrency: usize,
    /// Attempts per hour before it is recorded missing. Default 6.
    pub attempts: u32,
    /// An empty answer for an hour the market was open is retried this many times before the
    /// hour is recorded missing. Default 2.
    pub empty_retries: u32,
    /// The pause between attempts of one hour, and after a throttling answer without
    /// `Retry-After`. Default 500 ms doubling to 30 s, with jitter.
    pub retry: BackoffConfig,
    /// Longest `Retry-After` honoured. Default 300 s.
    pub max_retry_after_secs: u64,
    /// Largest response body read. Default 64 MiB.
    pub max_body_bytes: usize,
    /// Largest decompressed `.bi5` hour. Default 32 MiB (1.6 million ticks).
    pub max_decoded_bytes: usize,
    /// Most ticks in one JSON hour. Default 1.6 million.
    pub max_json_ticks: usize,
    /// A directory to keep finished hours in, so a rerun does not download them again. None:
    /// no cache.
    pub cache_dir: Option<PathBuf>,
    /// Only hours that ended at least this long ago are cached (never the hour in progress,
    /// nor one Dukascopy may still publish). Default 86400 s.
    pub cache_min_age_secs: u64,
}

impl Default for DukascopyConfig {
    fn default() -> Self {
        Self {
            transport: TransportKind::Json,
            url: None,
            connect_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_concurrency: 8,
            min_concurrency: 1,
            initial_concurrency: 4,
            attempts: 6,
            empty_retries: 2,
            retry: BackoffConfig {
                initial_ms: 500,
                max_ms: 30_000,
                multiplier: 2,
                reset_after_ms: 60_000,
            },
            max_retry_after_secs: 300,
            max_body_bytes: 64 << 20,
            max_decoded_bytes: crate::bi5::DEFAULT_MAX_OUTPUT,
            max_json_ticks: 1_600_000,
            cache_dir: None,
            cache_min_age_secs: 86_400,
        }
    }
}

impl DukascopyConfig {
    /// The host in use.
    pub fn base_url(&self) -> &str {
        self.url
            .as_deref()
            .unwrap_or_else(|| self.transport.default_url())
            .trim_end_matches('/')
    }

    /// Milliseconds as a duration.
    pub fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }
}

/// The job-queue side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// The job queue, a topic of the `control` namespace. Default `backfill-jobs`
    /// (`persistent://market-data/control/backfill-jobs`, where the control plane puts them).
    pub jobs_topic: String,
    /// The Shared subscription on `control/backfill-jobs` every replica joins. Default
    /// `dukascopy-backfill`.
    pub subscription: String,
    /// Tasks (days) worked on at once; also the consumer's prefetch, so idle replicas get the
    /// rest. Default 2.
    pub tasks_in_flight: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            jobs_topic: "backfill-jobs".to_owned(),
            subscription: "dukascopy-backfill".to_owned(),
            tasks_in_flight: 2,
        }
    }
}
