//! Pull, batch, write, acknowledge.
//!
//! 1. **Pull** messages and route each to one of `writers` batch writers by its key (the
//!    symbol), so a symbol's rows and candles always go through the same writer and writers
//!    never contend for the same candle rows. A writer's batch closes at `max_rows`,
//!    `max_bytes` or `linger_ms` after its first message. Each writer holds one batch in hand
//!    and one waiting; when both are taken the receiver waits, the consumer's receiver queue
//!    fills and Pulsar holds the rest (bounded memory, no loss). Pulling goes on while writers
//!    write: the two overlap.
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
use tokio::sync::mpsc;

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

/// The receiving half: pulls, routes each message to the writer of its symbol, batches,
/// and acknowledges what the writers report done.
pub(crate) struct Receiver {
    pub consumer: TickConsumer,
    pub metrics: Metrics,
    pub batch: BatchConfig,
    pub shutdown: CancellationToken,
    pub acks: AckTracker,
    pub log: LogLimiter,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Buffer {
    items: Vec<Delivery>,
    bytes: usize,
    deadline: Option<tokio::time::Instant>,
}

fn writer_of(d: &Delivery, writers: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    d.key().unwrap_or(d.topic()).hash(&mut h);
    usize::try_from(h.finish() % writers.max(1) as u64).unwrap_or(0)
}

/// Runs the receiver and `writers` writer tasks until shutdown (then the batches in hand are
/// finished and acknowledged) or the first failure.
pub(crate) async fn run(mut rx: Receiver, writers: Vec<BatchWriter>) -> Result<(), SinkError> {
    let n = writers.len().max(1);
    let (done_tx, mut done_rx) = mpsc::channel::<Result<Vec<Delivery>, SinkError>>(4 * n + 4);
    let mut to_writers = Vec::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    for w in writers {
        let (tx, batches) = mpsc::channel::<Vec<Delivery>>(1);
        to_writers.push(tx);
        tasks.spawn(w.run(batches, done_tx.clone()));
    }
    drop(done_tx);
    let mut buffers: Vec<Buffer> = (0..n).map(|_| Buffer::default()).collect();
    let mut in_flight = 0usize;
    let mut stopping = false;
    let result = loop {
        if stopping && in_flight == 0 {
            break Ok(());
        }
        let earliest = buffers.iter().filter_map(|b| b.deadline).min();
        let linger = async {
            match earliest {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            done = done_rx.recv(), if in_flight > 0 => {
                in_flight -= 1;
                match done {
                    Some(Ok(batch)) => rx.acknowledge(&batch).await,
                    Some(Err(e)) => break Err(e),
                    None => break Err(SinkError::Stopped("the writers stopped".to_owned())),
                }
            }
            () = rx.shutdown.cancelled(), if !stopping => {
                stopping = true;
                for i in 0..n {
                    in_flight += flush(&mut buffers[i], &to_writers[i]).await;
                }
            }
            () = linger => {
                let now = tokio::time::Instant::now();
                for i in 0..n {
                    if buffers[i].deadline.is_some_and(|d| d <= now) {
                        in_flight += flush(&mut buffers[i], &to_writers[i]).await;
                    }
                }
            }
            msg = rx.consumer.next(), if !stopping => match msg {
                Some(Ok(d)) => {
                    rx.metrics.received.inc();
                    let i = writer_of(&d, n);
                    let b = &mut buffers[i];
                    b.bytes += d.payload().len();
                    b.deadline.get_or_insert_with(|| tokio::time::Instant::now() + rx.batch.linger());
                    b.items.push(d);
                    if b.items.len() >= rx.batch.max_rows.max(1) || b.bytes >= rx.batch.max_bytes {
                        in_flight += flush(b, &to_writers[i]).await;
                    }
                }
                Some(Err(e)) => {
                    if let Some(suppressed) = rx.log.check() {
                        tracing::warn!(error = %e, suppressed, "receiving from Pulsar failed; the client reconnects");
                    }
                }
                None => break Err(SinkError::Stopped("the Pulsar consumer closed".to_owned())),
            },
        }
        let held: usize = buffers.iter().map(|b| b.items.len()).sum();
        rx.metrics
            .backlog
            .set(i64::try_from(held + in_flight * rx.batch.max_rows).unwrap_or(i64::MAX));
    };
    drop(to_writers);
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Err(e)) = joined
            && result.is_ok()
        {
            return Err(e);
        }
    }
    if let Err(e) = rx.consumer.close().await {
        tracing::warn!(error = %e, "closing the consumer failed");
    }
    result
}

/// Hands a non-empty buffer to its writer (waiting while the writer is busy: backpressure).
/// Returns how many batches went out (0 or 1).
async fn flush(b: &mut Buffer, to: &mpsc::Sender<Vec<Delivery>>) -> usize {
    if b.items.is_empty() {
        return 0;
    }
    let batch = std::mem::take(&mut b.items);
    b.bytes = 0;
    b.deadline = None;
    usize::from(to.send(batch).await.is_ok())
}

impl Receiver {
    async fn acknowledge(&mut self, batch: &[Delivery]) {
        for d in batch {
            // Not fatal if it fails: the entry comes again and its rows are already stored.
            if self.acks.done(&d.entry(), d.batch_index(), d.batch_size())
                && let Err(e) = self.consumer.ack(d).await
                && let Some(suppressed) = self.log.check()
            {
                tracing::warn!(error = %e, suppressed, "acknowledging failed; the entry will be redelivered");
            }
        }
    }
}

/// A writing half: takes batches, writes them (waiting out outages, isolating poison), reports
/// them done. Each symbol always goes to the same writer, so writers never touch the same
/// candle rows and never wait for each other's locks.
pub(crate) struct BatchWriter {
    pub writer: Writer,
    pub dlq: DeadLetterProducer,
    pub metrics: Metrics,
    pub retry: BackoffConfig,
    pub ready: Readiness,
    pub shutdown: CancellationToken,
    pub log: LogLimiter,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter").finish_non_exhaustive()
    }
}

impl BatchWriter {
    async fn run(
        mut self,
        mut batches: mpsc::Receiver<Vec<Delivery>>,
        done: mpsc::Sender<Result<Vec<Delivery>, SinkError>>,
    ) -> Result<(), SinkError> {
        self.ready.set_ready();
        let mut last_partition_check = Instant::now();
        while let Some(batch) = batches.recv().await {
            if last_partition_check.elapsed() >= Duration::from_secs(3600) {
                self.writer.ensure_days_ahead().await?;
                last_partition_check = Instant::now();
            }
            let result = self.process(&batch).await.map(|()| batch);
            let failed = result.is_err();
            if done.send(result).await.is_err() || failed {
                break;
            }
        }
        Ok(())
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
