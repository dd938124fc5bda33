//! Behaviour of the OANDA v20 pricing-stream simulator, observed through real HTTP clients: reqwest
//! (streaming the body) and, where the chunk framing itself matters, a raw TCP client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use serde_json::Value;
use tickflow_schema::UnixNanos;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use venue_sim::oanda::{Chunking, OandaSim, SimPrice, StreamRequest, random_walk};

/// Upper bound for anything that is expected to happen.
const DEADLINE: Duration = Duration::from_secs(5);
/// How long we watch to prove that something does not happen.
const SILENCE: Duration = Duration::from_millis(300);

const ACCOUNT: &str = "101-004-1234567-001";

const FIXTURE_2016: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/oanda/pricing_stream_EURUSD_EURJPY_2016-10-27.ndjson"
));
const FIXTURE_2017: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/oanda/pricing_stream_EURUSD_EURJPY_2017-03-09_notebook.ndjson"
));
const FIXTURE_2020: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/oanda/pricing_stream_EURUSD_2020-10-23_after_friday_close.ndjson"
));
const FIXTURE_TX_HEARTBEATS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/oanda/transactions_stream_heartbeats_2017-03-09_notebook.ndjson"
));

/// A simulator whose heartbeats stay out of the way unless a test turns them on.
async fn sim() -> OandaSim {
    let sim = OandaSim::start().await.unwrap();
    sim.set_heartbeat_interval(None);
    sim
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn stream_url(sim: &OandaSim, query: &str) -> String {
    format!("{}/v3/accounts/{ACCOUNT}/pricing/stream?{query}", sim.url())
}

async fn get(sim: &OandaSim, query: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = client().get(stream_url(sim, query));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    tokio::time::timeout(DEADLINE, request.send())
        .await
        .expect("response head before the deadline")
        .unwrap()
}

/// Opens a stream that must succeed.
async fn open(sim: &OandaSim, query: &str) -> Body {
    let response = get(sim, query, None).await;
    assert_eq!(response.status(), 200);
    Body::new(response)
}

/// A streaming response body with line reassembly.
struct Body {
    stream: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buf: Vec<u8>,
}

impl Body {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(
            response.headers()["content-type"],
            "application/octet-stream"
        );
        assert_eq!(response.headers()["transfer-encoding"], "chunked");
        Self {
            stream: Box::pin(response.bytes_stream()),
            buf: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer. `Ok(false)`: nothing came within `within`; panics if the
    /// body ends or fails.
    async fn fill_within(&mut self, within: Duration) -> bool {
        match tokio::time::timeout(within, self.stream.next()).await {
            Err(_) => false,
            Ok(Some(Ok(bytes))) => {
                self.buf.extend_from_slice(&bytes);
                true
            }
            Ok(Some(Err(e))) => panic!("body failed: {e}"),
            Ok(None) => panic!("body ended"),
        }
    }

    /// The next line (without `\n`), or `None` if no complete line came within `within`.
    async fn next_line_within(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(String::from_utf8(line[..i].to_vec()).unwrap());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.fill_within(left).await {
                return None;
            }
        }
    }

    async fn next_line(&mut self) -> String {
        self.next_line_within(DEADLINE)
            .await
            .expect("a line before the deadline")
    }

    async fn next_json(&mut self) -> Value {
        serde_json::from_str(&self.next_line().await).unwrap()
    }

    /// Exactly `n` bytes (the buffer must not hold more).
    async fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + DEADLINE;
        while self.buf.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                self.fill_within(left).await,
                "only {} of {n} bytes before the deadline",
                self.buf.len()
            );
        }
        assert_eq!(self.buf.len(), n, "more bytes than expected");
        std::mem::take(&mut self.buf)
    }

    /// Asserts that not a single byte arrives for [`SILENCE`].
    async fn assert_silent(&mut self) {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", self.buf);
        assert!(
            !self.fill_within(SILENCE).await,
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Asserts that the body ends cleanly (terminating chunk) before the deadline, with no more data.
    async fn assert_ends(&mut self) {
        match tokio::time::timeout(DEADLINE, self.stream.next()).await {
            Err(_) => panic!("body still open"),
            Ok(None) => {}
            Ok(Some(Ok(bytes))) => panic!("unexpected bytes: {bytes:?}"),
            Ok(Some(Err(e))) => panic!("body failed instead of ending: {e}"),
        }
    }
}

/// Polls `cond` until it holds, or panics at the deadline.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A raw HTTP/1.1 client that exposes the chunk framing of the body.
struct RawStream {
    tcp: TcpStream,
    buf: Vec<u8>,
    head: String,
}

impl RawStream {
    async fn open(sim: &OandaSim, query: &str) -> Self {
        let mut tcp = TcpStream::connect(sim.local_addr()).await.unwrap();
        let request = format!(
            "GET /v3/accounts/{ACCOUNT}/pricing/stream?{query} HTTP/1.1\r\nHost: {}\r\n\
             Authorization: Bearer raw\r\n\r\n",
            sim.local_addr()
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Self {
            tcp,
            buf: Vec::new(),
            head: String::new(),
        };
        let end = loop {
            if let Some(i) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(raw.fill().await, "connection closed in the head");
        };
        let head: Vec<u8> = raw.buf.drain(..end).collect();
        raw.head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        assert!(raw.head.starts_with("http/1.1 200"), "{}", raw.head);
        assert!(
            raw.head.contains("transfer-encoding: chunked"),
            "{}",
            raw.head
        );
        raw
    }

    /// Reads more bytes; `false` at EOF.
    async fn fill(&mut self) -> bool {
        let mut tmp = [0_u8; 16 * 1024];
        let n = tokio::time::timeout(DEADLINE, self.tcp.read(&mut tmp))
            .await
            .expect("bytes before the deadline")
            .unwrap();
        self.buf.extend_from_slice(&tmp[..n]);
        n > 0
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "connection closed inside a chunk");
        }
        self.buf.drain(..n).collect()
    }

    /// The next chunk's payload; `None` for the terminating zero-length chunk.
    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let line_end = loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            assert!(self.fill().await, "connection closed between chunks");
        };
        let size_line: Vec<u8> = self.buf.drain(..line_end + 2).collect();
        let size_text = std::str::from_utf8(&size_line[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.trim(), 16).unwrap();
        if size == 0 {
            assert_eq!(self.take(2).await, b"\r\n", "no trailers expected");
            return None;
        }
        let payload = self.take(size).await;
        assert_eq!(self.take(2).await, b"\r\n");
        Some(payload)
    }

    /// Chunks until their payloads add up to `total` bytes.
    async fn chunks_totalling(&mut self, total: usize) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        let mut got = 0;
        while got < total {
            let chunk = self.next_chunk().await.expect("a chunk, not the end");
            got += chunk.len();
            chunks.push(chunk);
        }
        assert_eq!(got, total);
        chunks
    }

    /// Asserts that the server closes the connection (EOF) with nothing more to read.
    async fn assert_closed(&mut self) {
        assert!(!self.fill().await, "more bytes: {:?}", self.buf);
        assert!(self.buf.is_empty());
    }
}

/// Every fixture line, in file order.
fn fixture_lines() -> Vec<String> {
    [
        FIXTURE_2016,
        FIXTURE_2017,
        FIXTURE_2020,
        FIXTURE_TX_HEARTBEATS,
    ]
    .iter()
    .flat_map(|f| f.lines())
    .filter(|l| !l.is_empty())
    .map(str::to_owned)
    .collect()
}

fn joined(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

const ALL_CHUNKINGS: [Chunking; 7] = [
    Chunking::Lines,
    Chunking::Fixed(1),
    Chunking::Fixed(7),
    Chunking::Fixed(64),
    Chunking::Fixed(100_000),
    Chunking::Awkward,
    Chunking::Fixed(0),
];

fn price(instrument: &str, bid: &str, ask: &str) -> SimPrice {
    SimPrice {
        instrument: instrument.to_owned(),
        time: "2016-10-27T08:38:45.664613867Z".to_owned(),
        bids: vec![(bid.to_owned(), 10_000_000)],
        asks: vec![(ask.to_owned(), 10_000_000)],
        tradeable: true,
    }
}

#[tokio::test]
async fn fixture_lines_arrive_byte_exact_in_every_chunking() {
    let lines = fixture_lines();
    assert_eq!(lines.len(), 13);
    // A garbage line with multi-byte characters, so small cuts land inside them.
    let garbage = "{\"type\":\"PRICE\",\"note\":\"€ 漢字 ü\"".to_owned();
    let mut all = lines.clone();
    all.push(garbage.clone());
    let expected = joined(&all);
    for chunking in ALL_CHUNKINGS {
        let sim = sim().await;
        sim.set_chunking(chunking);
        let mut body = open(&sim, "instruments=EUR_USD,EUR_JPY").await;
        // Half one by one, half in one batch.
        for line in &lines[..6] {
            sim.send_line(line).await;
        }
        sim.send_lines(&lines[6..]).await;
        sim.send_line(&garbage).await;
        let got = body.read_bytes(expected.len()).await;
        assert!(
            got == expected,
            "{chunking:?}: got {:?}",
            String::from_utf8_lossy(&got)
        );
        body.assert_silent().await;
    }
}

#[tokio::test]
async fn chunk_framing_follows_the_chunking_mode() {
    let lines = fixture_lines();
    let expected = joined(&lines);

    // Lines: each line its own chunk.
    let sim = sim().await;
    let mut raw = RawStream::open(&sim, "instruments=EUR_USD,EUR_JPY").await;
    sim.send_lines(&lines).await;
    let chunks = raw.chunks_totalling(expected.len()).await;
    assert_eq!(chunks.len(), lines.len());
    for (chunk, line) in chunks.iter().zip(&lines) {
        assert_eq!(chunk, format!("{line}\n").as_bytes());
    }

    // Fixed(n): one batch is cut into n-byte chunks, the last one shorter.
    for n in [1, 5, 64, 333] {
        sim.set_chunking(Chunking::Fixed(n));
        sim.send_lines(&lines).await;
        let chunks = raw.chunks_totalling(expected.len()).await;
        assert_eq!(chunks.concat(), expected);
        let (last, full) = chunks.split_last().unwrap();
        assert!(full.iter().all(|c| c.len() == n), "n = {n}");
        assert!(!last.is_empty() && last.len() <= n);
        if n == 333 {
            assert!(
                full.iter()
                    .any(|c| c.iter().filter(|&&b| b == b'\n').count() >= 2),
                "several lines share a chunk"
            );
            assert!(full.iter().any(|c| !c.ends_with(b"\n")), "lines are split");
        }
    }

    // Awkward: the documented pattern, cuts right before and right after newlines.
    sim.set_chunking(Chunking::Awkward);
    sim.send_lines(&lines).await;
    let chunks = raw.chunks_totalling(expected.len()).await;
    assert_eq!(chunks.concat(), expected);
    let sizes: Vec<usize> = chunks.iter().map(Vec::len).take(4).collect();
    assert_eq!(sizes, [1, 7, 2, 61]);
    assert!(
        chunks
            .windows(2)
            .any(|w| w[0].ends_with(b"}") && w[1].starts_with(b"\n"))
    );
    assert!(chunks.iter().any(|c| c.ends_with(b"\n") && c.len() > 1));

    // The end of the body is the terminating chunk, then the server closes the connection.
    sim.drop_all();
    assert_eq!(raw.next_chunk().await, None);
    raw.assert_closed().await;
}

#[tokio::test]
async fn snapshot_on_connect_then_live_prices() {
    let sim = sim().await;
    sim.price(&price("EUR_USD", "1.09170", "1.09180")).await;
    sim.price(&price("EUR_USD", "1.09177", "1.09188")).await;
    sim.price(&price("USD_JPY", "150.101", "150.112")).await;
    sim.price(&price("GBP_USD", "1.25000", "1.25010")).await;

    let mut body = open(&sim, "instruments=USD_JPY%2CEUR_USD,AUD_USD").await;
    let first = body.next_json().await;
    assert_eq!(first["instrument"], "USD_JPY");
    assert_eq!(first["bids"][0]["price"], "150.101");
    let second = body.next_json().await;
    assert_eq!(second["instrument"], "EUR_USD");
    assert_eq!(
        second["bids"][0]["price"], "1.09177",
        "the latest price only"
    );
    body.assert_silent().await;

    sim.price(&price("EUR_USD", "1.09200", "1.09210")).await;
    let live = body.next_json().await;
    assert_eq!(live["bids"][0]["price"], "1.09200");
    assert_eq!(live["closeoutAsk"], "1.09210");
    assert_eq!(live["status"], "tradeable");
    assert_eq!(live["tradeable"], true);

    // snapshot=false: only live lines.
    let mut live_only = open(&sim, "instruments=EUR_USD,USD_JPY&snapshot=false").await;
    live_only.assert_silent().await;
    sim.price(&price("USD_JPY", "150.200", "150.210")).await;
    assert_eq!(live_only.next_json().await["bids"][0]["price"], "150.200");
    assert_eq!(body.next_json().await["bids"][0]["price"], "150.200");

    // snapshot=true spelled out, and a random-walk price round-trips through to_line.
    let walk = random_walk(
        "EUR_JPY",
        UnixNanos(1_477_557_523_094_548_890),
        1_000_000,
        3,
        42,
    );
    for p in &walk {
        sim.price(p).await;
    }
    let mut again = open(&sim, "instruments=EUR_JPY&snapshot=true").await;
    assert_eq!(again.next_line().await, walk[2].to_line());
}

#[tokio::test]
async fn streams_only_get_the_instruments_they_requested() {
    let sim = sim().await;
    let mut eur = open(&sim, "instruments=EUR_USD").await;
    let mut jpy = open(&sim, "instruments=USD_JPY,EUR_JPY").await;
    assert_eq!(sim.open_streams(), 2);
    assert_eq!(
        sim.open_instruments(),
        vec![
            vec!["EUR_USD".to_owned()],
            vec!["USD_JPY".to_owned(), "EUR_JPY".to_owned()]
        ]
    );

    sim.price(&price("USD_JPY", "150.101", "150.112")).await;
    sim.price(&price("EUR_USD", "1.09177", "1.09188")).await;
    // Raw lines: routed by their "instrument" field, broadcast without one.
    sim.send_line(r#"{"type":"PRICE","instrument":"EUR_JPY","x":1}"#)
        .await;
    sim.send_line(r#"{"type":"PRICE","instrument":"GBP_USD"}"#)
        .await;
    sim.send_line("garbage, not JSON").await;
    sim.send_lines(&[
        r#"{"instrument":"EUR_USD","n":1}"#.to_owned(),
        r#"{"type":"HEARTBEAT","time":"2016-10-27T08:38:44.327443673Z"}"#.to_owned(),
    ])
    .await;

    assert_eq!(eur.next_json().await["instrument"], "EUR_USD");
    assert_eq!(eur.next_line().await, "garbage, not JSON");
    assert_eq!(eur.next_line().await, r#"{"instrument":"EUR_USD","n":1}"#);
    assert_eq!(eur.next_json().await["type"], "HEARTBEAT");
    eur.assert_silent().await;

    assert_eq!(jpy.next_json().await["instrument"], "USD_JPY");
    assert_eq!(
        jpy.next_line().await,
        r#"{"type":"PRICE","instrument":"EUR_JPY","x":1}"#
    );
    assert_eq!(jpy.next_line().await, "garbage, not JSON");
    assert_eq!(jpy.next_json().await["type"], "HEARTBEAT");
    jpy.assert_silent().await;
}

#[tokio::test]
async fn authorization_is_checked_when_a_token_is_set() {
    let sim = sim().await;
    // No token set: anything goes.
    assert_eq!(get(&sim, "instruments=EUR_USD", None).await.status(), 200);
    assert_eq!(
        get(&sim, "instruments=EUR_USD", Some("whatever"))
            .await
            .status(),
        200
    );

    sim.set_token(Some("secret"));
    for token in [None, Some("wrong"), Some("secretx")] {
        let response = get(&sim, "instruments=EUR_USD", token).await;
        assert_eq!(response.status(), 401, "{token:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"errorMessage": "Insufficient authorization to perform request."})
        );
    }
    // The scheme must be exactly "Bearer".
    let response = client()
        .get(stream_url(&sim, "instruments=EUR_USD"))
        .header("Authorization", "bearer secret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let ok = get(&sim, "instruments=EUR_USD", Some("secret")).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(sim.connections_total(), 3);
    let auths: Vec<Option<String>> = sim
        .requests()
        .into_iter()
        .map(|r| r.authorization)
        .collect();
    assert_eq!(
        auths,
        [
            None,
            Some("Bearer whatever".to_owned()),
            None,
            Some("Bearer wrong".to_owned()),
            Some("Bearer secretx".to_owned()),
            Some("bearer secret".to_owned()),
            Some("Bearer secret".to_owned()),
        ]
    );

    sim.set_token(None);
    assert_eq!(get(&sim, "instruments=EUR_USD", None).await.status(), 200);
}

#[tokio::test]
async fn bad_instruments_get_400() {
    let sim = sim().await;
    sim.reject_instrument("XAU_XYZ");
    let expected = serde_json::json!({"errorMessage": "Invalid value specified for 'instruments'"});
    for query in [
        "instruments=EUR_USD,XAU_XYZ",
        "instruments=XAU_XYZ",
        "snapshot=true",
        "instruments=",
        "instruments=EUR_USD,,USD_JPY",
    ] {
        let response = get(&sim, query, None).await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(response.json::<Value>().await.unwrap(), expected, "{query}");
    }
    assert_eq!(sim.connections_total(), 0);
    assert_eq!(sim.requests().len(), 5);
    assert_eq!(get(&sim, "instruments=EUR_USD", None).await.status(), 200);

    // Other paths are not the pricing stream.
    let response = client()
        .get(format!("{}/v3/accounts/{ACCOUNT}/pricing", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(sim.requests().len(), 6);
}

#[tokio::test]
async fn fail_next_answers_before_the_auth_check() {
    let sim = sim().await;
    sim.set_token(Some("secret"));
    sim.fail_next(429, Some(7), 2);
    sim.fail_next(503, None, 1);

    for _ in 0..2 {
        // No token at all: the queued failure still comes first.
        let response = get(&sim, "instruments=EUR_USD", None).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        let body: Value = response.json().await.unwrap();
        assert!(body["errorMessage"].is_string(), "{body}");
    }
    let response = get(&sim, "instruments=EUR_USD", Some("secret")).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_none());
    let body: Value = response.json().await.unwrap();
    assert!(body["errorMessage"].is_string(), "{body}");

    assert_eq!(get(&sim, "instruments=EUR_USD", None).await.status(), 401);
    assert_eq!(
        get(&sim, "instruments=EUR_USD", Some("secret"))
            .await
            .status(),
        200
    );
    assert_eq!(sim.requests().len(), 5);
    assert_eq!(sim.connections_total(), 1);
}

#[tokio::test]
async fn requests_are_recorded_with_decoded_instruments() {
    let sim = sim().await;
    let response = client()
        .get(format!(
            "{}/v3/accounts/{ACCOUNT}/pricing/stream?instruments=EUR_USD%2CUSD_JPY&snapshot=false",
            sim.url()
        ))
        .header("Authorization", "Bearer abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let _second = open(&sim, "instruments=EUR_JPY&snapshot=FALSE").await;
    let _third = open(&sim, "snapshot=true&instruments=GBP_USD,EUR_USD").await;
    assert_eq!(
        sim.requests(),
        [
            StreamRequest {
                account: ACCOUNT.to_owned(),
                instruments: vec!["EUR_USD".to_owned(), "USD_JPY".to_owned()],
                authorization: Some("Bearer abc".to_owned()),
                snapshot: false,
            },
            StreamRequest {
                account: ACCOUNT.to_owned(),
                instruments: vec!["EUR_JPY".to_owned()],
                authorization: None,
                snapshot: false,
            },
            StreamRequest {
                account: ACCOUNT.to_owned(),
                instruments: vec!["GBP_USD".to_owned(), "EUR_USD".to_owned()],
                authorization: None,
                snapshot: true,
            },
        ]
    );
    assert_eq!(sim.connections_total(), 3);
    assert_eq!(sim.open_streams(), 3);
    assert_eq!(
        sim.open_instruments(),
        [
            vec!["EUR_USD".to_owned(), "USD_JPY".to_owned()],
            vec!["EUR_JPY".to_owned()],
            vec!["GBP_USD".to_owned(), "EUR_USD".to_owned()],
        ]
    );

    // A client going away closes its stream.
    drop(response);
    eventually("the dropped stream to close", || sim.open_streams() == 2).await;
}

#[tokio::test]
async fn stalled_streams_send_nothing_and_publishers_do_not_wait() {
    let sim = sim().await;
    sim.set_heartbeat_interval(Some(Duration::from_millis(20)));
    let mut body = open(&sim, "instruments=EUR_USD").await;
    assert_eq!(body.next_json().await["type"], "HEARTBEAT");

    sim.set_stalled(true);
    // Drain whatever was already on its way before the stall.
    while body.next_line_within(SILENCE).await.is_some() {}
    let published = tokio::time::timeout(DEADLINE, async {
        for _ in 0..(2 * venue_sim::oanda::QUEUE_CAPACITY) {
            sim.price(&price("EUR_USD", "1.00000", "1.00010")).await;
        }
        sim.send_line("discarded").await;
        sim.send_lines(&["discarded".to_owned()]).await;
    })
    .await;
    assert!(published.is_ok(), "publishing blocked while stalled");
    body.assert_silent().await;
    assert_eq!(sim.open_streams(), 1, "stalled streams stay open");

    // A stream opened while stalled gets its head, no snapshot and no heartbeats.
    let mut late = open(&sim, "instruments=EUR_USD").await;
    late.assert_silent().await;

    sim.set_heartbeat_interval(None);
    sim.set_stalled(false);
    sim.price(&price("EUR_USD", "1.11111", "1.11121")).await;
    assert_eq!(body.next_json().await["bids"][0]["price"], "1.11111");
    assert_eq!(late.next_json().await["bids"][0]["price"], "1.11111");
    body.assert_silent().await;
}

#[tokio::test]
async fn a_stall_releases_a_publisher_blocked_by_a_slow_client() {
    let sim = Arc::new(sim().await);
    // The client never reads: socket buffers and then the queue fill up.
    let response = get(&sim, "instruments=EUR_USD", None).await;
    assert_eq!(response.status(), 200);
    // Far more than the queue and the socket buffers hold.
    let walk = random_walk("EUR_USD", UnixNanos(0), 1, 100_000, 1);
    let publisher = tokio::spawn({
        let sim = Arc::clone(&sim);
        async move {
            for p in &walk {
                sim.price(p).await;
            }
        }
    });
    let publisher = async move { publisher.await.unwrap() };
    tokio::pin!(publisher);
    assert!(
        tokio::time::timeout(SILENCE, &mut publisher).await.is_err(),
        "the publisher should be held back by the full queue"
    );
    sim.set_stalled(true);
    tokio::time::timeout(DEADLINE, publisher)
        .await
        .expect("the stall releases the publisher");
    drop(response);
}

#[tokio::test]
async fn a_client_going_away_never_blocks_publishers() {
    let sim = sim().await;
    let response = get(&sim, "instruments=EUR_USD", None).await;
    assert_eq!(response.status(), 200);
    let walk = random_walk("EUR_USD", UnixNanos(0), 1, 20_000, 2);
    // Fill the socket buffers and part of the queue, then the client goes away.
    // (Fewer writes than the queue holds, so this cannot block even if the client read nothing.)
    for p in &walk[..2_000] {
        sim.price(p).await;
    }
    drop(response);
    tokio::time::timeout(DEADLINE, async {
        for p in &walk[2_000..] {
            sim.price(p).await;
        }
        let lines: Vec<String> = walk.iter().map(SimPrice::to_line).collect();
        sim.send_lines(&lines).await;
    })
    .await
    .expect("publishing to a departed client does not block");
    eventually("the stream to close", || sim.open_streams() == 0).await;
}

#[tokio::test]
async fn drop_all_ends_every_body() {
    let sim = sim().await;
    let mut a = open(&sim, "instruments=EUR_USD").await;
    let mut b = open(&sim, "instruments=USD_JPY").await;
    sim.send_line("hello").await;
    assert_eq!(a.next_line().await, "hello");
    assert_eq!(b.next_line().await, "hello");

    sim.drop_all();
    a.assert_ends().await;
    b.assert_ends().await;
    eventually("the streams to close", || sim.open_streams() == 0).await;
    assert!(sim.open_instruments().is_empty());

    // The server keeps serving: reconnecting works.
    let mut c = open(&sim, "instruments=EUR_USD").await;
    sim.send_line("again").await;
    assert_eq!(c.next_line().await, "again");
    assert_eq!(sim.connections_total(), 3);

    // Dropping the simulator ends the body too.
    drop(sim);
    c.assert_ends().await;
}

#[tokio::test]
async fn heartbeats_arrive_at_the_set_interval() {
    let sim = OandaSim::start().await.unwrap();
    sim.set_heartbeat_interval(Some(Duration::from_millis(100)));
    let mut body = open(&sim, "instruments=EUR_USD").await;
    let started = Instant::now();
    let mut times = Vec::new();
    for _ in 0..4 {
        let v = body.next_json().await;
        assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
        assert_eq!(v["type"], "HEARTBEAT");
        let time = v["time"].as_str().unwrap();
        assert_eq!(time.len(), "2016-10-27T08:38:44.327443673Z".len(), "{time}");
        let t = UnixNanos::parse_rfc3339(time).unwrap();
        let age = UnixNanos::now().0 - t.0;
        assert!(
            (0..2_000_000_000).contains(&age),
            "heartbeat time is now: {time}"
        );
        times.push(Instant::now());
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(3),
        "4 heartbeats at 100 ms took {elapsed:?}"
    );

    // Heartbeats interleave with prices and are independent of the instruments.
    sim.price(&price("EUR_USD", "1.00000", "1.00010")).await;
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        kinds.push(body.next_json().await["type"].as_str().unwrap().to_owned());
    }
    assert!(kinds.contains(&"PRICE".to_owned()));
    assert!(kinds.contains(&"HEARTBEAT".to_owned()));

    sim.set_heartbeat_interval(None);
    while body.next_line_within(SILENCE).await.is_some() {}
    body.assert_silent().await;

    // A new interval takes effect at once, not after the old one runs out.
    sim.set_heartbeat_interval(Some(Duration::from_secs(3600)));
    sim.set_heartbeat_interval(Some(Duration::from_millis(50)));
    let v = body.next_json().await;
    assert_eq!(v["type"], "HEARTBEAT");
}

#[tokio::test]
async fn the_default_heartbeat_interval_is_five_seconds() {
    let sim = OandaSim::start().await.unwrap();
    let mut body = open(&sim, "instruments=EUR_USD").await;
    let started = Instant::now();
    let line = body
        .next_line_within(Duration::from_secs(10))
        .await
        .expect("a heartbeat");
    let elapsed = started.elapsed();
    assert!(
        line.starts_with(r#"{"type":"HEARTBEAT","time":""#),
        "{line}"
    );
    assert!(
        elapsed >= Duration::from_millis(4_500) && elapsed < Duration::from_secs(7),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn bulk_lines_all_arrive_in_order() {
    let sim = sim().await;
    sim.set_chunking(Chunking::Fixed(1500));
    let mut eur = open(&sim, "instruments=EUR_USD").await;
    let mut both = open(&sim, "instruments=EUR_USD,USD_JPY").await;
    let eur_walk = random_walk("EUR_USD", UnixNanos(0), 1_000, 5_000, 3);
    let jpy_walk = random_walk("USD_JPY", UnixNanos(0), 1_000, 5_000, 3);
    let lines: Vec<String> = eur_walk
        .iter()
        .zip(&jpy_walk)
        .flat_map(|(a, b)| [a.to_line(), b.to_line()])
        .collect();
    let eur_lines: Vec<String> = eur_walk.iter().map(SimPrice::to_line).collect();

    let reader = tokio::spawn(async move {
        let eur_bytes = eur.read_bytes(joined(&eur_lines).len()).await;
        assert!(eur_bytes == joined(&eur_lines));
        eur
    });
    let expected = joined(&lines);
    let both_reader = tokio::spawn(async move {
        let got = both.read_bytes(expected.len()).await;
        assert!(got == expected);
        both
    });
    tokio::time::timeout(Duration::from_secs(30), sim.send_lines(&lines))
        .await
        .unwrap();
    let _eur = reader.await.unwrap();
    let _both = both_reader.await.unwrap();
}
