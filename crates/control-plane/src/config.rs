//! The control plane's configuration: defaults here, then an optional TOML file, then
//! `CONTROL_PLANE_*` variables, then the flags and well-known variables (`DATABASE_URL`,
//! `PULSAR_ADMIN_URL`, `TICKFLOW_API_TOKEN`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tickflow_pulsar::PulsarConfig;
use tickflow_runtime::RuntimeConfig;
use tickflow_runtime::config::SecretString;

/// Everything the service reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Telemetry, admin HTTP server (default `0.0.0.0:9100`), shutdown.
    pub runtime: RuntimeConfig,
    /// Pulsar (the admin URL is what the control plane uses).
    pub pulsar: PulsarConfig,
    /// The gRPC address. Default `127.0.0.1:50051`.
    pub listen: SocketAddr,
    /// PostgreSQL URL (`DATABASE_URL`). Required; a secret.
    pub database_url: Option<SecretString>,
    /// The bearer token every call but health and reflection needs (`TICKFLOW_API_TOKEN`).
    /// Required; a secret.
    pub api_token: Option<SecretString>,
    /// How often the reconcile loop re-creates what is missing. Default 30 s.
    pub reconcile_interval_ms: u64,
    /// Serve gRPC over TLS with this PEM certificate (chain) and key. Both or neither.
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let mut runtime = RuntimeConfig::default();
        runtime.admin.listen = SocketAddr::from(([0, 0, 0, 0], 9100));
        Self {
            runtime,
            pulsar: PulsarConfig::default(),
            listen: crate::server::default_listen(),
            database_url: None,
            api_token: None,
            reconcile_interval_ms: 30_000,
            tls_cert: None,
            tls_key: None,
        }
    }
}
