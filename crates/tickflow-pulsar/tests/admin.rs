//! The admin REST client against the real broker.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failed setup should stop the run loudly"
)]

mod common;

use tickflow_pulsar::admin::{Created, Retention};
use tickflow_pulsar::{Namespace, TENANT, TopicName};
use tickflow_schema::{Source, TickKind};

#[tokio::test]
async fn provisioning_is_idempotent_and_sets_policies() {
    let (_client, admin) = common::pulsar().await;
    // Twice: the second run finds everything and changes nothing.
    admin.provision_layout().await.unwrap();
    assert_eq!(
        admin
            .create_tenant(TENANT, &admin.clusters().await.unwrap())
            .await
            .unwrap(),
        Created::AlreadyExisted
    );
    assert_eq!(
        admin.create_namespace(Namespace::Realtime).await.unwrap(),
        Created::AlreadyExisted
    );
    assert!(admin.tenants().await.unwrap().contains(&TENANT.to_string()));
    let mut ns = admin.namespaces().await.unwrap();
    ns.sort();
    assert_eq!(
        ns,
        [
            "market-data/control",
            "market-data/historical",
            "market-data/realtime"
        ]
    );
    assert_eq!(
        admin.retention(Namespace::Historical).await.unwrap(),
        Retention {
            retention_time_in_minutes: -1,
            retention_size_in_mb: -1
        }
    );
    assert_eq!(
        admin
            .retention(Namespace::Realtime)
            .await
            .unwrap()
            .retention_time_in_minutes,
        7 * 24 * 60
    );
    admin.set_message_ttl(Namespace::Control, 0).await.unwrap();
}

#[tokio::test]
async fn topics_are_created_once_listed_counted_and_deleted() {
    let (client, admin) = common::pulsar().await;
    let symbol = common::unique_symbol();
    let topic = TopicName::data(
        Namespace::Historical,
        Source::Dukascopy,
        &symbol,
        TickKind::Trade,
    )
    .unwrap();
    assert_eq!(admin.create_topic(&topic).await.unwrap(), Created::New);
    assert_eq!(
        admin.create_topic(&topic).await.unwrap(),
        Created::AlreadyExisted
    );
    assert!(
        admin
            .list_topics(Namespace::Historical)
            .await
            .unwrap()
            .contains(&topic.to_string())
    );

    let mut producer = client.tick_producer(&topic).await.unwrap();
    let mut receipts = Vec::new();
    for i in 0..10 {
        let mut t = common::trade(&symbol, i);
        if let tickflow_schema::Tick::Trade(tr) = &mut t {
            tr.source = Source::Dukascopy;
        }
        receipts.push(producer.send(&t).await.unwrap());
    }
    for r in receipts {
        r.await.unwrap();
    }
    let stats = admin.topic_stats(&topic).await.unwrap();
    assert_eq!(stats.msg_in_counter, 10);
    assert_eq!(stats.publishers.len(), 1);
    producer.close().await.unwrap();

    admin.delete_topic(&topic, true).await.unwrap();
    assert!(
        !admin
            .list_topics(Namespace::Historical)
            .await
            .unwrap()
            .contains(&topic.to_string())
    );
    // Deleting what is gone is fine; stats of what is gone is a 404 that says so.
    admin.delete_topic(&topic, true).await.unwrap();
    let err = admin.topic_stats(&topic).await.unwrap_err();
    assert_eq!(err.status(), Some(reqwest::StatusCode::NOT_FOUND));
    assert!(!err.is_retryable());

    let partitioned = TopicName::data(
        Namespace::Realtime,
        Source::Kraken,
        &common::unique_symbol(),
        TickKind::Quote,
    )
    .unwrap();
    assert_eq!(
        admin
            .create_partitioned_topic(&partitioned, 2)
            .await
            .unwrap(),
        Created::New
    );
    assert_eq!(
        admin
            .create_partitioned_topic(&partitioned, 2)
            .await
            .unwrap(),
        Created::AlreadyExisted
    );
}
