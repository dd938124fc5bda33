//! Candles against Dukascopy's own: the ticks of 2019-02-04 00h and 13h (EUR/USD), stored by the
//! sink, give the same BID one-minute bars as Dukascopy's `BID_candles_min_1.bi5` for that day.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test code"
)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use dukascopy_backfill::{bi5, candles, ticks};
use rust_decimal::Decimal;
use tickflow_pulsar::Namespace;
use tickflow_schema::{Source, Symbol, Tick, TickKind, UnixNanos};

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/dukascopy")
        .join(path);
    let bytes = std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (../shared beside the repository?)", p.display()));
    bi5::decompress(&bytes, bi5::DEFAULT_MAX_OUTPUT).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_candles_equal_dukascopys_own_minute_bars() {
    let env = Env::new().await;
    let eurusd = Symbol::parse("EUR/USD").unwrap();
    // Stored under this test's own symbol, so that runs do not share rows.
    let symbol = env.symbol(0);
    let day = UnixNanos::parse_rfc3339("2019-02-04T00:00:00Z").unwrap();
    let mut p = env
        .producer(
            Namespace::Historical,
            Source::Dukascopy,
            &symbol,
            TickKind::Quote,
        )
        .await;
    // The afternoon first, then the night: the sink sees the day out of order.
    for hour in [13i64, 0] {
        let records =
            bi5::tick_records(&fixture(&format!("EURUSD/2019/01/04/{hour:02}h_ticks.bi5")))
                .unwrap();
        let hour_start = UnixNanos(day.0 + hour * 3_600_000_000_000);
        let quotes =
            ticks::quotes(&eurusd, "EURUSD", hour_start, &records, UnixNanos::now()).unwrap();
        let ticks: Vec<Tick> = quotes
            .into_iter()
            .map(|mut q| {
                q.symbol = symbol.clone();
                Tick::Quote(q)
            })
            .collect();
        env.publish(&mut p, &ticks).await;
    }
    let sink = start(env.config()).await;
    let expected = candles::bid_minute_candles(
        &eurusd,
        day,
        &bi5::candle_records(&fixture("EURUSD/2019/01/04/BID_candles_min_1.bi5")).unwrap(),
    )
    .unwrap();
    let want: Vec<_> = expected[..60]
        .iter()
        .chain(&expected[13 * 60..14 * 60])
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let got: Vec<(DateTime<Utc>, Decimal, Decimal, Decimal, Decimal)> = loop {
        let rows = sqlx::query_as(
            "SELECT bucket, bid_open, bid_high, bid_low, bid_close FROM quote_candles_1m ORDER BY bucket",
        )
        .fetch_all(&env.db)
        .await
        .unwrap_or_default();
        let ticks: i64 =
            sqlx::query_scalar("SELECT coalesce(sum(ticks), 0)::bigint FROM quote_candles_1m")
                .fetch_one(&env.db)
                .await
                .unwrap_or(0);
        let stored = env.count("quotes").await;
        if rows.len() == 120 && stored > 0 && ticks == stored {
            break rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} candles after 60 s",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (row, bar) in got.iter().zip(want) {
        assert_eq!(row.0, DateTime::from_timestamp_nanos(bar.start.0));
        assert_eq!(
            (
                row.1.to_string(),
                row.2.to_string(),
                row.3.to_string(),
                row.4.to_string()
            ),
            (
                bar.open.to_string(),
                bar.high.to_string(),
                bar.low.to_string(),
                bar.close.to_string()
            ),
            "minute {}",
            bar.start
        );
    }
    sink.stop().await;
}
