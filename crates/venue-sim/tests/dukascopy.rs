//! Behaviour of the Dukascopy simulator, observed through reqwest: URL month mapping on both
//! transports, fixtures served byte for byte, generated hours round-tripping through both encodings,
//! every fault kind, per-hour fault queues, throttling and shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test code; volumes are checked against the JSON's f64 numbers"
)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use venue_sim::dukascopy::{
    DukascopySim, Fault, SimRequest, SimTick, Transport, bi5_path, encode_bi5, encode_json,
    generate_hour, generate_hours, json_path,
};

/// Upper bound for anything that is expected to happen.
const DEADLINE: Duration = Duration::from_secs(10);

const HOUR_MS: i64 = 3_600_000;
/// 2023-02-20 12:00 UTC: `BTCUSD/2023/01/20/12h_ticks.bi5`.
const BTC_HOUR: i64 = 1_676_894_400_000;
/// 2019-01-04 03:00 UTC (January).
const JAN_HOUR: i64 = 1_546_570_800_000;
/// 2024-12-31 23:00 UTC (December).
const DEC_HOUR: i64 = 1_735_686_000_000;
/// 2026-07-13 12:00 UTC, the jetta JSON fixture's hour.
const JETTA_HOUR: i64 = 1_783_944_000_000;

const BTC_FIXTURE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/dukascopy/BTCUSD/2023/01/20/12h_ticks.bi5"
));
const JETTA_FIXTURE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/dukascopy/jetta_json/ticks-EUR-USD-2026-7-13-12.json"
));

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// GETs `path` on the simulator and returns the response, head and body read.
async fn get(sim: &DukascopySim, path: &str) -> (u16, reqwest::header::HeaderMap, Bytes) {
    let url = format!("{}{path}", sim.base_url());
    let response = tokio::time::timeout(DEADLINE, client().get(&url).send())
        .await
        .expect("answer before the deadline")
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap();
    (status, headers, body)
}

/// Polls `cond` until it holds, failing after [`DEADLINE`].
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Decodes a `.bi5` body with lzma-rs and parses the 20-byte big-endian records.
fn decode_bi5(body: &[u8]) -> Vec<SimTick> {
    if body.is_empty() {
        return Vec::new();
    }
    assert_eq!(&body[..3], &[0x5d, 0x00, 0x00], "LZMA-alone magic");
    let mut raw = Vec::new();
    lzma_rs::lzma_decompress(&mut &body[..], &mut raw).unwrap();
    assert_eq!(raw.len() % 20, 0);
    raw.chunks_exact(20)
        .map(|r| {
            let u = |i: usize| u32::from_be_bytes(r[i..i + 4].try_into().unwrap());
            let f = |i: usize| f32::from_be_bytes(r[i..i + 4].try_into().unwrap());
            SimTick {
                ms_in_hour: u(0),
                ask_points: u(4),
                bid_points: u(8),
                ask_volume: f(12),
                bid_volume: f(16),
            }
        })
        .collect()
}

/// One tick as read back from the JSON: absolute time, points, volumes in units.
#[derive(Debug, PartialEq)]
struct JsonTick {
    time_ms: i64,
    ask_points: i64,
    bid_points: i64,
    ask_units: f64,
    bid_units: f64,
}

/// Undoes the JSON's delta encoding.
fn decode_json(body: &[u8], scale: u32) -> (i64, Vec<JsonTick>) {
    let v: Value = serde_json::from_slice(body).unwrap();
    let timestamp = v["timestamp"].as_i64().unwrap();
    let multiplier = v["multiplier"].as_f64().unwrap();
    assert_eq!(multiplier, 10f64.powi(-i32::try_from(scale).unwrap()));
    let arr = |name: &str| v[name].as_array().unwrap().clone();
    let (times, asks, bids) = (arr("times"), arr("asks"), arr("bids"));
    let (ask_vols, bid_vols) = (arr("askVolumes"), arr("bidVolumes"));
    if times.is_empty() {
        assert!(v["ask"].is_null() && v["bid"].is_null());
        assert!(asks.is_empty() && bids.is_empty() && ask_vols.is_empty() && bid_vols.is_empty());
        return (timestamp, Vec::new());
    }
    let to_points = |x: &Value| (x.as_f64().unwrap() / multiplier).round() as i64;
    let (mut t, mut ask, mut bid) = (timestamp, to_points(&v["ask"]), to_points(&v["bid"]));
    assert_eq!(asks[0].as_i64(), Some(0));
    assert_eq!(bids[0].as_i64(), Some(0));
    let mut out = Vec::with_capacity(times.len());
    for i in 0..times.len() {
        t += times[i].as_i64().unwrap();
        ask += asks[i].as_i64().unwrap();
        bid += bids[i].as_i64().unwrap();
        out.push(JsonTick {
            time_ms: t,
            ask_points: ask,
            bid_points: bid,
            ask_units: ask_vols[i].as_f64().unwrap(),
            bid_units: bid_vols[i].as_f64().unwrap(),
        });
    }
    (timestamp, out)
}

/// Asserts the JSON ticks are `ticks` of `hour`, volumes ×1e6.
fn assert_json_matches(hour: i64, ticks: &[SimTick], json: &[JsonTick]) {
    assert_eq!(json.len(), ticks.len());
    for (t, j) in ticks.iter().zip(json) {
        assert_eq!(j.time_ms, hour + i64::from(t.ms_in_hour));
        assert_eq!(j.ask_points, i64::from(t.ask_points));
        assert_eq!(j.bid_points, i64::from(t.bid_points));
        // The JSON holds the f32's decimal ×1e6, so dividing back gives the same f32.
        assert_eq!((j.ask_units / 1e6) as f32, t.ask_volume, "{j:?} {t:?}");
        assert_eq!((j.bid_units / 1e6) as f32, t.bid_volume, "{j:?} {t:?}");
        let expected: f64 = t.ask_volume.to_string().parse().unwrap();
        assert!((j.ask_units - expected * 1e6).abs() < 1e-6 * j.ask_units.abs().max(1.0));
    }
}

fn some_ticks() -> Vec<SimTick> {
    generate_hour("EURUSD", JETTA_HOUR, 5, 114_277, 42, 300)
}

#[tokio::test]
async fn months_are_zero_based_in_bi5_paths_and_one_based_in_json_paths() {
    let sim = DukascopySim::start().await.unwrap();
    let ticks = generate_hour("BTCUSD", BTC_HOUR, 1, 249_215, 1, 50);
    sim.publish_ticks("BTCUSD", BTC_HOUR, 1, ticks);
    sim.publish_ticks("EURUSD", JAN_HOUR, 5, some_ticks());
    sim.publish_ticks("EURUSD", DEC_HOUR, 5, some_ticks());

    // 2023-02-20 12:00 UTC.
    assert_eq!(
        get(&sim, "/datafeed/BTCUSD/2023/01/20/12h_ticks.bi5")
            .await
            .0,
        200
    );
    assert_eq!(get(&sim, "/v1/ticks/BTC-USD/2023/2/20/12").await.0, 200);
    // One month off in either direction is another (unpublished) hour.
    assert_eq!(
        get(&sim, "/datafeed/BTCUSD/2023/02/20/12h_ticks.bi5")
            .await
            .0,
        404
    );
    assert_eq!(get(&sim, "/v1/ticks/BTC-USD/2023/1/20/12").await.0, 404);
    // January is `00` / `1`, December `11` / `12`.
    assert_eq!(
        get(&sim, "/datafeed/EURUSD/2019/00/04/03h_ticks.bi5")
            .await
            .0,
        200
    );
    assert_eq!(get(&sim, "/v1/ticks/EUR-USD/2019/1/4/3").await.0, 200);
    assert_eq!(
        get(&sim, "/datafeed/EURUSD/2024/11/31/23h_ticks.bi5")
            .await
            .0,
        200
    );
    assert_eq!(get(&sim, "/v1/ticks/EUR-USD/2024/12/31/23").await.0, 200);
    // A one-based month in a bi5 path does not exist; neither does a padded JSON month or an
    // undashed JSON code.
    assert_eq!(
        get(&sim, "/datafeed/EURUSD/2024/12/31/23h_ticks.bi5")
            .await
            .0,
        404
    );
    assert_eq!(get(&sim, "/v1/ticks/EUR-USD/2019/01/4/3").await.0, 404);
    assert_eq!(get(&sim, "/v1/ticks/EURUSD/2019/1/4/3").await.0, 404);
    // Outside both interfaces: 404, not recorded.
    assert_eq!(get(&sim, "/favicon.ico").await.0, 404);

    assert_eq!(
        bi5_path("BTCUSD", BTC_HOUR),
        "/datafeed/BTCUSD/2023/01/20/12h_ticks.bi5"
    );
    assert_eq!(
        json_path("BTCUSD", BTC_HOUR),
        "/v1/ticks/BTC-USD/2023/2/20/12"
    );

    let req = |transport, sym: &str, hour_start_ms, status| SimRequest {
        transport,
        sym: sym.to_owned(),
        hour_start_ms,
        status,
    };
    assert_eq!(
        sim.requests(),
        vec![
            req(Transport::Bi5, "BTCUSD", BTC_HOUR, 200),
            req(Transport::Json, "BTCUSD", BTC_HOUR, 200),
            req(Transport::Bi5, "BTCUSD", 1_679_313_600_000, 404), // 2023-03-20 12:00
            req(Transport::Json, "BTCUSD", 1_674_216_000_000, 404), // 2023-01-20 12:00
            req(Transport::Bi5, "EURUSD", JAN_HOUR, 200),
            req(Transport::Json, "EURUSD", JAN_HOUR, 200),
            req(Transport::Bi5, "EURUSD", DEC_HOUR, 200),
            req(Transport::Json, "EURUSD", DEC_HOUR, 200),
            req(Transport::Bi5, "", 0, 404),
            req(Transport::Json, "", 0, 404),
            req(Transport::Json, "", 0, 404),
        ]
    );
    assert_eq!(sim.requests_for("BTCUSD", BTC_HOUR), 2);
    assert_eq!(sim.requests_for("BTCUSD", BTC_HOUR + 1234), 2);
}

#[tokio::test]
async fn fixtures_are_served_byte_for_byte() {
    let sim = DukascopySim::start().await.unwrap();
    sim.publish_bi5("BTCUSD", BTC_HOUR, Bytes::from_static(BTC_FIXTURE));
    sim.publish_json("EURUSD", JETTA_HOUR, Bytes::from_static(JETTA_FIXTURE));

    let (status, headers, body) = get(&sim, "/datafeed/BTCUSD/2023/01/20/12h_ticks.bi5").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(&body[..], BTC_FIXTURE);
    // The fixture decodes to what PROTOCOLS.md §3.8 says.
    let ticks = decode_bi5(&body);
    assert_eq!(ticks.len(), 8523);
    assert_eq!(
        (
            ticks[0].ms_in_hour,
            ticks[0].ask_points,
            ticks[0].bid_points
        ),
        (84, 249_215, 248_494)
    );

    let (status, headers, body) = get(&sim, "/v1/ticks/EUR-USD/2026/7/13/12").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(&body[..], JETTA_FIXTURE);
    let (timestamp, ticks) = decode_json(&body, 5);
    assert_eq!(timestamp, JETTA_HOUR);
    assert_eq!(ticks.len(), 3551);
    assert_eq!(
        (ticks[0].time_ms, ticks[0].ask_points, ticks[0].bid_points),
        (JETTA_HOUR + 93, 114_277, 114_273)
    );

    // Publishing one transport leaves the other unpublished.
    assert_eq!(get(&sim, "/v1/ticks/BTC-USD/2023/2/20/12").await.0, 404);
    assert_eq!(
        get(&sim, "/datafeed/EURUSD/2026/06/13/12h_ticks.bi5")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn generated_ticks_round_trip_through_both_encodings() {
    let sim = DukascopySim::start().await.unwrap();
    let fx = generate_hour("EURUSD", JETTA_HOUR, 5, 114_277, 7, 3_500);
    let btc = generate_hour("BTCUSD", BTC_HOUR, 1, 249_215, 7, 2_000);
    sim.publish_ticks("EURUSD", JETTA_HOUR, 5, fx.clone());
    sim.publish_ticks("BTCUSD", BTC_HOUR, 1, btc.clone());

    for (sym, hour, scale, ticks) in [
        ("EURUSD", JETTA_HOUR, 5, &fx),
        ("BTCUSD", BTC_HOUR, 1, &btc),
    ] {
        let (status, _, body) = get(&sim, &bi5_path(sym, hour)).await;
        assert_eq!(status, 200);
        // Dukascopy's header: props 0x5d, 4 MiB dictionary, the real uncompressed size.
        assert_eq!(&body[..5], &[0x5d, 0x00, 0x00, 0x40, 0x00]);
        let size = u64::from_le_bytes(body[5..13].try_into().unwrap());
        assert_eq!(size, 20 * ticks.len() as u64);
        assert_eq!(&decode_bi5(&body), ticks);
        assert_eq!(&body[..], &encode_bi5(ticks)[..]);

        let (status, _, body) = get(&sim, &json_path(sym, hour)).await;
        assert_eq!(status, 200);
        assert_eq!(&body[..], encode_json(hour, scale, ticks).as_bytes());
        let (timestamp, json) = decode_json(&body, scale);
        assert_eq!(timestamp, hour);
        assert_json_matches(hour, ticks, &json);
        // Base prices are plain decimals formatted from the integers.
        let text = std::str::from_utf8(&body).unwrap();
        let base = if scale == 5 {
            format!("\"ask\":{}.", ticks[0].ask_points / 100_000)
        } else {
            format!("\"ask\":{}.", ticks[0].ask_points / 10)
        };
        assert!(text.contains(&base), "{}", &text[..120]);
    }
    // Volumes in units, exactly: 0.9 million is 900000.0, not 899999.98.
    let text = encode_json(JETTA_HOUR, 5, &fx);
    assert!(text.contains("900000.0"));
    assert!(!text.contains("99999"));
}

#[tokio::test]
async fn empty_and_unpublished_hours() {
    let sim = DukascopySim::start().await.unwrap();
    sim.publish_ticks("EURUSD", JETTA_HOUR, 5, Vec::new());

    let (status, _, body) = get(&sim, "/datafeed/EURUSD/2026/06/13/12h_ticks.bi5").await;
    assert_eq!((status, body.len()), (200, 0));
    let (status, _, body) = get(&sim, "/v1/ticks/EUR-USD/2026/7/13/12").await;
    assert_eq!(status, 200);
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        "{\"timestamp\":1783944000000,\"multiplier\":1.0E-5,\"ask\":null,\"bid\":null,\
         \"times\":[],\"asks\":[],\"bids\":[],\"askVolumes\":[],\"bidVolumes\":[]}"
    );

    // The next hour was never published; unpublishing makes the first one a 404 as well.
    assert_eq!(
        get(&sim, "/datafeed/EURUSD/2026/06/13/13h_ticks.bi5")
            .await
            .0,
        404
    );
    assert_eq!(get(&sim, "/v1/ticks/EUR-USD/2026/7/13/13").await.0, 404);
    sim.unpublish("EURUSD", JETTA_HOUR);
    assert_eq!(
        get(&sim, "/datafeed/EURUSD/2026/06/13/12h_ticks.bi5")
            .await
            .0,
        404
    );
    assert_eq!(get(&sim, "/v1/ticks/EUR-USD/2026/7/13/12").await.0, 404);
}

#[tokio::test]
async fn every_fault_kind_is_observable() {
    let sim = DukascopySim::start().await.unwrap();
    let ticks = some_ticks();
    sim.publish_ticks("EURUSD", JETTA_HOUR, 5, ticks.clone());
    let bi5 = "/datafeed/EURUSD/2026/06/13/12h_ticks.bi5";
    let json = "/v1/ticks/EUR-USD/2026/7/13/12";
    let full_bi5 = encode_bi5(&ticks);
    let full_json = encode_json(JETTA_HOUR, 5, &ticks);

    sim.fail_next(
        "EURUSD",
        JETTA_HOUR,
        [Fault::Status(500), Fault::Status(404)],
    );
    let (status, headers, body) = get(&sim, bi5).await;
    assert_eq!(
        (status, &body[..]),
        (500, &b"500 Internal Server Error\n"[..])
    );
    assert!(headers.get("retry-after").is_none());
    assert_eq!(get(&sim, json).await.0, 404);

    sim.fail_next(
        "EURUSD",
        JETTA_HOUR,
        [Fault::RetryAfter(429, 7), Fault::RetryAfter(503, 30)],
    );
    let (status, headers, _) = get(&sim, bi5).await;
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap()),
        (429, "7")
    );
    let (status, headers, _) = get(&sim, json).await;
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap()),
        (503, "30")
    );

    sim.fail_next("EURUSD", JETTA_HOUR, [Fault::Empty, Fault::Empty]);
    let (status, _, body) = get(&sim, bi5).await;
    assert_eq!((status, body.len()), (200, 0));
    let (status, _, body) = get(&sim, json).await;
    assert_eq!(status, 200);
    assert_eq!(&body[..], encode_json(JETTA_HOUR, 5, &[]).as_bytes());

    sim.fail_next("EURUSD", JETTA_HOUR, [Fault::Html, Fault::Html]);
    for path in [bi5, json] {
        let (status, headers, body) = get(&sim, path).await;
        assert_eq!(status, 200);
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.contains("<title>Attention Required! | Cloudflare</title>"));
        assert_ne!(&body[..3], &[0x5d, 0x00, 0x00]);
    }

    let garbage = Bytes::from_static(b"Error in data stream\x00\xff");
    sim.fail_next(
        "EURUSD",
        JETTA_HOUR,
        [
            Fault::Garbage(garbage.clone()),
            Fault::Garbage(garbage.clone()),
        ],
    );
    for path in [bi5, json] {
        let (status, _, body) = get(&sim, path).await;
        assert_eq!((status, &body), (200, &garbage));
    }

    sim.fail_next("EURUSD", JETTA_HOUR, [Fault::Truncated, Fault::Truncated]);
    let (status, _, body) = get(&sim, bi5).await;
    assert_eq!((status, &body[..]), (200, &full_bi5[..full_bi5.len() / 2]));
    let (status, _, body) = get(&sim, json).await;
    assert_eq!(
        (status, &body[..]),
        (200, &full_json.as_bytes()[..full_json.len() / 2])
    );
    let mut out = Vec::new();
    assert!(lzma_rs::lzma_decompress(&mut &full_bi5[..full_bi5.len() / 2], &mut out).is_err());

    // Timeout: the request is accepted and never answered; the client gives up.
    sim.fail_next("EURUSD", JETTA_HOUR, [Fault::Timeout]);
    let started = Instant::now();
    let err = client()
        .get(format!("{}{bi5}", sim.base_url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(sim.requests().last().unwrap().status, 0);
    // The held request goes away with its client.
    eventually("the timed-out request to leave", || sim.in_flight() == 0).await;

    // Queues are drained: normal answers again.
    let (status, _, body) = get(&sim, bi5).await;
    assert_eq!((status, &body[..]), (200, &full_bi5[..]));
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            500, 404, 429, 503, 200, 200, 200, 200, 200, 200, 200, 200, 0, 200
        ]
    );
}

#[tokio::test]
async fn fail_next_is_consumed_in_order_across_transports_then_normal() {
    let sim = DukascopySim::start().await.unwrap();
    let ticks = some_ticks();
    sim.publish_ticks("EURUSD", JETTA_HOUR, 5, ticks.clone());
    let other_hour = JETTA_HOUR + HOUR_MS;
    sim.publish_ticks("EURUSD", other_hour, 5, ticks.clone());
    sim.fail_next("EURUSD", JETTA_HOUR, [Fault::Status(503), Fault::Empty]);
    sim.fail_next("EURUSD", JETTA_HOUR, [Fault::Status(500)]);

    // Another hour is not affected.
    assert_eq!(get(&sim, &bi5_path("EURUSD", other_hour)).await.0, 200);
    assert_eq!(get(&sim, &json_path("EURUSD", JETTA_HOUR)).await.0, 503);
    let (status, _, body) = get(&sim, &bi5_path("EURUSD", JETTA_HOUR)).await;
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(get(&sim, &json_path("EURUSD", JETTA_HOUR)).await.0, 500);
    let (status, _, body) = get(&sim, &bi5_path("EURUSD", JETTA_HOUR)).await;
    assert_eq!(status, 200);
    assert_eq!(decode_bi5(&body), ticks);
    let (status, _, body) = get(&sim, &json_path("EURUSD", JETTA_HOUR)).await;
    assert_eq!(status, 200);
    assert_json_matches(JETTA_HOUR, &ticks, &decode_json(&body, 5).1);
    assert_eq!(sim.requests_for("EURUSD", JETTA_HOUR), 5);
    assert_eq!(sim.requests_for("EURUSD", other_hour), 1);

    // fail_all answers everything (and leaves queued faults alone) until cleared.
    sim.fail_next("EURUSD", JETTA_HOUR, [Fault::Status(502)]);
    sim.fail_all(Some(Fault::RetryAfter(503, 1)));
    for path in [
        bi5_path("EURUSD", JETTA_HOUR),
        json_path("EURUSD", other_hour),
        "/datafeed/NOPE/2026/99/13/12h_ticks.bi5".to_owned(),
    ] {
        let (status, headers, _) = get(&sim, &path).await;
        assert_eq!(
            (status, headers["retry-after"].to_str().unwrap()),
            (503, "1")
        );
    }
    sim.fail_all(None);
    assert_eq!(get(&sim, &bi5_path("EURUSD", JETTA_HOUR)).await.0, 502);
    assert_eq!(get(&sim, &bi5_path("EURUSD", JETTA_HOUR)).await.0, 200);

    sim.reset_stats();
    assert!(sim.requests().is_empty());
    assert_eq!(sim.requests_for("EURUSD", JETTA_HOUR), 0);
}

#[tokio::test]
async fn max_concurrent_turns_extra_requests_away_with_503() {
    let sim = DukascopySim::start().await.unwrap();
    sim.publish_ticks("EURUSD", JETTA_HOUR, 5, some_ticks());
    sim.set_latency(Duration::from_millis(800));

    // Unlimited: all parallel requests are answered, and seen at once.
    let fire = |n: usize| {
        let url = format!("{}{}", sim.base_url(), bi5_path("EURUSD", JETTA_HOUR));
        let client = client();
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let request = client.get(&url).send();
                tokio::spawn(async move { request.await.unwrap().status().as_u16() })
            })
            .collect();
        async move {
            let mut statuses = Vec::new();
            for t in tasks {
                statuses.push(t.await.unwrap());
            }
            statuses
        }
    };
    let statuses = fire(4).await;
    assert_eq!(statuses, [200; 4]);
    assert_eq!(sim.max_in_flight(), 4);

    sim.reset_stats();
    assert_eq!(sim.max_in_flight(), 0);
    sim.set_max_concurrent(Some(2));
    let statuses = fire(8).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let throttled = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(ok + throttled, 8, "{statuses:?}");
    assert!((1..=7).contains(&throttled), "{statuses:?}");
    assert!(sim.max_in_flight() > 2);
    let recorded: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(recorded.iter().filter(|s| **s == 503).count(), throttled);

    // Back to unlimited.
    sim.set_max_concurrent(None);
    sim.set_latency(Duration::ZERO);
    assert_eq!(fire(3).await, [200; 3]);
}

#[tokio::test]
async fn last_handle_dropped_stops_the_server_and_releases_held_requests() {
    let sim = DukascopySim::start().await.unwrap();
    sim.publish_ticks("EURUSD", JETTA_HOUR, 5, some_ticks());
    let url = format!("{}{}", sim.base_url(), bi5_path("EURUSD", JETTA_HOUR));

    let clone = sim.clone();
    drop(clone);
    assert_eq!(get(&sim, &bi5_path("EURUSD", JETTA_HOUR)).await.0, 200);

    // A request held by a Timeout fault is released (503 or a closed connection) at shutdown.
    sim.fail_all(Some(Fault::Timeout));
    let held = tokio::spawn({
        let url = url.clone();
        async move { client().get(&url).send().await.map(|r| r.status().as_u16()) }
    });
    eventually("the held request to arrive", || sim.in_flight() == 1).await;
    drop(sim);
    let outcome = tokio::time::timeout(DEADLINE, held).await.unwrap().unwrap();
    assert!(matches!(outcome, Ok(503) | Err(_)), "{outcome:?}");

    // Nothing is listening any more.
    let start = Instant::now();
    loop {
        let attempt = client()
            .get(&url)
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if attempt.is_err() {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "server still answering");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn shutdown_stops_every_handle() {
    let sim = DukascopySim::start().await.unwrap();
    let other = sim.clone();
    let url = format!(
        "{}/datafeed/EURUSD/2026/06/13/12h_ticks.bi5",
        sim.base_url()
    );
    assert_eq!(
        get(&other, "/datafeed/EURUSD/2026/06/13/12h_ticks.bi5")
            .await
            .0,
        404
    );
    sim.shutdown();
    let start = Instant::now();
    while client().get(&url).send().await.is_ok() {
        assert!(start.elapsed() < DEADLINE, "server still answering");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn generator_is_deterministic_and_well_formed() {
    for (sym, scale, base) in [
        ("EURUSD", 5, 114_277),
        ("USDJPY", 3, 157_123),
        ("BTCUSD", 1, 249_215),
    ] {
        let a = generate_hour(sym, JETTA_HOUR, scale, base, 99, 2_000);
        assert_eq!(a, generate_hour(sym, JETTA_HOUR, scale, base, 99, 2_000));
        assert_ne!(
            a,
            generate_hour(sym, JETTA_HOUR + HOUR_MS, scale, base, 99, 2_000)
        );
        assert!((1_600..=2_400).contains(&a.len()), "{}", a.len());
        assert!(a.iter().all(|t| t.ask_points >= t.bid_points));
        assert!(a.iter().all(|t| t.ms_in_hour < 3_600_000));
        assert!(a.windows(2).all(|w| w[0].ms_in_hour <= w[1].ms_in_hour));
        assert!(a.iter().all(|t| t.ask_volume >= 0.0 && t.bid_volume >= 0.0));
        // A walk near the base, not a drift to nowhere.
        let max_dev = a
            .iter()
            .map(|t| (i64::from(t.bid_points) - i64::from(base)).abs())
            .max()
            .unwrap();
        assert!(max_dev < 2_000, "{max_dev}");
    }

    // Several hours with a weekend gap, continuing the walk.
    let friday_20h = 1_783_713_600_000; // 2026-07-10 20:00 UTC, a Friday
    let weekend = |h: i64| {
        // Closed from Friday 21:00 to Sunday 21:00 UTC.
        let from = friday_20h + HOUR_MS;
        (from..from + 48 * HOUR_MS).contains(&h)
    };
    let hours = generate_hours("EURUSD", friday_20h, 52, 5, 114_277, 5, 200, weekend);
    assert_eq!(hours.len(), 52);
    for (i, (hour, ticks)) in hours.iter().enumerate() {
        assert_eq!(*hour, friday_20h + i as i64 * HOUR_MS);
        assert_eq!(ticks.is_empty(), weekend(*hour), "hour {i}");
    }
    assert_eq!(
        hours,
        generate_hours("EURUSD", friday_20h, 52, 5, 114_277, 5, 200, weekend)
    );
    assert_eq!(
        hours[0].1,
        generate_hour("EURUSD", friday_20h, 5, 114_277, 5, 200)
    );
}
