use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;
use smol_str::SmolStr;

use crate::Symbol;

/// An instant as nanoseconds since the Unix epoch (UTC). Both of a tick's times use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixNanos(pub i64);

impl UnixNanos {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// Milliseconds since the epoch, rounded down, clamped at 0: Pulsar's event-time convention.
    pub fn as_millis_u64(self) -> u64 {
        u64::try_from(self.0.div_euclid(1_000_000)).unwrap_or(0)
    }

    /// From whole seconds and a nanosecond fraction.
    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Self {
        Self(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(i64::from(nanos)),
        )
    }
}

impl From<SystemTime> for UnixNanos {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(e) => Self(i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n)),
        }
    }
}

impl From<UnixNanos> for SystemTime {
    fn from(t: UnixNanos) -> Self {
        if t.0 >= 0 {
            UNIX_EPOCH + Duration::from_nanos(t.0.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_nanos(t.0.unsigned_abs())
        }
    }
}

/// The venues tickflow reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Kraken spot, WebSocket v2.
    Kraken,
    /// OANDA v20 pricing stream.
    Oanda,
    /// Dukascopy historical ticks.
    Dukascopy,
}

impl Source {
    /// Every source, in a fixed order.
    pub const ALL: [Source; 3] = [Source::Kraken, Source::Oanda, Source::Dukascopy];

    /// The lower-case name used in topic names, messages and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Kraken => "kraken",
            Source::Oanda => "oanda",
            Source::Dukascopy => "dukascopy",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Source {
    type Err = crate::SchemaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|src| src.as_str() == s)
            .ok_or_else(|| crate::SchemaError::UnknownSource(s.to_owned()))
    }
}

/// The aggressor side of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Side {
    /// The venue did not say.
    #[default]
    Unknown,
    /// A buyer took an offer.
    Buy,
    /// A seller hit a bid.
    Sell,
}

/// What a topic carries and what a gap is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TickKind {
    /// Trades.
    Trade,
    /// Best bid and offer.
    Quote,
}

impl TickKind {
    /// The lower-case name used in topic names.
    pub const fn as_str(self) -> &'static str {
        match self {
            TickKind::Trade => "trade",
            TickKind::Quote => "quote",
        }
    }
}

impl fmt::Display for TickKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One executed trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    /// The venue.
    pub source: Source,
    /// Canonical symbol, `BTC/USD`.
    pub symbol: Symbol,
    /// The venue's own symbol, `XBT/USD`.
    pub venue_symbol: SmolStr,
    /// The venue's event time.
    pub event_time: UnixNanos,
    /// When tickflow received it.
    pub received_at: UnixNanos,
    /// Price, exactly as the venue sent it.
    pub price: Decimal,
    /// Size, exactly as the venue sent it.
    pub size: Decimal,
    /// Aggressor side.
    pub side: Side,
    /// The venue's trade id: the unique key within (source, symbol).
    pub trade_id: SmolStr,
}

/// The best bid and offer at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The venue.
    pub source: Source,
    /// Canonical symbol.
    pub symbol: Symbol,
    /// The venue's own symbol.
    pub venue_symbol: SmolStr,
    /// The venue's event time.
    pub event_time: UnixNanos,
    /// When tickflow received it.
    pub received_at: UnixNanos,
    /// Best bid.
    pub bid: Decimal,
    /// Best ask.
    pub ask: Decimal,
    /// Quantity at the best bid.
    pub bid_size: Decimal,
    /// Quantity at the best ask.
    pub ask_size: Decimal,
    /// Unique key within (source, symbol, event time): the venue's sequence, or the position among
    /// quotes with the same event time.
    pub sequence: u64,
    /// The venue marked the price as indicative (not tradeable).
    pub indicative: bool,
}

/// Why data may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GapReason {
    /// Not said (or a reason from a newer schema).
    Unspecified,
    /// The venue connection was lost or replaced.
    Disconnect,
    /// The venue reported an error for the symbol.
    VenueError,
    /// Our process stopped, or a replica handed the symbol over.
    Handover,
    /// Ticks were dropped on our side.
    Dropped,
    /// The venue could not serve a range of history.
    Unavailable,
}

/// An interval `[from, to)` in which ticks of `kind` may be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The venue.
    pub source: Source,
    /// Canonical symbol.
    pub symbol: Symbol,
    /// Which ticks may be missing.
    pub kind: TickKind,
    /// Start of the interval (inclusive).
    pub from: UnixNanos,
    /// End of the interval (exclusive).
    pub to: UnixNanos,
    /// Why.
    pub reason: GapReason,
    /// Detail, for example the venue's error text.
    pub detail: String,
    /// When the gap was detected.
    pub detected_at: UnixNanos,
}

/// Whether an hour of historical data is all there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoverageStatus {
    /// Not said (or a status from a newer schema).
    Unspecified,
    /// Every tick of the hour was published.
    Complete,
    /// No ticks: the market was closed.
    Closed,
    /// The venue could not serve the hour: data missing.
    Missing,
}

impl CoverageStatus {
    /// The name stored in the database: `unspecified`, `complete`, `closed`, `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageStatus::Unspecified => "unspecified",
            CoverageStatus::Complete => "complete",
            CoverageStatus::Closed => "closed",
            CoverageStatus::Missing => "missing",
        }
    }
}

/// One hour of historical data of one (source, symbol, kind), and whether it is all there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The venue.
    pub source: Source,
    /// Canonical symbol.
    pub symbol: Symbol,
    /// Which ticks.
    pub kind: TickKind,
    /// Start of the hour (UTC).
    pub hour: UnixNanos,
    /// Complete, closed or missing.
    pub status: CoverageStatus,
    /// Ticks published for the hour.
    pub ticks: u64,
    /// Detail, for example the last error.
    pub detail: String,
    /// When the marker was made.
    pub recorded_at: UnixNanos,
}

/// Anything that travels on a data topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// A trade.
    Trade(Trade),
    /// A quote.
    Quote(Quote),
    /// A gap.
    Gap(Gap),
    /// A coverage marker of an hour of history.
    Coverage(Coverage),
}

impl Tick {
    /// The venue.
    pub fn source(&self) -> Source {
        match self {
            Tick::Trade(t) => t.source,
            Tick::Quote(q) => q.source,
            Tick::Gap(g) => g.source,
            Tick::Coverage(c) => c.source,
        }
    }

    /// The canonical symbol: the Pulsar message key.
    pub fn symbol(&self) -> &Symbol {
        match self {
            Tick::Trade(t) => &t.symbol,
            Tick::Quote(q) => &q.symbol,
            Tick::Gap(g) => &g.symbol,
            Tick::Coverage(c) => &c.symbol,
        }
    }

    /// The topic kind this message belongs on.
    pub fn kind(&self) -> TickKind {
        match self {
            Tick::Trade(_) => TickKind::Trade,
            Tick::Quote(_) => TickKind::Quote,
            Tick::Gap(g) => g.kind,
            Tick::Coverage(c) => c.kind,
        }
    }

    /// The venue's event time (for a gap, when it was detected; for coverage, the hour's
    /// start): the Pulsar event time.
    pub fn event_time(&self) -> UnixNanos {
        match self {
            Tick::Trade(t) => t.event_time,
            Tick::Quote(q) => q.event_time,
            Tick::Gap(g) => g.detected_at,
            Tick::Coverage(c) => c.hour,
        }
    }
}
