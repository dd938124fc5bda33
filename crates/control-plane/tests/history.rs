//! History against the real PostgreSQL and Pulsar: `FillGaps` queues exactly the missing hours,
//! follow mode queues what became available and retries what is still missing, and a history
//! start given to `AddSymbol` starts a backfill up to the newest available hour. The tasks are
//! read from `control/backfill-jobs` with a subscription made before the calls; coverage is
//! written straight into the sink's `coverage` table (made by the sink's own schema code).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use control_plane::follow::FollowConfig;
use control_plane::proto::backfill_service_client::BackfillServiceClient;
use control_plane::proto::{AddSymbolRequest, BackfillTask, FillGapsRequest, GetBackfillRequest};
use prost::Message as _;
use tickflow_pulsar::{
    ConsumerSpec, InitialPosition, SubscriptionType, TickConsumer, TopicName, TopicSelection,
};
use tonic::Code;

const HOUR: i64 = 3_600;

/// The tasks published on `control/backfill-jobs` from the moment it was made, with when each
/// arrived.
struct Tasks {
    consumer: TickConsumer,
    symbols: BTreeSet<String>,
    got: Vec<(Instant, BackfillTask)>,
}

impl Tasks {
    /// Keeps the tasks of `symbols` (other tests publish theirs on the same topic).
    async fn new(symbols: &[&str]) -> Self {
        let client = tickflow_pulsar::PulsarClient::connect(&pulsar_config(), "cp-history-test")
            .await
            .unwrap();
        let consumer = client
            .tick_consumer(ConsumerSpec {
                topics: TopicSelection::Topics(vec![TopicName::control("backfill-jobs").unwrap()]),
                subscription: format!("test-{}", uuid::Uuid::new_v4().simple()),
                sub_type: SubscriptionType::Exclusive,
                initial_position: InitialPosition::Latest,
                consumer_name: None,
            })
            .await
            .unwrap();
        Self {
            consumer,
            symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
            got: Vec::new(),
        }
    }

    /// Takes what arrives within `wait`.
    async fn take(&mut self, wait: Duration) {
        if let Ok(next) = tokio::time::timeout(wait, self.consumer.next()).await {
            let d = next.unwrap().unwrap();
            let t = BackfillTask::decode(d.payload()).unwrap();
            self.consumer.ack(&d).await.unwrap();
            if self.symbols.contains(&t.symbol) {
                self.got.push((Instant::now(), t));
            }
        }
    }

    /// Reads until `done` holds, at most `limit`.
    async fn until(
        &mut self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[(Instant, BackfillTask)]) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while !done(&self.got) {
            assert!(
                Instant::now() < deadline,
                "not within {limit:?}: {what}; got {:#?}",
                self.got.iter().map(|(_, t)| t).collect::<Vec<_>>()
            );
            self.take(Duration::from_millis(200)).await;
        }
    }

    /// Reads for `period` more.
    async fn settle(&mut self, period: Duration) {
        let deadline = Instant::now() + period;
        while Instant::now() < deadline {
            self.take(deadline.saturating_duration_since(Instant::now()))
                .await;
        }
    }

    /// The tasks of one job.
    fn of(&self, job_id: &str) -> Vec<&BackfillTask> {
        self.got
            .iter()
            .map(|(_, t)| t)
            .filter(|t| t.job_id == job_id)
            .collect()
    }
}

/// Every hour a task covers (seconds).
fn hours_of(t: &BackfillTask) -> Vec<i64> {
    let start = t.hour_start_ns / 1_000_000_000;
    (0..i64::from(t.hours)).map(|i| start + i * HOUR).collect()
}

/// A task never crosses midnight UTC.
fn within_one_day(t: &BackfillTask) -> bool {
    let start = t.hour_start_ns / 1_000_000_000;
    t.hours >= 1
        && (start + i64::from(t.hours) * HOUR - 1).div_euclid(86_400) == start.div_euclid(86_400)
}

fn ts(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

/// The sink's schema (its migrations: `coverage` among them) in the plane's database.
async fn sink_schema(p: &Plane) -> sqlx::PgPool {
    let db = sqlx::PgPool::connect(&p.db_url).await.unwrap();
    timescale_sink::schema::prepare(&db).await.unwrap();
    db
}

async fn cover(db: &sqlx::PgPool, source: &str, symbol: &str, kind: &str, hour: i64, status: &str) {
    sqlx::query(
        "INSERT INTO public.coverage (source, symbol, kind, hour, status, ticks, detail, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, 0, '', now()) \
         ON CONFLICT (source, symbol, kind, hour) DO UPDATE SET status = excluded.status",
    )
    .bind(source)
    .bind(symbol)
    .bind(kind)
    .bind(at(hour))
    .bind(status)
    .execute(db)
    .await
    .unwrap();
}

fn fill(symbol: &str, source: &str, from: &str, to: &str) -> FillGapsRequest {
    FillGapsRequest {
        symbol: symbol.into(),
        source: source.into(),
        from: from.into(),
        to: to.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_gaps_queues_exactly_the_missing_hours() {
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let mut c = symbols(&p.url, TOKEN).await;
    let s = unique("G");
    let live_only = unique("K");
    c.add_symbol(add(&s, &["dukascopy"])).await.unwrap();
    c.add_symbol(add(&live_only, &["kraken"])).await.unwrap();
    let mut tasks = Tasks::new(&[&s, &live_only]).await;
    let mut b = BackfillServiceClient::with_interceptor(channel(&p.url).await, bearer(TOKEN));
    let (from, to) = ("2024-01-01T20:00:00Z", "2024-01-02T06:00:00Z");

    // No coverage table yet (the sink has not started): nothing is missing.
    let r = b
        .fill_gaps(fill(&s, "", from, to))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.hours, r.job_id.as_str(), r.ranges.len()), (0, "", 0));

    let db = sink_schema(&p).await;
    let h = |x: &str| ts(&format!("2024-01-{x}:00:00Z"));
    for (hour, status) in [
        ("01T19", "missing"), // before `from`
        ("01T20", "complete"),
        ("01T21", "missing"),
        ("01T22", "missing"),
        ("01T23", "missing"),
        ("02T00", "missing"),
        ("02T01", "closed"),
        // 02T02 absent: never queued by FillGaps
        ("02T03", "missing"),
        ("02T04", "complete"),
        ("02T05", "missing"),
        ("02T06", "missing"), // at `to`: excluded
    ] {
        cover(&db, "dukascopy", &s, "quote", h(hour), status).await;
    }
    // Missing, but of another kind, source or symbol.
    cover(&db, "dukascopy", &s, "trade", h("02T02"), "missing").await;
    cover(&db, "oanda", &s, "quote", h("02T02"), "missing").await;
    cover(&db, "dukascopy", &live_only, "quote", h("02T02"), "missing").await;

    let r = b
        .fill_gaps(fill(&s, "", from, to))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.hours, 6);
    assert!(r.job_id.starts_with("fill-gaps-"), "{}", r.job_id);
    assert!(uuid::Uuid::parse_str(r.job_id.trim_start_matches("fill-gaps-")).is_ok());
    let ranges: Vec<(&str, &str)> = r
        .ranges
        .iter()
        .map(|x| (x.from.as_str(), x.to.as_str()))
        .collect();
    assert_eq!(
        ranges,
        [
            ("2024-01-01T21:00:00Z", "2024-01-02T01:00:00Z"),
            ("2024-01-02T03:00:00Z", "2024-01-02T04:00:00Z"),
            ("2024-01-02T05:00:00Z", "2024-01-02T06:00:00Z"),
        ]
    );
    let job = r.job_id.clone();
    tasks
        .until(Duration::from_secs(30), "the fill-gaps tasks", |got| {
            got.iter()
                .filter(|(_, t)| t.job_id == job)
                .map(|(_, t)| t.hours)
                .sum::<u32>()
                >= 6
        })
        .await;
    tasks.settle(Duration::from_millis(500)).await;
    let mine = tasks.of(&job);
    // One task per run and UTC day: the run 21:00-01:00 is two.
    assert_eq!(
        mine.iter()
            .map(|t| (t.hour_start_ns / 1_000_000_000, t.hours))
            .collect::<Vec<_>>(),
        [
            (h("01T21"), 3),
            (h("02T00"), 1),
            (h("02T03"), 1),
            (h("02T05"), 1),
        ]
    );
    assert!(mine.iter().all(|t| within_one_day(t)));
    assert!(
        mine.iter()
            .all(|t| t.source == "dukascopy" && t.symbol == s)
    );
    let queued: BTreeSet<i64> = mine.iter().flat_map(|t| hours_of(t)).collect();
    let missing: BTreeSet<i64> = ["01T21", "01T22", "01T23", "02T00", "02T03", "02T05"]
        .into_iter()
        .map(h)
        .collect();
    assert_eq!(queued, missing, "exactly the missing hours");

    // Dates work as in StartBackfill: the whole two days hold two more missing hours.
    let r = b
        .fill_gaps(fill(&s, "dukascopy", "2024-01-01", "2024-01-03"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.hours, 8);
    assert_eq!(r.ranges.len(), 4);
    assert_eq!(r.ranges[0].from, "2024-01-01T19:00:00Z");
    assert_eq!(r.ranges[3].to, "2024-01-02T07:00:00Z");

    // Nothing missing in the range: nothing queued.
    let r = b
        .fill_gaps(fill(&s, "", "2024-01-02T01:00:00Z", "2024-01-02T03:00:00Z"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.hours, r.job_id.as_str(), r.ranges.len()), (0, "", 0));
    tasks.settle(Duration::from_secs(1)).await;
    let jobs: BTreeSet<&str> = tasks.got.iter().map(|(_, t)| t.job_id.as_str()).collect();
    assert_eq!(jobs.len(), 2, "two calls queued something: {jobs:?}");

    // Refused like StartBackfill.
    for (req, code) in [
        (fill(&s, "kraken", from, to), Code::InvalidArgument),
        (fill(&s, "binance", from, to), Code::InvalidArgument),
        (fill(&s, "", to, from), Code::InvalidArgument),
        (fill(&s, "", "soon", to), Code::InvalidArgument),
        (fill("", "", from, to), Code::InvalidArgument),
        (fill("NOTREG/USD", "", from, to), Code::FailedPrecondition),
        (fill(&live_only, "", from, to), Code::FailedPrecondition),
    ] {
        let e = b.fill_gaps(req.clone()).await.unwrap_err();
        assert_eq!(e.code(), code, "{req:?}: {}", e.message());
    }
}

/// Waits until the next hour is at least `margin` away, so that a test's window does not move
/// under it.
async fn away_from_the_hour(margin: Duration) {
    let left = HOUR - Utc::now().timestamp().rem_euclid(HOUR);
    let margin = i64::try_from(margin.as_secs()).unwrap();
    if left < margin {
        tokio::time::sleep(Duration::from_secs(u64::try_from(left + 1).unwrap())).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_mode_queues_available_hours_and_retries_missing_ones() {
    away_from_the_hour(Duration::from_secs(75)).await;
    let follow = FollowConfig {
        interval: Duration::from_secs(1),
        delay: Duration::ZERO,
        lookback_hours: 6,
        retry: Duration::from_secs(2),
    };
    let p = plane_with(
        &env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080"),
        follow,
        true,
    )
    .await;
    let db = sink_schema(&p).await;
    let mut c = symbols(&p.url, TOKEN).await;
    let s = unique("F");
    let live_only = unique("FK");
    let mut tasks = Tasks::new(&[&s, &live_only]).await;
    c.add_symbol(add(&s, &["dukascopy"])).await.unwrap();
    c.add_symbol(add(&live_only, &["kraken"])).await.unwrap();

    // With delay 0 the newest available hour ends at the last full hour.
    let end = Utc::now().timestamp().div_euclid(HOUR) * HOUR;
    let h = |n: i64| end - n * HOUR;
    // Registered 5 hours ago: the window is [end - 5 h, end); end - 6 h is before it.
    cover(&db, "dukascopy", &s, "quote", h(6), "missing").await;
    cover(&db, "dukascopy", &s, "quote", h(5), "complete").await;
    cover(&db, "dukascopy", &s, "quote", h(4), "closed").await;
    cover(&db, "dukascopy", &s, "quote", h(3), "missing").await;
    // h(2), h(1): no coverage yet.
    sqlx::query(
        "UPDATE control.symbol_sources SET created_at = now() - interval '5 hours' \
         WHERE symbol = ANY($1)",
    )
    .bind(vec![s.clone(), live_only.clone()])
    .execute(p.store.pool())
    .await
    .unwrap();

    let due: BTreeSet<i64> = [h(3), h(2), h(1)].into();
    tasks
        .until(Duration::from_secs(20), "the due hours queued", |got| {
            let seen: BTreeSet<i64> = got.iter().flat_map(|(_, t)| hours_of(t)).collect();
            due.is_subset(&seen)
        })
        .await;
    let first: BTreeSet<i64> = tasks.got.iter().flat_map(|(_, t)| hours_of(t)).collect();
    assert_eq!(
        first, due,
        "the missing and the absent hours, not the settled ones"
    );

    // The backfill worker finishes two hours; one stays missing.
    cover(&db, "dukascopy", &s, "quote", h(2), "complete").await;
    cover(&db, "dukascopy", &s, "quote", h(1), "complete").await;
    let marked = Instant::now();
    let count = |got: &[(Instant, BackfillTask)], hour: i64| {
        got.iter()
            .filter(|(_, t)| hours_of(t).contains(&hour))
            .count()
    };
    tasks
        .until(
            Duration::from_secs(20),
            "the missing hour queued twice more",
            |got| count(got, h(3)) >= 3,
        )
        .await;
    tasks.settle(Duration::from_secs(1)).await;

    for (_, t) in &tasks.got {
        assert_eq!(t.job_id, "follow");
        assert_eq!(t.source, "dukascopy");
        assert!(within_one_day(t), "{t:?}");
    }
    let all: Vec<(Instant, i64)> = tasks
        .got
        .iter()
        .flat_map(|(at, t)| hours_of(t).into_iter().map(|h| (*at, h)))
        .collect();
    for settled in [h(6), h(5), h(4)] {
        assert!(
            all.iter().all(|(_, x)| *x != settled),
            "settled or outside the window: {settled} in {all:?}"
        );
    }
    // A pass that began after the marks (every second) never queues those hours again.
    let later = marked + Duration::from_millis(1_500);
    for done in [h(2), h(1)] {
        assert!(
            all.iter().all(|(at, x)| *x != done || *at < later),
            "complete hour {done} queued again"
        );
    }
    // The missing hour comes back every `retry` (2 s), not at every pass (1 s).
    let times: Vec<Instant> = all
        .iter()
        .filter(|(_, x)| *x == h(3))
        .map(|(at, _)| *at)
        .collect();
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(1_500),
            "re-queued after {gap:?} only"
        );
    }
    // A symbol without dukascopy is not followed.
    assert!(tasks.got.iter().all(|(_, t)| t.symbol == s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_start_starts_a_backfill_up_to_the_newest_available_hour() {
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let mut c = symbols(&p.url, TOKEN).await;
    let mut b = BackfillServiceClient::with_interceptor(channel(&p.url).await, bearer(TOKEN));
    let s = unique("H");
    let other = unique("H");
    let mut tasks = Tasks::new(&[&s, &other]).await;
    let today = Utc::now().date_naive();
    let day = |n: u64| (today - chrono::Days::new(n)).to_string();
    let with_history = |since: &str| AddSymbolRequest {
        symbol: s.clone(),
        sources: vec!["dukascopy".into()],
        history_start: since.into(),
    };
    let delay = FollowConfig::default().delay;

    let before = control_plane::follow::horizon_end(Utc::now(), delay);
    let r = c
        .add_symbol(with_history(&day(2)))
        .await
        .unwrap()
        .into_inner();
    let after = control_plane::follow::horizon_end(Utc::now(), delay);
    let job = r.backfill_job_id.clone();
    assert!(uuid::Uuid::parse_str(&job).is_ok(), "{job:?}");
    let view = b
        .get_backfill(GetBackfillRequest { id: job.clone() })
        .await
        .unwrap()
        .into_inner();
    let lo = ts(&format!("{}T00:00:00Z", day(2)));
    let hi = ts(&view.to);
    assert_eq!(ts(&view.from), lo, "from the history start");
    assert!(
        hi == before || hi == after,
        "to the newest available hour: {} vs {before}/{after}",
        view.to
    );
    assert_eq!(i64::from(view.hours_total), (hi - lo) / HOUR);
    tasks
        .until(Duration::from_secs(30), "the job's tasks", |got| {
            got.iter()
                .filter(|(_, t)| t.job_id == job)
                .map(|(_, t)| i64::from(t.hours))
                .sum::<i64>()
                >= (hi - lo) / HOUR
        })
        .await;
    let mine = tasks.of(&job);
    assert!(mine.iter().all(|t| within_one_day(t)));
    let covered: Vec<i64> = mine.iter().flat_map(|t| hours_of(t)).collect();
    let want: Vec<i64> = (0..(hi - lo) / HOUR).map(|i| lo + i * HOUR).collect();
    assert_eq!(covered, want, "every hour once, in order");

    // The same or a later history start: nothing new. An earlier one: a new job from there.
    for since in [day(2), day(1)] {
        let r = c
            .add_symbol(with_history(&since))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.backfill_job_id, "", "{since}");
        assert!(r.already_existed);
    }
    let r = c
        .add_symbol(with_history(&day(3)))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.backfill_job_id.is_empty());
    assert_ne!(r.backfill_job_id, job);
    let view = b
        .get_backfill(GetBackfillRequest {
            id: r.backfill_job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ts(&view.from), ts(&format!("{}T00:00:00Z", day(3))));
    assert_eq!(
        r.symbol.unwrap().sources[0].history_start,
        day(3),
        "the history start moved back"
    );

    // No history start: no job.
    let r = c
        .add_symbol(add(&other, &["dukascopy", "kraken"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.backfill_job_id, "");
    let mut jobs: BTreeMap<String, usize> = BTreeMap::new();
    tasks.settle(Duration::from_millis(500)).await;
    for (_, t) in &tasks.got {
        *jobs.entry(t.job_id.clone()).or_default() += 1;
    }
    assert_eq!(jobs.len(), 2, "two jobs started: {jobs:?}");
}
