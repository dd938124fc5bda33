//! A topic pattern picks up topics created after the consumer started, each subscribed exactly
//! once on the broker, and no key's messages stall. (The Rust client's own regex refresh dropped
//! a subscription round still in flight when the next one started; the consumers it had already
//! registered never asked for messages, and on Key_Shared they owned key ranges whose messages
//! then never arrived.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use tickflow_pulsar::{
    ConsumerSpec, InitialPosition, Namespace, SubscriptionType, TopicName, TopicSelection,
};
use tickflow_schema::{Source, Symbol, TickKind};

const TOPICS: usize = 40;
const PER_TOPIC: u64 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_subscribes_each_new_topic_once_and_no_key_stalls() {
    let (client, admin) = common::pulsar().await;
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let subscription = format!("pattern-test-{id}");
    // A refresh much shorter than subscribing to a batch of new topics takes: rounds overlap.
    let mut consumer = client
        .tick_consumer(ConsumerSpec {
            topics: TopicSelection::Pattern {
                namespaces: vec![Namespace::Realtime],
                pattern: format!(r"persistent://market-data/realtime/kraken\.p{id}.*"),
                refresh: Duration::from_millis(20),
            },
            subscription: subscription.clone(),
            sub_type: SubscriptionType::KeyShared,
            initial_position: InitialPosition::Earliest,
            consumer_name: None,
        })
        .await
        .unwrap();

    let mut topics = Vec::new();
    for i in 0..TOPICS {
        let symbol = Symbol::parse(&format!("P{}{i:02}/USD", id.to_ascii_uppercase())).unwrap();
        let topic = TopicName::data(
            Namespace::Realtime,
            Source::Kraken,
            &symbol,
            TickKind::Trade,
        )
        .unwrap();
        let mut producer = client.tick_producer(&topic).await.unwrap();
        let mut receipts = Vec::new();
        for n in 0..PER_TOPIC {
            receipts.push(producer.send(&common::trade(&symbol, n)).await.unwrap());
        }
        producer.flush().await.unwrap();
        for r in receipts {
            r.await.unwrap();
        }
        producer.close().await.unwrap();
        topics.push((symbol, topic));
    }

    let mut seen = BTreeSet::new();
    let want = TOPICS * usize::try_from(PER_TOPIC).unwrap();
    while seen.len() < want {
        let d = tokio::time::timeout(Duration::from_secs(60), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {want} messages within 60 s", seen.len()))
            .expect("consumer closed")
            .unwrap();
        let tick = d.tick.as_ref().unwrap();
        assert!(
            seen.insert((tick.symbol().to_string(), d.entry(), d.batch_index())),
            "{d:?} delivered twice"
        );
        consumer.ack(&d).await.unwrap();
    }

    for (symbol, topic) in &topics {
        let stats = admin.topic_stats(topic).await.unwrap();
        let consumers = stats.subscriptions[&subscription].consumers.len();
        assert_eq!(
            consumers, 1,
            "{symbol}: {consumers} consumers on the subscription"
        );
    }
    consumer.close().await.unwrap();
    for (_, topic) in &topics {
        admin.delete_topic(topic, true).await.unwrap();
    }
}
