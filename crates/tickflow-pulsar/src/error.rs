use std::time::Duration;

use tickflow_schema::TickKind;

use crate::TopicName;

/// What went wrong talking to Pulsar.
#[derive(Debug, thiserror::Error)]
pub enum PulsarError {
    /// The first connection could not be made.
    #[error("cannot reach Pulsar at {url} within {}s ({reason}): check that the broker runs (`make infra`) and that the Pulsar URL is right", waited.as_secs())]
    Unreachable {
        /// The service URL tried.
        url: String,
        /// How long we tried.
        waited: Duration,
        /// What the last attempt saw.
        reason: String,
    },
    /// The URL is not a `pulsar://` or `pulsar+ssl://` URL.
    #[error("invalid Pulsar URL {0:?}: expected pulsar://host:port or pulsar+ssl://host:port")]
    BadUrl(String),
    /// A tick was handed to the producer of another topic.
    #[error("a {kind} tick for {source_name} {symbol} does not belong on {topic}")]
    TopicMismatch {
        /// The producer's topic.
        topic: TopicName,
        /// The tick's source.
        source_name: String,
        /// The tick's symbol.
        symbol: String,
        /// The tick's kind.
        kind: TickKind,
    },
    /// A topic name could not be built.
    #[error(transparent)]
    Topic(#[from] crate::TopicError),
    /// Anything the client reported: lookups, sends, acks, timeouts.
    #[error("pulsar {op} failed: {source}")]
    Client {
        /// What we were doing.
        op: &'static str,
        /// The client's error.
        #[source]
        source: pulsar::Error,
    },
}

impl PulsarError {
    pub(crate) fn client(op: &'static str) -> impl FnOnce(pulsar::Error) -> Self {
        move |source| Self::Client { op, source }
    }

    /// Whether trying again later may succeed (a broker restart, a timeout), as opposed to a
    /// configuration or programming error that will fail the same way.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PulsarError::Unreachable { .. } | PulsarError::Client { .. }
        )
    }
}
