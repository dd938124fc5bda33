//! The stream's bookkeeping, pure (no I/O): which instruments the open stream carries, prices
//! turned into numbered quote ticks with repeats dropped, and the gaps of outages and handovers
//! clipped to the hours the forex market is open.
//!
//! # Quote keys
//!
//! A quote's unique key is OANDA's time (nanoseconds) plus a `sequence` that numbers distinct
//! prices sharing that time (almost always 0). An exact repeat of a price already seen at the
//! same time is dropped: that is what the snapshot after a reconnect usually is, and what two
//! overlapping streams deliver while the instrument list is switched. The memory of recent
//! times is bounded ([`RECENT_TIMES`] per instrument); a repeat older than that, or one sent
//! after a restart, still gets sequence 0 and is then dropped by the sink's unique key.
//!
//! # Gaps
//!
//! When a stream is lost, every instrument it carried may have missed prices from the stream's
//! last line (heartbeats count: they prove the connection was alive) until the first line of
//! the next stream that carries it. A handover from another replica opens the same kind of
//! interval from the moment the control plane gives. Only the parts of such an interval when
//! the market is open ([`MarketHours::open_segments`]) are published as gaps: a weekend outage
//! records nothing, an outage across the Sunday opening records only what came after it.
//! Changing the instrument list does not lose anything: the new stream is opened before the old
//! one is closed (see the feed), so no gap is recorded for the instruments on both.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rust_decimal::Decimal;
use smol_str::SmolStr;
use tickflow_calendar::MarketHours;
use tickflow_ingest::{Handover, Item};
use tickflow_schema::{Gap, GapReason, Source, Symbol, Tick, TickKind, UnixNanos};

use crate::metrics::Metrics;
use crate::oanda::instruments;
use crate::oanda::parse::Price;

/// Distinct OANDA times remembered per instrument for numbering and repeats.
pub const RECENT_TIMES: usize = 32;

/// What is known about one instrument, for `/status` and the control plane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolStatus {
    /// `waiting` (not yet on a stream), `streaming`, `reconnecting`, `refused`.
    pub state: &'static str,
    /// The last error OANDA gave for it (a refused instrument list, a refused token).
    pub last_error: Option<String>,
    /// Receive time of the last price.
    pub last_tick_at: Option<UnixNanos>,
    /// Prices published since start.
    pub ticks: u64,
    /// Whether the last price was tradeable.
    pub tradeable: Option<bool>,
}

/// Shared view of every instrument's status.
pub type StatusBoard = Arc<Mutex<BTreeMap<Symbol, SymbolStatus>>>;

fn lock(board: &StatusBoard) -> std::sync::MutexGuard<'_, BTreeMap<Symbol, SymbolStatus>> {
    board
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The contents of a price, for telling a repeat from a new price at the same time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    bid: Decimal,
    ask: Decimal,
    bid_size: Decimal,
    ask_size: Decimal,
    tradeable: bool,
}

#[derive(Debug, Default)]
struct Recent(VecDeque<(UnixNanos, Vec<Fingerprint>)>);

impl Recent {
    /// The sequence for this price, or `None` for a repeat.
    fn number(&mut self, time: UnixNanos, print: Fingerprint) -> Option<u64> {
        if let Some((_, seen)) = self.0.iter_mut().find(|(t, _)| *t == time) {
            if seen.contains(&print) {
                return None;
            }
            seen.push(print);
            return Some(seen.len() as u64 - 1);
        }
        if self.0.len() >= RECENT_TIMES {
            self.0.pop_front();
        }
        self.0.push_back((time, vec![print]));
        Some(0)
    }
}

#[derive(Debug, Clone)]
struct PendingGap {
    from: UnixNanos,
    reason: GapReason,
    detail: String,
}

/// The feed's bookkeeping. See the module docs.
#[derive(Debug)]
pub struct Session {
    calendar: MarketHours,
    metrics: Metrics,
    board: StatusBoard,
    /// The instruments wanted (streamed or not).
    wanted: BTreeSet<Symbol>,
    /// The instruments of the current stream.
    streamed: BTreeSet<Symbol>,
    /// OANDA name → canonical symbol, for the streamed instruments.
    by_venue: HashMap<SmolStr, Symbol>,
    recent: HashMap<Symbol, Recent>,
    /// Intervals that may be missing data, until a stream carrying the symbol proves live.
    pending: BTreeMap<Symbol, PendingGap>,
}

impl Session {
    /// An empty session judging gaps by `calendar`.
    pub fn new(calendar: MarketHours, metrics: Metrics, board: StatusBoard) -> Self {
        Self {
            calendar,
            metrics,
            board,
            wanted: BTreeSet::new(),
            streamed: BTreeSet::new(),
            by_venue: HashMap::new(),
            recent: HashMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// The instruments of the current stream.
    pub fn streamed(&self) -> &BTreeSet<Symbol> {
        &self.streamed
    }

    /// The calendar gaps are judged by.
    pub fn calendar(&self) -> &MarketHours {
        &self.calendar
    }

    /// Lists `wanted` symbols in the status board (as `waiting` when new) and forgets the ones
    /// no longer wanted that are not streamed either.
    pub fn set_wanted(&mut self, wanted: &BTreeSet<Symbol>) {
        let mut board = lock(&self.board);
        for s in wanted {
            board.entry(s.clone()).or_insert_with(|| SymbolStatus {
                state: "waiting",
                ..SymbolStatus::default()
            });
        }
        board.retain(|s, _| wanted.contains(s) || self.streamed.contains(s));
        self.wanted.clone_from(wanted);
    }

    /// A stream for `list` was accepted (HTTP 200) and replaces the previous one. Symbols new
    /// to the stream get their producers opened; symbols that left it are closed after their
    /// last tick (with any pending gap published up to `now`).
    pub fn stream_started(&mut self, list: &BTreeSet<Symbol>, now: UnixNanos, out: &mut Vec<Item>) {
        for gone in self.streamed.difference(list) {
            if let Some(p) = self.pending.remove(gone) {
                self.gap_items(gone, p, now, out);
            }
            self.recent.remove(gone);
            out.push(Item::Close(gone.clone()));
        }
        for new in list.difference(&self.streamed) {
            out.push(Item::Open(new.clone()));
        }
        self.streamed = list.clone();
        self.by_venue = list
            .iter()
            .filter_map(|s| instruments::venue_name(s).ok().map(|v| (v, s.clone())))
            .collect();
        let mut board = lock(&self.board);
        board.retain(|s, _| list.contains(s) || self.wanted.contains(s));
        for s in list {
            let st = board.entry(s.clone()).or_default();
            st.state = "streaming";
            st.last_error = None;
        }
        self.metrics
            .instruments_streamed
            .set(i64::try_from(list.len()).unwrap_or(i64::MAX));
    }

    /// The stream delivered its first line at `now`: it is live, so the pending intervals of
    /// the instruments it carries end here and are published (their market-open parts).
    pub fn stream_live(&mut self, now: UnixNanos, out: &mut Vec<Item>) {
        let resolved: Vec<Symbol> = self
            .pending
            .keys()
            .filter(|s| self.streamed.contains(*s))
            .cloned()
            .collect();
        for symbol in resolved {
            if let Some(p) = self.pending.remove(&symbol) {
                self.gap_items(&symbol, p, now, out);
            }
        }
    }

    /// The stream was lost; `last_alive` is when its last line arrived. Every instrument it
    /// carried may miss data from then on (an earlier pending start is kept).
    pub fn stream_lost(&mut self, last_alive: UnixNanos, detail: &str) {
        for symbol in &self.streamed {
            self.pending
                .entry(symbol.clone())
                .or_insert_with(|| PendingGap {
                    from: last_alive,
                    reason: GapReason::Disconnect,
                    detail: format!("OANDA stream lost: {detail}"),
                });
        }
        let mut board = lock(&self.board);
        for s in &self.streamed {
            if let Some(st) = board.get_mut(s) {
                st.state = "reconnecting";
            }
        }
    }

    /// All instruments were removed: the stream is closed on purpose, nothing is missing.
    pub fn stream_closed(&mut self, now: UnixNanos, out: &mut Vec<Item>) {
        self.stream_started(&BTreeSet::new(), now, out);
    }

    /// A symbol taken over from another replica: data may be missing since `h.since`, until a
    /// stream carrying it is live.
    pub fn note_handover(&mut self, h: Handover) {
        let gap = PendingGap {
            from: h.since,
            reason: GapReason::Handover,
            detail: format!("taken over from {}", h.previous_owner),
        };
        match self.pending.get_mut(&h.symbol) {
            Some(p) if p.from <= h.since => {}
            Some(p) => *p = gap,
            None => {
                self.pending.insert(h.symbol, gap);
            }
        }
    }

    /// Records an error for `symbols` in the status board (and marks them `refused` when OANDA
    /// refused them for good).
    pub fn set_error(&self, symbols: &BTreeSet<Symbol>, error: &str, refused: bool) {
        let mut board = lock(&self.board);
        for s in symbols {
            let st = board.entry(s.clone()).or_default();
            st.last_error = Some(error.to_owned());
            if refused {
                st.state = "refused";
            }
        }
    }

    /// A price line: a quote tick for the publisher, unless it is a repeat or its instrument is
    /// not on the stream (both counted).
    pub fn price(
        &mut self,
        price: &Price,
        received_at: UnixNanos,
        arrived: Instant,
        out: &mut Vec<Item>,
    ) {
        let Some(symbol) = self.by_venue.get(&price.instrument) else {
            self.metrics.skip("not_streamed");
            return;
        };
        let print = Fingerprint {
            bid: price.bid,
            ask: price.ask,
            bid_size: price.bid_liquidity,
            ask_size: price.ask_liquidity,
            tradeable: price.tradeable,
        };
        let Some(sequence) = self
            .recent
            .entry(symbol.clone())
            .or_default()
            .number(price.time, print)
        else {
            self.metrics.skip("duplicate");
            return;
        };
        if !price.tradeable {
            self.metrics.non_tradeable.inc();
        }
        {
            let mut board = lock(&self.board);
            let st = board.entry(symbol.clone()).or_default();
            st.last_tick_at = Some(received_at);
            st.ticks += 1;
            st.tradeable = Some(price.tradeable);
        }
        out.push(Item::Tick {
            tick: Tick::Quote(price.to_quote(symbol.clone(), received_at, sequence)),
            arrived,
        });
    }

    fn gap_items(&self, symbol: &Symbol, p: PendingGap, to: UnixNanos, out: &mut Vec<Item>) {
        let detected_at = UnixNanos::now();
        for (from, to) in self.calendar.open_segments(p.from, to) {
            self.metrics.gaps.inc();
            out.push(Item::Tick {
                tick: Tick::Gap(Gap {
                    source: Source::Oanda,
                    symbol: symbol.clone(),
                    kind: TickKind::Quote,
                    from,
                    to,
                    reason: p.reason,
                    detail: p.detail.clone(),
                    detected_at,
                }),
                arrived: Instant::now(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use std::collections::BTreeSet;
    use std::time::Instant;

    use rust_decimal::Decimal;
    use tickflow_calendar::{ForexCalendar, MarketHours};
    use tickflow_ingest::{Handover, Item};
    use tickflow_schema::{Gap, GapReason, Symbol, Tick, UnixNanos};

    use super::{Session, StatusBoard};
    use crate::metrics::Metrics;
    use crate::oanda::parse::Price;

    fn at(text: &str) -> UnixNanos {
        UnixNanos::parse_rfc3339(text).unwrap()
    }

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn session(calendar: MarketHours) -> (Session, StatusBoard) {
        let board = StatusBoard::default();
        (
            Session::new(calendar, Metrics::unregistered(), board.clone()),
            board,
        )
    }

    fn price(instrument: &str, time: &str, bid: &str, ask: &str) -> Price {
        Price {
            instrument: instrument.into(),
            time: at(time),
            bid: bid.parse().unwrap(),
            bid_liquidity: Decimal::from(1_000_000),
            ask: ask.parse().unwrap(),
            ask_liquidity: Decimal::from(2_000_000),
            tradeable: true,
        }
    }

    fn gaps(items: &[Item]) -> Vec<&Gap> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Tick {
                    tick: Tick::Gap(g), ..
                } => Some(g),
                _ => None,
            })
            .collect()
    }

    fn sequences(items: &[Item]) -> Vec<u64> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Tick {
                    tick: Tick::Quote(q),
                    ..
                } => Some(q.sequence),
                _ => None,
            })
            .collect()
    }

    fn list(symbols: &[&str]) -> BTreeSet<Symbol> {
        symbols.iter().map(|s| sym(s)).collect()
    }

    #[test]
    fn prices_are_numbered_per_time_and_repeats_dropped() {
        let (mut s, board) = session(MarketHours::AlwaysOpen);
        let mut out = Vec::new();
        s.stream_started(&list(&["EUR/USD"]), at("2024-03-13T12:00:00Z"), &mut out);
        assert!(matches!(&out[..], [Item::Open(x)] if *x == sym("EUR/USD")));
        out.clear();
        let rx = at("2024-03-13T12:00:01Z");
        let now = Instant::now();
        let t = "2024-03-13T12:00:00.123456789Z";
        s.price(
            &price("EUR_USD", t, "1.09177", "1.09188"),
            rx,
            now,
            &mut out,
        );
        // The same price again (a snapshot after a reconnect): dropped.
        s.price(
            &price("EUR_USD", t, "1.09177", "1.09188"),
            rx,
            now,
            &mut out,
        );
        // Another price at the same nanosecond: sequence 1.
        s.price(
            &price("EUR_USD", t, "1.09178", "1.09188"),
            rx,
            now,
            &mut out,
        );
        // A later one: sequence 0 again.
        s.price(
            &price("EUR_USD", "2024-03-13T12:00:00.2Z", "1.09178", "1.09188"),
            rx,
            now,
            &mut out,
        );
        // An older time (the snapshot of another instrument can be older; within one
        // instrument a stream switch can interleave): still numbered by its own time.
        s.price(
            &price("EUR_USD", t, "1.09179", "1.09188"),
            rx,
            now,
            &mut out,
        );
        // An instrument not on the stream: skipped.
        s.price(
            &price("USD_JPY", t, "150.001", "150.011"),
            rx,
            now,
            &mut out,
        );
        assert_eq!(sequences(&out), vec![0, 1, 0, 2]);
        let b = board.lock().unwrap();
        let st = &b[&sym("EUR/USD")];
        assert_eq!(
            (st.state, st.ticks, st.last_tick_at, st.tradeable),
            ("streaming", 4, Some(rx), Some(true))
        );
    }

    #[test]
    fn an_outage_inside_market_hours_is_one_gap_from_the_last_line_to_the_next_stream() {
        let (mut s, _) = session(MarketHours::Forex(ForexCalendar::standard()));
        let mut out = Vec::new();
        let pairs = list(&["EUR/USD", "USD/JPY"]);
        s.stream_started(&pairs, at("2024-03-13T11:00:00Z"), &mut out);
        s.stream_lost(at("2024-03-13T12:00:00Z"), "nothing for 10 s");
        // The replacement opens, and proves live with its first line.
        s.stream_started(&pairs, at("2024-03-13T12:00:03Z"), &mut out);
        assert!(
            gaps(&out).is_empty(),
            "a gap ends at the first line, not the 200"
        );
        s.stream_live(at("2024-03-13T12:00:04Z"), &mut out);
        let g = gaps(&out);
        assert_eq!(g.len(), 2);
        for (gap, symbol) in g.iter().zip(["EUR/USD", "USD/JPY"]) {
            assert_eq!(gap.symbol, sym(symbol));
            assert_eq!(
                (gap.from, gap.to),
                (at("2024-03-13T12:00:00Z"), at("2024-03-13T12:00:04Z"))
            );
            assert_eq!(gap.reason, GapReason::Disconnect);
            assert_eq!(gap.kind, tickflow_schema::TickKind::Quote);
            assert_eq!(gap.detail, "OANDA stream lost: nothing for 10 s");
        }
        // Resolved: a second live line records nothing more.
        out.clear();
        s.stream_live(at("2024-03-13T12:00:05Z"), &mut out);
        assert!(gaps(&out).is_empty());
    }

    #[test]
    fn an_outage_over_the_weekend_records_only_its_market_hours() {
        let (mut s, _) = session(MarketHours::Forex(ForexCalendar::standard()));
        let mut out = Vec::new();
        let eur = list(&["EUR/USD"]);
        // Summer time: the market closes Friday 21:00 UTC and reopens Sunday 21:00 UTC.
        s.stream_started(&eur, at("2024-06-14T19:00:00Z"), &mut out);
        s.stream_lost(at("2024-06-14T20:30:00Z"), "closed");
        s.stream_started(&eur, at("2024-06-16T21:30:00Z"), &mut out);
        s.stream_live(at("2024-06-16T21:30:01Z"), &mut out);
        let g: Vec<_> = gaps(&out).iter().map(|g| (g.from, g.to)).collect();
        assert_eq!(
            g,
            vec![
                (at("2024-06-14T20:30:00Z"), at("2024-06-14T21:00:00Z")),
                (at("2024-06-16T21:00:00Z"), at("2024-06-16T21:30:01Z")),
            ]
        );
        // Winter time: the same outage one hour later in UTC.
        let (mut s, _) = session(MarketHours::Forex(ForexCalendar::standard()));
        let mut out = Vec::new();
        s.stream_started(&eur, at("2024-12-06T19:00:00Z"), &mut out);
        s.stream_lost(at("2024-12-06T21:30:00Z"), "closed");
        s.stream_started(&eur, at("2024-12-08T22:30:00Z"), &mut out);
        s.stream_live(at("2024-12-08T22:30:00Z"), &mut out);
        let g: Vec<_> = gaps(&out).iter().map(|g| (g.from, g.to)).collect();
        assert_eq!(
            g,
            vec![
                (at("2024-12-06T21:30:00Z"), at("2024-12-06T22:00:00Z")),
                (at("2024-12-08T22:00:00Z"), at("2024-12-08T22:30:00Z")),
            ]
        );
    }

    #[test]
    fn an_outage_entirely_while_closed_records_nothing() {
        let (mut s, _) = session(MarketHours::Forex(ForexCalendar::standard()));
        let mut out = Vec::new();
        let eur = list(&["EUR/USD"]);
        s.stream_started(&eur, at("2024-06-15T10:00:00Z"), &mut out);
        s.stream_lost(at("2024-06-15T12:00:00Z"), "maintenance");
        s.stream_started(&eur, at("2024-06-15T18:00:00Z"), &mut out);
        s.stream_live(at("2024-06-15T18:00:00Z"), &mut out);
        assert!(gaps(&out).is_empty());
    }

    #[test]
    fn a_handover_is_a_gap_from_the_given_time_to_the_first_line() {
        let (mut s, _) = session(MarketHours::AlwaysOpen);
        let mut out = Vec::new();
        s.note_handover(Handover {
            symbol: sym("EUR/USD"),
            since: at("2024-03-13T12:00:00Z"),
            previous_owner: "oanda-1-abc".into(),
        });
        s.stream_started(
            &list(&["EUR/USD", "USD/JPY"]),
            at("2024-03-13T12:00:02Z"),
            &mut out,
        );
        s.stream_live(at("2024-03-13T12:00:03Z"), &mut out);
        let g = gaps(&out);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].symbol, sym("EUR/USD"));
        assert_eq!(g[0].reason, GapReason::Handover);
        assert_eq!(
            (g[0].from, g[0].to),
            (at("2024-03-13T12:00:00Z"), at("2024-03-13T12:00:03Z"))
        );
        assert_eq!(g[0].detail, "taken over from oanda-1-abc");
    }

    #[test]
    fn a_symbol_leaving_the_stream_is_closed_and_its_pending_gap_published() {
        let (mut s, board) = session(MarketHours::AlwaysOpen);
        let mut out = Vec::new();
        s.stream_started(
            &list(&["EUR/USD", "USD/JPY"]),
            at("2024-03-13T11:00:00Z"),
            &mut out,
        );
        s.stream_lost(at("2024-03-13T12:00:00Z"), "closed by OANDA");
        out.clear();
        s.set_wanted(&list(&["EUR/USD"]));
        s.stream_started(&list(&["EUR/USD"]), at("2024-03-13T12:00:05Z"), &mut out);
        let g = gaps(&out);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].symbol, sym("USD/JPY"));
        assert_eq!(
            (g[0].from, g[0].to),
            (at("2024-03-13T12:00:00Z"), at("2024-03-13T12:00:05Z"))
        );
        assert!(matches!(out.last(), Some(Item::Close(x)) if *x == sym("USD/JPY")));
        assert!(!board.lock().unwrap().contains_key(&sym("USD/JPY")));
    }
}
