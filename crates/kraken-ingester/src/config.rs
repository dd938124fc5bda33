//! The ingester's configuration: defaults here, then an optional TOML file, then
//! `KRAKEN_INGESTER_*` variables (`KRAKEN_INGESTER_KRAKEN__PING_INTERVAL_MS=5000`), then the
//! command line and the well-known variables it reads (`KRAKEN_WS_URL`, `KRAKEN_SYMBOLS`,
//! `PULSAR_URL`).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tickflow_pulsar::PulsarConfig;
use tickflow_runtime::RuntimeConfig;
use tickflow_runtime::backoff::BackoffConfig;
use tickflow_schema::{Symbol, SymbolError};

pub use tickflow_ingest::{ControlConfig, QueueConfig, WhenFull};

/// Everything the service reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Telemetry, admin server (default `0.0.0.0:9101`), shutdown.
    pub runtime: RuntimeConfig,
    /// The Pulsar cluster.
    pub pulsar: PulsarConfig,
    /// The venue connection.
    pub kraken: KrakenConfig,
    /// Reconnect pacing.
    pub reconnect: BackoffConfig,
    /// The queue between the socket reader and the publisher.
    pub queue: QueueConfig,
    /// The control plane: when `url` is set, the symbol set comes from its assignment stream
    /// instead of `kraken.symbols`.
    pub control: ControlConfig,
}

impl Default for Config {
    fn default() -> Self {
        let mut runtime = RuntimeConfig::default();
        runtime.admin.listen = SocketAddr::from(([0, 0, 0, 0], 9101));
        Self {
            runtime,
            pulsar: PulsarConfig::default(),
            kraken: KrakenConfig::default(),
            reconnect: BackoffConfig::default(),
            queue: QueueConfig::default(),
            control: ControlConfig::default(),
        }
    }
}

/// How `ticker` updates are triggered (`PROTOCOLS.md` §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TickerTrigger {
    /// On every change of the best bid or offer: what a quote feed is. The default.
    Bbo,
    /// On every trade (Kraken's own default).
    Trades,
}

impl TickerTrigger {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            TickerTrigger::Bbo => "bbo",
            TickerTrigger::Trades => "trades",
        }
    }
}

/// The Kraken connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KrakenConfig {
    /// WebSocket URL. Default `wss://ws.kraken.com/v2`.
    pub ws_url: String,
    /// Canonical symbols to subscribe at start (`BTC/USD`). The control plane's assignment
    /// stream replaces this set when it is configured.
    pub symbols: Vec<String>,
    /// `ticker` trigger. Default `bbo`.
    pub ticker_trigger: TickerTrigger,
    /// Ask for the last 50 trades when (re)subscribing `trade`, to fill what a reconnect missed;
    /// duplicates are dropped by trade id. Default true.
    pub trade_snapshot: bool,
    /// Record a gap when trade ids jump on a live connection (Kraken's v2 trade ids count up by
    /// one per pair). Default true.
    pub trade_id_gaps: bool,
    /// Connect (TCP + TLS + upgrade) deadline. Default 10 s.
    pub connect_timeout_ms: u64,
    /// Application-level ping interval (Kraken closes silent connections after about a minute).
    /// Default 15 s.
    pub ping_interval_ms: u64,
    /// A ping without a pong for this long means the connection is dead. Default 10 s.
    pub pong_timeout_ms: u64,
    /// No frame at all (heartbeats included) for this long means the connection is dead.
    /// Heartbeats come about once a second while subscribed. Default 10 s.
    pub stale_after_ms: u64,
    /// No trade or ticker data from any subscribed symbol for this long means the feed is stuck
    /// even if heartbeats still arrive. Default 120 s; raise it for sets of illiquid pairs.
    pub data_stale_after_ms: u64,
    /// A subscribe without its ack for this long is sent again; a second miss reconnects.
    /// Default 10 s.
    pub subscribe_ack_timeout_ms: u64,
    /// Symbols per subscribe request. Default 50.
    pub subscribe_batch: usize,
    /// Largest accepted WebSocket message; a larger one is a protocol error and reconnects.
    /// Default 1 MiB.
    pub max_frame_bytes: usize,
}

impl Default for KrakenConfig {
    fn default() -> Self {
        Self {
            ws_url: "wss://ws.kraken.com/v2".to_owned(),
            symbols: Vec::new(),
            ticker_trigger: TickerTrigger::Bbo,
            trade_snapshot: true,
            trade_id_gaps: true,
            connect_timeout_ms: 10_000,
            ping_interval_ms: 15_000,
            pong_timeout_ms: 10_000,
            stale_after_ms: 10_000,
            data_stale_after_ms: 120_000,
            subscribe_ack_timeout_ms: 10_000,
            subscribe_batch: 50,
            max_frame_bytes: 1 << 20,
        }
    }
}

impl KrakenConfig {
    /// The configured symbols, validated and canonical.
    pub fn symbols(&self) -> Result<Vec<Symbol>, SymbolError> {
        self.symbols
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Symbol::parse(s.trim()))
            .collect()
    }

    pub(crate) fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}
