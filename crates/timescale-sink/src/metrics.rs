//! The sink's Prometheus metrics, under the `timescale_sink_` prefix.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `rows_written_total` | counter | `table` = `trades`, `quotes`, `gaps`, `coverage` |
//! | `rows_duplicate_total` | counter | rows already stored: redeliveries and re-backfills (the Rust client does not expose Pulsar's redelivery count, so this is the measure of them) |
//! | `batch_rows` | histogram | messages per committed batch |
//! | `batch_seconds` | histogram | write + commit time per batch |
//! | `lag_seconds` | histogram | commit time minus venue event time, per tick |
//! | `messages_received_total` | counter | messages taken from Pulsar |
//! | `dead_letters_total` | counter | `reason` = `undecodable`, `rejected` |
//! | `database_retries_total` | counter | batch attempts that found the database away |
//! | `backlog` | gauge | messages received and not yet acknowledged |

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
pub use tickflow_runtime::labels::{ReasonLabel, TableLabel};

/// Every metric the sink updates; cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Rows written by table.
    pub rows: Family<TableLabel, Counter>,
    /// Rows skipped as already stored.
    pub duplicates: Counter,
    /// Messages per batch.
    pub batch_rows: Histogram,
    /// Seconds per batch.
    pub batch_seconds: Histogram,
    /// End-to-end lag.
    pub lag_seconds: Histogram,
    /// Messages received.
    pub received: Counter,
    /// Dead letters by reason.
    pub dead_letters: Family<ReasonLabel, Counter>,
    /// Attempts that found the database away.
    pub database_retries: Counter,
    /// Received, not yet acknowledged.
    pub backlog: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them under `timescale_sink_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            rows: Family::default(),
            duplicates: Counter::default(),
            batch_rows: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            batch_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 16)),
            lag_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 24)),
            received: Counter::default(),
            dead_letters: Family::default(),
            database_retries: Counter::default(),
            backlog: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("timescale_sink");
        r.register("rows_written", "Rows written, by table", m.rows.clone());
        r.register(
            "rows_duplicate",
            "Rows skipped because they were already stored (redeliveries, re-backfills)",
            m.duplicates.clone(),
        );
        r.register(
            "batch_rows",
            "Messages per committed batch",
            m.batch_rows.clone(),
        );
        r.register(
            "batch_seconds",
            "Write and commit time per batch",
            m.batch_seconds.clone(),
        );
        r.register(
            "lag_seconds",
            "Commit time minus venue event time",
            m.lag_seconds.clone(),
        );
        r.register(
            "messages_received",
            "Messages taken from Pulsar",
            m.received.clone(),
        );
        r.register(
            "dead_letters",
            "Messages moved to the dead-letter topic, by reason",
            m.dead_letters.clone(),
        );
        r.register(
            "database_retries",
            "Batch attempts that found the database unavailable",
            m.database_retries.clone(),
        );
        r.register(
            "backlog",
            "Messages received and not yet acknowledged",
            m.backlog.clone(),
        );
        m
    }
}
