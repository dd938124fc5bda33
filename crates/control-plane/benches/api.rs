//! Control-plane latencies against the real PostgreSQL and Pulsar, each beside its anchor:
//!
//! - `AddSymbol` (validation, two topics created through Pulsar's admin API, rows written), p50
//!   and p99 over `BENCH_ADDS` (default 200) new symbols. Anchor: the two `create_topic` calls
//!   alone, timed the same way.
//! - `ListSymbols` of 10,000 symbols (one page). Anchor: the same rows by one SQL query.
//! - Reassignment after a replica's stream dies: from the death to the survivor holding every
//!   symbol (100 symbols, two replicas). Anchor: the time for a fresh replica's first assignment.
//!
//! Needs `make infra`; `make bench` runs it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "benchmark code"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use control_plane::proto::{ListSymbolsRequest, WatchRequest};
use tickflow_pulsar::admin::AdminClient;
use tickflow_pulsar::{Namespace, TopicName};
use tickflow_schema::{Source, Symbol, TickKind};

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let adds: usize = std::env::var("BENCH_ADDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let admin_url = env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080");
    let p = plane(&admin_url).await;
    let mut c = symbols(&p.url, TOKEN).await;

    // AddSymbol, and its anchor: the admin calls alone.
    let admin = AdminClient::new(&admin_url).unwrap();
    let mut add_times = Vec::with_capacity(adds);
    let mut anchor_times = Vec::with_capacity(adds);
    for _ in 0..adds {
        let s = unique("A");
        let t = Instant::now();
        c.add_symbol(add(&s, &["kraken"])).await.unwrap();
        add_times.push(t.elapsed());
        let other = Symbol::parse(&unique("N")).unwrap();
        let t = Instant::now();
        for kind in [TickKind::Trade, TickKind::Quote] {
            let topic = TopicName::data(Namespace::Realtime, Source::Kraken, &other, kind).unwrap();
            admin.create_topic(&topic).await.unwrap();
        }
        anchor_times.push(t.elapsed());
    }

    // ListSymbols of 10,000 (rows written straight to the store: no topics needed).
    let kraken: BTreeSet<Source> = [Source::Kraken].into();
    for i in 0..(10_000 - adds) {
        let s = Symbol::parse(&format!("L{i:05}/USD")).unwrap();
        p.store.add(&s, &kraken, None).await.unwrap();
    }
    let t = Instant::now();
    let listed = c
        .list_symbols(ListSymbolsRequest {
            source: String::new(),
            page_size: 10_000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let list = t.elapsed();
    assert_eq!(listed.symbols.len(), 10_000);
    let t = Instant::now();
    let rows = p.store.page(None, "", 10_000).await.unwrap();
    let list_anchor = t.elapsed();
    assert_eq!(rows.len(), 10_000);

    // Reassignment after a replica dies.
    let q = plane(&admin_url).await;
    let mut qc = symbols(&q.url, TOKEN).await;
    let mut all = BTreeSet::new();
    for i in 0..100 {
        let s = format!("R{i:03}/USD");
        q.store
            .add(&Symbol::parse(&s).unwrap(), &kraken, None)
            .await
            .unwrap();
        all.insert(s);
    }
    // Load them into the assignments (what AddSymbol does): one more added via the API.
    let extra = unique("E");
    qc.add_symbol(add(&extra, &["kraken"])).await.unwrap();
    all.insert(extra);
    let watch = |id: &'static str| {
        let url = q.url.clone();
        async move {
            assignments(&url)
                .await
                .watch(WatchRequest {
                    source: "kraken".into(),
                    instance_id: id.into(),
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let t = Instant::now();
    let mut a = watch("bench-a").await;
    a.message().await.unwrap().unwrap();
    let first_assignment = t.elapsed();
    let b = watch("bench-b").await;
    loop {
        let m = a.message().await.unwrap().unwrap();
        if m.replicas.len() == 2 {
            break;
        }
    }
    drop(b);
    let died = Instant::now();
    loop {
        let m = a.message().await.unwrap().unwrap();
        if m.symbols.len() == all.len() {
            break;
        }
    }
    let reassign = died.elapsed();

    println!("\ncontrol plane (real PostgreSQL and Pulsar admin, 2 vCPUs):");
    let (p50, p99) = (
        percentile(add_times.clone(), 0.5),
        percentile(add_times, 0.99),
    );
    let (a50, a99) = (
        percentile(anchor_times.clone(), 0.5),
        percentile(anchor_times, 0.99),
    );
    println!(
        "  AddSymbol ({adds} new, kraken: 2 topics)   p50 {:.2} ms  p99 {:.2} ms   anchor create_topic x2: p50 {:.2} ms  p99 {:.2} ms   ratio p50 {:.2}",
        ms(p50),
        ms(p99),
        ms(a50),
        ms(a99),
        ms(p50) / ms(a50)
    );
    println!(
        "  ListSymbols, 10,000 symbols, one page     {:.1} ms   anchor SQL of the same rows {:.1} ms   ratio {:.2}",
        ms(list),
        ms(list_anchor),
        ms(list) / ms(list_anchor)
    );
    println!(
        "  reassignment after a replica's stream died (101 symbols)   {:.2} ms   anchor first assignment of a new replica {:.2} ms",
        ms(reassign),
        ms(first_assignment)
    );
}
