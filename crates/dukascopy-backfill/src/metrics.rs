//! The service's Prometheus metrics, all under the `dukascopy_backfill_` prefix.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `hours_total` | counter | `status` = `complete`, `closed`, `missing`: hours finished and recorded in coverage |
//! | `hours_failed_total` | counter | `error` = `throttled`, `timeout`, `http`, `network`, `corrupt`: hours recorded missing because every attempt failed, by the last error |
//! | `hours_missing_total` | counter | `reason` = `empty`, `failed`, `unpublished`: hours recorded missing, by why |
//! | `ticks_published_total` | counter | quotes confirmed by Pulsar |
//! | `bytes_downloaded_total` | counter | response bytes read from Dukascopy (cache hits excluded) |
//! | `cache_hits_total` | counter | hours read from the on-disk cache |
//! | `retries_total` | counter | `reason` = `throttled`, `blocked`, `timeout`, `http`, `network`, `corrupt`, `empty` |
//! | `requests_total` | counter | `outcome` = `ok`, `empty`, `not_found`, `throttled`, `blocked`, `timeout`, `http`, `network` |
//! | `concurrency` | gauge | requests in flight now |
//! | `concurrency_limit` | gauge | the adaptive limit now |
//! | `tasks_total` | counter | `outcome` = `done`, `failed` (redelivered later), `rejected` (not a valid task) |
//! | `tasks_in_flight` | gauge | tasks being worked on |

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
pub use tickflow_runtime::labels::{ErrorLabel, OutcomeLabel, ReasonLabel, StatusLabel};

/// Every metric the service updates. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Hours finished, by coverage status.
    pub hours: Family<StatusLabel, Counter>,
    /// Hours recorded missing after failed attempts, by the last error.
    pub hours_failed: Family<ErrorLabel, Counter>,
    /// Hours recorded missing, by why.
    pub hours_missing: Family<ReasonLabel, Counter>,
    /// Quotes confirmed by Pulsar.
    pub ticks: Counter,
    /// Bytes downloaded.
    pub bytes: Counter,
    /// Hours served from the cache.
    pub cache_hits: Counter,
    /// Attempts repeated, by why.
    pub retries: Family<ReasonLabel, Counter>,
    /// HTTP requests by outcome.
    pub requests: Family<OutcomeLabel, Counter>,
    /// Requests in flight.
    pub concurrency: Gauge,
    /// The adaptive limit.
    pub concurrency_limit: Gauge,
    /// Tasks by outcome.
    pub tasks: Family<OutcomeLabel, Counter>,
    /// Tasks being worked on.
    pub tasks_in_flight: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` under `dukascopy_backfill_`.
    pub fn register(registry: &mut Registry) -> Self {
        let r = registry.sub_registry_with_prefix("dukascopy_backfill");
        let m = Self::default();
        r.register(
            "hours",
            "Hours finished and recorded in coverage, by status",
            m.hours.clone(),
        );
        r.register(
            "hours_failed",
            "Hours recorded missing because every attempt failed, by the last error",
            m.hours_failed.clone(),
        );
        r.register(
            "hours_missing",
            "Hours recorded missing, by reason",
            m.hours_missing.clone(),
        );
        r.register(
            "ticks_published",
            "Quotes confirmed by Pulsar",
            m.ticks.clone(),
        );
        r.register(
            "bytes_downloaded",
            "Response bytes read from Dukascopy",
            m.bytes.clone(),
        );
        r.register(
            "cache_hits",
            "Hours read from the on-disk cache",
            m.cache_hits.clone(),
        );
        r.register("retries", "Attempts repeated, by reason", m.retries.clone());
        r.register(
            "requests",
            "HTTP requests to Dukascopy, by outcome",
            m.requests.clone(),
        );
        r.register(
            "concurrency",
            "Requests to Dukascopy in flight",
            m.concurrency.clone(),
        );
        r.register(
            "concurrency_limit",
            "The adaptive limit on requests in flight",
            m.concurrency_limit.clone(),
        );
        r.register("tasks", "Backfill tasks by outcome", m.tasks.clone());
        r.register(
            "tasks_in_flight",
            "Backfill tasks being worked on",
            m.tasks_in_flight.clone(),
        );
        m
    }

    pub(crate) fn retry(&self, reason: &'static str) {
        self.retries.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn request(&self, outcome: &'static str) {
        self.requests.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub(crate) fn task(&self, outcome: &'static str) {
        self.tasks.get_or_create(&OutcomeLabel { outcome }).inc();
    }
}
