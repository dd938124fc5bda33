//! A fake Kraken spot WebSocket v2 server (see `PROTOCOLS.md` §1).
//!
//! [`KrakenSim::start`] binds `127.0.0.1:0` and serves any path. Every connection first gets the
//! `status` frame, then answers `subscribe` / `unsubscribe` (channels `trade` and `ticker`) and `ping`
//! requests the way Kraken does: one ack per symbol, `req_id` echoed, errors with `success:false`.
//! The test drives the market with [`KrakenSim::trades`] and [`KrakenSim::ticker`] and injects faults
//! with the `set_*`, [`KrakenSim::reject_symbol`] and [`KrakenSim::drop_all`] knobs.
//!
//! Frame order per connection is: the status frame, then everything else in the order it was
//! produced. A subscribe's ack and snapshot are queued atomically with respect to
//! [`KrakenSim::trades`] / [`KrakenSim::ticker`], so a snapshot is never followed by a trade it
//! already contains, and no trade published after the snapshot is missed.

mod frames;
mod gate;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use self::frames::{Reply, data_frame, rfc3339_now, ticker_object, trade_object};
use self::gate::{Gate, GatedIo};
use crate::util::lock;

/// Capacity of each connection's outgoing queue, in frames.
pub const QUEUE_CAPACITY: usize = 65_536;
/// How many trades of each symbol are kept for trade snapshots (Kraken sends the last 50).
pub const TRADE_SNAPSHOT_LEN: usize = 50;
/// Default interval between heartbeats.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// Frames the writer takes off the queue at once before flushing.
const WRITE_BATCH: usize = 1024;
/// Lower bound for the heartbeat interval, so a zero interval cannot spin.
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(1);

/// One trade to publish. Decimal fields are lexemes, written into the JSON verbatim as numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTrade {
    /// e.g. `"BTC/USD"`.
    pub symbol: String,
    /// `"buy"` or `"sell"` (taker side).
    pub side: String,
    /// Price lexeme, e.g. `"354.11000000"` (sent as `354.11000000`).
    pub price: String,
    /// Quantity lexeme.
    pub qty: String,
    /// `"limit"` or `"market"`.
    pub ord_type: String,
    /// Per-symbol sequence number.
    pub trade_id: u64,
    /// RFC 3339 trade time.
    pub timestamp: String,
}

/// One ticker (level 1) update. Decimal fields are lexemes, written into the JSON verbatim as numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTicker {
    /// e.g. `"BTC/USD"`.
    pub symbol: String,
    /// Best bid price.
    pub bid: String,
    /// Quantity at the best bid.
    pub bid_qty: String,
    /// Best ask price.
    pub ask: String,
    /// Quantity at the best ask.
    pub ask_qty: String,
    /// Last trade price.
    pub last: String,
    /// 24 h volume.
    pub volume: String,
    /// 24 h VWAP.
    pub vwap: String,
    /// 24 h low.
    pub low: String,
    /// 24 h high.
    pub high: String,
    /// 24 h change (quote currency).
    pub change: String,
    /// 24 h change in percentage points.
    pub change_pct: String,
    /// RFC 3339 time; the field is left out when `None`.
    pub timestamp: Option<String>,
}

/// The simulated Kraken v2 server. Dropping it shuts the server and all its connections down.
pub struct KrakenSim {
    inner: Arc<Inner>,
    addr: SocketAddr,
}

impl std::fmt::Debug for KrakenSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KrakenSim")
            .field("addr", &self.addr)
            .field("connections_total", &self.connections_total())
            .field("open_connections", &self.open_connections())
            .field("stalled", &self.inner.gate.is_closed())
            .field(
                "data_paused",
                &self.inner.data_paused.load(Ordering::Relaxed),
            )
            .field("acks", &self.inner.acks.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Drop for KrakenSim {
    fn drop(&mut self) {
        self.inner.token.cancel();
    }
}

impl KrakenSim {
    /// Binds `127.0.0.1:0` and starts serving. Must be called inside a Tokio runtime.
    pub async fn start() -> std::io::Result<KrakenSim> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr` (port 0 picks a free port) and starts serving: how the `venue-sim` binary
    /// serves on a fixed port or on every interface. Must be called inside a Tokio runtime.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<KrakenSim> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner::new());
        tokio::spawn(accept_loop(Arc::clone(&inner), listener));
        tokio::spawn(heartbeat_loop(Arc::clone(&inner)));
        Ok(KrakenSim { inner, addr })
    }

    /// `ws://127.0.0.1:<port>/v2`.
    pub fn url(&self) -> String {
        format!("ws://{}/v2", self.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Publishes trades. Each call becomes one `trade` update frame per symbol (trades of several
    /// symbols are split, in order of first appearance), sent to every open connection subscribed to
    /// that symbol. The trades are recorded in the symbol's history (for snapshots) even when nobody is
    /// subscribed. Awaits room in the subscribers' queues unless stalled or data-paused, in which case
    /// the frames are discarded (the history is still recorded).
    pub async fn trades(&self, trades: &[SimTrade]) {
        let Some(first) = trades.first() else {
            return;
        };
        if trades.iter().all(|t| t.symbol == first.symbol) {
            self.publish_trades(&first.symbol, trades.iter()).await;
            return;
        }
        let mut groups: Vec<(&str, Vec<&SimTrade>)> = Vec::new();
        for t in trades {
            match groups.iter_mut().find(|(s, _)| *s == t.symbol) {
                Some((_, group)) => group.push(t),
                None => groups.push((&t.symbol, vec![t])),
            }
        }
        for (symbol, group) in groups {
            self.publish_trades(symbol, group.into_iter()).await;
        }
    }

    async fn publish_trades<'a>(&self, symbol: &str, trades: impl Iterator<Item = &'a SimTrade>) {
        let objects: Vec<(u64, String)> = trades.map(|t| (t.trade_id, trade_object(t))).collect();
        let frame = data_frame("trade", "update", objects.iter().map(|(_, o)| o.as_str()));
        let targets = {
            let mut market = lock(&self.inner.market);
            let history = match market.trade_history.get_mut(symbol) {
                Some(h) => h,
                None => market
                    .trade_history
                    .entry(symbol.to_owned())
                    .or_insert_with(|| VecDeque::with_capacity(TRADE_SNAPSHOT_LEN)),
            };
            for entry in objects {
                if history.len() == TRADE_SNAPSHOT_LEN {
                    history.pop_front();
                }
                history.push_back(entry);
            }
            market.subscribers(Channel::Trade, symbol)
        };
        self.inner.fan_out(targets, frame).await;
    }

    /// Publishes a ticker: stored as the symbol's last ticker (for snapshots) and sent as
    /// `{"channel":"ticker","type":"update","data":[{..}]}` to the symbol's ticker subscribers.
    pub async fn ticker(&self, t: SimTicker) {
        let object = ticker_object(&t);
        let frame = data_frame("ticker", "update", std::iter::once(object.as_str()));
        let targets = {
            let mut market = lock(&self.inner.market);
            market.last_ticker.insert(t.symbol.clone(), object);
            market.subscribers(Channel::Ticker, &t.symbol)
        };
        self.inner.fan_out(targets, frame).await;
    }

    /// Sends `text` verbatim as a text frame to every open connection (for garbage tests). Not
    /// affected by [`set_data_paused`](Self::set_data_paused); discarded while stalled.
    pub async fn send_raw(&self, text: &str) {
        let msg = Message::Text(Utf8Bytes::from(text.to_owned()));
        self.inner.broadcast(msg).await;
    }

    /// Sends `bytes` as a binary frame to every open connection.
    pub async fn send_raw_binary(&self, bytes: Vec<u8>) {
        self.inner.broadcast(Message::Binary(bytes.into())).await;
    }

    /// Subscribes to `symbol` fail from now on with
    /// `{"error":"Currency pair not supported <S>","method":"subscribe",..,"success":false,"symbol":"<S>",..}`.
    pub fn reject_symbol(&self, symbol: &str) {
        lock(&self.inner.rejected).insert(symbol.to_owned());
    }

    /// With `false`, subscribe and unsubscribe requests are swallowed: no ack, no change to the
    /// subscriptions (they are still recorded in [`requests`](Self::requests)). Default `true`.
    pub fn set_acks(&self, enabled: bool) {
        self.inner.acks.store(enabled, Ordering::Relaxed);
    }

    /// Abruptly closes every open connection: the TCP stream is dropped, no close frame is sent.
    pub fn drop_all(&self) {
        for conn in self.inner.open_conns() {
            conn.token.cancel();
        }
    }

    /// While `true`, nothing at all is written to any client: no data, heartbeats, acks, pongs, not
    /// even WebSocket control frames. Frames produced meanwhile are discarded; sockets stay open and
    /// requests are still read, recorded and applied (their replies are discarded). Connections
    /// accepted during a stall complete the WebSocket handshake; their status frame is sent when the
    /// stall ends.
    pub fn set_stalled(&self, stalled: bool) {
        self.inner.gate.set_closed(stalled);
    }

    /// While `true`, trade and ticker frames (updates and snapshots) are discarded; heartbeats, acks,
    /// pongs and raw frames still flow.
    pub fn set_data_paused(&self, paused: bool) {
        self.inner.data_paused.store(paused, Ordering::Relaxed);
    }

    /// Delays each outgoing frame by `d` (a slow sender). Default zero.
    pub fn set_frame_delay(&self, d: Duration) {
        self.inner
            .frame_delay_ns
            .store(duration_ns(d), Ordering::Relaxed);
    }

    /// Interval between heartbeats on connections with at least one subscription. Default 1 s.
    pub fn set_heartbeat_interval(&self, d: Duration) {
        self.inner
            .heartbeat_ns
            .store(duration_ns(d), Ordering::Relaxed);
        self.inner.heartbeat_changed.notify_one();
    }

    /// WebSocket connections accepted (handshake completed) since start.
    pub fn connections_total(&self) -> u64 {
        self.inner.connections_total.load(Ordering::Relaxed)
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        lock(&self.inner.conns).len()
    }

    /// Every JSON request received from clients, in arrival order (across connections). Text that is
    /// not JSON is not recorded.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.inner.requests).clone()
    }

    /// Symbols subscribed on `channel` (`"trade"` or `"ticker"`) on any currently open connection.
    pub fn subscribed(&self, channel: &str) -> BTreeSet<String> {
        let Some(channel) = Channel::parse(channel) else {
            return BTreeSet::new();
        };
        let market = lock(&self.inner.market);
        market.subs[channel.index()]
            .iter()
            .filter(|(_, conns)| !conns.is_empty())
            .map(|(symbol, _)| symbol.clone())
            .collect()
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Trade,
    Ticker,
}

impl Channel {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "trade" => Some(Self::Trade),
            "ticker" => Some(Self::Ticker),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Trade => "trade",
            Self::Ticker => "ticker",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Trade => 0,
            Self::Ticker => 1,
        }
    }

    /// Kraken's default for the `snapshot` option (§1.3).
    fn default_snapshot(self) -> bool {
        matches!(self, Self::Ticker)
    }
}

/// A frame queued for one connection. `data` marks trade/ticker frames (discarded while paused).
#[derive(Debug)]
struct Out {
    data: bool,
    msg: Message,
}

impl Out {
    fn control(text: String) -> Self {
        Self {
            data: false,
            msg: Message::Text(Utf8Bytes::from(text)),
        }
    }

    fn data(text: String) -> Self {
        Self {
            data: true,
            msg: Message::Text(Utf8Bytes::from(text)),
        }
    }
}

#[derive(Debug)]
struct Conn {
    id: u64,
    tx: mpsc::Sender<Out>,
    token: CancellationToken,
    /// Number of (channel, symbol) subscriptions; heartbeats flow while it is non-zero.
    subscriptions: AtomicUsize,
}

type ConnList = Arc<Vec<Arc<Conn>>>;

#[derive(Debug, Default)]
struct Market {
    /// Last [`TRADE_SNAPSHOT_LEN`] trades per symbol, in arrival order: (trade_id, object JSON).
    trade_history: HashMap<String, VecDeque<(u64, String)>>,
    /// Last ticker object JSON per symbol.
    last_ticker: HashMap<String, String>,
    /// Subscribers per channel and symbol; copy-on-write so publishers clone an `Arc`, not a list.
    subs: [HashMap<String, ConnList>; 2],
}

impl Market {
    fn subscribers(&self, channel: Channel, symbol: &str) -> Option<ConnList> {
        self.subs[channel.index()].get(symbol).map(Arc::clone)
    }

    /// The snapshot frame a new subscriber gets, if any.
    fn snapshot_frame(&self, channel: Channel, symbol: &str) -> Option<String> {
        match channel {
            Channel::Trade => {
                let mut trades: Vec<&(u64, String)> = self
                    .trade_history
                    .get(symbol)
                    .map(|h| h.iter().collect())
                    .unwrap_or_default();
                trades.sort_by_key(|(id, _)| *id);
                Some(data_frame(
                    "trade",
                    "snapshot",
                    trades.iter().map(|(_, o)| o.as_str()),
                ))
            }
            Channel::Ticker => self
                .last_ticker
                .get(symbol)
                .map(|o| data_frame("ticker", "snapshot", std::iter::once(o.as_str()))),
        }
    }

    fn remove_conn(&mut self, conn_id: u64) {
        for subs in &mut self.subs {
            subs.retain(|_, list| {
                if list.iter().any(|c| c.id == conn_id) {
                    Arc::make_mut(list).retain(|c| c.id != conn_id);
                }
                !list.is_empty()
            });
        }
    }
}

struct Inner {
    token: CancellationToken,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    market: Mutex<Market>,
    requests: Mutex<Vec<Value>>,
    rejected: Mutex<HashSet<String>>,
    acks: AtomicBool,
    gate: Arc<Gate>,
    data_paused: AtomicBool,
    frame_delay_ns: AtomicU64,
    heartbeat_ns: AtomicU64,
    heartbeat_changed: Notify,
    connections_total: AtomicU64,
    next_conn: AtomicU64,
    conn_id_seed: u64,
}

impl Inner {
    fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(duration_ns)
            .unwrap_or(0);
        Self {
            token: CancellationToken::new(),
            conns: Mutex::new(HashMap::new()),
            market: Mutex::new(Market::default()),
            requests: Mutex::new(Vec::new()),
            rejected: Mutex::new(HashSet::new()),
            acks: AtomicBool::new(true),
            gate: Arc::new(Gate::default()),
            data_paused: AtomicBool::new(false),
            frame_delay_ns: AtomicU64::new(0),
            heartbeat_ns: AtomicU64::new(duration_ns(DEFAULT_HEARTBEAT_INTERVAL)),
            heartbeat_changed: Notify::new(),
            connections_total: AtomicU64::new(0),
            next_conn: AtomicU64::new(1),
            conn_id_seed: seed,
        }
    }

    fn open_conns(&self) -> Vec<Arc<Conn>> {
        lock(&self.conns).values().cloned().collect()
    }

    fn data_paused(&self) -> bool {
        self.data_paused.load(Ordering::Relaxed)
    }

    /// Kraken-style connection id: always above 2^53 (§1.2).
    fn connection_id(&self, seq: u64) -> u64 {
        // splitmix64 of seed + seq, top bit forced.
        let mut z = self
            .conn_id_seed
            .wrapping_add(seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) | (1 << 63)
    }

    /// Sends a data frame to `targets`, awaiting queue room; discarded while stalled or paused.
    async fn fan_out(&self, targets: Option<ConnList>, frame: String) {
        let Some(targets) = targets else {
            return;
        };
        if targets.is_empty() || self.gate.is_closed() || self.data_paused() {
            return;
        }
        let msg = Message::Text(Utf8Bytes::from(frame));
        for conn in targets.iter() {
            // An error means the connection is gone; its cleanup removes it from the lists.
            let _ = conn
                .tx
                .send(Out {
                    data: true,
                    msg: msg.clone(),
                })
                .await;
        }
    }

    /// Sends a non-data frame to every open connection, awaiting queue room; discarded while stalled.
    async fn broadcast(&self, msg: Message) {
        if self.gate.is_closed() {
            return;
        }
        for conn in self.open_conns() {
            let _ = conn
                .tx
                .send(Out {
                    data: false,
                    msg: msg.clone(),
                })
                .await;
        }
    }

    /// Queues a reply for one connection, awaiting room; discarded while stalled.
    async fn reply(&self, conn: &Conn, text: String) {
        if self.gate.is_closed() {
            return;
        }
        let _ = conn.tx.send(Out::control(text)).await;
    }

    /// Queues without waiting if possible (called under the market lock), else defers to `pending`,
    /// which the caller sends after releasing the lock. Order is kept: once something is deferred,
    /// everything after it is deferred too.
    fn queue_now(&self, conn: &Conn, out: Out, pending: &mut Vec<Out>) {
        if self.gate.is_closed() || (out.data && self.data_paused()) {
            return;
        }
        if !pending.is_empty() {
            pending.push(out);
            return;
        }
        match conn.tx.try_send(out) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(out)) => pending.push(out),
        }
    }

    async fn send_pending(&self, conn: &Conn, pending: Vec<Out>) {
        for out in pending {
            let _ = conn.tx.send(out).await;
        }
    }

    fn frame_delay(&self) -> Duration {
        Duration::from_nanos(self.frame_delay_ns.load(Ordering::Relaxed))
    }

    fn heartbeat_interval(&self) -> Duration {
        Duration::from_nanos(self.heartbeat_ns.load(Ordering::Relaxed)).max(MIN_HEARTBEAT_INTERVAL)
    }
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            () = inner.token.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, _)) => {
                let token = inner.token.child_token();
                tokio::spawn(serve_conn(Arc::clone(&inner), tcp, token));
            }
            // Accept errors (e.g. too many open files) are transient: back off briefly, keep serving.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn heartbeat_loop(inner: Arc<Inner>) {
    loop {
        let interval = inner.heartbeat_interval();
        tokio::select! {
            () = inner.token.cancelled() => return,
            () = inner.heartbeat_changed.notified() => continue,
            () = tokio::time::sleep(interval) => {}
        }
        if inner.gate.is_closed() {
            continue;
        }
        for conn in inner.open_conns() {
            if conn.subscriptions.load(Ordering::Relaxed) > 0 {
                // A full queue means frames are flowing anyway; skip the heartbeat then.
                let _ = conn.tx.try_send(Out {
                    data: false,
                    msg: Message::Text(Utf8Bytes::from_static(frames::HEARTBEAT)),
                });
            }
        }
    }
}

/// Unregisters a connection (and its subscriptions) when its task ends, however it ends.
struct ConnGuard {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        lock(&self.inner.market).remove_conn(self.id);
        lock(&self.inner.conns).remove(&self.id);
    }
}

type Ws = WebSocketStream<GatedIo>;

async fn serve_conn(inner: Arc<Inner>, tcp: TcpStream, token: CancellationToken) {
    let _ = tcp.set_nodelay(true);
    let io = GatedIo {
        io: tcp,
        gate: Arc::clone(&inner.gate),
        armed: false,
    };
    let mut ws = tokio::select! {
        () = token.cancelled() => return,
        ws = tokio_tungstenite::accept_async(io) => match ws {
            Ok(ws) => ws,
            Err(_) => return,
        },
    };
    ws.get_mut().armed = true;

    let seq = inner.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let conn = Arc::new(Conn {
        id: seq,
        tx,
        token: token.clone(),
        subscriptions: AtomicUsize::new(0),
    });
    lock(&inner.conns).insert(seq, Arc::clone(&conn));
    inner.connections_total.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnGuard {
        inner: Arc::clone(&inner),
        id: seq,
    };

    let (sink, stream) = ws.split();
    let reader = tokio::spawn({
        let inner = Arc::clone(&inner);
        let token = token.clone();
        async move {
            tokio::select! {
                () = token.cancelled() => {}
                () = read_loop(&inner, &conn, stream) => {}
            }
            token.cancel();
        }
    });
    let status = frames::status_frame(inner.connection_id(seq));
    tokio::select! {
        () = token.cancelled() => {}
        _ = write_loop(&inner, sink, rx, status) => {}
    }
    token.cancel();
    let _ = reader.await;
}

async fn write_loop(
    inner: &Inner,
    mut sink: SplitSink<Ws, Message>,
    mut rx: mpsc::Receiver<Out>,
    status: String,
) -> Result<(), tungstenite::Error> {
    // The status frame is always first; a connection accepted while stalled gets it when the stall ends.
    inner.gate.opened().await;
    sink.send(Message::Text(Utf8Bytes::from(status))).await?;
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    loop {
        if rx.recv_many(&mut batch, WRITE_BATCH).await == 0 {
            return Ok(());
        }
        let delay = inner.frame_delay();
        for out in batch.drain(..) {
            if inner.gate.is_closed() || (out.data && inner.data_paused()) {
                continue;
            }
            if delay.is_zero() {
                sink.feed(out.msg).await?;
            } else {
                tokio::time::sleep(delay).await;
                sink.send(out.msg).await?;
            }
        }
        sink.flush().await?;
    }
}

async fn read_loop(inner: &Inner, conn: &Arc<Conn>, mut stream: SplitStream<Ws>) {
    // Keep reading after a Close: tungstenite answers it and then ends the stream.
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Text(text)) => {
                let time_in = rfc3339_now();
                handle_request(inner, conn, text.as_str(), &time_in).await;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

async fn handle_request(inner: &Inner, conn: &Arc<Conn>, text: &str, time_in: &str) {
    let Ok(request) = serde_json::from_str::<Value>(text) else {
        let reply = Reply::new()
            .str("error", "EGeneral:Invalid arguments")
            .raw("success", "false")
            .finish(time_in);
        inner.reply(conn, reply).await;
        return;
    };
    lock(&inner.requests).push(request.clone());
    let req_id = request.get("req_id").map(Value::to_string);
    let method = request.get("method").and_then(Value::as_str);
    match method {
        Some("ping") => {
            let reply = Reply::new()
                .str("method", "pong")
                .raw_opt("req_id", req_id.as_deref())
                .finish(time_in);
            inner.reply(conn, reply).await;
        }
        Some(method @ ("subscribe" | "unsubscribe")) => {
            if inner.acks.load(Ordering::Relaxed) {
                let subscribe = method == "subscribe";
                handle_subscription(inner, conn, &request, subscribe, req_id.as_deref(), time_in)
                    .await;
            }
        }
        _ => {
            let reply = Reply::new()
                .str("error", "EGeneral:Invalid arguments")
                .str_opt("method", method)
                .raw_opt("req_id", req_id.as_deref())
                .raw("success", "false")
                .finish(time_in);
            inner.reply(conn, reply).await;
        }
    }
}

/// Error reply for one request: `{"error":..,"method":..,"req_id":..,"success":false,"symbol":..,..}`.
fn error_reply(
    error: &str,
    method: &str,
    req_id: Option<&str>,
    symbol: Option<&str>,
    time_in: &str,
) -> String {
    let reply = Reply::new()
        .str("error", error)
        .str("method", method)
        .raw_opt("req_id", req_id)
        .raw("success", "false");
    match symbol {
        Some(symbol) => reply.str("symbol", symbol),
        None => reply,
    }
    .finish(time_in)
}

async fn handle_subscription(
    inner: &Inner,
    conn: &Arc<Conn>,
    request: &Value,
    subscribe: bool,
    req_id: Option<&str>,
    time_in: &str,
) {
    let method = if subscribe {
        "subscribe"
    } else {
        "unsubscribe"
    };
    let params = request.get("params");
    let channel = params
        .and_then(|p| p.get("channel"))
        .and_then(Value::as_str);
    let symbols: Option<Vec<&str>> = params
        .and_then(|p| p.get("symbol"))
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_str).collect());
    let (Some(channel), Some(symbols)) = (channel, symbols.filter(|s| !s.is_empty())) else {
        let reply = error_reply("EGeneral:Invalid arguments", method, req_id, None, time_in);
        inner.reply(conn, reply).await;
        return;
    };
    let Some(channel) = Channel::parse(channel) else {
        let reply = error_reply("Channel not supported", method, req_id, None, time_in);
        inner.reply(conn, reply).await;
        return;
    };
    let params = params.unwrap_or(&Value::Null);
    let snapshot = params
        .get("snapshot")
        .and_then(Value::as_bool)
        .unwrap_or(channel.default_snapshot());
    let event_trigger = match channel {
        Channel::Ticker => params.get("event_trigger").map(Value::to_string),
        Channel::Trade => None,
    };
    for symbol in symbols {
        if subscribe {
            subscribe_one(
                inner,
                conn,
                channel,
                symbol,
                snapshot,
                event_trigger.as_deref(),
                req_id,
                time_in,
            )
            .await;
        } else {
            unsubscribe_one(inner, conn, channel, symbol, req_id, time_in).await;
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "internal helper mirroring the request fields"
)]
async fn subscribe_one(
    inner: &Inner,
    conn: &Arc<Conn>,
    channel: Channel,
    symbol: &str,
    snapshot: bool,
    event_trigger: Option<&str>,
    req_id: Option<&str>,
    time_in: &str,
) {
    if lock(&inner.rejected).contains(symbol) {
        let error = format!("Currency pair not supported {symbol}");
        let reply = error_reply(&error, "subscribe", req_id, Some(symbol), time_in);
        inner.reply(conn, reply).await;
        return;
    }
    let mut pending = Vec::new();
    {
        let mut market = lock(&inner.market);
        let subs = &mut market.subs[channel.index()];
        let list = subs.entry(symbol.to_owned()).or_default();
        if list.iter().any(|c| c.id == conn.id) {
            let reply = error_reply(
                "Already subscribed",
                "subscribe",
                req_id,
                Some(symbol),
                time_in,
            );
            inner.queue_now(conn, Out::control(reply), &mut pending);
        } else {
            // The subscription, its ack and its snapshot happen under one lock, so publishers see
            // either none or all of them.
            Arc::make_mut(list).push(Arc::clone(conn));
            conn.subscriptions.fetch_add(1, Ordering::Relaxed);
            let result = Reply::new()
                .str("channel", channel.name())
                .raw_opt("event_trigger", event_trigger)
                .raw("snapshot", if snapshot { "true" } else { "false" })
                .str("symbol", symbol)
                .close();
            let ack = Reply::new()
                .str("method", "subscribe")
                .raw_opt("req_id", req_id)
                .raw("result", &result)
                .raw("success", "true")
                .finish(time_in);
            inner.queue_now(conn, Out::control(ack), &mut pending);
            if snapshot && let Some(frame) = market.snapshot_frame(channel, symbol) {
                inner.queue_now(conn, Out::data(frame), &mut pending);
            }
        }
    }
    inner.send_pending(conn, pending).await;
}

async fn unsubscribe_one(
    inner: &Inner,
    conn: &Conn,
    channel: Channel,
    symbol: &str,
    req_id: Option<&str>,
    time_in: &str,
) {
    let mut pending = Vec::new();
    {
        let mut market = lock(&inner.market);
        let subs = &mut market.subs[channel.index()];
        let removed = match subs.get_mut(symbol) {
            Some(list) if list.iter().any(|c| c.id == conn.id) => {
                Arc::make_mut(list).retain(|c| c.id != conn.id);
                if list.is_empty() {
                    subs.remove(symbol);
                }
                conn.subscriptions.fetch_sub(1, Ordering::Relaxed);
                true
            }
            _ => false,
        };
        let reply = if removed {
            let result = Reply::new()
                .str("channel", channel.name())
                .str("symbol", symbol)
                .close();
            Reply::new()
                .str("method", "unsubscribe")
                .raw_opt("req_id", req_id)
                .raw("result", &result)
                .raw("success", "true")
                .finish(time_in)
        } else {
            // Kraken quirk (§1.4): the reply to a bad unsubscribe says "subscribe".
            error_reply(
                "Subscription Not Found",
                "subscribe",
                req_id,
                Some(symbol),
                time_in,
            )
        };
        inner.queue_now(conn, Out::control(reply), &mut pending);
    }
    inner.send_pending(conn, pending).await;
}
