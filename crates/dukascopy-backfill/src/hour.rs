//! One hour, downloaded until it is known: complete with its quotes, closed, or missing.
//!
//! - An answer with ticks is **complete**.
//! - An empty answer (200 with no ticks, or 404) for an hour the market was closed (the forex
//!   calendar for FX and metals, never for crypto) is **closed**. For an hour the market was
//!   open it is suspicious (Dukascopy has answered empty and then with data for the same hour):
//!   it is asked again `empty_retries` times, then recorded **missing** (`empty`).
//! - Throttling (429, 503, a timeout, an HTML block page, 403) halves the shared concurrency
//!   limit and pauses new requests for `Retry-After` or the backoff; other failures (5xx, a
//!   broken connection, a body that does not decode) wait the backoff. After `attempts`
//!   attempts the hour is **missing** (`failed`), with the last error as its detail.
//! - An hour that has not ended yet is **missing** (`unpublished`) without a request: it does
//!   not exist upstream yet, and the follow mode or `fill-gaps` comes back for it.
//! - Nothing of a body that fails to decode is kept: the hour's quotes come from one body that
//!   decoded completely, or there are none.

use std::sync::Arc;
use std::time::Duration;

use tickflow_calendar::{ForexCalendar, HourKind, MarketHours};
use tickflow_runtime::backoff::Backoff;
use tickflow_schema::{Quote, UnixNanos};
use tokio_util::sync::CancellationToken;

use crate::cache::HourCache;
use crate::config::DukascopyConfig;
use crate::instruments::Instrument;
use crate::limiter::Limiter;
use crate::metrics::{ErrorLabel, Metrics};
use crate::transport::{Answer, Transport, fetch};

/// Nanoseconds in an hour.
pub const HOUR_NS: i64 = 3_600_000_000_000;

/// Why an hour is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingReason {
    /// Empty answers for an hour the market was open.
    Empty,
    /// Every attempt failed; the last error's class.
    Failed(&'static str),
    /// The hour had not ended.
    Unpublished,
}

impl MissingReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            MissingReason::Empty => "empty",
            MissingReason::Failed(_) => "failed",
            MissingReason::Unpublished => "unpublished",
        }
    }
}

/// What became of an hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HourOutcome {
    /// Every tick, in the venue's order.
    Complete(Vec<Quote>),
    /// No ticks, and the market was closed.
    Closed(String),
    /// Not known.
    Missing(MissingReason, String),
}

/// The market hours Dukascopy's data follows for an instrument: crypto trades around the
/// clock, everything else tickflow supports (FX and metals) the forex week.
pub fn market_hours(instrument: &Instrument) -> MarketHours {
    const CRYPTO: &[&str] = &["BTC", "ETH", "LTC", "BCH"];
    if CRYPTO
        .iter()
        .any(|c| instrument.datafeed_symbol.starts_with(c))
    {
        MarketHours::AlwaysOpen
    } else {
        MarketHours::Forex(ForexCalendar::standard())
    }
}

/// What every hour download shares.
#[derive(Debug, Clone)]
pub struct Downloader {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The interface.
    pub transport: Arc<dyn Transport>,
    /// The shared concurrency limit.
    pub limiter: Arc<Limiter>,
    /// The optional cache.
    pub cache: Option<HourCache>,
    /// Settings.
    pub cfg: Arc<DukascopyConfig>,
    /// Metrics.
    pub metrics: Metrics,
}

/// The error class of an answer, for the metrics and the detail.
fn describe(answer: &Answer) -> (&'static str, String) {
    match answer {
        Answer::Throttled { status, .. } => ("throttled", format!("HTTP {status} (throttled)")),
        Answer::Blocked { status } => (
            "throttled",
            format!("HTTP {status} with an HTML page instead of data (blocked)"),
        ),
        Answer::Timeout => (
            "timeout",
            "no complete answer within the timeout".to_owned(),
        ),
        Answer::Http { status } => ("http", format!("HTTP {status}")),
        Answer::Network(e) => ("network", format!("network: {e}")),
        Answer::TooLarge { cap } => (
            "corrupt",
            format!("the body is larger than the cap of {cap} bytes"),
        ),
        Answer::Body(_) | Answer::NotFound => ("http", "no data".to_owned()),
    }
}

impl Downloader {
    /// The quotes of a body: none for an empty one (a 0-byte answer or a 404, whatever the
    /// transport's format), else what the transport decodes.
    fn decode(
        &self,
        body: &[u8],
        instrument: &Instrument,
        hour: UnixNanos,
        received_at: UnixNanos,
    ) -> Result<Vec<Quote>, crate::transport::DecodeError> {
        if body.is_empty() {
            return Ok(Vec::new());
        }
        self.transport.decode(body, instrument, hour, received_at)
    }

    /// Downloads `hour` of `instrument` until its outcome is known; `None` on shutdown.
    pub async fn hour(
        &self,
        instrument: &Instrument,
        hour: UnixNanos,
        shutdown: &CancellationToken,
    ) -> Option<HourOutcome> {
        let now = UnixNanos::now();
        if hour.0.saturating_add(HOUR_NS) > now.0 {
            return Some(HourOutcome::Missing(
                MissingReason::Unpublished,
                format!(
                    "the hour had not ended when it was asked for (it ends at {})",
                    UnixNanos(hour.0.saturating_add(HOUR_NS)).format_rfc3339(0)
                ),
            ));
        }
        let kind = market_hours(instrument).hour(hour);
        if let Some(cache) = &self.cache
            && let Some(body) = cache.get(instrument, hour).await
        {
            match self.decode(&body, instrument, hour, UnixNanos::now()) {
                Ok(quotes) if !quotes.is_empty() => {
                    self.metrics.cache_hits.inc();
                    return Some(HourOutcome::Complete(quotes));
                }
                Ok(_) if kind == HourKind::Closed => {
                    self.metrics.cache_hits.inc();
                    return Some(HourOutcome::Closed(
                        "no ticks: the market was closed (cached)".to_owned(),
                    ));
                }
                _ => cache.remove(instrument, hour).await,
            }
        }
        let url = self.transport.url(instrument, hour);
        let mut backoff = Backoff::new(self.cfg.retry.clone());
        let mut empties = 0u32;
        let mut last_was_empty = false;
        let mut last_error: (&'static str, String) = ("http", String::new());
        let attempts = self.cfg.attempts.max(1);
        for attempt in 0..attempts {
            if attempt > 0 {
                let delay = backoff.next_delay();
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
            let permit = tokio::select! {
                () = shutdown.cancelled() => return None,
                p = self.limiter.acquire() => p,
            };
            let answer = tokio::select! {
                () = shutdown.cancelled() => return None,
                a = fetch(
                    &self.client,
                    &url,
                    DukascopyConfig::ms(self.cfg.request_timeout_ms),
                    self.cfg.max_body_bytes,
                ) => a,
            };
            drop(permit);
            self.metrics.request(answer.label());
            last_was_empty = false;
            let received_at = UnixNanos::now();
            let body = match answer {
                Answer::Body(body) => {
                    self.metrics
                        .bytes
                        .inc_by(u64::try_from(body.len()).unwrap_or(u64::MAX));
                    body
                }
                // No file: the same as an empty hour, whatever the format of a body would be.
                Answer::NotFound => bytes::Bytes::new(),
                Answer::Throttled { retry_after, .. } => {
                    let cap = Duration::from_secs(self.cfg.max_retry_after_secs);
                    let pause = retry_after
                        .map(|r| r.min(cap))
                        .unwrap_or_default()
                        .max(backoff.next_delay());
                    self.limiter.throttled(pause);
                    self.metrics.retry("throttled");
                    last_error = describe(&answer);
                    tracing::debug!(%url, ?pause, "throttled");
                    continue;
                }
                Answer::Blocked { .. } | Answer::Timeout => {
                    self.limiter.throttled(backoff.next_delay());
                    let (class, detail) = describe(&answer);
                    self.metrics.retry(if class == "timeout" {
                        "timeout"
                    } else {
                        "blocked"
                    });
                    last_error = (class, detail);
                    continue;
                }
                other => {
                    last_error = describe(&other);
                    self.metrics.retry(last_error.0);
                    continue;
                }
            };
            match self.decode(&body, instrument, hour, received_at) {
                Ok(quotes) if !quotes.is_empty() => {
                    self.limiter.success();
                    if let Some(cache) = &self.cache {
                        cache.keep(instrument, hour, &body).await;
                    }
                    return Some(HourOutcome::Complete(quotes));
                }
                Ok(_) => {
                    self.limiter.success();
                    if kind == HourKind::Closed {
                        if let Some(cache) = &self.cache {
                            cache.keep(instrument, hour, &body).await;
                        }
                        return Some(HourOutcome::Closed(
                            "no ticks: the market was closed".to_owned(),
                        ));
                    }
                    empties += 1;
                    if empties > self.cfg.empty_retries {
                        return Some(HourOutcome::Missing(
                            MissingReason::Empty,
                            format!("empty answer {empties} times for an hour the market was open"),
                        ));
                    }
                    self.metrics.retry("empty");
                    last_was_empty = true;
                }
                Err(e) => {
                    tracing::warn!(%url, error = %e, "a body that does not decode: asking again");
                    self.metrics.retry("corrupt");
                    last_error = ("corrupt", e.to_string());
                }
            }
        }
        if last_was_empty {
            return Some(HourOutcome::Missing(
                MissingReason::Empty,
                format!("empty answer {empties} times for an hour the market was open"),
            ));
        }
        self.metrics
            .hours_failed
            .get_or_create(&ErrorLabel {
                error: last_error.0,
            })
            .inc();
        Some(HourOutcome::Missing(
            MissingReason::Failed(last_error.0),
            format!("{attempts} attempts failed; the last: {}", last_error.1),
        ))
    }
}
