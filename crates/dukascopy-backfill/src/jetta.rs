//! Dukascopy's JSON data API (`jetta`): one hour of ticks → exact domain quotes.
//!
//! See PROTOCOLS.md §3.7. Since July 2026 the `.bi5` datafeed has stopped sending bodies and
//! dukascopy-node (≥ 1.49) reads `https://jetta.dukascopy.com/v1/ticks/{CODE}/{YYYY}/{M}/{D}/{H}`
//! instead (`CODE` like `EUR-USD`, **1-based month**, no zero padding). The answer is one JSON
//! object with columns, delta-encoded:
//!
//! ```json
//! {"timestamp":1783944000000,"multiplier":1.0E-5,"ask":1.14277,"bid":1.14273,
//!  "times":[93,104,…],"asks":[0,-1,…],"bids":[0,2,…],
//!  "askVolumes":[1800000.0,…],"bidVolumes":[2700000.0,…]}
//! ```
//!
//! - `timestamp` is the hour's start in ms; tick 0 is at `timestamp + times[0]`, tick i at
//!   tick (i-1) + `times[i]`.
//! - `ask`/`bid` are the base prices; tick 0's ask in points is the base ask's points +
//!   `asks[0]`, tick i's is tick (i-1)'s + `asks[i]` (the same for bids). `multiplier` is the
//!   point value.
//! - `askVolumes`/`bidVolumes` are in **units** of the base currency (the datafeed's `1.8`
//!   millions is `1800000.0` here), not deltas.
//! - An hour without ticks has `ask`/`bid` `null` and empty columns.
//!
//! [`quotes`] decodes one answer in one serde pass into typed columns (no `serde_json::Value`),
//! checks everything and builds the same [`Quote`]s [`crate::ticks::quotes`] builds from the
//! `.bi5` file of that hour. Nothing here panics on hostile input: every problem is a
//! [`JettaError`].

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use smol_str::SmolStr;
use tickflow_schema::{Quote, Source, Symbol, UnixNanos};

use crate::instruments::price_scale;
use crate::ticks::NANOS_PER_HOUR;

/// A generous cap on the ticks of one hour, the same order as the `.bi5` decoder's 32 MiB
/// output cap ([`crate::bi5::DEFAULT_MAX_OUTPUT`] / 20 bytes ≈ 1.68 million ticks; the
/// fixtures' busiest hour has 8523).
pub const DEFAULT_MAX_TICKS: usize = 1_600_000;

/// Milliseconds in an hour: a tick's offset from the hour start is below this.
const MS_PER_HOUR: i64 = 3_600_000;

/// Nanoseconds in a millisecond.
const NANOS_PER_MS: i64 = 1_000_000;

/// Longest serde message kept in [`JettaError::Json`].
const MAX_MESSAGE_LEN: usize = 200;

/// What is wrong with a JSON API answer, or with the request to turn it into quotes.
///
/// [`JettaError::Html`] and [`JettaError::Json`] (a block page, a truncated download) are worth
/// downloading again; the others will not change on the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JettaError {
    /// The body is an HTML page.
    #[error("HTML page instead of JSON (a block page?): it starts with {starts_with:?}")]
    Html {
        /// The first characters.
        starts_with: String,
    },
    /// The body is not JSON of the expected shape.
    #[error("not a Dukascopy JSON tick answer: {0}")]
    Json(String),
    /// The symbol is not in [`crate::instruments`], so its point value is unknown.
    #[error(
        "no price scale for {0}: not in tickflow's Dukascopy instrument table (add it with its decimal factor from the datafeed's metadata)"
    )]
    UnknownInstrument(String),
    /// `hour_start` is not on an hour boundary.
    #[error("hour_start {0} is not on a UTC hour boundary")]
    NotAligned(UnixNanos),
    /// The answer is for another hour.
    #[error(
        "answer for another hour: its timestamp is {timestamp_ms} ms, the requested hour starts at {expected_ms} ms"
    )]
    WrongHour {
        /// The answer's `timestamp`.
        timestamp_ms: i64,
        /// The requested hour's start.
        expected_ms: i64,
    },
    /// The answer's point value is not the one tickflow's instrument table has.
    #[error(
        "multiplier {found} does not match {symbol}'s point value 1E-{scale} in tickflow's instrument table (the table is the authority: check the instrument)"
    )]
    Multiplier {
        /// The answer's `multiplier`, as sent.
        found: String,
        /// The symbol.
        symbol: String,
        /// The table's decimal places.
        scale: u32,
    },
    /// A column has more entries than the cap.
    #[error(
        "`{column}` has more than {max} ticks: refused (the cap on one hour; a decompression-bomb-like answer or a wrong endpoint)"
    )]
    TooManyTicks {
        /// The column that went past the cap.
        column: &'static str,
        /// The cap given to [`quotes`].
        max: usize,
    },
    /// The columns do not all have the same length.
    #[error(
        "columns of different lengths: times {times}, asks {asks}, bids {bids}, askVolumes {ask_volumes}, bidVolumes {bid_volumes}"
    )]
    ColumnLengths {
        /// `times.len()`.
        times: usize,
        /// `asks.len()`.
        asks: usize,
        /// `bids.len()`.
        bids: usize,
        /// `askVolumes.len()`.
        ask_volumes: usize,
        /// `bidVolumes.len()`.
        bid_volumes: usize,
    },
    /// A base price is `null` but the hour has ticks.
    #[error("base `{which}` is null but the hour has {ticks} ticks")]
    MissingBase {
        /// `ask` or `bid`.
        which: &'static str,
        /// The number of ticks.
        ticks: usize,
    },
    /// A base price that is not a whole number of points at the instrument's scale.
    #[error("base `{which}` {text} is not a usable price at scale {scale}: {reason}")]
    BasePrice {
        /// `ask` or `bid`.
        which: &'static str,
        /// The value as sent (shortened).
        text: String,
        /// The instrument's decimal places.
        scale: u32,
        /// Why.
        reason: &'static str,
    },
    /// A tick's time is not inside the requested hour.
    #[error(
        "tick {index}: time outside the hour ({offset_ms} ms after the hour start; an hour has 0..=3599999)"
    )]
    TickOutsideHour {
        /// The tick's position in the hour (0-based).
        index: usize,
        /// Its offset from the hour start.
        offset_ms: i128,
    },
    /// A running price went below zero or past the range of an `i64`.
    #[error("tick {index}: {side} price {reason}")]
    Price {
        /// The tick's position in the hour (0-based).
        index: usize,
        /// `ask` or `bid`.
        side: &'static str,
        /// `goes negative` or `overflows`.
        reason: &'static str,
    },
    /// A volume that cannot be an exact, non-negative size.
    #[error("{what}: volume {value} is not a usable size: {reason}")]
    Volume {
        /// Which tick and field, e.g. `tick 12 ask volume`.
        what: String,
        /// The float as text.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A tick time beyond the range of [`UnixNanos`].
    #[error("tick {index}: time out of range")]
    TimeOutOfRange {
        /// The tick's position in the hour (0-based).
        index: usize,
    },
}

/// Decodes one hour of the JSON API into quotes.
///
/// - `symbol` must be in [`crate::instruments`] ([`JettaError::UnknownInstrument`]);
///   `venue_symbol` is stored as given (e.g. `EUR-USD`, the API's code).
/// - `hour_start` must be on an hour boundary and equal the answer's `timestamp`
///   ([`JettaError::WrongHour`]): the answer is for the hour that was asked for.
/// - `multiplier` must be 10^-scale of the instrument's table scale; the base `ask`/`bid` are
///   read from their JSON text exactly (no float) and must be whole points at that scale.
/// - Every column may hold at most `max_ticks` entries (checked while parsing, so a huge answer
///   is refused without building it); all five must have the same length.
/// - Every tick's time must be in `[hour_start, hour_start + 1 h)`; running prices must stay
///   non-negative. Times need not increase.
/// - An empty hour (`ask`/`bid` `null`, empty columns) is `Ok(vec![])`.
///
/// The quotes follow [`crate::ticks::quotes`]: `sequence` is the tick's 0-based position in the
/// hour, `source` [`Source::Dukascopy`], `indicative` false, prices exact points at the
/// instrument's scale, sizes in units of the base currency (see [`volume_units`]).
pub fn quotes(
    body: &[u8],
    symbol: &Symbol,
    venue_symbol: &str,
    hour_start: UnixNanos,
    received_at: UnixNanos,
    max_ticks: usize,
) -> Result<Vec<Quote>, JettaError> {
    if let Some(html) = html_start(body) {
        return Err(JettaError::Html { starts_with: html });
    }
    let scale = price_scale(symbol)
        .ok_or_else(|| JettaError::UnknownInstrument(symbol.as_str().to_owned()))?;
    if hour_start.0.rem_euclid(NANOS_PER_HOUR) != 0 {
        return Err(JettaError::NotAligned(hour_start));
    }
    let expected_ms = hour_start.0.div_euclid(NANOS_PER_MS);

    let hour = parse(body, max_ticks)?;

    if hour.timestamp != expected_ms {
        return Err(JettaError::WrongHour {
            timestamp_ms: hour.timestamp,
            expected_ms,
        });
    }
    let lengths = [
        hour.times.len(),
        hour.asks.len(),
        hour.bids.len(),
        hour.ask_volumes.len(),
        hour.bid_volumes.len(),
    ];
    if lengths.iter().any(|&len| len != lengths[0]) {
        let [times, asks, bids, ask_volumes, bid_volumes] = lengths;
        return Err(JettaError::ColumnLengths {
            times,
            asks,
            bids,
            ask_volumes,
            bid_volumes,
        });
    }
    let count = lengths[0];
    let multiplier_ok = match hour.multiplier {
        Some(raw) => ExactNumber::parse(raw.get()).is_some_and(|m| m.is_power_of_ten(scale)),
        // Tolerated for an empty hour only (the API has not been seen sending it).
        None => count == 0,
    };
    if !multiplier_ok {
        return Err(JettaError::Multiplier {
            found: hour
                .multiplier
                .map_or_else(|| "null".to_owned(), |m| shorten(m.get())),
            symbol: symbol.as_str().to_owned(),
            scale,
        });
    }
    let base_ask = base_points(hour.ask, "ask", scale, count)?;
    let base_bid = base_points(hour.bid, "bid", scale, count)?;
    let (Some(mut ask), Some(mut bid)) = (base_ask, base_bid) else {
        // A null base: `base_points` accepts it for an empty hour only.
        return Ok(Vec::new());
    };
    if count == 0 {
        return Ok(Vec::new());
    }

    let venue_symbol = SmolStr::new(venue_symbol);
    let mut sizes = SizeCache::default();
    let mut offset_ms: i64 = 0;
    let mut out = Vec::with_capacity(count);
    let columns = hour
        .times
        .iter()
        .zip(&hour.asks)
        .zip(&hour.bids)
        .zip(hour.ask_volumes.iter().zip(&hour.bid_volumes));
    for (index, (((&dt, &da), &db), (&ask_volume, &bid_volume))) in columns.enumerate() {
        // Both terms are small or i64: the sum cannot overflow an i128.
        let offset = i128::from(offset_ms) + i128::from(dt);
        offset_ms = match i64::try_from(offset) {
            Ok(o) if (0..MS_PER_HOUR).contains(&o) => o,
            _ => {
                return Err(JettaError::TickOutsideHour {
                    index,
                    offset_ms: offset,
                });
            }
        };
        ask = step(ask, da, index, "ask")?;
        bid = step(bid, db, index, "bid")?;
        let event_time = hour_start
            .0
            .checked_add(offset_ms * NANOS_PER_MS)
            .map(UnixNanos)
            .ok_or(JettaError::TimeOutOfRange { index })?;
        let sequence = u64::try_from(index).map_err(|_| JettaError::TimeOutOfRange { index })?;
        out.push(Quote {
            source: Source::Dukascopy,
            symbol: symbol.clone(),
            venue_symbol: venue_symbol.clone(),
            event_time,
            received_at,
            bid: price(bid, scale, index, "bid")?,
            ask: price(ask, scale, index, "ask")?,
            bid_size: sizes
                .units(bid_volume)
                .map_err(|e| e.at(format!("tick {index} bid volume")))?,
            ask_size: sizes
                .units(ask_volume)
                .map_err(|e| e.at(format!("tick {index} ask volume")))?,
            sequence,
            indicative: false,
        });
    }
    Ok(out)
}

/// The next running price in points: non-negative, no overflow.
fn step(points: i64, delta: i64, index: usize, side: &'static str) -> Result<i64, JettaError> {
    match points.checked_add(delta) {
        Some(p) if p >= 0 => Ok(p),
        Some(_) => Err(JettaError::Price {
            index,
            side,
            reason: "goes negative",
        }),
        None => Err(JettaError::Price {
            index,
            side,
            reason: "overflows",
        }),
    }
}

/// An exact price from non-negative points.
fn price(points: i64, scale: u32, index: usize, side: &'static str) -> Result<Decimal, JettaError> {
    Decimal::try_new(points, scale).map_err(|_| JettaError::Price {
        index,
        side,
        reason: "does not fit a decimal",
    })
}

/// The base price's points, `None` for a null base of an empty hour.
fn base_points(
    raw: Option<&RawValue>,
    which: &'static str,
    scale: u32,
    ticks: usize,
) -> Result<Option<i64>, JettaError> {
    let Some(raw) = raw else {
        return if ticks == 0 {
            Ok(None)
        } else {
            Err(JettaError::MissingBase { which, ticks })
        };
    };
    let text = raw.get();
    let fail = |reason| JettaError::BasePrice {
        which,
        text: shorten(text),
        scale,
        reason,
    };
    let number = ExactNumber::parse(text).ok_or_else(|| fail("not a JSON number"))?;
    if number.negative && number.mantissa != 0 {
        return Err(fail("negative"));
    }
    number.points(scale).map(Some).map_err(fail)
}

/// If the body is an HTML page (its first non-blank character is `<`), its start.
fn html_start(body: &[u8]) -> Option<String> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &body[start..];
    if rest.first() != Some(&b'<') {
        return None;
    }
    let shown = &rest[..rest.len().min(60)];
    let text: String = String::from_utf8_lossy(shown)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Some(text)
}

/// At most [`MAX_MESSAGE_LEN`] bytes of a message, cut on a character boundary.
fn shorten(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_LEN {
        return text.to_owned();
    }
    let mut end = MAX_MESSAGE_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} …", &text[..end])
}

// ---------------------------------------------------------------------------------------------
// Exact JSON numbers.

/// A JSON number's value, exactly: `(-1)^negative × mantissa × 10^exponent`, the mantissa
/// without trailing zeros (zero has exponent 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ExactNumber {
    negative: bool,
    mantissa: u128,
    exponent: i64,
}

impl ExactNumber {
    /// Parses JSON number text (`-`? int (`.` digits)? ([eE] [+-]? digits)?). `None` if it is
    /// not a number or has more significant digits than a `u128` holds.
    fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let mut i = 0;
        let negative = bytes.first() == Some(&b'-');
        if negative {
            i += 1;
        }
        let mut mantissa: u128 = 0;
        let mut exponent: i64 = 0;
        let mut pending_zeros: i64 = 0;
        let mut digits = 0usize;
        let mut push = |d: u8, fraction: bool, exponent: &mut i64| -> Option<()> {
            if fraction {
                *exponent -= 1;
            }
            if d == 0 {
                // Trailing zeros are kept aside until a non-zero digit follows.
                pending_zeros += 1;
                return Some(());
            }
            for _ in 0..pending_zeros {
                mantissa = mantissa.checked_mul(10)?;
            }
            pending_zeros = 0;
            mantissa = mantissa.checked_mul(10)?.checked_add(u128::from(d))?;
            Some(())
        };
        let int_start = i;
        while let Some(&b) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
            push(b - b'0', false, &mut exponent)?;
            digits += 1;
            i += 1;
        }
        if digits == 0 || (bytes.get(int_start) == Some(&b'0') && digits > 1) {
            return None;
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while let Some(&b) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
                push(b - b'0', true, &mut exponent)?;
                i += 1;
            }
            if i == start {
                return None;
            }
        }
        // Zeros after the last non-zero digit: they scale the value up by 10 each.
        exponent = exponent.checked_add(pending_zeros)?;
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            let exp_negative = match bytes.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            let mut e: i64 = 0;
            while let Some(&b) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
                // Saturate: an exponent this large makes the value unusable anyway.
                e = e.saturating_mul(10).saturating_add(i64::from(b - b'0'));
                i += 1;
            }
            if i == start {
                return None;
            }
            exponent = exponent.saturating_add(if exp_negative { -e } else { e });
        }
        if i != bytes.len() {
            return None;
        }
        if mantissa == 0 {
            exponent = 0;
        }
        Some(Self {
            negative,
            mantissa,
            exponent,
        })
    }

    /// Is this exactly 10^-scale?
    fn is_power_of_ten(&self, scale: u32) -> bool {
        !self.negative && self.mantissa == 1 && self.exponent == -i64::from(scale)
    }

    /// The value × 10^scale as an integer (the sign is ignored; the caller checks it).
    fn points(&self, scale: u32) -> Result<i64, &'static str> {
        if self.mantissa == 0 {
            return Ok(0);
        }
        let shift = self.exponent.saturating_add(i64::from(scale));
        if shift < 0 {
            return Err("not a whole number of points");
        }
        u32::try_from(shift)
            .ok()
            .and_then(|s| 10u128.checked_pow(s))
            .and_then(|p| self.mantissa.checked_mul(p))
            .and_then(|p| i64::try_from(p).ok())
            .ok_or("too large")
    }
}

// ---------------------------------------------------------------------------------------------
// Volumes.

/// Why a volume is not a size; [`VolumeError::at`] names the tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeError {
    value: String,
    reason: &'static str,
}

impl VolumeError {
    /// The [`JettaError`] for the field `what` (e.g. `tick 12 bid volume`).
    pub fn at(self, what: String) -> JettaError {
        JettaError::Volume {
            what,
            value: self.value,
            reason: self.reason,
        }
    }
}

/// A JSON API volume (a float, already in **units** of the base currency) as an exact size.
///
/// Like [`crate::ticks::volume_units`] without the ×10^6 (the API sends units, `1800000.0`):
/// the float's shortest round-trip text (`format!("{v}")`) parsed exactly into a [`Decimal`]
/// and normalised (`1800000.0` → `1800000`, `0.5` → `0.5`). NaN, infinities, negative values
/// and floats whose text does not fit a decimal exactly (more than 28 digits) are errors; `-0`
/// is 0. Whole numbers up to 2^53 take a fast path with the same result.
pub fn volume_units(v: f64) -> Result<Decimal, VolumeError> {
    if let Some(units) = whole_units(v) {
        return Ok(units);
    }
    volume_units_via_text(v)
}

/// A whole, non-negative float up to 2^53 as a decimal, without text; `None` otherwise.
///
/// Up to 2^53 every integer is a double, so the shortest text of a whole double is its exact
/// value; above, the shortest text may end in zeros the double does not have
/// (`36968804089311205.0` is written `36968804089311210`), so those take the text path.
fn whole_units(v: f64) -> Option<Decimal> {
    const LIMIT: f64 = 9_007_199_254_740_992.0;
    if !(0.0..=LIMIT).contains(&v) {
        return None;
    }
    // Exact when `v` is whole: the round trip checks it.
    let n = v as i64;
    (n as f64 == v).then(|| Decimal::from(n))
}

/// The reference conversion through the float's shortest text.
fn volume_units_via_text(v: f64) -> Result<Decimal, VolumeError> {
    let value = format!("{v}");
    let fail = |reason| VolumeError {
        value: value.clone(),
        reason,
    };
    if !v.is_finite() {
        return Err(fail("not a finite number"));
    }
    let units = Decimal::from_str_exact(&value)
        .map_err(|_| fail("its decimal text does not fit a decimal exactly"))?;
    if units.is_zero() {
        return Ok(Decimal::ZERO);
    }
    if units.is_sign_negative() {
        return Err(fail("negative"));
    }
    Ok(units.normalize())
}

/// [`volume_units`] with the last non-whole values remembered (an hour repeats a few volumes).
#[derive(Debug, Default)]
struct SizeCache {
    last: Option<(u64, Decimal)>,
}

impl SizeCache {
    fn units(&mut self, v: f64) -> Result<Decimal, VolumeError> {
        if let Some(units) = whole_units(v) {
            return Ok(units);
        }
        let bits = v.to_bits();
        if let Some((b, units)) = self.last
            && b == bits
        {
            return Ok(units);
        }
        let units = volume_units_via_text(v)?;
        self.last = Some((bits, units));
        Ok(units)
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing: one serde pass into typed columns, each capped while it is read.

/// The answer's fields, as sent.
#[derive(Debug)]
struct Hour<'a> {
    timestamp: i64,
    multiplier: Option<&'a RawValue>,
    ask: Option<&'a RawValue>,
    bid: Option<&'a RawValue>,
    times: Vec<i64>,
    asks: Vec<i64>,
    bids: Vec<i64>,
    ask_volumes: Vec<f64>,
    bid_volumes: Vec<f64>,
}

/// Parses the body; a column over `max_ticks` is [`JettaError::TooManyTicks`].
fn parse(body: &[u8], max_ticks: usize) -> Result<Hour<'_>, JettaError> {
    let over_cap = Cell::new(None);
    let seed = HourSeed {
        max_ticks,
        over_cap: &over_cap,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = seed.deserialize(&mut de).and_then(|hour| {
        de.end()?;
        Ok(hour)
    });
    parsed.map_err(|e| match over_cap.get() {
        Some(column) => JettaError::TooManyTicks {
            column,
            max: max_ticks,
        },
        None => JettaError::Json(shorten(&e.to_string())),
    })
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    Timestamp,
    Multiplier,
    Ask,
    Bid,
    Times,
    Asks,
    Bids,
    AskVolumes,
    BidVolumes,
    #[serde(other)]
    Other,
}

struct HourSeed<'c> {
    max_ticks: usize,
    over_cap: &'c Cell<Option<&'static str>>,
}

impl<'c> HourSeed<'c> {
    fn column<T>(&self, name: &'static str) -> Column<'c, T> {
        Column {
            name,
            max: self.max_ticks,
            over_cap: self.over_cap,
            _t: PhantomData,
        }
    }
}

impl<'de> DeserializeSeed<'de> for HourSeed<'_> {
    type Value = Hour<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// Stores a field, refusing a second occurrence.
fn once<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de> Visitor<'de> for HourSeed<'_> {
    type Value = Hour<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with timestamp, multiplier, ask, bid and the tick columns")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut timestamp = None;
        let mut multiplier = None;
        let mut ask = None;
        let mut bid = None;
        let mut times = None;
        let mut asks = None;
        let mut bids = None;
        let mut ask_volumes = None;
        let mut bid_volumes = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Timestamp => once(&mut timestamp, "timestamp", map.next_value()?)?,
                Field::Multiplier => once(&mut multiplier, "multiplier", map.next_value()?)?,
                Field::Ask => once(&mut ask, "ask", map.next_value()?)?,
                Field::Bid => once(&mut bid, "bid", map.next_value()?)?,
                Field::Times => once(
                    &mut times,
                    "times",
                    map.next_value_seed(self.column("times"))?,
                )?,
                Field::Asks => once(&mut asks, "asks", map.next_value_seed(self.column("asks"))?)?,
                Field::Bids => once(&mut bids, "bids", map.next_value_seed(self.column("bids"))?)?,
                Field::AskVolumes => once(
                    &mut ask_volumes,
                    "askVolumes",
                    map.next_value_seed(self.column("askVolumes"))?,
                )?,
                Field::BidVolumes => once(
                    &mut bid_volumes,
                    "bidVolumes",
                    map.next_value_seed(self.column("bidVolumes"))?,
                )?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Hour {
            timestamp: timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?,
            multiplier: multiplier.ok_or_else(|| de::Error::missing_field("multiplier"))?,
            ask: ask.ok_or_else(|| de::Error::missing_field("ask"))?,
            bid: bid.ok_or_else(|| de::Error::missing_field("bid"))?,
            times: times.ok_or_else(|| de::Error::missing_field("times"))?,
            asks: asks.ok_or_else(|| de::Error::missing_field("asks"))?,
            bids: bids.ok_or_else(|| de::Error::missing_field("bids"))?,
            ask_volumes: ask_volumes.ok_or_else(|| de::Error::missing_field("askVolumes"))?,
            bid_volumes: bid_volumes.ok_or_else(|| de::Error::missing_field("bidVolumes"))?,
        })
    }
}

/// A column of at most `max` numbers.
struct Column<'c, T> {
    name: &'static str,
    max: usize,
    over_cap: &'c Cell<Option<&'static str>>,
    _t: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Column<'_, T> {
    type Value = Vec<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Column<'_, T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of numbers (`{}`)", self.name)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        // Room for a busy hour up front, never more than the cap.
        let mut out = Vec::with_capacity(self.max.min(4096));
        while let Some(value) = seq.next_element()? {
            if out.len() >= self.max {
                self.over_cap.set(Some(self.name));
                return Err(de::Error::custom(format_args!(
                    "`{}` has more than {} entries",
                    self.name, self.max
                )));
            }
            out.push(value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::float_arithmetic, reason = "test code")]

    use super::*;

    fn n(text: &str) -> Option<(bool, u128, i64)> {
        ExactNumber::parse(text).map(|n| (n.negative, n.mantissa, n.exponent))
    }

    #[test]
    fn exact_numbers() {
        assert_eq!(n("1.14277"), Some((false, 114_277, -5)));
        assert_eq!(n("1.142770"), Some((false, 114_277, -5)));
        assert_eq!(n("1.0E-5"), Some((false, 1, -5)));
        assert_eq!(n("1e-5"), Some((false, 1, -5)));
        assert_eq!(n("0.00001"), Some((false, 1, -5)));
        assert_eq!(n("100"), Some((false, 1, 2)));
        assert_eq!(n("1.00E+2"), Some((false, 1, 2)));
        assert_eq!(n("-0.0"), Some((true, 0, 0)));
        assert_eq!(n("-2.5"), Some((true, 25, -1)));
        assert_eq!(n("24921.5"), Some((false, 249_215, -1)));
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1.2.3", "\"1.2\"", "null", "1 ",
        ] {
            assert_eq!(n(bad), None, "{bad:?}");
        }
        // 39 significant digits do not fit a u128 mantissa.
        assert_eq!(n(&"9".repeat(40)), None);
    }

    #[test]
    fn points_at_scale() {
        let p = |t: &str, s| ExactNumber::parse(t).unwrap().points(s);
        assert_eq!(p("1.14277", 5), Ok(114_277));
        assert_eq!(p("1.14277000000000000000000000000000000", 5), Ok(114_277));
        assert_eq!(p("1.1427", 5), Ok(114_270));
        assert_eq!(p("0", 5), Ok(0));
        assert_eq!(p("1.142775", 5), Err("not a whole number of points"));
        assert_eq!(p("1e30", 5), Err("too large"));
        assert_eq!(p("1e999999999999999999999", 5), Err("too large"));
        assert!(ExactNumber::parse("1.0E-5").unwrap().is_power_of_ten(5));
        assert!(!ExactNumber::parse("1.0E-5").unwrap().is_power_of_ten(3));
        assert!(!ExactNumber::parse("-1.0E-5").unwrap().is_power_of_ten(5));
    }

    #[test]
    fn volumes() {
        assert_eq!(volume_units(1_800_000.0).unwrap().to_string(), "1800000");
        assert_eq!(volume_units(0.5).unwrap().to_string(), "0.5");
        assert_eq!(volume_units(-0.0).unwrap(), Decimal::ZERO);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = volume_units(bad).unwrap_err();
            assert_eq!(e.reason, "not a finite number");
        }
        assert_eq!(volume_units(-1.0).unwrap_err().reason, "negative");
        assert_eq!(
            volume_units(1e300).unwrap_err().reason,
            "its decimal text does not fit a decimal exactly"
        );
        let mut cache = SizeCache::default();
        for v in [0.1, 0.1, 0.2, 0.1, 3.0, 1e20] {
            assert_eq!(cache.units(v), volume_units_via_text(v));
        }
    }

    proptest::proptest! {
        /// The whole-number fast path and the cache give what the text conversion gives.
        #[test]
        fn fast_volume_paths_agree_with_the_text(
            bits in proptest::prelude::any::<u64>(),
            whole in proptest::prop_oneof![0u64..=(1u64 << 62), (1u64 << 53) - 4..=(1u64 << 53) + 4],
            repeats in proptest::collection::vec(0usize..4, 1..12),
        ) {
            let values = [f64::from_bits(bits), whole as f64, f64::from_bits(bits).abs(), 0.1];
            for v in values {
                proptest::prop_assert_eq!(volume_units(v), volume_units_via_text(v));
            }
            let mut cache = SizeCache::default();
            for i in repeats {
                let v = values[i];
                proptest::prop_assert_eq!(cache.units(v), volume_units_via_text(v));
            }
        }
    }
}
