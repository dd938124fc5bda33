//! The job queue: tasks from `persistent://market-data/control/backfill-jobs` on a Shared
//! subscription (every replica joins it, so Pulsar spreads the days among them), each hour
//! downloaded ([`crate::hour`]), its quotes and then its coverage marker published to
//! `persistent://market-data/historical/dukascopy.<slug>.quote`.
//!
//! A task is acknowledged only when Pulsar has confirmed every quote and every coverage marker
//! of it. A task that fails (Pulsar refused a message) is negatively acknowledged and comes back
//! later; a worker that dies leaves its tasks unacknowledged, and Pulsar gives them to another
//! replica (or to this one after its restart). Either way the hours are done again: the quotes
//! carry the same keys (hour and position), so the database stores each once.
//!
//! A task that can never succeed (not protobuf, another source, an instrument tickflow has no
//! price scale for, a range that is not whole hours) is acknowledged with an ERROR log and
//! counted as `rejected`: retrying it would change nothing.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt as _;
use prost::Message as _;
use tickflow_control::proto::BackfillTask;
use tickflow_pulsar::{
    ConsumerSpec, Delivery, InitialPosition, Namespace, PulsarClient, PulsarError,
    SubscriptionType, TickProducer, TopicName, TopicSelection,
};
use tickflow_runtime::admin::Readiness;
use tickflow_schema::{Coverage, CoverageStatus, Source, Symbol, Tick, TickKind, UnixNanos};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::hour::{Downloader, HOUR_NS, HourOutcome};
use crate::instruments::{self, Instrument};
use crate::metrics::{Metrics, ReasonLabel, StatusLabel};

/// The most hours one task may span (a control plane sends one day).
pub const MAX_TASK_HOURS: u32 = 24 * 366;

/// Why the worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Pulsar refused the subscription.
    #[error("cannot subscribe to the job queue: {0}")]
    Subscribe(PulsarError),
}

/// Why a task is refused for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Not a `BackfillTask`.
    #[error("not a BackfillTask: {0}")]
    Decode(String),
    /// Another source's task.
    #[error("source {0:?} is not dukascopy")]
    Source(String),
    /// A symbol that does not parse.
    #[error("symbol {0:?} is not a canonical symbol")]
    Symbol(String),
    /// No price scale for it.
    #[error("{0} is not in tickflow's Dukascopy instrument table (add it with its decimal factor)")]
    UnknownInstrument(String),
    /// A range that is not whole hours, or too long.
    #[error(
        "hours must start on an hour and number 1..={MAX_TASK_HOURS} (start {start}, {hours} hours)"
    )]
    Range {
        /// The start in ns.
        start: i64,
        /// The count.
        hours: u32,
    },
}

/// A validated task.
#[derive(Debug, Clone)]
pub struct Task {
    /// The job it belongs to.
    pub job_id: String,
    /// The symbol.
    pub symbol: Symbol,
    /// Its instrument.
    pub instrument: &'static Instrument,
    /// The hours, in order.
    pub hours: Vec<UnixNanos>,
}

impl Task {
    /// Validates a message payload.
    pub fn parse(payload: &[u8]) -> Result<Self, TaskError> {
        let t = BackfillTask::decode(payload).map_err(|e| TaskError::Decode(e.to_string()))?;
        if t.source != Source::Dukascopy.as_str() {
            return Err(TaskError::Source(t.source));
        }
        let symbol = Symbol::parse(&t.symbol).map_err(|_| TaskError::Symbol(t.symbol.clone()))?;
        let instrument = instruments::lookup(&symbol)
            .ok_or_else(|| TaskError::UnknownInstrument(symbol.to_string()))?;
        if t.hour_start_ns.rem_euclid(HOUR_NS) != 0 || t.hours == 0 || t.hours > MAX_TASK_HOURS {
            return Err(TaskError::Range {
                start: t.hour_start_ns,
                hours: t.hours,
            });
        }
        let hours = (0..i64::from(t.hours))
            .map(|i| UnixNanos(t.hour_start_ns.saturating_add(i.saturating_mul(HOUR_NS))))
            .collect();
        Ok(Self {
            job_id: t.job_id,
            symbol,
            instrument,
            hours,
        })
    }
}

/// What a finished task did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskSummary {
    /// Hours complete.
    pub complete: u32,
    /// Hours closed.
    pub closed: u32,
    /// Hours missing.
    pub missing: u32,
    /// Quotes confirmed.
    pub ticks: u64,
}

type SharedProducer = Arc<Mutex<TickProducer>>;

/// Consumes tasks and publishes hours.
#[derive(Debug, Clone)]
pub struct Worker {
    /// The Pulsar client.
    pub pulsar: PulsarClient,
    /// Downloads.
    pub downloader: Downloader,
    /// Settings.
    pub cfg: WorkerConfig,
    /// Metrics.
    pub metrics: Metrics,
    producers: Arc<Mutex<HashMap<Symbol, SharedProducer>>>,
}

impl Worker {
    /// A worker.
    pub fn new(
        pulsar: PulsarClient,
        downloader: Downloader,
        cfg: WorkerConfig,
        metrics: Metrics,
    ) -> Self {
        Self {
            pulsar,
            downloader,
            cfg,
            metrics,
            producers: Arc::default(),
        }
    }

    /// Takes tasks until `shutdown`; in-flight tasks are abandoned unacknowledged on shutdown
    /// (Pulsar hands them out again).
    pub async fn run(
        self,
        ready: Readiness,
        shutdown: CancellationToken,
    ) -> Result<(), WorkerError> {
        let topic = TopicName::control(&self.cfg.jobs_topic).map_err(|e| {
            WorkerError::Subscribe(PulsarError::Client {
                op: "job topic",
                source: pulsar::Error::Custom(e.to_string()),
            })
        })?;
        ready.set_not_ready(format!("subscribing to {topic}"));
        let mut consumer = self
            .pulsar
            .tick_consumer(ConsumerSpec {
                topics: TopicSelection::Topics(vec![topic]),
                subscription: self.cfg.subscription.clone(),
                sub_type: SubscriptionType::Shared,
                initial_position: InitialPosition::Earliest,
                consumer_name: None,
            })
            .await
            .map_err(WorkerError::Subscribe)?;
        ready.set_ready();
        let limit = self.cfg.tasks_in_flight.max(1);
        let (done_tx, mut done_rx) = mpsc::channel::<(u64, bool)>(limit);
        let mut in_flight: HashMap<u64, Delivery> = HashMap::new();
        let mut next_id = 0u64;
        let tasks_token = shutdown.child_token();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some((id, ok)) = done_rx.recv() => {
                    if let Some(delivery) = in_flight.remove(&id) {
                        let r = if ok {
                            consumer.ack(&delivery).await
                        } else {
                            consumer.nack(&delivery).await
                        };
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "cannot acknowledge a task; Pulsar will hand it out again");
                        }
                    }
                    self.metrics.tasks_in_flight.set(i64::try_from(in_flight.len()).unwrap_or(0));
                }
                next = consumer.next(), if in_flight.len() < limit => {
                    let delivery = match next {
                        Some(Ok(d)) => d,
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "job queue receive failed");
                            continue;
                        }
                        None => break,
                    };
                    let task = match Task::parse(delivery.payload()) {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::error!(error = %e, "a backfill task that can never succeed: acknowledged and dropped");
                            self.metrics.task("rejected");
                            if let Err(e) = consumer.ack(&delivery).await {
                                tracing::warn!(error = %e, "cannot acknowledge a rejected task");
                            }
                            continue;
                        }
                    };
                    let id = next_id;
                    next_id += 1;
                    in_flight.insert(id, delivery);
                    self.metrics.tasks_in_flight.set(i64::try_from(in_flight.len()).unwrap_or(0));
                    let worker = self.clone();
                    let done = done_tx.clone();
                    let token = tasks_token.clone();
                    tokio::spawn(async move {
                        let ok = match worker.run_task(&task, &token).await {
                            Some(Ok(summary)) => {
                                tracing::info!(
                                    job = %task.job_id, symbol = %task.symbol,
                                    from = %task.hours.first().map(|h| h.format_rfc3339(0)).unwrap_or_default(),
                                    hours = task.hours.len(), complete = summary.complete,
                                    closed = summary.closed, missing = summary.missing,
                                    ticks = summary.ticks, "backfill task done"
                                );
                                worker.metrics.task("done");
                                true
                            }
                            Some(Err(e)) => {
                                tracing::warn!(job = %task.job_id, symbol = %task.symbol, error = %e, "backfill task failed; it will be redelivered");
                                worker.metrics.task("failed");
                                false
                            }
                            None => return,
                        };
                        let _ = done.send((id, ok)).await;
                    });
                }
            }
        }
        tasks_token.cancel();
        let _ = consumer.close().await;
        let producers: Vec<SharedProducer> = self
            .producers
            .lock()
            .await
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in producers {
            let _ = p.lock().await.flush().await;
        }
        Ok(())
    }

    async fn producer(&self, symbol: &Symbol) -> Result<SharedProducer, PulsarError> {
        let mut map = self.producers.lock().await;
        if let Some(p) = map.get(symbol) {
            return Ok(p.clone());
        }
        let topic = TopicName::data(
            Namespace::Historical,
            Source::Dukascopy,
            symbol,
            TickKind::Quote,
        )
        .map_err(|e| PulsarError::Client {
            op: "topic name",
            source: pulsar::Error::Custom(e.to_string()),
        })?;
        let p = Arc::new(Mutex::new(self.pulsar.tick_producer(&topic).await?));
        map.insert(symbol.clone(), p.clone());
        Ok(p)
    }

    async fn forget_producer(&self, symbol: &Symbol) {
        self.producers.lock().await.remove(symbol);
    }

    /// Every hour of `task`, published; `None` on shutdown.
    pub async fn run_task(
        &self,
        task: &Task,
        shutdown: &CancellationToken,
    ) -> Option<Result<TaskSummary, PulsarError>> {
        let concurrency = self.downloader.cfg.max_concurrency.max(1);
        let mut results = futures::stream::iter(task.hours.iter().copied())
            .map(|hour| async move {
                let outcome = self
                    .downloader
                    .hour(task.instrument, hour, shutdown)
                    .await?;
                Some(self.publish(task, hour, outcome).await)
            })
            .buffer_unordered(concurrency);
        let mut summary = TaskSummary::default();
        let mut error = None;
        while let Some(r) = results.next().await {
            match r {
                None => return None,
                Some(Ok(one)) => {
                    summary.complete += one.complete;
                    summary.closed += one.closed;
                    summary.missing += one.missing;
                    summary.ticks += one.ticks;
                }
                Some(Err(e)) => error = Some(e),
            }
        }
        Some(match error {
            Some(e) => Err(e),
            None => Ok(summary),
        })
    }

    /// Publishes an hour: its quotes, then its coverage marker, and waits for Pulsar's receipts.
    async fn publish(
        &self,
        task: &Task,
        hour: UnixNanos,
        outcome: HourOutcome,
    ) -> Result<TaskSummary, PulsarError> {
        let mut summary = TaskSummary::default();
        let (quotes, status, detail, missing) = match outcome {
            HourOutcome::Complete(q) => {
                summary.complete = 1;
                (q, CoverageStatus::Complete, String::new(), None)
            }
            HourOutcome::Closed(d) => {
                summary.closed = 1;
                (Vec::new(), CoverageStatus::Closed, d, None)
            }
            HourOutcome::Missing(reason, d) => {
                summary.missing = 1;
                tracing::warn!(symbol = %task.symbol, hour = %hour.format_rfc3339(0), detail = %d, "hour recorded missing");
                (Vec::new(), CoverageStatus::Missing, d, Some(reason))
            }
        };
        let ticks = u64::try_from(quotes.len()).unwrap_or(u64::MAX);
        let marker = Tick::Coverage(Coverage {
            source: Source::Dukascopy,
            symbol: task.symbol.clone(),
            kind: TickKind::Quote,
            hour,
            status,
            ticks,
            detail,
            recorded_at: UnixNanos::now(),
        });
        let result = async {
            let producer = self.producer(&task.symbol).await?;
            let mut receipts = Vec::with_capacity(quotes.len() + 1);
            {
                let mut p = producer.lock().await;
                for q in quotes {
                    receipts.push(p.send(&Tick::Quote(q)).await?);
                }
                receipts.push(p.send(&marker).await?);
                p.flush().await?;
            }
            for r in futures::future::join_all(receipts).await {
                r?;
            }
            Ok::<(), PulsarError>(())
        }
        .await;
        if let Err(e) = result {
            self.forget_producer(&task.symbol).await;
            return Err(e);
        }
        summary.ticks = ticks;
        self.metrics.ticks.inc_by(ticks);
        self.metrics
            .hours
            .get_or_create(&StatusLabel {
                status: status.as_str(),
            })
            .inc();
        if let Some(reason) = missing {
            self.metrics
                .hours_missing
                .get_or_create(&ReasonLabel {
                    reason: reason.label(),
                })
                .inc();
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn task(source: &str, symbol: &str, start: i64, hours: u32) -> Vec<u8> {
        BackfillTask {
            job_id: "j".into(),
            symbol: symbol.into(),
            source: source.into(),
            hour_start_ns: start,
            hours,
        }
        .encode_to_vec()
    }

    #[test]
    fn tasks_are_validated() {
        let h = 1_676_894_400 * 1_000_000_000;
        let t = Task::parse(&task("dukascopy", "BTC/USD", h, 3)).unwrap();
        assert_eq!(
            t.hours,
            [
                UnixNanos(h),
                UnixNanos(h + HOUR_NS),
                UnixNanos(h + 2 * HOUR_NS)
            ]
        );
        assert_eq!(t.instrument.datafeed_symbol, "BTCUSD");
        assert_eq!(
            Task::parse(&task("kraken", "BTC/USD", h, 1)).unwrap_err(),
            TaskError::Source("kraken".into())
        );
        assert!(matches!(
            Task::parse(&task("dukascopy", "DOGE/USD", h, 1)),
            Err(TaskError::UnknownInstrument(_))
        ));
        assert!(matches!(
            Task::parse(&task("dukascopy", "BTC/USD", h + 1, 1)),
            Err(TaskError::Range { .. })
        ));
        assert!(matches!(
            Task::parse(&task("dukascopy", "BTC/USD", h, 0)),
            Err(TaskError::Range { .. })
        ));
        assert!(matches!(
            Task::parse(b"\xff\xff\xff"),
            Err(TaskError::Decode(_))
        ));
    }
}
