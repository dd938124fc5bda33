//! The config sections every ingester has.

use serde::{Deserialize, Serialize};

/// Where the control plane is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// `http://control-plane:50051` (`CONTROL_PLANE_URL`). Unset: symbols from config.
    pub url: Option<String>,
    /// The bearer token (`TICKFLOW_API_TOKEN`), a secret.
    pub token: Option<tickflow_runtime::config::SecretString>,
    /// PEM certificate authority to trust for an `https://` URL (default: the web PKI).
    pub ca_cert: Option<std::path::PathBuf>,
}

impl ControlConfig {
    /// Checks the section and reads the CA certificate: `Ok(None)` when no control plane is
    /// configured.
    pub fn load(&self) -> Result<Option<LoadedControl>, String> {
        let Some(url) = self.url.clone() else {
            return Ok(None);
        };
        let Some(token) = self.token.clone() else {
            return Err("control.url is set but no token: give TICKFLOW_API_TOKEN".to_owned());
        };
        let ca_cert = match &self.ca_cert {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("control.ca_cert {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(Some(LoadedControl {
            url,
            token,
            ca_cert,
        }))
    }
}

/// A checked [`ControlConfig`] with its certificate read.
#[derive(Debug, Clone)]
pub struct LoadedControl {
    /// The gRPC URL.
    pub url: String,
    /// The bearer token.
    pub token: tickflow_runtime::config::SecretString,
    /// The PEM CA certificate, if one was configured.
    pub ca_cert: Option<Vec<u8>>,
}

/// What the queue does when it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// The venue reader waits for room: the venue's data backs up in the TCP window, memory
    /// stays bounded, and nothing is dropped. If the venue then disconnects us as a slow
    /// consumer, the outage is recorded as a gap like any other. The only policy: dropping
    /// live ticks silently is what tickflow exists to prevent.
    Block,
}

/// The bounded queue between the venue reader and the Pulsar publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Capacity in ticks. Default 10,000.
    pub capacity: usize,
    /// When full. Default (and only) `block`.
    pub when_full: WhenFull,
    /// Ticks sent to Pulsar and not yet acknowledged; at the limit the publisher stops taking
    /// from the queue. Default 20,000.
    pub max_in_flight: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            when_full: WhenFull::Block,
            max_in_flight: 20_000,
        }
    }
}
