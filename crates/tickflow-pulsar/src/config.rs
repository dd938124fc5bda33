use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Pulsar client settings, embedded as `[pulsar]` in every service's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PulsarConfig {
    /// Broker service URL.
    pub url: String,
    /// Admin REST base URL (without `/admin/v2`).
    pub admin_url: String,
    /// How long the first connection may take before start-up fails with a clear error.
    pub connect_timeout_ms: u64,
    /// Longest pause between reconnection attempts once connected; attempts never stop.
    pub max_backoff_ms: u64,
    /// How long a sent message may wait for the broker's receipt, resends after a reconnect
    /// included. Longer than a broker restart, so a restart does not fail in-flight sends.
    pub operation_timeout_ms: u64,
    /// Commands (mostly whole batches) queued per broker connection before `send` waits
    /// (backpressure, not an error). The client preallocates every slot (`async_channel`'s
    /// bounded queue; a slot is about 4 KiB), so 10,000 cost 40 MiB per connection: keep it small.
    pub outbound_queue: usize,
    /// Most messages in one batch.
    pub batch_max_messages: u32,
    /// Most bytes in one batch.
    pub batch_max_bytes: usize,
    /// Longest a message waits for its batch to fill.
    pub batch_linger_ms: u64,
    /// Messages a consumer prefetches.
    pub receiver_queue: u32,
}

impl Default for PulsarConfig {
    fn default() -> Self {
        Self {
            url: "pulsar://127.0.0.1:6650".into(),
            admin_url: "http://127.0.0.1:8080".into(),
            connect_timeout_ms: 15_000,
            max_backoff_ms: 5_000,
            operation_timeout_ms: 120_000,
            outbound_queue: 1_000,
            batch_max_messages: 1_000,
            batch_max_bytes: 128 * 1024,
            batch_linger_ms: 5,
            receiver_queue: 1_000,
        }
    }
}

impl PulsarConfig {
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

/// How a subscription spreads messages over its consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionType {
    /// One consumer gets everything.
    Exclusive,
    /// Round-robin, no order (a work queue).
    Shared,
    /// One active consumer, others stand by.
    Failover,
    /// Spread by key; each key's order kept.
    KeyShared,
}

impl From<SubscriptionType> for pulsar::SubType {
    fn from(s: SubscriptionType) -> Self {
        match s {
            SubscriptionType::Exclusive => pulsar::SubType::Exclusive,
            SubscriptionType::Shared => pulsar::SubType::Shared,
            SubscriptionType::Failover => pulsar::SubType::Failover,
            SubscriptionType::KeyShared => pulsar::SubType::KeyShared,
        }
    }
}

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialPosition {
    /// The oldest retained message.
    Earliest,
    /// Only messages published from now on.
    Latest,
}
