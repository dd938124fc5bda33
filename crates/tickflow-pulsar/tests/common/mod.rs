//! Shared test helpers: the real Pulsar that `make test` (or `make infra`) started.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failed setup should stop the run loudly"
)]

use std::str::FromStr;
use std::time::Duration;

use tickflow_pulsar::Namespace;
use tickflow_pulsar::admin::AdminClient;
use tickflow_pulsar::{
    ConsumerSpec, InitialPosition, PulsarClient, PulsarConfig, SubscriptionType, TickConsumer,
    TopicName, TopicSelection,
};
use tickflow_schema::{Decimal, Side, Source, Symbol, Tick, TickKind, Trade, UnixNanos};

/// Settings for the broker under test: `PULSAR_URL` and `PULSAR_ADMIN_URL` from `.tickflow/env`,
/// or the defaults.
pub fn config() -> PulsarConfig {
    let mut c = PulsarConfig::default();
    if let Ok(url) = std::env::var("PULSAR_URL") {
        c.url = url;
    }
    if let Ok(url) = std::env::var("PULSAR_ADMIN_URL") {
        c.admin_url = url;
    }
    c
}

/// A connected client and an admin client, with the tenant and namespaces in place.
pub async fn pulsar() -> (PulsarClient, AdminClient) {
    let cfg = config();
    let admin = AdminClient::new(&cfg.admin_url).unwrap();
    admin
        .provision_layout()
        .await
        .unwrap_or_else(|e| panic!("is Pulsar running? run `make infra` first: {e}"));
    let client = PulsarClient::connect(&cfg, "tickflow-pulsar-test")
        .await
        .unwrap();
    (client, admin)
}

/// A symbol no other test run uses: `T1A2B3C4/USD`.
pub fn unique_symbol() -> Symbol {
    let id = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    Symbol::parse(&format!("T{}/USD", &id[..10])).unwrap()
}

/// The `i`th trade of a deterministic stream: prices and sizes with varied scales.
pub fn trade(symbol: &Symbol, i: u64) -> Tick {
    let price = Decimal::from_str(&format!("{}.{}", 100_000 + i % 977, i % 10)).unwrap();
    let size = Decimal::from_str(&format!("0.{:08}", 1 + i * 7 % 99_999_999)).unwrap();
    let event = 1_700_000_000_000_000_000i64 + i64::try_from(i).unwrap() * 1_000_123;
    Tick::Trade(Trade {
        source: Source::Kraken,
        symbol: symbol.clone(),
        venue_symbol: symbol.as_str().replace("BTC", "XBT").into(),
        event_time: UnixNanos(event),
        received_at: UnixNanos(event + 2_500_001),
        price,
        size,
        side: if i.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        trade_id: i.to_string().into(),
    })
}

/// Polls `f` until it returns `Some`, at most `limit`.
pub async fn poll<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An exclusive consumer of `topic` that starts at the oldest message.
pub async fn consumer(
    client: &PulsarClient,
    topic: &TopicName,
    subscription: &str,
) -> TickConsumer {
    client
        .tick_consumer(ConsumerSpec {
            topics: TopicSelection::Topics(vec![topic.clone()]),
            subscription: subscription.into(),
            sub_type: SubscriptionType::Exclusive,
            initial_position: InitialPosition::Earliest,
            consumer_name: None,
        })
        .await
        .unwrap()
}

/// A new, empty topic for a symbol no other run uses, created on the broker.
pub async fn new_topic(
    admin: &AdminClient,
    ns: Namespace,
    source: Source,
    kind: TickKind,
) -> (Symbol, TopicName) {
    let symbol = unique_symbol();
    let topic = TopicName::data(ns, source, &symbol, kind).unwrap();
    admin.create_topic(&topic).await.unwrap();
    (symbol, topic)
}
