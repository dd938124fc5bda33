//! A kraken-ingester replica in-process, following a control plane, reading the fake Kraken.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use kraken_ingester::{Config, Ingester, IngesterHandle};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::config::SecretString;
use venue_sim::kraken::KrakenSim;

use crate::common::{TOKEN, pulsar_config};

pub struct Replica {
    pub handle: IngesterHandle,
    pub task: tokio::task::JoinHandle<Result<(), tickflow_runtime::supervisor::SupervisorError>>,
    pub shutdown: CancellationToken,
}

pub async fn replica(sim: &KrakenSim, plane: &str) -> Replica {
    let mut cfg = Config {
        pulsar: pulsar_config(),
        ..Config::default()
    };
    cfg.runtime.admin.listen = "127.0.0.1:0".parse().unwrap();
    cfg.kraken.ws_url = sim.url();
    cfg.control.url = Some(plane.to_owned());
    cfg.control.token = Some(SecretString::new(TOKEN.to_owned()));
    cfg.reconnect.initial_ms = 50;
    cfg.reconnect.max_ms = 500;
    let (ingester, handle) = Ingester::build(cfg).await.unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingester.run(shutdown.clone()));
    Replica {
        handle,
        task,
        shutdown,
    }
}

/// An oanda-ingester replica in-process, following a control plane, reading the fake OANDA.
#[allow(dead_code, reason = "the pipeline test uses only the Kraken replica")]
pub struct OandaReplica {
    pub handle: oanda_ingester::IngesterHandle,
    pub task: tokio::task::JoinHandle<Result<(), tickflow_runtime::supervisor::SupervisorError>>,
    pub shutdown: CancellationToken,
}

#[allow(dead_code, reason = "the pipeline test uses only the Kraken replica")]
pub async fn oanda_replica(sim: &venue_sim::oanda::OandaSim, plane: &str) -> OandaReplica {
    let mut cfg = oanda_ingester::Config {
        pulsar: pulsar_config(),
        ..oanda_ingester::Config::default()
    };
    cfg.runtime.admin.listen = "127.0.0.1:0".parse().unwrap();
    cfg.oanda.stream_url = Some(sim.url());
    cfg.oanda.token = Some(SecretString::new("oanda-token".to_owned()));
    cfg.oanda.account_id = Some(SecretString::new("101-004-1-001".to_owned()));
    cfg.oanda.coalesce_ms = 200;
    cfg.oanda.min_connect_interval_ms = 100;
    cfg.control.url = Some(plane.to_owned());
    cfg.control.token = Some(SecretString::new(TOKEN.to_owned()));
    cfg.reconnect.initial_ms = 50;
    cfg.reconnect.max_ms = 500;
    let (ingester, handle) = oanda_ingester::Ingester::build_with_calendar(
        cfg,
        tickflow_calendar::MarketHours::AlwaysOpen,
    )
    .await
    .unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingester.run(shutdown.clone()));
    OandaReplica {
        handle,
        task,
        shutdown,
    }
}
