//! The socket handler: one Kraken connection at a time, replaced for ever.
//!
//! Per connection: subscribe every wanted symbol, read frames, send application pings, and
//! watch for a dead link. The connection is replaced when
//! - it closes or errors (a frame above `max_frame_bytes` is an error),
//! - nothing at all arrives for `stale_after_ms`,
//! - symbols are subscribed but no trade or ticker data arrives for `data_stale_after_ms`, even
//!   though heartbeats do (a feed that only heartbeats is stuck, not healthy),
//! - a ping gets no pong within `pong_timeout_ms`,
//! - a subscription stays unacknowledged twice.
//!
//! Between connections the [`Backoff`] waits (capped, jittered, never giving up, cut short by
//! shutdown). Frames are parsed here and handed to the [`Session`]; what it wants published is
//! queued for the publisher with `send().await`, so a full queue stops this reader (the stated
//! `block` policy) instead of growing memory.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::admin::Readiness;
use tickflow_runtime::backoff::{Backoff, BackoffConfig};
use tickflow_runtime::log_limit::LogLimiter;
use tickflow_schema::{Symbol, Tick, UnixNanos};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::config::KrakenConfig;
use crate::kraken::parse::{Frame, FrameError, parse_frame};
use crate::metrics::{ClassLabel, Metrics};
use crate::session::{CHECK_EVERY, Effects, Item, Session};

/// Everything the feed task needs.
#[derive(Debug)]
pub(crate) struct Feed {
    pub cfg: Arc<KrakenConfig>,
    pub backoff: BackoffConfig,
    pub desired: watch::Receiver<BTreeSet<Symbol>>,
    pub handovers: mpsc::Receiver<crate::Handover>,
    pub queue: mpsc::Sender<Item>,
    pub metrics: Metrics,
    pub session: Session,
    pub ready: Readiness,
    pub shutdown: CancellationToken,
}

/// How a connection ended.
struct Ended {
    reason: String,
    /// The last moment data was known to flow: where a gap starts.
    gap_from: UnixNanos,
    shutdown: bool,
}

/// The queue is gone: the publisher stopped (it failed; the supervisor reports why).
#[derive(Debug, thiserror::Error)]
#[error("the publisher stopped; cannot queue ticks")]
pub(crate) struct QueueClosed;

struct Reader {
    ticks: Vec<Tick>,
    bad: Vec<FrameError>,
    malformed_log: LogLimiter,
    last_frame: Instant,
    last_frame_at: UnixNanos,
    last_data: Instant,
    last_data_at: UnixNanos,
}

impl Feed {
    pub(crate) async fn run(mut self) -> Result<(), QueueClosed> {
        let mut backoff = Backoff::new(self.backoff.clone());
        let mut connect_log = LogLimiter::new(Duration::from_secs(30));
        loop {
            let mut eff = Effects::default();
            let desired = self.desired.borrow_and_update().clone();
            self.session.set_desired(&desired, Instant::now(), &mut eff);
            self.apply_items(&mut eff).await?;
            self.ready.set_not_ready("connecting to Kraken");

            let ws_config = WebSocketConfig::default()
                .max_message_size(Some(self.cfg.max_frame_bytes))
                .max_frame_size(Some(self.cfg.max_frame_bytes));
            let connect = tokio::time::timeout(
                KrakenConfig::ms(self.cfg.connect_timeout_ms),
                tokio_tungstenite::connect_async_with_config(
                    self.cfg.ws_url.as_str(),
                    Some(ws_config),
                    true,
                ),
            );
            let attempt = tokio::select! {
                () = self.shutdown.cancelled() => break,
                r = connect => r,
            };
            let ws = match attempt {
                Ok(Ok((ws, _response))) => ws,
                Ok(Err(e)) => {
                    self.connect_failed(&mut connect_log, &e.to_string());
                    if !backoff.wait(&self.shutdown).await {
                        break;
                    }
                    continue;
                }
                Err(_) => {
                    self.connect_failed(&mut connect_log, "timed out");
                    if !backoff.wait(&self.shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            tracing::info!(url = %self.cfg.ws_url, attempt = backoff.attempt(), "connected to Kraken");
            self.metrics.connected.set(1);
            let started = Instant::now();
            let ended = self.connection(ws).await?;
            self.metrics.connected.set(0);
            self.ready
                .set_not_ready(format!("disconnected: {}", ended.reason));
            let mut eff = Effects::default();
            if ended.shutdown {
                break;
            }
            self.metrics.reconnects.inc();
            tracing::warn!(reason = %ended.reason, up_for_s = started.elapsed().as_secs(), "Kraken connection lost; reconnecting");
            self.session
                .on_disconnected(ended.gap_from, &ended.reason, &mut eff);
            self.apply_items(&mut eff).await?;
            backoff.connection_ended(started.elapsed());
            if !backoff.wait(&self.shutdown).await {
                break;
            }
        }
        let mut eff = Effects::default();
        self.session.finish(&mut eff);
        self.apply_items(&mut eff).await?;
        Ok(())
    }

    fn connect_failed(&self, log: &mut LogLimiter, error: &str) {
        self.metrics.connect_failures.inc();
        if let Some(suppressed) = log.check() {
            tracing::warn!(url = %self.cfg.ws_url, error, suppressed, "cannot connect to Kraken; retrying with backoff");
        }
    }

    async fn apply_items(&self, eff: &mut Effects) -> Result<(), QueueClosed> {
        for item in eff.items.drain(..) {
            self.queue.send(item).await.map_err(|_| QueueClosed)?;
        }
        Ok(())
    }

    async fn connection<S>(
        &mut self,
        ws: tokio_tungstenite::WebSocketStream<S>,
    ) -> Result<Ended, QueueClosed>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (mut sink, mut stream) = ws.split();
        let now = Instant::now();
        let mut r = Reader {
            ticks: Vec::with_capacity(64),
            bad: Vec::new(),
            malformed_log: LogLimiter::new(Duration::from_secs(10)),
            last_frame: now,
            last_frame_at: UnixNanos::now(),
            last_data: now,
            last_data_at: UnixNanos::now(),
        };
        let ended = |r: &Reader, reason: String, data_stuck: bool| Ended {
            reason,
            gap_from: if data_stuck {
                r.last_data_at
            } else {
                r.last_frame_at
            },
            shutdown: false,
        };

        let mut eff = Effects::default();
        self.session.on_connected(now, &mut eff);
        self.apply_items(&mut eff).await?;
        for req in eff.requests.drain(..) {
            if let Err(e) = sink.send(Message::text(req)).await {
                return Ok(ended(&r, format!("sending subscribe failed: {e}"), false));
            }
        }

        let ping_every = KrakenConfig::ms(self.cfg.ping_interval_ms);
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        let mut check = tokio::time::interval(CHECK_EVERY);
        let mut outstanding_ping: Option<(u64, Instant)> = None;
        let mut desired_open = true;
        loop {
            let mut eff = Effects::default();
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), sink.send(Message::Close(None))).await;
                    return Ok(Ended { reason: "shutdown".to_owned(), gap_from: UnixNanos::now(), shutdown: true });
                }
                msg = stream.next() => {
                    let received_at = UnixNanos::now();
                    let arrived = Instant::now();
                    match msg {
                        None => return Ok(ended(&r, "connection closed by Kraken".to_owned(), false)),
                        Some(Err(e)) => return Ok(ended(&r, format!("websocket error: {e}"), false)),
                        Some(Ok(Message::Text(text))) => {
                            r.last_frame = arrived;
                            r.last_frame_at = received_at;
                            if let Some(Frame::Pong { req_id }) = self.frame(&mut r, text.as_str(), received_at, arrived, &mut eff)
                                && outstanding_ping.is_some_and(|(id, _)| Some(id) == req_id)
                            {
                                outstanding_ping = None;
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            r.last_frame = arrived;
                            r.last_frame_at = received_at;
                            self.malformed(&mut r, "binary frame (Kraken v2 sends text only)");
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let why = frame.map_or_else(|| "no reason".to_owned(), |f| format!("{} {}", f.code, f.reason));
                            return Ok(ended(&r, format!("closed by Kraken: {why}"), false));
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                            r.last_frame = arrived;
                            r.last_frame_at = received_at;
                        }
                    }
                }
                Some(h) = self.handovers.recv() => {
                    self.session.note_handover(&h.symbol, h.since, &h.previous_owner);
                }
                changed = self.desired.changed(), if desired_open => {
                    if changed.is_ok() {
                        let desired = self.desired.borrow_and_update().clone();
                        self.session.set_desired(&desired, Instant::now(), &mut eff);
                    } else {
                        // The handle is gone: the symbol set stays as it is.
                        desired_open = false;
                    }
                }
                _ = ping.tick() => {
                    let req_id = self.session.next_req_id();
                    eff.requests.push(format!(r#"{{"method":"ping","req_id":{req_id}}}"#));
                    if outstanding_ping.is_none() {
                        outstanding_ping = Some((req_id, Instant::now()));
                    }
                }
                _ = check.tick() => {
                    let now = Instant::now();
                    if now.duration_since(r.last_frame) >= KrakenConfig::ms(self.cfg.stale_after_ms) {
                        let reason = format!("nothing received for {} ms", self.cfg.stale_after_ms);
                        return Ok(ended(&r, reason, false));
                    }
                    if self.session.has_subscriptions()
                        && now.duration_since(r.last_data) >= KrakenConfig::ms(self.cfg.data_stale_after_ms)
                    {
                        let reason = format!("no trade or ticker data for {} ms (heartbeats alone do not count)", self.cfg.data_stale_after_ms);
                        return Ok(ended(&r, reason, true));
                    }
                    if let Some((_, sent)) = outstanding_ping
                        && now.duration_since(sent) >= KrakenConfig::ms(self.cfg.pong_timeout_ms)
                    {
                        let reason = format!("no pong within {} ms", self.cfg.pong_timeout_ms);
                        return Ok(ended(&r, reason, false));
                    }
                    if let Err(reason) = self.session.check_timeouts(now, &mut eff) {
                        return Ok(ended(&r, reason, false));
                    }
                    if self.session.is_settled() {
                        self.ready.set_ready();
                    } else {
                        self.ready.set_not_ready("waiting for subscription acks");
                    }
                }
            }
            let queued = Instant::now();
            self.apply_items(&mut eff).await?;
            let blocked = queued.elapsed();
            if blocked >= CHECK_EVERY {
                // Time spent waiting for room in a full queue is not the socket's silence.
                r.last_frame += blocked;
                r.last_data += blocked;
            }
            for req in eff.requests.drain(..) {
                if let Err(e) = sink.send(Message::text(req)).await {
                    return Ok(ended(&r, format!("sending a request failed: {e}"), false));
                }
            }
        }
    }

    /// Parses and handles one text frame; returns the pong it was, if it was one.
    fn frame(
        &mut self,
        r: &mut Reader,
        text: &str,
        received_at: UnixNanos,
        arrived: Instant,
        eff: &mut Effects,
    ) -> Option<Frame<'static>> {
        r.ticks.clear();
        r.bad.clear();
        match parse_frame(text, received_at, &mut r.ticks, &mut r.bad) {
            Ok(frame) => {
                let class = if matches!(frame, Frame::Data { .. }) {
                    r.last_data = arrived;
                    r.last_data_at = received_at;
                    "data"
                } else {
                    "control"
                };
                self.metrics
                    .frames
                    .get_or_create(&ClassLabel { class })
                    .inc();
                if let Frame::Data { no_quote, .. } = &frame
                    && *no_quote > 0
                {
                    self.metrics
                        .skipped
                        .get_or_create(&crate::metrics::ReasonLabel { reason: "no_quote" })
                        .inc_by(*no_quote as u64);
                }
                for i in 0..r.bad.len() {
                    let e = r.bad[i].to_string();
                    self.malformed(r, &e);
                }
                let pong = match frame {
                    Frame::Pong { req_id } => Some(Frame::Pong { req_id }),
                    _ => None,
                };
                self.session
                    .on_frame(frame, &mut r.ticks, received_at, arrived, eff);
                pong
            }
            Err(e) => {
                self.metrics
                    .frames
                    .get_or_create(&ClassLabel { class: "malformed" })
                    .inc();
                self.malformed(r, &e.to_string());
                None
            }
        }
    }

    fn malformed(&self, r: &mut Reader, error: &str) {
        self.metrics.malformed.inc();
        if let Some(suppressed) = r.malformed_log.check() {
            tracing::warn!(error, suppressed, "malformed frame skipped");
        }
    }
}
