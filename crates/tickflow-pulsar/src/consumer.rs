use std::time::Duration;

use futures::StreamExt;
use tickflow_schema::{SchemaError, Tick};

use crate::{InitialPosition, Namespace, PulsarClient, PulsarError, SubscriptionType, TopicName};

/// Which topics a consumer reads.
#[derive(Debug, Clone)]
pub enum TopicSelection {
    /// These topics.
    Topics(Vec<TopicName>),
    /// Every topic of the namespaces whose local name matches `pattern` (a regex over the full
    /// name), re-checked every `refresh` so new topics are picked up without a restart.
    Pattern {
        /// Namespaces to look in.
        namespaces: Vec<Namespace>,
        /// Regex over the full topic name.
        pattern: String,
        /// How often to look for new topics.
        refresh: Duration,
    },
}

/// What to subscribe to and how.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The topics.
    pub topics: TopicSelection,
    /// Subscription name (durable).
    pub subscription: String,
    /// How messages spread over the subscription's consumers.
    pub sub_type: SubscriptionType,
    /// Where a new subscription starts.
    pub initial_position: InitialPosition,
    /// Consumer name shown in broker stats.
    pub consumer_name: Option<String>,
}

/// The stored entry a message belongs to. With producer batching, many messages share an entry,
/// and acking any one of them acks the whole entry in this client (`PULSAR.md` §3.8): ack an entry
/// only when every message of it has been processed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId {
    /// The topic (a partition's own name for partitioned topics).
    pub topic: String,
    /// Ledger.
    pub ledger: u64,
    /// Entry.
    pub entry: u64,
}

/// One received message.
pub struct Delivery {
    message: pulsar::consumer::Message<Vec<u8>>,
    /// Which of the consumer's inner consumers delivered it (acks go back there).
    from: usize,
    /// The decoded tick, or why the payload is not one (skip and count it, or dead-letter it).
    pub tick: Result<Tick, SchemaError>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("topic", &self.message.topic)
            .field("entry", &self.entry())
            .field("batch_index", &self.batch_index())
            .field("tick", &self.tick)
            .finish()
    }
}

impl Delivery {
    /// The topic it came from.
    pub fn topic(&self) -> &str {
        &self.message.topic
    }

    /// The stored entry.
    pub fn entry(&self) -> EntryId {
        let id = self.message.message_id();
        EntryId {
            topic: self.message.topic.clone(),
            ledger: id.ledger_id,
            entry: id.entry_id,
        }
    }

    /// Position within its batch (0 when not batched).
    pub fn batch_index(&self) -> u32 {
        self.message
            .message_id()
            .batch_index
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(0)
    }

    /// How many messages its entry holds (1 when not batched).
    pub fn batch_size(&self) -> u32 {
        self.message
            .message_id
            .batch_size
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1)
    }

    /// The message key (the canonical symbol for tickflow's producers).
    pub fn key(&self) -> Option<&str> {
        self.message.metadata().partition_key.as_deref()
    }

    /// The Pulsar event time in ms, when set.
    pub fn event_time_ms(&self) -> Option<u64> {
        self.message.metadata().event_time
    }

    /// The message's properties (a dead letter's `reason`, `origin_topic`, ...).
    pub fn properties(&self) -> std::collections::HashMap<String, String> {
        self.message
            .metadata()
            .properties
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect()
    }

    /// The raw payload.
    pub fn payload(&self) -> &[u8] {
        &self.message.payload.data
    }
}

/// Receives ticks on a subscription. Reconnects as the client does: for ever, capped backoff.
///
/// A topic pattern over several namespaces is one inner consumer per namespace (the Rust
/// client looks a pattern up in a single namespace), all on the same subscription; their
/// messages are merged and each acknowledgement goes back to the consumer that delivered it.
pub struct TickConsumer {
    inner: Vec<pulsar::Consumer<Vec<u8>, pulsar::TokioExecutor>>,
}

impl std::fmt::Debug for TickConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickConsumer")
            .field(
                "subscription",
                &self.inner.first().map(|c| c.subscription().to_owned()),
            )
            .finish_non_exhaustive()
    }
}

impl TickConsumer {
    pub(crate) async fn build(
        client: &PulsarClient,
        spec: ConsumerSpec,
    ) -> Result<Self, PulsarError> {
        Self::build_with(client, spec, true).await
    }

    /// `durable: false` makes a reader: its subscription vanishes with it and keeps no backlog.
    pub(crate) async fn build_with(
        client: &PulsarClient,
        spec: ConsumerSpec,
        durable: bool,
    ) -> Result<Self, PulsarError> {
        let options = pulsar::ConsumerOptions {
            receiver_queue_size: Some(client.config().receiver_queue.max(1)),
            initial_position: match spec.initial_position {
                InitialPosition::Earliest => pulsar::consumer::InitialPosition::Earliest,
                InitialPosition::Latest => pulsar::consumer::InitialPosition::Latest,
            },
            durable: Some(durable),
            ..Default::default()
        };
        let builder = || {
            let mut b = client
                .raw()
                .consumer()
                .with_subscription(spec.subscription.clone())
                .with_subscription_type(spec.sub_type.into())
                .with_batch_size(client.config().receiver_queue.max(1))
                .with_options(options.clone());
            if let Some(name) = &spec.consumer_name {
                b = b.with_consumer_name(name.clone());
            }
            b
        };
        let mut inner = Vec::new();
        match &spec.topics {
            TopicSelection::Topics(topics) => {
                let consumer = builder()
                    .with_topics(topics.iter().map(ToString::to_string))
                    .build()
                    .await
                    .map_err(PulsarError::client("subscribe"))?;
                inner.push(consumer);
            }
            TopicSelection::Pattern {
                namespaces,
                pattern,
                refresh,
            } => {
                let regex = regex::Regex::new(pattern).map_err(|e| PulsarError::Client {
                    op: "compile topic pattern",
                    source: pulsar::Error::Custom(e.to_string()),
                })?;
                for ns in namespaces {
                    let consumer = builder()
                        .with_topic_regex(regex.clone())
                        .with_topic_refresh(*refresh)
                        .with_lookup_namespace(ns.qualified())
                        .build()
                        .await
                        .map_err(PulsarError::client("subscribe"))?;
                    inner.push(consumer);
                }
            }
        }
        if inner.is_empty() {
            return Err(PulsarError::Client {
                op: "subscribe",
                source: pulsar::Error::Custom(
                    "a topic pattern needs at least one namespace".into(),
                ),
            });
        }
        Ok(Self { inner })
    }

    /// The next message; `None` when the consumer was closed.
    pub async fn next(&mut self) -> Option<Result<Delivery, PulsarError>> {
        let (msg, from) = if self.inner.len() == 1 {
            (self.inner.first_mut()?.next().await?, 0)
        } else {
            // The first inner consumer with a message; a closed one is skipped unless all are.
            let mut open: Vec<usize> = (0..self.inner.len()).collect();
            loop {
                if open.is_empty() {
                    return None;
                }
                let nexts = self
                    .inner
                    .iter_mut()
                    .enumerate()
                    .filter(|(i, _)| open.contains(i))
                    .map(|(i, c)| Box::pin(async move { (c.next().await, i) }));
                let ((msg, i), _, _) = futures::future::select_all(nexts).await;
                match msg {
                    Some(m) => break (m, i),
                    None => open.retain(|&j| j != i),
                }
            }
        };
        Some(msg.map_err(PulsarError::client("receive")).map(|message| {
            let tick = Tick::decode(&message.payload.data);
            Delivery {
                message,
                from,
                tick,
            }
        }))
    }

    fn delivered_by(
        &mut self,
        delivery: &Delivery,
    ) -> Result<&mut pulsar::Consumer<Vec<u8>, pulsar::TokioExecutor>, PulsarError> {
        self.inner
            .get_mut(delivery.from)
            .ok_or_else(|| PulsarError::Client {
                op: "ack",
                source: pulsar::Error::Custom("delivery from another consumer".into()),
            })
    }

    /// Acknowledges a delivery, and with it (in this client) its whole batch entry.
    pub async fn ack(&mut self, delivery: &Delivery) -> Result<(), PulsarError> {
        self.delivered_by(delivery)?
            .ack(&delivery.message)
            .await
            .map_err(|e| PulsarError::Client {
                op: "ack",
                source: e.into(),
            })
    }

    /// Asks for a delivery to be redelivered (immediately: this client has no nack delay).
    pub async fn nack(&mut self, delivery: &Delivery) -> Result<(), PulsarError> {
        self.delivered_by(delivery)?
            .nack(&delivery.message)
            .await
            .map_err(|e| PulsarError::Client {
                op: "nack",
                source: e.into(),
            })
    }

    /// The topics currently subscribed (after pattern expansion).
    pub fn topics(&self) -> Vec<String> {
        self.inner.iter().flat_map(|c| c.topics()).collect()
    }

    /// Closes the consumer on the broker.
    pub async fn close(self) -> Result<(), PulsarError> {
        for mut c in self.inner {
            c.close()
                .await
                .map_err(PulsarError::client("close consumer"))?;
        }
        Ok(())
    }
}
