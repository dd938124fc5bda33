//! The ingester against the fake OANDA stream and the real Pulsar: every quote field against
//! the input, chunking, reconnects and gaps, refusals (401, 429, 400, 503), instrument changes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed setup should stop the run loudly"
)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use tickflow_schema::{GapReason, Quote, Source, Symbol, Tick, UnixNanos};
use venue_sim::oanda::{Chunking, SimPrice, random_walk};

const WAIT: Duration = Duration::from_secs(30);

fn quotes_of<'a>(ticks: &'a [Tick], symbol: &Symbol) -> Vec<&'a Quote> {
    quotes(ticks)
        .into_iter()
        .filter(|q| q.symbol == *symbol)
        .collect()
}

fn sim_price(symbol: &Symbol, time: &str, bid: &str, ask: &str) -> SimPrice {
    SimPrice {
        instrument: venue(symbol),
        time: time.to_owned(),
        bids: vec![(bid.to_owned(), 1_000_000), ("0.5".to_owned(), 2_000_000)],
        asks: vec![(ask.to_owned(), 3_000_000), ("9.5".to_owned(), 4_000_000)],
        tradeable: true,
    }
}

/// Checks a quote against (time, bid, bid liquidity, ask, ask liquidity, indicative), the
/// decimals by their text so that the scale counts.
fn assert_quote(q: &Quote, want: (&str, &str, u64, &str, u64, bool), symbol: &Symbol) {
    let (time, bid, bid_liq, ask, ask_liq, indicative) = want;
    assert_eq!(q.source, Source::Oanda);
    assert_eq!(q.symbol, *symbol);
    assert_eq!(q.venue_symbol.as_str(), venue(symbol));
    assert_eq!(
        q.event_time,
        UnixNanos::parse_rfc3339(time).unwrap(),
        "{time}"
    );
    assert_eq!(q.bid.to_string(), bid, "bid at {time}");
    assert_eq!(q.ask.to_string(), ask, "ask at {time}");
    assert_eq!(q.bid_size.to_string(), bid_liq.to_string());
    assert_eq!(q.ask_size.to_string(), ask_liq.to_string());
    assert_eq!(q.indicative, indicative, "indicative at {time}");
    assert_eq!(q.sequence, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_lines_split_at_awkward_chunk_boundaries_become_exact_quotes() {
    let sim = start_sim().await;
    sim.set_chunking(Chunking::Awkward);
    let usd = unique_symbol();
    let jpy = Symbol::parse(&usd.as_str().replace("/USD", "/JPY")).unwrap();
    let ingester = start(config(&sim, &[&usd, &jpy])).await;
    streaming(&sim, &[&usd, &jpy]).await;
    let request = sim.requests().pop().unwrap();
    assert_eq!(request.account, ACCOUNT);
    assert_eq!(
        request.authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert!(request.snapshot);

    let before = UnixNanos::now();
    for file in [
        "pricing_stream_EURUSD_EURJPY_2016-10-27.ndjson",
        "pricing_stream_EURUSD_EURJPY_2017-03-09_notebook.ndjson",
        "pricing_stream_EURUSD_2020-10-23_after_friday_close.ndjson",
        "transactions_stream_heartbeats_2017-03-09_notebook.ndjson",
    ] {
        for line in fixture_lines(file) {
            let line = line
                .replace("\"EUR_USD\"", &format!("\"{}\"", venue(&usd)))
                .replace("\"EUR_JPY\"", &format!("\"{}\"", venue(&jpy)));
            sim.send_line(&line).await;
        }
    }
    let mut reader = reader(&[&usd, &jpy]).await;
    reader.until(WAIT, |t| quotes(t).len() >= 8).await;
    let after = UnixNanos::now();
    let ticks = reader.settle(Duration::from_millis(500)).await.to_vec();
    assert_eq!(quotes(&ticks).len(), 8, "exactly the captured prices");
    assert!(gaps(&ticks).is_empty());

    let want_usd = [
        (
            "2016-10-27T08:38:45.664613867Z",
            "1.09177",
            10_000_000,
            "1.09188",
            10_000_000,
            false,
        ),
        (
            "2017-03-09T13:37:46.048197280Z",
            "1.05522",
            10_000_000,
            "1.05534",
            10_000_000,
            false,
        ),
        (
            "2017-03-09T13:37:49.349544372Z",
            "1.05514",
            10_000_000,
            "1.05527",
            10_000_000,
            false,
        ),
        // After the Friday close: kept, marked not tradeable.
        (
            "2020-10-23T21:02:02.692522548Z",
            "1.18571",
            10_000_000,
            "1.18671",
            10_000_000,
            true,
        ),
    ];
    let want_jpy = [
        (
            "2016-10-27T08:38:43.094548890Z",
            "114.295",
            1_000_000,
            "114.312",
            1_000_000,
            false,
        ),
        (
            "2016-10-27T08:38:45.681572782Z",
            "114.298",
            1_000_000,
            "114.315",
            1_000_000,
            false,
        ),
        // Older than the line before it (the notebook's snapshot order): kept as sent.
        (
            "2017-03-09T13:37:44.958026355Z",
            "120.969",
            1_000_000,
            "120.991",
            1_000_000,
            false,
        ),
        (
            "2017-03-09T13:37:47.550550833Z",
            "120.975",
            1_000_000,
            "120.995",
            1_000_000,
            false,
        ),
    ];
    for (symbol, want) in [(&usd, &want_usd[..]), (&jpy, &want_jpy[..])] {
        let got = quotes_of(&ticks, symbol);
        assert_eq!(got.len(), want.len());
        for (q, w) in got.iter().zip(want) {
            assert_quote(q, *w, symbol);
            assert!(q.received_at >= before && q.received_at <= after);
        }
    }
    assert_eq!(
        ingester
            .metric("oanda_ingester_lines_received_total{class=\"price\"}")
            .await,
        8.0
    );
    assert!(
        ingester
            .metric("oanda_ingester_lines_received_total{class=\"heartbeat\"}")
            .await
            >= 5.0
    );
    assert_eq!(
        ingester.metric("oanda_ingester_non_tradeable_total").await,
        1.0
    );
    assert!(ingester.ready().await);
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_prices_arrive_complete_in_order_under_every_chunking() {
    let sim = start_sim().await;
    let symbols: Vec<Symbol> = (0..3).map(|_| unique_symbol()).collect();
    let refs: Vec<&Symbol> = symbols.iter().collect();
    let ingester = start(config(&sim, &refs)).await;
    streaming(&sim, &refs).await;
    let mut sent: BTreeMap<Symbol, Vec<SimPrice>> = BTreeMap::new();
    let start_ns = UnixNanos::parse_rfc3339("2024-03-13T12:00:00Z").unwrap();
    for (round, chunking) in [Chunking::Fixed(7), Chunking::Awkward, Chunking::Lines]
        .into_iter()
        .enumerate()
    {
        sim.set_chunking(chunking);
        let mut lines = Vec::new();
        for (i, s) in symbols.iter().enumerate() {
            let walk = random_walk(
                &venue(s),
                UnixNanos(start_ns.0 + i64::try_from(round).unwrap() * 1_000_000_000_000),
                250_000_000,
                200,
                u64::try_from(round * 10 + i).unwrap(),
            );
            lines.extend(walk.iter().map(SimPrice::to_line));
            sent.entry(s.clone()).or_default().extend(walk);
        }
        sim.send_lines(&lines).await;
    }
    let mut reader = reader(&refs).await;
    let ticks = reader
        .until(WAIT, |t| quotes(t).len() >= 1_800)
        .await
        .to_vec();
    for s in &symbols {
        let got = quotes_of(&ticks, s);
        let want = &sent[s];
        assert_eq!(got.len(), want.len(), "every price of {s}, once");
        for (q, p) in got.iter().zip(want) {
            assert_eq!(q.event_time, UnixNanos::parse_rfc3339(&p.time).unwrap());
            assert_eq!(q.bid.to_string(), p.bids[0].0);
            assert_eq!(q.ask.to_string(), p.asks[0].0);
            assert_eq!(q.bid_size.to_string(), p.bids[0].1.to_string());
            assert_eq!(q.ask_size.to_string(), p.asks[0].1.to_string());
        }
    }
    assert!(gaps(&ticks).is_empty());
    assert_eq!(sim.connections_total(), 1, "no reconnect");
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_replaced_and_the_outage_recorded_as_a_gap() {
    let sim = start_sim().await;
    let s = unique_symbol();
    let ingester = start(config(&sim, &[&s])).await;
    streaming(&sim, &[&s]).await;
    sim.price(&sim_price(
        &s,
        "2024-03-13T12:00:00.100000000Z",
        "1.1",
        "1.2",
    ))
    .await;
    let mut reader = reader(&[&s]).await;
    reader.until(WAIT, |t| quotes(t).len() == 1).await;
    let stalled_at = UnixNanos::now();
    sim.set_stalled(true);
    eventually(WAIT, "a reconnect after 1 s of silence", || async {
        sim.requests().len() >= 2
    })
    .await;
    sim.set_stalled(false);
    let resumed = UnixNanos::now();
    sim.price(&sim_price(
        &s,
        "2024-03-13T12:00:09.000000001Z",
        "1.15",
        "1.25",
    ))
    .await;
    reader
        .until(WAIT, |t| quotes(t).len() >= 2 && !gaps(t).is_empty())
        .await;
    let ticks = reader.settle(Duration::from_millis(500)).await.to_vec();
    let g = gaps(&ticks);
    assert_eq!(g.len(), 1, "one outage, one gap: {g:?}");
    assert_eq!(g[0].reason, GapReason::Disconnect);
    assert!(
        g[0].detail
            .contains("nothing (not even a heartbeat) for 1000 ms"),
        "{}",
        g[0].detail
    );
    assert!(
        g[0].from <= stalled_at,
        "starts at the last line before the stall"
    );
    assert!(
        stalled_at.0 - g[0].from.0 < 1_000_000_000,
        "heartbeats every 200 ms"
    );
    assert!(
        g[0].to >= resumed,
        "ends at the first line of the live stream"
    );
    assert!(g[0].to.0 - g[0].from.0 >= 1_000_000_000);
    // The first price once, the new one once; a repeated snapshot is no new quote.
    let q = quotes_of(&ticks, &s);
    assert_eq!(q.len(), 2);
    assert_eq!(q[1].bid.to_string(), "1.15");
    assert!(ingester.metric("oanda_ingester_reconnects_total").await >= 1.0);
    eventually(WAIT, "ready again", || ingester.ready()).await;
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stream_is_reopened_and_its_snapshot_repeat_dropped() {
    let sim = start_sim().await;
    let s = unique_symbol();
    let ingester = start(config(&sim, &[&s])).await;
    streaming(&sim, &[&s]).await;
    sim.price(&sim_price(
        &s,
        "2024-03-13T12:00:00.5Z",
        "1.10001",
        "1.10011",
    ))
    .await;
    let mut reader = reader(&[&s]).await;
    reader.until(WAIT, |t| quotes(t).len() == 1).await;
    sim.drop_all();
    // The new stream starts with the snapshot: the same price at the same time.
    eventually(WAIT, "the repeat is seen and dropped", || async {
        ingester
            .metric("oanda_ingester_ticks_skipped_total{reason=\"duplicate\"}")
            .await
            == 1.0
    })
    .await;
    assert_eq!(sim.connections_total(), 2);
    reader.until(WAIT, |t| !gaps(t).is_empty()).await;
    let ticks = reader.settle(Duration::from_millis(300)).await.to_vec();
    assert_eq!(quotes_of(&ticks, &s).len(), 1);
    let g = gaps(&ticks);
    assert_eq!(g.len(), 1);
    assert!(
        g[0].detail.contains("OANDA closed the stream"),
        "{}",
        g[0].detail
    );
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_configuration_error_retried_slowly_and_never_shown() {
    let sim = start_sim().await;
    sim.set_token(Some("the-right-token"));
    let s = unique_symbol();
    let cfg = config(&sim, &[&s]);
    let debug = format!("{cfg:?}");
    assert!(
        !debug.contains(TOKEN) && !debug.contains(ACCOUNT),
        "{debug}"
    );
    let ingester = start(cfg).await;
    eventually(WAIT, "the first refusal", || async {
        !sim.requests().is_empty()
    })
    .await;
    let first = Instant::now();
    eventually(WAIT, "readiness says why", || async {
        readiness(ingester.handle.admin_addr())
            .await
            .contains("OANDA refused the credentials (HTTP 401")
    })
    .await;
    let text = readiness(ingester.handle.admin_addr()).await;
    assert!(!text.contains(TOKEN) && !text.contains(ACCOUNT));
    assert!(text.contains("check OANDA_API_TOKEN"));
    let status = ingester.handle.status(&s).unwrap();
    assert!(
        status
            .last_error
            .unwrap()
            .contains("Insufficient authorization")
    );
    eventually(WAIT, "a second attempt", || async {
        sim.requests().len() >= 2
    })
    .await;
    assert!(
        first.elapsed() >= Duration::from_millis(1_400),
        "no tight loop: auth_retry_ms is 1.5 s, the retry came after {:?}",
        first.elapsed()
    );
    sim.set_token(Some(TOKEN));
    streaming(&sim, &[&s]).await;
    eventually(WAIT, "ready once the token is right", || ingester.ready()).await;
    assert!(
        ingester
            .metric("oanda_ingester_connect_failures_total{status=\"401\"}")
            .await
            >= 2.0
    );
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_honour_retry_after_and_outages_back_off() {
    let sim = start_sim().await;
    sim.fail_next(429, Some(2), 1);
    sim.fail_next(503, None, 2);
    let s = unique_symbol();
    let ingester = start(config(&sim, &[&s])).await;
    eventually(WAIT, "the 429", || async { !sim.requests().is_empty() }).await;
    let limited = Instant::now();
    eventually(WAIT, "the retry", || async { sim.requests().len() >= 2 }).await;
    assert!(
        limited.elapsed() >= Duration::from_millis(1_900),
        "Retry-After: 2 was honoured (retried after {:?})",
        limited.elapsed()
    );
    streaming(&sim, &[&s]).await;
    assert_eq!(sim.requests().len(), 4, "429, 503, 503, then the stream");
    assert_eq!(
        ingester
            .metric("oanda_ingester_connect_failures_total{status=\"5xx\"}")
            .await,
        2.0
    );
    eventually(WAIT, "ready", || ingester.ready()).await;
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instrument_changes_are_coalesced_into_one_switch_without_a_gap() {
    let sim = start_sim().await;
    let (a, b, c) = (unique_symbol(), unique_symbol(), unique_symbol());
    let ingester = start(config(&sim, &[&a])).await;
    streaming(&sim, &[&a]).await;
    sim.price(&sim_price(&a, "2024-03-13T12:00:00Z", "1.1", "1.2"))
        .await;
    ingester.handle.add(b.clone());
    ingester.handle.add(c.clone());
    streaming(&sim, &[&a, &b, &c]).await;
    assert_eq!(sim.requests().len(), 2, "two additions, one new stream");
    eventually(WAIT, "the old stream closed", || async {
        sim.open_streams() == 1
    })
    .await;
    for s in [&a, &b, &c] {
        sim.price(&sim_price(s, "2024-03-13T12:00:01Z", "1.3", "1.4"))
            .await;
    }
    ingester.handle.remove(&b);
    streaming(&sim, &[&a, &c]).await;
    assert_eq!(sim.requests().len(), 3);
    let mut reader = reader(&[&a, &b, &c]).await;
    reader.until(WAIT, |t| quotes(t).len() >= 4).await;
    let ticks = reader.settle(Duration::from_millis(500)).await.to_vec();
    assert!(
        gaps(&ticks).is_empty(),
        "a switch loses nothing: {:?}",
        gaps(&ticks)
    );
    assert_eq!(quotes_of(&ticks, &a).len(), 2);
    assert_eq!(quotes_of(&ticks, &b).len(), 1);
    assert_eq!(quotes_of(&ticks, &c).len(), 1);
    assert_eq!(ingester.metric("oanda_ingester_switches_total").await, 2.0);
    assert_eq!(
        ingester.metric("oanda_ingester_reconnects_total").await,
        0.0
    );
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_instrument_is_found_and_kept_off_while_the_others_stream() {
    let sim = start_sim().await;
    let (a, bad, good) = (unique_symbol(), unique_symbol(), unique_symbol());
    sim.reject_instrument(&venue(&bad));
    let ingester = start(config(&sim, &[&a])).await;
    streaming(&sim, &[&a]).await;
    ingester
        .handle
        .set_symbols([a.clone(), bad.clone(), good.clone()]);
    streaming(&sim, &[&a, &good]).await;
    eventually(WAIT, "the bad one marked", || async {
        ingester
            .handle
            .status(&bad)
            .is_some_and(|s| s.state == "refused")
    })
    .await;
    let status = ingester.handle.status(&bad).unwrap();
    assert!(
        status
            .last_error
            .unwrap()
            .contains("Invalid value specified for 'instruments'")
    );
    assert_eq!(ingester.handle.status(&good).unwrap().state, "streaming");
    sim.price(&sim_price(&good, "2024-03-13T12:00:00Z", "2.1", "2.2"))
        .await;
    let mut reader = reader(&[&good]).await;
    reader.until(WAIT, |t| quotes(t).len() == 1).await;
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_lines_are_counted_and_skipped_and_good_ones_kept() {
    let sim = start_sim().await;
    let s = unique_symbol();
    let mut cfg = config(&sim, &[&s]);
    cfg.oanda.max_line_bytes = 1_024;
    let ingester = start(cfg).await;
    streaming(&sim, &[&s]).await;
    sim.send_line("{\"type\":\"PRICE\",\"instrument\"").await;
    sim.send_line("<html>blocked</html>").await;
    sim.send_line(&"x".repeat(10_000)).await;
    sim.price(&sim_price(&s, "2024-03-13T12:00:00Z", "1.1", "1.2"))
        .await;
    let mut reader = reader(&[&s]).await;
    reader.until(WAIT, |t| quotes(t).len() == 1).await;
    assert_eq!(
        ingester
            .metric("oanda_ingester_lines_received_total{class=\"malformed\"}")
            .await,
        2.0
    );
    assert_eq!(
        ingester
            .metric("oanda_ingester_lines_received_total{class=\"oversized\"}")
            .await,
        1.0
    );
    assert_eq!(sim.connections_total(), 1, "bad lines cost no connection");
    ingester.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_venue_that_is_down_is_retried_and_shutdown_interrupts_the_wait() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let sim = start_sim().await;
    let mut cfg = config(&sim, &[&unique_symbol()]);
    cfg.oanda.stream_url = Some(format!("http://{addr}"));
    let ingester = start(cfg).await;
    eventually(WAIT, "several failed attempts", || async {
        ingester
            .metric("oanda_ingester_connect_failures_total{status=\"network\"}")
            .await
            >= 3.0
    })
    .await;
    assert!(!ingester.ready().await);
    let t = Instant::now();
    ingester.stop().await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "shutdown cuts the wait short"
    );
}
