//! Shared helpers: the real Pulsar of `make test`, the fake OANDA of `venue-sim`, an ingester
//! started in-process, and the captured lines of `../shared/fixtures/oanda`.
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

use std::time::Duration;

use oanda_ingester::{Config, Ingester, IngesterHandle};
use tickflow_calendar::MarketHours;
use tickflow_pulsar::{InitialPosition, Namespace, TopicName};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::backoff::BackoffConfig;
use tickflow_runtime::config::SecretString;
use tickflow_schema::{Source, Symbol, TickKind};
pub use tickflow_testkit::{
    Reader, eventually, fixture, gaps, metric, provision, pulsar_config, quotes, readiness, ready,
};
use venue_sim::oanda::OandaSim;

pub const TOKEN: &str = "test-token-7d1f0c";
pub const ACCOUNT: &str = "101-004-8153273-001";

/// Settings for tests: the sim's URL, fast watchdogs and pacing, admin on port 0.
pub fn config(sim: &OandaSim, symbols: &[&Symbol]) -> Config {
    let mut cfg = Config {
        pulsar: pulsar_config(),
        ..Config::default()
    };
    cfg.runtime.admin.listen = "127.0.0.1:0".parse().unwrap();
    cfg.oanda.stream_url = Some(sim.url());
    cfg.oanda.token = Some(SecretString::new(TOKEN.to_owned()));
    cfg.oanda.account_id = Some(SecretString::new(ACCOUNT.to_owned()));
    cfg.oanda.instruments = symbols.iter().map(|s| s.to_string()).collect();
    cfg.oanda.stale_after_ms = 1_000;
    cfg.oanda.coalesce_ms = 300;
    cfg.oanda.min_connect_interval_ms = 100;
    cfg.oanda.auth_retry_ms = 1_500;
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

    pub async fn metric(&self, prefix: &str) -> f64 {
        metric(self.handle.admin_addr(), prefix).await
    }

    pub async fn ready(&self) -> bool {
        ready(self.handle.admin_addr()).await
    }
}

/// Starts an ingester whose gaps are judged as if the market never closed (the calendar has
/// its own tests; these must not depend on the day they run).
pub async fn start(cfg: Config) -> Running {
    start_with(cfg, MarketHours::AlwaysOpen).await
}

pub async fn start_with(cfg: Config, calendar: MarketHours) -> Running {
    provision().await;
    let (ingester, handle) = Ingester::build_with_calendar(cfg, calendar)
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

/// A pair no other test or run uses: `O1A2B3C4D5/USD` (OANDA name `O1A2B3C4D5_USD`).
pub fn unique_symbol() -> Symbol {
    let id = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    Symbol::parse(&format!("O{}/USD", &id[..10])).unwrap()
}

/// OANDA's name of a test symbol.
pub fn venue(symbol: &Symbol) -> String {
    symbol.as_str().replace('/', "_")
}

pub fn topic(symbol: &Symbol) -> TopicName {
    TopicName::data(Namespace::Realtime, Source::Oanda, symbol, TickKind::Quote).unwrap()
}

/// A reader of the quote topics of `symbols`, from the start.
pub async fn reader(symbols: &[&Symbol]) -> Reader {
    Reader::new(
        symbols.iter().map(|s| topic(s)).collect(),
        InitialPosition::Earliest,
    )
    .await
}

/// Waits until the sim has an open stream carrying exactly `symbols`.
pub async fn streaming(sim: &OandaSim, symbols: &[&Symbol]) {
    let mut want: Vec<String> = symbols.iter().map(|s| venue(s)).collect();
    want.sort();
    eventually(
        Duration::from_secs(20),
        "a stream with the instruments",
        || {
            let open = sim.open_instruments();
            let want = want.clone();
            async move {
                open.iter().any(|l| {
                    let mut l = l.clone();
                    l.sort();
                    l == want
                })
            }
        },
    )
    .await;
}

/// Every line of a fixture file under `../shared/fixtures/oanda`.
pub fn fixture_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(fixture(&format!("oanda/{name}")))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The fake OANDA with heartbeats every 200 ms (the tests' stale watchdog is 1 s; OANDA's own
/// cadence is 5 s against 10 s).
pub async fn start_sim() -> OandaSim {
    let sim = OandaSim::start().await.unwrap();
    sim.set_heartbeat_interval(Some(Duration::from_millis(200)));
    sim
}
