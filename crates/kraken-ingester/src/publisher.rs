//! The queue's consumer: one producer pair per symbol (`…/realtime/kraken.<slug>.trade` and
//! `.quote`), every tick sent and held until Pulsar's receipt. A failed receipt sends the tick
//! again (the sink's unique keys make a double delivery harmless); nothing is dropped. At most
//! `max_in_flight` ticks wait for receipts; beyond that the publisher stops taking from the
//! queue, the queue fills, and the socket reader waits.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tickflow_pulsar::{Namespace, PulsarClient, PulsarError, TickProducer, TopicName};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::admin::Readiness;
use tickflow_runtime::backoff::{Backoff, BackoffConfig};
use tickflow_runtime::log_limit::LogLimiter;
use tickflow_schema::{Source, Symbol, Tick, TickKind};
use tokio::sync::mpsc;

use crate::metrics::{KindLabel, Metrics};
use crate::session::Item;

/// Pacing of retries after a failed send.
const RETRY: BackoffConfig = BackoffConfig {
    initial_ms: 100,
    max_ms: 5_000,
    multiplier: 2,
    reset_after_ms: 60_000,
};

type Receipt = Pin<Box<dyn Future<Output = (Result<(), PulsarError>, Tick, Instant)> + Send>>;

struct Producers {
    trade: TickProducer,
    quote: TickProducer,
}

impl Producers {
    fn for_kind(&mut self, kind: TickKind) -> &mut TickProducer {
        match kind {
            TickKind::Trade => &mut self.trade,
            TickKind::Quote => &mut self.quote,
        }
    }
}

/// Drains the queue into Pulsar until the queue's senders are gone, then waits for every
/// receipt and closes the producers.
pub(crate) struct Publisher {
    client: PulsarClient,
    metrics: Metrics,
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
    pub(crate) fn new(
        client: PulsarClient,
        metrics: Metrics,
        ready: Readiness,
        max_in_flight: usize,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            client,
            metrics,
            ready,
            producers: HashMap::new(),
            in_flight: FuturesUnordered::new(),
            max_in_flight: max_in_flight.max(1),
            errors: LogLimiter::new(Duration::from_secs(10)),
            shutdown,
        }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Item>) -> Result<(), PulsarError> {
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
            for producer in [p.trade, p.quote] {
                if let Err(e) = producer.close().await {
                    tracing::warn!(symbol = %symbol, error = %e, "closing producer failed");
                }
            }
        }
        Ok(())
    }

    async fn handle(&mut self, item: Item) -> Result<(), PulsarError> {
        match item {
            Item::Open(symbol) => {
                let mut backoff = Backoff::new(RETRY);
                loop {
                    match self.open(&symbol).await {
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
                    for producer in [p.trade, p.quote] {
                        if let Err(e) = producer.close().await {
                            tracing::warn!(symbol = %symbol, error = %e, "closing producer failed");
                        }
                    }
                }
                Ok(())
            }
            Item::Tick { tick, arrived } => self.send(tick, arrived).await,
        }
    }

    async fn open(&mut self, symbol: &Symbol) -> Result<&mut Producers, PulsarError> {
        match self.producers.entry(symbol.clone()) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(v) => {
                self.ready
                    .set_not_ready(format!("creating the producers of {symbol}"));
                let topic =
                    |kind| TopicName::data(Namespace::Realtime, Source::Kraken, symbol, kind);
                let trade = self.client.tick_producer(&topic(TickKind::Trade)?).await?;
                let quote = self.client.tick_producer(&topic(TickKind::Quote)?).await?;
                self.ready.set_ready();
                Ok(v.insert(Producers { trade, quote }))
            }
        }
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
        let producers = self.open(tick.symbol()).await?;
        producers.for_kind(tick.kind()).send(tick).await
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
