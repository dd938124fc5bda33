//! End to end: the five services as separate processes, the real Pulsar and PostgreSQL, the
//! venue simulators with a live market. Symbols are added with `tickctl`; the database then holds
//! exactly what the simulators sent (Kraken trades and tickers, OANDA prices, a backfilled
//! Dukascopy day) with candles; the kraken-ingester goes from one replica to three and back to
//! one under load, and no symbol stays unserved, no row is duplicated, and every trade or quote
//! that did not arrive lies in a gap the system recorded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test code"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use tickflow_calendar::{ForexCalendar, HourKind};
use tickflow_e2e::{Stack, StackConfig, run_id};
use tickflow_pulsar::{Namespace, TopicName};
use tickflow_schema::{Source, Symbol, TickKind, UnixNanos};
use tickflow_testkit::process::value;
use tokio_util::sync::CancellationToken;
use venue_sim::dukascopy::DukascopySim;
use venue_sim::kraken::KrakenSim;
use venue_sim::market::{self, MarketConfig, Sent, history_instrument};
use venue_sim::oanda::OandaSim;

const KRAKEN_SYMBOLS: usize = 12;
const HOUR_MS: i64 = 3_600_000;
const SUBSCRIBED: &str = "kraken_ingester_symbols_subscribed";

/// Polls `f` every 100 ms until it is true; fails with `what` after `limit`.
async fn until<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn nanos(rfc3339: &str) -> i64 {
    UnixNanos::parse_rfc3339(rfc3339).unwrap().0
}

/// The latest UTC day, at least two days back, on which the forex market is open every hour.
fn open_day() -> NaiveDate {
    let calendar = ForexCalendar::standard();
    let mut day = Utc::now().date_naive() - chrono::Days::new(2);
    loop {
        let start = day
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        let open = (0..24)
            .all(|h| calendar.hour(UnixNanos((start + h * HOUR_MS) * 1_000_000)) == HourKind::Open);
        if open {
            return day;
        }
        day = day.pred_opt().unwrap();
    }
}

/// Rows of `sql` (`time, time_ns, text columns…` with `$1` source and `$2` symbol) as (venue time
/// in ns, text columns).
async fn rows(stack: &Stack, sql: &str, source: &str, symbol: &str) -> Vec<(i64, Vec<String>)> {
    use sqlx::Row as _;
    sqlx::query(sql)
        .bind(source)
        .bind(symbol)
        .fetch_all(&stack.db)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|r| {
            // `time` is the venue time in µs; `time_ns` the same instant in ns since the epoch.
            let ns: i64 = r.get(1);
            let cols = (2..r.len()).map(|i| r.get::<String, _>(i)).collect();
            (ns, cols)
        })
        .collect()
}

/// The recorded gaps of `(source, symbol, kind)`: (from, to) in ns, and the detail.
async fn gaps(stack: &Stack, source: &str, symbol: &str, kind: &str) -> Vec<(i64, i64, String)> {
    sqlx::query_as::<_, (DateTime<Utc>, DateTime<Utc>, String)>(
        "SELECT from_time, to_time, coalesce(detail, '') FROM gaps \
         WHERE source = $1 AND symbol = $2 AND kind = $3",
    )
    .bind(source)
    .bind(symbol)
    .bind(kind)
    .fetch_all(&stack.db)
    .await
    .unwrap()
    .into_iter()
    .map(|(f, t, d)| {
        (
            f.timestamp_nanos_opt().unwrap(),
            t.timestamp_nanos_opt().unwrap(),
            d,
        )
    })
    .collect()
}

/// What the trade rows of `symbol` must be, given what was sent: each stored row equals a sent
/// trade, no key twice, and every sent trade not stored lies inside a recorded gap. Returns how
/// many were missing.
async fn check_trades(stack: &Stack, sent: &Sent, symbol: &str) -> usize {
    let stored = rows(
        stack,
        "SELECT time, time_ns, trade_id::text, price::text, size::text FROM trades \
         WHERE source = $1 AND symbol = $2 ORDER BY trade_id",
        "kraken",
        symbol,
    )
    .await;
    let sent = sent.kraken_trades(symbol);
    let by_id: BTreeMap<String, &venue_sim::kraken::SimTrade> =
        sent.iter().map(|t| (t.trade_id.to_string(), t)).collect();
    let mut seen = BTreeSet::new();
    for (ns, cols) in &stored {
        assert!(
            seen.insert(cols[0].clone()),
            "{symbol}: trade {} twice",
            cols[0]
        );
        let t = by_id
            .get(&cols[0])
            .unwrap_or_else(|| panic!("{symbol}: trade {} was never sent", cols[0]));
        assert_eq!(
            (*ns / 1_000, cols[1].as_str(), cols[2].as_str()),
            (
                nanos(&t.timestamp) / 1_000,
                t.price.as_str(),
                t.qty.as_str()
            ),
            "{symbol}: trade {} differs from what was sent",
            cols[0]
        );
    }
    let recorded = gaps(stack, "kraken", symbol, "trade").await;
    let missing: Vec<_> = sent
        .iter()
        .filter(|t| !seen.contains(&t.trade_id.to_string()))
        .collect();
    for t in &missing {
        let at = nanos(&t.timestamp);
        assert!(
            recorded.iter().any(|(f, to, _)| *f <= at && at <= *to),
            "{symbol}: trade {} at {} is neither stored nor inside a recorded gap ({recorded:?})",
            t.trade_id,
            t.timestamp
        );
    }
    missing.len()
}

/// The same for the Kraken tickers of `symbol` (stored as quotes).
async fn check_tickers(stack: &Stack, sent: &Sent, symbol: &str) -> usize {
    let stored = rows(
        stack,
        "SELECT time, time_ns, bid::text, ask::text, bid_size::text, ask_size::text FROM quotes \
         WHERE source = $1 AND symbol = $2 ORDER BY time, time_ns, sequence",
        "kraken",
        symbol,
    )
    .await;
    let sent = sent.kraken_tickers(symbol);
    let mut expected: BTreeMap<(i64, Vec<String>), usize> = BTreeMap::new();
    for t in &sent {
        let key = (
            nanos(t.timestamp.as_deref().unwrap()) / 1_000,
            vec![
                t.bid.clone(),
                t.ask.clone(),
                t.bid_qty.clone(),
                t.ask_qty.clone(),
            ],
        );
        *expected.entry(key).or_default() += 1;
    }
    for (ns, cols) in &stored {
        let key = (ns / 1_000, cols.clone());
        let left = expected
            .get_mut(&key)
            .unwrap_or_else(|| panic!("{symbol}: quote {key:?} was not sent (or is stored twice)"));
        assert!(*left > 0, "{symbol}: quote {key:?} stored twice");
        *left -= 1;
    }
    let recorded = gaps(stack, "kraken", symbol, "quote").await;
    let mut missing = 0;
    for ((us, cols), left) in expected {
        if left == 0 {
            continue;
        }
        missing += left;
        let at = us * 1_000;
        assert!(
            recorded
                .iter()
                .any(|(f, to, _)| *f <= at + 999 && at <= *to),
            "{symbol}: ticker {cols:?} at {us} µs is neither stored nor inside a recorded gap \
             ({recorded:?}); {} of its {} tickers stored",
            stored.len(),
            sent.len()
        );
    }
    missing
}

/// Each replica's subscribed-symbol gauge.
async fn subscribed(stack: &Stack) -> Vec<f64> {
    let mut out = Vec::new();
    for r in &stack.kraken {
        out.push(value(&r.metrics().await, SUBSCRIBED));
    }
    out
}

/// The newest stored trade id of each symbol.
async fn newest(stack: &Stack, symbols: &[String]) -> Vec<i64> {
    let mut out = Vec::new();
    for s in symbols {
        out.push(
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT max(trade_id::bigint) FROM trades WHERE source = 'kraken' AND symbol = $1",
            )
            .bind(s)
            .fetch_one(&stack.db)
            .await
            .unwrap()
            .unwrap_or(0),
        );
    }
    out
}

/// Every symbol gets new trades stored after this call (no symbol unserved).
async fn every_symbol_served(stack: &Stack, sent: &Sent, symbols: &[String], what: &str) {
    let before = newest(stack, symbols).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = newest(stack, symbols).await;
        if now.iter().zip(&before).all(|(n, b)| n > b) {
            return;
        }
        if Instant::now() > deadline {
            let stuck: Vec<String> = symbols
                .iter()
                .zip(now.iter().zip(&before))
                .filter(|(_, (n, b))| n <= b)
                .map(|(s, (n, _))| {
                    let last = sent.kraken_trades(s).last().map_or(0, |t| t.trade_id);
                    format!("{s}: stored up to {n}, sent up to {last}")
                })
                .collect();
            panic!(
                "not within 60 s: {what}; stuck: {stuck:?}; replicas: {:?}",
                subscribed(stack).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_pipeline_stores_what_the_venues_sent_through_scaling() {
    let run = run_id().to_ascii_uppercase();
    let kraken_sim = Arc::new(KrakenSim::start().await.unwrap());
    let oanda_sim = Arc::new(OandaSim::start().await.unwrap());
    let dukascopy_sim = DukascopySim::start().await.unwrap();

    // A backfilled day of EUR/USD: the sim serves every hour from that day to the current one.
    let day = open_day();
    let day_ms = day
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    let now_ms = Utc::now().timestamp_millis();
    let hours = usize::try_from((now_ms - day_ms) / HOUR_MS).unwrap();
    let eurusd = history_instrument("EUR/USD").unwrap();
    let history = market::publish_history(&dukascopy_sim, eurusd, day_ms, hours, 7, 120);

    let kraken_symbols: Vec<String> = (0..KRAKEN_SYMBOLS)
        .map(|i| format!("E{run}K{i:02}/USD"))
        .collect();
    let fx_symbol = format!("E{run}FX/USD");
    let fx_instrument = format!("E{run}FX_USD");
    let prefix = format!("e{}", run.to_ascii_lowercase());
    let eur_topic = TopicName::data(
        Namespace::Historical,
        Source::Dukascopy,
        &Symbol::parse("EUR/USD").unwrap(),
        TickKind::Quote,
    )
    .unwrap();
    let mut stack = Stack::start(StackConfig {
        kraken_url: kraken_sim.url(),
        oanda_url: oanda_sim.url(),
        dukascopy_url: dukascopy_sim.base_url(),
        sink_pattern: format!(
            r"persistent://market-data/(realtime/(kraken|oanda)\.{prefix}.*|historical/dukascopy\.eur-usd\.quote)"
        ),
        sink_skip_backlog: vec![eur_topic],
        kraken_replicas: 1,
        log: "warn".into(),
    })
    .await;

    // The market: steady load on every subscribed symbol, every message recorded.
    let stop = CancellationToken::new();
    let sent = Sent::recording();
    let cfg = MarketConfig {
        seed: 11,
        rate: 40.0,
        bursts: true,
        forex_hours: false,
        ..MarketConfig::default()
    };
    let kraken_task = tokio::spawn(market::run_kraken(
        Arc::clone(&kraken_sim),
        cfg.clone(),
        Arc::clone(&sent),
        stop.clone(),
    ));
    let oanda_task = tokio::spawn(market::run_oanda(
        Arc::clone(&oanda_sim),
        cfg,
        Arc::clone(&sent),
        stop.clone(),
    ));

    // A user adds the symbols.
    for s in &kraken_symbols {
        stack
            .tickctl_ok(&["symbols", "add", s, "--source", "kraken"])
            .await;
    }
    stack
        .tickctl_ok(&["symbols", "add", &fx_symbol, "--source", "oanda"])
        .await;
    let added = stack
        .tickctl_ok(&[
            "symbols",
            "add",
            "EUR/USD",
            "--source",
            "dukascopy",
            "--since",
            &day.to_string(),
        ])
        .await;
    assert!(added.contains("EUR/USD"), "{added}");

    // Within seconds every symbol has rows.
    let added_at = Instant::now();
    until(
        Duration::from_secs(30),
        "trades of every Kraken symbol stored",
        || async {
            stack
                .scalar("SELECT count(DISTINCT symbol)::bigint FROM trades WHERE source = 'kraken'")
                .await
                == KRAKEN_SYMBOLS as i64
        },
    )
    .await;
    until(Duration::from_secs(30), "OANDA quotes stored", || async {
        stack
            .scalar("SELECT count(*)::bigint FROM quotes WHERE source = 'oanda'")
            .await
            > 0
    })
    .await;
    println!("every live symbol stored within {:?}", added_at.elapsed());
    let listed = stack.tickctl_ok(&["symbols", "list"]).await;
    assert!(listed.contains(&kraken_symbols[0]), "{listed}");

    // One replica → three: the symbols spread, all of them still served.
    stack.add_kraken_replica().await;
    stack.add_kraken_replica().await;
    // Rendezvous hashing may leave a replica without symbols (12 symbols, 3 replicas: rarely),
    // so the spread is "the first replica gave some away and every symbol is subscribed once".
    until(
        Duration::from_secs(60),
        "symbols spread over three replicas",
        || async {
            let s = subscribed(&stack).await;
            s[0] < KRAKEN_SYMBOLS as f64 && s.iter().sum::<f64>() == KRAKEN_SYMBOLS as f64
        },
    )
    .await;
    every_symbol_served(
        &stack,
        &sent,
        &kraken_symbols,
        "every symbol served by three replicas",
    )
    .await;

    // Three → one: one replica dies (SIGKILL), one is scaled down (SIGTERM). The one that dies is
    // the newer replica holding more symbols; which symbols it holds is what the control plane says.
    let per_replica = subscribed(&stack).await;
    let third = stack.kraken.pop().unwrap();
    let second = stack.kraken.pop().unwrap();
    let (died, graceful) = if per_replica[1] >= per_replica[2] {
        (second, third)
    } else {
        (third, second)
    };
    let died_pid = died.pid();
    let owned = stack.tickctl_ok(&["symbols", "list"]).await;
    let died_owned: Vec<String> = owned
        .lines()
        .filter(|l| l.contains(&format!(" kraken-{died_pid}-")))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(
        !died_owned.is_empty(),
        "the replica to kill owns no symbol:\n{owned}"
    );
    let died_at = UnixNanos::now().0;
    drop(died);
    assert!(
        graceful.terminate(Duration::from_secs(15)).await,
        "SIGTERM did not stop the replica"
    );
    until(
        Duration::from_secs(60),
        "the last replica serves every symbol",
        || async { subscribed(&stack).await == vec![KRAKEN_SYMBOLS as f64] },
    )
    .await;
    every_symbol_served(
        &stack,
        &sent,
        &kraken_symbols,
        "every symbol served by one replica again",
    )
    .await;

    // The market stops; everything sent reaches the database.
    stop.cancel();
    kraken_task.await.unwrap();
    oanda_task.await.unwrap();
    let last_ids: Vec<i64> = kraken_symbols
        .iter()
        .map(|s| {
            sent.kraken_trades(s)
                .last()
                .map_or(0, |t| t.trade_id as i64)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = newest(&stack, &kraken_symbols).await;
        if stored == last_ids {
            break;
        }
        if Instant::now() > deadline {
            let mut behind = Vec::new();
            for (i, s) in kraken_symbols.iter().enumerate() {
                if stored[i] != last_ids[i] {
                    behind.push(format!(
                        "{s}: stored up to {}, sent up to {}; gaps {:?}",
                        stored[i],
                        last_ids[i],
                        gaps(&stack, "kraken", s, "trade").await
                    ));
                }
            }
            panic!(
                "not within 60 s: the last trade of every symbol stored: {behind:#?}\nsymbols:\n{}",
                stack.tickctl_ok(&["symbols", "list"]).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fx_sent = sent.oanda_prices(&fx_instrument);
    until(
        Duration::from_secs(60),
        "every OANDA price stored",
        || async {
            stack
                .scalar("SELECT count(*)::bigint FROM quotes WHERE source = 'oanda'")
                .await
                == fx_sent.len() as i64
        },
    )
    .await;

    // Trades and tickers: exact, no duplicate, anything missing inside a recorded gap.
    let mut missing_trades = 0;
    let mut missing_quotes = 0;
    for s in &kraken_symbols {
        missing_trades += check_trades(&stack, &sent, s).await;
        missing_quotes += check_tickers(&stack, &sent, s).await;
    }
    let total: usize = kraken_symbols
        .iter()
        .map(|s| sent.kraken_trades(s).len())
        .sum();
    println!(
        "{total} trades sent, {missing_trades} inside recorded gaps; {missing_quotes} tickers in gaps"
    );
    // Where the replica died, a gap: every symbol it owned has a handover gap from then on (naming
    // it, or the scaled-down replica if that one held the symbol for a moment before it left too).
    for symbol in &died_owned {
        let handovers = sqlx::query_scalar::<_, i64>(
            "SELECT count(*)::bigint FROM gaps WHERE source = 'kraken' AND symbol = $1 \
             AND kind = 'trade' AND reason = 'handover' AND to_time >= to_timestamp($2::float8 / 1e9)",
        )
        .bind(symbol)
        .bind(died_at as f64)
        .fetch_one(&stack.db)
        .await
        .unwrap();
        assert!(
            handovers > 0,
            "{symbol}, owned by the replica that died, has no handover gap: {:?}",
            gaps(&stack, "kraken", symbol, "trade").await
        );
    }

    // OANDA: every price, exactly.
    let stored = rows(
        &stack,
        "SELECT time, time_ns, bid::text, ask::text FROM quotes \
         WHERE source = $1 AND symbol = $2 ORDER BY time, time_ns, sequence",
        "oanda",
        &fx_symbol,
    )
    .await;
    let expected: Vec<(i64, Vec<String>)> = fx_sent
        .iter()
        .map(|p| {
            (
                nanos(&p.time),
                vec![p.bids[0].0.clone(), p.asks[0].0.clone()],
            )
        })
        .collect();
    assert_eq!(stored.len(), expected.len());
    assert!(stored == expected, "OANDA quotes differ from what was sent");

    // The backfilled day: every hour complete, every tick exact.
    let job_hours = hours as i64;
    until(Duration::from_secs(120), "the backfill job stored", || async {
        stack
            .scalar(
                "SELECT count(*)::bigint FROM coverage WHERE source = 'dukascopy' \
                 AND symbol = 'EUR/USD' AND status IN ('complete', 'closed')",
            )
            .await
            >= job_hours.min(24)
            && stack
                .scalar(&format!(
                    "SELECT count(*)::bigint FROM coverage WHERE source = 'dukascopy' \
                     AND symbol = 'EUR/USD' AND hour >= to_timestamp({}) AND hour < to_timestamp({}) \
                     AND status = 'complete'",
                    day_ms / 1000,
                    day_ms / 1000 + 86_400
                ))
                .await
                == 24
    })
    .await;
    let day_ticks: Vec<(i64, Vec<String>)> = history
        .iter()
        .filter(|(h, _)| *h < day_ms + 24 * HOUR_MS)
        .flat_map(|(h, ticks)| {
            ticks.iter().map(move |t| {
                (
                    (h + i64::from(t.ms_in_hour)) * 1_000_000,
                    vec![
                        points(t.bid_points, eurusd.scale),
                        points(t.ask_points, eurusd.scale),
                    ],
                )
            })
        })
        .collect();
    until(
        Duration::from_secs(60),
        "every tick of the day stored",
        || async {
            stack
                .scalar(&format!(
                    "SELECT count(*)::bigint FROM quotes WHERE source = 'dukascopy' \
                 AND time >= to_timestamp({}) AND time < to_timestamp({})",
                    day_ms / 1000,
                    day_ms / 1000 + 86_400
                ))
                .await
                == day_ticks.len() as i64
        },
    )
    .await;
    let stored: Vec<(i64, Vec<String>)> = rows(
        &stack,
        &format!(
            "SELECT time, time_ns, bid::text, ask::text FROM quotes \
             WHERE source = $1 AND symbol = $2 AND time >= to_timestamp({}) \
             AND time < to_timestamp({}) ORDER BY time, time_ns, sequence",
            day_ms / 1000,
            day_ms / 1000 + 86_400
        ),
        "dukascopy",
        "EUR/USD",
    )
    .await;
    assert_eq!(stored.len(), day_ticks.len());
    assert!(
        stored == day_ticks,
        "the backfilled day differs from what Dukascopy served"
    );
    println!(
        "backfilled {} ({}): {} ticks exact",
        day,
        day.weekday(),
        day_ticks.len()
    );

    // Candles agree with the rows they summarise.
    let candle_trades = stack
        .scalar("SELECT sum(trades)::bigint FROM trade_candles_1m WHERE source = 'kraken'")
        .await;
    let trades = stack
        .scalar("SELECT count(*)::bigint FROM trades WHERE source = 'kraken'")
        .await;
    assert_eq!(candle_trades, trades);
    let volume_matches = stack
        .scalar(
            "SELECT count(*)::bigint FROM (SELECT symbol, sum(size) AS v FROM trades GROUP BY symbol) t \
             JOIN (SELECT symbol, sum(volume) AS v FROM trade_candles_1m GROUP BY symbol) c USING (symbol) \
             WHERE t.v = c.v",
        )
        .await;
    assert_eq!(volume_matches, KRAKEN_SYMBOLS as i64);
    let day_candles = stack
        .scalar(&format!(
            "SELECT sum(ticks)::bigint FROM quote_candles_1h WHERE source = 'dukascopy' \
             AND bucket >= to_timestamp({}) AND bucket < to_timestamp({})",
            day_ms / 1000,
            day_ms / 1000 + 86_400
        ))
        .await;
    assert_eq!(day_candles, day_ticks.len() as i64);
}

/// `points` at `scale` decimals as a lexeme.
fn points(points: u32, scale: u32) -> String {
    let div = 10_u32.pow(scale);
    format!(
        "{}.{:0width$}",
        points / div,
        points % div,
        width = scale as usize
    )
}
