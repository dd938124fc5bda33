//! A live market behind the simulators: what keeps the venues busy in `make demo` (the `venue-sim`
//! binary) and in the end-to-end tests and benchmarks.
//!
//! * **Kraken** ([`run_kraken`]): every symbol some client has subscribed to gets trades at
//!   [`MarketConfig::rate`] a second on average, each batch one `trade` frame followed by a
//!   `ticker` (the best bid and ask around the walk).
//! * **OANDA** ([`run_oanda`]): every instrument some stream asks for gets prices at the same rate;
//!   with [`MarketConfig::forex_hours`] nothing is sent while the forex week is closed (the stream
//!   carries heartbeats only, as OANDA's does at the weekend).
//! * **Dukascopy** ([`publish_history`], [`run_history`]): generated tick hours for a few instruments,
//!   closed forex hours empty, each new hour published as it ends.
//!
//! Prices are random walks in integer points seeded by `(seed, symbol)`: the same seed gives the same
//! prices and sizes in the same order. Times are the wall clock, so the venue event time of a tick is
//! when it was sent (what end-to-end latency is measured from). With [`MarketConfig::bursts`] every
//! symbol has a burst at [`BURST_FACTOR`] times the rate for [`BURST_LEN`] in every [`BURST_PERIOD`],
//! at a phase of its own.
//!
//! What was sent is kept in a [`Sent`]: counts always, every message too when made with
//! [`Sent::recording`] (tests compare the database with it).

#![allow(
    clippy::float_arithmetic,
    reason = "message rates and burst factors of a simulated market; prices are integers"
)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tickflow_calendar::{ForexCalendar, HourKind};
use tickflow_schema::UnixNanos;
use tokio_util::sync::CancellationToken;

use crate::dukascopy::{DukascopySim, SimTick, generate_hours};
use crate::kraken::{KrakenSim, SimTicker, SimTrade};
use crate::oanda::{OandaSim, SimPrice};
use crate::util::{SplitMix64, decimal, fnv1a, lock};

/// How often each symbol bursts.
pub const BURST_PERIOD: Duration = Duration::from_secs(30);
/// How long a burst lasts.
pub const BURST_LEN: Duration = Duration::from_secs(2);
/// The rate during a burst, as a multiple of [`MarketConfig::rate`].
pub const BURST_FACTOR: f64 = 8.0;
/// At most this many messages per symbol in one step, so a stalled client cannot make the
/// catch-up batch unbounded.
const MAX_BATCH: usize = 5_000;
const HOUR_MS: i64 = 3_600_000;

/// How the live market behaves.
#[derive(Debug, Clone)]
pub struct MarketConfig {
    /// Seeds every walk.
    pub seed: u64,
    /// Messages a second per symbol on average, outside bursts.
    pub rate: f64,
    /// Whether symbols burst (see the module docs).
    pub bursts: bool,
    /// OANDA sends no prices while the forex week is closed.
    pub forex_hours: bool,
    /// How often the market moves (messages due are sent in one batch per symbol per step).
    pub step: Duration,
    /// The first Kraken trade id of every symbol (a second run over the same symbols starts past
    /// the first run's ids, so its trades are new rows and not duplicates).
    pub first_trade_id: u64,
}

impl Default for MarketConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            rate: 5.0,
            bursts: true,
            forex_hours: true,
            step: Duration::from_millis(10),
            first_trade_id: 1,
        }
    }
}

/// What the simulators sent, by venue and symbol.
#[derive(Debug, Default)]
pub struct Sent {
    record: bool,
    inner: Mutex<SentInner>,
}

#[derive(Debug, Default)]
struct SentInner {
    kraken_trades: BTreeMap<String, Vec<SimTrade>>,
    kraken_tickers: BTreeMap<String, Vec<SimTicker>>,
    oanda_prices: BTreeMap<String, Vec<SimPrice>>,
    counts: BTreeMap<(&'static str, String), u64>,
}

impl Sent {
    /// Keeps counts only.
    pub fn counting() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Keeps every message too.
    pub fn recording() -> Arc<Self> {
        Arc::new(Self {
            record: true,
            ..Self::default()
        })
    }

    /// The Kraken trades sent for `symbol` (recording only), in order.
    pub fn kraken_trades(&self, symbol: &str) -> Vec<SimTrade> {
        lock(&self.inner)
            .kraken_trades
            .get(symbol)
            .cloned()
            .unwrap_or_default()
    }

    /// The Kraken tickers sent for `symbol` (recording only), in order.
    pub fn kraken_tickers(&self, symbol: &str) -> Vec<SimTicker> {
        lock(&self.inner)
            .kraken_tickers
            .get(symbol)
            .cloned()
            .unwrap_or_default()
    }

    /// The OANDA prices sent for `instrument` (`EUR_USD`; recording only), in order.
    pub fn oanda_prices(&self, instrument: &str) -> Vec<SimPrice> {
        lock(&self.inner)
            .oanda_prices
            .get(instrument)
            .cloned()
            .unwrap_or_default()
    }

    /// Every count: (`kraken_trade` | `kraken_ticker` | `oanda_price`, symbol) → messages.
    pub fn counts(&self) -> BTreeMap<(&'static str, String), u64> {
        lock(&self.inner).counts.clone()
    }

    /// All messages of every kind and symbol.
    pub fn total(&self) -> u64 {
        lock(&self.inner).counts.values().sum()
    }

    fn add_trades(&self, symbol: &str, trades: &[SimTrade], ticker: &SimTicker) {
        let mut inner = lock(&self.inner);
        *inner
            .counts
            .entry(("kraken_trade", symbol.to_owned()))
            .or_default() += trades.len() as u64;
        *inner
            .counts
            .entry(("kraken_ticker", symbol.to_owned()))
            .or_default() += 1;
        if self.record {
            inner
                .kraken_trades
                .entry(symbol.to_owned())
                .or_default()
                .extend_from_slice(trades);
            inner
                .kraken_tickers
                .entry(symbol.to_owned())
                .or_default()
                .push(ticker.clone());
        }
    }

    fn add_prices(&self, instrument: &str, prices: &[SimPrice]) {
        let mut inner = lock(&self.inner);
        *inner
            .counts
            .entry(("oanda_price", instrument.to_owned()))
            .or_default() += prices.len() as u64;
        if self.record {
            inner
                .oanda_prices
                .entry(instrument.to_owned())
                .or_default()
                .extend_from_slice(prices);
        }
    }
}

/// The burst multiplier of `symbol` at `elapsed` since the market started.
fn burst_factor(cfg: &MarketConfig, symbol: &str, elapsed: Duration) -> f64 {
    if !cfg.bursts {
        return 1.0;
    }
    let period = BURST_PERIOD.as_millis() as u64;
    let phase = fnv1a(symbol.as_bytes()) % period;
    let at = (elapsed.as_millis() as u64 + phase) % period;
    if at < BURST_LEN.as_millis() as u64 {
        BURST_FACTOR
    } else {
        1.0
    }
}

/// How many messages are due for one symbol, carrying the fraction to the next step.
#[derive(Debug, Default)]
struct Due {
    carry: f64,
}

impl Due {
    fn take(&mut self, rate: f64, dt: Duration) -> usize {
        self.carry += rate * dt.as_secs_f64();
        let n = self.carry.floor().max(0.0);
        self.carry -= n;
        (n as usize).min(MAX_BATCH)
    }
}

/// One Kraken pair's walk: prices in points of `10^-scale`.
#[derive(Debug)]
struct Pair {
    rng: SplitMix64,
    scale: u32,
    mid: i64,
    step: i64,
    next_trade_id: u64,
    first: i64,
    low: i64,
    high: i64,
    /// Traded volume in units of 10^-8.
    volume: i64,
    due: Due,
}

impl Pair {
    fn new(seed: u64, symbol: &str, first_trade_id: u64) -> Self {
        let hash = fnv1a(symbol.as_bytes());
        // (scale, mid in points): BTC in tenths, ETH in cents, anything else around 1..500 at 4 dp.
        let (scale, mid) = match symbol {
            "BTC/USD" => (1, 600_000),
            "ETH/USD" => (2, 300_000),
            "SOL/USD" => (2, 15_000),
            _ => (4, 10_000 * (1 + (hash % 500) as i64)),
        };
        Self {
            rng: SplitMix64(seed ^ hash),
            scale,
            mid,
            step: (mid / 20_000).max(2),
            next_trade_id: first_trade_id,
            first: mid,
            low: mid,
            high: mid,
            volume: 0,
            due: Due::default(),
        }
    }

    fn price(&self, points: i64) -> String {
        decimal(points, self.scale)
    }

    fn spread(&mut self) -> i64 {
        1 + self.rng.below(2 * self.step as u64)
    }

    fn trades(&mut self, symbol: &str, n: usize, timestamp: &str) -> Vec<SimTrade> {
        (0..n)
            .map(|_| {
                self.mid = (self.mid + self.rng.below(2 * self.step as u64 + 1) - self.step)
                    .max(10 * self.step);
                let half = self.spread() / 2;
                let buy = self.rng.below(2) == 0;
                let price = if buy {
                    self.mid + half
                } else {
                    self.mid - half
                };
                let qty = 1 + self.rng.below(200_000_000);
                self.low = self.low.min(price);
                self.high = self.high.max(price);
                self.volume += qty;
                let id = self.next_trade_id;
                self.next_trade_id += 1;
                SimTrade {
                    symbol: symbol.to_owned(),
                    side: if buy { "buy" } else { "sell" }.into(),
                    price: self.price(price),
                    qty: decimal(qty, 8),
                    ord_type: if self.rng.below(4) == 0 {
                        "market"
                    } else {
                        "limit"
                    }
                    .into(),
                    trade_id: id,
                    timestamp: timestamp.to_owned(),
                }
            })
            .collect()
    }

    fn ticker(&mut self, symbol: &str, timestamp: &str) -> SimTicker {
        let spread = self.spread();
        let bid = self.mid - spread / 2;
        let ask = bid + spread;
        let change = self.mid - self.first;
        // Percentage points with two decimals, rounded toward zero.
        let change_pct = change * 10_000 / self.first.max(1);
        let signed = |v: i64, scale: u32| {
            let text = decimal(v.abs(), scale);
            if v < 0 { format!("-{text}") } else { text }
        };
        SimTicker {
            symbol: symbol.to_owned(),
            bid: self.price(bid),
            bid_qty: decimal(1 + self.rng.below(5_000_000_000), 8),
            ask: self.price(ask),
            ask_qty: decimal(1 + self.rng.below(5_000_000_000), 8),
            last: self.price(self.mid),
            volume: decimal(self.volume, 8),
            vwap: self.price((self.low + self.high) / 2),
            low: self.price(self.low),
            high: self.price(self.high),
            change: signed(change, self.scale),
            change_pct: signed(change_pct, 2),
            timestamp: Some(timestamp.to_owned()),
        }
    }
}

/// The market's clock: a tick every [`MarketConfig::step`] (late ticks delay the next), the time
/// since the previous one and since the start.
struct Steps {
    interval: tokio::time::Interval,
    started: Instant,
    last: Instant,
}

impl Steps {
    fn new(step: Duration) -> Self {
        let mut interval = tokio::time::interval(step);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let now = Instant::now();
        Self {
            interval,
            started: now,
            last: now,
        }
    }

    /// Waits for the next step: (time since the previous step, time since the start), or `None`
    /// once `shutdown` is cancelled.
    async fn next(&mut self, shutdown: &CancellationToken) -> Option<(Duration, Duration)> {
        tokio::select! {
            () = shutdown.cancelled() => return None,
            _ = self.interval.tick() => {}
        }
        let now = Instant::now();
        let dt = now - self.last;
        self.last = now;
        Some((dt, now - self.started))
    }
}

/// Drives `sim` until `shutdown`: trades and a ticker for every subscribed symbol, every step.
pub async fn run_kraken(
    sim: Arc<KrakenSim>,
    cfg: MarketConfig,
    sent: Arc<Sent>,
    shutdown: CancellationToken,
) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut steps = Steps::new(cfg.step);
    while let Some((dt, elapsed)) = steps.next(&shutdown).await {
        let symbols: BTreeSet<String> = sim
            .subscribed("trade")
            .into_iter()
            .chain(sim.subscribed("ticker"))
            .collect();
        for symbol in symbols {
            let pair = pairs
                .entry(symbol.clone())
                .or_insert_with(|| Pair::new(cfg.seed, &symbol, cfg.first_trade_id));
            let rate = cfg.rate * burst_factor(&cfg, &symbol, elapsed);
            let n = pair.due.take(rate, dt);
            if n == 0 {
                continue;
            }
            let timestamp = UnixNanos::now().format_rfc3339(6);
            let trades = pair.trades(&symbol, n, &timestamp);
            let quote = pair.ticker(&symbol, &timestamp);
            sent.add_trades(&symbol, &trades, &quote);
            sim.trades(&trades).await;
            sim.ticker(quote).await;
        }
    }
}

/// One OANDA instrument's walk, in units of the last decimal.
#[derive(Debug)]
struct Instrument {
    rng: SplitMix64,
    decimals: u32,
    mid: i64,
    due: Due,
}

impl Instrument {
    fn new(seed: u64, instrument: &str) -> Self {
        let jpy = instrument.ends_with("JPY");
        let mid = match instrument {
            "EUR_USD" => 108_000,
            "GBP_USD" => 127_000,
            "AUD_USD" => 66_000,
            "USD_CHF" => 88_000,
            _ if jpy => 150_000,
            _ => 100_000,
        };
        Self {
            rng: SplitMix64(seed ^ fnv1a(instrument.as_bytes())),
            decimals: if jpy { 3 } else { 5 },
            mid,
            due: Due::default(),
        }
    }

    fn prices(&mut self, instrument: &str, n: usize) -> Vec<SimPrice> {
        let now = UnixNanos::now().0;
        (0..n)
            .map(|i| {
                self.mid = (self.mid + self.rng.below(11) - 5).max(1_000);
                let spread = 10 + self.rng.below(21);
                let bid = self.mid - spread / 2;
                let ask = bid + spread;
                let gap = 1 + self.rng.below(3);
                SimPrice {
                    instrument: instrument.to_owned(),
                    // Distinct, increasing times within a batch, as OANDA's nanosecond stamps are.
                    time: UnixNanos(now + i as i64).format_rfc3339(9),
                    bids: vec![
                        (decimal(bid, self.decimals), 1_000_000),
                        (decimal(bid - gap, self.decimals), 10_000_000),
                    ],
                    asks: vec![
                        (decimal(ask, self.decimals), 1_000_000),
                        (decimal(ask + gap, self.decimals), 10_000_000),
                    ],
                    tradeable: true,
                }
            })
            .collect()
    }
}

/// Drives `sim` until `shutdown`: prices for every instrument some open stream asks for.
pub async fn run_oanda(
    sim: Arc<OandaSim>,
    cfg: MarketConfig,
    sent: Arc<Sent>,
    shutdown: CancellationToken,
) {
    let calendar = ForexCalendar::standard();
    let mut instruments: HashMap<String, Instrument> = HashMap::new();
    let mut steps = Steps::new(cfg.step);
    while let Some((dt, elapsed)) = steps.next(&shutdown).await {
        if cfg.forex_hours && !calendar.is_open(UnixNanos::now()) {
            continue;
        }
        let open: BTreeSet<String> = sim.open_instruments().into_iter().flatten().collect();
        for name in open {
            let instrument = instruments
                .entry(name.clone())
                .or_insert_with(|| Instrument::new(cfg.seed, &name));
            let rate = cfg.rate * burst_factor(&cfg, &name, elapsed);
            let n = instrument.due.take(rate, dt);
            if n == 0 {
                continue;
            }
            let prices = instrument.prices(&name, n);
            sent.add_prices(&name, &prices);
            for price in &prices {
                sim.price(price).await;
            }
        }
    }
}

/// A Dukascopy instrument the history generator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryInstrument {
    /// Canonical symbol, `EUR/USD`.
    pub symbol: &'static str,
    /// The datafeed's name, `EURUSD`.
    pub datafeed: &'static str,
    /// Decimals of a point (Dukascopy's scale).
    pub scale: u32,
    /// Where the walk starts, in points.
    pub base_points: u32,
    /// Trades around the clock (crypto) instead of the forex week.
    pub always_open: bool,
}

/// Instruments with generated history.
pub const HISTORY_INSTRUMENTS: &[HistoryInstrument] = &[
    HistoryInstrument {
        symbol: "EUR/USD",
        datafeed: "EURUSD",
        scale: 5,
        base_points: 108_000,
        always_open: false,
    },
    HistoryInstrument {
        symbol: "USD/JPY",
        datafeed: "USDJPY",
        scale: 3,
        base_points: 150_000,
        always_open: false,
    },
    HistoryInstrument {
        symbol: "GBP/USD",
        datafeed: "GBPUSD",
        scale: 5,
        base_points: 127_000,
        always_open: false,
    },
    HistoryInstrument {
        symbol: "BTC/USD",
        datafeed: "BTCUSD",
        scale: 1,
        base_points: 600_000,
        always_open: true,
    },
    HistoryInstrument {
        symbol: "ETH/USD",
        datafeed: "ETHUSD",
        scale: 1,
        base_points: 30_000,
        always_open: true,
    },
];

/// The history instrument of a canonical symbol.
pub fn history_instrument(symbol: &str) -> Option<HistoryInstrument> {
    HISTORY_INSTRUMENTS
        .iter()
        .find(|i| i.symbol == symbol)
        .copied()
}

/// The generated hours of `instrument` from `from_hour_ms` (an hour start), `hours` of them:
/// about `mean_ticks` each, closed forex hours empty. Deterministic in all arguments.
pub fn history(
    instrument: HistoryInstrument,
    from_hour_ms: i64,
    hours: usize,
    seed: u64,
    mean_ticks: u32,
) -> Vec<(i64, Vec<SimTick>)> {
    let calendar = ForexCalendar::standard();
    generate_hours(
        instrument.datafeed,
        from_hour_ms,
        hours,
        instrument.scale,
        instrument.base_points,
        seed,
        mean_ticks,
        |hour_ms| {
            !instrument.always_open
                && calendar.hour(UnixNanos(hour_ms.saturating_mul(1_000_000))) == HourKind::Closed
        },
    )
}

/// Publishes [`history`] on `sim` and returns it.
pub fn publish_history(
    sim: &DukascopySim,
    instrument: HistoryInstrument,
    from_hour_ms: i64,
    hours: usize,
    seed: u64,
    mean_ticks: u32,
) -> Vec<(i64, Vec<SimTick>)> {
    let hours = history(instrument, from_hour_ms, hours, seed, mean_ticks);
    for (hour_ms, ticks) in &hours {
        sim.publish_ticks(
            instrument.datafeed,
            *hour_ms,
            instrument.scale,
            ticks.clone(),
        );
    }
    hours
}

/// Publishes the history of `instruments` from `days` UTC days before today up to the last hour
/// that ended, then each hour as it ends, until `shutdown`. Returns the hours published so far
/// through `published` (one count per instrument-hour).
pub async fn run_history(
    sim: DukascopySim,
    instruments: Vec<HistoryInstrument>,
    days: u32,
    seed: u64,
    mean_ticks: u32,
    published: Arc<std::sync::atomic::AtomicU64>,
    shutdown: CancellationToken,
) {
    let now_ms = UnixNanos::now().0 / 1_000_000;
    let origin = now_ms - now_ms.rem_euclid(24 * HOUR_MS) - i64::from(days) * 24 * HOUR_MS;
    let mut done = 0_usize;
    loop {
        let now_ms = UnixNanos::now().0 / 1_000_000;
        let ended = usize::try_from((now_ms - origin) / HOUR_MS).unwrap_or(0);
        if ended > done {
            for &instrument in &instruments {
                // The walk runs from the origin, so an hour published later continues the price.
                let hours = history(instrument, origin, ended, seed, mean_ticks);
                for (hour_ms, ticks) in hours.into_iter().skip(done) {
                    sim.publish_ticks(instrument.datafeed, hour_ms, instrument.scale, ticks);
                    published.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            done = ended;
        }
        let next_hour_ms = origin + (ended as i64 + 1) * HOUR_MS;
        let wait = Duration::from_millis(u64::try_from(next_hour_ms - now_ms).unwrap_or(0) + 10);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_spreads_a_rate_over_steps_without_losing_the_fraction() {
        let mut due = Due::default();
        let total: usize = (0..1_000)
            .map(|_| due.take(5.0, Duration::from_millis(10)))
            .sum();
        assert_eq!(total, 50);
    }

    #[test]
    fn bursts_take_their_share_of_each_period() {
        let cfg = MarketConfig::default();
        let burst_ms = (0..BURST_PERIOD.as_millis() as u64)
            .filter(|ms| burst_factor(&cfg, "BTC/USD", Duration::from_millis(*ms)) > 1.0)
            .count();
        assert_eq!(burst_ms as u128, BURST_LEN.as_millis());
        let calm = MarketConfig {
            bursts: false,
            ..cfg
        };
        assert!(burst_factor(&calm, "BTC/USD", Duration::ZERO) == 1.0);
    }

    #[test]
    fn kraken_walks_are_deterministic_well_formed_and_numbered() {
        let mut a = Pair::new(7, "BTC/USD", 1);
        let mut b = Pair::new(7, "BTC/USD", 1);
        let ta = a.trades("BTC/USD", 500, "2026-11-20T10:00:00.000000Z");
        let tb = b.trades("BTC/USD", 500, "2026-11-20T10:00:00.000000Z");
        assert_eq!(ta, tb);
        assert_eq!(
            ta.iter().map(|t| t.trade_id).collect::<Vec<_>>(),
            (1..=500).collect::<Vec<_>>()
        );
        for t in &ta {
            let (int, frac) = t.price.split_once('.').unwrap();
            assert_eq!(frac.len(), 1, "{}", t.price);
            assert!(int.parse::<u64>().unwrap() > 1_000);
            assert_eq!(t.qty.split_once('.').unwrap().1.len(), 8);
        }
        let quote = a.ticker("BTC/USD", "2026-11-20T10:00:00.000000Z");
        let bid: f64 = quote.bid.parse().unwrap();
        let ask: f64 = quote.ask.parse().unwrap();
        assert!(ask > bid, "{quote:?}");
        let mut other = Pair::new(8, "BTC/USD", 1);
        assert_ne!(
            other.trades("BTC/USD", 50, "x"),
            Pair::new(7, "BTC/USD", 1).trades("BTC/USD", 50, "x")
        );
    }

    #[test]
    fn oanda_prices_have_a_positive_spread_and_increasing_times() {
        let mut i = Instrument::new(1, "USD_JPY");
        let prices = i.prices("USD_JPY", 200);
        for p in &prices {
            assert_eq!(p.bids[0].0.split_once('.').unwrap().1.len(), 3);
            assert!(p.asks[0].0.parse::<f64>().unwrap() > p.bids[0].0.parse::<f64>().unwrap());
        }
        assert!(prices.windows(2).all(|w| w[0].time < w[1].time));
    }

    #[test]
    fn forex_history_is_empty_at_the_weekend_and_crypto_is_not() {
        // Saturday 2026-11-21 00:00 UTC, 24 hours.
        let saturday = 1_795_219_200_000;
        let eur = history(history_instrument("EUR/USD").unwrap(), saturday, 24, 1, 100);
        assert!(eur.iter().all(|(_, ticks)| ticks.is_empty()));
        let btc = history(history_instrument("BTC/USD").unwrap(), saturday, 24, 1, 100);
        assert!(btc.iter().all(|(_, ticks)| !ticks.is_empty()));
        // Wednesday: forex trades every hour.
        let wednesday = saturday - 3 * 24 * HOUR_MS;
        let eur = history(
            history_instrument("EUR/USD").unwrap(),
            wednesday,
            24,
            1,
            100,
        );
        assert!(eur.iter().all(|(_, ticks)| !ticks.is_empty()));
    }
}
