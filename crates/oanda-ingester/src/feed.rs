//! The stream handler: one OANDA pricing stream at a time carrying every instrument of this
//! replica, replaced for ever.
//!
//! - **Requests.** `GET {stream_url}/v3/accounts/{account}/pricing/stream?instruments=A%2CB`
//!   with the bearer token. OANDA fixes the instrument list per request, so a change of the set
//!   waits `coalesce_ms` for further changes and then opens *one* new stream with the new list.
//!   The new stream is opened before the old one is dropped, and the old one is read until the
//!   new one delivers its first line, so a change costs no data and records no gap for the
//!   instruments on both. At least `min_connect_interval_ms` separates two attempts (OANDA
//!   allows 2 new connections per second).
//! - **A dead stream** (closed, failed, or silent, heartbeats included, for `stale_after_ms`)
//!   is replaced after a capped, jittered backoff that never gives up; its instruments' outage
//!   becomes gaps (see [`crate::session`]).
//! - **Refusals.** 401/403 is a configuration error: one clear error, the instruments marked,
//!   not ready, and a slow retry (`auth_retry_ms`). 429 waits for `Retry-After` (capped at
//!   `max_retry_after_ms`) or the backoff, whichever is longer. 400 (OANDA refuses the
//!   instrument list without saying which) refuses the one instrument added since the last
//!   accepted list; when several were added at once they are tried one at a time, so only the
//!   bad one is refused. 5xx and network errors back off.
//! - **The forex week.** While the market is closed OANDA keeps the stream open with heartbeats;
//!   if it is lost then, reconnection is spaced at least `closed_retry_ms` (never past the
//!   reopening), and no gap is recorded for closed hours.
//!
//! Lines are parsed here and handed to the [`Session`]; what it wants published is queued with
//! `send().await`, so a full queue stops this reader (the `block` policy) rather than growing
//! memory.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickflow_calendar::MarketHours;
use tickflow_ingest::{Handover, Item};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::admin::Readiness;
use tickflow_runtime::backoff::{Backoff, BackoffConfig};
use tickflow_runtime::config::SecretString;
use tickflow_runtime::log_limit::LogLimiter;
use tickflow_schema::{Symbol, UnixNanos};
use tokio::sync::{mpsc, watch};

use crate::config::OandaConfig;
use crate::lines::LineBuffer;
use crate::metrics::{Metrics, StatusLabel};
use crate::oanda::instruments;
use crate::oanda::parse::{Line, parse_line};
use crate::session::Session;

/// Longest error body read from a refused request.
const MAX_ERROR_BODY: usize = 2048;

/// The queue is gone: the publisher stopped (it failed; the supervisor reports why).
#[derive(Debug, thiserror::Error)]
#[error("the publisher stopped; cannot queue ticks")]
pub(crate) struct QueueClosed;

/// Why a stream request was not answered with a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnectError {
    /// 401 or 403: the token or account is wrong.
    Unauthorized { status: u16, message: String },
    /// 429: too many connections or requests.
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// 400: OANDA refused the request, in practice the instrument list.
    BadRequest { message: String },
    /// Any other status (5xx: maintenance, outage).
    Status { status: u16, message: String },
    /// No answer: DNS, TCP, TLS, timeout.
    Network(String),
}

impl ConnectError {
    fn label(&self) -> &'static str {
        match self {
            ConnectError::Unauthorized { status: 403, .. } => "403",
            ConnectError::Unauthorized { .. } => "401",
            ConnectError::RateLimited { .. } => "429",
            ConnectError::BadRequest { .. } => "400",
            ConnectError::Status { status, .. } if *status >= 500 => "5xx",
            ConnectError::Status { .. } => "other",
            ConnectError::Network(_) => "network",
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Unauthorized { status, message } => write!(f, "HTTP {status}: {message}"),
            ConnectError::RateLimited {
                retry_after,
                message,
            } => match retry_after {
                Some(d) => write!(f, "HTTP 429 (Retry-After {} s): {message}", d.as_secs()),
                None => write!(f, "HTTP 429: {message}"),
            },
            ConnectError::BadRequest { message } => write!(f, "HTTP 400: {message}"),
            ConnectError::Status { status, message } => write!(f, "HTTP {status}: {message}"),
            ConnectError::Network(e) => write!(f, "{e}"),
        }
    }
}

/// Where and as whom to connect. The account and token are secrets: the URL carries the
/// account, so it is never logged (only the host is).
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub base: String,
    pub account: SecretString,
    pub token: SecretString,
    pub snapshot: bool,
    pub connect_timeout: Duration,
}

type Attempt = Pin<Box<dyn Future<Output = Result<reqwest::Response, ConnectError>> + Send>>;

/// Sends one stream request and waits for the response headers.
fn connect(client: reqwest::Client, ep: Endpoint, list: &BTreeSet<Symbol>) -> Attempt {
    let names: Vec<String> = list
        .iter()
        .filter_map(|s| instruments::venue_name(s).ok())
        .map(|v| v.to_string())
        .collect();
    Box::pin(async move {
        let url = format!(
            "{}/v3/accounts/{}/pricing/stream?instruments={}&snapshot={}",
            ep.base,
            ep.account.expose(),
            names.join("%2C"),
            ep.snapshot
        );
        let request = client
            .get(url)
            .bearer_auth(ep.token.expose())
            .header("Accept-Datetime-Format", "RFC3339")
            .send();
        let response = match tokio::time::timeout(ep.connect_timeout, request).await {
            Err(_) => {
                return Err(ConnectError::Network(format!(
                    "no response within {} ms",
                    ep.connect_timeout.as_millis()
                )));
            }
            // Without the URL: it carries the account.
            Ok(Err(e)) => return Err(ConnectError::Network(e.without_url().to_string())),
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let message = error_message(response, status).await;
        Err(match status {
            401 | 403 => ConnectError::Unauthorized { status, message },
            429 => ConnectError::RateLimited {
                retry_after,
                message,
            },
            400 => ConnectError::BadRequest { message },
            _ => ConnectError::Status { status, message },
        })
    })
}

/// OANDA's `errorMessage`, or the start of the body, or the status text.
async fn error_message(mut response: reqwest::Response, status: u16) -> String {
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
    body.truncate(MAX_ERROR_BODY);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(m) = v.get("errorMessage").and_then(|m| m.as_str())
    {
        return m.chars().take(200).collect();
    }
    let text: String = String::from_utf8_lossy(&body)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if text.trim().is_empty() {
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no reason given")
            .to_owned()
    } else {
        text
    }
}

/// One open stream.
struct Stream {
    response: reqwest::Response,
    list: BTreeSet<Symbol>,
    lines: LineBuffer,
    /// Bytes seen last (the stale watchdog's reference).
    last_bytes: Instant,
    /// When the last line arrived: where a gap starts if the stream dies.
    last_line_at: UnixNanos,
    /// It delivered a line.
    live: bool,
    opened: Instant,
}

impl Stream {
    fn new(response: reqwest::Response, list: BTreeSet<Symbol>, max_line: usize) -> Self {
        Self {
            response,
            list,
            lines: LineBuffer::new(max_line),
            last_bytes: Instant::now(),
            last_line_at: UnixNanos::now(),
            live: false,
            opened: Instant::now(),
        }
    }
}

/// What a read of a stream gave.
enum Read {
    Chunk(bytes::Bytes),
    Ended(String),
}

async fn read(stream: &mut Stream, stale: Duration) -> Read {
    let deadline = tokio::time::Instant::from_std(stream.last_bytes + stale);
    tokio::select! {
        r = stream.response.chunk() => match r {
            Ok(Some(bytes)) => Read::Chunk(bytes),
            Ok(None) => Read::Ended("OANDA closed the stream".to_owned()),
            Err(e) => Read::Ended(format!("stream error: {}", e.without_url())),
        },
        () = tokio::time::sleep_until(deadline) => Read::Ended(format!(
            "nothing (not even a heartbeat) for {} ms",
            stale.as_millis()
        )),
    }
}

async fn read_opt(stream: Option<&mut Stream>, stale: Duration) -> Read {
    match stream {
        Some(s) => read(s, stale).await,
        None => std::future::pending().await,
    }
}

/// Everything the feed task needs.
#[derive(Debug)]
pub(crate) struct Feed {
    pub cfg: Arc<OandaConfig>,
    pub endpoint: Endpoint,
    pub client: reqwest::Client,
    pub backoff: BackoffConfig,
    pub desired: watch::Receiver<BTreeSet<Symbol>>,
    pub handovers: mpsc::Receiver<Handover>,
    pub queue: mpsc::Sender<Item>,
    pub metrics: Metrics,
    pub session: Session,
    pub ready: Readiness,
    pub shutdown: CancellationToken,
}

/// The feed's mutable state between events.
struct State {
    stream: Option<Stream>,
    /// The previous stream, read until its replacement is live.
    draining: Option<Stream>,
    attempt: Option<(BTreeSet<Symbol>, Attempt)>,
    /// No attempt before this.
    not_before: Instant,
    /// A change of the set waits for this (coalescing).
    change_deadline: Option<Instant>,
    /// Instruments OANDA refused (400); retried when removed and added again.
    refused: BTreeSet<Symbol>,
    /// Instruments being tried one at a time after a refused list.
    probing: VecDeque<Symbol>,
    backoff: Backoff,
    out: Vec<Item>,
    malformed_log: LogLimiter,
    failure_log: LogLimiter,
    auth_failed: bool,
}

impl Feed {
    pub(crate) async fn run(mut self) -> Result<(), QueueClosed> {
        let stale = OandaConfig::ms(self.cfg.stale_after_ms);
        let mut st = State {
            stream: None,
            draining: None,
            attempt: None,
            not_before: Instant::now(),
            change_deadline: None,
            refused: BTreeSet::new(),
            probing: VecDeque::new(),
            backoff: Backoff::new(self.backoff.clone()),
            out: Vec::new(),
            malformed_log: LogLimiter::new(Duration::from_secs(10)),
            failure_log: LogLimiter::new(Duration::from_secs(60)),
            auth_failed: false,
        };
        let mut wanted = self.desired.borrow_and_update().clone();
        // Planning looks at sets of symbols: done after events that can change the plan, not
        // after every chunk of prices.
        let mut replan = true;
        let mut wake = None;
        loop {
            if replan {
                self.plan(&mut st, &wanted);
                // Look again at least every 30 s (the market-open gauge, pacing).
                let housekeeping = Instant::now() + Duration::from_secs(30);
                wake = Some(
                    self.next_wake(&st, &wanted)
                        .map_or(housekeeping, |w| w.min(housekeeping)),
                );
                replan = false;
            }
            self.flush(&mut st).await?;
            let attempt = async {
                match st.attempt.as_mut() {
                    Some((_, a)) => a.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                r = attempt => {
                    if let Some((list, _)) = st.attempt.take() {
                        self.attempted(&mut st, list, r);
                    }
                    replan = true;
                }
                r = read_opt(st.stream.as_mut(), stale) => replan = self.on_read(&mut st, r, false),
                r = read_opt(st.draining.as_mut(), stale) => replan = self.on_read(&mut st, r, true),
                changed = self.desired.changed() => {
                    if changed.is_err() {
                        // The handle is gone: keep serving the last set until shutdown.
                        self.shutdown.cancelled().await;
                        break;
                    }
                    wanted = self.desired.borrow_and_update().clone();
                    st.change_deadline = Some(Instant::now() + OandaConfig::ms(self.cfg.coalesce_ms));
                    replan = true;
                }
                Some(h) = self.handovers.recv() => self.session.note_handover(h),
                () = sleep_until_opt(wake) => replan = true,
            }
            let flushing = Instant::now();
            self.flush(&mut st).await?;
            // Time spent waiting for room in the queue is not the venue's silence.
            let blocked = flushing.elapsed();
            for s in [st.stream.as_mut(), st.draining.as_mut()]
                .into_iter()
                .flatten()
            {
                s.last_bytes += blocked;
            }
        }
        // Shutdown: what was read is queued; the streams close when dropped.
        self.flush(&mut st).await?;
        self.metrics.connected.set(0);
        Ok(())
    }

    async fn flush(&mut self, st: &mut State) -> Result<(), QueueClosed> {
        for item in st.out.drain(..) {
            self.queue.send(item).await.map_err(|_| QueueClosed)?;
        }
        Ok(())
    }

    /// The list the next stream should carry.
    fn target(&self, st: &State, wanted: &BTreeSet<Symbol>) -> BTreeSet<Symbol> {
        match st.probing.front() {
            Some(next) => {
                let mut list: BTreeSet<Symbol> = st
                    .stream
                    .as_ref()
                    .map(|s| s.list.intersection(wanted).cloned().collect())
                    .unwrap_or_default();
                list.insert(next.clone());
                list
            }
            None => wanted.difference(&st.refused).cloned().collect(),
        }
    }

    /// Applies the wanted set: closes the stream when nothing is wanted, starts an attempt when
    /// the stream's list differs from the target and pacing allows.
    fn plan(&mut self, st: &mut State, wanted: &BTreeSet<Symbol>) {
        self.session.set_wanted(wanted);
        st.refused.retain(|s| wanted.contains(s));
        st.probing.retain(|s| wanted.contains(s));
        let market_open = self.session.calendar().is_open(UnixNanos::now());
        self.metrics.market_open.set(i64::from(market_open));
        let target = self.target(st, wanted);
        if target.is_empty() {
            st.attempt = None;
            st.change_deadline = None;
            if st.stream.take().is_some() || st.draining.take().is_some() {
                tracing::info!("no instruments left; stream closed");
            }
            if !self.session.streamed().is_empty() {
                self.session.stream_closed(UnixNanos::now(), &mut st.out);
            }
            self.metrics.connected.set(0);
            if !st.auth_failed {
                self.ready.set_ready();
            }
            return;
        }
        let now = Instant::now();
        let current = st.stream.as_ref().map(|s| &s.list);
        let settled = st.change_deadline.is_none_or(|d| now >= d);
        if current == Some(&target) {
            st.change_deadline = None;
            return;
        }
        if st.attempt.is_some() || !settled || now < st.not_before {
            return;
        }
        st.change_deadline = None;
        st.not_before = now + OandaConfig::ms(self.cfg.min_connect_interval_ms);
        if st.stream.is_none() && !st.auth_failed {
            self.ready.set_not_ready("connecting to OANDA");
        }
        tracing::debug!(instruments = target.len(), "opening an OANDA stream");
        st.attempt = Some((
            target.clone(),
            connect(self.client.clone(), self.endpoint.clone(), &target),
        ));
    }

    /// When the loop must look again even if nothing happens.
    fn next_wake(&self, st: &State, wanted: &BTreeSet<Symbol>) -> Option<Instant> {
        let target = self.target(st, wanted);
        let needs = !target.is_empty() && st.stream.as_ref().map(|s| &s.list) != Some(&target);
        if !needs || st.attempt.is_some() {
            return None;
        }
        Some(match st.change_deadline {
            Some(d) => d.max(st.not_before),
            None => st.not_before,
        })
    }

    /// Handles a read; returns whether the plan may have changed (a stream ended).
    fn on_read(&mut self, st: &mut State, r: Read, draining: bool) -> bool {
        let Some(stream) = (if draining {
            st.draining.as_mut()
        } else {
            st.stream.as_mut()
        }) else {
            return false;
        };
        match r {
            Read::Chunk(bytes) => {
                stream.last_bytes = Instant::now();
                let received_at = UnixNanos::now();
                let arrived = Instant::now();
                let oversized = stream.lines.oversized();
                let mut first = !stream.live;
                let mut any = false;
                let (session, metrics, out, log) = (
                    &mut self.session,
                    &self.metrics,
                    &mut st.out,
                    &mut st.malformed_log,
                );
                stream.lines.push(&bytes, |line| {
                    any = true;
                    if first && !draining {
                        first = false;
                        session.stream_live(received_at, out);
                    }
                    handle_line(line, received_at, arrived, session, metrics, out, log);
                });
                for _ in oversized..stream.lines.oversized() {
                    self.metrics.line("oversized");
                }
                if any {
                    stream.last_line_at = received_at;
                    if !stream.live {
                        stream.live = true;
                        if !draining {
                            // The replacement is live: the old stream can go.
                            st.draining = None;
                            st.auth_failed = false;
                            self.ready.set_ready();
                        }
                    }
                }
                false
            }
            Read::Ended(reason) => {
                if draining {
                    st.draining = None;
                    return false;
                }
                let Some(stream) = st.stream.take() else {
                    return false;
                };
                self.metrics.reconnects.inc();
                self.metrics.connected.set(0);
                // The last line, or the opening when nothing came (an earlier outage's start
                // is kept by the session).
                self.session.stream_lost(stream.last_line_at, &reason);
                if let Some(old) = st.draining.take() {
                    drop(old);
                }
                let lasted = stream.opened.elapsed();
                st.backoff.connection_ended(lasted);
                let delay = self.paced(st.backoff.next_delay());
                st.not_before = st.not_before.max(Instant::now() + delay);
                self.ready
                    .set_not_ready(format!("OANDA stream lost: {reason}"));
                tracing::warn!(%reason, retry_in_ms = delay.as_millis() as u64, instruments = stream.list.len(), "OANDA stream lost; reconnecting");
                true
            }
        }
    }

    /// A delay stretched while the market is closed (never past the reopening).
    fn paced(&self, delay: Duration) -> Duration {
        paced(
            self.session.calendar(),
            UnixNanos::now(),
            delay,
            OandaConfig::ms(self.cfg.closed_retry_ms),
        )
    }

    fn attempted(
        &mut self,
        st: &mut State,
        list: BTreeSet<Symbol>,
        r: Result<reqwest::Response, ConnectError>,
    ) {
        match r {
            Ok(response) => {
                if let Some(front) = st.probing.front()
                    && list.contains(front)
                {
                    st.probing.pop_front();
                }
                let now = UnixNanos::now();
                if let Some(old) = st.stream.take() {
                    self.metrics.switches.inc();
                    tracing::info!(
                        instruments = list.len(),
                        "switching to a stream with the new instrument list"
                    );
                    // Read until the replacement's first line; an old one still draining is
                    // simply dropped.
                    st.draining = Some(old);
                } else {
                    tracing::info!(host = %host(&self.endpoint.base), instruments = list.len(), "OANDA stream open");
                }
                self.session.stream_started(&list, now, &mut st.out);
                self.metrics.connected.set(1);
                st.stream = Some(Stream::new(response, list, self.cfg.max_line_bytes));
            }
            Err(e) => {
                self.metrics
                    .connect_failures
                    .get_or_create(&StatusLabel { status: e.label() })
                    .inc();
                self.refusal(st, &list, e);
            }
        }
    }

    fn refusal(&mut self, st: &mut State, list: &BTreeSet<Symbol>, e: ConnectError) {
        let now = Instant::now();
        match &e {
            ConnectError::Unauthorized { .. } => {
                let retry = OandaConfig::ms(self.cfg.auth_retry_ms);
                let text = format!(
                    "OANDA refused the credentials ({e}): check OANDA_API_TOKEN, OANDA_ACCOUNT_ID and the environment (practice or live); retrying every {} s",
                    retry.as_secs()
                );
                if !st.auth_failed {
                    tracing::error!("{text}");
                } else if let Some(suppressed) = st.failure_log.check() {
                    tracing::warn!(suppressed, "{text}");
                }
                st.auth_failed = true;
                self.session.set_error(list, &e.to_string(), false);
                self.ready.set_not_ready(text);
                st.not_before = st.not_before.max(now + retry);
            }
            ConnectError::RateLimited { retry_after, .. } => {
                let cap = OandaConfig::ms(self.cfg.max_retry_after_ms);
                let backoff = st.backoff.next_delay();
                let delay = retry_after.map_or(backoff, |r| r.min(cap).max(backoff));
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "OANDA is rate limiting connections");
                st.not_before = st.not_before.max(now + self.paced(delay));
            }
            ConnectError::BadRequest { .. } => {
                let accepted: BTreeSet<Symbol> = st
                    .stream
                    .as_ref()
                    .map(|s| s.list.clone())
                    .unwrap_or_default();
                let added: Vec<Symbol> = list.difference(&accepted).cloned().collect();
                if added.len() == 1 || !st.probing.is_empty() {
                    let bad: BTreeSet<Symbol> = match st.probing.pop_front() {
                        Some(s) if list.contains(&s) => [s].into(),
                        _ => added.into_iter().collect(),
                    };
                    tracing::error!(error = %e, instruments = ?bad, "OANDA refused an instrument; it stays off the stream until it is removed and added again");
                    self.session
                        .set_error(&bad, &format!("refused by OANDA: {e}"), true);
                    st.refused.extend(bad);
                } else {
                    tracing::warn!(error = %e, added = added.len(), "OANDA refused the instrument list; adding the new instruments one at a time to find the bad one");
                    st.probing = added.into_iter().collect();
                }
            }
            ConnectError::Status { .. } | ConnectError::Network(_) => {
                let delay = self.paced(st.backoff.next_delay());
                if let Some(suppressed) = st.failure_log.check() {
                    tracing::warn!(error = %e, suppressed, retry_in_ms = delay.as_millis() as u64, host = %host(&self.endpoint.base), "cannot open an OANDA stream");
                }
                if st.stream.is_none() && !st.auth_failed {
                    self.ready
                        .set_not_ready(format!("cannot open an OANDA stream: {e}"));
                }
                st.not_before = st.not_before.max(now + delay);
            }
        }
    }
}

/// `delay`, stretched to `closed_retry` while the market is closed at `now`, but never past
/// the reopening (and never shorter than `delay`).
fn paced(
    calendar: &MarketHours,
    now: UnixNanos,
    delay: Duration,
    closed_retry: Duration,
) -> Duration {
    if calendar.is_open(now) {
        return delay;
    }
    let until_open = Duration::from_nanos(
        u64::try_from(calendar.next_open(now).0.saturating_sub(now.0)).unwrap_or(0),
    );
    delay.max(closed_retry).min(until_open).max(delay)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// The host of a URL, for logs (the path carries the account).
fn host(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

fn handle_line(
    line: &[u8],
    received_at: UnixNanos,
    arrived: Instant,
    session: &mut Session,
    metrics: &Metrics,
    out: &mut Vec<Item>,
    log: &mut LogLimiter,
) {
    match parse_line(line) {
        Ok(Line::Price(price)) => {
            metrics.line("price");
            session.price(&price, received_at, arrived, out);
        }
        Ok(Line::Heartbeat { .. }) => metrics.line("heartbeat"),
        Ok(Line::Empty) => {}
        Ok(Line::Other { kind }) => {
            metrics.line("other");
            tracing::debug!(%kind, "line of an unread type skipped");
        }
        Err(e) => {
            metrics.line("malformed");
            metrics.skip("malformed");
            if let Some(suppressed) = log.check() {
                tracing::warn!(error = %e, reason = e.reason(), suppressed, "malformed line skipped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tickflow_calendar::{ForexCalendar, MarketHours};
    use tickflow_schema::UnixNanos;

    use super::{host, paced};

    fn at(text: &str) -> UnixNanos {
        UnixNanos::parse_rfc3339(text).unwrap_or(UnixNanos(0))
    }

    #[test]
    fn while_the_market_is_closed_reconnects_are_spaced_but_not_past_the_reopening() {
        let fx = MarketHours::Forex(ForexCalendar::standard());
        let minute = Duration::from_secs(60);
        let second = Duration::from_secs(1);
        // Wednesday: open, the backoff's delay as is.
        assert_eq!(
            paced(&fx, at("2024-03-13T12:00:00Z"), second, minute),
            second
        );
        // Saturday: a minute between attempts.
        assert_eq!(
            paced(&fx, at("2024-03-09T12:00:00Z"), second, minute),
            minute
        );
        // Sunday 20:59:30 UTC after the March change (opens 21:00 UTC): 30 s, not a minute.
        assert_eq!(
            paced(&fx, at("2024-03-10T20:59:30Z"), second, minute),
            Duration::from_secs(30)
        );
        // Never shorter than the backoff asked for.
        assert_eq!(
            paced(&fx, at("2024-03-10T20:59:59.5Z"), second, minute),
            second
        );
        assert_eq!(
            paced(
                &MarketHours::AlwaysOpen,
                at("2024-03-09T12:00:00Z"),
                second,
                minute
            ),
            second
        );
    }

    #[test]
    fn logs_name_the_host_only() {
        assert_eq!(
            host("https://stream-fxpractice.oanda.com"),
            "stream-fxpractice.oanda.com"
        );
        assert_eq!(host("http://127.0.0.1:4000/x/y"), "127.0.0.1:4000");
    }
}
