//! A fake OANDA v20 pricing stream (`GET /v3/accounts/{accountID}/pricing/stream`).
//!
//! [`OandaSim::start`] binds `127.0.0.1:0` and serves HTTP/1.1. A stream request
//! (`?instruments=EUR_USD,USD_JPY`, the comma possibly sent as `%2C`, optional `snapshot=false`) is
//! recorded, then answered in this order:
//!
//! 1. a failure queued with [`OandaSim::fail_next`] (any status, optional `Retry-After`);
//! 2. `401 {"errorMessage":"Insufficient authorization to perform request."}` when a token is set
//!    ([`OandaSim::set_token`]) and the `Authorization` header is not exactly `Bearer <token>`;
//! 3. `400 {"errorMessage":"Invalid value specified for 'instruments'"}` when `instruments` is
//!    missing, has an empty element, or names an instrument refused with
//!    [`OandaSim::reject_instrument`];
//! 4. otherwise `200`, `Content-Type: application/octet-stream`, `Transfer-Encoding: chunked`, and a
//!    body of newline-delimited JSON that never ends on its own: the snapshot (the current price of
//!    each requested instrument that has one, unless `snapshot=false`), then live lines in the order
//!    they are published, with a `HEARTBEAT` line every [`DEFAULT_HEARTBEAT_INTERVAL`] (adjustable).
//!    The response carries `Connection: close`, so when the body ends ([`OandaSim::drop_all`],
//!    dropping the simulator) the connection is closed too.
//!
//! Other paths get `404 {"errorMessage":..}` and are not recorded.
//!
//! How the body is cut into HTTP chunks is set with [`OandaSim::set_chunking`] ([`Chunking`]).
//!
//! Publishing is backpressured: each stream has a bounded queue of [`QUEUE_CAPACITY`] writes and
//! [`OandaSim::price`] / [`OandaSim::send_line`] / [`OandaSim::send_lines`] await room, so a benchmark
//! measures the client. A stream whose client went away (or that [`OandaSim::drop_all`] ended) stops
//! taking writes and never blocks a publisher; while stalled ([`OandaSim::set_stalled`]) everything is
//! discarded and publishers never wait.
//!
//! The snapshot is queued atomically with respect to [`OandaSim::price`]: a new stream either gets a
//! price in its snapshot or as a live line, never both and never neither.

mod chunker;
mod lines;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::util::{lock, serve_http};

pub use self::chunker::Chunking;
pub use self::lines::{SimPrice, random_walk};

use self::chunker::Chunker;
use self::lines::{heartbeat_line, line_instrument};

/// Capacity of each stream's outgoing queue, in writes (a price, a line, or a batch of
/// [`OandaSim::send_lines`] lines of up to [`COALESCE_BYTES`]).
pub const QUEUE_CAPACITY: usize = 4096;
/// Default interval between heartbeats (OANDA sends one about every 5 s).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// [`OandaSim::send_lines`] packs consecutive lines for one stream into writes of about this size.
pub const COALESCE_BYTES: usize = 64 * 1024;

/// Queue entries a stream's writer takes at once before cutting them into chunks.
const WRITE_BATCH: usize = 256;
/// Lower bound for the heartbeat interval, so a zero interval cannot spin.
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(1);

const MSG_UNAUTHORIZED: &str = "Insufficient authorization to perform request.";
const MSG_BAD_INSTRUMENTS: &str = "Invalid value specified for 'instruments'";
const MSG_NOT_FOUND: &str = "The requested resource could not be found.";

/// One pricing-stream request as the simulator received it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRequest {
    /// The `{accountID}` path segment.
    pub account: String,
    /// The `instruments` query parameter, percent-decoded and split on `,` (empty if missing).
    pub instruments: Vec<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// `false` only for `snapshot=false` (case-insensitive); the default is `true`.
    pub snapshot: bool,
}

/// The simulated OANDA v20 pricing-stream server. Dropping it shuts the server down and ends every
/// open stream.
pub struct OandaSim {
    inner: Arc<Inner>,
    addr: SocketAddr,
}

impl std::fmt::Debug for OandaSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OandaSim")
            .field("addr", &self.addr)
            .field("connections_total", &self.connections_total())
            .field("open_streams", &self.open_streams())
            .field("stalled", &self.inner.stalled())
            .field("chunking", &*lock(&self.inner.chunking))
            .finish_non_exhaustive()
    }
}

impl Drop for OandaSim {
    fn drop(&mut self) {
        self.inner.token.cancel();
    }
}

impl OandaSim {
    /// Binds `127.0.0.1:0` and starts serving. Must be called inside a Tokio runtime.
    pub async fn start() -> std::io::Result<OandaSim> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr` (port 0 picks a free port) and starts serving: how the `venue-sim` binary
    /// serves on a fixed port or on every interface. Must be called inside a Tokio runtime.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<OandaSim> {
        let inner = Arc::new(Inner::new());
        let app = Router::new()
            .route("/v3/accounts/{account}/pricing/stream", get(stream_handler))
            .fallback(not_found)
            .with_state(Arc::clone(&inner));
        let addr = serve_http(addr, app, inner.token.clone()).await?;
        Ok(OandaSim { inner, addr })
    }

    /// `http://127.0.0.1:<port>`, the base URL a client would use for OANDA's stream host.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// With `Some(token)`, requests whose `Authorization` header is not exactly `Bearer <token>` get
    /// 401. With `None` (the default), any or no `Authorization` header is accepted.
    pub fn set_token(&self, token: Option<&str>) {
        *lock(&self.inner.token_required) = token.map(|t| format!("Bearer {t}"));
    }

    /// Requests naming `instrument` get 400 `Invalid value specified for 'instruments'` from now on.
    pub fn reject_instrument(&self, instrument: &str) {
        lock(&self.inner.rejected).insert(instrument.to_owned());
    }

    /// The next `count` stream requests get `status` (with `Retry-After: <secs>` if given) and a body
    /// `{"errorMessage":..}`, before any authorization check. Calls queue up: a second call's failures
    /// come after the first call's. A `status` that is not a valid HTTP status code is sent as 500.
    pub fn fail_next(&self, status: u16, retry_after_secs: Option<u64>, count: usize) {
        if count == 0 {
            return;
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        lock(&self.inner.failures).push_back(Failure {
            status,
            retry_after_secs,
            count,
        });
    }

    /// How stream bodies are cut into HTTP chunks, from the next write on. Default [`Chunking::Lines`].
    pub fn set_chunking(&self, c: Chunking) {
        *lock(&self.inner.chunking) = c;
    }

    /// Interval between heartbeats on every open stream (`None`: no heartbeats; at least 1 ms).
    /// Default 5 s. Takes effect at once: the next heartbeat comes `d` after the call. Heartbeats
    /// carry the current time and go to every stream, whatever its instruments.
    pub fn set_heartbeat_interval(&self, d: Option<Duration>) {
        self.inner
            .heartbeat
            .send_replace(d.map(|d| d.max(MIN_HEARTBEAT_INTERVAL)));
    }

    /// While `true`, open streams send nothing at all (no heartbeats, no prices, no snapshots) but stay
    /// open; lines published meanwhile, and lines still queued, are discarded. New requests are still
    /// answered: a stream opened while stalled gets its response head but no body bytes.
    pub fn set_stalled(&self, stalled: bool) {
        self.inner.stalled.send_replace(stalled);
    }

    /// Ends the body of every open stream (the terminating chunk is sent and the connection closes).
    /// Lines still queued for those streams are not sent.
    pub fn drop_all(&self) {
        for stream in self.inner.open() {
            stream.token.cancel();
        }
    }

    /// Publishes a price: it becomes `p.instrument`'s current price (sent in the snapshot of later
    /// streams) and its line goes to every open stream that requested the instrument. Awaits room in
    /// those streams' queues; discarded (but still remembered) while stalled.
    pub async fn price(&self, p: &SimPrice) {
        let mut line = p.to_line();
        line.push('\n');
        let line = Bytes::from(line);
        let targets: Vec<Arc<StreamHandle>> = {
            let mut market = lock(&self.inner.market);
            market.current.insert(p.instrument.clone(), line.clone());
            market
                .streams
                .values()
                .filter(|s| s.wants(&p.instrument))
                .cloned()
                .collect()
        };
        self.inner.send_to(&targets, line).await;
    }

    /// Sends `line` with `\n` appended, verbatim (fixtures, garbage, other message types), to every open
    /// stream; if it is a JSON object with a string `"instrument"` field, only to the streams that
    /// requested that instrument. Does not change any current price. Discarded while stalled.
    pub async fn send_line(&self, line: &str) {
        let instrument = line_instrument(line);
        let targets: Vec<Arc<StreamHandle>> = {
            let market = lock(&self.inner.market);
            market
                .streams
                .values()
                .filter(|s| instrument.as_deref().is_none_or(|i| s.wants(i)))
                .cloned()
                .collect()
        };
        let mut bytes = BytesMut::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\n");
        self.inner.send_to(&targets, bytes.freeze()).await;
    }

    /// [`send_line`](Self::send_line) for many lines, in order, routed the same way but packed into
    /// writes of about [`COALESCE_BYTES`] per stream (the [`Chunking`] still decides the HTTP chunks).
    /// Meant for benchmarks.
    pub async fn send_lines(&self, lines: &[String]) {
        if self.inner.stalled() {
            return;
        }
        let targets: Vec<Arc<StreamHandle>> = self.inner.open();
        if targets.is_empty() {
            return;
        }
        let mut bufs: Vec<BytesMut> = targets.iter().map(|_| BytesMut::new()).collect();
        for line in lines {
            let instrument = line_instrument(line);
            for (i, stream) in targets.iter().enumerate() {
                if !instrument.as_deref().is_none_or(|name| stream.wants(name)) {
                    continue;
                }
                let buf = &mut bufs[i];
                if buf.capacity() == 0 {
                    buf.reserve(COALESCE_BYTES + line.len() + 1);
                }
                buf.extend_from_slice(line.as_bytes());
                buf.extend_from_slice(b"\n");
                if buf.len() >= COALESCE_BYTES {
                    let full = buf.split().freeze();
                    self.inner.send_one(stream, full).await;
                }
            }
        }
        for (stream, buf) in targets.iter().zip(bufs) {
            if !buf.is_empty() {
                self.inner.send_one(stream, buf.freeze()).await;
            }
        }
    }

    /// Every stream request so far, in arrival order, including the ones answered with an error.
    pub fn requests(&self) -> Vec<StreamRequest> {
        lock(&self.inner.requests).clone()
    }

    /// Streams started (200 responses) since start.
    pub fn connections_total(&self) -> u64 {
        self.inner.connections_total.load(Ordering::Relaxed)
    }

    /// Streams currently open.
    pub fn open_streams(&self) -> usize {
        lock(&self.inner.market).streams.len()
    }

    /// The requested instruments of each open stream, oldest stream first.
    pub fn open_instruments(&self) -> Vec<Vec<String>> {
        lock(&self.inner.market)
            .streams
            .values()
            .map(|s| s.instruments.clone())
            .collect()
    }
}

/// A queued [`OandaSim::fail_next`].
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    retry_after_secs: Option<u64>,
    count: usize,
}

/// The publishing side of one open stream.
#[derive(Debug)]
struct StreamHandle {
    id: u64,
    instruments: Vec<String>,
    instrument_set: HashSet<String>,
    tx: mpsc::Sender<Bytes>,
    /// Cancelled by [`OandaSim::drop_all`] (and, as a child of the server's token, at shutdown).
    token: CancellationToken,
}

impl StreamHandle {
    fn wants(&self, instrument: &str) -> bool {
        self.instrument_set.contains(instrument)
    }
}

#[derive(Debug, Default)]
struct Market {
    /// Current price line (with `\n`) per instrument, for snapshots.
    current: HashMap<String, Bytes>,
    /// Open streams by id (ids increase, so this is oldest first).
    streams: BTreeMap<u64, Arc<StreamHandle>>,
}

#[derive(Debug)]
struct Inner {
    token: CancellationToken,
    market: Mutex<Market>,
    requests: Mutex<Vec<StreamRequest>>,
    /// `Some("Bearer <token>")` when authorization is enforced.
    token_required: Mutex<Option<String>>,
    rejected: Mutex<HashSet<String>>,
    failures: Mutex<VecDeque<Failure>>,
    chunking: Mutex<Chunking>,
    heartbeat: watch::Sender<Option<Duration>>,
    stalled: watch::Sender<bool>,
    connections_total: AtomicU64,
    next_id: AtomicU64,
}

impl Inner {
    fn new() -> Self {
        Self {
            token: CancellationToken::new(),
            market: Mutex::new(Market::default()),
            requests: Mutex::new(Vec::new()),
            token_required: Mutex::new(None),
            rejected: Mutex::new(HashSet::new()),
            failures: Mutex::new(VecDeque::new()),
            chunking: Mutex::new(Chunking::default()),
            heartbeat: watch::Sender::new(Some(DEFAULT_HEARTBEAT_INTERVAL)),
            stalled: watch::Sender::new(false),
            connections_total: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        }
    }

    fn stalled(&self) -> bool {
        *self.stalled.borrow()
    }

    fn chunking(&self) -> Chunking {
        *lock(&self.chunking)
    }

    fn open(&self) -> Vec<Arc<StreamHandle>> {
        lock(&self.market).streams.values().cloned().collect()
    }

    fn remove(&self, id: u64) {
        lock(&self.market).streams.remove(&id);
    }

    /// Sends `bytes` to each of `targets` in turn; discarded while stalled.
    async fn send_to(&self, targets: &[Arc<StreamHandle>], bytes: Bytes) {
        if targets.is_empty() || self.stalled() {
            return;
        }
        for stream in targets {
            self.send_one(stream, bytes.clone()).await;
        }
    }

    /// Queues `bytes` for one stream, awaiting room unless the stream ends (client gone, dropped) or a
    /// stall begins (the write is then discarded).
    async fn send_one(&self, stream: &StreamHandle, bytes: Bytes) {
        if self.stalled() {
            return;
        }
        match stream.tx.try_send(bytes) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => self.remove(stream.id),
            Err(mpsc::error::TrySendError::Full(bytes)) => {
                let mut stalled = self.stalled.subscribe();
                tokio::select! {
                    biased;
                    () = stream.token.cancelled() => {}
                    _ = stalled.wait_for(|s| *s) => {}
                    sent = stream.tx.send(bytes) => {
                        if sent.is_err() {
                            self.remove(stream.id);
                        }
                    }
                }
            }
        }
    }

    /// Takes one queued failure, if any.
    fn take_failure(&self) -> Option<(StatusCode, Option<u64>)> {
        let mut failures = lock(&self.failures);
        let first = failures.front_mut()?;
        let taken = (first.status, first.retry_after_secs);
        first.count -= 1;
        if first.count == 0 {
            failures.pop_front();
        }
        Some(taken)
    }

    /// Registers a new stream and queues its snapshot, atomically with respect to [`OandaSim::price`].
    fn open_stream(
        &self,
        instruments: Vec<String>,
        snapshot: bool,
    ) -> (Arc<StreamHandle>, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let stream = Arc::new(StreamHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            instrument_set: instruments.iter().cloned().collect(),
            instruments,
            tx,
            token: self.token.child_token(),
        });
        let mut market = lock(&self.market);
        if snapshot {
            let mut seen = HashSet::new();
            let mut buf = BytesMut::new();
            for instrument in &stream.instruments {
                if seen.insert(instrument.as_str())
                    && let Some(line) = market.current.get(instrument)
                {
                    buf.extend_from_slice(line);
                }
            }
            // The queue is new and empty, so the snapshot (one write) always fits.
            if !buf.is_empty() && !self.stalled() {
                let _ = stream.tx.try_send(buf.freeze());
            }
        }
        market.streams.insert(stream.id, Arc::clone(&stream));
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        (stream, rx)
    }
}

/// `{"errorMessage":..}` with `status`.
fn error_response(status: StatusCode, message: &str, retry_after_secs: Option<u64>) -> Response {
    let body = serde_json::json!({ "errorMessage": message }).to_string();
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The message OANDA would put in an error body for `status`.
fn error_message(status: StatusCode) -> String {
    match status {
        StatusCode::UNAUTHORIZED => MSG_UNAUTHORIZED.to_owned(),
        StatusCode::BAD_REQUEST => MSG_BAD_INSTRUMENTS.to_owned(),
        StatusCode::NOT_FOUND => MSG_NOT_FOUND.to_owned(),
        other => other
            .canonical_reason()
            .map_or_else(|| format!("HTTP {}", other.as_u16()), str::to_owned),
    }
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, MSG_NOT_FOUND, None)
}

async fn stream_handler(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let instruments: Vec<String> = param("instruments")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let snapshot = !param("snapshot").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    lock(&inner.requests).push(StreamRequest {
        account,
        instruments: instruments.clone(),
        authorization: authorization.clone(),
        snapshot,
    });

    if let Some((status, retry_after)) = inner.take_failure() {
        return error_response(status, &error_message(status), retry_after);
    }
    let authorized = match &*lock(&inner.token_required) {
        Some(expected) => authorization.as_deref() == Some(expected.as_str()),
        None => true,
    };
    if !authorized {
        return error_response(StatusCode::UNAUTHORIZED, MSG_UNAUTHORIZED, None);
    }
    let valid = !instruments.is_empty() && {
        let rejected = lock(&inner.rejected);
        instruments
            .iter()
            .all(|i| !i.is_empty() && !rejected.contains(i))
    };
    if !valid {
        return error_response(StatusCode::BAD_REQUEST, MSG_BAD_INSTRUMENTS, None);
    }

    let (stream, rx) = inner.open_stream(instruments, snapshot);
    let writer = Writer::new(Arc::clone(&inner), &stream, rx);
    let body = futures::stream::unfold(writer, |mut w| async move {
        let chunk = w.next_chunk().await?;
        Some((Ok::<Bytes, Infallible>(chunk), w))
    });
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONNECTION, HeaderValue::from_static("close")),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Unregisters a stream when its body is dropped, however that happens.
#[derive(Debug)]
struct StreamGuard {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.inner.remove(self.id);
    }
}

/// The body of one stream: queued writes and heartbeats, cut into chunks.
struct Writer {
    rx: mpsc::Receiver<Bytes>,
    token: CancellationToken,
    heartbeat: watch::Receiver<Option<Duration>>,
    next_heartbeat: Option<Instant>,
    chunker: Chunker,
    /// Chunks cut but not yet handed to hyper.
    out: VecDeque<Bytes>,
    batch: Vec<Bytes>,
    guard: StreamGuard,
}

impl Writer {
    fn new(inner: Arc<Inner>, stream: &StreamHandle, rx: mpsc::Receiver<Bytes>) -> Self {
        let mut writer = Self {
            rx,
            token: stream.token.clone(),
            heartbeat: inner.heartbeat.subscribe(),
            next_heartbeat: None,
            chunker: Chunker::default(),
            out: VecDeque::new(),
            batch: Vec::with_capacity(WRITE_BATCH),
            guard: StreamGuard {
                inner,
                id: stream.id,
            },
        };
        writer.schedule_heartbeat();
        writer
    }

    /// The next chunk of the body, or `None` when the body ends.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let inner = Arc::clone(&self.guard.inner);
        loop {
            if self.token.is_cancelled() {
                return None;
            }
            if inner.stalled() {
                self.out.clear();
            } else if let Some(chunk) = self.out.pop_front() {
                return Some(chunk);
            }
            let next_heartbeat = self.next_heartbeat;
            let heartbeat_due = async move {
                match next_heartbeat {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = self.token.cancelled() => return None,
                Ok(()) = self.heartbeat.changed() => self.schedule_heartbeat(),
                () = heartbeat_due => {
                    self.schedule_heartbeat();
                    if !inner.stalled() {
                        let line = Bytes::from(heartbeat_line());
                        self.chunker.cut(inner.chunking(), line, &mut self.out);
                    }
                }
                n = self.rx.recv_many(&mut self.batch, WRITE_BATCH) => {
                    if n == 0 {
                        return None;
                    }
                    if inner.stalled() {
                        self.batch.clear();
                    } else {
                        self.cut_batch(inner.chunking());
                    }
                }
            }
        }
    }

    /// Cuts the writes taken off the queue. Fixed and awkward cuts run over their concatenation, so
    /// chunks span writes; every write ends with `\n`, so line cuts can go write by write.
    fn cut_batch(&mut self, mode: Chunking) {
        if self.batch.len() == 1 || mode == Chunking::Lines {
            for write in self.batch.drain(..) {
                self.chunker.cut(mode, write, &mut self.out);
            }
            return;
        }
        let len = self.batch.iter().map(Bytes::len).sum();
        let mut data = BytesMut::with_capacity(len);
        for write in self.batch.drain(..) {
            data.extend_from_slice(&write);
        }
        self.chunker.cut(mode, data.freeze(), &mut self.out);
    }

    /// Sets the next heartbeat one interval from now (or none if heartbeats are off).
    fn schedule_heartbeat(&mut self) {
        self.next_heartbeat = (*self.heartbeat.borrow_and_update()).map(|d| Instant::now() + d);
    }
}
