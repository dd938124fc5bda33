//! Shared helpers: the real Pulsar of `make test`, the fake Kraken of `venue-sim`, an ingester
//! started in-process, and the captured frames of `../shared/fixtures/kraken`.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary and the e2e bench use a different part"
)]
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
use tickflow_pulsar::{InitialPosition, Namespace, TopicName};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::backoff::BackoffConfig;
use tickflow_schema::{Source, Symbol, TickKind, UnixNanos};
pub use tickflow_testkit::{Reader, eventually, gaps, provision, pulsar_config, quotes, trades};
use venue_sim::kraken::{KrakenSim, SimTicker, SimTrade};

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
        tickflow_testkit::metrics(self.handle.admin_addr()).await
    }

    /// The value of a metric line that starts with `prefix` (name and labels), or 0.
    pub async fn metric(&self, prefix: &str) -> f64 {
        tickflow_testkit::metric(self.handle.admin_addr(), prefix).await
    }

    pub async fn ready(&self) -> bool {
        tickflow_testkit::ready(self.handle.admin_addr()).await
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

/// A reader of the trade and quote topics of `symbols`, from `position`.
pub async fn reader(symbols: &[&Symbol], position: InitialPosition) -> Reader {
    let topics = symbols
        .iter()
        .flat_map(|s| [topic(s, TickKind::Trade), topic(s, TickKind::Quote)])
        .collect();
    Reader::new(topics, position).await
}

/// The trade ids of the trades among `ticks`, in order.
pub fn trade_ids(ticks: &[tickflow_schema::Tick]) -> Vec<String> {
    trades(ticks)
        .iter()
        .map(|t| t.trade_id.to_string())
        .collect()
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

/// A file of `../shared/fixtures/kraken`.
pub fn fixture(path: &str) -> PathBuf {
    tickflow_testkit::fixture(&format!("kraken/{path}"))
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
