//! The follow mode end to end: the control plane (its follow loop), the backfill worker, the
//! sink and PostgreSQL. An hour Dukascopy has not published yet is recorded missing; once it is
//! published, the follow mode queues it again and it lands, complete.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use control_plane::follow::{Follow, FollowConfig, FollowMetrics};
use control_plane::proto::AddSymbolRequest;
use control_plane::proto::symbol_service_server::SymbolService as _;
use control_plane::service::{Assignments, State};
use control_plane::store::Store;
use dukascopy_backfill::config::TransportKind;
use support::*;
use tickflow_pulsar::admin::AdminClient;
use tickflow_pulsar::{PulsarClient, SubscriptionType, TopicName};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::config::SecretString;
use tickflow_schema::UnixNanos;
use venue_sim::dukascopy::{DukascopySim, generate_hours};

fn utc(t: UnixNanos) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_nanos(t.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follow_mode_picks_up_a_newly_published_hour() {
    // The hours: yesterday 00:00 to the last hour that ended. BTC/USD trades around the clock.
    let now = UnixNanos::now();
    let this_hour = UnixNanos(now.0 - now.0.rem_euclid(HOUR_NS));
    let yesterday = UnixNanos(this_hour.0 - this_hour.0.rem_euclid(24 * HOUR_NS) - 24 * HOUR_NS);
    let hours = usize::try_from((this_hour.0 - yesterday.0) / HOUR_NS).unwrap();
    let generated = generate_hours("BTCUSD", ms(yesterday), hours, 1, 420_000, 9, 40, |_| false);
    let sim = DukascopySim::start().await.unwrap();
    // The last hour that ended is not published yet.
    let late = UnixNanos(this_hour.0 - HOUR_NS);
    for (h, t) in &generated {
        if *h != ms(late) {
            sim.publish_ticks("BTCUSD", *h, 1, t.clone());
        }
    }

    // The control plane, with a database of its own and a fast follow loop.
    let (_, db_url) = database("tickflow_test_follow").await;
    let store = Store::connect(&db_url, Duration::from_secs(5))
        .await
        .unwrap();
    let admin_url =
        std::env::var("PULSAR_ADMIN_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let client = PulsarClient::connect(&pulsar_config(), "follow-test")
        .await
        .unwrap();
    let follow = FollowConfig {
        interval: Duration::from_secs(1),
        delay: Duration::ZERO,
        lookback_hours: 4,
        retry: Duration::from_secs(2),
    };
    let state = State {
        store,
        admin: AdminClient::new(&admin_url).unwrap(),
        assignments: Arc::new(Assignments::default()),
        jobs: Some(
            control_plane::backfill::JobQueue::new(&client)
                .await
                .unwrap(),
        ),
        live: tickflow_control::status::LiveBoard::default(),
        follow: Arc::new(Follow::new(follow)),
    };
    let stop = CancellationToken::new();

    // The sink, into the control plane's database; the worker on the real job queue.
    let symbol_topic = topic("BTC/USD");
    let sink_subscription = unique("sink-follow");
    subscribe_at_end(
        symbol_topic,
        &sink_subscription,
        SubscriptionType::KeyShared,
    )
    .await;
    let mut sink_cfg = timescale_sink::Config {
        pulsar: pulsar_config(),
        ..Default::default()
    };
    sink_cfg.database.url = Some(SecretString::new(db_url.clone()));
    sink_cfg.runtime.admin.listen = "127.0.0.1:0".parse().unwrap();
    sink_cfg.subscription.name = sink_subscription;
    sink_cfg.subscription.pattern =
        r"persistent://market-data/historical/dukascopy\.btc-usd\.quote".to_owned();
    sink_cfg.subscription.refresh_ms = 500;
    sink_cfg.batch.linger_ms = 20;
    let sink = timescale_sink::Sink::build(sink_cfg).await.unwrap();
    let sink_task = tokio::spawn(sink.run(stop.clone()));

    let mut cfg = config(&sim, TransportKind::Json, "backfill-jobs");
    cfg.dukascopy.attempts = 2;
    subscribe_at_end(
        TopicName::control("backfill-jobs").unwrap(),
        &cfg.worker.subscription,
        SubscriptionType::Shared,
    )
    .await;
    let worker = Running::start(cfg).await;
    tokio::spawn(control_plane::follow::run(
        state.clone(),
        FollowMetrics::default(),
        stop.clone(),
    ));

    // Adding the symbol with history from yesterday starts a backfill up to the last hour.
    let added = state
        .add_symbol(tonic::Request::new(AddSymbolRequest {
            symbol: "BTC/USD".into(),
            sources: vec!["dukascopy".into()],
            history_start: chrono::DateTime::from_timestamp_nanos(yesterday.0)
                .date_naive()
                .to_string(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!added.backfill_job_id.is_empty(), "a backfill was started");

    let db = sqlx::PgPool::connect(&db_url).await.unwrap();
    let status = |hour: UnixNanos| {
        let db = db.clone();
        async move {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT status, ticks FROM coverage WHERE source = 'dukascopy' \
                 AND symbol = 'BTC/USD' AND hour = $1",
            )
            .bind(utc(hour))
            .fetch_optional(&db)
            .await
            .ok()
            .flatten()
        }
    };
    eventually(
        Duration::from_secs(90),
        "the unpublished hour recorded missing",
        || async { status(late).await.is_some_and(|(s, _)| s == "missing") },
    )
    .await;
    let complete = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM coverage WHERE source = 'dukascopy' AND symbol = 'BTC/USD' \
             AND hour >= $1 AND hour < $2 AND status = 'complete'",
        )
        .bind(utc(yesterday))
        .bind(utc(late))
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let others = i64::try_from(hours - 1).unwrap();
    eventually(
        Duration::from_secs(90),
        "every other hour complete",
        || async { complete().await == others },
    )
    .await;

    // Dukascopy publishes it: the follow mode comes back for it.
    let late_ticks = generated
        .iter()
        .find(|(h, _)| *h == ms(late))
        .unwrap()
        .1
        .clone();
    sim.publish_ticks("BTCUSD", ms(late), 1, late_ticks.clone());
    let expected = i64::try_from(late_ticks.len()).unwrap();
    eventually(Duration::from_secs(60), "the hour complete", || async {
        status(late).await == Some(("complete".to_owned(), expected))
    })
    .await;
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM quotes WHERE source = 'dukascopy' AND symbol = 'BTC/USD' \
         AND time >= $1 AND time < $2",
    )
    .bind(utc(late))
    .bind(utc(this_hour))
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(rows, expected);
    let m = metrics(worker.handle.admin_addr()).await;
    assert!(
        m.contains("dukascopy_backfill_hours_missing_total{reason=\"empty\"} 1"),
        "a 404 in trading hours is an empty answer: {m}"
    );
    assert!(
        sim.requests_for("BTCUSD", ms(late)) >= 3,
        "asked, refused, asked again"
    );
    worker.stop().await;
    stop.cancel();
    let _ = sink_task.await;
}
