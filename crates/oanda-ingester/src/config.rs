//! The ingester's configuration: defaults here, then an optional TOML file, then
//! `OANDA_INGESTER_*` variables (`OANDA_INGESTER_OANDA__STALE_AFTER_MS=10000`), then the command
//! line and the well-known variables it reads (`OANDA_STREAM_URL`, `OANDA_API_TOKEN`,
//! `OANDA_ACCOUNT_ID`, `OANDA_INSTRUMENTS`, `PULSAR_URL`, `CONTROL_PLANE_URL`,
//! `TICKFLOW_API_TOKEN`).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tickflow_pulsar::PulsarConfig;
use tickflow_runtime::RuntimeConfig;
use tickflow_runtime::backoff::BackoffConfig;
use tickflow_runtime::config::SecretString;
use tickflow_schema::{Symbol, SymbolError};

pub use tickflow_ingest::{ControlConfig, QueueConfig, WhenFull};

/// Everything the service reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Telemetry, admin server (default `0.0.0.0:9102`), shutdown.
    pub runtime: RuntimeConfig,
    /// The Pulsar cluster.
    pub pulsar: PulsarConfig,
    /// The venue connection.
    pub oanda: OandaConfig,
    /// Reconnect pacing after a lost connection or a refused one (429 without `Retry-After`,
    /// 5xx, network errors). Default 1 s doubling to 60 s, as OANDA asks.
    pub reconnect: BackoffConfig,
    /// The queue between the stream reader and the publisher.
    pub queue: QueueConfig,
    /// The control plane: when `url` is set, the instrument set comes from its assignment
    /// stream instead of `oanda.instruments`.
    pub control: ControlConfig,
}

impl Default for Config {
    fn default() -> Self {
        let mut runtime = RuntimeConfig::default();
        runtime.admin.listen = SocketAddr::from(([0, 0, 0, 0], 9102));
        Self {
            runtime,
            pulsar: PulsarConfig::default(),
            oanda: OandaConfig::default(),
            reconnect: BackoffConfig {
                initial_ms: 1_000,
                max_ms: 60_000,
                multiplier: 2,
                reset_after_ms: 60_000,
            },
            queue: QueueConfig::default(),
            control: ControlConfig::default(),
        }
    }
}

/// Which OANDA environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// fxTrade Practice: `https://stream-fxpractice.oanda.com`. The default.
    Practice,
    /// fxTrade (live money): `https://stream-fxtrade.oanda.com`.
    Live,
}

impl Environment {
    /// The streaming host (not the REST host: streams live on `stream-fx*`).
    pub fn stream_url(self) -> &'static str {
        match self {
            Environment::Practice => "https://stream-fxpractice.oanda.com",
            Environment::Live => "https://stream-fxtrade.oanda.com",
        }
    }
}

/// The OANDA connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OandaConfig {
    /// Practice or live; picks the stream host when `stream_url` is not set.
    pub environment: Environment,
    /// Overrides the stream host (`OANDA_STREAM_URL`; tests point it at a fake venue).
    pub stream_url: Option<String>,
    /// The v20 account (`OANDA_ACCOUNT_ID`, `101-004-8153273-001`). A secret: never logged.
    pub account_id: Option<SecretString>,
    /// The personal access token (`OANDA_API_TOKEN`). A secret: never logged.
    pub token: Option<SecretString>,
    /// Canonical instruments to stream at start (`EUR/USD`). The control plane's assignment
    /// stream replaces this set when it is configured.
    pub instruments: Vec<String>,
    /// Ask for each instrument's current price on connect. Default true.
    pub snapshot: bool,
    /// Nothing at all (heartbeats included; OANDA sends one every 5 s) for this long means the
    /// stream is dead. Default 10 s.
    pub stale_after_ms: u64,
    /// Deadline for the response headers of a stream request. Default 10 s.
    pub connect_timeout_ms: u64,
    /// Longest accepted line; a longer one is counted and skipped up to its newline. Default
    /// 64 KiB (a price line is about 500 bytes).
    pub max_line_bytes: usize,
    /// A change of the instrument set waits this long for further changes, so a burst of
    /// additions costs one reconnect. Default 1 s.
    pub coalesce_ms: u64,
    /// At least this long between two connection attempts (OANDA allows 2 new connections per
    /// second). Default 1 s.
    pub min_connect_interval_ms: u64,
    /// After a 401 or 403 (a configuration error: token or account), wait this long before
    /// trying again. Default 60 s.
    pub auth_retry_ms: u64,
    /// The longest `Retry-After` honoured; a larger value is capped. Default 10 min.
    pub max_retry_after_ms: u64,
    /// While the forex market is closed, reconnect attempts are spaced at least this much (but
    /// never past the reopening). Default 60 s.
    pub closed_retry_ms: u64,
}

impl Default for OandaConfig {
    fn default() -> Self {
        Self {
            environment: Environment::Practice,
            stream_url: None,
            account_id: None,
            token: None,
            instruments: Vec::new(),
            snapshot: true,
            stale_after_ms: 10_000,
            connect_timeout_ms: 10_000,
            max_line_bytes: 64 * 1024,
            coalesce_ms: 1_000,
            min_connect_interval_ms: 1_000,
            auth_retry_ms: 60_000,
            max_retry_after_ms: 600_000,
            closed_retry_ms: 60_000,
        }
    }
}

impl OandaConfig {
    /// The configured instruments, validated and canonical.
    pub fn instruments(&self) -> Result<Vec<Symbol>, SymbolError> {
        self.instruments
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Symbol::parse(s.trim()))
            .collect()
    }

    /// The stream host in use.
    pub fn stream_url(&self) -> &str {
        self.stream_url
            .as_deref()
            .unwrap_or(self.environment.stream_url())
            .trim_end_matches('/')
    }

    pub(crate) fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}
