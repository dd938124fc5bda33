//! The whole live path: control plane, two kraken-ingester replicas following it, the fake
//! Kraken, the real Pulsar, the sink and the real PostgreSQL. Adding a symbol puts its trades in
//! the database within seconds; replicas share symbols and take over from a dead one.

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
use replica::replica;

mod chrono_like {
    pub type Ts = chrono::DateTime<chrono::Utc>;
}
use kraken_ingester::IngesterHandle;
use tickflow_runtime::CancellationToken;
use tickflow_runtime::config::SecretString;
use venue_sim::kraken::{KrakenSim, SimTrade};

fn trade(symbol: &str, id: u64) -> SimTrade {
    SimTrade {
        symbol: symbol.to_owned(),
        side: "buy".into(),
        price: format!("{}.5", 100 + id),
        qty: "0.25000000".into(),
        ord_type: "limit".into(),
        trade_id: id,
        timestamp: tickflow_schema::UnixNanos::now().format_rfc3339(6),
    }
}

fn names(h: &IngesterHandle) -> BTreeSet<String> {
    h.symbols().iter().map(ToString::to_string).collect()
}

async fn within(limit: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_a_symbol_and_its_trades_are_in_the_database_within_seconds() {
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let sim = KrakenSim::start().await.unwrap();
    let prefix = format!(
        "P{}",
        &uuid::Uuid::new_v4().simple().to_string()[..6].to_uppercase()
    );
    // The sink reads only this test's topics, into the control plane's database.
    let mut sink_cfg = timescale_sink::Config {
        pulsar: pulsar_config(),
        ..Default::default()
    };
    sink_cfg.database.url = Some(SecretString::new(p.db_url.clone()));
    sink_cfg.runtime.admin.listen = "127.0.0.1:0".parse().unwrap();
    sink_cfg.subscription.name = format!("sink-{prefix}");
    sink_cfg.subscription.pattern = format!(
        r"persistent://market-data/realtime/kraken\.{}.*",
        prefix.to_lowercase()
    );
    sink_cfg.subscription.refresh_ms = 500;
    sink_cfg.batch.linger_ms = 20;
    let sink = timescale_sink::Sink::build(sink_cfg).await.unwrap();
    let sink_stop = CancellationToken::new();
    let sink_task = tokio::spawn(sink.run(sink_stop.clone()));
    let db = sqlx::PgPool::connect(&p.db_url).await.unwrap();
    let count = |symbol: String| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM trades WHERE symbol = $1")
                .bind(symbol)
                .fetch_one(&db)
                .await
                .unwrap_or(0)
        }
    };

    let a = replica(&sim, &p.url).await;
    let b = replica(&sim, &p.url).await;
    let mut c = symbols(&p.url, TOKEN).await;

    // One symbol: added, subscribed, its trades stored, within 5 s.
    let btc = format!("{prefix}A/USD");
    let added = tokio::time::Instant::now();
    c.add_symbol(add(&btc, &["kraken"])).await.unwrap();
    within(
        Duration::from_secs(5),
        "subscribed at the venue",
        async || sim.subscribed("trade").contains(&btc),
    )
    .await;
    sim.trades(&[trade(&btc, 1), trade(&btc, 2)]).await;
    within(
        Duration::from_secs(5),
        "trades in the database",
        async || count(btc.clone()).await == 2,
    )
    .await;
    assert!(
        added.elapsed() < Duration::from_secs(5),
        "{:?}",
        added.elapsed()
    );
    let info = c
        .get_symbol(control_plane::proto::GetSymbolRequest {
            symbol: btc.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let owner = &info.sources[0].owner;
    assert!(
        owner.starts_with("kraken-"),
        "the owner replica is shown: {owner:?}"
    );
    // The owner's status report (every 5 s) shows the last tick.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let info = c
            .get_symbol(control_plane::proto::GetSymbolRequest {
                symbol: btc.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if !info.sources[0].last_tick_at.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no last tick reported"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Twenty more spread over both replicas.
    let mut all: BTreeSet<String> = [btc.clone()].into();
    for i in 0..20 {
        let s = format!("{prefix}B{i}/USD");
        c.add_symbol(add(&s, &["kraken"])).await.unwrap();
        all.insert(s);
    }
    within(Duration::from_secs(10), "all subscribed", async || {
        sim.subscribed("trade") == all
    })
    .await;
    let (sa, sb) = (names(&a.handle), names(&b.handle));
    assert!(
        !sa.is_empty() && !sb.is_empty(),
        "{} and {}",
        sa.len(),
        sb.len()
    );
    assert!(sa.is_disjoint(&sb));

    // Replica a dies (its task is aborted: no goodbye): b takes everything within 5 s.
    a.task.abort();
    let died = tokio::time::Instant::now();
    let died_at = tickflow_schema::UnixNanos::now();
    within(Duration::from_secs(5), "b owns all", async || {
        names(&b.handle) == all
    })
    .await;
    assert!(died.elapsed() < Duration::from_secs(5));
    // The hole the dead replica left is recorded once data flows again.
    let moved = sa.iter().next().unwrap().clone();
    within(
        Duration::from_secs(5),
        "b subscribed the moved symbol",
        async || sim.subscribed("trade").contains(&moved),
    )
    .await;
    sim.trades(&[trade(&moved, 100)]).await;
    let gap = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let row: Option<(String, chrono_like::Ts, String)> = sqlx::query_as(
                "SELECT reason, from_time, detail FROM gaps WHERE symbol = $1 AND kind = 'trade'",
            )
            .bind(&moved)
            .fetch_optional(&db)
            .await
            .unwrap_or(None);
            if let Some(r) = row {
                break r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no handover gap recorded"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(gap.0, "handover");
    assert!(
        gap.1.timestamp_nanos_opt().unwrap() <= died_at.0,
        "the gap starts before the death was noticed: {gap:?} died {died_at}"
    );
    assert!(gap.2.contains("taken over from kraken-"), "{}", gap.2);

    // A third replica joins: some symbols move to it, none is left unserved.
    let third = replica(&sim, &p.url).await;
    within(
        Duration::from_secs(5),
        "the third replica gets a share",
        async || !names(&third.handle).is_empty(),
    )
    .await;
    within(Duration::from_secs(5), "still all served", async || {
        let (x, y) = (names(&b.handle), names(&third.handle));
        x.is_disjoint(&y) && x.union(&y).cloned().collect::<BTreeSet<_>>() == all
    })
    .await;

    for r in [b, third] {
        r.shutdown.cancel();
        r.task.await.unwrap().unwrap();
    }
    drop(a.shutdown);
    sink_stop.cancel();
    sink_task.await.unwrap().unwrap();
}
