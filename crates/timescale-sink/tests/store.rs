//! Ticks published to the real Pulsar land in the real PostgreSQL field for field, exactly once,
//! with candles equal to an independent computation from the raw rows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test code"
)]

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use rust_decimal::Decimal;
use tickflow_pulsar::Namespace;
use tickflow_schema::{
    Coverage, CoverageStatus, Gap, GapReason, Side, Source, Tick, TickKind, UnixNanos,
};

const WAIT: Duration = Duration::from_secs(60);
const T0: i64 = 1_700_000_000_123_456_789;

fn ts(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns - ns.rem_euclid(1_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_of_every_tick_lands_once() {
    let env = Env::new().await;
    let (a, b) = (env.symbol(0), env.symbol(1));
    let mut trades_p = env
        .producer(Namespace::Realtime, Source::Kraken, &a, TickKind::Trade)
        .await;
    let mut quotes_p = env
        .producer(Namespace::Realtime, Source::Oanda, &b, TickKind::Quote)
        .await;
    let trades: Vec<Tick> = (0..500).map(|i| trade(&a, i, T0)).collect();
    let quotes: Vec<Tick> = (0..300).map(|i| quote(&b, i, T0)).collect();
    // Redelivery and re-publication must not duplicate: publish the first 100 trades twice.
    env.publish(&mut trades_p, &trades).await;
    env.publish(&mut trades_p, &trades[..100]).await;
    env.publish(&mut quotes_p, &quotes).await;
    let gap = Tick::Gap(Gap {
        source: Source::Kraken,
        symbol: a.clone(),
        kind: TickKind::Trade,
        from: UnixNanos(T0 + 5_000_000_000),
        to: UnixNanos(T0 + 9_000_000_000),
        reason: GapReason::Disconnect,
        detail: "nothing received for 10000 ms".into(),
        detected_at: UnixNanos(T0 + 9_500_000_000),
    });
    env.publish(&mut trades_p, std::slice::from_ref(&gap)).await;
    let mut hist = env
        .producer(
            Namespace::Historical,
            Source::Dukascopy,
            &b,
            TickKind::Quote,
        )
        .await;
    let hour = UnixNanos(1_549_238_400_000_000_000); // 2019-02-04T00:00Z
    let marker = |status, ticks, recorded| {
        Tick::Coverage(Coverage {
            source: Source::Dukascopy,
            symbol: b.clone(),
            kind: TickKind::Quote,
            hour,
            status,
            ticks,
            detail: String::new(),
            recorded_at: UnixNanos(recorded),
        })
    };
    // A refill turns `missing` into `complete`; an older marker arriving late does not undo it.
    env.publish(
        &mut hist,
        &[
            marker(CoverageStatus::Missing, 0, 10),
            marker(CoverageStatus::Complete, 2_513, 20),
            marker(CoverageStatus::Missing, 0, 15),
        ],
    )
    .await;

    let sink = start(env.config()).await;
    env.wait_rows("trades", 500, WAIT).await;
    env.wait_rows("quotes", 300, WAIT).await;
    env.wait_rows("gaps", 1, WAIT).await;
    env.wait_rows("coverage", 1, WAIT).await;

    // Trades, every field.
    type TradeRow = (
        DateTime<Utc>,
        String,
        String,
        String,
        Decimal,
        Decimal,
        String,
        String,
        DateTime<Utc>,
        i64,
        i64,
    );
    let rows: Vec<TradeRow> = sqlx::query_as(
        "SELECT time, source, symbol, venue_symbol, price, size, side, trade_id, received_at, \
         time_ns, received_ns FROM trades ORDER BY time_ns",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    for (row, tick) in rows.iter().zip(&trades) {
        let Tick::Trade(t) = tick else { panic!() };
        assert_eq!(row.0, ts(t.event_time.0));
        assert_eq!(row.1, "kraken");
        assert_eq!(row.2, t.symbol.as_str());
        assert_eq!(row.3, t.venue_symbol.as_str());
        assert_eq!(
            row.4.to_string(),
            t.price.to_string(),
            "price text and scale kept"
        );
        assert_eq!(row.5.to_string(), t.size.to_string());
        assert_eq!(row.6, if t.side == Side::Buy { "buy" } else { "sell" });
        assert_eq!(row.7, t.trade_id.as_str());
        assert_eq!(row.8, ts(t.received_at.0));
        assert_eq!(row.9, t.event_time.0, "nanoseconds kept");
        assert_eq!(row.10, t.received_at.0);
    }

    // Quotes, every field.
    type QuoteRow = (
        String,
        Decimal,
        Decimal,
        Decimal,
        Decimal,
        i64,
        bool,
        i64,
        i64,
    );
    let rows: Vec<QuoteRow> = sqlx::query_as(
        "SELECT venue_symbol, bid, ask, bid_size, ask_size, sequence, indicative, time_ns, \
         received_ns FROM quotes ORDER BY time_ns",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    for (row, tick) in rows.iter().zip(&quotes) {
        let Tick::Quote(q) = tick else { panic!() };
        assert_eq!(row.0, q.venue_symbol.as_str());
        assert_eq!(row.1.to_string(), q.bid.to_string());
        assert_eq!(row.2.to_string(), q.ask.to_string());
        assert_eq!(row.3.to_string(), q.bid_size.to_string());
        assert_eq!(row.4.to_string(), q.ask_size.to_string());
        assert_eq!(row.5, i64::try_from(q.sequence).unwrap());
        assert_eq!(row.6, q.indicative);
        assert_eq!(row.7, q.event_time.0);
        assert_eq!(row.8, q.received_at.0);
    }

    let gap_row: (String, String, DateTime<Utc>, DateTime<Utc>, String, String) =
        sqlx::query_as("SELECT symbol, kind, from_time, to_time, reason, detail FROM gaps")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(gap_row.0, a.as_str());
    assert_eq!(gap_row.1, "trade");
    assert_eq!(gap_row.2, ts(T0 + 5_000_000_000));
    assert_eq!(gap_row.3, ts(T0 + 9_000_000_000));
    assert_eq!(gap_row.4, "disconnect");
    assert_eq!(gap_row.5, "nothing received for 10000 ms");

    let cov: (String, i64, DateTime<Utc>) =
        sqlx::query_as("SELECT status, ticks, hour FROM coverage")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(cov.0, "complete");
    assert_eq!(cov.1, 2_513);
    assert_eq!(cov.2, ts(hour.0));

    // Candles equal an independent computation from the raw rows, for every timeframe.
    for (tf, interval) in timescale_sink::schema::TIMEFRAMES {
        let diff = trade_candle_mismatches(&env.db, tf, interval).await;
        assert_eq!(diff, 0, "trade_candles_{tf} differs from the raw rows");
        let diff: i64 = sqlx::query_scalar(&format!(
            "WITH raw AS (
               SELECT date_bin(interval '{interval}', time, timestamptz 'epoch') AS bucket, source, symbol,
                      (array_agg(bid ORDER BY time_ns, sequence))[1], max(bid), min(bid),
                      (array_agg(bid ORDER BY time_ns DESC, sequence DESC))[1],
                      (array_agg(ask ORDER BY time_ns, sequence))[1], max(ask), min(ask),
                      (array_agg(ask ORDER BY time_ns DESC, sequence DESC))[1], count(*)
               FROM quotes GROUP BY 1, 2, 3)
             SELECT count(*) FROM (
               (SELECT * FROM raw EXCEPT SELECT * FROM quote_candles_{tf})
               UNION ALL
               (SELECT * FROM quote_candles_{tf} EXCEPT SELECT * FROM raw)) d"
        ))
        .fetch_one(&env.db)
        .await
        .unwrap();
        assert_eq!(diff, 0, "quote_candles_{tf} differs from the raw rows");
    }
    let candles: i64 = sqlx::query_scalar("SELECT count(*) FROM trade_candles_1m")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(candles, 11, "500 trades 1.23 s apart span 11 minutes");
    assert!(sink.metric("timescale_sink_rows_duplicate_total").await >= 100.0);
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_and_out_of_order_rows_keep_candles_right() {
    let env = Env::new().await;
    let a = env.symbol(0);
    let mut p = env
        .producer(Namespace::Realtime, Source::Kraken, &a, TickKind::Trade)
        .await;
    let all: Vec<Tick> = (0..400).map(|i| trade(&a, i, T0)).collect();
    // Every other trade first, then the rest in reverse: each minute's open, close, high and low
    // arrive out of order and in different batches.
    let first: Vec<Tick> = all.iter().step_by(2).cloned().collect();
    let mut rest: Vec<Tick> = all.iter().skip(1).step_by(2).cloned().collect();
    rest.reverse();
    let mut cfg = env.config();
    cfg.batch.max_rows = 37;
    let sink = start(cfg).await;
    env.publish(&mut p, &first).await;
    env.wait_rows("trades", 200, WAIT).await;
    env.publish(&mut p, &rest).await;
    env.wait_rows("trades", 400, WAIT).await;
    for (tf, interval) in timescale_sink::schema::TIMEFRAMES {
        let diff = trade_candle_mismatches(&env.db, tf, interval).await;
        assert_eq!(
            diff, 0,
            "trade_candles_{tf} wrong after out-of-order inserts"
        );
    }
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_topic_and_the_good_ones_land() {
    use tickflow_pulsar::{
        ConsumerSpec, InitialPosition, SubscriptionType, TopicName, TopicSelection,
    };
    let env = Env::new().await;
    let a = env.symbol(0);
    // Read the dead-letter topic from now on.
    let mut dlq = env
        .client
        .tick_consumer(ConsumerSpec {
            topics: TopicSelection::Topics(vec![TopicName::dead_letters()]),
            subscription: format!("{}-dlq", env.subscription),
            sub_type: SubscriptionType::Exclusive,
            initial_position: InitialPosition::Latest,
            consumer_name: None,
        })
        .await
        .unwrap();
    let mut good: Vec<Tick> = (0..200).map(|i| trade(&a, i, T0)).collect();
    // The database refuses text with a NUL byte (SQLSTATE 22021): valid protobuf, bad row.
    let Tick::Trade(mut bad) = trade(&a, 1000, T0) else {
        panic!()
    };
    bad.trade_id = "bad\u{0}id".into();
    good.insert(57, Tick::Trade(bad));
    let mut p = env
        .producer(Namespace::Realtime, Source::Kraken, &a, TickKind::Trade)
        .await;
    env.publish(&mut p, &good).await;
    // Not a TickMessage at all, on the same topic, through the raw client.
    let topic = TopicName::data(Namespace::Realtime, Source::Kraken, &a, TickKind::Trade).unwrap();
    let mut raw = env
        .client
        .raw()
        .producer()
        .with_topic(topic.to_string())
        .build()
        .await
        .unwrap();
    raw.send_non_blocking(b"\xff\xff not protobuf".to_vec())
        .await
        .unwrap()
        .await
        .unwrap();

    let sink = start(env.config()).await;
    env.wait_rows("trades", 200, WAIT).await;
    let mut reasons = Vec::new();
    while reasons.len() < 2 {
        let d = tokio::time::timeout(WAIT, dlq.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let props = d.properties();
        assert!(
            props["origin_topic"].ends_with(&topic.to_string()),
            "{props:?}"
        );
        reasons.push(props["reason"].clone());
        dlq.ack(&d).await.unwrap();
    }
    reasons.sort();
    assert!(
        reasons[0].starts_with("rejected by the database"),
        "{reasons:?}"
    );
    assert!(
        reasons[0].contains("22021") || reasons[0].to_lowercase().contains("0x00"),
        "{reasons:?}"
    );
    assert!(reasons[1].starts_with("undecodable"), "{reasons:?}");
    let ids: i64 = sqlx::query_scalar("SELECT count(DISTINCT trade_id) FROM trades")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(ids, 200, "every good trade, once");
    assert_eq!(
        sink.metric("timescale_sink_dead_letters_total{reason=\"rejected\"}")
            .await,
        1.0
    );
    assert_eq!(
        sink.metric("timescale_sink_dead_letters_total{reason=\"undecodable\"}")
            .await,
        1.0
    );
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_start_together_share_the_load_and_pick_up_new_topics() {
    let env = Env::new().await;
    // Three replicas migrate the same empty database at once.
    let (a, b, c) = tokio::join!(
        timescale_sink::Sink::build(env.config()),
        timescale_sink::Sink::build(env.config()),
        timescale_sink::Sink::build(env.config()),
    );
    let shutdown = tickflow_runtime::CancellationToken::new();
    let tasks: Vec<_> = [a.unwrap(), b.unwrap(), c.unwrap()]
        .into_iter()
        .map(|s| tokio::spawn(s.run(shutdown.clone())))
        .collect();
    // Topics that did not exist when the replicas subscribed.
    let mut expected = 0;
    for s in 0..6 {
        let symbol = env.symbol(s);
        let mut p = env
            .producer(
                Namespace::Realtime,
                Source::Kraken,
                &symbol,
                TickKind::Trade,
            )
            .await;
        let ticks: Vec<Tick> = (0..300).map(|i| trade(&symbol, i, T0)).collect();
        env.publish(&mut p, &ticks).await;
        expected += 300;
    }
    env.wait_rows("trades", expected, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rows, keys): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT (symbol, trade_id)) FROM trades")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!((rows, keys), (expected, expected));
    let migrations: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(migrations, 1, "migrated once");
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}
