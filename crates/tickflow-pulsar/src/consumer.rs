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

type RawConsumer = pulsar::Consumer<Vec<u8>, pulsar::TokioExecutor>;

/// Receives ticks on a subscription. Reconnects as the client does: for ever, capped backoff.
///
/// It is a set of inner consumers, all on the same subscription; their messages are merged and
/// each acknowledgement goes back to the consumer that delivered it.
///
/// A topic pattern is expanded here and not by the Rust client's own regex refresh: that one
/// starts a new round of subscriptions every `refresh` and drops the round still in flight, and a
/// dropped round leaves consumers registered on the broker that never ask for messages. On a
/// Key_Shared subscription such a consumer owns a share of the key ranges, so the messages of
/// those keys stall (seen as the sink missing a symbol's last trades after a broker restart).
/// Instead, one background task lists the namespaces every `refresh` and subscribes to the new
/// topics that match, each round finished before the next one starts, and hands the new
/// consumer over.
pub struct TickConsumer {
    inner: Vec<RawConsumer>,
    /// Consumers for topics the pattern matched after the start.
    discovered: Option<tokio::sync::mpsc::Receiver<RawConsumer>>,
    /// The task that finds them; stopped with the consumer.
    discovery: Option<tokio::task::AbortHandle>,
}

impl Drop for TickConsumer {
    fn drop(&mut self) {
        if let Some(task) = &self.discovery {
            task.abort();
        }
    }
}

/// How every inner consumer of one [`TickConsumer`] is made.
#[derive(Clone)]
struct Recipe {
    pulsar: pulsar::Pulsar<pulsar::TokioExecutor>,
    subscription: String,
    sub_type: pulsar::SubType,
    batch_size: u32,
    options: pulsar::ConsumerOptions,
    consumer_name: Option<String>,
}

impl Recipe {
    async fn subscribe(&self, topics: Vec<String>) -> Result<RawConsumer, PulsarError> {
        let mut b = self
            .pulsar
            .consumer()
            .with_subscription(self.subscription.clone())
            .with_subscription_type(self.sub_type)
            .with_batch_size(self.batch_size)
            .with_options(self.options.clone())
            .with_topics(topics);
        if let Some(name) = &self.consumer_name {
            b = b.with_consumer_name(name.clone());
        }
        b.build().await.map_err(PulsarError::client("subscribe"))
    }
}

/// The topics of `namespaces` whose full name matches `regex`, sorted.
async fn matching_topics(
    pulsar: &pulsar::Pulsar<pulsar::TokioExecutor>,
    namespaces: &[Namespace],
    regex: &regex::Regex,
) -> Result<Vec<String>, PulsarError> {
    let mut out = Vec::new();
    for ns in namespaces {
        let topics = pulsar
            .get_topics_of_namespace(
                ns.qualified(),
                pulsar::message::proto::command_get_topics_of_namespace::Mode::Persistent,
            )
            .await
            .map_err(PulsarError::client("list topics"))?;
        out.extend(topics.into_iter().filter(|t| regex.is_match(t)));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every `refresh`, subscribes to the topics matching the pattern that are not in `known` yet and
/// sends the consumer on; ends when the [`TickConsumer`] is gone.
async fn discover(
    recipe: Recipe,
    namespaces: Vec<Namespace>,
    regex: regex::Regex,
    refresh: Duration,
    mut known: std::collections::BTreeSet<String>,
    found: tokio::sync::mpsc::Sender<RawConsumer>,
) {
    loop {
        tokio::time::sleep(refresh).await;
        if found.is_closed() {
            return;
        }
        let new: Vec<String> = match matching_topics(&recipe.pulsar, &namespaces, &regex).await {
            Ok(topics) => topics.into_iter().filter(|t| !known.contains(t)).collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot list topics for the pattern; trying again at the next refresh");
                continue;
            }
        };
        if new.is_empty() {
            continue;
        }
        match recipe.subscribe(new.clone()).await {
            Ok(consumer) => {
                tracing::info!(topics = ?new, "subscribed to new topics matching the pattern");
                known.extend(new);
                if found.send(consumer).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%error, topics = ?new, "cannot subscribe to new topics; trying again at the next refresh");
            }
        }
    }
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
        let recipe = Recipe {
            pulsar: client.raw().clone(),
            subscription: spec.subscription.clone(),
            sub_type: spec.sub_type.into(),
            batch_size: client.config().receiver_queue.max(1),
            options,
            consumer_name: spec.consumer_name.clone(),
        };
        match &spec.topics {
            TopicSelection::Topics(topics) => {
                let consumer = recipe
                    .subscribe(topics.iter().map(ToString::to_string).collect())
                    .await?;
                Ok(Self {
                    inner: vec![consumer],
                    discovered: None,
                    discovery: None,
                })
            }
            TopicSelection::Pattern {
                namespaces,
                pattern,
                refresh,
            } => {
                if namespaces.is_empty() {
                    return Err(PulsarError::Client {
                        op: "subscribe",
                        source: pulsar::Error::Custom(
                            "a topic pattern needs at least one namespace".into(),
                        ),
                    });
                }
                let regex = regex::Regex::new(pattern).map_err(|e| PulsarError::Client {
                    op: "compile topic pattern",
                    source: pulsar::Error::Custom(e.to_string()),
                })?;
                let topics = matching_topics(&recipe.pulsar, namespaces, &regex).await?;
                let mut inner = Vec::new();
                if !topics.is_empty() {
                    inner.push(recipe.subscribe(topics.clone()).await?);
                }
                let (found, discovered) = tokio::sync::mpsc::channel(4);
                let task = tokio::spawn(discover(
                    recipe,
                    namespaces.clone(),
                    regex,
                    *refresh,
                    topics.into_iter().collect(),
                    found,
                ));
                Ok(Self {
                    inner,
                    discovered: Some(discovered),
                    discovery: Some(task.abort_handle()),
                })
            }
        }
    }

    /// The next message; `None` when the consumer was closed. Cancel-safe: a message is only
    /// taken when it is returned.
    pub async fn next(&mut self) -> Option<Result<Delivery, PulsarError>> {
        loop {
            let Self {
                inner, discovered, ..
            } = self;
            let found = async {
                match discovered {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            if inner.is_empty() {
                // A pattern that matches nothing yet: wait for its first topics.
                match found.await {
                    Some(consumer) => {
                        inner.push(consumer);
                        continue;
                    }
                    None => return None,
                }
            }
            tokio::select! {
                biased;
                Some(consumer) = found => {
                    inner.push(consumer);
                }
                next = next_message(inner) => {
                    let (msg, from) = next?;
                    return Some(msg.map_err(PulsarError::client("receive")).map(|message| {
                        let tick = Tick::decode(&message.payload.data);
                        Delivery {
                            message,
                            from,
                            tick,
                        }
                    }));
                }
            }
        }
    }

    fn delivered_by(&mut self, delivery: &Delivery) -> Result<&mut RawConsumer, PulsarError> {
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
    pub async fn close(mut self) -> Result<(), PulsarError> {
        if let Some(task) = self.discovery.take() {
            task.abort();
        }
        for mut c in std::mem::take(&mut self.inner) {
            c.close()
                .await
                .map_err(PulsarError::client("close consumer"))?;
        }
        Ok(())
    }
}

/// The next message of the first inner consumer that has one (a closed one is skipped unless all
/// are), and which one it was; `None` when all are closed.
#[allow(
    clippy::type_complexity,
    reason = "the client's message result and the index of the consumer"
)]
async fn next_message(
    inner: &mut [RawConsumer],
) -> Option<(
    Result<pulsar::consumer::Message<Vec<u8>>, pulsar::Error>,
    usize,
)> {
    if let [only] = inner {
        return Some((only.next().await?, 0));
    }
    let mut open: Vec<usize> = (0..inner.len()).collect();
    loop {
        if open.is_empty() {
            return None;
        }
        let nexts = inner
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| open.contains(i))
            .map(|(i, c)| Box::pin(async move { (c.next().await, i) }));
        let ((msg, i), _, _) = futures::future::select_all(nexts).await;
        match msg {
            Some(m) => return Some((m, i)),
            None => open.retain(|&j| j != i),
        }
    }
}
