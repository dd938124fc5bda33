//! The sink's configuration: defaults here, then an optional TOML file, then
//! `TIMESCALE_SINK_*` variables (`TIMESCALE_SINK_BATCH__MAX_ROWS=20000`), then the flags and
//! well-known variables `DATABASE_URL` and `PULSAR_URL`.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tickflow_pulsar::PulsarConfig;
use tickflow_runtime::RuntimeConfig;
use tickflow_runtime::backoff::BackoffConfig;
use tickflow_runtime::config::SecretString;

/// Everything the service reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Telemetry, admin server (default `0.0.0.0:9104`), shutdown.
    pub runtime: RuntimeConfig,
    /// The Pulsar cluster.
    pub pulsar: PulsarConfig,
    /// The database.
    pub database: DatabaseConfig,
    /// The subscription.
    pub subscription: SubscriptionConfig,
    /// Batching.
    pub batch: BatchConfig,
    /// Pacing of retries while the database is away.
    pub retry: BackoffConfig,
}

impl Default for Config {
    fn default() -> Self {
        let mut runtime = RuntimeConfig::default();
        runtime.admin.listen = SocketAddr::from(([0, 0, 0, 0], 9104));
        Self {
            runtime,
            pulsar: PulsarConfig::default(),
            database: DatabaseConfig::default(),
            subscription: SubscriptionConfig::default(),
            batch: BatchConfig::default(),
            retry: BackoffConfig {
                initial_ms: 200,
                max_ms: 10_000,
                multiplier: 2,
                reset_after_ms: 0,
            },
        }
    }
}

/// The database connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/db` (`DATABASE_URL`). A secret: it may hold a
    /// password. Required.
    pub url: Option<SecretString>,
    /// Connections in the pool. Default 4.
    pub max_connections: u32,
    /// How long to wait for the database at start. Default 30 s.
    pub connect_timeout_ms: u64,
    /// How long a write waits for a connection before counting the database as away (and
    /// retrying with backoff). Default 5 s.
    pub acquire_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 4,
            connect_timeout_ms: 30_000,
            acquire_timeout_ms: 5_000,
        }
    }
}

/// Which topics, on which subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// Key_Shared subscription shared by all replicas. Default `timescale-sink`.
    pub name: String,
    /// Topic pattern within the `realtime` and `historical` namespaces.
    pub pattern: String,
    /// How often new topics are looked for. Default 10 s.
    pub refresh_ms: u64,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        Self {
            name: "timescale-sink".to_owned(),
            pattern: r"persistent://market-data/(realtime|historical)/.*".to_owned(),
            refresh_ms: 10_000,
        }
    }
}

/// When a batch is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// At most this many messages. Default 5,000.
    pub max_rows: usize,
    /// At most this many payload bytes. Default 4 MiB.
    pub max_bytes: usize,
    /// At most this long after its first message. Default 100 ms.
    pub linger_ms: u64,
    /// Batches written at once, each by its own connection; every symbol always goes to the
    /// same writer (so writers never contend for candle rows). Default 2.
    pub writers: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_rows: 5_000,
            max_bytes: 4 << 20,
            linger_ms: 100,
            writers: 2,
        }
    }
}

impl BatchConfig {
    pub(crate) fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }
}
