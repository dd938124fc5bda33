//! One hour of tick records → exact domain quotes.

use rust_decimal::Decimal;
use smol_str::SmolStr;
use tickflow_schema::{Quote, Source, Symbol, UnixNanos};

use crate::Bi5Error;
use crate::bi5::TickRecord;
use crate::instruments::{price, require_scale};

/// Nanoseconds in a millisecond.
const NANOS_PER_MS: i64 = 1_000_000;

/// Nanoseconds in an hour.
pub(crate) const NANOS_PER_HOUR: i64 = 3_600_000_000_000;

/// Dukascopy volumes are in millions: one unit of the stored float is this many units.
const UNITS_PER_VOLUME: i64 = 1_000_000;

/// Turns the records of one hour file into quotes.
///
/// - `hour_start` is the start of the file's UTC hour (the URL's hour, month zero-based there);
///   it must be on an hour boundary. `event_time` = `hour_start` + the record's milliseconds.
/// - Prices are exact: `points` at the instrument's scale from [`crate::instruments`] (a symbol
///   not in the table is [`Bi5Error::UnknownInstrument`]). `ask` is the record's first price.
/// - Sizes are in units of the base currency, see [`volume_units`].
/// - `sequence` is the record's position in the hour (0-based), so decoding the same hour again
///   yields the same keys and a rerun inserts no duplicates.
/// - `indicative` is false (Dukascopy publishes its dealable quotes) and `source` is
///   [`Source::Dukascopy`].
pub fn quotes(
    symbol: &Symbol,
    venue_symbol: &str,
    hour_start: UnixNanos,
    records: &[TickRecord],
    received_at: UnixNanos,
) -> Result<Vec<Quote>, Bi5Error> {
    let scale = require_scale(symbol)?;
    if hour_start.0.rem_euclid(NANOS_PER_HOUR) != 0 {
        return Err(Bi5Error::NotAligned {
            what: "hour_start",
            at: hour_start,
            boundary: "hour",
        });
    }
    let venue_symbol = SmolStr::new(venue_symbol);
    let mut volumes = VolumeCache::new();
    records
        .iter()
        .enumerate()
        .map(|(index, r)| {
            if r.ms_in_hour >= crate::bi5::MS_PER_HOUR {
                return Err(Bi5Error::TimestampOutsideHour {
                    index,
                    ms_in_hour: r.ms_in_hour,
                });
            }
            let event_time = i64::from(r.ms_in_hour)
                .checked_mul(NANOS_PER_MS)
                .and_then(|offset| hour_start.0.checked_add(offset))
                .map(UnixNanos)
                .ok_or_else(|| Bi5Error::TimeOutOfRange {
                    what: format!("tick {index}"),
                })?;
            let sequence = u64::try_from(index).map_err(|_| Bi5Error::TimeOutOfRange {
                what: format!("tick {index}"),
            })?;
            Ok(Quote {
                source: Source::Dukascopy,
                symbol: symbol.clone(),
                venue_symbol: venue_symbol.clone(),
                event_time,
                received_at,
                bid: price(r.bid_points, scale)?,
                ask: price(r.ask_points, scale)?,
                bid_size: volumes
                    .units(r.bid_volume)
                    .map_err(|e| e.at(format!("tick {index} bid volume")))?,
                ask_size: volumes
                    .units(r.ask_volume)
                    .map_err(|e| e.at(format!("tick {index} ask volume")))?,
                sequence,
                indicative: false,
            })
        })
        .try_fold(Vec::with_capacity(records.len()), |mut out, quote| {
            out.push(quote?);
            Ok(out)
        })
}

/// Why a float32 volume is not a size; [`VolumeError::at`] names the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeError {
    value: String,
    reason: &'static str,
}

impl VolumeError {
    /// The [`Bi5Error`] for the field `what` (e.g. `tick 12 bid volume`).
    pub fn at(self, what: String) -> Bi5Error {
        Bi5Error::Volume {
            what,
            value: self.value,
            reason: self.reason,
        }
    }
}

/// A Dukascopy float32 volume as an exact size in **units of the base currency**.
///
/// The unit: the datafeed stores FX volumes in millions of base currency (PROTOCOLS.md §3.3;
/// dukascopy-node's `formatVolume` and duka multiply by 10^6 to get units, and Dukascopy's own
/// JSON API now sends `askVolumes`/`bidVolumes` in units: the fixture's 1.8 is 1800000 there).
/// tickflow's `Quote` sizes from Kraken and OANDA are in base units too, so the stored millions
/// are converted: `1.5` → `1500000`, `5.7` → `5700000`. Crypto volumes (1e-6 … 1.3e-5 for
/// BTC/USD) have no documented unit; they get the same factor as every instrument, as
/// dukascopy-node does, which makes the BTC/USD fixture's sizes 1 … 13 (BTC).
///
/// The conversion is exact and does no float arithmetic: the float is written with its
/// shortest round-trip text (`format!("{v}")`: `5.699999809265137` is written `5.7`, which is
/// what Dukascopy's tools display and what was meant), parsed exactly into a [`Decimal`]
/// (`Decimal::from_str_exact`), then multiplied by the exact decimal 10^6 and normalised
/// (`1.5` → `1500000`, scale 0).
/// NaN, infinities, negative values and floats whose text does not fit a decimal exactly
/// (beyond 28 digits) are errors. `-0` is 0.
pub fn volume_units(v: f32) -> Result<Decimal, VolumeError> {
    let value = format!("{v}");
    let fail = |reason| VolumeError {
        value: value.clone(),
        reason,
    };
    if !v.is_finite() {
        return Err(fail("not a finite number"));
    }
    // `from_str_exact` refuses text it would have to round (more than 28 fraction digits).
    let millions = Decimal::from_str_exact(&value)
        .map_err(|_| fail("its decimal text does not fit a decimal exactly"))?;
    if millions.is_zero() {
        return Ok(Decimal::ZERO);
    }
    if millions.is_sign_negative() {
        return Err(fail("negative"));
    }
    millions
        .checked_mul(Decimal::from(UNITS_PER_VOLUME))
        .map(|units| units.normalize())
        .ok_or_else(|| fail("too large for a decimal in units"))
}

/// Slots of [`VolumeCache`] (a power of two): 24 KiB, room for the long tail of an FX hour
/// (the EUR/USD 13h fixture has 611 distinct volumes among its 15526).
const VOLUME_CACHE_SLOTS: usize = 1024;

/// [`volume_units`] with the volumes already converted remembered by their bit pattern.
///
/// `volume_units` writes each float as text and parses it, which costs more than everything else
/// [`quotes`] does per tick. An hour repeats its volumes (a few hundred distinct ones in an FX
/// hour, a dozen or two for BTC/USD), so a direct-mapped table keyed by the float's bits answers
/// almost every tick. The result is identical: a hit returns what
/// `volume_units` returned for the same bits; errors are never cached.
#[derive(Debug, Clone)]
pub(crate) struct VolumeCache {
    slots: [Option<(u32, Decimal)>; VOLUME_CACHE_SLOTS],
}

impl VolumeCache {
    pub(crate) fn new() -> Self {
        Self {
            slots: [None; VOLUME_CACHE_SLOTS],
        }
    }

    /// [`volume_units`] of `v`.
    pub(crate) fn units(&mut self, v: f32) -> Result<Decimal, VolumeError> {
        let bits = v.to_bits();
        // Fibonacci hashing: the top bits of the product pick the slot.
        let slot = (bits.wrapping_mul(0x9E37_79B9) >> (32 - VOLUME_CACHE_SLOTS.trailing_zeros()))
            as usize
            % VOLUME_CACHE_SLOTS;
        if let Some(Some((b, units))) = self.slots.get(slot)
            && *b == bits
        {
            return Ok(*units);
        }
        let units = volume_units(v)?;
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = Some((bits, units));
        }
        Ok(units)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::float_arithmetic, reason = "test code")]

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The cache returns exactly what `volume_units` returns, hits and misses, errors too.
        #[test]
        fn the_volume_cache_agrees_with_volume_units(
            pool in proptest::collection::vec(
                prop_oneof![
                    any::<u32>().prop_map(f32::from_bits),
                    (0u32..200).prop_map(|n| n as f32 / 4.0),
                    (1u32..20).prop_map(|n| n as f32 * 1e-6),
                    Just(f32::NAN), Just(-0.0f32), Just(-1.5f32), Just(f32::MAX),
                ],
                1..200,
            ),
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..2000),
        ) {
            let mut cache = VolumeCache::new();
            for pick in picks {
                let v = pool[pick.index(pool.len())];
                prop_assert_eq!(cache.units(v), volume_units(v), "{}", v);
            }
        }
    }
}
