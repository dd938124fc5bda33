//! A fake Dukascopy historical tick server, speaking both of Dukascopy's interfaces (see
//! `PROTOCOLS.md` §3):
//!
//! * the legacy datafeed, `GET /datafeed/{SYM}/{YYYY}/{MM0}/{DD}/{HH}h_ticks.bi5`: the month is
//!   **zero-based** (January = `00`) and every field is zero-padded; the body is an LZMA-alone stream
//!   of 20-byte big-endian tick records ([`encode_bi5`]);
//! * the jetta JSON API, `GET /v1/ticks/{CODE}/{YYYY}/{M}/{D}/{H}`: the month is **one-based** and
//!   nothing is padded; `CODE` is the symbol with a `-` after its third character when it has six
//!   (`EUR-USD`; [`json_code`]), otherwise the symbol itself; the body is columnar, delta-encoded JSON
//!   ([`encode_json`]). A client configured with jetta's `https://jetta.dukascopy.com/v1` uses
//!   `{base_url}/v1`.
//!
//! [`DukascopySim::start`] binds `127.0.0.1:0` and serves HTTP/1.1. Both transports share one store
//! keyed by `(SYM, hour)`: [`DukascopySim::publish_ticks`] serves [`SimTick`]s in both encodings
//! (encoded on first request, then cached), [`publish_bi5`](DukascopySim::publish_bi5) and
//! [`publish_json`](DukascopySim::publish_json) serve exact bytes (real fixtures) on one transport.
//!
//! A request under `/datafeed/` or `/v1/ticks/` is recorded ([`DukascopySim::requests`]) and answered
//! in this order:
//!
//! 1. `503` at once, without latency, when more requests than
//!    [`set_max_concurrent`](DukascopySim::set_max_concurrent) allows are in flight (a throttling CDN);
//!    this consumes no fault;
//! 2. the fault set with [`fail_all`](DukascopySim::fail_all), if any (queued faults stay queued);
//! 3. the next fault queued for the hour with [`fail_next`](DukascopySim::fail_next), if any;
//! 4. the hour's body on this transport: `200` with `application/octet-stream` (bi5) or
//!    `application/json` (JSON); or `404` (plain text) if nothing is published for it.
//!
//! Steps 2–4 wait [`set_latency`](DukascopySim::set_latency) first, counted as in flight.
//!
//! The path is parsed strictly: a bi5 path needs a four-digit year, a two-digit month `00`–`11`, a
//! two-digit day that exists in that month and a two-digit hour `00`–`23`; a JSON path needs a
//! four-digit year and unpadded month `1`–`12`, day and hour `0`–`23`, and a six-character symbol must
//! be spelled `XXX-YYY` (`/v1/ticks/EURUSD/..` is not accepted). A path that does not parse (an
//! off-by-one month such as `2023/12/..`, a candle file, a padded JSON month) gets `404` unless a
//! throttle or [`fail_all`](DukascopySim::fail_all) answers first, and is recorded with `sym` `""` and
//! `hour_start_ms` `0`, so a test can see that a client asked for something that does not exist.
//! Paths outside `/datafeed/` and `/v1/ticks/` get `404` and are not recorded.
//!
//! [`DukascopySim`] is a cheap handle: clones share one server, which stops when the last handle is
//! dropped or at [`shutdown`](DukascopySim::shutdown). Requests still waiting out their latency or a
//! [`Fault::Timeout`] are then answered `503` and their connections closed.
//!
//! [`generate_hour`] and [`generate_hours`] make deterministic, realistic-looking tick hours.

mod codec;
mod generate;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::util::{lock, serve_http};

pub use self::codec::{
    SimTick, TICK_RECORD_LEN, bi5_path, encode_bi5, encode_json, json_code, json_path,
};
pub use self::generate::{generate_hour, generate_hours};

use self::codec::{floor_hour, parse_bi5_path, parse_json_path};

/// The scale assumed for an empty JSON answer when nothing published says otherwise (most FX).
const DEFAULT_SCALE: u32 = 5;

const CONTENT_BI5: &str = "application/octet-stream";
const CONTENT_JSON: &str = "application/json";
const CONTENT_TEXT: &str = "text/plain; charset=utf-8";
const CONTENT_HTML: &str = "text/html; charset=UTF-8";

/// The kind of page Cloudflare sends a blocked client instead of data (abridged).
const CLOUDFLARE_HTML: &str = "<!DOCTYPE html>\n\
<!--[if lt IE 7]> <html class=\"no-js ie6 oldie\" lang=\"en-US\"> <![endif]-->\n\
<!--[if gt IE 8]><!--> <html class=\"no-js\" lang=\"en-US\"> <!--<![endif]-->\n\
<head>\n\
<title>Attention Required! | Cloudflare</title>\n\
<meta charset=\"UTF-8\" />\n\
<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n\
<meta name=\"robots\" content=\"noindex, nofollow\" />\n\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\" />\n\
<link rel=\"stylesheet\" id=\"cf_styles-css\" href=\"/cdn-cgi/styles/cf.errors.css\" />\n\
</head>\n\
<body>\n\
  <div id=\"cf-wrapper\">\n\
    <div id=\"cf-error-details\" class=\"cf-error-details-wrapper\">\n\
      <div class=\"cf-wrapper cf-header cf-error-overview\">\n\
        <h1 data-translate=\"block_headline\">Sorry, you have been blocked</h1>\n\
        <h2 class=\"cf-subheadline\"><span data-translate=\"unable_to_access\">You are unable to access</span> dukascopy.com</h2>\n\
      </div>\n\
      <div class=\"cf-section cf-wrapper\">\n\
        <h2 data-translate=\"blocked_why_headline\">Why have I been blocked?</h2>\n\
        <p data-translate=\"blocked_why_detail\">This website is using a security service to protect itself from online attacks.</p>\n\
      </div>\n\
      <div class=\"cf-error-footer cf-wrapper\">\n\
        <p><span>Cloudflare Ray ID: <strong class=\"font-semibold\">8f2b7c1d5e6a4b3c</strong></span></p>\n\
      </div>\n\
    </div>\n\
  </div>\n\
</body>\n\
</html>\n";

/// Which of Dukascopy's interfaces a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `GET /datafeed/{SYM}/{YYYY}/{MM0}/{DD}/{HH}h_ticks.bi5`.
    Bi5,
    /// `GET /v1/ticks/{CODE}/{YYYY}/{M}/{D}/{H}`.
    Json,
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRequest {
    /// The interface used.
    pub transport: Transport,
    /// The datafeed symbol (`EURUSD`, also for a JSON request for `EUR-USD`); `""` if the path did
    /// not parse.
    pub sym: String,
    /// Start of the requested UTC hour in Unix milliseconds; `0` if the path did not parse.
    pub hour_start_ms: i64,
    /// The status the request was (or is being) answered with; `0` for [`Fault::Timeout`], which
    /// never answers.
    pub status: u16,
}

/// A way for one answer to go wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This status (e.g. 503, 500, 404) with a small plain-text body such as
    /// `503 Service Unavailable`. A number that is not a valid HTTP status is sent as 500.
    Status(u16),
    /// This status (typically 429 or 503) with `Retry-After: <secs>` and a plain-text body.
    RetryAfter(u16, u64),
    /// The request is accepted and never answered; it is held (and counted in flight) until the
    /// client gives up and disconnects, or the simulator stops.
    Timeout,
    /// `200` with an empty hour: a 0-byte body (bi5) or the empty JSON shape (JSON), like the spurious
    /// empty answers Dukascopy sometimes gives for hours that have data.
    Empty,
    /// `200 text/html` with a Cloudflare "Attention Required! | Cloudflare" block page.
    Html,
    /// `200` with these bytes, under the transport's usual content type.
    Garbage(Bytes),
    /// `200` with the first half (rounded down) of the body the hour would normally get on this
    /// transport (nothing for an unpublished hour). The short body is complete at the HTTP level:
    /// `Content-Length` matches it.
    Truncated,
}

/// The simulated Dukascopy server. A cheap handle: clones share the server, which shuts down when
/// the last clone is dropped or at [`shutdown`](Self::shutdown).
#[derive(Clone)]
pub struct DukascopySim {
    handle: Arc<Handle>,
}

/// Owned by the handles only (not by the server task), so its drop means "no handle left".
struct Handle {
    inner: Arc<Inner>,
    addr: SocketAddr,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.inner.token.cancel();
    }
}

impl std::fmt::Debug for DukascopySim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.inner().state);
        f.debug_struct("DukascopySim")
            .field("addr", &self.handle.addr)
            .field("published_hours", &state.hours.len())
            .field("fail_all", &state.fail_all)
            .field("max_concurrent", &state.max_concurrent)
            .field("latency", &state.latency)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl DukascopySim {
    /// Binds `127.0.0.1:0` and starts serving. Must be called inside a Tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr` (port 0 picks a free port) and starts serving: how the `venue-sim` binary
    /// serves on a fixed port or on every interface. Must be called inside a Tokio runtime.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let inner = Arc::new(Inner::new());
        let app = Router::new()
            .route("/datafeed/{*rest}", get(bi5_handler))
            .route("/v1/ticks/{*rest}", get(json_handler))
            .fallback(not_found)
            .with_state(Arc::clone(&inner));
        let addr = serve_http(addr, app, inner.token.clone()).await?;
        Ok(Self {
            handle: Arc::new(Handle { inner, addr }),
        })
    }

    fn inner(&self) -> &Inner {
        &self.handle.inner
    }

    /// `http://127.0.0.1:<port>` (no trailing slash): the base for both `/datafeed/..` and
    /// `/v1/ticks/..`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.handle.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.addr
    }

    /// Stops the server for every handle: no new connections are accepted, requests held by latency
    /// or [`Fault::Timeout`] get `503`, and connections close once their current request is answered.
    pub fn shutdown(&self) {
        self.inner().token.cancel();
    }

    /// Serves `ticks` as the hour's body on both transports, replacing anything published for it:
    /// [`encode_bi5`] and [`encode_json`] (with `scale`, the number of decimals of a point, e.g. 5
    /// for EURUSD, 3 for USDJPY, 1 for BTCUSD), each encoded on its first request and cached. An
    /// empty `ticks` is a published empty hour: a 0-byte bi5 body and the empty JSON shape.
    ///
    /// `hour_start_ms` may be any instant inside the hour; the ticks are encoded as given.
    pub fn publish_ticks(&self, sym: &str, hour_start_ms: i64, scale: u32, ticks: Vec<SimTick>) {
        let hour = floor_hour(hour_start_ms);
        let encoded = Arc::new(TickHour {
            hour_start_ms: hour,
            scale,
            ticks,
            bi5: OnceLock::new(),
            json: OnceLock::new(),
        });
        let mut state = lock(&self.inner().state);
        state.scales.insert(sym.to_owned(), scale);
        let published = state.hours.entry((sym.to_owned(), hour)).or_default();
        published.bi5 = Some(Body::Ticks(Arc::clone(&encoded)));
        published.json = Some(Body::Ticks(encoded));
    }

    /// Serves exactly `body` as the hour's `.bi5` file (e.g. a real fixture). The JSON side of the
    /// hour is left as it was (unpublished unless published before).
    pub fn publish_bi5(&self, sym: &str, hour_start_ms: i64, body: Bytes) {
        let key = (sym.to_owned(), floor_hour(hour_start_ms));
        lock(&self.inner().state).hours.entry(key).or_default().bi5 = Some(Body::Raw(body));
    }

    /// Serves exactly `body` as the hour's JSON answer (e.g. the real jetta fixture). The bi5 side of
    /// the hour is left as it was.
    pub fn publish_json(&self, sym: &str, hour_start_ms: i64, body: Bytes) {
        let key = (sym.to_owned(), floor_hour(hour_start_ms));
        lock(&self.inner().state).hours.entry(key).or_default().json = Some(Body::Raw(body));
    }

    /// Removes the hour from both transports (requests for it get 404 again).
    pub fn unpublish(&self, sym: &str, hour_start_ms: i64) {
        let key = (sym.to_owned(), floor_hour(hour_start_ms));
        lock(&self.inner().state).hours.remove(&key);
    }

    /// Queues faults for the hour: each request for it, on either transport, takes the next one
    /// instead of the normal answer until the queue is empty. Calls append to the queue. Requests
    /// turned away by [`set_max_concurrent`](Self::set_max_concurrent) or answered by
    /// [`fail_all`](Self::fail_all) do not consume queued faults.
    pub fn fail_next(
        &self,
        sym: &str,
        hour_start_ms: i64,
        faults: impl IntoIterator<Item = Fault>,
    ) {
        let faults: Vec<Fault> = faults.into_iter().collect();
        if faults.is_empty() {
            return;
        }
        let key = (sym.to_owned(), floor_hour(hour_start_ms));
        lock(&self.inner().state)
            .faults
            .entry(key)
            .or_default()
            .extend(faults);
    }

    /// With `Some(fault)`, every request (any hour, either transport, parseable or not) is answered
    /// with `fault` until this is set back to `None`.
    pub fn fail_all(&self, fault: Option<Fault>) {
        lock(&self.inner().state).fail_all = fault;
    }

    /// With `Some(n)`, a request that arrives while `n` requests are already in flight is answered
    /// `503` at once (a throttling CDN). `None` (the default): unlimited.
    pub fn set_max_concurrent(&self, n: Option<usize>) {
        lock(&self.inner().state).max_concurrent = n;
    }

    /// Delay before each answer (except throttling 503s), during which the request counts as in
    /// flight. Applies to requests arriving after the call. Default zero.
    pub fn set_latency(&self, d: Duration) {
        lock(&self.inner().state).latency = d;
    }

    /// Every recorded request since start (or [`reset_stats`](Self::reset_stats)), in arrival order.
    /// A request is recorded when it arrives, with the status it is going to get.
    pub fn requests(&self) -> Vec<SimRequest> {
        lock(&self.inner().requests).clone()
    }

    /// How many recorded requests, on either transport, asked for `sym`'s hour containing
    /// `hour_start_ms`.
    pub fn requests_for(&self, sym: &str, hour_start_ms: i64) -> usize {
        let hour = floor_hour(hour_start_ms);
        lock(&self.inner().requests)
            .iter()
            .filter(|r| r.sym == sym && r.hour_start_ms == hour)
            .count()
    }

    /// The highest number of requests in flight at once since start (or
    /// [`reset_stats`](Self::reset_stats)), counting requests turned away by
    /// [`set_max_concurrent`](Self::set_max_concurrent) at the moment they arrived: it exceeds the
    /// limit exactly when a throttling 503 was sent.
    pub fn max_in_flight(&self) -> usize {
        self.inner().max_in_flight.load(Ordering::SeqCst)
    }

    /// Requests in flight now (arrived and not yet answered, including held
    /// [`Fault::Timeout`]s whose client has not disconnected).
    pub fn in_flight(&self) -> usize {
        self.inner().in_flight.load(Ordering::SeqCst)
    }

    /// Forgets recorded requests and sets [`max_in_flight`](Self::max_in_flight) to the current
    /// number in flight. Published hours, faults and settings are kept.
    pub fn reset_stats(&self) {
        let inner = self.inner();
        lock(&inner.requests).clear();
        inner
            .max_in_flight
            .store(inner.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// An hour published as ticks, with its two encodings made on first use.
#[derive(Debug)]
struct TickHour {
    hour_start_ms: i64,
    scale: u32,
    ticks: Vec<SimTick>,
    bi5: OnceLock<Bytes>,
    json: OnceLock<Bytes>,
}

/// What one transport serves for an hour.
#[derive(Debug, Clone)]
enum Body {
    Raw(Bytes),
    Ticks(Arc<TickHour>),
}

impl Body {
    fn bytes(&self, transport: Transport) -> Bytes {
        match self {
            Body::Raw(bytes) => bytes.clone(),
            Body::Ticks(hour) => match transport {
                Transport::Bi5 => hour
                    .bi5
                    .get_or_init(|| Bytes::from(encode_bi5(&hour.ticks)))
                    .clone(),
                Transport::Json => hour
                    .json
                    .get_or_init(|| {
                        Bytes::from(encode_json(hour.hour_start_ms, hour.scale, &hour.ticks))
                    })
                    .clone(),
            },
        }
    }
}

/// An hour's bodies per transport.
#[derive(Debug, Default)]
struct Published {
    bi5: Option<Body>,
    json: Option<Body>,
}

impl Published {
    fn get(&self, transport: Transport) -> Option<&Body> {
        match transport {
            Transport::Bi5 => self.bi5.as_ref(),
            Transport::Json => self.json.as_ref(),
        }
    }
}

type HourKey = (String, i64);

#[derive(Debug, Default)]
struct SimState {
    hours: HashMap<HourKey, Published>,
    /// Last scale published per symbol, for empty JSON answers to hours without ticks.
    scales: HashMap<String, u32>,
    faults: HashMap<HourKey, VecDeque<Fault>>,
    fail_all: Option<Fault>,
    max_concurrent: Option<usize>,
    latency: Duration,
}

#[derive(Debug)]
struct Inner {
    token: CancellationToken,
    state: Mutex<SimState>,
    requests: Mutex<Vec<SimRequest>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Counts one request in flight for as long as it lives (its handler future may be dropped early
/// when the client disconnects).
struct InFlight<'a> {
    inner: &'a Inner,
    /// Requests in flight when this one arrived, itself included.
    count: usize,
}

impl<'a> InFlight<'a> {
    fn enter(inner: &'a Inner) -> Self {
        let count = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        inner.max_in_flight.fetch_max(count, Ordering::SeqCst);
        Self { inner, count }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a request is going to get.
#[derive(Debug)]
enum Reply {
    Send {
        status: StatusCode,
        content_type: &'static str,
        retry_after: Option<u64>,
        body: Bytes,
    },
    /// Never answer.
    Hang,
}

impl Reply {
    fn ok(content_type: &'static str, body: Bytes) -> Self {
        Reply::Send {
            status: StatusCode::OK,
            content_type,
            retry_after: None,
            body,
        }
    }

    /// `status` with a body like `503 Service Unavailable`.
    fn status(status: StatusCode, retry_after: Option<u64>) -> Self {
        let reason = status.canonical_reason().unwrap_or("Error");
        Reply::Send {
            status,
            content_type: CONTENT_TEXT,
            retry_after,
            body: Bytes::from(format!("{} {reason}\n", status.as_u16())),
        }
    }

    fn recorded_status(&self) -> u16 {
        match self {
            Reply::Send { status, .. } => status.as_u16(),
            Reply::Hang => 0,
        }
    }

    fn into_response(self) -> Response {
        match self {
            Reply::Send {
                status,
                content_type,
                retry_after,
                body,
            } => {
                let mut response = (
                    status,
                    [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
                    body,
                )
                    .into_response();
                if let Some(secs) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                response
            }
            Reply::Hang => shutting_down(),
        }
    }
}

/// What [`Inner::plan`] took from the state under the lock.
struct Planned {
    fault: Option<Fault>,
    body: Option<Body>,
    scale: u32,
    latency: Duration,
}

impl Inner {
    fn new() -> Self {
        Self {
            token: CancellationToken::new(),
            state: Mutex::new(SimState::default()),
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    /// Answers one request under `/datafeed/` or `/v1/ticks/`; `target` is `None` if its path did
    /// not parse.
    async fn answer(&self, transport: Transport, target: Option<HourKey>) -> Response {
        let slot = InFlight::enter(self);
        let (reply, latency) = self.plan(transport, target.as_ref(), slot.count);
        let (sym, hour_start_ms) = target.unwrap_or_default();
        lock(&self.requests).push(SimRequest {
            transport,
            sym,
            hour_start_ms,
            status: reply.recorded_status(),
        });
        if !latency.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(latency) => {}
                () = self.token.cancelled() => return shutting_down(),
            }
        }
        if matches!(reply, Reply::Hang) {
            self.token.cancelled().await;
        }
        let response = reply.into_response();
        drop(slot);
        response
    }

    /// Decides the reply (and the latency before it) for a request that arrived with `concurrent`
    /// requests in flight, itself included. Consumes a queued fault if it uses one.
    fn plan(
        &self,
        transport: Transport,
        target: Option<&HourKey>,
        concurrent: usize,
    ) -> (Reply, Duration) {
        let planned = {
            let mut state = lock(&self.state);
            if state.max_concurrent.is_some_and(|n| concurrent > n) {
                return (
                    Reply::status(StatusCode::SERVICE_UNAVAILABLE, None),
                    Duration::ZERO,
                );
            }
            let fault = match (&state.fail_all, target) {
                (Some(fault), _) => Some(fault.clone()),
                (None, Some(key)) => take_fault(&mut state.faults, key),
                (None, None) => None,
            };
            let body = target
                .and_then(|key| state.hours.get(key))
                .and_then(|p| p.get(transport))
                .cloned();
            let scale = match &body {
                Some(Body::Ticks(hour)) => hour.scale,
                _ => target
                    .and_then(|(sym, _)| state.scales.get(sym).copied())
                    .unwrap_or(DEFAULT_SCALE),
            };
            Planned {
                fault,
                body,
                scale,
                latency: state.latency,
            }
        };
        let content_type = match transport {
            Transport::Bi5 => CONTENT_BI5,
            Transport::Json => CONTENT_JSON,
        };
        // Encoding (on first use) happens here, outside the lock.
        let real_body = |body: &Option<Body>| body.as_ref().map(|b| b.bytes(transport));
        let reply = match planned.fault {
            None => match real_body(&planned.body) {
                Some(bytes) => Reply::ok(content_type, bytes),
                None => Reply::status(StatusCode::NOT_FOUND, None),
            },
            Some(Fault::Status(code)) => Reply::status(status_code(code), None),
            Some(Fault::RetryAfter(code, secs)) => Reply::status(status_code(code), Some(secs)),
            Some(Fault::Timeout) => Reply::Hang,
            Some(Fault::Empty) => {
                let body = match (transport, target) {
                    (Transport::Bi5, _) => Bytes::new(),
                    (Transport::Json, target) => {
                        let hour = target.map_or(0, |(_, h)| *h);
                        Bytes::from(encode_json(hour, planned.scale, &[]))
                    }
                };
                Reply::ok(content_type, body)
            }
            Some(Fault::Html) => {
                Reply::ok(CONTENT_HTML, Bytes::from_static(CLOUDFLARE_HTML.as_bytes()))
            }
            Some(Fault::Garbage(bytes)) => Reply::ok(content_type, bytes),
            Some(Fault::Truncated) => {
                let full = real_body(&planned.body).unwrap_or_default();
                Reply::ok(content_type, full.slice(..full.len() / 2))
            }
        };
        (reply, planned.latency)
    }
}

/// Pops the next fault queued for `key`, dropping the queue when it empties.
fn take_fault(faults: &mut HashMap<HourKey, VecDeque<Fault>>, key: &HourKey) -> Option<Fault> {
    let queue = faults.get_mut(key)?;
    let fault = queue.pop_front();
    if queue.is_empty() {
        faults.remove(key);
    }
    fault
}

/// `code` as a status, 500 if it is not a valid HTTP status code.
fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The answer to requests still held when the simulator stops.
fn shutting_down() -> Response {
    let mut response = Reply::status(StatusCode::SERVICE_UNAVAILABLE, None).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn bi5_handler(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
    let target = uri
        .path()
        .strip_prefix("/datafeed/")
        .and_then(parse_bi5_path);
    inner.answer(Transport::Bi5, target).await
}

async fn json_handler(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
    let target = uri
        .path()
        .strip_prefix("/v1/ticks/")
        .and_then(parse_json_path);
    inner.answer(Transport::Json, target).await
}

async fn not_found() -> Response {
    Reply::status(StatusCode::NOT_FOUND, None).into_response()
}
