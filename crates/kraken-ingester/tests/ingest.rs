//! The ingester against the fake Kraken of `venue-sim` and the real Pulsar: every field of every
//! tick, reconnects with their gaps, refused symbols, live symbol changes, garbage.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test code: a failed setup should stop the run loudly"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use tickflow_pulsar::InitialPosition;
use tickflow_schema::{Decimal, GapReason, Side, Source, Symbol, Tick, TickKind, UnixNanos};
use venue_sim::kraken::KrakenSim;

const WAIT: Duration = Duration::from_secs(30);

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

async fn subscribed(sim: &KrakenSim, symbols: &[&Symbol]) {
    eventually(WAIT, "subscribed on both channels", || async {
        let (t, q) = (sim.subscribed("trade"), sim.subscribed("ticker"));
        symbols
            .iter()
            .all(|s| t.contains(s.as_str()) && q.contains(s.as_str()))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_trades_and_tickers_arrive_exactly() {
    let sim = KrakenSim::start().await.unwrap();
    let sent_trades = captured_trades();
    let tickers = captured_tickers();
    assert_eq!(sent_trades.len(), 10, "the capture has 10 trade rows");
    assert_eq!(tickers.len(), 18, "the capture has 18 tickers");
    let symbols: BTreeSet<Symbol> = sent_trades
        .iter()
        .map(|t| &t.symbol)
        .chain(tickers.iter().map(|t| &t.symbol))
        .chain([&"MATIC/USD".to_owned(), &"ALGO/USD".to_owned()])
        .map(|s| Symbol::parse(s).unwrap())
        .collect();
    assert!(
        symbols.iter().any(|s| s.as_str() == "KSM/BTC"),
        "XBT became BTC"
    );
    let refs: Vec<&Symbol> = symbols.iter().collect();
    // These symbols are real, so earlier runs may have left ticks on their topics: read only
    // what is published from now on.
    let mut reader = reader(&refs, InitialPosition::Latest).await;
    let started = UnixNanos::now();
    let mut cfg = config(&sim, &refs);
    cfg.kraken.trade_id_gaps = false; // the capture's pairs get ids 1.. here
    let ingester = start(cfg).await;
    subscribed(&sim, &refs).await;
    eventually(WAIT, "ready", || ingester.ready()).await;

    for t in &sent_trades {
        sim.trades(std::slice::from_ref(t)).await;
    }
    for t in &tickers {
        sim.ticker(t.clone()).await;
    }
    // Kraken's own documentation examples, verbatim v2 frames.
    let docs = std::fs::read_to_string(fixture("v2/docs_examples.ndjson")).unwrap();
    let docs: Vec<&str> = docs.lines().collect();
    sim.send_raw(docs[3]).await; // trade snapshot MATIC/USD, 2 trades
    sim.send_raw(docs[4]).await; // ticker snapshot ALGO/USD
    sim.send_raw(docs[5]).await; // heartbeat: control, not data

    let expected_trades = sent_trades.len() + 2;
    let expected_quotes = tickers.len() + 1;
    reader
        .until(WAIT, |t| {
            trades_of(t).len() >= expected_trades && quotes_of(t).len() >= expected_quotes
        })
        .await;
    let ticks = reader.settle(Duration::from_millis(1500)).await.to_vec();
    let now = UnixNanos::now();
    assert!(gaps(&ticks).is_empty(), "no gap: {:?}", gaps(&ticks));

    // Trades: every field, in order per symbol, nothing missing, nothing extra.
    let got = trades(&ticks);
    assert_eq!(got.len(), expected_trades, "exactly the trades sent");
    let mut by_key: BTreeMap<(String, String), &tickflow_schema::Trade> = BTreeMap::new();
    for t in &got {
        assert!(
            by_key
                .insert((t.symbol.to_string(), t.trade_id.to_string()), t)
                .is_none(),
            "duplicate trade {t:?}"
        );
        assert_eq!(t.source, Source::Kraken);
        assert!(t.received_at >= started && t.received_at <= now);
    }
    for s in &sent_trades {
        let t = by_key[&(s.symbol.clone(), s.trade_id.to_string())];
        assert_eq!(t.venue_symbol, s.symbol.as_str());
        assert_eq!(t.price, dec(&s.price));
        assert_eq!(
            t.price.to_string(),
            s.price,
            "lexeme kept, trailing zeros too"
        );
        assert_eq!(t.size.to_string(), s.qty);
        assert_eq!(
            t.side,
            if s.side == "buy" {
                Side::Buy
            } else {
                Side::Sell
            }
        );
        assert_eq!(
            t.event_time,
            UnixNanos::parse_rfc3339(&s.timestamp).unwrap()
        );
    }
    // The XMR/USD row quoted in PROVENANCE.md, by value.
    let xmr = by_key[&("XMR/USD".to_owned(), "1".to_owned())];
    assert_eq!(xmr.price.to_string(), "354.11000000");
    assert_eq!(xmr.size.to_string(), "0.89594024");
    assert_eq!(xmr.side, Side::Sell);
    assert_eq!(xmr.event_time, UnixNanos(1_618_678_142_557_535_000));
    // The documentation's MATIC/USD snapshot.
    let matic = by_key[&("MATIC/USD".to_owned(), "4665847".to_owned())];
    assert_eq!(matic.price.to_string(), "0.5147");
    assert_eq!(matic.size.to_string(), "1136.19677815");
    assert_eq!(matic.side, Side::Buy);
    assert_eq!(
        matic.event_time,
        UnixNanos::parse_rfc3339("2023-09-25T07:49:36.925603Z").unwrap()
    );
    assert!(by_key.contains_key(&("MATIC/USD".to_owned(), "4665846".to_owned())));

    // Quotes: every field.
    let got = quotes(&ticks);
    assert_eq!(got.len(), expected_quotes, "exactly the tickers sent");
    for (q, s) in got
        .iter()
        .filter(|q| q.symbol.as_str() != "ALGO/USD")
        .zip(ordered_by_symbol(&tickers, &got))
    {
        assert_eq!(q.symbol.as_str(), s.symbol);
        assert_eq!(q.bid.to_string(), s.bid);
        assert_eq!(q.ask.to_string(), s.ask);
        assert_eq!(q.bid_size.to_string(), s.bid_qty);
        assert_eq!(q.ask_size.to_string(), s.ask_qty);
        assert_eq!(
            q.event_time,
            UnixNanos::parse_rfc3339(s.timestamp.as_deref().unwrap()).unwrap()
        );
        assert!(!q.indicative);
    }
    let algo = got
        .iter()
        .find(|q| q.symbol.as_str() == "ALGO/USD")
        .unwrap();
    assert_eq!((algo.bid, algo.ask), (dec("0.10025"), dec("0.10036")));
    assert_eq!(algo.bid_size.to_string(), "740.0");
    assert_eq!(algo.ask_size.to_string(), "1361.44813783");
    assert_eq!(
        algo.event_time,
        UnixNanos::parse_rfc3339("2023-09-25T09:04:31.742648Z").unwrap()
    );

    assert_eq!(
        ingester
            .metric("kraken_ingester_malformed_frames_total")
            .await,
        0.0
    );
    assert!(
        ingester
            .metric("kraken_ingester_frames_received_total{class=\"control\"}")
            .await
            >= 1.0
    );
    assert_eq!(
        ingester
            .metric("kraken_ingester_ticks_published_total{kind=\"trade\"}")
            .await,
        expected_trades as f64
    );
    ingester.stop().await;
}

fn trades_of(t: &[Tick]) -> Vec<&tickflow_schema::Trade> {
    trades(t)
}

fn quotes_of(t: &[Tick]) -> Vec<&tickflow_schema::Quote> {
    quotes(t)
}

/// The sent tickers in the order the quotes were read: per symbol, send order is kept.
fn ordered_by_symbol<'a>(
    sent: &'a [venue_sim::kraken::SimTicker],
    got: &[&tickflow_schema::Quote],
) -> Vec<&'a venue_sim::kraken::SimTicker> {
    let mut per_symbol: BTreeMap<&str, std::collections::VecDeque<&venue_sim::kraken::SimTicker>> =
        BTreeMap::new();
    for s in sent {
        per_symbol
            .entry(s.symbol.as_str())
            .or_default()
            .push_back(s);
    }
    got.iter()
        .filter(|q| q.symbol.as_str() != "ALGO/USD")
        .filter_map(|q| {
            per_symbol
                .get_mut(q.symbol.as_str())
                .and_then(|d| d.pop_front())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_is_replaced_and_the_outage_is_a_gap() {
    let sim = KrakenSim::start().await.unwrap();
    sim.set_heartbeat_interval(Duration::from_millis(200));
    let s = unique_symbol();
    let mut reader = reader(&[&s], InitialPosition::Earliest).await;
    let mut cfg = config(&sim, &[&s]);
    cfg.kraken.trade_snapshot = false; // what is missed stays missed: a gap
    let ingester = start(cfg).await;
    subscribed(&sim, &[&s]).await;

    let t0 = UnixNanos(1_700_000_000_000_000_000);
    sim.ticker(sim_ticker(&s, 0, t0)).await;
    sim.trades(&(1..=5).map(|i| sim_trade(&s, i)).collect::<Vec<_>>())
        .await;
    reader
        .until(WAIT, |t| trades(t).len() == 5 && quotes(t).len() == 1)
        .await;

    let before_stall = UnixNanos::now();
    sim.set_stalled(true);
    // The watchdog notices the silence (stale_after = 1.5 s) and reconnects.
    eventually(WAIT, "a reconnect after the stall", || async {
        sim.connections_total() >= 2
    })
    .await;
    // Lost on the wire while stalled.
    sim.trades(&[sim_trade(&s, 6), sim_trade(&s, 7)]).await;
    sim.set_stalled(false);
    let unstalled = UnixNanos::now();
    subscribed(&sim, &[&s]).await;
    sim.trades(&[sim_trade(&s, 8)]).await;
    sim.ticker(sim_ticker(&s, 1, UnixNanos(t0.0 + 1_000))).await;

    reader
        .until(WAIT, |t| {
            trades(t).len() == 6
                && gaps(t).iter().filter(|g| g.kind == TickKind::Trade).count() == 1
        })
        .await;
    let ticks = reader.settle(Duration::from_millis(1500)).await.to_vec();
    let ids = trade_ids(&ticks);
    assert_eq!(
        ids,
        ["1", "2", "3", "4", "5", "8"],
        "no duplicate, 6 and 7 lost"
    );
    let trade_gaps: Vec<_> = gaps(&ticks)
        .into_iter()
        .filter(|g| g.kind == TickKind::Trade)
        .collect();
    assert_eq!(trade_gaps.len(), 1, "{trade_gaps:?}");
    let g = trade_gaps[0];
    assert_eq!(g.reason, GapReason::Disconnect);
    assert_eq!(g.symbol, s);
    assert!(
        g.from <= before_stall,
        "gap starts at the last frame before the stall"
    );
    assert!(g.to >= unstalled, "gap lasts until data resumed");
    assert!(g.detail.contains("nothing received"), "{}", g.detail);
    // The gap precedes the first trade after it on the topic.
    let pos_gap = ticks
        .iter()
        .position(|t| matches!(t, Tick::Gap(g) if g.kind == TickKind::Trade))
        .unwrap();
    let pos_8 = ticks
        .iter()
        .position(|t| matches!(t, Tick::Trade(t) if t.trade_id == "8"))
        .unwrap();
    assert!(pos_gap < pos_8);
    // Quotes: the ticker snapshot on resubscription closes the quote gap.
    let quote_gaps: Vec<_> = gaps(&ticks)
        .into_iter()
        .filter(|g| g.kind == TickKind::Quote)
        .collect();
    assert_eq!(quote_gaps.len(), 1, "{quote_gaps:?}");
    assert!(quote_gaps[0].from <= before_stall && quote_gaps[0].to >= unstalled);
    assert!(ingester.metric("kraken_ingester_reconnects_total").await >= 1.0);
    assert!(
        ingester
            .metric("kraken_ingester_gaps_total{kind=\"trade\"}")
            .await
            >= 1.0
    );
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_resubscribed_and_the_snapshot_fills_the_hole() {
    let sim = KrakenSim::start().await.unwrap();
    sim.set_heartbeat_interval(Duration::from_millis(200));
    let s = unique_symbol();
    let mut reader = reader(&[&s], InitialPosition::Earliest).await;
    let ingester = start(config(&sim, &[&s])).await; // trade snapshots on (the default)
    subscribed(&sim, &[&s]).await;
    sim.trades(&(1..=3).map(|i| sim_trade(&s, i)).collect::<Vec<_>>())
        .await;
    reader.until(WAIT, |t| trades(t).len() == 3).await;

    // Stall so that trades 4 and 5 are missed live, then drop the connection.
    sim.set_stalled(true);
    sim.trades(&[sim_trade(&s, 4), sim_trade(&s, 5)]).await;
    sim.drop_all();
    sim.set_stalled(false);
    eventually(WAIT, "reconnected", || async {
        sim.connections_total() >= 2
    })
    .await;
    subscribed(&sim, &[&s]).await;
    sim.trades(&[sim_trade(&s, 6)]).await;

    reader.until(WAIT, |t| trades(t).len() >= 6).await;
    let ticks = reader.settle(Duration::from_millis(1500)).await.to_vec();
    let ids = trade_ids(&ticks);
    assert_eq!(
        ids,
        ["1", "2", "3", "4", "5", "6"],
        "the snapshot's 1..3 are dropped as duplicates; 4 and 5 recovered"
    );
    assert!(
        gaps(&ticks).iter().all(|g| g.kind != TickKind::Trade),
        "trade ids continuous: no trade gap: {:?}",
        gaps(&ticks)
    );
    assert!(ingester.metric("kraken_ingester_gaps_avoided_total").await >= 1.0);
    assert!(
        ingester
            .metric("kraken_ingester_ticks_skipped_total{reason=\"duplicate\"}")
            .await
            >= 3.0
    );
    // The new connection subscribed again: two subscribe requests per channel in all.
    let subscribes = sim
        .requests()
        .iter()
        .filter(|r| r["method"] == "subscribe" && r["params"]["channel"] == "trade")
        .count();
    assert!(subscribes >= 2);
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_symbol_is_reported_and_the_others_carry_on() {
    let sim = KrakenSim::start().await.unwrap();
    let good = unique_symbol();
    let bad = unique_symbol();
    sim.reject_symbol(bad.as_str());
    let mut reader = reader(&[&good], InitialPosition::Earliest).await;
    let ingester = start(config(&sim, &[&good, &bad])).await;
    subscribed(&sim, &[&good]).await;
    eventually(WAIT, "the refusal is reported", || async {
        ingester
            .handle
            .status(&bad)
            .and_then(|s| s.last_error)
            .is_some_and(|e| e == format!("Currency pair not supported {bad}"))
    })
    .await;
    let status = ingester.handle.status(&bad).unwrap();
    assert_eq!((status.trade, status.ticker), ("refused", "refused"));
    // Settled: the refusal is an answer; the service is ready and serves the good symbol.
    eventually(WAIT, "ready", || ingester.ready()).await;
    sim.trades(&[sim_trade(&good, 1), sim_trade(&good, 2)])
        .await;
    reader.until(WAIT, |t| trades(t).len() == 2).await;
    assert_eq!(sim.connections_total(), 1, "no reconnect over a refusal");
    assert_eq!(
        ingester
            .metric("kraken_ingester_subscription_errors_total{channel=\"trade\"}")
            .await,
        1.0
    );
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbols_are_added_and_removed_on_the_live_connection() {
    let sim = KrakenSim::start().await.unwrap();
    let (a, b) = (unique_symbol(), unique_symbol());
    let mut reader = reader(&[&a, &b], InitialPosition::Earliest).await;
    let ingester = start(config(&sim, &[&a])).await;
    subscribed(&sim, &[&a]).await;

    ingester.handle.add(b.clone());
    subscribed(&sim, &[&a, &b]).await;
    sim.trades(&[sim_trade(&b, 1)]).await;
    reader.until(WAIT, |t| trades(t).len() == 1).await;

    ingester.handle.remove(&a);
    eventually(WAIT, "a unsubscribed", || async {
        !sim.subscribed("trade").contains(a.as_str())
            && !sim.subscribed("ticker").contains(a.as_str())
    })
    .await;
    eventually(WAIT, "a forgotten", || async {
        ingester.handle.status(&a).is_none()
    })
    .await;
    sim.trades(&[sim_trade(&a, 1)]).await; // not ours any more: nobody is subscribed
    sim.trades(&[sim_trade(&b, 2)]).await;
    reader.until(WAIT, |t| trades(t).len() == 2).await;
    let ticks = reader.settle(Duration::from_millis(1000)).await.to_vec();
    assert!(trades(&ticks).iter().all(|t| t.symbol == b));
    assert_eq!(
        sim.connections_total(),
        1,
        "the others were not reconnected"
    );
    assert!(gaps(&ticks).is_empty());
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_counted_and_skipped_and_good_ticks_are_kept() {
    let sim = KrakenSim::start().await.unwrap();
    let s = unique_symbol();
    let mut reader = reader(&[&s], InitialPosition::Earliest).await;
    let ingester = start(config(&sim, &[&s])).await;
    subscribed(&sim, &[&s]).await;

    sim.trades(&[sim_trade(&s, 1)]).await;
    for garbage in [
        "not json",
        "{\"channel\":\"trade\"}",
        "[1,2,3]",
        "{\"channel\":\"trade\",\"type\":\"update\",\"data\":{}}",
        "\u{0}\u{1}\u{2}",
    ] {
        sim.send_raw(garbage).await;
    }
    sim.send_raw_binary(vec![0xff, 0x00, 0x13]).await;
    // One bad element among good ones: the good ones survive.
    let mixed = format!(
        r#"{{"channel":"trade","type":"update","data":[{{"symbol":"{s}","side":"buy","price":1.5,"qty":2,"ord_type":"limit","trade_id":2,"timestamp":"2024-01-01T00:00:00.000001Z"}},{{"symbol":"{s}","side":"buy","price":"oops","qty":2,"ord_type":"limit","trade_id":3,"timestamp":"2024-01-01T00:00:00.000001Z"}},{{"symbol":"{s}","side":"sell","price":1.25,"qty":3,"ord_type":"market","trade_id":4,"timestamp":"2024-01-01T00:00:00.000002Z"}}]}}"#
    );
    sim.send_raw(&mixed).await;
    sim.send_raw(r#"{"channel":"heartbeat"}"#).await;
    sim.send_raw(r#"{"channel":"book","type":"update","data":[]}"#)
        .await;
    sim.trades(&[sim_trade(&s, 5)]).await;

    let ticks = reader.until(WAIT, |t| trades(t).len() == 4).await.to_vec();
    let ids = trade_ids(&ticks);
    assert_eq!(ids, ["1", "2", "4", "5"]);
    // Trade id 3 never arrived intact: that hole is recorded.
    let g = gaps(&ticks);
    assert_eq!(g.len(), 1, "{g:?}");
    assert!(g[0].detail.contains("3..=3"), "{}", g[0].detail);
    assert_eq!(
        ingester
            .metric("kraken_ingester_malformed_frames_total")
            .await,
        7.0
    );
    assert_eq!(
        sim.connections_total(),
        1,
        "garbage does not cost the connection"
    );
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_alone_are_not_a_healthy_feed() {
    let sim = KrakenSim::start().await.unwrap();
    sim.set_heartbeat_interval(Duration::from_millis(100));
    let s = unique_symbol();
    let mut cfg = config(&sim, &[&s]);
    cfg.kraken.data_stale_after_ms = 1_500;
    let ingester = start(cfg).await;
    subscribed(&sim, &[&s]).await;
    sim.set_data_paused(true);
    eventually(WAIT, "reconnect although heartbeats flow", || async {
        sim.connections_total() >= 2
    })
    .await;
    assert!(ingester.metric("kraken_ingester_reconnects_total").await >= 1.0);
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_subscription_is_retried_then_the_connection_replaced() {
    let sim = KrakenSim::start().await.unwrap();
    sim.set_acks(false);
    let s = unique_symbol();
    let ingester = start(config(&sim, &[&s])).await;
    eventually(
        WAIT,
        "a new connection after two unanswered subscribes",
        || async { sim.connections_total() >= 2 },
    )
    .await;
    let trade_subscribes = sim
        .requests()
        .iter()
        .filter(|r| r["method"] == "subscribe" && r["params"]["channel"] == "trade")
        .count();
    assert!(
        trade_subscribes >= 2,
        "subscribed again before giving up on the connection"
    );
    assert!(!ingester.ready().await, "not ready while unsubscribed");
    sim.set_acks(true);
    eventually(WAIT, "ready once acks flow", || ingester.ready()).await;
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_venue_that_is_down_is_retried_for_ever_and_shutdown_interrupts() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let sim = KrakenSim::start().await.unwrap();
    let mut cfg = config(&sim, &[&unique_symbol()]);
    cfg.kraken.ws_url = format!("ws://{addr}/v2");
    let ingester = start(cfg).await;
    eventually(WAIT, "several failed attempts", || async {
        ingester
            .metric("kraken_ingester_connect_failures_total")
            .await
            >= 3.0
    })
    .await;
    assert!(!ingester.ready().await);
    let t = std::time::Instant::now();
    ingester.stop().await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "shutdown cuts the backoff short"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_costs_the_connection_not_the_process() {
    let sim = KrakenSim::start().await.unwrap();
    let s = unique_symbol();
    let mut reader = reader(&[&s], InitialPosition::Earliest).await;
    let mut cfg = config(&sim, &[&s]);
    cfg.kraken.max_frame_bytes = 64 * 1024;
    let ingester = start(cfg).await;
    subscribed(&sim, &[&s]).await;
    sim.trades(&[sim_trade(&s, 1)]).await;
    reader.until(WAIT, |t| trades(t).len() == 1).await;

    let huge = format!(
        r#"{{"channel":"heartbeat","pad":"{}"}}"#,
        "x".repeat(256 * 1024)
    );
    sim.send_raw(&huge).await;
    eventually(WAIT, "reconnected after the oversized frame", || async {
        sim.connections_total() >= 2
    })
    .await;
    subscribed(&sim, &[&s]).await;
    sim.trades(&[sim_trade(&s, 2)]).await;
    let ticks = reader.until(WAIT, |t| trades(t).len() == 2).await.to_vec();
    let ids = trade_ids(&ticks);
    assert_eq!(ids, ["1", "2"]);
    assert!(ingester.metric("kraken_ingester_reconnects_total").await >= 1.0);
    ingester.stop().await;
}
