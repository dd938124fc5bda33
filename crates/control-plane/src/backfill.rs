//! Backfill jobs: validated, stored, split into one task per UTC day on
//! `persistent://market-data/control/backfill-jobs` (protobuf `BackfillTask`, key = symbol) for
//! the backfill workers' Shared subscription. Progress is read from what actually landed: the
//! sink's `coverage` table (complete and closed hours are done, missing hours are missing).
//!
//! `FillGaps` queues exactly the hours whose coverage is `missing` ([`missing_hours`]), grouped
//! into runs of consecutive hours ([`runs`]) and one task per run and UTC day ([`run_tasks`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use prost::Message as _;
use sqlx::PgPool;
use tickflow_pulsar::{PulsarClient, TopicName};
use tickflow_schema::{Source, Symbol};
use tokio::sync::Mutex;
use tonic::Status;

use crate::proto;

/// Seconds in an hour.
pub const HOUR: i64 = 3_600;

/// Publishes backfill tasks.
#[derive(Clone)]
pub struct JobQueue {
    producer: Arc<Mutex<pulsar::Producer<pulsar::TokioExecutor>>>,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue").finish_non_exhaustive()
    }
}

impl JobQueue {
    /// A producer of `control/backfill-jobs`.
    pub async fn new(client: &PulsarClient) -> Result<Self, Status> {
        let topic =
            TopicName::control("backfill-jobs").map_err(|e| Status::internal(e.to_string()))?;
        let producer = client
            .raw_producer(&topic)
            .await
            .map_err(|e| Status::unavailable(format!("cannot create the job producer: {e}")))?;
        Ok(Self {
            producer: Arc::new(Mutex::new(producer)),
        })
    }

    /// Publishes every task and waits until the broker has all of them.
    pub async fn publish(&self, tasks: &[proto::BackfillTask]) -> Result<(), Status> {
        let mut producer = self.producer.lock().await;
        let mut receipts = Vec::with_capacity(tasks.len());
        for task in tasks {
            let message = pulsar::producer::Message {
                payload: task.encode_to_vec(),
                partition_key: Some(task.symbol.clone()),
                ..Default::default()
            };
            receipts.push(
                producer
                    .send_non_blocking(message)
                    .await
                    .map_err(|e| Status::unavailable(format!("publishing backfill tasks: {e}")))?,
            );
        }
        drop(producer);
        for r in receipts {
            r.await
                .map_err(|e| Status::unavailable(format!("publishing backfill tasks: {e}")))?;
        }
        Ok(())
    }
}

/// A UTC instant from `YYYY-MM-DD` or RFC 3339.
pub fn instant(what: &str, input: &str) -> Result<DateTime<Utc>, Status> {
    let t = input.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default()));
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| {
            Status::invalid_argument(format!(
                "{what} {:?} is neither YYYY-MM-DD nor RFC 3339",
                t.chars().take(40).collect::<String>()
            ))
        })
}

/// The hour-aligned range `[from, to)` a job covers, validated: from < to, not before 2000,
/// at most 25 years.
pub fn hours(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(i64, i64), Status> {
    let lo = from.timestamp().div_euclid(HOUR) * HOUR;
    let hi = (to.timestamp() + HOUR - 1).div_euclid(HOUR) * HOUR;
    if lo >= hi {
        return Err(Status::invalid_argument(format!(
            "empty range: from {from} is not before to {to}"
        )));
    }
    if lo < 946_684_800 {
        return Err(Status::invalid_argument("from is before 2000-01-01"));
    }
    if hi - lo > 25 * 366 * 24 * HOUR {
        return Err(Status::invalid_argument(
            "a backfill spans at most 25 years",
        ));
    }
    Ok((lo, hi))
}

/// One task per UTC day of `[lo, hi)` (seconds, hour-aligned).
pub fn tasks(
    job_id: &str,
    symbol: &Symbol,
    source: Source,
    lo: i64,
    hi: i64,
) -> Vec<proto::BackfillTask> {
    let mut out = Vec::new();
    let mut start = lo;
    while start < hi {
        let day_end = (start.div_euclid(86_400) + 1) * 86_400;
        let end = day_end.min(hi);
        out.push(proto::BackfillTask {
            job_id: job_id.to_owned(),
            symbol: symbol.to_string(),
            source: source.as_str().to_owned(),
            hour_start_ns: start * 1_000_000_000,
            hours: u32::try_from((end - start) / HOUR).unwrap_or(0),
        });
        start = end;
    }
    out
}

/// The maximal runs `[start, end)` of consecutive hours among `hours` (seconds, hour-aligned,
/// in any order, duplicates allowed), oldest first.
pub fn runs(hours: &[i64]) -> Vec<(i64, i64)> {
    let mut sorted = hours.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for h in sorted {
        match out.last_mut() {
            Some((_, end)) if *end == h => *end = h + HOUR,
            _ => out.push((h, h + HOUR)),
        }
    }
    out
}

/// The tasks of some runs of hours: one per run and UTC day (see [`tasks`]).
pub fn run_tasks(
    job_id: &str,
    symbol: &Symbol,
    source: Source,
    runs: &[(i64, i64)],
) -> Vec<proto::BackfillTask> {
    runs.iter()
        .flat_map(|&(lo, hi)| tasks(job_id, symbol, source, lo, hi))
        .collect()
}

/// An instant (seconds) as RFC 3339 UTC, `2024-01-01T05:00:00Z`.
pub fn rfc3339(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// Whether the error is "relation does not exist" (the sink has not created `coverage` yet).
fn no_table<T: Default>(r: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
    match r {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Ok(T::default()),
        other => other,
    }
}

/// The hours of `[lo, hi)` (seconds, hour-aligned) whose `quote` coverage is `missing`, oldest
/// first; none while the sink has not created the table.
pub async fn missing_hours(
    pool: &PgPool,
    symbol: &str,
    source: &str,
    lo: i64,
    hi: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    let rows: Vec<DateTime<Utc>> = no_table(
        sqlx::query_scalar(
            "SELECT hour FROM public.coverage \
             WHERE source = $1 AND symbol = $2 AND kind = 'quote' AND status = 'missing' \
               AND hour >= $3 AND hour < $4",
        )
        .bind(source)
        .bind(symbol)
        .bind(at(lo))
        .bind(at(hi))
        .fetch_all(pool)
        .await,
    )?;
    let hours: std::collections::BTreeSet<i64> = rows
        .iter()
        .map(|t| t.timestamp().div_euclid(HOUR) * HOUR)
        .collect();
    Ok(hours.into_iter().collect())
}

/// Per symbol, the hours of `[lo, hi)` whose `quote` coverage of `source` is settled: complete,
/// or closed (the market was); none while the sink has not created the table.
pub async fn settled_hours(
    pool: &PgPool,
    source: &str,
    lo: i64,
    hi: i64,
) -> Result<HashMap<String, BTreeSet<i64>>, sqlx::Error> {
    let rows: Vec<(String, DateTime<Utc>)> = no_table(
        sqlx::query_as(
            "SELECT symbol, hour FROM public.coverage \
             WHERE source = $1 AND kind = 'quote' AND status IN ('complete', 'closed') \
               AND hour >= $2 AND hour < $3",
        )
        .bind(source)
        .bind(at(lo))
        .bind(at(hi))
        .fetch_all(pool)
        .await,
    )?;
    let mut out: HashMap<String, BTreeSet<i64>> = HashMap::new();
    for (symbol, hour) in rows {
        out.entry(symbol)
            .or_default()
            .insert(hour.timestamp().div_euclid(HOUR) * HOUR);
    }
    Ok(out)
}

/// Done (complete or closed) and missing hours of `[lo, hi)` from the sink's `coverage`
/// table; zeros while the sink has not created it.
pub async fn progress(
    pool: &PgPool,
    symbol: &str,
    source: &str,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
) -> Result<(i64, i64), sqlx::Error> {
    let r: Result<(i64, i64), sqlx::Error> = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status IN ('complete', 'closed')), \
                count(*) FILTER (WHERE status = 'missing') \
         FROM public.coverage WHERE symbol = $1 AND source = $2 AND hour >= $3 AND hour < $4",
    )
    .bind(symbol)
    .bind(source)
    .bind(lo)
    .bind(hi)
    .fetch_one(pool)
    .await;
    match r {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Ok((0, 0)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_split_by_day_and_covers_every_hour_once() {
        let from = instant("from", "2024-01-01T05:30:00Z").unwrap();
        let to = instant("to", "2024-01-03").unwrap();
        let (lo, hi) = hours(from, to).unwrap();
        assert_eq!(hi - lo, 43 * HOUR, "05:00 on the 1st to 00:00 on the 3rd");
        let t = tasks(
            "j",
            &Symbol::parse("EUR/USD").unwrap(),
            Source::Dukascopy,
            lo,
            hi,
        );
        assert_eq!(t.iter().map(|t| t.hours).collect::<Vec<_>>(), [19, 24]);
        assert_eq!(
            t[1].hour_start_ns,
            instant("x", "2024-01-02").unwrap().timestamp() * 1_000_000_000
        );
    }

    #[test]
    fn consecutive_hours_become_runs() {
        let h = |n: i64| 1_704_067_200 + n * HOUR; // 2024-01-01T00:00Z + n hours
        assert_eq!(runs(&[]), []);
        assert_eq!(runs(&[h(3)]), [(h(3), h(4))]);
        assert_eq!(
            runs(&[h(5), h(1), h(2), h(2), h(7), h(6)]),
            [(h(1), h(3)), (h(5), h(8))],
            "unordered and duplicated input"
        );
        // A run across midnight is one run and two tasks.
        let r = runs(&[h(22), h(23), h(24), h(25), h(30)]);
        assert_eq!(r, [(h(22), h(26)), (h(30), h(31))]);
        let t = run_tasks(
            "fill-gaps-x",
            &Symbol::parse("EUR/USD").unwrap(),
            Source::Dukascopy,
            &r,
        );
        assert_eq!(
            t.iter()
                .map(|t| (t.hour_start_ns / 1_000_000_000, t.hours))
                .collect::<Vec<_>>(),
            [(h(22), 2), (h(24), 2), (h(30), 1)]
        );
        assert!(t.iter().all(|t| t.job_id == "fill-gaps-x"));
        assert_eq!(rfc3339(h(25)), "2024-01-02T01:00:00Z");
    }

    #[test]
    fn bad_ranges_are_refused() {
        let d = |s| instant("t", s).unwrap();
        assert!(hours(d("2024-01-02"), d("2024-01-01")).is_err());
        assert!(hours(d("2024-01-01"), d("2024-01-01")).is_err());
        assert!(hours(d("1999-01-01"), d("2024-01-01")).is_err());
        assert!(hours(d("2000-01-01"), d("2024-01-01")).is_ok());
        assert!(
            hours(d("2000-01-01"), d("2030-01-01")).is_err(),
            "more than 25 years"
        );
        assert!(instant("from", "next tuesday").is_err());
    }
}
