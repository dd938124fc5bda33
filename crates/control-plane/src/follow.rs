//! Follow mode: every registered `dukascopy` symbol's history is kept caught up without anyone
//! asking.
//!
//! Every `interval` the loop takes the *horizon*: the newest hour available upstream, an hour
//! being available `delay` after it ends (Dukascopy publishes an hour's file 1–2 h after it
//! ends). Per symbol it looks at the window `[max(start, end - lookback), end)`, `end` being the
//! end of the horizon hour and `start` the source's history start (00:00 UTC of that date) or,
//! without one, the hour the source was registered. Hours whose `quote` coverage is complete or
//! closed are done; every other hour of the window (no coverage yet, or `missing`) is queued as
//! backfill tasks (job id `follow`, one task per run of consecutive hours and UTC day) unless
//! this control plane queued it less than `retry` ago. So a new hour is queued once it becomes
//! available, and a missing one is retried every `retry`.
//!
//! The planning is pure ([`follow_window`], [`hours_to_enqueue`]) and tested without a clock;
//! [`run`] is the loop, [`Follower::run_once`] one pass of it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::prometheus_client::metrics::counter::Counter;
use tickflow_runtime::prometheus_client::registry::Registry;
use tickflow_schema::{Source, Symbol};

use crate::backfill::{self, HOUR};
use crate::service::State;

/// The job id of the tasks follow mode queues.
pub const JOB_ID: &str = "follow";

/// How follow mode runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowConfig {
    /// How often the loop runs; zero disables follow mode.
    pub interval: Duration,
    /// How long after an hour ends it is available upstream.
    pub delay: Duration,
    /// How many hours back from the horizon the loop looks.
    pub lookback_hours: u32,
    /// How long before an hour this control plane queued is queued again.
    pub retry: Duration,
}

impl Default for FollowConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            delay: Duration::from_secs(90 * 60),
            lookback_hours: 72,
            retry: Duration::from_secs(1_800),
        }
    }
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The end (exclusive, seconds) of the newest hour available upstream at `now`: the hour
/// `[h, h + 1 h)` is available from `h + 1 h + delay` on.
pub fn horizon_end(now: DateTime<Utc>, delay: Duration) -> i64 {
    now.timestamp()
        .saturating_sub(seconds(delay))
        .div_euclid(HOUR)
        * HOUR
}

/// Where a source's history starts (seconds, hour-aligned): 00:00 UTC of its history start,
/// else the hour it was registered.
pub fn history_origin(history_start: Option<NaiveDate>, registered_at: DateTime<Utc>) -> i64 {
    match history_start {
        Some(d) => d
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp(),
        None => registered_at.timestamp().div_euclid(HOUR) * HOUR,
    }
}

/// The hours follow mode looks at, `[lo, hi)` in seconds: `[max(origin, end - lookback), end)`
/// with `end` = [`horizon_end`]. `None` when that is empty (registered within the last hours,
/// or a zero lookback).
pub fn follow_window(now: DateTime<Utc>, config: &FollowConfig, origin: i64) -> Option<(i64, i64)> {
    let hi = horizon_end(now, config.delay);
    let lo = origin
        .div_euclid(HOUR)
        .saturating_mul(HOUR)
        .max(hi.saturating_sub(i64::from(config.lookback_hours) * HOUR));
    (lo < hi).then_some((lo, hi))
}

/// The hours of `window` to queue now: not settled (complete or closed), and not queued by us
/// less than `retry` before `now` (`last_queued` says when an hour last was).
pub fn hours_to_enqueue(
    window: (i64, i64),
    settled: &BTreeSet<i64>,
    last_queued: impl Fn(i64) -> Option<Instant>,
    now: Instant,
    retry: Duration,
) -> Vec<i64> {
    let (lo, hi) = window;
    (0..)
        .map(|i| lo + i * HOUR)
        .take_while(|h| *h < hi)
        .filter(|h| !settled.contains(h))
        .filter(|h| last_queued(*h).is_none_or(|at| now.saturating_duration_since(at) >= retry))
        .collect()
}

/// The follow mode's shared part: its configuration and when this control plane last queued
/// each (symbol, hour), which `AddSymbol` and `FillGaps` fill in too so that follow mode does
/// not queue again at once what they just queued.
#[derive(Debug, Default)]
pub struct Follow {
    /// How it runs.
    pub config: FollowConfig,
    queued: Mutex<HashMap<(String, i64), Instant>>,
}

impl Follow {
    /// Follow mode with `config`.
    pub fn new(config: FollowConfig) -> Self {
        Self {
            config,
            queued: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), Instant>> {
        self.queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `hours` of `symbol` were queued at `at`. Only hours follow mode may look at
    /// (from `now`'s lookback on) are kept: the map stays as small as the windows.
    pub fn note(&self, symbol: &Symbol, hours: impl IntoIterator<Item = i64>, at: Instant) {
        let now = Utc::now();
        let hi = horizon_end(now, self.config.delay);
        let lo = hi - i64::from(self.config.lookback_hours) * HOUR;
        let mut queued = self.lock();
        for h in hours {
            if h >= lo && h < hi + HOUR {
                queued.insert((symbol.to_string(), h), at);
            }
        }
    }

    /// When `hour` of `symbol` was last queued by this control plane.
    pub fn last_queued(&self, symbol: &str, hour: i64) -> Option<Instant> {
        self.lock().get(&(symbol.to_owned(), hour)).copied()
    }
}

/// Follow mode's metrics (prefix `control_plane_`).
#[derive(Debug, Clone, Default)]
pub struct FollowMetrics {
    /// Hours queued by follow mode.
    pub hours_enqueued: Counter,
    /// Passes of the loop that completed.
    pub runs: Counter,
}

impl FollowMetrics {
    /// Creates the metrics and registers them under `control_plane_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("control_plane");
        r.register(
            "follow_hours_enqueued",
            "Hours of history follow mode queued for backfill",
            m.hours_enqueued.clone(),
        );
        r.register(
            "follow_runs",
            "Completed passes of the follow loop",
            m.runs.clone(),
        );
        m
    }
}

/// Why a pass failed (it is retried at the next interval).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Publishing the tasks.
    #[error("{}", .0.message())]
    Publish(tonic::Status),
}

/// What one pass queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Symbols with something queued.
    pub symbols: usize,
    /// Hours queued.
    pub hours: usize,
    /// Tasks published.
    pub tasks: usize,
}

/// Runs the passes.
#[derive(Debug)]
pub struct Follower {
    state: State,
    metrics: FollowMetrics,
}

impl Follower {
    /// A follower of `state`'s symbols.
    pub fn new(state: State, metrics: FollowMetrics) -> Self {
        Self { state, metrics }
    }

    /// One pass at `now`: queues what is due and forgets what left every window.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<Pass, FollowError> {
        let Some(queue) = &self.state.jobs else {
            return Err(FollowError::Publish(tonic::Status::unavailable(
                "no Pulsar connection for backfill tasks",
            )));
        };
        let follow = &self.state.follow;
        let config = follow.config;
        let sources = self.state.store.history_sources(Source::Dukascopy).await?;
        let end = horizon_end(now, config.delay);
        let settled = backfill::settled_hours(
            self.state.store.pool(),
            Source::Dukascopy.as_str(),
            end - i64::from(config.lookback_hours) * HOUR,
            end,
        )
        .await
        .map_err(crate::store::StoreError::Database)?;
        let clock = Instant::now();
        let empty = BTreeSet::new();
        let mut windows: HashMap<String, (i64, i64)> = HashMap::new();
        let mut planned: Vec<(&Symbol, Vec<i64>)> = Vec::new();
        let mut tasks = Vec::new();
        for source in &sources {
            let origin = history_origin(source.history_start, source.registered_at);
            let Some(window) = follow_window(now, &config, origin) else {
                continue;
            };
            let name = source.symbol.as_str();
            windows.insert(name.to_owned(), window);
            let hours = hours_to_enqueue(
                window,
                settled.get(name).unwrap_or(&empty),
                |h| follow.last_queued(name, h),
                clock,
                config.retry,
            );
            if hours.is_empty() {
                continue;
            }
            tasks.extend(backfill::run_tasks(
                JOB_ID,
                &source.symbol,
                Source::Dukascopy,
                &backfill::runs(&hours),
            ));
            planned.push((&source.symbol, hours));
        }
        follow.lock().retain(|(symbol, hour), _| {
            windows
                .get(symbol)
                .is_some_and(|(lo, hi)| lo <= hour && hour < hi)
        });
        if !tasks.is_empty() {
            queue.publish(&tasks).await.map_err(FollowError::Publish)?;
        }
        let mut pass = Pass {
            tasks: tasks.len(),
            ..Pass::default()
        };
        let at = Instant::now();
        {
            let mut queued = follow.lock();
            for (symbol, hours) in &planned {
                pass.symbols += 1;
                pass.hours += hours.len();
                for h in hours {
                    queued.insert((symbol.to_string(), *h), at);
                }
            }
        }
        self.metrics
            .hours_enqueued
            .inc_by(u64::try_from(pass.hours).unwrap_or(0));
        self.metrics.runs.inc();
        Ok(pass)
    }
}

/// The loop: a pass every `interval` until `shutdown` (when the interval is zero it only waits
/// for `shutdown`).
pub async fn run(
    state: State,
    metrics: FollowMetrics,
    shutdown: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let config = state.follow.config;
    if config.interval.is_zero() {
        tracing::info!("follow mode is off (follow interval 0)");
        // Returning early would read as a failed task to the supervisor.
        shutdown.cancelled().await;
        return Ok(());
    }
    tracing::info!(
        interval_s = config.interval.as_secs(),
        delay_s = config.delay.as_secs(),
        lookback_h = config.lookback_hours,
        retry_s = config.retry.as_secs(),
        "follow mode on"
    );
    let follower = Follower::new(state, metrics);
    loop {
        match follower.run_once(Utc::now()).await {
            Ok(pass) if pass.hours > 0 => tracing::info!(
                symbols = pass.symbols,
                hours = pass.hours,
                tasks = pass.tasks,
                "follow: queued hours of history"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "follow: pass failed; retrying at the next interval")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(config.interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn s(x: &str) -> i64 {
        t(x).timestamp()
    }

    fn config(delay_s: u64, lookback_hours: u32) -> FollowConfig {
        FollowConfig {
            delay: Duration::from_secs(delay_s),
            lookback_hours,
            ..FollowConfig::default()
        }
    }

    #[test]
    fn an_hour_is_available_delay_after_it_ends() {
        let delay = Duration::from_secs(90 * 60);
        // 10:00-11:00 ends at 11:00 and is available at 12:30.
        assert_eq!(
            horizon_end(t("2024-03-05T12:29:59Z"), delay),
            s("2024-03-05T10:00:00Z")
        );
        assert_eq!(
            horizon_end(t("2024-03-05T12:30:00Z"), delay),
            s("2024-03-05T11:00:00Z")
        );
        assert_eq!(
            horizon_end(t("2024-03-05T13:29:59Z"), delay),
            s("2024-03-05T11:00:00Z")
        );
        // No delay: an hour is available the moment it ends.
        assert_eq!(
            horizon_end(t("2024-03-05T12:00:00Z"), Duration::ZERO),
            s("2024-03-05T12:00:00Z")
        );
        assert_eq!(
            horizon_end(t("2024-03-05T11:59:59Z"), Duration::ZERO),
            s("2024-03-05T11:00:00Z")
        );
        // Across midnight.
        assert_eq!(
            horizon_end(t("2024-03-06T01:00:00Z"), delay),
            s("2024-03-05T23:00:00Z")
        );
    }

    #[test]
    fn the_window_starts_at_the_origin_or_the_lookback() {
        let c = config(0, 6);
        let now = t("2024-03-05T12:00:01Z");
        // Registered at 09:40: 09:00 to 12:00.
        let origin = history_origin(None, t("2024-03-05T09:40:00Z"));
        assert_eq!(origin, s("2024-03-05T09:00:00Z"));
        assert_eq!(
            follow_window(now, &c, origin),
            Some((s("2024-03-05T09:00:00Z"), s("2024-03-05T12:00:00Z")))
        );
        // History from a date long ago: only the lookback.
        let origin = history_origin(
            NaiveDate::from_ymd_opt(2024, 1, 1),
            t("2024-03-05T09:40:00Z"),
        );
        assert_eq!(origin, s("2024-01-01T00:00:00Z"));
        assert_eq!(
            follow_window(now, &c, origin),
            Some((s("2024-03-05T06:00:00Z"), s("2024-03-05T12:00:00Z")))
        );
        // Registered this hour: nothing is available yet; at the next hour's end, one hour.
        let origin = history_origin(None, t("2024-03-05T12:00:00Z"));
        assert_eq!(follow_window(now, &c, origin), None);
        assert_eq!(
            follow_window(t("2024-03-05T13:00:00Z"), &c, origin),
            Some((s("2024-03-05T12:00:00Z"), s("2024-03-05T13:00:00Z")))
        );
        assert_eq!(
            follow_window(t("2024-03-05T12:59:59Z"), &c, origin),
            None,
            "one second before the hour ends"
        );
        // The default delay: the hour registered in at 12:xx is due at 14:30.
        let d = FollowConfig::default();
        assert_eq!(follow_window(t("2024-03-05T14:29:59Z"), &d, origin), None);
        assert_eq!(
            follow_window(t("2024-03-05T14:30:00Z"), &d, origin),
            Some((s("2024-03-05T12:00:00Z"), s("2024-03-05T13:00:00Z")))
        );
        // A zero lookback looks at nothing.
        assert_eq!(follow_window(now, &config(0, 0), 0), None);
    }

    #[test]
    fn the_window_moves_with_the_clock_and_a_new_hour_appears() {
        let c = config(0, 6);
        let origin = s("2024-03-05T00:00:00Z");
        let before = follow_window(t("2024-03-05T11:59:59Z"), &c, origin).unwrap();
        let after = follow_window(t("2024-03-05T12:00:00Z"), &c, origin).unwrap();
        assert_eq!(
            before,
            (s("2024-03-05T05:00:00Z"), s("2024-03-05T11:00:00Z"))
        );
        assert_eq!(
            after,
            (s("2024-03-05T06:00:00Z"), s("2024-03-05T12:00:00Z"))
        );
        // Everything up to 11:00 was queued a moment ago: only the new hour is due.
        let clock = Instant::now();
        let queued: BTreeSet<i64> = (0..6).map(|i| before.0 + i * HOUR).collect();
        let due = hours_to_enqueue(
            after,
            &BTreeSet::new(),
            |h| queued.contains(&h).then_some(clock),
            clock,
            Duration::from_secs(1_800),
        );
        assert_eq!(due, [s("2024-03-05T11:00:00Z")]);
    }

    #[test]
    fn settled_hours_are_skipped_and_recent_ones_wait_for_the_retry() {
        let h = |n: i64| s("2024-03-05T20:00:00Z") + n * HOUR;
        let window = (h(0), h(6)); // 20:00 to 02:00 the next day
        let settled: BTreeSet<i64> = [h(0), h(3)].into(); // complete, closed
        let retry = Duration::from_secs(30);
        let start = Instant::now();
        let now = start + Duration::from_secs(100);
        // h(1) queued 10 s ago: waits; h(2) queued exactly `retry` ago: due again; h(4) long ago.
        let last = |hour: i64| match hour {
            x if x == h(1) => Some(now - Duration::from_secs(10)),
            x if x == h(2) => Some(now - retry),
            x if x == h(4) => Some(start),
            _ => None,
        };
        let due = hours_to_enqueue(window, &settled, last, now, retry);
        assert_eq!(due, [h(2), h(4), h(5)]);
        // Grouped into runs and per UTC day: 22:00-23:00, then 00:00-02:00.
        let runs = backfill::runs(&due);
        assert_eq!(runs, [(h(2), h(3)), (h(4), h(6))]);
        let tasks = backfill::run_tasks(
            JOB_ID,
            &Symbol::parse("EUR/USD").unwrap(),
            Source::Dukascopy,
            &runs,
        );
        assert_eq!(
            tasks
                .iter()
                .map(|t| (t.hour_start_ns / 1_000_000_000, t.hours))
                .collect::<Vec<_>>(),
            [(h(2), 1), (h(4), 2)]
        );
        // A run across midnight splits into one task per day.
        let tasks = backfill::run_tasks(
            JOB_ID,
            &Symbol::parse("EUR/USD").unwrap(),
            Source::Dukascopy,
            &backfill::runs(&[h(1), h(2), h(3), h(4), h(5)]),
        );
        assert_eq!(tasks.iter().map(|t| t.hours).collect::<Vec<_>>(), [3, 2]);
        assert!(tasks.iter().all(|t| t.job_id == "follow"));
        // Nothing settled and nothing queued: the whole window.
        assert_eq!(
            hours_to_enqueue(window, &BTreeSet::new(), |_| None, now, retry).len(),
            6
        );
        // Everything settled: nothing.
        let all: BTreeSet<i64> = (0..6).map(h).collect();
        assert!(hours_to_enqueue(window, &all, |_| None, now, retry).is_empty());
    }

    #[test]
    fn noted_hours_are_remembered_within_the_lookback_only() {
        let f = Follow::new(config(0, 6));
        let symbol = Symbol::parse("EUR/USD").unwrap();
        let end = horizon_end(Utc::now(), Duration::ZERO);
        let at = Instant::now();
        f.note(&symbol, [end - 2 * HOUR, end - 100 * HOUR], at);
        assert_eq!(f.last_queued("EUR/USD", end - 2 * HOUR), Some(at));
        assert_eq!(f.last_queued("EUR/USD", end - 100 * HOUR), None);
        assert_eq!(f.last_queued("GBP/USD", end - 2 * HOUR), None);
    }
}
