//! The service against the fake Dukascopy and the real Pulsar: tasks in, quotes and coverage
//! markers out, exact, for both transports, with faults.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use dukascopy_backfill::config::TransportKind;
use dukascopy_backfill::ticks::volume_units;
use rust_decimal::Decimal;
use support::*;
use tickflow_calendar::ForexCalendar;
use tickflow_schema::{CoverageStatus, Quote, Tick, UnixNanos};
use venue_sim::dukascopy::{DukascopySim, Fault, SimTick, generate_hours};

fn fixture(path: &str) -> bytes::Bytes {
    std::fs::read(tickflow_testkit::fixture(path))
        .unwrap()
        .into()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Waits until a coverage marker exists for every hour of `[from, to)`.
async fn until_covered(reader: &mut Reader, from: UnixNanos, to: UnixNanos) -> Vec<Tick> {
    let hours = usize::try_from((to.0 - from.0) / HOUR_NS).unwrap();
    reader
        .until(Duration::from_secs(60), |ticks| {
            let mut seen: Vec<i64> = coverage(ticks, from, to).iter().map(|c| c.hour.0).collect();
            seen.sort_unstable();
            seen.dedup();
            seen.len() >= hours
        })
        .await
        .to_vec()
}

/// The quotes `ticks` should decode to.
fn expected(
    hour: UnixNanos,
    scale: u32,
    ticks: &[SimTick],
) -> Vec<(i64, Decimal, Decimal, Decimal, Decimal, u64)> {
    ticks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                hour.0 + i64::from(t.ms_in_hour) * 1_000_000,
                Decimal::new(i64::from(t.ask_points), scale),
                Decimal::new(i64::from(t.bid_points), scale),
                volume_units(t.ask_volume).unwrap(),
                volume_units(t.bid_volume).unwrap(),
                u64::try_from(i).unwrap(),
            )
        })
        .collect()
}

fn actual(quotes: &[&Quote]) -> Vec<(i64, Decimal, Decimal, Decimal, Decimal, u64)> {
    let mut v: Vec<_> = quotes
        .iter()
        .map(|q| {
            (
                q.event_time.0,
                q.ask,
                q.bid,
                q.ask_size,
                q.bid_size,
                q.sequence,
            )
        })
        .collect();
    v.sort_by_key(|x| x.5);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bi5_fixture_hour_is_published_exactly_with_its_coverage() {
    let sim = DukascopySim::start().await.unwrap();
    let hour = at("2023-02-20T12:00:00Z");
    sim.publish_bi5(
        "BTCUSD",
        ms(hour),
        fixture("dukascopy/BTCUSD/2023/01/20/12h_ticks.bi5"),
    );
    let jobs_topic = unique("jobs");
    let service = Running::start(config(&sim, TransportKind::Bi5, &jobs_topic)).await;
    let mut reader = reader("BTC/USD").await;
    Jobs::new(&jobs_topic)
        .await
        .enqueue("BTC/USD", hour, 1)
        .await;

    let end = UnixNanos(hour.0 + HOUR_NS);
    let ticks = until_covered(&mut reader, hour, end).await;
    let q = quotes_in(&ticks, hour, end);
    assert_eq!(q.len(), 8523, "PROVENANCE: 8,523 ticks");
    let first = q.iter().find(|q| q.sequence == 0).unwrap();
    assert_eq!(first.event_time, UnixNanos(1_676_894_400_084 * 1_000_000));
    assert_eq!((first.ask, first.bid), (dec("24921.5"), dec("24849.4")));
    assert_eq!(first.venue_symbol, "BTCUSD");
    assert!(!first.indicative);
    let last = q.iter().find(|q| q.sequence == 8522).unwrap();
    assert_eq!(last.event_time, UnixNanos(1_676_897_998_781 * 1_000_000));
    assert_eq!((last.ask, last.bid), (dec("24856.4"), dec("24784.7")));
    let cov = coverage(&ticks, hour, end);
    assert_eq!(cov.len(), 1);
    assert_eq!(
        (cov[0].status, cov[0].ticks),
        (CoverageStatus::Complete, 8523)
    );
    // The marker follows the hour's quotes on the topic.
    let marker_at = ticks
        .iter()
        .position(|t| matches!(t, Tick::Coverage(c) if c.hour == hour))
        .unwrap();
    assert!(
        ticks[..marker_at]
            .iter()
            .filter(|t| matches!(t, Tick::Quote(q) if q.event_time >= hour && q.event_time < end))
            .count()
            == 8523
    );
    assert_eq!(sim.requests_for("BTCUSD", ms(hour)), 1);
    assert_eq!(
        service
            .metric("dukascopy_backfill_ticks_published_total")
            .await,
        8523.0
    );
    assert_eq!(
        service
            .metric("dukascopy_backfill_hours_total{status=\"complete\"}")
            .await,
        1.0
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_fixture_hour_is_published_exactly() {
    let sim = DukascopySim::start().await.unwrap();
    let hour = at("2026-07-13T12:00:00Z");
    sim.publish_json(
        "EURUSD",
        ms(hour),
        fixture("dukascopy/jetta_json/ticks-EUR-USD-2026-7-13-12.json"),
    );
    let jobs_topic = unique("jobs");
    let service = Running::start(config(&sim, TransportKind::Json, &jobs_topic)).await;
    let mut reader = reader("EUR/USD").await;
    Jobs::new(&jobs_topic)
        .await
        .enqueue("EUR/USD", hour, 1)
        .await;

    let end = UnixNanos(hour.0 + HOUR_NS);
    let ticks = until_covered(&mut reader, hour, end).await;
    let q = quotes_in(&ticks, hour, end);
    assert_eq!(q.len(), 3551);
    let first = q.iter().find(|q| q.sequence == 0).unwrap();
    assert_eq!(first.event_time, UnixNanos(1_783_944_000_093 * 1_000_000));
    assert_eq!((first.ask, first.bid), (dec("1.14277"), dec("1.14273")));
    assert_eq!(
        (first.ask_size, first.bid_size),
        (dec("1800000"), dec("2700000"))
    );
    let last = q.iter().find(|q| q.sequence == 3550).unwrap();
    assert_eq!(last.event_time, UnixNanos(1_783_947_597_150 * 1_000_000));
    assert_eq!((last.ask, last.bid), (dec("1.14310"), dec("1.14309")));
    let cov = coverage(&ticks, hour, end);
    assert_eq!(
        (cov[0].status, cov[0].ticks),
        (CoverageStatus::Complete, 3551)
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 1, "one request: {requests:?}");
    service.stop().await;
}

/// A forex weekend across the US change to summer time, with every fault the venue has: each
/// hour gets exactly one marker with the right status, and the complete hours hold exactly the
/// ticks the venue served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hour_is_recorded_complete_closed_or_missing() {
    let sim = DukascopySim::start().await.unwrap();
    let calendar = ForexCalendar::standard();
    // Friday 19:00 UTC to Sunday 23:00 UTC. The week closes Friday 17:00 New York (22:00 UTC,
    // still winter time) and opens Sunday 17:00 New York (21:00 UTC: summer time began at 02:00).
    let from = at("2024-03-08T19:00:00Z");
    let hours = 52;
    let to = UnixNanos(from.0 + hours * HOUR_NS);
    let generated = generate_hours("EURGBP", ms(from), 52, 5, 85_000, 11, 300, |h| {
        !calendar.is_open(UnixNanos(h * 1_000_000))
    });
    for (h, ticks) in &generated {
        sim.publish_ticks("EURGBP", *h, 5, ticks.clone());
    }
    let hour = |s: &str| at(s);
    let open_count = generated.iter().filter(|(_, t)| !t.is_empty()).count();
    assert_eq!(
        open_count,
        3 + 2,
        "Friday 19-21 and Sunday 21-22 UTC are open"
    );
    // Faults.
    let fri19 = hour("2024-03-08T19:00:00Z");
    let fri20 = hour("2024-03-08T20:00:00Z");
    let fri21 = hour("2024-03-08T21:00:00Z");
    let sun21 = hour("2024-03-10T21:00:00Z");
    let sun22 = hour("2024-03-10T22:00:00Z");
    sim.fail_next(
        "EURGBP",
        ms(fri19),
        [
            Fault::Status(503),
            Fault::RetryAfter(429, 0),
            Fault::Status(500),
        ],
    );
    sim.unpublish("EURGBP", ms(fri20));
    sim.fail_next(
        "EURGBP",
        ms(fri21),
        (0..10).map(|_| Fault::Garbage(bytes::Bytes::from_static(b"\x00\x01garbage, not LZMA"))),
    );
    sim.fail_next("EURGBP", ms(sun21), [Fault::Timeout]);
    sim.fail_next("EURGBP", ms(sun22), [Fault::Html, Fault::Truncated]);

    let jobs_topic = unique("jobs");
    let service = Running::start(config(&sim, TransportKind::Bi5, &jobs_topic)).await;
    let mut reader = reader("EUR/GBP").await;
    let mut jobs = Jobs::new(&jobs_topic).await;
    jobs.enqueue("EUR/GBP", from, 5).await;
    jobs.enqueue("EUR/GBP", hour("2024-03-09T00:00:00Z"), 24)
        .await;
    jobs.enqueue("EUR/GBP", hour("2024-03-10T00:00:00Z"), 23)
        .await;
    let ticks = until_covered(&mut reader, from, to).await;

    let cov = coverage(&ticks, from, to);
    assert_eq!(cov.len(), 52, "one marker per hour");
    let status: BTreeMap<i64, (CoverageStatus, u64, String)> = cov
        .iter()
        .map(|c| (c.hour.0, (c.status, c.ticks, c.detail.clone())))
        .collect();
    for (h, served) in &generated {
        let h = UnixNanos(h * 1_000_000);
        let (s, n, detail) = &status[&h.0];
        if h == fri20 {
            assert_eq!(
                *s,
                CoverageStatus::Missing,
                "404 in trading hours is not 'no data'"
            );
            assert!(detail.contains("empty answer"), "{detail}");
        } else if h == fri21 {
            assert_eq!(*s, CoverageStatus::Missing);
            assert!(detail.contains("not a Dukascopy LZMA body"), "{detail}");
        } else if served.is_empty() {
            assert_eq!(
                (*s, *n),
                (CoverageStatus::Closed, 0),
                "{}",
                h.format_rfc3339(0)
            );
        } else {
            assert_eq!(
                (*s, *n),
                (
                    CoverageStatus::Complete,
                    u64::try_from(served.len()).unwrap()
                )
            );
            let end = UnixNanos(h.0 + HOUR_NS);
            assert_eq!(
                actual(&quotes_in(&ticks, h, end)),
                expected(h, 5, served),
                "{}",
                h.format_rfc3339(0)
            );
        }
    }
    for bad in [fri20, fri21] {
        assert!(
            quotes_in(&ticks, bad, UnixNanos(bad.0 + HOUR_NS)).is_empty(),
            "nothing of a bad hour is published"
        );
    }
    assert_eq!(
        sim.requests_for("EURGBP", ms(fri21)),
        4,
        "all attempts used"
    );
    assert_eq!(
        sim.requests_for("EURGBP", ms(fri20)),
        2,
        "an empty answer is asked once more"
    );
    let m = metrics(service.handle.admin_addr()).await;
    assert!(
        m.contains("dukascopy_backfill_hours_missing_total{reason=\"empty\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("dukascopy_backfill_hours_missing_total{reason=\"failed\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("dukascopy_backfill_hours_failed_total{error=\"corrupt\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("dukascopy_backfill_hours_total{status=\"closed\"} 47"),
        "{m}"
    );
    assert!(
        m.contains("dukascopy_backfill_hours_total{status=\"complete\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("dukascopy_backfill_retries_total{reason=\"timeout\"} 1"),
        "{m}"
    );
    service.stop().await;
}

/// A CDN that refuses more than two requests at once: the limit comes down, nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_brings_the_concurrency_down_and_loses_nothing() {
    let sim = DukascopySim::start().await.unwrap();
    let from = at("2024-05-14T00:00:00Z");
    let generated = generate_hours("USDCHF", ms(from), 48, 5, 90_000, 3, 40, |_| false);
    for (h, t) in &generated {
        sim.publish_ticks("USDCHF", *h, 5, t.clone());
    }
    sim.set_max_concurrent(Some(2));
    sim.set_latency(Duration::from_millis(30));
    let jobs_topic = unique("jobs");
    let mut cfg = config(&sim, TransportKind::Json, &jobs_topic);
    cfg.dukascopy.initial_concurrency = 8;
    cfg.dukascopy.max_concurrency = 8;
    cfg.dukascopy.attempts = 20;
    cfg.dukascopy.retry.max_ms = 50;
    let service = Running::start(cfg).await;
    let mut reader = reader("USD/CHF").await;
    let mut jobs = Jobs::new(&jobs_topic).await;
    jobs.enqueue("USD/CHF", from, 24).await;
    jobs.enqueue("USD/CHF", UnixNanos(from.0 + 24 * HOUR_NS), 24)
        .await;
    let to = UnixNanos(from.0 + 48 * HOUR_NS);
    let ticks = until_covered(&mut reader, from, to).await;
    let cov = coverage(&ticks, from, to);
    assert_eq!(cov.len(), 48);
    assert!(
        cov.iter().all(|c| c.status == CoverageStatus::Complete),
        "{cov:?}"
    );
    let total: usize = generated.iter().map(|(_, t)| t.len()).sum();
    assert_eq!(quotes_in(&ticks, from, to).len(), total);
    assert!(
        service
            .metric("dukascopy_backfill_retries_total{reason=\"throttled\"}")
            .await
            > 0.0
    );
    assert!(
        service.handle.concurrency_limit() < 8,
        "the limit came down"
    );
    service.stop().await;
}

/// Finished hours are kept on disk: a rerun asks the venue for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_is_served_from_the_cache() {
    let sim = DukascopySim::start().await.unwrap();
    let from = at("2024-06-04T10:00:00Z");
    let generated = generate_hours("USDJPY", ms(from), 3, 3, 156_000, 5, 100, |_| false);
    for (h, t) in &generated {
        sim.publish_ticks("USDJPY", *h, 3, t.clone());
    }
    // The first answer for the first hour is a block page: it must not be what is cached.
    sim.fail_next("USDJPY", ms(from), [Fault::Html]);
    let dir = tempfile::tempdir().unwrap();
    let jobs_topic = unique("jobs");
    let mut cfg = config(&sim, TransportKind::Bi5, &jobs_topic);
    cfg.dukascopy.cache_dir = Some(dir.path().to_owned());
    cfg.dukascopy.cache_min_age_secs = 0;
    let service = Running::start(cfg).await;
    let to = UnixNanos(from.0 + 3 * HOUR_NS);
    let mut jobs = Jobs::new(&jobs_topic).await;
    for run in 0..2 {
        let mut reader = reader("USD/JPY").await;
        jobs.enqueue("USD/JPY", from, 3).await;
        let ticks = until_covered(&mut reader, from, to).await;
        for (h, served) in &generated {
            let h = UnixNanos(h * 1_000_000);
            assert_eq!(
                actual(&quotes_in(&ticks, h, UnixNanos(h.0 + HOUR_NS))),
                expected(h, 3, served),
                "run {run}"
            );
        }
    }
    assert_eq!(
        sim.requests_for("USDJPY", ms(from)),
        2,
        "the block page, then the data, then nothing"
    );
    assert_eq!(sim.requests_for("USDJPY", ms(from) + 3_600_000), 1);
    assert_eq!(
        service.metric("dukascopy_backfill_cache_hits_total").await,
        3.0
    );
    service.stop().await;
}

/// Tasks that can never succeed are dropped with a count, and the queue goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_tasks_are_rejected_and_the_queue_goes_on() {
    let sim = DukascopySim::start().await.unwrap();
    let hour = at("2024-06-05T10:00:00Z");
    let generated = generate_hours("AUDUSD", ms(hour), 1, 5, 66_000, 5, 50, |_| false);
    sim.publish_ticks("AUDUSD", ms(hour), 5, generated[0].1.clone());
    let jobs_topic = unique("jobs");
    let service = Running::start(config(&sim, TransportKind::Json, &jobs_topic)).await;
    let mut reader = reader("AUD/USD").await;
    let mut jobs = Jobs::new(&jobs_topic).await;
    jobs.enqueue("DOGE/USD", hour, 1).await;
    jobs.enqueue("AUD/USD", UnixNanos(hour.0 + 1), 1).await;
    jobs.enqueue("AUD/USD", hour, 1).await;
    let end = UnixNanos(hour.0 + HOUR_NS);
    let ticks = until_covered(&mut reader, hour, end).await;
    assert_eq!(quotes_in(&ticks, hour, end).len(), generated[0].1.len());
    assert_eq!(
        service
            .metric("dukascopy_backfill_tasks_total{outcome=\"rejected\"}")
            .await,
        2.0
    );
    service.stop().await;
}
