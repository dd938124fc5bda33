//! Behaviour of the Kraken v2 simulator, observed through a real tokio-tungstenite client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use venue_sim::kraken::{KrakenSim, SimTicker, SimTrade};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Upper bound for anything that is expected to happen.
const DEADLINE: Duration = Duration::from_secs(5);
/// How long we watch to prove that something does not happen.
const SILENCE: Duration = Duration::from_millis(300);

/// A simulator whose heartbeats stay out of the way unless a test turns them on.
async fn sim() -> KrakenSim {
    let sim = KrakenSim::start().await.unwrap();
    sim.set_heartbeat_interval(Duration::from_secs(3600));
    sim
}

async fn connect(sim: &KrakenSim) -> Client {
    connect_async(sim.url()).await.unwrap().0
}

/// Connects and consumes the status frame.
async fn connect_ready(sim: &KrakenSim) -> Client {
    let mut ws = connect(sim).await;
    let status = next_json(&mut ws).await;
    assert_eq!(status["channel"], "status");
    ws
}

/// The next message that is not a WebSocket Ping/Pong, or `None` if nothing came within `within`.
async fn next_message_within(ws: &mut Client, within: Duration) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(Some(Ok(msg))) => return Some(msg),
            Ok(Some(Err(e))) => panic!("connection failed: {e}"),
            Ok(None) => panic!("connection ended"),
        }
    }
}

async fn next_text_within(ws: &mut Client, within: Duration) -> Option<String> {
    match next_message_within(ws, within).await? {
        Message::Text(t) => Some(t.as_str().to_owned()),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

async fn next_text(ws: &mut Client) -> String {
    next_text_within(ws, DEADLINE)
        .await
        .expect("a frame before the deadline")
}

async fn next_json(ws: &mut Client) -> Value {
    serde_json::from_str(&next_text(ws).await).unwrap()
}

/// The next frame that is not a heartbeat.
async fn next_json_skip_heartbeats(ws: &mut Client) -> Value {
    loop {
        let v = next_json(ws).await;
        if v != json!({"channel": "heartbeat"}) {
            return v;
        }
    }
}

async fn assert_silent(ws: &mut Client) {
    if let Some(msg) = next_message_within(ws, SILENCE).await {
        panic!("expected silence, got {msg:?}");
    }
}

async fn send(ws: &mut Client, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Drops the volatile `time_in` / `time_out` after checking their format.
fn strip_times(mut v: Value) -> Value {
    let obj = v.as_object_mut().unwrap();
    for key in ["time_in", "time_out"] {
        let t = obj.remove(key).unwrap_or_else(|| panic!("{key} missing"));
        assert_rfc3339_micros(t.as_str().unwrap());
    }
    v
}

fn assert_rfc3339_micros(t: &str) {
    let b = t.as_bytes();
    assert_eq!(b.len(), 27, "{t}");
    assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    assert_eq!(
        (b[4], b[7], b[10], b[13], b[16], b[19]),
        (b'-', b'-', b'T', b':', b':', b'.'),
        "{t}"
    );
}

fn trade(symbol: &str, trade_id: u64, price: &str) -> SimTrade {
    SimTrade {
        symbol: symbol.into(),
        side: "buy".into(),
        price: price.into(),
        qty: "0.00100000".into(),
        ord_type: "limit".into(),
        trade_id,
        timestamp: "2023-09-25T07:48:36.925533Z".into(),
    }
}

fn ticker(symbol: &str, bid: &str) -> SimTicker {
    SimTicker {
        symbol: symbol.into(),
        bid: bid.into(),
        bid_qty: "740.0".into(),
        ask: "0.10036".into(),
        ask_qty: "1361.44813783".into(),
        last: "0.10035".into(),
        volume: "997038.98383185".into(),
        vwap: "0.10148".into(),
        low: "0.09979".into(),
        high: "0.10285".into(),
        change: "-0.00017".into(),
        change_pct: "-0.17".into(),
        timestamp: Some("2023-09-25T09:04:31.742648Z".into()),
    }
}

/// Subscribes and checks that every symbol got a success ack.
async fn subscribe_ok(ws: &mut Client, channel: &str, symbols: &[&str], req_id: u64) {
    let params = json!({"channel": channel, "symbol": symbols});
    subscribe_with(ws, params, req_id).await;
    for _ in symbols {
        let ack = next_json(ws).await;
        assert_eq!(ack["success"], true, "{ack}");
        assert_eq!(ack["req_id"], req_id, "{ack}");
    }
}

async fn subscribe_with(ws: &mut Client, params: Value, req_id: u64) {
    send(
        ws,
        json!({"method": "subscribe", "params": params, "req_id": req_id}),
    )
    .await;
}

fn trade_ids(frame: &Value) -> Vec<u64> {
    frame["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trade_id"].as_u64().unwrap())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn status_frame_comes_first_on_any_path() {
    let sim = sim().await;
    assert!(sim.url().starts_with("ws://127.0.0.1:") && sim.url().ends_with("/v2"));
    assert_eq!(sim.local_addr().ip().to_string(), "127.0.0.1");

    let mut ws = connect(&sim).await;
    let text = next_text(&mut ws).await;
    assert!(text.starts_with(
        r#"{"channel":"status","type":"update","data":[{"api_version":"v2","connection_id":"#
    ));
    let status: Value = serde_json::from_str(&text).unwrap();
    let data = &status["data"][0];
    assert!(data["connection_id"].as_u64().unwrap() > 1 << 53);
    assert_eq!(
        (data["system"].as_str(), data["version"].as_str()),
        (Some("online"), Some("2.0.0"))
    );

    let other_path = format!("ws://{}/whatever", sim.local_addr());
    let (mut ws2, _) = connect_async(other_path).await.unwrap();
    let status2 = next_json(&mut ws2).await;
    assert_eq!(status2["channel"], "status");
    assert_ne!(status2["data"][0]["connection_id"], data["connection_id"]);
    assert_eq!(sim.connections_total(), 2);
    assert_eq!(sim.open_connections(), 2);
}

#[tokio::test]
async fn subscribe_acks_each_symbol_and_echoes_req_id() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    subscribe_with(
        &mut ws,
        json!({"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"]}),
        42,
    )
    .await;
    for symbol in ["BTC/USD", "ETH/USD"] {
        let ack = strip_times(next_json(&mut ws).await);
        assert_eq!(
            ack,
            json!({"method": "subscribe", "req_id": 42,
                   "result": {"channel": "trade", "snapshot": false, "symbol": symbol}, "success": true})
        );
    }
    // No req_id in the request: none in the ack. Ticker echoes event_trigger; snapshot defaults to true.
    send(&mut ws, json!({"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"], "event_trigger": "bbo"}})).await;
    let text = next_text(&mut ws).await;
    assert!(text.starts_with(r#"{"method":"subscribe","result":{"channel":"ticker","event_trigger":"bbo","snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":""#), "{text}");
    strip_times(serde_json::from_str(&text).unwrap());

    assert_eq!(sim.subscribed("trade"), set(&["BTC/USD", "ETH/USD"]));
    assert_eq!(sim.subscribed("ticker"), set(&["BTC/USD"]));
    assert!(sim.subscribed("book").is_empty());

    // A second subscribe to the same symbol on the same connection is refused, as Kraken does.
    subscribe_with(
        &mut ws,
        json!({"channel": "trade", "symbol": ["BTC/USD"]}),
        43,
    )
    .await;
    let again = next_json(&mut ws).await;
    assert_eq!(
        (again["success"].as_bool(), again["error"].as_str()),
        (Some(false), Some("Already subscribed"))
    );
}

#[tokio::test]
async fn rejected_symbol_gets_kraken_error_and_no_subscription() {
    let sim = sim().await;
    sim.reject_symbol("XBT/USD");
    let mut ws = connect_ready(&sim).await;
    subscribe_with(
        &mut ws,
        json!({"channel": "trade", "symbol": ["XBT/USD", "BTC/USD"]}),
        7,
    )
    .await;
    let text = next_text(&mut ws).await;
    assert!(
        text.starts_with(r#"{"error":"Currency pair not supported XBT/USD","method":"subscribe","req_id":7,"success":false,"symbol":"XBT/USD","time_in":""#),
        "{text}"
    );
    strip_times(serde_json::from_str(&text).unwrap());
    let ok = next_json(&mut ws).await;
    assert_eq!(
        (ok["success"].as_bool(), ok["result"]["symbol"].as_str()),
        (Some(true), Some("BTC/USD"))
    );
    assert_eq!(sim.subscribed("trade"), set(&["BTC/USD"]));
}

#[tokio::test]
async fn unsupported_channel_and_garbage_requests_get_errors() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    subscribe_with(
        &mut ws,
        json!({"channel": "book", "symbol": ["BTC/USD"]}),
        5,
    )
    .await;
    let reply = strip_times(next_json(&mut ws).await);
    assert_eq!(
        reply,
        json!({"error": "Channel not supported", "method": "subscribe", "req_id": 5, "success": false})
    );

    ws.send(Message::text("this is not json")).await.unwrap();
    let reply = strip_times(next_json(&mut ws).await);
    assert_eq!(
        reply,
        json!({"error": "EGeneral:Invalid arguments", "success": false})
    );

    send(&mut ws, json!({"method": "subscribe", "req_id": 6})).await;
    let reply = strip_times(next_json(&mut ws).await);
    assert_eq!(
        reply,
        json!({"error": "EGeneral:Invalid arguments", "method": "subscribe", "req_id": 6, "success": false})
    );
}

#[tokio::test]
async fn trade_snapshot_has_last_50_ascending_with_lexemes_verbatim() {
    let sim = sim().await;
    // 1..=55 in order, then 60, 59, .., 56: the last 50 arrivals are ids 11..=60, sent sorted.
    for id in (1..=55).chain((56..=60).rev()) {
        let price = if id == 60 {
            "354.11000000"
        } else {
            "354.10000000"
        };
        sim.trades(&[trade("BTC/USD", id, price)]).await;
    }
    sim.trades(&[trade("ETH/USD", 1000, "1.5")]).await;

    let mut ws = connect_ready(&sim).await;
    subscribe_with(
        &mut ws,
        json!({"channel": "trade", "symbol": ["BTC/USD"], "snapshot": true}),
        1,
    )
    .await;
    let ack = next_json(&mut ws).await;
    assert_eq!(
        ack["result"],
        json!({"channel": "trade", "snapshot": true, "symbol": "BTC/USD"})
    );
    let text = next_text(&mut ws).await;
    assert!(text.starts_with(r#"{"channel":"trade","type":"snapshot","data":[{"symbol":"BTC/USD","side":"buy","price":354.10000000,"qty":0.00100000,"ord_type":"limit","trade_id":11,"timestamp":"2023-09-25T07:48:36.925533Z"},"#), "{text}");
    assert!(text.contains(r#""price":354.11000000"#));
    assert!(
        text.ends_with(r#""trade_id":60,"timestamp":"2023-09-25T07:48:36.925533Z"}]}"#),
        "{text}"
    );
    let snapshot: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(trade_ids(&snapshot), (11..=60).collect::<Vec<_>>());

    // Updates follow the snapshot, in the same shape.
    sim.trades(&[trade("BTC/USD", 61, "354.12000000")]).await;
    let text = next_text(&mut ws).await;
    assert_eq!(
        text,
        r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":354.12000000,"qty":0.00100000,"ord_type":"limit","trade_id":61,"timestamp":"2023-09-25T07:48:36.925533Z"}]}"#
    );
}

#[tokio::test]
async fn trade_snapshot_is_opt_in_and_may_be_empty() {
    let sim = sim().await;
    sim.trades(&[trade("BTC/USD", 1, "10.0")]).await;
    let mut ws = connect_ready(&sim).await;

    // Default snapshot:false: the frame after the ack is the next update, not a snapshot.
    subscribe_ok(&mut ws, "trade", &["BTC/USD"], 1).await;
    sim.trades(&[trade("BTC/USD", 2, "10.0")]).await;
    let update = next_json(&mut ws).await;
    assert_eq!(
        (update["type"].as_str(), trade_ids(&update)),
        (Some("update"), vec![2])
    );

    // snapshot:true for a symbol without history: an empty snapshot.
    subscribe_with(
        &mut ws,
        json!({"channel": "trade", "symbol": ["SOL/USD"], "snapshot": true}),
        2,
    )
    .await;
    assert_eq!(next_json(&mut ws).await["success"], true);
    assert_eq!(
        next_text(&mut ws).await,
        r#"{"channel":"trade","type":"snapshot","data":[]}"#
    );
}

#[tokio::test]
async fn ticker_snapshot_on_subscribe_and_updates() {
    let sim = sim().await;
    sim.ticker(ticker("ALGO/USD", "0.10025")).await;
    let mut ws = connect_ready(&sim).await;
    subscribe_ok(&mut ws, "ticker", &["ALGO/USD"], 3).await;
    assert_eq!(
        next_text(&mut ws).await,
        r#"{"channel":"ticker","type":"snapshot","data":[{"symbol":"ALGO/USD","bid":0.10025,"bid_qty":740.0,"ask":0.10036,"ask_qty":1361.44813783,"last":0.10035,"volume":997038.98383185,"vwap":0.10148,"low":0.09979,"high":0.10285,"change":-0.00017,"change_pct":-0.17,"timestamp":"2023-09-25T09:04:31.742648Z"}]}"#
    );

    let mut no_ts = ticker("ALGO/USD", "0.10026");
    no_ts.timestamp = None;
    sim.ticker(no_ts).await;
    let text = next_text(&mut ws).await;
    assert!(
        text.starts_with(
            r#"{"channel":"ticker","type":"update","data":[{"symbol":"ALGO/USD","bid":0.10026,"#
        ),
        "{text}"
    );
    assert!(text.ends_with(r#""change_pct":-0.17}]}"#), "{text}");

    // snapshot:false suppresses it; no ticker yet for a symbol means no snapshot either.
    let mut ws2 = connect_ready(&sim).await;
    subscribe_with(
        &mut ws2,
        json!({"channel": "ticker", "symbol": ["ALGO/USD"], "snapshot": false}),
        4,
    )
    .await;
    assert_eq!(next_json(&mut ws2).await["result"]["snapshot"], false);
    subscribe_ok(&mut ws2, "ticker", &["DOGE/USD"], 5).await;
    sim.ticker(ticker("ALGO/USD", "0.10027")).await;
    let update = next_json(&mut ws2).await;
    assert_eq!(update["type"], "update");
    assert_eq!(update["data"][0]["bid"].to_string(), "0.10027");
}

#[tokio::test]
async fn data_reaches_only_subscribed_connections() {
    let sim = sim().await;
    let mut btc = connect_ready(&sim).await;
    let mut eth = connect_ready(&sim).await;
    let mut none = connect_ready(&sim).await;
    subscribe_ok(&mut btc, "trade", &["BTC/USD"], 1).await;
    subscribe_ok(&mut eth, "trade", &["ETH/USD"], 1).await;
    subscribe_ok(&mut eth, "ticker", &["BTC/USD"], 2).await;

    sim.trades(&[trade("BTC/USD", 1, "1")]).await;
    sim.trades(&[trade("ETH/USD", 2, "2")]).await;
    sim.ticker(ticker("BTC/USD", "3")).await;

    assert_eq!(trade_ids(&next_json(&mut btc).await), vec![1]);
    // Had the BTC trade reached `eth`, it would come before the ETH one.
    let first = next_json(&mut eth).await;
    assert_eq!(
        (first["data"][0]["symbol"].as_str(), trade_ids(&first)),
        (Some("ETH/USD"), vec![2])
    );
    assert_eq!(next_json(&mut eth).await["channel"], "ticker");
    assert_silent(&mut btc).await;
    assert_silent(&mut none).await;
}

#[tokio::test]
async fn trades_of_several_symbols_are_split_per_symbol() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    subscribe_ok(&mut ws, "trade", &["BTC/USD", "ETH/USD"], 1).await;
    sim.trades(&[
        trade("BTC/USD", 1, "1"),
        trade("ETH/USD", 7, "2"),
        trade("BTC/USD", 2, "3"),
    ])
    .await;
    let a = next_json(&mut ws).await;
    let b = next_json(&mut ws).await;
    assert_eq!(
        (a["data"][0]["symbol"].as_str(), trade_ids(&a)),
        (Some("BTC/USD"), vec![1, 2])
    );
    assert_eq!(
        (b["data"][0]["symbol"].as_str(), trade_ids(&b)),
        (Some("ETH/USD"), vec![7])
    );
}

#[tokio::test]
async fn unsubscribe_acks_and_reports_subscription_not_found() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    subscribe_ok(&mut ws, "trade", &["BTC/USD"], 1).await;
    send(&mut ws, json!({"method": "unsubscribe", "params": {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"]}, "req_id": 9})).await;
    assert_eq!(
        strip_times(next_json(&mut ws).await),
        json!({"method": "unsubscribe", "req_id": 9, "result": {"channel": "trade", "symbol": "BTC/USD"}, "success": true})
    );
    assert_eq!(
        strip_times(next_json(&mut ws).await),
        json!({"error": "Subscription Not Found", "method": "subscribe", "req_id": 9, "success": false, "symbol": "ETH/USD"})
    );
    assert!(sim.subscribed("trade").is_empty());
    sim.trades(&[trade("BTC/USD", 1, "1")]).await;
    assert_silent(&mut ws).await;
}

#[tokio::test]
async fn ping_gets_pong_and_websocket_pings_are_answered() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    send(&mut ws, json!({"method": "ping", "req_id": 101})).await;
    assert_eq!(
        strip_times(next_json(&mut ws).await),
        json!({"method": "pong", "req_id": 101})
    );
    send(&mut ws, json!({"method": "ping"})).await;
    assert_eq!(
        strip_times(next_json(&mut ws).await),
        json!({"method": "pong"})
    );

    ws.send(Message::Ping(b"hello".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(DEADLINE, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(b"hello".to_vec().into()));
}

#[tokio::test]
async fn heartbeats_only_after_a_subscription() {
    let sim = sim().await;
    sim.set_heartbeat_interval(Duration::from_millis(20));
    let mut ws = connect_ready(&sim).await;
    assert_silent(&mut ws).await;
    subscribe_ok(&mut ws, "trade", &["BTC/USD"], 1).await;
    for _ in 0..3 {
        assert_eq!(next_text(&mut ws).await, r#"{"channel":"heartbeat"}"#);
    }
}

#[tokio::test]
async fn drop_all_closes_connections_without_close_frame() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    subscribe_ok(&mut ws, "trade", &["BTC/USD"], 1).await;
    assert_eq!(sim.open_connections(), 1);
    sim.drop_all();

    let end = tokio::time::timeout(DEADLINE, ws.next()).await.unwrap();
    assert!(
        matches!(end, None | Some(Err(_))),
        "expected an abrupt end, got {end:?}"
    );
    wait_until("the connection is cleaned up", || {
        sim.open_connections() == 0
    })
    .await;
    assert!(sim.subscribed("trade").is_empty());

    let _ws = connect_ready(&sim).await;
    assert_eq!((sim.connections_total(), sim.open_connections()), (2, 1));
}

#[tokio::test]
async fn client_disconnect_is_cleaned_up() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    subscribe_ok(&mut ws, "ticker", &["BTC/USD"], 1).await;
    ws.close(None).await.unwrap();
    drop(ws);
    wait_until("the connection is cleaned up", || {
        sim.open_connections() == 0
    })
    .await;
    assert!(sim.subscribed("ticker").is_empty());
    // Publishing to nobody neither blocks nor fails.
    sim.ticker(ticker("BTC/USD", "1")).await;
}

#[tokio::test]
async fn stalled_sends_nothing_then_resumes() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    subscribe_ok(&mut ws, "trade", &["BTC/USD"], 1).await;

    sim.set_stalled(true);
    sim.set_heartbeat_interval(Duration::from_millis(20));
    sim.trades(&[trade("BTC/USD", 1, "1")]).await;
    send(&mut ws, json!({"method": "ping", "req_id": 77})).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    // Requests are still read while stalled; their replies are discarded.
    wait_until("the ping is recorded", || {
        sim.requests().iter().any(|r| r["req_id"] == 77)
    })
    .await;
    let silent = tokio::time::timeout(SILENCE, ws.next()).await;
    assert!(
        silent.is_err(),
        "expected nothing at all while stalled, got {silent:?}"
    );
    assert_eq!(sim.open_connections(), 1);

    sim.set_stalled(false);
    sim.trades(&[trade("BTC/USD", 2, "2")]).await;
    // Heartbeats resume; the trade and the pong produced during the stall are gone.
    let update = next_json_skip_heartbeats(&mut ws).await;
    assert_eq!(trade_ids(&update), vec![2]);
}

#[tokio::test]
async fn connection_accepted_while_stalled_gets_status_when_it_ends() {
    let sim = sim().await;
    sim.set_stalled(true);
    let mut ws = connect(&sim).await;
    assert_eq!(sim.connections_total(), 1);
    assert_silent(&mut ws).await;
    sim.set_stalled(false);
    assert_eq!(next_json(&mut ws).await["channel"], "status");
}

#[tokio::test]
async fn data_paused_discards_market_data_only() {
    let sim = sim().await;
    sim.ticker(ticker("BTC/USD", "1")).await;
    let mut ws = connect_ready(&sim).await;
    sim.set_data_paused(true);
    // The ack flows, the ticker snapshot does not.
    subscribe_ok(&mut ws, "ticker", &["BTC/USD"], 1).await;
    subscribe_ok(&mut ws, "trade", &["BTC/USD"], 2).await;
    sim.trades(&[trade("BTC/USD", 1, "1")]).await;
    sim.ticker(ticker("BTC/USD", "2")).await;
    send(&mut ws, json!({"method": "ping", "req_id": 3})).await;
    assert_eq!(next_json(&mut ws).await["method"], "pong");
    sim.set_heartbeat_interval(Duration::from_millis(20));
    assert_eq!(next_text(&mut ws).await, r#"{"channel":"heartbeat"}"#);

    sim.set_data_paused(false);
    sim.trades(&[trade("BTC/USD", 2, "1")]).await;
    assert_eq!(
        trade_ids(&next_json_skip_heartbeats(&mut ws).await),
        vec![2]
    );
}

#[tokio::test]
async fn acks_disabled_swallows_subscriptions() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    sim.set_acks(false);
    subscribe_with(
        &mut ws,
        json!({"channel": "trade", "symbol": ["BTC/USD"]}),
        1,
    )
    .await;
    wait_until("the subscribe is recorded", || sim.requests().len() == 1).await;
    assert_silent(&mut ws).await;
    assert!(sim.subscribed("trade").is_empty());
    // Pings are still answered.
    send(&mut ws, json!({"method": "ping", "req_id": 2})).await;
    assert_eq!(next_json(&mut ws).await["method"], "pong");

    sim.set_acks(true);
    subscribe_ok(&mut ws, "trade", &["BTC/USD"], 3).await;
    assert_eq!(sim.subscribed("trade"), set(&["BTC/USD"]));
}

#[tokio::test]
async fn requests_are_logged_in_arrival_order_across_connections() {
    let sim = sim().await;
    let mut a = connect_ready(&sim).await;
    let mut b = connect_ready(&sim).await;
    let ping1 = json!({"method": "ping", "req_id": 1});
    let sub = json!({"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}, "req_id": 2});
    let ping3 = json!({"method": "ping", "req_id": 3});
    send(&mut a, ping1.clone()).await;
    next_json(&mut a).await;
    send(&mut b, sub.clone()).await;
    next_json(&mut b).await;
    send(&mut a, ping3.clone()).await;
    next_json(&mut a).await;
    b.send(Message::text("not json")).await.unwrap();
    next_json(&mut b).await;
    assert_eq!(sim.requests(), vec![ping1, sub, ping3]);
}

#[tokio::test]
async fn raw_frames_are_sent_verbatim() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    sim.send_raw(r#"{"channel":"trade","data":[{"price":1e999"#)
        .await;
    assert_eq!(
        next_text(&mut ws).await,
        r#"{"channel":"trade","data":[{"price":1e999"#
    );
    sim.send_raw_binary(vec![0, 159, 146, 150]).await;
    let msg = next_message_within(&mut ws, DEADLINE).await.unwrap();
    assert_eq!(msg, Message::Binary(vec![0, 159, 146, 150].into()));
}

#[tokio::test]
async fn frame_delay_slows_the_sender() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    subscribe_ok(&mut ws, "trade", &["BTC/USD"], 1).await;
    sim.set_frame_delay(Duration::from_millis(40));
    let start = Instant::now();
    for id in 1..=3 {
        sim.trades(&[trade("BTC/USD", id, "1")]).await;
    }
    for id in 1..=3 {
        assert_eq!(trade_ids(&next_json(&mut ws).await), vec![id]);
    }
    assert!(
        start.elapsed() >= Duration::from_millis(120),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn dropping_the_sim_closes_its_connections() {
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    drop(sim);
    let end = tokio::time::timeout(DEADLINE, ws.next()).await.unwrap();
    assert!(
        matches!(end, None | Some(Err(_))),
        "expected the connection to end, got {end:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_frames_arrive_in_order_with_backpressure() {
    const N: u64 = 100_000;
    let sim = sim().await;
    let mut ws = connect_ready(&sim).await;
    subscribe_ok(&mut ws, "trade", &["BTC/USD"], 1).await;
    let reader = tokio::spawn(async move {
        let mut next = 1;
        while next <= N {
            let frame = next_json(&mut ws).await;
            for id in trade_ids(&frame) {
                assert_eq!(id, next);
                next += 1;
            }
        }
    });
    // More frames than the queue holds: the producer must wait for the reader, not drop.
    for id in 1..=N {
        sim.trades(&[trade("BTC/USD", id, "1")]).await;
    }
    tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .unwrap()
        .unwrap();
}
