use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pulsar::compression::{Compression, CompressionLz4};
use pulsar::routing_policy::RoutingPolicy;
use pulsar::{ConnectionRetryOptions, OperationRetryOptions, Pulsar, TokioExecutor};

use crate::consumer::{ConsumerSpec, TickConsumer};
use crate::producer::TickProducer;
use crate::{PulsarConfig, PulsarError, TopicName};

/// One Pulsar connection pool for the process, cheap to clone.
///
/// Once connected, the client reconnects for ever (capped backoff of
/// [`PulsarConfig::max_backoff_ms`]) instead of the crate's default of giving up after about 40 s,
/// so a broker restart is ridden out. Only the *first* connection is bounded, by
/// [`PulsarConfig::connect_timeout_ms`], so that a service started against a missing broker says
/// so instead of hanging.
#[derive(Clone)]
pub struct PulsarClient {
    inner: Pulsar<TokioExecutor>,
    config: Arc<PulsarConfig>,
    producer_prefix: Arc<str>,
    producers: Arc<AtomicU64>,
}

impl std::fmt::Debug for PulsarClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarClient")
            .field("url", &self.config.url)
            .field("producer_prefix", &self.producer_prefix)
            .finish_non_exhaustive()
    }
}

impl PulsarClient {
    /// Connects. `service` names this process in producer names (`kraken-ingester-<host>-<pid>-<random>`).
    pub async fn connect(config: &PulsarConfig, service: &str) -> Result<Self, PulsarError> {
        let url = config.url.trim().to_owned();
        let hostport = url
            .strip_prefix("pulsar://")
            .or_else(|| url.strip_prefix("pulsar+ssl://"))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .ok_or_else(|| PulsarError::BadUrl(url.clone()))?
            .to_owned();
        let retry = ConnectionRetryOptions {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(config.max_backoff_ms.max(100)),
            max_retries: u32::MAX,
            connection_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(30),
            ..ConnectionRetryOptions::default()
        };
        let operation = OperationRetryOptions {
            operation_timeout: Duration::from_millis(config.operation_timeout_ms),
            retry_delay: Duration::from_millis(500),
            max_retries: None,
        };
        let build = Pulsar::builder(url.clone(), TokioExecutor)
            .with_connection_retry_options(retry)
            .with_operation_retry_options(operation)
            .with_outbound_channel_size(config.outbound_queue.max(1))
            .build();
        let waited = config.connect_timeout();
        let inner = match tokio::time::timeout(waited, build).await {
            Ok(Ok(inner)) => inner,
            Ok(Err(e)) => {
                return Err(PulsarError::Unreachable {
                    url,
                    waited,
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                let reason = probe(&hostport).await;
                return Err(PulsarError::Unreachable {
                    url,
                    waited,
                    reason,
                });
            }
        };
        let host = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "host".into());
        let random = uuid::Uuid::new_v4().simple().to_string();
        let producer_prefix = format!("{service}-{host}-{}-{}", std::process::id(), &random[..8]);
        Ok(Self {
            inner,
            config: Arc::new(config.clone()),
            producer_prefix: producer_prefix.into(),
            producers: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &PulsarConfig {
        &self.config
    }

    /// The underlying client, for what this crate does not wrap.
    pub fn raw(&self) -> &Pulsar<TokioExecutor> {
        &self.inner
    }

    /// A unique producer name: the process prefix and a counter. Unique per process start, so
    /// broker-side deduplication never mistakes a restarted producer's messages (whose sequence
    /// ids restart at 0 in this client) for duplicates.
    pub fn next_producer_name(&self) -> String {
        format!(
            "{}-{}",
            self.producer_prefix,
            self.producers.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A producer for one topic: LZ4, batched, keyed by symbol, blocking when its queue is full.
    pub async fn tick_producer(&self, topic: &TopicName) -> Result<TickProducer, PulsarError> {
        let c = &self.config;
        let options = pulsar::ProducerOptions {
            batch_size: Some(c.batch_max_messages.max(1)),
            batch_byte_size: Some(c.batch_max_bytes.max(1)),
            batch_timeout: Some(Duration::from_millis(c.batch_linger_ms.max(1))),
            compression: Some(Compression::Lz4(CompressionLz4::default())),
            block_queue_if_full: true,
            // Hash the key onto a partition (the crate ignores keys without this).
            routing_policy: Some(RoutingPolicy::RoundRobin),
            ..Default::default()
        };
        let producer = self
            .inner
            .producer()
            .with_topic(topic.to_string())
            .with_name(self.next_producer_name())
            .with_options(options)
            .build()
            .await
            .map_err(PulsarError::client("create producer"))?;
        Ok(TickProducer::new(producer, topic.clone()))
    }

    /// An unbatched producer of raw payloads for a control topic (dead letters, backfill tasks,
    /// status reports), named like every producer of this process.
    pub async fn raw_producer(
        &self,
        topic: &TopicName,
    ) -> Result<pulsar::Producer<TokioExecutor>, PulsarError> {
        self.inner
            .producer()
            .with_topic(topic.to_string())
            .with_name(self.next_producer_name())
            .build()
            .await
            .map_err(PulsarError::client("create producer"))
    }

    /// A consumer as `spec` describes.
    pub async fn tick_consumer(&self, spec: ConsumerSpec) -> Result<TickConsumer, PulsarError> {
        TickConsumer::build(self, spec).await
    }

    /// A reader of `topics` from now on: a non-durable subscription of its own that leaves
    /// nothing behind on the broker (no backlog, no subscription) when dropped.
    pub async fn tick_reader(&self, topics: Vec<TopicName>) -> Result<TickConsumer, PulsarError> {
        let spec = ConsumerSpec {
            topics: crate::TopicSelection::Topics(topics),
            subscription: format!("reader-{}", self.next_producer_name()),
            sub_type: crate::SubscriptionType::Exclusive,
            initial_position: crate::InitialPosition::Latest,
            consumer_name: None,
        };
        TickConsumer::build_with(self, spec, false).await
    }
}

/// Why a TCP connection to the broker fails, for the start-up error.
async fn probe(hostport: &str) -> String {
    match tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(hostport),
    )
    .await
    {
        Ok(Ok(_)) => {
            "the port accepts connections but the Pulsar handshake did not complete".into()
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "connecting timed out".into(),
    }
}
