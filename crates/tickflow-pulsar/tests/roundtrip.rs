//! The project's producer and consumer against the real Pulsar: every tick arrives, equal field
//! for field, in order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failed setup should stop the run loudly"
)]

mod common;

use std::time::Duration;

use tickflow_pulsar::Namespace;
use tickflow_schema::TickKind;

const N: u64 = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_ticks_arrive_exactly_and_in_order() {
    let (client, admin) = common::pulsar().await;
    let (symbol, topic) = common::new_topic(
        &admin,
        Namespace::Realtime,
        tickflow_schema::Source::Kraken,
        TickKind::Trade,
    )
    .await;

    // Subscribe first so the subscription's cursor holds every message.
    let mut consumer = common::consumer(&client, &topic, "roundtrip-test").await;

    let mut producer = client.tick_producer(&topic).await.unwrap();
    let mut receipts = Vec::with_capacity(usize::try_from(N).unwrap());
    for i in 0..N {
        receipts.push(producer.send(&common::trade(&symbol, i)).await.unwrap());
    }
    producer.flush().await.unwrap();
    let mut last = None;
    for r in receipts {
        let id = r.await.unwrap();
        // Receipts come back in send order: ids never go backwards.
        assert!(
            last <= Some(id),
            "receipt ids went backwards: {last:?} then {id:?}"
        );
        last = Some(id);
    }

    let mut batched = 0u64;
    for i in 0..N {
        let d = tokio::time::timeout(Duration::from_secs(60), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("only {i} of {N} ticks arrived within 60 s"))
            .expect("consumer closed")
            .unwrap();
        let want = common::trade(&symbol, i);
        let got = d.tick.as_ref().unwrap();
        assert_eq!(got, &want, "tick {i} differs");
        assert_eq!(d.key(), Some(symbol.as_str()));
        assert_eq!(d.event_time_ms(), Some(want.event_time().as_millis_u64()));
        if d.batch_size() > 1 {
            batched += 1;
        }
        consumer.ack(&d).await.unwrap();
    }
    assert!(
        batched > N / 2,
        "producer batching is off: only {batched} of {N} messages came in batches"
    );

    // Nothing beyond the N: the broker counted exactly N messages in.
    let stats = admin.topic_stats(&topic).await.unwrap();
    assert_eq!(stats.msg_in_counter, N);
    assert!(stats.publishers.len() <= 1);
    producer.close().await.unwrap();
    consumer.close().await.unwrap();
    admin.delete_topic(&topic, true).await.unwrap();
}

#[tokio::test]
async fn a_tick_for_another_topic_is_refused() {
    let (client, admin) = common::pulsar().await;
    let (symbol, topic) = common::new_topic(
        &admin,
        Namespace::Realtime,
        tickflow_schema::Source::Kraken,
        TickKind::Quote,
    )
    .await;
    let mut producer = client.tick_producer(&topic).await.unwrap();
    let err = producer
        .send(&common::trade(&symbol, 1))
        .await
        .err()
        .unwrap();
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!("a trade tick for kraken {symbol} does not belong on {topic}")
    );
    admin.delete_topic(&topic, true).await.unwrap();
}

#[tokio::test]
async fn producer_names_are_unique_per_process_and_producer() {
    let (a, _) = common::pulsar().await;
    let b = tickflow_pulsar::PulsarClient::connect(&common::config(), "tickflow-pulsar-test")
        .await
        .unwrap();
    let (n1, n2, n3) = (
        a.next_producer_name(),
        a.next_producer_name(),
        b.next_producer_name(),
    );
    assert!(n1.starts_with("tickflow-pulsar-test-"), "{n1}");
    assert!(n1.contains(&format!("-{}-", std::process::id())), "{n1}");
    assert_ne!(n1, n2);
    assert_ne!(
        n1.rsplit_once('-').unwrap().0,
        n3.rsplit_once('-').unwrap().0,
        "two clients share a prefix"
    );
}
