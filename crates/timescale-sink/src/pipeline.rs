//! Pull, batch, write, acknowledge.
//!
//! 1. **Pull** messages into a batch until `max_rows`, `max_bytes` or `linger_ms` after the
//!    first. While a batch is being written nothing more is pulled: the consumer's receiver
//!    queue fills and Pulsar holds the rest (bounded memory, no loss).
//! 2. **Dead-letter** what cannot be decoded, with the decode error as its reason.
//! 3. **Write** the rest in one transaction. If the database is away, wait (jittered backoff,
//!    interrupted by shutdown) and write the same batch again, for ever. If the database refuses
//!    the data, split the batch in halves until the refused message stands alone; dead-letter
//!    it with the database's error as its reason; every other half commits.
//! 4. **Acknowledge** only what is committed or dead-lettered. The Rust client acknowledges a
//!    whole batch entry when asked to acknowledge one of its messages (`PULSAR.md` §3.8), so an
//!    entry is acknowledged only once *every* one of its messages is done ([`AckTracker`]); a
//!    crash before that redelivers the entry and the unique keys drop what was already stored.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tickflow_pulsar::{DeadLetter, DeadLetterProducer, Delivery, EntryId, TickConsumer};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::admin::Readiness;
use tickflow_runtime::backoff::{Backoff, BackoffConfig};
use tickflow_runtime::log_limit::LogLimiter;
use tickflow_schema::{Tick, UnixNanos};

use crate::SinkError;
use crate::config::BatchConfig;
use crate::metrics::{Metrics, ReasonLabel, TableLabel};
use crate::writer::{WriteError, Writer, Written};

/// Which messages of each batch entry are done; says when an entry may be acknowledged.
#[derive(Debug, Default)]
pub struct AckTracker {
    partial: HashMap<EntryId, HashSet<u32>>,
}

impl AckTracker {
    /// Marks message `index` of an entry of `size` messages done. True when every message of
    /// the entry is done: acknowledge it now (and only now).
    pub fn done(&mut self, entry: &EntryId, index: u32, size: u32) -> bool {
        if size <= 1 {
            return true;
        }
        let seen = self.partial.entry(entry.clone()).or_default();
        seen.insert(index);
        if seen.len() >= size as usize {
            self.partial.remove(entry);
            true
        } else {
            false
        }
    }

    /// Entries partly done.
    pub fn open_entries(&self) -> usize {
        self.partial.len()
    }
}

/// The sink's main loop; see the module docs.
pub(crate) struct Pipeline {
    pub consumer: TickConsumer,
    pub writer: Writer,
    pub dlq: DeadLetterProducer,
    pub metrics: Metrics,
    pub batch: BatchConfig,
    pub retry: BackoffConfig,
    pub ready: Readiness,
    pub shutdown: CancellationToken,
    pub acks: AckTracker,
    pub log: LogLimiter,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").finish_non_exhaustive()
    }
}

impl Pipeline {
    pub(crate) async fn run(mut self) -> Result<(), SinkError> {
        self.ready.set_ready();
        let mut last_partition_check = Instant::now();
        loop {
            let batch = self.fill().await;
            if !batch.is_empty() {
                self.process(&batch).await?;
            }
            if self.shutdown.is_cancelled() {
                break;
            }
            if last_partition_check.elapsed() >= Duration::from_secs(3600) {
                self.writer.ensure_days_ahead().await?;
                last_partition_check = Instant::now();
            }
        }
        if let Err(e) = self.consumer.close().await {
            tracing::warn!(error = %e, "closing the consumer failed");
        }
        Ok(())
    }

    async fn fill(&mut self) -> Vec<Delivery> {
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        let mut deadline: Option<tokio::time::Instant> = None;
        while batch.len() < self.batch.max_rows.max(1) && bytes < self.batch.max_bytes {
            let linger = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                () = linger => break,
                msg = self.consumer.next() => match msg {
                    Some(Ok(d)) => {
                        self.metrics.received.inc();
                        bytes += d.payload().len();
                        deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.batch.linger());
                        batch.push(d);
                    }
                    Some(Err(e)) => {
                        if let Some(suppressed) = self.log.check() {
                            tracing::warn!(error = %e, suppressed, "receiving from Pulsar failed; the client reconnects");
                        }
                    }
                    None => break,
                },
            }
        }
        self.metrics
            .backlog
            .set(i64::try_from(batch.len()).unwrap_or(i64::MAX));
        batch
    }

    async fn process(&mut self, batch: &[Delivery]) -> Result<(), SinkError> {
        let mut good = Vec::with_capacity(batch.len());
        for (i, d) in batch.iter().enumerate() {
            match &d.tick {
                Ok(_) => good.push(i),
                Err(e) => {
                    let reason = format!("undecodable: {e}");
                    self.dead_letter(d, reason, "undecodable").await?;
                }
            }
        }
        let mut parts = vec![good];
        while let Some(part) = parts.pop() {
            if part.is_empty() {
                continue;
            }
            let ticks: Vec<&Tick> = part
                .iter()
                .filter_map(|&i| batch[i].tick.as_ref().ok())
                .collect();
            let started = Instant::now();
            match self.write_until_available(&ticks).await? {
                Ok(written) => self.committed(&ticks, &written, started).await,
                Err(e) if part.len() == 1 => {
                    let reason = format!("rejected by the database: {e}");
                    self.dead_letter(&batch[part[0]], reason, "rejected")
                        .await?;
                }
                Err(e) => {
                    tracing::warn!(rows = part.len(), error = %e, "the database refused a batch; splitting it to find the row");
                    let (a, b) = part.split_at(part.len() / 2);
                    parts.push(b.to_vec());
                    parts.push(a.to_vec());
                }
            }
        }
        for d in batch {
            // Not fatal if it fails: the entry comes again and its rows are already stored.
            if self.acks.done(&d.entry(), d.batch_index(), d.batch_size())
                && let Err(e) = self.consumer.ack(d).await
                && let Some(suppressed) = self.log.check()
            {
                tracing::warn!(error = %e, suppressed, "acknowledging failed; the entry will be redelivered");
            }
        }
        self.metrics.backlog.set(0);
        Ok(())
    }

    /// Writes, waiting out database outages. `Ok(Err(_))`: the data was refused.
    async fn write_until_available(
        &mut self,
        ticks: &[&Tick],
    ) -> Result<Result<Written, sqlx::Error>, SinkError> {
        let mut backoff = Backoff::new(self.retry.clone());
        loop {
            match self.writer.write(ticks).await {
                Ok(written) => {
                    if backoff.attempt() > 0 {
                        tracing::info!(attempts = backoff.attempt(), "the database is back");
                        self.ready.set_ready();
                    }
                    return Ok(Ok(written));
                }
                Err(WriteError::Rejected(e)) => return Ok(Err(e)),
                Err(WriteError::Retry(e)) => {
                    self.metrics.database_retries.inc();
                    self.ready
                        .set_not_ready(format!("database unavailable: {e}"));
                    if let Some(suppressed) = self.log.check() {
                        tracing::warn!(error = %e, suppressed, rows = ticks.len(), "database unavailable; holding the batch and retrying");
                    }
                    if !backoff.wait(&self.shutdown).await {
                        return Err(SinkError::Stopped(format!(
                            "shut down while the database was unavailable ({e}); {} messages stay unacknowledged and will be redelivered",
                            ticks.len()
                        )));
                    }
                }
            }
        }
    }

    async fn committed(&mut self, ticks: &[&Tick], written: &Written, started: Instant) {
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics.batch_seconds.observe(elapsed);
        self.metrics.batch_rows.observe(ticks.len() as f64);
        for (table, n) in [
            ("trades", written.trades),
            ("quotes", written.quotes),
            ("gaps", written.gaps),
            ("coverage", written.coverage),
        ] {
            if n > 0 {
                self.metrics
                    .rows
                    .get_or_create(&TableLabel { table })
                    .inc_by(n);
            }
        }
        self.metrics.duplicates.inc_by(written.duplicates);
        let now = UnixNanos::now();
        for t in ticks {
            if matches!(t, Tick::Trade(_) | Tick::Quote(_)) {
                let lag_ns = now.0.saturating_sub(t.event_time().0).max(0);
                self.metrics
                    .lag_seconds
                    .observe(Duration::from_nanos(lag_ns.unsigned_abs()).as_secs_f64());
            }
        }
        if let Err(e) = self.writer.refresh_candles(written).await {
            tracing::warn!(error = %e, "refreshing continuous aggregates failed; the refresh policy or the next batch catches up");
        }
    }

    async fn dead_letter(
        &mut self,
        d: &Delivery,
        reason: String,
        label: &'static str,
    ) -> Result<(), SinkError> {
        let entry = d.entry();
        let letter = DeadLetter {
            payload: d.payload().to_vec(),
            key: d.key().map(str::to_owned),
            origin_topic: d.topic().to_owned(),
            origin_message_id: format!("{}:{}:{}", entry.ledger, entry.entry, d.batch_index()),
            reason: reason.chars().take(1000).collect(),
            consumer: "timescale-sink".to_owned(),
        };
        let mut backoff = Backoff::new(self.retry.clone());
        loop {
            match self.dlq.send(letter.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    if let Some(suppressed) = self.log.check() {
                        tracing::warn!(error = %e, suppressed, "cannot write a dead letter yet; retrying");
                    }
                    if !backoff.wait(&self.shutdown).await {
                        return Err(SinkError::Stopped(format!(
                            "shut down before a dead letter could be written ({e})"
                        )));
                    }
                }
            }
        }
        self.metrics
            .dead_letters
            .get_or_create(&ReasonLabel { reason: label })
            .inc();
        tracing::warn!(topic = d.topic(), message = %letter.origin_message_id, reason = %letter.reason, "message moved to the dead-letter topic");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> EntryId {
        EntryId {
            topic: "t".into(),
            ledger: 1,
            entry: n,
        }
    }

    #[test]
    fn an_entry_is_acknowledged_only_when_every_message_is_done() {
        let mut acks = AckTracker::default();
        assert!(acks.done(&entry(1), 0, 1), "unbatched: at once");
        assert!(!acks.done(&entry(2), 0, 3));
        assert!(!acks.done(&entry(2), 1, 3));
        assert!(
            !acks.done(&entry(2), 1, 3),
            "a redelivered message does not count twice"
        );
        assert_eq!(acks.open_entries(), 1);
        assert!(acks.done(&entry(2), 2, 3));
        assert_eq!(acks.open_entries(), 0);
    }
}
