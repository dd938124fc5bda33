//! The queue's consumer: producers per symbol and kind (`…/realtime/<source>.<slug>.<kind>`),
//! every tick sent and held until Pulsar's receipt. A failed receipt sends the tick
//! again (the sink's unique keys make a double delivery harmless); nothing is dropped. At most
//! `max_in_flight` ticks wait for receipts; beyond that the publisher stops taking from the
//! queue, the queue fills, and the socket reader waits.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tickflow_pulsar::{Namespace, PulsarClient, PulsarError, TickProducer, TopicName};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::admin::Readiness;
use tickflow_runtime::backoff::{Backoff, BackoffConfig};
use tickflow_runtime::log_limit::LogLimiter;
use tickflow_schema::{Source, Symbol, Tick, TickKind};
use tokio::sync::mpsc;

/// What travels from the venue reader to the publisher, in order.
#[derive(Debug)]
pub enum Item {
    /// Create the producers of a symbol (before its first tick).
    Open(Symbol),
    /// Flush and close the producers of a symbol (after its last tick).
    Close(Symbol),
    /// A tick (or gap) to publish; `arrived` is when the venue message that carried it arrived.
    Tick {
        /// The tick.
        tick: Tick,
        /// When the venue message that carried it arrived.
        arrived: Instant,
    },
}

pub use tickflow_runtime::labels::KindLabel;

/// The publisher's metrics, registered under the service's prefix:
///
/// | metric | type | meaning |
/// |---|---|---|
/// | `ticks_published_total` | counter | `kind`; confirmed by Pulsar |
/// | `publish_latency_seconds` | histogram | venue message arrival to Pulsar acknowledgement |
/// | `publish_retries_total` | counter | sends retried after a failed send or receipt |
/// | `queue_depth` | gauge | items waiting between the venue reader and the publisher |
/// | `in_flight` | gauge | sent ticks awaiting Pulsar's receipt |
#[derive(Debug, Clone)]
pub struct PublisherMetrics {
    /// Ticks confirmed by Pulsar, by kind.
    pub published: Family<KindLabel, Counter>,
    /// Arrival to Pulsar receipt.
    pub publish_latency: Histogram,
    /// Sends retried.
    pub publish_retries: Counter,
    /// Queue depth.
    pub queue_depth: Gauge,
    /// Ticks awaiting receipts.
    pub in_flight: Gauge,
}

impl PublisherMetrics {
    /// Creates the metrics and registers them in `registry` (already prefixed by the caller).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            published: Family::default(),
            // 50 µs .. ~3.3 s in steps of √2, fine enough to read a 99th percentile from.
            publish_latency: Histogram::new(exponential_buckets(
                0.000_05,
                std::f64::consts::SQRT_2,
                33,
            )),
            publish_retries: Counter::default(),
            queue_depth: Gauge::default(),
            in_flight: Gauge::default(),
        };
        registry.register(
            "ticks_published",
            "Ticks confirmed by Pulsar, by kind",
            m.published.clone(),
        );
        registry.register(
            "publish_latency_seconds",
            "From the venue message's arrival to Pulsar's acknowledgement",
            m.publish_latency.clone(),
        );
        registry.register(
            "publish_retries",
            "Sends retried after a failed send or receipt",
            m.publish_retries.clone(),
        );
        registry.register(
            "queue_depth",
            "Items between the venue reader and the publisher",
            m.queue_depth.clone(),
        );
        registry.register(
            "in_flight",
            "Ticks sent to Pulsar awaiting their receipt",
            m.in_flight.clone(),
        );
        m
    }
}

/// Pacing of retries after a failed send.
const RETRY: BackoffConfig = BackoffConfig {
    initial_ms: 100,
    max_ms: 5_000,
    multiplier: 2,
    reset_after_ms: 60_000,
};

type Receipt = Pin<Box<dyn Future<Output = (Result<(), PulsarError>, Tick, Instant)> + Send>>;

/// A symbol's producers, one per kind.
#[derive(Default)]
struct Producers(Vec<(TickKind, TickProducer)>);

impl Producers {
    async fn close(self, symbol: &Symbol) {
        for (_, producer) in self.0 {
            if let Err(e) = producer.close().await {
                tracing::warn!(symbol = %symbol, error = %e, "closing producer failed");
            }
        }
    }
}

/// Drains the queue into Pulsar until the queue's senders are gone, then waits for every
/// receipt and closes the producers.
#[allow(missing_debug_implementations, reason = "holds boxed receipt futures")]
pub struct Publisher {
    client: PulsarClient,
    source: Source,
    kinds: Vec<TickKind>,
    metrics: PublisherMetrics,
    ready: Readiness,
    producers: HashMap<Symbol, Producers>,
    in_flight: FuturesUnordered<Receipt>,
    max_in_flight: usize,
    errors: LogLimiter,
    shutdown: CancellationToken,
}

fn kind_label(tick: &Tick) -> &'static str {
    match tick {
        Tick::Trade(_) => "trade",
        Tick::Quote(_) => "quote",
        Tick::Gap(_) => "gap",
        Tick::Coverage(_) => "coverage",
    }
}

impl Publisher {
    /// A publisher of `source`'s ticks to its `realtime` topics; `kinds` are the producers
    /// opened for each symbol up front (a tick of another kind opens its producer on demand).
    pub fn new(
        client: PulsarClient,
        source: Source,
        kinds: &[TickKind],
        metrics: PublisherMetrics,
        ready: Readiness,
        max_in_flight: usize,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            client,
            source,
            kinds: kinds.to_vec(),
            metrics,
            ready,
            producers: HashMap::new(),
            in_flight: FuturesUnordered::new(),
            max_in_flight: max_in_flight.max(1),
            errors: LogLimiter::new(Duration::from_secs(10)),
            shutdown,
        }
    }

    /// Runs until every sender of `rx` is gone and every receipt is in. A failure that is not
    /// weather (a tick for an impossible topic) or a send refused during shutdown ends it with
    /// the error.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Item>) -> Result<(), PulsarError> {
        self.ready.set_ready();
        loop {
            let room = self.in_flight.len() < self.max_in_flight;
            tokio::select! {
                biased;
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.receipt(done).await?;
                }
                item = rx.recv(), if room => {
                    self.metrics.queue_depth.set(i64::try_from(rx.len()).unwrap_or(i64::MAX));
                    match item {
                        Some(item) => self.handle(item).await?,
                        None => break,
                    }
                }
            }
            self.metrics
                .in_flight
                .set(i64::try_from(self.in_flight.len()).unwrap_or(i64::MAX));
        }
        while let Some(done) = self.in_flight.next().await {
            self.receipt(done).await?;
        }
        self.metrics.in_flight.set(0);
        for (symbol, p) in self.producers.drain() {
            p.close(&symbol).await;
        }
        Ok(())
    }

    async fn handle(&mut self, item: Item) -> Result<(), PulsarError> {
        match item {
            Item::Open(symbol) => {
                let mut backoff = Backoff::new(RETRY);
                loop {
                    let kinds = self.kinds.clone();
                    match self.open(&symbol, &kinds).await {
                        Ok(_) => return Ok(()),
                        Err(e) => {
                            tracing::warn!(symbol = %symbol, error = %e, "cannot create producers yet; retrying");
                            if !backoff.wait(&self.shutdown).await {
                                // Shutting down: nothing was sent for this symbol, nothing is
                                // lost by not opening it. A tick behind it still tries.
                                return Ok(());
                            }
                        }
                    }
                }
            }
            Item::Close(symbol) => {
                if let Some(p) = self.producers.remove(&symbol) {
                    // Receipts of its ticks are still awaited through `in_flight`; closing
                    // flushes what is batched first.
                    p.close(&symbol).await;
                }
                Ok(())
            }
            Item::Tick { tick, arrived } => self.send(tick, arrived).await,
        }
    }

    /// Makes sure the symbol has a producer for each of `kinds`.
    async fn open(&mut self, symbol: &Symbol, kinds: &[TickKind]) -> Result<(), PulsarError> {
        for &kind in kinds {
            self.producer(symbol, kind).await?;
        }
        Ok(())
    }

    /// The symbol's producer of `kind`, created if needed.
    async fn producer(
        &mut self,
        symbol: &Symbol,
        kind: TickKind,
    ) -> Result<&mut TickProducer, PulsarError> {
        let producers = self.producers.entry(symbol.clone()).or_default();
        let index = match producers.0.iter().position(|(k, _)| *k == kind) {
            Some(index) => index,
            None => {
                self.ready
                    .set_not_ready(format!("creating the producers of {symbol}"));
                let topic = TopicName::data(Namespace::Realtime, self.source, symbol, kind)?;
                let producer = self.client.tick_producer(&topic).await?;
                producers.0.push((kind, producer));
                self.ready.set_ready();
                producers.0.len() - 1
            }
        };
        Ok(&mut producers.0[index].1)
    }

    async fn send(&mut self, tick: Tick, arrived: Instant) -> Result<(), PulsarError> {
        let mut backoff = Backoff::new(RETRY);
        loop {
            match self.try_send(&tick).await {
                Ok(receipt) => {
                    self.in_flight.push(Box::pin(async move {
                        let result = receipt.await.map(|_| ());
                        (result, tick, arrived)
                    }));
                    return Ok(());
                }
                // A tick for the wrong topic is a bug, not weather: fail loudly.
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => {
                    self.metrics.publish_retries.inc();
                    if let Some(suppressed) = self.errors.check() {
                        tracing::warn!(error = %e, symbol = %tick.symbol(), suppressed, "publish failed; retrying");
                    }
                    if !backoff.wait(&self.shutdown).await {
                        // Shutting down and Pulsar does not take it: say so, loudly.
                        return Err(e);
                    }
                }
            }
        }
    }

    async fn try_send(
        &mut self,
        tick: &Tick,
    ) -> Result<
        impl Future<Output = Result<tickflow_pulsar::MessageId, PulsarError>> + use<>,
        PulsarError,
    > {
        // Normally opened by `Item::Open`; a gap of a symbol closed meanwhile, or a tick that
        // raced a removal, opens on demand rather than being lost.
        self.producer(tick.symbol(), tick.kind())
            .await?
            .send(tick)
            .await
    }

    async fn receipt(
        &mut self,
        (result, tick, arrived): (Result<(), PulsarError>, Tick, Instant),
    ) -> Result<(), PulsarError> {
        match result {
            Ok(()) => {
                self.metrics
                    .published
                    .get_or_create(&KindLabel {
                        kind: kind_label(&tick),
                    })
                    .inc();
                if !matches!(tick, Tick::Gap(_)) {
                    self.metrics
                        .publish_latency
                        .observe(arrived.elapsed().as_secs_f64());
                }
                Ok(())
            }
            Err(e) => {
                self.metrics.publish_retries.inc();
                if let Some(suppressed) = self.errors.check() {
                    tracing::warn!(error = %e, symbol = %tick.symbol(), suppressed, "publish failed; sending again");
                }
                self.send(tick, arrived).await
            }
        }
    }
}
