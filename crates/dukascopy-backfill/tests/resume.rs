//! The whole path into PostgreSQL with the worker as a real process that is killed in the
//! middle of a job: after a restart the job completes, every hour has its coverage row, and
//! every tick is stored exactly once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::time::Duration;

use support::*;
use tickflow_runtime::CancellationToken;
use tickflow_runtime::config::SecretString;
use tickflow_schema::UnixNanos;
use tickflow_testkit::process::{ServiceProcess, free_port, value};
use venue_sim::dukascopy::{DukascopySim, generate_hours};

fn worker(
    sim: &DukascopySim,
    jobs_topic: &str,
    subscription: &str,
    port: u16,
) -> Vec<(&'static str, String)> {
    vec![
        ("DUKASCOPY_URL", sim.base_url()),
        ("DUKASCOPY_TRANSPORT", "bi5".to_owned()),
        (
            "DUKASCOPY_BACKFILL_ADMIN_LISTEN",
            format!("127.0.0.1:{port}"),
        ),
        (
            "DUKASCOPY_BACKFILL_WORKER__JOBS_TOPIC",
            jobs_topic.to_owned(),
        ),
        (
            "DUKASCOPY_BACKFILL_WORKER__SUBSCRIPTION",
            subscription.to_owned(),
        ),
        ("DUKASCOPY_BACKFILL_WORKER__TASKS_IN_FLIGHT", "1".to_owned()),
        (
            "DUKASCOPY_BACKFILL_DUKASCOPY__MAX_CONCURRENCY",
            "2".to_owned(),
        ),
        (
            "DUKASCOPY_BACKFILL_DUKASCOPY__INITIAL_CONCURRENCY",
            "2".to_owned(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_finishes_after_restart_with_no_duplicate_rows() {
    let sim = DukascopySim::start().await.unwrap();
    // Two weekdays of USD/SGD, about 1,000 ticks an hour, each answer 100 ms late.
    let from = at("2024-04-16T00:00:00Z");
    let hours = 48;
    let generated = generate_hours("USDSGD", ms(from), hours, 5, 134_000, 21, 1_000, |_| false);
    for (h, t) in &generated {
        sim.publish_ticks("USDSGD", *h, 5, t.clone());
    }
    sim.set_latency(Duration::from_millis(100));
    let total: usize = generated.iter().map(|(_, t)| t.len()).sum();

    // The sink, into a database of this test's own.
    let (_, db_url) = database("tickflow_test_bf").await;
    let mut sink_cfg = timescale_sink::Config {
        pulsar: pulsar_config(),
        ..Default::default()
    };
    sink_cfg.database.url = Some(SecretString::new(db_url.clone()));
    sink_cfg.runtime.admin.listen = "127.0.0.1:0".parse().unwrap();
    // A subscription of its own from the topic's end: what earlier runs left there must not
    // count.
    let sink_subscription = unique("sink");
    subscribe_at_end(
        topic("USD/SGD"),
        &sink_subscription,
        tickflow_pulsar::SubscriptionType::KeyShared,
    )
    .await;
    sink_cfg.subscription.name = sink_subscription;
    sink_cfg.subscription.pattern =
        r"persistent://market-data/historical/dukascopy\.usd-sgd\.quote".to_owned();
    sink_cfg.subscription.refresh_ms = 500;
    sink_cfg.batch.linger_ms = 20;
    let sink = timescale_sink::Sink::build(sink_cfg).await.unwrap();
    let sink_stop = CancellationToken::new();
    let sink_task = tokio::spawn(sink.run(sink_stop.clone()));
    let db = sqlx::PgPool::connect(&db_url).await.unwrap();

    let jobs_topic = unique("jobs");
    let subscription = unique("backfill");
    let binary = env!("CARGO_BIN_EXE_dukascopy-backfill");
    let port = free_port();
    let first = ServiceProcess::start(
        binary,
        &worker(&sim, &jobs_topic, &subscription, port),
        port,
    )
    .await;
    let mut jobs = Jobs::new(&jobs_topic).await;
    jobs.enqueue("USD/SGD", from, 24).await;
    jobs.enqueue("USD/SGD", UnixNanos(from.0 + 24 * HOUR_NS), 24)
        .await;

    // Kill it (SIGKILL) once some hours of the first day are published, mid-task.
    eventually(Duration::from_secs(60), "some hours published", || async {
        value(
            &first.metrics().await,
            "dukascopy_backfill_hours_total{status=\"complete\"}",
        ) >= 5.0
    })
    .await;
    drop(first);
    let requests_before = sim.requests().len();
    assert!(
        requests_before < hours,
        "killed in the middle ({requests_before} requests)"
    );

    let port = free_port();
    let second = ServiceProcess::start(
        binary,
        &worker(&sim, &jobs_topic, &subscription, port),
        port,
    )
    .await;
    let covered = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM coverage WHERE source = 'dukascopy' AND symbol = 'USD/SGD' \
             AND hour >= $1 AND hour < $2 AND status = 'complete'",
        )
        .bind(chrono_at(from))
        .bind(chrono_at(UnixNanos(from.0 + 48 * HOUR_NS)))
        .fetch_one(&db)
        .await
        .unwrap_or(0)
    };
    eventually(
        Duration::from_secs(120),
        "every hour complete in coverage",
        || async { covered().await == 48 },
    )
    .await;
    let count = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT count(*), count(DISTINCT (time_ns, sequence)) FROM quotes \
             WHERE source = 'dukascopy' AND symbol = 'USD/SGD' AND time >= $1 AND time < $2",
        )
        .bind(chrono_at(from))
        .bind(chrono_at(UnixNanos(from.0 + 48 * HOUR_NS)))
        .fetch_one(&db)
        .await
        .unwrap()
    };
    eventually(Duration::from_secs(60), "every tick stored", || async {
        count().await.0 >= i64::try_from(total).unwrap()
    })
    .await;
    let (rows, distinct) = count().await;
    assert_eq!(rows, i64::try_from(total).unwrap(), "every tick once");
    assert_eq!(rows, distinct);
    // Per hour, the stored ticks are the served ones.
    for (h, served) in &generated {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM quotes WHERE source = 'dukascopy' AND symbol = 'USD/SGD' \
             AND time >= $1 AND time < $2",
        )
        .bind(chrono_at(UnixNanos(h * 1_000_000)))
        .bind(chrono_at(UnixNanos(h * 1_000_000 + HOUR_NS)))
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(n, i64::try_from(served.len()).unwrap());
    }
    // Some hours were downloaded twice: the killed worker's task was handed out again.
    assert!(
        sim.requests().len() > hours,
        "{} requests",
        sim.requests().len()
    );
    drop(second);
    sink_stop.cancel();
    let _ = sink_task.await;
}

fn chrono_at(t: UnixNanos) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_nanos(t.0)
}
