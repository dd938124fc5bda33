//! tickflow's Pulsar wiring.
//!
//! - [`topic`]: topic names built from (namespace, source, symbol, kind) with the slug rules of
//!   `ARCHITECTURE.md` (`persistent://market-data/realtime/kraken.btc-usd.trade`), and parsing back.
//! - [`PulsarConfig`]: the client settings every service embeds in its own config.
//! - [`PulsarClient`]: one connection pool per process, with connection retries that survive a
//!   broker restart, a first connect that fails fast with a clear error, and a process-unique
//!   producer name.
//! - [`TickProducer`]: LZ4, batching, key = canonical symbol, event time = the venue's, backpressure
//!   when the pending queue is full.
//! - [`TickConsumer`]: decodes [`tickflow_schema::Tick`]s, exposes the batch position of every
//!   message so a consumer can ack whole entries only (see `PULSAR.md` §3.8).
//! - [`admin`]: a small REST client for tenant, namespace, policies and topics, where a 409 on
//!   create means "already there".

pub mod admin;
mod client;
mod config;
mod consumer;
mod dead_letter;
mod error;
mod producer;
pub mod topic;

pub use client::PulsarClient;
pub use config::{InitialPosition, PulsarConfig, SubscriptionType};
pub use consumer::{ConsumerSpec, Delivery, EntryId, TickConsumer, TopicSelection};
pub use dead_letter::{DeadLetter, DeadLetterProducer};
pub use error::PulsarError;
pub use producer::{MessageId, TickProducer};
pub use topic::{Namespace, TENANT, TopicError, TopicName};
