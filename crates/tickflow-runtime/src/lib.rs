//! tickflow's runtime kit: what every tickflow service binary needs around its own logic, so
//! that each `main.rs` stays a dozen lines and every service behaves the same way in
//! production.
//!
//! - [`config`]: typed, layered configuration (defaults, then an optional TOML file, then
//!   `TICKFLOW_*` environment variables) with unknown keys rejected and [`config::Secret`]s
//!   that never print.
//! - [`telemetry`]: one [`telemetry::init`] call for JSON (or human) logs on stdout with a
//!   `RUST_LOG`-style filter, plus OTLP/gRPC trace export when a collector endpoint is set.
//! - [`admin`]: the admin HTTP server with `/healthz`, `/readyz` (fed by named readiness
//!   checks, [`admin::Health`]) and `/metrics` (an explicit `prometheus_client` registry, no
//!   globals). It binds before it serves, so tests use port 0 and read the real address.
//! - [`supervisor`]: one root cancellation token and named tasks; the first failure stops
//!   everything, SIGINT/SIGTERM drain within a deadline, and `main` gets an error naming the
//!   task that failed.
//!
//! [`RuntimeConfig`] bundles the settings of all four, to embed as one section of a service's
//! config. Each module has its own error enum, whose messages say what to fix.
//!
//! # A thin `main`
//!
//! ```no_run
//! use std::path::PathBuf;
//! use std::sync::Arc;
//!
//! use prometheus_client::metrics::counter::Counter;
//! use prometheus_client::registry::Registry;
//! use serde::{Deserialize, Serialize};
//! use tickflow_runtime::admin::{AdminServer, Health};
//! use tickflow_runtime::supervisor::Supervisor;
//! use tickflow_runtime::{CancellationToken, RuntimeConfig, config, telemetry};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     runtime: RuntimeConfig,
//!     pulsar_url: String,
//!     api_key: Option<config::SecretString>,
//! }
//!
//! impl Default for Config {
//!     fn default() -> Self {
//!         Self {
//!             runtime: RuntimeConfig::default(),
//!             pulsar_url: "pulsar://localhost:6650".to_owned(),
//!             api_key: None,
//!         }
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     // Config: defaults < optional file (first argument) < TICKFLOW_* variables.
//!     let file = std::env::args_os().nth(1).map(PathBuf::from);
//!     let mut cfg: Config = config::load("tickflow-example", file.as_deref(), "TICKFLOW")?;
//!     cfg.runtime.telemetry.apply_standard_env(|name| std::env::var(name).ok());
//!     let telemetry = telemetry::init("tickflow-example", &cfg.runtime.telemetry)?;
//!
//!     // Metrics and readiness, registered before the admin server binds.
//!     let mut registry = Registry::default();
//!     let received = Counter::<u64>::default();
//!     registry.register("ticks_received", "Ticks received from the venue", received.clone());
//!     let health = Health::new();
//!     let feed_ready = health.register("venue feed");
//!     let admin = AdminServer::bind(cfg.runtime.admin.listen, Arc::new(registry), health).await?;
//!
//!     // Supervised tasks under one cancellation tree.
//!     let mut supervisor = Supervisor::new(CancellationToken::new())
//!         .with_drain_timeout(cfg.runtime.shutdown.drain_timeout());
//!     supervisor.spawn("admin server", admin.serve(supervisor.token()));
//!     let shutdown = supervisor.token();
//!     supervisor.spawn("venue feed", async move {
//!         feed_ready.set_ready();
//!         // The real loop receives ticks until `shutdown` is cancelled.
//!         received.inc();
//!         shutdown.cancelled().await;
//!         Ok::<(), anyhow::Error>(())
//!     });
//!
//!     // Until SIGINT/SIGTERM or the first failure; an error names the failed task and makes
//!     // the process exit non-zero.
//!     let result = supervisor.wait().await;
//!     telemetry.shutdown().await?;
//!     Ok(result?)
//! }
//! ```

#![warn(missing_docs)]

pub mod admin;
pub mod backoff;
pub mod config;
pub mod labels;
pub mod log_limit;
pub mod supervisor;
pub mod telemetry;
mod text;

use serde::{Deserialize, Serialize};

pub use axum;
pub use prometheus_client;
pub use tokio_util::sync::CancellationToken;

/// The runtime settings every service shares, to embed as one section (`runtime`) of its
/// config: `TICKFLOW_RUNTIME__ADMIN__LISTEN=0.0.0.0:9464`, and so on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Logs and traces.
    pub telemetry: telemetry::TelemetryConfig,
    /// The admin HTTP server.
    pub admin: admin::AdminConfig,
    /// Graceful shutdown.
    pub shutdown: supervisor::ShutdownConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_config_loads_from_env_with_nested_keys() {
        #[derive(Debug, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ServiceConfig {
            runtime: RuntimeConfig,
        }
        let cfg: ServiceConfig = config::Loader::new("tickflow-test")
            .env_vars([
                ("TICKFLOW_RUNTIME__ADMIN__LISTEN", "127.0.0.1:0"),
                ("TICKFLOW_RUNTIME__TELEMETRY__LOG_FORMAT", "pretty"),
                (
                    "TICKFLOW_RUNTIME__TELEMETRY__LOG_FILTER",
                    "info,tickflow=debug",
                ),
                ("TICKFLOW_RUNTIME__SHUTDOWN__DRAIN_TIMEOUT_MS", "2500"),
            ])
            .load()
            .unwrap();
        assert_eq!(cfg.runtime.admin.listen.to_string(), "127.0.0.1:0");
        assert_eq!(
            cfg.runtime.telemetry.log_format,
            telemetry::LogFormat::Pretty
        );
        assert_eq!(cfg.runtime.telemetry.log_filter, "info,tickflow=debug");
        assert_eq!(cfg.runtime.telemetry.otlp_endpoint, None);
        assert_eq!(
            cfg.runtime.shutdown.drain_timeout(),
            std::time::Duration::from_millis(2500)
        );
    }
}
