//! The ingester's Prometheus metrics, all under the `oanda_ingester_` prefix.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `lines_received_total` | counter | `class` = `price`, `heartbeat`, `other`, `malformed`, `oversized` |
//! | `ticks_published_total` | counter | `kind` = `quote`, `gap` (confirmed by Pulsar) |
//! | `ticks_skipped_total` | counter | `reason` = `duplicate`, `not_streamed`, `malformed` |
//! | `non_tradeable_total` | counter | prices kept but marked not tradeable (indicative) |
//! | `publish_latency_seconds` | histogram | line arrival to Pulsar acknowledgement |
//! | `publish_retries_total` | counter | sends retried after a failed send or receipt |
//! | `reconnects_total` | counter | streams lost (closed, failed, stale) |
//! | `switches_total` | counter | streams replaced to change the instrument list (no gap) |
//! | `connect_failures_total` | counter | `status` = `401`, `403`, `429`, `400`, `5xx`, `other`, `network` |
//! | `gaps_total` | counter | gap messages created |
//! | `queue_depth` | gauge | items waiting between the stream reader and the publisher |
//! | `in_flight` | gauge | sent ticks awaiting Pulsar's receipt |
//! | `connected` | gauge | 1 while a stream is open |
//! | `market_open` | gauge | 1 while the forex market is open by the calendar |
//! | `instruments_streamed` | gauge | instruments on the open stream |

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tickflow_ingest::PublisherMetrics;
pub use tickflow_runtime::labels::{ClassLabel, ReasonLabel, StatusLabel};

/// Every metric the ingester updates. Cheap to clone (all handles are shared).
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Lines by class.
    pub lines: Family<ClassLabel, Counter>,
    /// Prices not published, by reason.
    pub skipped: Family<ReasonLabel, Counter>,
    /// Prices marked not tradeable.
    pub non_tradeable: Counter,
    /// Streams lost.
    pub reconnects: Counter,
    /// Streams replaced for a new instrument list.
    pub switches: Counter,
    /// Refused or failed connection attempts.
    pub connect_failures: Family<StatusLabel, Counter>,
    /// Gap messages created.
    pub gaps: Counter,
    /// 1 while connected.
    pub connected: Gauge,
    /// 1 while the market is open.
    pub market_open: Gauge,
    /// Instruments on the open stream.
    pub instruments_streamed: Gauge,
    /// The publisher's: ticks published, latency, retries, queue depth, in flight.
    pub publisher: PublisherMetrics,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` under `oanda_ingester_`.
    pub fn register(registry: &mut Registry) -> Self {
        let r = registry.sub_registry_with_prefix("oanda_ingester");
        let m = Self {
            lines: Family::default(),
            skipped: Family::default(),
            non_tradeable: Counter::default(),
            reconnects: Counter::default(),
            switches: Counter::default(),
            connect_failures: Family::default(),
            gaps: Counter::default(),
            connected: Gauge::default(),
            market_open: Gauge::default(),
            instruments_streamed: Gauge::default(),
            publisher: PublisherMetrics::register(r),
        };
        r.register(
            "lines_received",
            "Stream lines received, by class",
            m.lines.clone(),
        );
        r.register(
            "ticks_skipped",
            "Prices not published, by reason",
            m.skipped.clone(),
        );
        r.register(
            "non_tradeable",
            "Prices kept but marked not tradeable",
            m.non_tradeable.clone(),
        );
        r.register("reconnects", "Streams lost", m.reconnects.clone());
        r.register(
            "switches",
            "Streams replaced to change the instrument list",
            m.switches.clone(),
        );
        r.register(
            "connect_failures",
            "Connection attempts refused or failed, by status",
            m.connect_failures.clone(),
        );
        r.register("gaps", "Gap messages created", m.gaps.clone());
        r.register("connected", "1 while a stream is open", m.connected.clone());
        r.register(
            "market_open",
            "1 while the forex market is open by the calendar",
            m.market_open.clone(),
        );
        r.register(
            "instruments_streamed",
            "Instruments on the open stream",
            m.instruments_streamed.clone(),
        );
        m
    }

    /// A standalone set, registered nowhere (tests, benchmarks).
    pub fn unregistered() -> Self {
        Self::register(&mut Registry::default())
    }

    /// Counts a line of `class`.
    pub(crate) fn line(&self, class: &'static str) {
        self.lines.get_or_create(&ClassLabel { class }).inc();
    }

    /// Counts a skipped price.
    pub(crate) fn skip(&self, reason: &'static str) {
        self.skipped.get_or_create(&ReasonLabel { reason }).inc();
    }
}
