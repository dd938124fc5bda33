//! Kraken ingester replicas follow the control plane: added symbols spread over them, and a
//! replica's symbols move to the others when it stops.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use kraken_ingester::{Config, Ingester, IngesterHandle};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::config::SecretString;
use venue_sim::kraken::KrakenSim;

struct Replica {
    handle: IngesterHandle,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), tickflow_runtime::supervisor::SupervisorError>>,
}

async fn replica(sim: &KrakenSim, plane: &str) -> Replica {
    let mut cfg = Config::default();
    cfg.pulsar.url = env("PULSAR_URL", "pulsar://127.0.0.1:6650");
    cfg.pulsar.admin_url = env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080");
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
        shutdown,
        task,
    }
}

async fn eventually<F: FnMut() -> bool>(limit: Duration, what: &str, mut f: F) {
    let deadline = tokio::time::Instant::now() + limit;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_symbols_and_take_over_when_one_stops() {
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let sim = KrakenSim::start().await.unwrap();
    let a = replica(&sim, &p.url).await;
    let b = replica(&sim, &p.url).await;
    let mut c = symbols(&p.url, TOKEN).await;
    let mut all = BTreeSet::new();
    for _ in 0..10 {
        let s = unique("R");
        c.add_symbol(add(&s, &["kraken"])).await.unwrap();
        all.insert(s);
    }
    let names = |h: &IngesterHandle| -> BTreeSet<String> {
        h.symbols().iter().map(ToString::to_string).collect()
    };
    eventually(
        Duration::from_secs(10),
        "all symbols subscribed at the venue",
        || sim.subscribed("trade") == all,
    )
    .await;
    let (sa, sb) = (names(&a.handle), names(&b.handle));
    assert!(
        !sa.is_empty() && !sb.is_empty(),
        "both replicas serve: {sa:?} {sb:?}"
    );
    assert!(sa.is_disjoint(&sb), "no symbol on both");
    assert_eq!(sa.union(&sb).cloned().collect::<BTreeSet<_>>(), all);

    // Replica a stops: b takes every symbol within 5 s.
    a.shutdown.cancel();
    a.task.await.unwrap().unwrap();
    let stopped = tokio::time::Instant::now();
    eventually(Duration::from_secs(5), "b owns everything", || {
        names(&b.handle) == all
    })
    .await;
    eventually(Duration::from_secs(5), "and subscribed it all", || {
        sim.subscribed("trade") == all
    })
    .await;
    assert!(stopped.elapsed() < Duration::from_secs(5));
    b.shutdown.cancel();
    b.task.await.unwrap().unwrap();
}
