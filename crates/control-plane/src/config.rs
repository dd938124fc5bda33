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
    /// Follow mode: how often it queues the hours of history that became available or are still
    /// missing, in seconds. Default 60; 0 turns follow mode off.
    pub follow_interval_secs: u64,
    /// Follow mode: how long after an hour ends it is available upstream, in seconds. Default
    /// 5,400 (90 min: Dukascopy publishes an hour's file 1 to 2 h after it ends).
    pub follow_delay_secs: u64,
    /// Follow mode: how many hours back from the newest available one it looks. Default 72.
    pub follow_lookback_hours: u32,
    /// Follow mode: how long before an hour it queued is queued again while it is still not
    /// complete, in seconds. Default 1,800.
    pub follow_retry_secs: u64,
}

impl Config {
    /// The follow-mode settings.
    pub fn follow(&self) -> crate::follow::FollowConfig {
        crate::follow::FollowConfig {
            interval: std::time::Duration::from_secs(self.follow_interval_secs),
            delay: std::time::Duration::from_secs(self.follow_delay_secs),
            lookback_hours: self.follow_lookback_hours,
            retry: std::time::Duration::from_secs(self.follow_retry_secs),
        }
    }
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
            follow_interval_secs: 60,
            follow_delay_secs: 5_400,
            follow_lookback_hours: 72,
            follow_retry_secs: 1_800,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_settings_default_and_come_from_the_environment() {
        let c = Config::default();
        assert_eq!(c.follow(), crate::follow::FollowConfig::default());
        let c: Config = tickflow_runtime::config::Loader::new("control-plane")
            .env_prefix("CONTROL_PLANE")
            .env_vars([
                ("CONTROL_PLANE_FOLLOW_INTERVAL_SECS", "0"),
                ("CONTROL_PLANE_FOLLOW_DELAY_SECS", "7200"),
                ("CONTROL_PLANE_FOLLOW_LOOKBACK_HOURS", "24"),
                ("CONTROL_PLANE_FOLLOW_RETRY_SECS", "600"),
            ])
            .load()
            .unwrap();
        let f = c.follow();
        assert!(f.interval.is_zero(), "0 turns follow mode off");
        assert_eq!(f.delay.as_secs(), 7_200);
        assert_eq!(f.lookback_hours, 24);
        assert_eq!(f.retry.as_secs(), 600);
    }
}
