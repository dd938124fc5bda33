//! Kraken ingester replicas follow the control plane: added symbols spread over them, and a
//! replica's symbols move to the others when it stops.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;
mod replica;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use kraken_ingester::IngesterHandle;
use replica::replica;
use venue_sim::kraken::KrakenSim;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oanda_replica_streams_what_the_control_plane_assigns_on_one_connection() {
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let sim = venue_sim::oanda::OandaSim::start().await.unwrap();
    let r = replica::oanda_replica(&sim, &p.url).await;
    let mut c = symbols(&p.url, TOKEN).await;
    let (x, y) = (unique("FX"), unique("FX"));
    c.add_symbol(add(&x, &["oanda"])).await.unwrap();
    c.add_symbol(add(&y, &["oanda"])).await.unwrap();
    let venue = |s: &str| s.replace('/', "_");
    let open = |want: Vec<String>| {
        let mut want = want;
        want.sort();
        sim.open_instruments().iter().any(|l| {
            let mut l = l.clone();
            l.sort();
            *l == want
        })
    };
    eventually(
        Duration::from_secs(15),
        "one stream carrying both instruments",
        || open(vec![venue(&x), venue(&y)]),
    )
    .await;
    c.remove_symbol(control_plane::proto::RemoveSymbolRequest {
        symbol: y.clone(),
        sources: vec!["oanda".to_owned()],
    })
    .await
    .unwrap();
    eventually(
        Duration::from_secs(15),
        "the stream switched to the one left",
        || open(vec![venue(&x)]) && sim.open_streams() == 1,
    )
    .await;
    let names: BTreeSet<String> = r.handle.symbols().iter().map(ToString::to_string).collect();
    assert_eq!(names, BTreeSet::from([x.clone()]));
    r.shutdown.cancel();
    r.task.await.unwrap().unwrap();
}
