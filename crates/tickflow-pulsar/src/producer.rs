use std::future::Future;

use tickflow_schema::Tick;

use crate::{PulsarError, TopicName};

/// Where the broker stored a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId {
    /// Ledger.
    pub ledger: u64,
    /// Entry within the ledger (one entry per batch).
    pub entry: u64,
}

/// Publishes the ticks of one topic.
///
/// Each tick is one protobuf `TickMessage` with key = canonical symbol (so Key_Shared and
/// partitioning keep per-symbol order) and event time = the venue's event time in ms. Messages are
/// LZ4-compressed in batches. When the pending queue is full, [`TickProducer::send`] waits: the
/// caller slows down, memory stays bounded, nothing is dropped.
pub struct TickProducer {
    inner: pulsar::Producer<pulsar::TokioExecutor>,
    topic: TopicName,
}

impl std::fmt::Debug for TickProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickProducer")
            .field("topic", &self.topic.to_string())
            .finish_non_exhaustive()
    }
}

impl TickProducer {
    pub(crate) fn new(inner: pulsar::Producer<pulsar::TokioExecutor>, topic: TopicName) -> Self {
        Self { inner, topic }
    }

    /// The topic.
    pub fn topic(&self) -> &TopicName {
        &self.topic
    }

    /// Queues a tick. The returned future resolves when the broker has persisted it (the receipt);
    /// only then is the tick safe. Dropping the future does not cancel the send.
    pub async fn send(
        &mut self,
        tick: &Tick,
    ) -> Result<impl Future<Output = Result<MessageId, PulsarError>> + Send + use<>, PulsarError>
    {
        if let Some((source, symbol, kind)) = self.topic.data_parts()
            && (tick.source() != source || tick.symbol() != symbol || tick.kind() != kind)
        {
            return Err(PulsarError::TopicMismatch {
                topic: self.topic.clone(),
                source_name: tick.source().to_string(),
                symbol: tick.symbol().to_string(),
                kind: tick.kind(),
            });
        }
        let message = pulsar::producer::Message {
            payload: tick.encode(),
            partition_key: Some(tick.symbol().as_str().to_owned()),
            event_time: Some(tick.event_time().as_millis_u64()),
            ..Default::default()
        };
        let receipt = self
            .inner
            .send_non_blocking(message)
            .await
            .map_err(PulsarError::client("send"))?;
        Ok(async move {
            let receipt = receipt
                .await
                .map_err(PulsarError::client("await send receipt"))?;
            let id = receipt.message_id.unwrap_or_default();
            Ok(MessageId {
                ledger: id.ledger_id,
                entry: id.entry_id,
            })
        })
    }

    /// Sends what is batched now instead of waiting for the batch to fill or linger out.
    pub async fn flush(&mut self) -> Result<(), PulsarError> {
        self.inner
            .send_batch()
            .await
            .map_err(PulsarError::client("flush"))
    }

    /// Flushes and closes the producer on the broker.
    pub async fn close(mut self) -> Result<(), PulsarError> {
        self.flush().await?;
        self.inner
            .close()
            .await
            .map_err(PulsarError::client("close producer"))
    }
}
