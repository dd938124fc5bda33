//! Shared helpers: the real Pulsar of `make test`, the fake Kraken of `venue-sim`, an ingester
//! started in-process, and the captured frames of `../shared/fixtures/kraken`.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed setup should stop the run loudly"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use kraken_ingester::{Config, Ingester, IngesterHandle};
use tickflow_pulsar::admin::AdminClient;
use tickflow_pulsar::{
    ConsumerSpec, InitialPosition, Namespace, PulsarClient, PulsarConfig, SubscriptionType,
    TickConsumer, TopicName, TopicSelection,
};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::backoff::BackoffConfig;
use tickflow_schema::{Source, Symbol, Tick, TickKind, UnixNanos};
use venue_sim::kraken::{KrakenSim, SimTicker, SimTrade};

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

/// Settings for tests: the sim's URL, fast watchdogs, a quick backoff, admin on port 0.
pub fn config(sim: &KrakenSim, symbols: &[&Symbol]) -> Config {
    let mut cfg = Config {
        pulsar: pulsar_config(),
        ..Config::default()
    };
    cfg.runtime.admin.listen = "127.0.0.1:0".parse().unwrap();
    cfg.kraken.ws_url = sim.url();
    cfg.kraken.symbols = symbols.iter().map(|s| s.to_string()).collect();
    cfg.kraken.ping_interval_ms = 500;
    cfg.kraken.pong_timeout_ms = 2_000;
    cfg.kraken.stale_after_ms = 1_500;
    cfg.kraken.data_stale_after_ms = 600_000;
    cfg.kraken.subscribe_ack_timeout_ms = 1_000;
    cfg.reconnect = BackoffConfig {
        initial_ms: 50,
        max_ms: 400,
        multiplier: 2,
        reset_after_ms: 60_000,
    };
    cfg
}

/// What the control plane does in production: the tenant and namespaces (idempotent).
pub async fn provision() {
    let admin = AdminClient::new(&pulsar_config().admin_url).unwrap();
    admin
        .provision_layout()
        .await
        .unwrap_or_else(|e| panic!("is Pulsar running? `make infra`: {e}"));
}

/// A running ingester and what stops it.
pub struct Running {
    pub handle: IngesterHandle,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), tickflow_runtime::supervisor::SupervisorError>>,
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("ingester stops within 30 s")
            .unwrap()
            .expect("ingester stops cleanly");
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.handle.admin_addr()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of a metric line that starts with `prefix` (name and labels), or 0.
    pub async fn metric(&self, prefix: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    pub async fn ready(&self) -> bool {
        reqwest::get(format!("http://{}/readyz", self.handle.admin_addr()))
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    }
}

pub async fn start(cfg: Config) -> Running {
    provision().await;
    let (ingester, handle) = Ingester::build(cfg)
        .await
        .expect("is Pulsar running? `make infra`");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingester.run(shutdown.clone()));
    Running {
        handle,
        shutdown,
        task,
    }
}

/// A symbol no other test or run uses: `K1A2B3C4D5/USD`.
pub fn unique_symbol() -> Symbol {
    let id = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    Symbol::parse(&format!("K{}/USD", &id[..10])).unwrap()
}

pub fn topic(symbol: &Symbol, kind: TickKind) -> TopicName {
    TopicName::data(Namespace::Realtime, Source::Kraken, symbol, kind).unwrap()
}

/// Reads every tick published on the trade and quote topics of `symbols`, from `position`.
pub struct Reader {
    consumer: TickConsumer,
    pub ticks: Vec<Tick>,
}

impl Reader {
    pub async fn new(symbols: &[&Symbol], position: InitialPosition) -> Self {
        provision().await;
        let client = PulsarClient::connect(&pulsar_config(), "kraken-ingester-test")
            .await
            .unwrap();
        let topics = symbols
            .iter()
            .flat_map(|s| [topic(s, TickKind::Trade), topic(s, TickKind::Quote)])
            .collect();
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

    /// Reads until `done(ticks)` holds, at most `limit`.
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
            if let Ok(delivery) =
                tokio::time::timeout(left.min(Duration::from_millis(500)), self.consumer.next())
                    .await
            {
                let delivery = delivery.unwrap().unwrap();
                let tick = delivery.tick.as_ref().unwrap().clone();
                self.consumer.ack(&delivery).await.unwrap();
                self.ticks.push(tick);
            }
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
            if let Ok(delivery) = tokio::time::timeout(left, self.consumer.next()).await {
                let delivery = delivery.unwrap().unwrap();
                self.ticks.push(delivery.tick.as_ref().unwrap().clone());
                self.consumer.ack(&delivery).await.unwrap();
            }
        }
    }
}

pub fn trades(ticks: &[Tick]) -> Vec<&tickflow_schema::Trade> {
    ticks
        .iter()
        .filter_map(|t| match t {
            Tick::Trade(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// The trade ids of the trades among `ticks`, in order.
pub fn trade_ids(ticks: &[Tick]) -> Vec<String> {
    trades(ticks)
        .iter()
        .map(|t| t.trade_id.to_string())
        .collect()
}

pub fn quotes(ticks: &[Tick]) -> Vec<&tickflow_schema::Quote> {
    ticks
        .iter()
        .filter_map(|t| match t {
            Tick::Quote(q) => Some(q),
            _ => None,
        })
        .collect()
}

pub fn gaps(ticks: &[Tick]) -> Vec<&tickflow_schema::Gap> {
    ticks
        .iter()
        .filter_map(|t| match t {
            Tick::Gap(g) => Some(g),
            _ => None,
        })
        .collect()
}

/// Polls `f` until true, at most `limit`.
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

/// A generated trade of the `i`th kind for `symbol`: varied scales, both sides.
pub fn sim_trade(symbol: &Symbol, id: u64) -> SimTrade {
    SimTrade {
        symbol: symbol.to_string(),
        side: if id.is_multiple_of(2) { "buy" } else { "sell" }.into(),
        price: format!("{}.{}", 60_000 + id % 97, id % 10),
        qty: format!("0.{:08}", 1 + id * 7_919 % 99_999_999),
        ord_type: "limit".into(),
        trade_id: id,
        timestamp: rfc3339(UnixNanos(
            1_700_000_000_000_000_000 + i64::try_from(id).unwrap() * 1_000_000,
        )),
    }
}

pub fn sim_ticker(symbol: &Symbol, i: u64, timestamp: UnixNanos) -> SimTicker {
    SimTicker {
        symbol: symbol.to_string(),
        bid: format!("{}.{}", 60_000 + i, i % 10),
        bid_qty: format!("{}.00000000", 1 + i % 5),
        ask: format!("{}.{}", 60_001 + i, i % 10),
        ask_qty: format!("0.{:08}", 1 + i),
        last: "60000.1".into(),
        volume: "1234.5".into(),
        vwap: "60000.0".into(),
        low: "59000.0".into(),
        high: "61000.0".into(),
        change: "-12.5".into(),
        change_pct: "-0.02".into(),
        timestamp: Some(rfc3339(timestamp)),
    }
}

/// Kraken's timestamp format: microseconds, `Z`.
pub fn rfc3339(t: UnixNanos) -> String {
    t.format_rfc3339(6)
}

/// `1618678142.557535` (v1 epoch seconds) → nanoseconds.
pub fn epoch_text(s: &str) -> UnixNanos {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let mut nanos = frac.to_owned();
    nanos.truncate(9);
    while nanos.len() < 9 {
        nanos.push('0');
    }
    UnixNanos::from_secs_nanos(secs.parse().unwrap(), nanos.parse().unwrap())
}

/// A file of `../shared/fixtures/kraken` (the shared directory sits beside the repository).
pub fn fixture(path: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/kraken")
        .join(path);
    assert!(
        p.exists(),
        "fixture {} is missing: ../shared must sit beside the repository",
        p.display()
    );
    p
}

/// The trades of the 2021-04-17 v1 capture as v2 frames would carry them: same lexemes, ISO
/// pair names, RFC 3339 times, sequential trade ids per pair from 1.
pub fn captured_trades() -> Vec<SimTrade> {
    let text = std::fs::read_to_string(fixture("v1/trade_10pairs_2021-04-17.ndjson")).unwrap();
    let mut ids: BTreeMap<String, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('[')) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let arr = v.as_array().unwrap();
        let pair = arr[arr.len() - 1].as_str().unwrap();
        let symbol = kraken_ingester::kraken::symbols::canonical(pair).unwrap();
        for row in arr[1].as_array().unwrap() {
            let row = row.as_array().unwrap();
            let id = ids.entry(symbol.to_string()).or_insert(0);
            *id += 1;
            out.push(SimTrade {
                symbol: symbol.to_string(),
                side: if row[3] == "b" { "buy" } else { "sell" }.into(),
                price: row[0].as_str().unwrap().into(),
                qty: row[1].as_str().unwrap().into(),
                ord_type: if row[4] == "m" { "market" } else { "limit" }.into(),
                trade_id: *id,
                timestamp: rfc3339(epoch_text(row[2].as_str().unwrap())),
            });
        }
    }
    out
}

/// The tickers of the 2021-04-17 v1 capture as v2 tickers: best bid/ask price and lot volume,
/// timestamped with the capture's receive time (v1 tickers carry none).
pub fn captured_tickers() -> Vec<SimTicker> {
    let text = std::fs::read_to_string(fixture("v1/ticker_10pairs_2021-04-17.ndjson")).unwrap();
    let times =
        std::fs::read_to_string(fixture("v1/ticker_10pairs_2021-04-17.recv_ts.txt")).unwrap();
    let mut out = Vec::new();
    for (line, ts) in text.lines().zip(times.lines()) {
        if !line.starts_with('[') {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let arr = v.as_array().unwrap();
        let pair = arr[arr.len() - 1].as_str().unwrap();
        let symbol = kraken_ingester::kraken::symbols::canonical(pair).unwrap();
        let p = &arr[1];
        let s = |k: &str, i: usize| p[k][i].as_str().unwrap().to_owned();
        out.push(SimTicker {
            symbol: symbol.to_string(),
            bid: s("b", 0),
            bid_qty: s("b", 2),
            ask: s("a", 0),
            ask_qty: s("a", 2),
            last: s("c", 0),
            volume: s("v", 1),
            vwap: s("p", 1),
            low: s("l", 1),
            high: s("h", 1),
            change: "0.0".into(),
            change_pct: "0.00".into(),
            timestamp: Some(rfc3339(epoch_text(ts))),
        });
    }
    out
}
