//! The broker is killed (SIGKILL) and restarted in the middle of a stream: the producer resumes on
//! its own, and no message whose receipt the producer returned is lost.
//!
//! This test restarts the shared broker, so it is `#[ignore]`d in the normal run and `make test`
//! runs it in a step of its own, after the others (`--ignored`, one thread).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failed setup should stop the run loudly"
)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tickflow_pulsar::Namespace;
use tickflow_schema::{Source, Tick, TickKind};
use tokio::sync::{Mutex, mpsc};

async fn pulsar_script(cmd: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pulsar.sh");
    let status = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(cmd)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "scripts/pulsar.sh {cmd} failed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "kills and restarts the shared broker: make test runs it on its own"]
async fn producer_resumes_after_broker_kill_without_losing_acknowledged_ticks() {
    let (client, admin) = common::pulsar().await;
    let (symbol, topic) =
        common::new_topic(&admin, Namespace::Realtime, Source::Kraken, TickKind::Trade).await;
    let mut producer = client.tick_producer(&topic).await.unwrap();

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let acked_count = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    // Sender: paced so the stream spans the restart; receipts go to the collector in order.
    let (tx, mut rx) = mpsc::channel(1_000);
    let sender = {
        let stop = stop.clone();
        let symbol = symbol.clone();
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let receipt = producer.send(&common::trade(&symbol, i)).await;
                if tx.send((i, receipt)).await.is_err() {
                    break;
                }
                i += 1;
                if i.is_multiple_of(100) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            producer.flush().await.ok();
            i
        })
    };
    let collector = {
        let (acked, acked_count, failed) = (acked.clone(), acked_count.clone(), failed.clone());
        tokio::spawn(async move {
            while let Some((i, receipt)) = rx.recv().await {
                let result = match receipt {
                    Ok(fut) => fut.await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(_) => {
                        acked.lock().await.insert(i);
                        acked_count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("send {i} failed: {e}");
                        }
                    }
                }
            }
        })
    };

    let reached = |n: u64| {
        let acked_count = acked_count.clone();
        move || {
            let acked_count = acked_count.clone();
            async move { (acked_count.load(Ordering::Relaxed) >= n).then_some(()) }
        }
    };
    common::poll(Duration::from_secs(60), reached(5_000))
        .await
        .expect("no 5,000 receipts before the kill");
    pulsar_script("kill").await;
    let at_kill = acked_count.load(Ordering::Relaxed);
    pulsar_script("start").await;
    common::poll(Duration::from_secs(180), reached(at_kill + 5_000))
        .await
        .expect("the producer did not resume within 180 s of the broker's restart");
    stop.store(true, Ordering::Relaxed);
    let sent = sender.await.unwrap();
    collector.await.unwrap();
    let acked = acked.lock().await.clone();
    let failed = failed.load(Ordering::Relaxed);
    eprintln!(
        "sent {sent}, acknowledged {}, failed {failed}, acknowledged before the kill {at_kill}",
        acked.len()
    );

    // Read everything back.
    let mut consumer = common::consumer(&client, &topic, "restart-test").await;
    let mut seen = BTreeSet::new();
    let mut duplicates = 0u64;
    let mut last_new = None;
    while !acked.is_subset(&seen) {
        let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .unwrap_or_else(|_| {
                let missing: Vec<_> = acked.difference(&seen).take(10).collect();
                panic!(
                    "acknowledged ticks lost: {} missing, first {missing:?}",
                    acked.difference(&seen).count()
                )
            })
            .unwrap()
            .unwrap();
        let Ok(Tick::Trade(t)) = &d.tick else {
            panic!("not a trade: {:?}", d.tick)
        };
        let i: u64 = t.trade_id.parse().unwrap();
        assert_eq!(
            d.tick.as_ref().unwrap(),
            &common::trade(&symbol, i),
            "tick {i} altered"
        );
        if !seen.insert(i) {
            duplicates += 1;
        } else {
            // First appearances come in send order: a resend after reconnect repeats, never reorders.
            assert!(
                last_new < Some(i) || duplicates > 0,
                "tick {i} arrived after {last_new:?}"
            );
            last_new = Some(i);
        }
        consumer.ack(&d).await.unwrap();
    }
    eprintln!(
        "read back {} distinct ticks, {duplicates} duplicates from resends",
        seen.len()
    );
    assert_eq!(
        failed, 0,
        "sends failed across the restart although the operation timeout outlasts it"
    );
    consumer.close().await.unwrap();
    admin.delete_topic(&topic, true).await.unwrap();
}
