//! What the service tests share: the fake Dukascopy, a service started in-process or as a
//! process, a job queue of the test's own, and the real Pulsar of `make test`.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed setup should stop the run loudly"
)]

use std::time::Duration;

use dukascopy_backfill::config::TransportKind;
use dukascopy_backfill::{Backfill, BackfillHandle, Config};
use prost::Message as _;
use tickflow_control::proto::BackfillTask;
use tickflow_pulsar::{
    ConsumerSpec, InitialPosition, Namespace, PulsarClient, SubscriptionType, TopicName,
    TopicSelection,
};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::backoff::BackoffConfig;
use tickflow_schema::{Coverage, Quote, Source, Symbol, Tick, TickKind, UnixNanos};
pub use tickflow_testkit::{Reader, eventually, metric, metrics, pulsar_config, quotes, ready};
use venue_sim::dukascopy::DukascopySim;

/// Nanoseconds in an hour.
pub const HOUR_NS: i64 = 3_600_000_000_000;

/// A name nobody else uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// Settings for tests: the sim, fast retries, a job queue of the test's own.
pub fn config(sim: &DukascopySim, transport: TransportKind, jobs_topic: &str) -> Config {
    let mut cfg = Config {
        pulsar: pulsar_config(),
        ..Config::default()
    };
    cfg.runtime.admin.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dukascopy.transport = transport;
    cfg.dukascopy.url = Some(sim.base_url());
    cfg.dukascopy.request_timeout_ms = 1_000;
    cfg.dukascopy.attempts = 4;
    cfg.dukascopy.empty_retries = 1;
    cfg.dukascopy.retry = BackoffConfig {
        initial_ms: 20,
        max_ms: 200,
        multiplier: 2,
        reset_after_ms: 60_000,
    };
    cfg.worker.jobs_topic = jobs_topic.to_owned();
    cfg.worker.subscription = unique("backfill");
    cfg
}

/// A service running in this process.
pub struct Running {
    pub handle: BackfillHandle,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), tickflow_runtime::supervisor::SupervisorError>>,
}

impl Running {
    pub async fn start(cfg: Config) -> Self {
        let (backfill, handle) = Backfill::build(cfg).await.unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(backfill.run(shutdown.clone()));
        let admin = handle.admin_addr();
        eventually(
            Duration::from_secs(30),
            "the worker subscribed",
            || async move { ready(admin).await },
        )
        .await;
        Self {
            handle,
            shutdown,
            task,
        }
    }

    pub async fn metric(&self, prefix: &str) -> f64 {
        metric(self.handle.admin_addr(), prefix).await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Puts backfill tasks on a job topic, as the control plane does.
pub struct Jobs {
    producer: pulsar::Producer<pulsar::TokioExecutor>,
}

impl Jobs {
    pub async fn new(topic: &str) -> Self {
        let client = PulsarClient::connect(&pulsar_config(), "backfill-test")
            .await
            .unwrap();
        let producer = client
            .raw_producer(&TopicName::control(topic).unwrap())
            .await
            .unwrap();
        Self { producer }
    }

    /// One task: `hours` hours of `symbol` from `from`.
    pub async fn enqueue(&mut self, symbol: &str, from: UnixNanos, hours: u32) {
        let task = BackfillTask {
            job_id: unique("job"),
            symbol: symbol.to_owned(),
            source: "dukascopy".to_owned(),
            hour_start_ns: from.0,
            hours,
        };
        let receipt = self
            .producer
            .send_non_blocking(pulsar::producer::Message {
                payload: task.encode_to_vec(),
                partition_key: Some(symbol.to_owned()),
                ..Default::default()
            })
            .await
            .unwrap();
        receipt.await.unwrap();
    }
}

/// The historical quote topic of `symbol`.
pub fn topic(symbol: &str) -> TopicName {
    TopicName::data(
        Namespace::Historical,
        Source::Dukascopy,
        &Symbol::parse(symbol).unwrap(),
        TickKind::Quote,
    )
    .unwrap()
}

/// A reader of `symbol`'s historical topic from now on.
pub async fn reader(symbol: &str) -> Reader {
    Reader::new(vec![topic(symbol)], InitialPosition::Latest).await
}

/// Coverage markers among `ticks` for hours in `[from, to)`.
pub fn coverage(ticks: &[Tick], from: UnixNanos, to: UnixNanos) -> Vec<&Coverage> {
    ticks
        .iter()
        .filter_map(|t| match t {
            Tick::Coverage(c) if c.hour >= from && c.hour < to => Some(c),
            _ => None,
        })
        .collect()
}

/// Quotes among `ticks` in `[from, to)`.
pub fn quotes_in(ticks: &[Tick], from: UnixNanos, to: UnixNanos) -> Vec<&Quote> {
    quotes(ticks)
        .into_iter()
        .filter(|q| q.event_time >= from && q.event_time < to)
        .collect()
}

/// An RFC 3339 instant.
pub fn at(rfc3339: &str) -> UnixNanos {
    UnixNanos::parse_rfc3339(rfc3339).unwrap()
}

/// Milliseconds of an instant (the sim's keys).
pub fn ms(t: UnixNanos) -> i64 {
    t.0 / 1_000_000
}

/// Creates `subscription` on `topic` at its end (so a worker joining it skips the backlog).
pub async fn subscribe_at_end(topic: TopicName, subscription: &str, sub_type: SubscriptionType) {
    let client = PulsarClient::connect(&pulsar_config(), "follow-test")
        .await
        .unwrap();
    let c = client
        .tick_consumer(ConsumerSpec {
            topics: TopicSelection::Topics(vec![topic]),
            subscription: subscription.to_owned(),
            sub_type,
            initial_position: InitialPosition::Latest,
            consumer_name: None,
        })
        .await
        .unwrap();
    c.close().await.unwrap();
}

/// A database of its own, `{prefix}{random}` (`tickflow_test_` ones are dropped by the next
/// `make test`): its name and URL.
pub async fn database(prefix: &str) -> (String, String) {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://tickflow@127.0.0.1:55432/tickflow".to_owned());
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("is PostgreSQL running?");
    let name = format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let (server, _) = base.rsplit_once('/').unwrap();
    let url = format!("{server}/{name}");
    (name, url)
}
