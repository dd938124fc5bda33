//! The subscription and gap bookkeeping of the feed, across connections. Pure: it is fed frames,
//! connection events and the desired symbol set, and answers with requests to send and items to
//! publish. The socket handler ([`crate::feed`]) does the I/O.
//!
//! Per symbol and channel a subscription is `Down` (no connection, or not asked for yet),
//! `Pending` (asked, no ack), `Subscribed`, `Refused` (Kraken said no, e.g. "Currency pair not
//! supported": reported and left alone, the other symbols carry on) or `Unsubscribing`.
//! Replies are routed by `req_id`, never by `method` (`PROTOCOLS.md` §1.4).
//!
//! Gaps: when a connection ends, every symbol and kind that was subscribed gets a pending gap
//! starting at the last moment data was known to flow. The first data for it on a later
//! connection closes the gap and publishes it, just before that data. For trades the
//! snapshot sent on resubscription often proves that nothing was missed (the first new trade id
//! follows the last one published); then no gap is recorded. Trade ids that jump on a live
//! connection are recorded as a gap too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smol_str::SmolStr;
use tickflow_schema::{Gap, GapReason, Quote, Symbol, Tick, TickKind, UnixNanos};

use crate::config::KrakenConfig;
use crate::kraken::parse::{Channel, Frame};
use crate::kraken::symbols;
use crate::metrics::{ChannelLabel, KindLabel, Metrics, ReasonLabel};

pub use tickflow_ingest::Item;

/// What the session wants done: requests to send on the socket, items to queue.
#[derive(Debug, Default)]
pub struct Effects {
    /// JSON requests for the socket, in order.
    pub requests: Vec<String>,
    /// Items for the publisher, in order.
    pub items: Vec<Item>,
}

/// What a symbol's subscription on one channel is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelState {
    /// Not subscribed on the current connection (or no connection).
    Down,
    /// Subscribe sent, no reply yet.
    Pending {
        /// Our request id.
        req_id: u64,
        /// When it was sent.
        since: Instant,
        /// How many times it was sent.
        attempts: u32,
    },
    /// Acknowledged.
    Subscribed,
    /// Refused by Kraken, with its error text.
    Refused(String),
    /// Unsubscribe sent.
    Unsubscribing {
        /// Our request id.
        req_id: u64,
        /// When it was sent.
        since: Instant,
    },
}

impl ChannelState {
    fn is_settled(&self) -> bool {
        matches!(self, ChannelState::Subscribed | ChannelState::Refused(_))
    }

    fn is_active(&self) -> bool {
        matches!(
            self,
            ChannelState::Subscribed
                | ChannelState::Pending { .. }
                | ChannelState::Unsubscribing { .. }
        )
    }

    fn label(&self) -> &'static str {
        match self {
            ChannelState::Down => "down",
            ChannelState::Pending { .. } => "pending",
            ChannelState::Subscribed => "subscribed",
            ChannelState::Refused(_) => "refused",
            ChannelState::Unsubscribing { .. } => "unsubscribing",
        }
    }
}

/// What the outside world may know about a symbol (the control plane reports it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolStatus {
    /// `trade` subscription state: `down`, `pending`, `subscribed`, `refused`, `unsubscribing`.
    pub trade: &'static str,
    /// `ticker` subscription state.
    pub ticker: &'static str,
    /// The last error Kraken reported for the symbol.
    pub last_error: Option<String>,
    /// Receive time of the last tick.
    pub last_tick_at: Option<UnixNanos>,
    /// Ticks received since start.
    pub ticks: u64,
}

/// Shared view of every symbol's status.
pub type StatusBoard = Arc<Mutex<BTreeMap<Symbol, SymbolStatus>>>;

#[derive(Debug)]
struct PendingGap {
    from: UnixNanos,
    reason: GapReason,
    detail: String,
}

#[derive(Debug)]
struct SymbolState {
    venue: SmolStr,
    trade: ChannelState,
    ticker: ChannelState,
    removing: bool,
    last_trade_id: Option<u64>,
    last_trade_time: UnixNanos,
    last_quote: Option<Quote>,
    gap_trade: Option<PendingGap>,
    gap_quote: Option<PendingGap>,
}

impl SymbolState {
    fn channel_mut(&mut self, channel: Channel) -> &mut ChannelState {
        match channel {
            Channel::Trade => &mut self.trade,
            Channel::Ticker => &mut self.ticker,
        }
    }

    fn channel(&self, channel: Channel) -> &ChannelState {
        match channel {
            Channel::Trade => &self.trade,
            Channel::Ticker => &self.ticker,
        }
    }
}

#[derive(Debug)]
struct Request {
    unsubscribe: bool,
    channel: Channel,
    symbols: Vec<Symbol>,
    answered: usize,
}

fn lock(board: &StatusBoard) -> std::sync::MutexGuard<'_, BTreeMap<Symbol, SymbolStatus>> {
    board
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The feed's bookkeeping. See the module docs.
#[derive(Debug)]
pub struct Session {
    cfg: Arc<KrakenConfig>,
    metrics: Metrics,
    board: StatusBoard,
    symbols: BTreeMap<Symbol, SymbolState>,
    requests: HashMap<u64, Request>,
    next_req_id: u64,
    connected: bool,
    system_online: bool,
    /// Handovers noted for symbols not (yet) in the set: applied when they are added.
    handovers: BTreeMap<Symbol, PendingGap>,
}

const MAX_SUBSCRIBE_ATTEMPTS: u32 = 2;

impl Session {
    /// An empty session.
    pub fn new(cfg: Arc<KrakenConfig>, metrics: Metrics, board: StatusBoard) -> Self {
        Self {
            cfg,
            metrics,
            board,
            symbols: BTreeMap::new(),
            requests: HashMap::new(),
            next_req_id: 1,
            connected: false,
            system_online: true,
            handovers: BTreeMap::new(),
        }
    }

    /// A fresh request id (also used for pings).
    pub fn next_req_id(&mut self) -> u64 {
        let id = self.next_req_id;
        self.next_req_id = self.next_req_id.wrapping_add(1).max(1);
        id
    }

    /// Every symbol the session holds, including ones being removed.
    pub fn symbols(&self) -> impl Iterator<Item = &Symbol> {
        self.symbols.keys()
    }

    /// The subscription state of one symbol and channel.
    pub fn channel_state(&self, symbol: &Symbol, channel: Channel) -> Option<&ChannelState> {
        self.symbols.get(symbol).map(|s| s.channel(channel))
    }

    /// Connected, and every wanted symbol has an answer (ack or refusal) on both channels.
    pub fn is_settled(&self) -> bool {
        self.connected
            && self
                .symbols
                .values()
                .filter(|s| !s.removing)
                .all(|s| s.trade.is_settled() && s.ticker.is_settled())
    }

    /// Whether any symbol is subscribed on any channel (data is expected).
    pub fn has_subscriptions(&self) -> bool {
        self.symbols
            .values()
            .any(|s| s.trade == ChannelState::Subscribed || s.ticker == ChannelState::Subscribed)
    }

    fn refresh_status(&self, symbol: &Symbol) {
        let mut board = lock(&self.board);
        match self.symbols.get(symbol) {
            Some(st) => {
                let entry = board.entry(symbol.clone()).or_default();
                entry.trade = st.trade.label();
                entry.ticker = st.ticker.label();
            }
            None => {
                board.remove(symbol);
            }
        }
        drop(board);
        let subscribed = self
            .symbols
            .values()
            .filter(|s| s.trade == ChannelState::Subscribed && s.ticker == ChannelState::Subscribed)
            .count();
        self.metrics
            .symbols_subscribed
            .set(i64::try_from(subscribed).unwrap_or(i64::MAX));
    }

    /// Notes that this replica takes `symbol` over from `previous_owner`, whose data may be
    /// missing since `since`: a HANDOVER gap for both kinds, closed by the first data after the
    /// subscription (or kept until the symbol is added, if it is not in the set yet).
    pub fn note_handover(&mut self, symbol: &Symbol, since: UnixNanos, previous_owner: &str) {
        let pending = || PendingGap {
            from: since,
            reason: GapReason::Handover,
            detail: format!("taken over from {previous_owner}"),
        };
        match self.symbols.get_mut(symbol) {
            Some(st) => {
                if st.gap_trade.is_none() {
                    st.gap_trade = Some(pending());
                }
                if st.gap_quote.is_none() {
                    st.gap_quote = Some(pending());
                }
            }
            None => {
                self.handovers.insert(symbol.clone(), pending());
            }
        }
    }

    /// Makes the wanted symbol set `desired`: new symbols are opened (and subscribed when
    /// connected), symbols no longer wanted are unsubscribed and closed.
    pub fn set_desired(&mut self, desired: &BTreeSet<Symbol>, now: Instant, eff: &mut Effects) {
        // Legacy names (`XBT/EUR`) are wanted under their canonical name, the one Kraken's
        // replies and data carry back.
        let desired: BTreeSet<Symbol> = desired
            .iter()
            .map(|s| symbols::canonical(s.as_str()).unwrap_or_else(|_| s.clone()))
            .collect();
        let desired = &desired;
        let mut added = Vec::new();
        for symbol in desired {
            match self.symbols.get_mut(symbol) {
                Some(st) if st.removing => {
                    // Wanted again before the unsubscribe finished: the unsubscribe ack
                    // resubscribes it.
                    st.removing = false;
                }
                Some(_) => {}
                None => {
                    let handover = self.handovers.remove(symbol);
                    let copy = |p: &PendingGap| PendingGap {
                        from: p.from,
                        reason: p.reason,
                        detail: p.detail.clone(),
                    };
                    self.symbols.insert(
                        symbol.clone(),
                        SymbolState {
                            venue: symbols::venue_name(symbol),
                            trade: ChannelState::Down,
                            ticker: ChannelState::Down,
                            removing: false,
                            last_trade_id: None,
                            last_trade_time: UnixNanos::default(),
                            last_quote: None,
                            gap_trade: handover.as_ref().map(copy),
                            gap_quote: handover,
                        },
                    );
                    eff.items.push(Item::Open(symbol.clone()));
                    added.push(symbol.clone());
                }
            }
        }
        if self.connected && !added.is_empty() {
            self.subscribe(Channel::Trade, &added, 1, now, eff);
            self.subscribe(Channel::Ticker, &added, 1, now, eff);
        }
        for symbol in &added {
            self.refresh_status(symbol);
        }

        let dropped: Vec<Symbol> = self
            .symbols
            .iter()
            .filter(|(s, st)| !st.removing && !desired.contains(*s))
            .map(|(s, _)| s.clone())
            .collect();
        for channel in [Channel::Trade, Channel::Ticker] {
            let active: Vec<Symbol> = dropped
                .iter()
                .filter(|s| {
                    self.symbols
                        .get(*s)
                        .is_some_and(|st| self.connected && st.channel(channel).is_active())
                })
                .cloned()
                .collect();
            self.unsubscribe(channel, &active, now, eff);
        }
        for symbol in dropped {
            if let Some(st) = self.symbols.get_mut(&symbol) {
                st.removing = true;
            }
            self.finish_removal_if_done(&symbol, eff);
        }
    }

    fn request(
        &mut self,
        method: &str,
        channel: Channel,
        symbols: &[Symbol],
        unsubscribe: bool,
    ) -> (u64, String) {
        let req_id = self.next_req_id();
        let names: Vec<&str> = symbols
            .iter()
            .filter_map(|s| self.symbols.get(s).map(|st| st.venue.as_str()))
            .collect();
        let mut params = serde_json::json!({ "channel": channel.as_str(), "symbol": names });
        if !unsubscribe {
            match channel {
                Channel::Trade => params["snapshot"] = self.cfg.trade_snapshot.into(),
                Channel::Ticker => {
                    params["event_trigger"] = self.cfg.ticker_trigger.as_str().into();
                    params["snapshot"] = true.into();
                }
            }
        }
        let text =
            serde_json::json!({ "method": method, "params": params, "req_id": req_id }).to_string();
        self.requests.insert(
            req_id,
            Request {
                unsubscribe,
                channel,
                symbols: symbols.to_vec(),
                answered: 0,
            },
        );
        (req_id, text)
    }

    fn subscribe(
        &mut self,
        channel: Channel,
        symbols: &[Symbol],
        attempts: u32,
        now: Instant,
        eff: &mut Effects,
    ) {
        let batch = self.cfg.subscribe_batch.max(1);
        for chunk in symbols.chunks(batch) {
            let (req_id, text) = self.request("subscribe", channel, chunk, false);
            eff.requests.push(text);
            for s in chunk {
                if let Some(st) = self.symbols.get_mut(s) {
                    *st.channel_mut(channel) = ChannelState::Pending {
                        req_id,
                        since: now,
                        attempts,
                    };
                }
                self.refresh_status(s);
            }
        }
    }

    fn unsubscribe(
        &mut self,
        channel: Channel,
        symbols: &[Symbol],
        now: Instant,
        eff: &mut Effects,
    ) {
        let batch = self.cfg.subscribe_batch.max(1);
        for chunk in symbols.chunks(batch) {
            let (req_id, text) = self.request("unsubscribe", channel, chunk, true);
            eff.requests.push(text);
            for s in chunk {
                if let Some(st) = self.symbols.get_mut(s) {
                    *st.channel_mut(channel) = ChannelState::Unsubscribing { req_id, since: now };
                }
                self.refresh_status(s);
            }
        }
    }

    /// Removes a symbol being removed once neither channel is active: its pending gaps are
    /// published (up to now) and its producers closed.
    fn finish_removal_if_done(&mut self, symbol: &Symbol, eff: &mut Effects) {
        let done = self
            .symbols
            .get(symbol)
            .is_some_and(|st| st.removing && !st.trade.is_active() && !st.ticker.is_active());
        if !done {
            return;
        }
        if let Some(mut st) = self.symbols.remove(symbol) {
            self.flush_gaps(
                symbol,
                &mut st,
                "the symbol was removed before data resumed",
                eff,
            );
            eff.items.push(Item::Close(symbol.clone()));
            tracing::info!(symbol = %symbol, "symbol removed");
        }
        self.refresh_status(symbol);
    }

    fn flush_gaps(&self, symbol: &Symbol, st: &mut SymbolState, why: &str, eff: &mut Effects) {
        let now = UnixNanos::now();
        for (kind, pending) in [
            (TickKind::Trade, st.gap_trade.take()),
            (TickKind::Quote, st.gap_quote.take()),
        ] {
            if let Some(p) = pending {
                let detail = format!("{}; {why}", p.detail);
                eff.items
                    .push(self.gap(symbol, kind, p.from, now, p.reason, detail));
            }
        }
    }

    fn gap(
        &self,
        symbol: &Symbol,
        kind: TickKind,
        from: UnixNanos,
        to: UnixNanos,
        reason: GapReason,
        detail: String,
    ) -> Item {
        let label = match kind {
            TickKind::Trade => "trade",
            TickKind::Quote => "quote",
        };
        self.metrics
            .gaps
            .get_or_create(&KindLabel { kind: label })
            .inc();
        tracing::warn!(
            symbol = %symbol, kind = label, from = %from, to = %to.max(from), detail = %detail,
            "gap recorded: ticks in this interval may be missing"
        );
        Item::Tick {
            tick: Tick::Gap(Gap {
                source: tickflow_schema::Source::Kraken,
                symbol: symbol.clone(),
                kind,
                from,
                to: to.max(from),
                reason,
                detail,
                detected_at: UnixNanos::now(),
            }),
            arrived: Instant::now(),
        }
    }

    /// A connection is open: subscribe every wanted symbol on both channels, and finish
    /// removals that were waiting for an unsubscribe.
    pub fn on_connected(&mut self, now: Instant, eff: &mut Effects) {
        self.connected = true;
        self.requests.clear();
        let removing: Vec<Symbol> = self
            .symbols
            .iter()
            .filter(|(_, st)| st.removing)
            .map(|(s, _)| s.clone())
            .collect();
        for symbol in removing {
            if let Some(st) = self.symbols.get_mut(&symbol) {
                st.trade = ChannelState::Down;
                st.ticker = ChannelState::Down;
            }
            self.finish_removal_if_done(&symbol, eff);
        }
        let all: Vec<Symbol> = self.symbols.keys().cloned().collect();
        self.subscribe(Channel::Trade, &all, 1, now, eff);
        self.subscribe(Channel::Ticker, &all, 1, now, eff);
    }

    /// The connection ended. Every symbol and kind that was subscribed gets a pending gap from
    /// `from` (the last moment data was known to flow); an earlier pending gap is kept.
    pub fn on_disconnected(&mut self, from: UnixNanos, reason: &str, eff: &mut Effects) {
        self.connected = false;
        self.requests.clear();
        let symbols: Vec<Symbol> = self.symbols.keys().cloned().collect();
        for symbol in symbols {
            let Some(st) = self.symbols.get_mut(&symbol) else {
                continue;
            };
            if !st.removing {
                if st.trade == ChannelState::Subscribed && st.gap_trade.is_none() {
                    st.gap_trade = Some(PendingGap {
                        from,
                        reason: GapReason::Disconnect,
                        detail: reason.to_owned(),
                    });
                }
                if st.ticker == ChannelState::Subscribed && st.gap_quote.is_none() {
                    st.gap_quote = Some(PendingGap {
                        from,
                        reason: GapReason::Disconnect,
                        detail: reason.to_owned(),
                    });
                }
            }
            st.trade = ChannelState::Down;
            st.ticker = ChannelState::Down;
            self.finish_removal_if_done(&symbol, eff);
            self.refresh_status(&symbol);
        }
    }

    /// Shutting down: pending gaps are published up to now (data had not resumed).
    pub fn finish(&mut self, eff: &mut Effects) {
        let symbols: Vec<Symbol> = self.symbols.keys().cloned().collect();
        for symbol in symbols {
            if let Some(mut st) = self.symbols.remove(&symbol) {
                self.flush_gaps(&symbol, &mut st, "stopped before data resumed", eff);
                self.symbols.insert(symbol, st);
            }
        }
    }

    /// Sends again the subscriptions whose ack is overdue. `Err` when one is overdue for the
    /// last time: the connection is not answering and should be replaced.
    pub fn check_timeouts(&mut self, now: Instant, eff: &mut Effects) -> Result<(), String> {
        let timeout = KrakenConfig::ms(self.cfg.subscribe_ack_timeout_ms);
        let mut resend: BTreeMap<(Channel, u32), Vec<Symbol>> = BTreeMap::new();
        let mut unsub_overdue = Vec::new();
        for (symbol, st) in &self.symbols {
            for channel in [Channel::Trade, Channel::Ticker] {
                match st.channel(channel) {
                    ChannelState::Pending {
                        since, attempts, ..
                    } if now.duration_since(*since) >= timeout => {
                        if *attempts >= MAX_SUBSCRIBE_ATTEMPTS {
                            return Err(format!(
                                "{channel} subscription of {symbol} not acknowledged after {attempts} attempts of {} ms",
                                timeout.as_millis()
                            ));
                        }
                        resend
                            .entry((channel, attempts + 1))
                            .or_default()
                            .push(symbol.clone());
                    }
                    ChannelState::Unsubscribing { since, .. }
                        if now.duration_since(*since) >= timeout =>
                    {
                        unsub_overdue.push((symbol.clone(), channel));
                    }
                    _ => {}
                }
            }
        }
        for ((channel, attempts), symbols) in resend {
            tracing::warn!(%channel, symbols = symbols.len(), attempts, "subscription ack overdue; subscribing again");
            self.subscribe(channel, &symbols, attempts, now, eff);
        }
        for (symbol, channel) in unsub_overdue {
            // Kraken never confirmed: consider it gone; stray data is skipped as unsubscribed.
            if let Some(st) = self.symbols.get_mut(&symbol) {
                *st.channel_mut(channel) = ChannelState::Down;
            }
            self.finish_removal_if_done(&symbol, eff);
        }
        Ok(())
    }

    /// Handles a parsed frame. For data frames `ticks` holds the frame's ticks (it is drained):
    /// they are filtered (duplicates, symbols not subscribed), numbered (quote sequences),
    /// preceded by the gaps they close, and queued in `eff`.
    pub fn on_frame(
        &mut self,
        frame: Frame<'_>,
        ticks: &mut Vec<Tick>,
        received_at: UnixNanos,
        arrived: Instant,
        eff: &mut Effects,
    ) {
        match frame {
            Frame::Data { channel, .. } => self.on_data(channel, ticks, received_at, arrived, eff),
            Frame::Status { system, .. } => {
                let online = system == "online";
                if online != self.system_online {
                    tracing::warn!(system = %system, "Kraken engine status changed; quotes are marked indicative while not online");
                }
                self.system_online = online;
            }
            Frame::Ack {
                method,
                req_id,
                symbol,
                warnings,
                ..
            } => {
                for w in &warnings {
                    tracing::warn!(%method, symbol = ?symbol, warning = %w, "Kraken warning");
                }
                self.on_reply(req_id, symbol.as_deref(), None, Instant::now(), eff);
            }
            Frame::Refused {
                req_id,
                symbol,
                error,
                ..
            } => self.on_reply(req_id, symbol.as_deref(), Some(&error), Instant::now(), eff),
            Frame::Heartbeat | Frame::Pong { .. } | Frame::OtherChannel(_) => {}
        }
    }

    fn on_reply(
        &mut self,
        req_id: Option<u64>,
        venue_symbol: Option<&str>,
        error: Option<&str>,
        now: Instant,
        eff: &mut Effects,
    ) {
        let Some(req_id) = req_id else {
            tracing::warn!(symbol = ?venue_symbol, error = ?error, "reply without req_id ignored");
            return;
        };
        let Some(request) = self.requests.get_mut(&req_id) else {
            tracing::debug!(
                req_id,
                "reply to a request of an earlier connection ignored"
            );
            return;
        };
        let targets: Vec<Symbol> = match venue_symbol.and_then(|v| symbols::canonical(v).ok()) {
            Some(s) => vec![s],
            // A refusal of the whole request names no symbol: it applies to all of them.
            None => request.symbols.clone(),
        };
        request.answered += targets.len();
        let (unsubscribe, channel) = (request.unsubscribe, request.channel);
        if request.answered >= request.symbols.len() {
            self.requests.remove(&req_id);
        }
        for symbol in targets {
            let Some(st) = self.symbols.get_mut(&symbol) else {
                continue;
            };
            let state = st.channel_mut(channel);
            if unsubscribe {
                // Acked, or "Subscription Not Found": either way it is not subscribed now.
                *state = ChannelState::Down;
                if st.removing {
                    self.finish_removal_if_done(&symbol, eff);
                } else {
                    self.subscribe(channel, std::slice::from_ref(&symbol), 1, now, eff);
                }
                continue;
            }
            if !matches!(state, ChannelState::Pending { req_id: r, .. } if *r == req_id) {
                continue;
            }
            match error {
                None => {
                    *state = ChannelState::Subscribed;
                    tracing::debug!(symbol = %symbol, %channel, "subscribed");
                }
                Some(e) if e.contains("rate") => {
                    // "Exceeded msg rate": not a verdict on the pair; the ack timeout resends.
                    tracing::warn!(symbol = %symbol, %channel, error = e, "subscribe throttled by Kraken");
                }
                Some(e) => {
                    *state = ChannelState::Refused(e.to_owned());
                    self.metrics
                        .subscription_errors
                        .get_or_create(&ChannelLabel {
                            channel: channel.as_str(),
                        })
                        .inc();
                    tracing::warn!(symbol = %symbol, %channel, error = e, "Kraken refused the subscription; other symbols are unaffected");
                    lock(&self.board)
                        .entry(symbol.clone())
                        .or_default()
                        .last_error = Some(e.to_owned());
                    let kind = match channel {
                        Channel::Trade => TickKind::Trade,
                        Channel::Ticker => TickKind::Quote,
                    };
                    let pending = match channel {
                        Channel::Trade => st.gap_trade.take(),
                        Channel::Ticker => st.gap_quote.take(),
                    };
                    if let Some(p) = pending {
                        let detail = format!("{}; resubscription refused: {e}", p.detail);
                        let item = self.gap(
                            &symbol,
                            kind,
                            p.from,
                            UnixNanos::now(),
                            GapReason::VenueError,
                            detail,
                        );
                        eff.items.push(item);
                    }
                }
            }
            self.refresh_status(&symbol);
        }
    }

    fn on_data(
        &mut self,
        channel: Channel,
        ticks: &mut Vec<Tick>,
        received_at: UnixNanos,
        arrived: Instant,
        eff: &mut Effects,
    ) {
        for tick in ticks.drain(..) {
            let symbol = tick.symbol().clone();
            let Some(st) = self.symbols.get_mut(&symbol) else {
                self.skip("not_subscribed");
                continue;
            };
            if *st.channel(channel) == ChannelState::Down {
                self.skip("not_subscribed");
                continue;
            }
            match tick {
                Tick::Trade(t) => {
                    let id = t.trade_id.parse::<u64>().ok();
                    if let (Some(id), Some(last)) = (id, st.last_trade_id)
                        && id <= last
                    {
                        self.skip("duplicate");
                        continue;
                    }
                    if let Some(p) = st.gap_trade.take() {
                        let continuous = matches!((id, st.last_trade_id), (Some(id), Some(last)) if id == last + 1);
                        if continuous {
                            self.metrics.gaps_avoided.inc();
                            tracing::info!(symbol = %symbol, from = %p.from, "reconnected without missing a trade (trade ids continuous)");
                        } else {
                            let item = self.gap(
                                &symbol,
                                TickKind::Trade,
                                p.from,
                                received_at,
                                p.reason,
                                p.detail,
                            );
                            eff.items.push(item);
                        }
                    } else if self.cfg.trade_id_gaps
                        && let (Some(id), Some(last)) = (id, st.last_trade_id)
                        && id > last + 1
                    {
                        let detail = format!(
                            "trade ids {}..={} never arrived ({} trades)",
                            last + 1,
                            id - 1,
                            id - last - 1
                        );
                        let from = st.last_trade_time;
                        let item = self.gap(
                            &symbol,
                            TickKind::Trade,
                            from,
                            t.event_time,
                            GapReason::VenueError,
                            detail,
                        );
                        eff.items.push(item);
                    }
                    // Re-borrow after `self.gap` (which only reads metrics).
                    let Some(st) = self.symbols.get_mut(&symbol) else {
                        continue;
                    };
                    if id.is_some() {
                        st.last_trade_id = id;
                    }
                    st.last_trade_time = t.event_time;
                    eff.items.push(Item::Tick {
                        tick: Tick::Trade(t),
                        arrived,
                    });
                }
                Tick::Quote(mut q) => {
                    if let Some(p) = st.gap_quote.take() {
                        let item = self.gap(
                            &symbol,
                            TickKind::Quote,
                            p.from,
                            received_at,
                            p.reason,
                            p.detail,
                        );
                        eff.items.push(item);
                    }
                    let Some(st) = self.symbols.get_mut(&symbol) else {
                        continue;
                    };
                    if let Some(last) = &st.last_quote
                        && last.event_time == q.event_time
                    {
                        if (last.bid, last.ask, last.bid_size, last.ask_size)
                            == (q.bid, q.ask, q.bid_size, q.ask_size)
                        {
                            self.skip("duplicate");
                            continue;
                        }
                        q.sequence = last.sequence + 1;
                    }
                    q.indicative = !self.system_online;
                    st.last_quote = Some(q.clone());
                    eff.items.push(Item::Tick {
                        tick: Tick::Quote(q),
                        arrived,
                    });
                }
                Tick::Gap(_) | Tick::Coverage(_) => {}
            }
            let mut board = lock(&self.board);
            let entry = board.entry(symbol).or_default();
            entry.last_tick_at = Some(received_at);
            entry.ticks += 1;
        }
    }

    fn skip(&self, reason: &'static str) {
        self.metrics
            .skipped
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }
}

/// How long the session waits between checks of its timeouts.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kraken::parse::parse_frame;

    fn session() -> Session {
        Session::new(
            Arc::new(KrakenConfig::default()),
            Metrics::unregistered(),
            StatusBoard::default(),
        )
    }

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    /// Feeds one frame; returns the ticks and gaps queued.
    fn feed(s: &mut Session, text: &str, eff: &mut Effects) -> Vec<Tick> {
        let mut ticks = Vec::new();
        let mut bad = Vec::new();
        let frame = parse_frame(text, UnixNanos(5), &mut ticks, &mut bad).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        s.on_frame(frame, &mut ticks, UnixNanos(5), Instant::now(), eff);
        eff.items
            .drain(..)
            .filter_map(|i| match i {
                Item::Tick { tick, .. } => Some(tick),
                _ => None,
            })
            .collect()
    }

    /// Connected with BTC/USD subscribed on both channels (acks for req 1 and 2).
    fn subscribed() -> Session {
        let mut s = session();
        let mut eff = Effects::default();
        s.set_desired(&[sym("BTC/USD")].into(), Instant::now(), &mut eff);
        s.on_connected(Instant::now(), &mut eff);
        assert_eq!(eff.requests.len(), 2);
        assert!(
            eff.requests[0].contains(r#""channel":"trade""#)
                && eff.requests[0].contains(r#""req_id":1"#)
        );
        assert!(eff.requests[1].contains(r#""event_trigger":"bbo""#));
        for (id, ch) in [(1, "trade"), (2, "ticker")] {
            feed(
                &mut s,
                &format!(
                    r#"{{"method":"subscribe","req_id":{id},"result":{{"channel":"{ch}","symbol":"BTC/USD"}},"success":true}}"#
                ),
                &mut eff,
            );
        }
        assert!(s.is_settled());
        s
    }

    fn ticker(bid: &str, ts: &str) -> String {
        format!(
            r#"{{"channel":"ticker","type":"update","data":[{{"symbol":"BTC/USD","bid":{bid},"bid_qty":1,"ask":70000.5,"ask_qty":2,"timestamp":"{ts}"}}]}}"#
        )
    }

    #[test]
    fn quotes_with_one_timestamp_are_numbered_and_repeats_dropped() {
        let mut s = subscribed();
        let mut eff = Effects::default();
        let ts = "2024-01-01T00:00:00.000001Z";
        let mut seqs = Vec::new();
        for bid in ["70000.1", "70000.2", "70000.2", "70000.3"] {
            for t in feed(&mut s, &ticker(bid, ts), &mut eff) {
                let Tick::Quote(q) = t else { panic!() };
                seqs.push(q.sequence);
            }
        }
        assert_eq!(
            seqs,
            [0, 1, 2],
            "the exact repeat is dropped, the rest numbered"
        );
        let later = feed(
            &mut s,
            &ticker("70000.4", "2024-01-01T00:00:00.000002Z"),
            &mut eff,
        );
        let Tick::Quote(q) = &later[0] else { panic!() };
        assert_eq!(q.sequence, 0, "a new timestamp starts again at 0");
    }

    #[test]
    fn replies_are_routed_by_req_id_not_by_method() {
        let mut s = subscribed();
        let mut eff = Effects::default();
        s.set_desired(&BTreeSet::new(), Instant::now(), &mut eff);
        assert_eq!(eff.requests.len(), 2, "unsubscribe trade and ticker");
        assert!(eff.requests[0].contains(r#""method":"unsubscribe""#));
        // Kraken answers an unsubscribe with method "subscribe" when it has nothing to remove.
        feed(
            &mut s,
            r#"{"error":"Subscription Not Found","method":"subscribe","req_id":3,"success":false,"symbol":"BTC/USD"}"#,
            &mut eff,
        );
        // Request 3 was the trade unsubscribe: trade is down, ticker still unsubscribing.
        assert_eq!(
            s.channel_state(&sym("BTC/USD"), Channel::Trade),
            Some(&ChannelState::Down)
        );
        let mut eff = Effects::default();
        feed(
            &mut s,
            r#"{"method":"unsubscribe","req_id":4,"result":{"channel":"ticker","symbol":"BTC/USD"},"success":true}"#,
            &mut eff,
        );
        assert!(
            s.channel_state(&sym("BTC/USD"), Channel::Ticker).is_none(),
            "removed"
        );
    }

    #[test]
    fn a_refusal_touches_only_its_symbol() {
        let mut s = session();
        let mut eff = Effects::default();
        s.set_desired(
            &[sym("BTC/USD"), sym("XBT/EUR")].into(),
            Instant::now(),
            &mut eff,
        );
        s.on_connected(Instant::now(), &mut eff);
        feed(
            &mut s,
            r#"{"error":"Currency pair not supported BTC/EUR","method":"subscribe","req_id":1,"success":false,"symbol":"BTC/EUR"}"#,
            &mut eff,
        );
        // Wanted as XBT/EUR, held (and refused) under its canonical name.
        assert!(s.channel_state(&sym("XBT/EUR"), Channel::Trade).is_none());
        assert!(matches!(
            s.channel_state(&sym("BTC/EUR"), Channel::Trade),
            Some(ChannelState::Refused(e)) if e.contains("not supported")
        ));
        assert!(matches!(
            s.channel_state(&sym("BTC/USD"), Channel::Trade),
            Some(ChannelState::Pending { .. })
        ));
    }

    #[test]
    fn an_overdue_ack_is_resent_once_then_the_connection_is_given_up() {
        let mut s = session();
        let mut eff = Effects::default();
        let t0 = Instant::now();
        s.set_desired(&[sym("BTC/USD")].into(), t0, &mut eff);
        s.on_connected(t0, &mut eff);
        eff.requests.clear();
        let late = t0 + Duration::from_secs(11);
        assert!(s.check_timeouts(late, &mut eff).is_ok());
        assert_eq!(eff.requests.len(), 2, "both channels subscribed again");
        let err = s
            .check_timeouts(late + Duration::from_secs(11), &mut eff)
            .unwrap_err();
        assert!(err.contains("not acknowledged after 2 attempts"), "{err}");
    }
}
