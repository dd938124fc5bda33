//! Dead letters: messages a consumer cannot process (undecodable, or refused by the database),
//! moved to `persistent://market-data/control/dlq` with the original bytes and why.

use std::collections::HashMap;

use crate::{PulsarClient, PulsarError, TopicName};

/// Why and where from, as message properties on the dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The original payload, unchanged.
    pub payload: Vec<u8>,
    /// The original message key, if any.
    pub key: Option<String>,
    /// The topic it was read from (property `origin_topic`).
    pub origin_topic: String,
    /// Ledger:entry:batch-index of the original (property `origin_message_id`).
    pub origin_message_id: String,
    /// What went wrong (property `reason`), one line.
    pub reason: String,
    /// Who gave up on it (property `consumer`), e.g. `timescale-sink`.
    pub consumer: String,
}

/// Publishes dead letters (not batched: each one is a single, acknowledged write).
pub struct DeadLetterProducer {
    inner: pulsar::Producer<pulsar::TokioExecutor>,
}

impl std::fmt::Debug for DeadLetterProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterProducer").finish_non_exhaustive()
    }
}

impl DeadLetterProducer {
    /// A producer of `persistent://market-data/control/dlq`.
    pub async fn new(client: &PulsarClient) -> Result<Self, PulsarError> {
        let topic = TopicName::dead_letters();
        let inner = client.raw_producer(&topic).await?;
        Ok(Self { inner })
    }

    /// Sends one dead letter and waits until the broker has it.
    pub async fn send(&mut self, letter: DeadLetter) -> Result<(), PulsarError> {
        let properties = HashMap::from([
            ("origin_topic".to_owned(), letter.origin_topic),
            ("origin_message_id".to_owned(), letter.origin_message_id),
            ("reason".to_owned(), letter.reason),
            ("consumer".to_owned(), letter.consumer),
        ]);
        let message = pulsar::producer::Message {
            payload: letter.payload,
            properties,
            partition_key: letter.key,
            ..Default::default()
        };
        self.inner
            .send_non_blocking(message)
            .await
            .map_err(PulsarError::client("send dead letter"))?
            .await
            .map_err(PulsarError::client("await dead-letter receipt"))?;
        Ok(())
    }
}
