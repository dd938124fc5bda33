//! Test support shared by the services' integration tests (a dev-dependency only): the real
//! Pulsar that `make test` starts, a reader of the ticks on given topics, polling for a
//! condition (never sleeping to synchronize), the admin endpoints, and the fixtures in
//! `../shared/fixtures`. Failures panic with a message saying what was expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test support: a failed setup must stop the test loudly"
)]

pub mod process;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tickflow_pulsar::admin::AdminClient;
use tickflow_pulsar::{
    ConsumerSpec, InitialPosition, PulsarClient, PulsarConfig, SubscriptionType, TickConsumer,
    TopicName, TopicSelection,
};
use tickflow_schema::{Gap, Quote, Tick, Trade};

/// The Pulsar of `make test` (`PULSAR_URL`, `PULSAR_ADMIN_URL`, else the defaults).
pub fn pulsar_config() -> PulsarConfig {
    let mut c = PulsarConfig::default();
    if let Ok(url) = std::env::var("PULSAR_URL") {
        c.url = url;
    }
    if let Ok(url) = std::env::var("PULSAR_ADMIN_URL") {
        c.admin_url = url;
    }
    c
}

/// What the control plane does in production: the tenant and namespaces (idempotent).
pub async fn provision() {
    let admin = AdminClient::new(&pulsar_config().admin_url).unwrap();
    admin
        .provision_layout()
        .await
        .unwrap_or_else(|e| panic!("is Pulsar running? `make infra`: {e}"));
}

/// Reads every tick published on some topics.
#[derive(Debug)]
pub struct Reader {
    consumer: TickConsumer,
    /// Everything read so far, in order.
    pub ticks: Vec<Tick>,
}

impl Reader {
    /// A reader of `topics` from `position` on a fresh exclusive subscription.
    pub async fn new(topics: Vec<TopicName>, position: InitialPosition) -> Self {
        provision().await;
        let client = PulsarClient::connect(&pulsar_config(), "tickflow-test")
            .await
            .unwrap();
        let consumer = client
            .tick_consumer(ConsumerSpec {
                topics: TopicSelection::Topics(topics),
                subscription: format!("test-{}", uuid::Uuid::new_v4().simple()),
                sub_type: SubscriptionType::Exclusive,
                initial_position: position,
                consumer_name: None,
            })
            .await
            .unwrap();
        Self {
            consumer,
            ticks: Vec::new(),
        }
    }

    async fn take(&mut self, wait: Duration) {
        if let Ok(delivery) = tokio::time::timeout(wait, self.consumer.next()).await {
            let delivery = delivery.unwrap().unwrap();
            let tick = delivery.tick.as_ref().unwrap().clone();
            self.consumer.ack(&delivery).await.unwrap();
            self.ticks.push(tick);
        }
    }

    /// Reads until `done(ticks)` holds, at most `limit` (then panics with the last ticks).
    pub async fn until(&mut self, limit: Duration, done: impl Fn(&[Tick]) -> bool) -> &[Tick] {
        let deadline = tokio::time::Instant::now() + limit;
        while !done(&self.ticks) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                panic!(
                    "condition not met within {limit:?}; got {} ticks: {:#?}",
                    self.ticks.len(),
                    self.ticks.iter().rev().take(5).collect::<Vec<_>>()
                );
            }
            self.take(left.min(Duration::from_millis(500))).await;
        }
        &self.ticks
    }

    /// Reads for `period` more and returns everything (to prove that nothing extra arrives).
    pub async fn settle(&mut self, period: Duration) -> &[Tick] {
        let deadline = tokio::time::Instant::now() + period;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return &self.ticks;
            }
            self.take(left).await;
        }
    }
}

/// The trades among `ticks`.
pub fn trades(ticks: &[Tick]) -> Vec<&Trade> {
    ticks
        .iter()
        .filter_map(|t| match t {
            Tick::Trade(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// The quotes among `ticks`.
pub fn quotes(ticks: &[Tick]) -> Vec<&Quote> {
    ticks
        .iter()
        .filter_map(|t| match t {
            Tick::Quote(q) => Some(q),
            _ => None,
        })
        .collect()
}

/// The gaps among `ticks`.
pub fn gaps(ticks: &[Tick]) -> Vec<&Gap> {
    ticks
        .iter()
        .filter_map(|t| match t {
            Tick::Gap(g) => Some(g),
            _ => None,
        })
        .collect()
}

/// Polls `f` every 50 ms until true, at most `limit` (then panics saying `what`).
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A service's `/metrics` text.
pub async fn metrics(admin: SocketAddr) -> String {
    reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the metric line that starts with `prefix` (name and labels), or 0.
pub async fn metric(admin: SocketAddr, prefix: &str) -> f64 {
    metrics(admin)
        .await
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Whether `/readyz` answers 200.
pub async fn ready(admin: SocketAddr) -> bool {
    reqwest::get(format!("http://{admin}/readyz"))
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false)
}

/// `/readyz`'s body (it says what is not ready).
pub async fn readiness(admin: SocketAddr) -> String {
    reqwest::get(format!("http://{admin}/readyz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A file of `../shared/fixtures` (the shared directory sits beside the repository), e.g.
/// `fixture("oanda/pricing_stream_EURUSD_EURJPY_2016-10-27.ndjson")`.
pub fn fixture(path: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(path);
    assert!(
        p.exists(),
        "fixture {} is missing: ../shared must sit beside the repository",
        p.display()
    );
    p
}
