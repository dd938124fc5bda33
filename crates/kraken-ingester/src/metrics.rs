//! The ingester's Prometheus metrics, all under the `kraken_ingester_` prefix.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `frames_received_total` | counter | `class` = `data`, `control`, `malformed` |
//! | `malformed_frames_total` | counter | (frames or elements skipped as malformed) |
//! | `ticks_published_total` | counter | `kind` = `trade`, `quote`, `gap` (confirmed by Pulsar) |
//! | `ticks_skipped_total` | counter | `reason` = `duplicate`, `no_quote`, `not_subscribed` |
//! | `publish_latency_seconds` | histogram | frame arrival to Pulsar acknowledgement |
//! | `publish_retries_total` | counter | sends retried after a failed receipt |
//! | `reconnects_total` | counter | connections lost or replaced |
//! | `connect_failures_total` | counter | connection attempts that failed |
//! | `gaps_total` | counter | `kind`; gap messages created |
//! | `gaps_avoided_total` | counter | outages proven lossless by trade-id continuity |
//! | `subscription_errors_total` | counter | `channel`; subscriptions Kraken refused |
//! | `queue_depth` | gauge | items waiting between the socket reader and the publisher |
//! | `in_flight` | gauge | sent ticks awaiting Pulsar's receipt |
//! | `connected` | gauge | 1 while a connection is open |
//! | `symbols_subscribed` | gauge | symbols with both channels acknowledged |

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tickflow_ingest::PublisherMetrics;
pub use tickflow_runtime::labels::{ChannelLabel, ClassLabel, ReasonLabel};

pub use tickflow_ingest::publisher::KindLabel;

/// Every metric the ingester updates. Cheap to clone (all handles are shared).
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Frames by class.
    pub frames: Family<ClassLabel, Counter>,
    /// Malformed frames and elements.
    pub malformed: Counter,
    /// Ticks not published, by reason.
    pub skipped: Family<ReasonLabel, Counter>,
    /// Connections lost.
    pub reconnects: Counter,
    /// Connection attempts that failed.
    pub connect_failures: Counter,
    /// Gap messages created, by kind.
    pub gaps: Family<KindLabel, Counter>,
    /// Outages proven lossless.
    pub gaps_avoided: Counter,
    /// Refused subscriptions.
    pub subscription_errors: Family<ChannelLabel, Counter>,
    /// 1 while connected.
    pub connected: Gauge,
    /// Symbols fully subscribed.
    pub symbols_subscribed: Gauge,
    /// The publisher's: ticks published, latency, retries, queue depth, in flight.
    pub publisher: PublisherMetrics,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` under `kraken_ingester_`.
    pub fn register(registry: &mut Registry) -> Self {
        let r = registry.sub_registry_with_prefix("kraken_ingester");
        let m = Self {
            frames: Family::default(),
            malformed: Counter::default(),
            skipped: Family::default(),
            reconnects: Counter::default(),
            connect_failures: Counter::default(),
            gaps: Family::default(),
            gaps_avoided: Counter::default(),
            subscription_errors: Family::default(),
            connected: Gauge::default(),
            symbols_subscribed: Gauge::default(),
            publisher: PublisherMetrics::register(r),
        };
        r.register(
            "frames_received",
            "WebSocket frames received, by class",
            m.frames.clone(),
        );
        r.register(
            "malformed_frames",
            "Frames or frame elements skipped as malformed",
            m.malformed.clone(),
        );
        r.register(
            "ticks_skipped",
            "Ticks not published, by reason",
            m.skipped.clone(),
        );
        r.register(
            "reconnects",
            "Connections lost or replaced",
            m.reconnects.clone(),
        );
        r.register(
            "connect_failures",
            "Connection attempts that failed",
            m.connect_failures.clone(),
        );
        r.register("gaps", "Gap messages created, by kind", m.gaps.clone());
        r.register(
            "gaps_avoided",
            "Outages proven lossless by trade-id continuity",
            m.gaps_avoided.clone(),
        );
        r.register(
            "subscription_errors",
            "Subscriptions refused by Kraken, by channel",
            m.subscription_errors.clone(),
        );
        r.register(
            "connected",
            "1 while a Kraken connection is open",
            m.connected.clone(),
        );
        r.register(
            "symbols_subscribed",
            "Symbols with both channels acknowledged",
            m.symbols_subscribed.clone(),
        );
        m
    }

    /// A standalone set, registered nowhere (tests, benchmarks).
    pub fn unregistered() -> Self {
        Self::register(&mut Registry::default())
    }
}
