//! Dukascopy's two tick encodings (the `.bi5` file and the jetta JSON body), its two URL schemes, and
//! the UTC calendar arithmetic behind them.
//!
//! Prices are integer points throughout; the JSON's decimals are written from the integers, and the
//! JSON volumes are written from the `f32`'s shortest decimal text by moving its decimal point, so
//! nothing here does floating-point arithmetic.

use std::fmt::Write as _;

/// Milliseconds in an hour.
pub(crate) const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
const DAY_MS: i64 = 24 * HOUR_MS;
/// Bytes per `.bi5` tick record.
pub const TICK_RECORD_LEN: usize = 20;
/// The dictionary size Dukascopy writes into its LZMA headers (4 MiB, little-endian after the
/// properties byte). lzma-rs writes 8 MiB; [`encode_bi5`] patches the header to this value.
const DUKASCOPY_DICT_SIZE: u32 = 0x0040_0000;

/// One tick as a `.bi5` record holds it: prices in integer points (price = points / 10^scale) and
/// volumes as `f32` in the file's unit (millions of the base currency for FX).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimTick {
    /// Milliseconds since the start of the UTC hour (`0..3_600_000` in a well-formed hour).
    pub ms_in_hour: u32,
    /// Ask price in points.
    pub ask_points: u32,
    /// Bid price in points.
    pub bid_points: u32,
    /// Ask volume, in millions for FX (`1.8` = 1.8 million).
    pub ask_volume: f32,
    /// Bid volume, in millions for FX.
    pub bid_volume: f32,
}

/// Encodes an hour's ticks as a Dukascopy `.bi5` body: 20-byte big-endian records
/// (`ms_in_hour u32, ask u32, bid u32, ask_volume f32, bid_volume f32`, ask before bid) compressed as
/// an LZMA "alone" stream.
///
/// The 13-byte header is the properties byte `0x5d`, the dictionary size `00 00 40 00` (4 MiB, as
/// Dukascopy writes it; lzma-rs writes 8 MiB, which this function overwrites: lzma-rs's encoder only
/// emits literals, so the value is never exercised by the stream) and the real uncompressed size as
/// a little-endian `u64` (no end-of-stream marker, like Dukascopy's files). The stream is larger than
/// Dukascopy's, since lzma-rs does not search for matches, but any LZMA-alone decoder reads it.
///
/// No ticks give an empty body (no header at all), which is how Dukascopy publishes an empty hour.
/// Ticks are written as given, in the given order, even if they would be invalid.
pub fn encode_bi5(ticks: &[SimTick]) -> Vec<u8> {
    if ticks.is_empty() {
        return Vec::new();
    }
    let raw = bi5_records(ticks);
    let options = lzma_rs::compress::Options {
        unpacked_size: lzma_rs::compress::UnpackedSize::WriteToHeader(Some(raw.len() as u64)),
    };
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 8 + 32);
    // Reading a slice and writing a `Vec` cannot fail, so the error arm is never taken.
    if lzma_rs::lzma_compress_with_options(&mut raw.as_slice(), &mut out, &options).is_err() {
        return Vec::new();
    }
    if let Some(dict) = out.get_mut(1..5) {
        dict.copy_from_slice(&DUKASCOPY_DICT_SIZE.to_le_bytes());
    }
    out
}

/// The uncompressed `.bi5` payload: one 20-byte big-endian record per tick.
pub(crate) fn bi5_records(ticks: &[SimTick]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(ticks.len() * TICK_RECORD_LEN);
    for t in ticks {
        raw.extend_from_slice(&t.ms_in_hour.to_be_bytes());
        raw.extend_from_slice(&t.ask_points.to_be_bytes());
        raw.extend_from_slice(&t.bid_points.to_be_bytes());
        raw.extend_from_slice(&t.ask_volume.to_be_bytes());
        raw.extend_from_slice(&t.bid_volume.to_be_bytes());
    }
    raw
}

/// Encodes an hour's ticks as the body of jetta's `GET /v1/ticks/{CODE}/{YYYY}/{M}/{D}/{H}`:
///
/// ```text
/// {"timestamp":1783944000000,"multiplier":1.0E-5,"ask":1.14277,"bid":1.14273,
///  "times":[93,104,..],"asks":[0,-2,..],"bids":[0,-2,..],
///  "askVolumes":[1800000.0,..],"bidVolumes":[2700000.0,..]}
/// ```
///
/// * `timestamp` is `hour_start_ms`; `multiplier` is 10^-`scale`, written the way Java prints a
///   double (`1.0`, `0.1`, `0.01`, `0.001`, then `1.0E-4`, `1.0E-5`, ...).
/// * `ask` / `bid` are the first tick's prices as plain decimals (`points / 10^scale`, trailing zeros
///   dropped but at least one fractional digit: `1.14277`, `24921.5`, `1.0`), formatted from the
///   integers.
/// * `times[0]` is the first tick's `ms_in_hour`, then each entry is the difference from the previous
///   tick; `asks` / `bids` are differences in points from the previous tick, the first from the base
///   (so `0`). Differences are signed, so out-of-order input is encoded faithfully.
/// * `askVolumes` / `bidVolumes` are in units: the `f32`'s shortest decimal text with the decimal point
///   moved six places (`1.8` → `1800000.0`, `0.000013` → `13.0`), always with a fractional part.
///   A non-finite volume is written as `0.0`.
///
/// No ticks give the empty shape: `"ask":null,"bid":null` and empty arrays.
pub fn encode_json(hour_start_ms: i64, scale: u32, ticks: &[SimTick]) -> String {
    // About 7 bytes per time, 3 per price delta and 11 per volume.
    let mut s = String::with_capacity(160 + ticks.len() * 36);
    let _ = write!(s, "{{\"timestamp\":{hour_start_ms},\"multiplier\":");
    push_multiplier(&mut s, scale);
    match ticks.first() {
        Some(first) => {
            s.push_str(",\"ask\":");
            push_points(&mut s, first.ask_points, scale);
            s.push_str(",\"bid\":");
            push_points(&mut s, first.bid_points, scale);
        }
        None => s.push_str(",\"ask\":null,\"bid\":null"),
    }
    push_deltas(&mut s, "times", ticks, |t| t.ms_in_hour, 0);
    let base_ask = ticks.first().map_or(0, |t| t.ask_points);
    let base_bid = ticks.first().map_or(0, |t| t.bid_points);
    push_deltas(&mut s, "asks", ticks, |t| t.ask_points, base_ask);
    push_deltas(&mut s, "bids", ticks, |t| t.bid_points, base_bid);
    push_volumes(&mut s, "askVolumes", ticks, |t| t.ask_volume);
    push_volumes(&mut s, "bidVolumes", ticks, |t| t.bid_volume);
    s.push('}');
    s
}

/// `,"name":[d0,d1,..]` where `d0 = field(t0) - start` and `di = field(ti) - field(ti-1)`.
fn push_deltas(
    s: &mut String,
    name: &str,
    ticks: &[SimTick],
    field: impl Fn(&SimTick) -> u32,
    start: u32,
) {
    let _ = write!(s, ",\"{name}\":[");
    let mut prev = i64::from(start);
    for (i, t) in ticks.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = i64::from(field(t));
        let _ = write!(s, "{}", v - prev);
        prev = v;
    }
    s.push(']');
}

/// `,"name":[v0,v1,..]` with each volume in units (see [`push_volume_units`]).
fn push_volumes(s: &mut String, name: &str, ticks: &[SimTick], field: impl Fn(&SimTick) -> f32) {
    let _ = write!(s, ",\"{name}\":[");
    for (i, t) in ticks.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_volume_units(s, field(t));
    }
    s.push(']');
}

/// 10^-`scale` as Java's `Double.toString` prints it.
pub(crate) fn push_multiplier(s: &mut String, scale: u32) {
    match scale {
        0 => s.push_str("1.0"),
        1..=3 => {
            s.push_str("0.");
            for _ in 1..scale {
                s.push('0');
            }
            s.push('1');
        }
        _ => {
            let _ = write!(s, "1.0E-{scale}");
        }
    }
}

/// `points / 10^scale` as a plain decimal with at least one fractional digit and no trailing zeros
/// beyond it: `(114277, 5)` → `1.14277`, `(249215, 1)` → `24921.5`, `(100000, 5)` → `1.0`.
pub(crate) fn push_points(s: &mut String, points: u32, scale: u32) {
    let digits = points.to_string();
    let scale = scale as usize;
    let padded = if digits.len() <= scale {
        let mut p = "0".repeat(scale + 1 - digits.len());
        p.push_str(&digits);
        p
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    let frac = frac.trim_end_matches('0');
    s.push_str(int);
    s.push('.');
    s.push_str(if frac.is_empty() { "0" } else { frac });
}

/// A `.bi5` volume (millions) in units: the shortest decimal text of `v` with the decimal point moved
/// six places right, e.g. `1.8` → `1800000.0`, `0.45` → `450000.0`, `0.000013` → `13.0`,
/// `1.2345678` → `1234567.8`. Non-finite values give `0.0`.
pub(crate) fn push_volume_units(s: &mut String, v: f32) {
    if !v.is_finite() {
        s.push_str("0.0");
        return;
    }
    // `Display` for floats never uses an exponent and prints the shortest round-tripping digits.
    let text = v.to_string();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let shift = frac.len().min(6);
    let mut int_digits = String::with_capacity(int.len() + 6);
    int_digits.push_str(int);
    int_digits.push_str(&frac[..shift]);
    for _ in shift..6 {
        int_digits.push('0');
    }
    let int_digits = int_digits.trim_start_matches('0');
    let frac_digits = &frac[shift..];
    let is_zero = int_digits.is_empty() && frac_digits.bytes().all(|b| b == b'0');
    if negative && !is_zero {
        s.push('-');
    }
    s.push_str(if int_digits.is_empty() {
        "0"
    } else {
        int_digits
    });
    s.push('.');
    s.push_str(if frac_digits.is_empty() {
        "0"
    } else {
        frac_digits
    });
}

/// A UTC hour broken into calendar fields (`month` 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CivilHour {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
}

impl CivilHour {
    /// The UTC hour containing `ms` (Unix milliseconds).
    pub(crate) fn from_ms(ms: i64) -> Self {
        let days = ms.div_euclid(DAY_MS);
        let (year, month, day) = civil_from_days(days);
        // `rem_euclid` of a day is in 0..DAY_MS, so the hour is 0..=23.
        let hour = u32::try_from(ms.rem_euclid(DAY_MS) / HOUR_MS).unwrap_or(0);
        Self {
            year,
            month,
            day,
            hour,
        }
    }

    /// Unix milliseconds of the start of the hour, if the fields name a real hour.
    pub(crate) fn to_ms(self) -> Option<i64> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
        {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        Some(days * DAY_MS + i64::from(self.hour) * HOUR_MS)
    }
}

/// The start of the UTC hour containing `ms`.
pub(crate) fn floor_hour(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// The datafeed path of an hour's tick file: `/datafeed/{SYM}/{YYYY}/{MM0}/{DD}/{HH}h_ticks.bi5`, with
/// the **zero-based** month (January = `00`) and everything zero-padded. `hour_start_ms` may be any
/// instant inside the hour.
///
/// ```
/// // 2023-02-20 12:00 UTC
/// assert_eq!(
///     venue_sim::dukascopy::bi5_path("BTCUSD", 1_676_894_400_000),
///     "/datafeed/BTCUSD/2023/01/20/12h_ticks.bi5"
/// );
/// ```
pub fn bi5_path(sym: &str, hour_start_ms: i64) -> String {
    let c = CivilHour::from_ms(hour_start_ms);
    format!(
        "/datafeed/{sym}/{:04}/{:02}/{:02}/{:02}h_ticks.bi5",
        c.year,
        c.month - 1,
        c.day,
        c.hour
    )
}

/// The jetta JSON path of an hour's ticks: `/v1/ticks/{CODE}/{YYYY}/{M}/{D}/{H}` with the
/// **one-based** month and no zero padding, `CODE` from [`json_code`]. `hour_start_ms` may be any
/// instant inside the hour.
///
/// ```
/// // 2023-02-20 12:00 UTC
/// assert_eq!(
///     venue_sim::dukascopy::json_path("BTCUSD", 1_676_894_400_000),
///     "/v1/ticks/BTC-USD/2023/2/20/12"
/// );
/// ```
pub fn json_path(sym: &str, hour_start_ms: i64) -> String {
    let c = CivilHour::from_ms(hour_start_ms);
    format!(
        "/v1/ticks/{}/{}/{}/{}/{}",
        json_code(sym),
        c.year,
        c.month,
        c.day,
        c.hour
    )
}

/// The JSON API's instrument code for a datafeed symbol: a six-character symbol gets a `-` after
/// its third character (`EURUSD` → `EUR-USD`); any other symbol is used as is (`USA500IDXUSD`).
pub fn json_code(sym: &str) -> String {
    if sym.len() == 6 && sym.is_ascii() {
        format!("{}-{}", &sym[..3], &sym[3..])
    } else {
        sym.to_owned()
    }
}

/// The datafeed symbol a JSON code names, the inverse of [`json_code`]: `EUR-USD` → `EURUSD`; a code
/// without `-` that is not six characters long stands for itself. Anything else (notably an undashed
/// six-character code such as `EURUSD`, which the real API does not use) is `None`.
pub(crate) fn sym_from_json_code(code: &str) -> Option<String> {
    let bytes = code.as_bytes();
    if bytes.len() == 7 && code.is_ascii() && bytes[3] == b'-' && !code[4..].contains('-') {
        let sym = format!("{}{}", &code[..3], &code[4..]);
        return (!sym.contains('-')).then_some(sym);
    }
    if code.is_empty() || code.contains('-') || (code.len() == 6 && code.is_ascii()) {
        return None;
    }
    Some(code.to_owned())
}

/// Parses the part of a datafeed URL after `/datafeed/`: `{SYM}/{YYYY}/{MM0}/{DD}/{HH}h_ticks.bi5`,
/// strictly (four-digit year, two-digit zero-based month `00`–`11`, two-digit day valid for the
/// month, two-digit hour `00`–`23`). Returns the symbol and the hour's start.
pub(crate) fn parse_bi5_path(rest: &str) -> Option<(String, i64)> {
    let mut parts = rest.split('/');
    let (sym, year, month0, day, file) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if parts.next().is_some() || sym.is_empty() {
        return None;
    }
    let hour = file.strip_suffix("h_ticks.bi5")?;
    let civil = CivilHour {
        year: i64::from(fixed_digits(year, 4)?),
        month: fixed_digits(month0, 2)?.checked_add(1)?,
        day: fixed_digits(day, 2)?,
        hour: fixed_digits(hour, 2)?,
    };
    Some((sym.to_owned(), civil.to_ms()?))
}

/// Parses the part of a JSON API URL after `/v1/ticks/`: `{CODE}/{YYYY}/{M}/{D}/{H}`, strictly
/// (four-digit year; one-based month, day and hour without leading zeros). Returns the datafeed
/// symbol (see [`sym_from_json_code`]) and the hour's start.
pub(crate) fn parse_json_path(rest: &str) -> Option<(String, i64)> {
    let mut parts = rest.split('/');
    let (code, year, month, day, hour) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if parts.next().is_some() {
        return None;
    }
    let sym = sym_from_json_code(code)?;
    let civil = CivilHour {
        year: i64::from(fixed_digits(year, 4)?),
        month: unpadded(month)?,
        day: unpadded(day)?,
        hour: unpadded(hour)?,
    };
    Some((sym, civil.to_ms()?))
}

/// Exactly `len` ASCII digits.
fn fixed_digits(s: &str, len: usize) -> Option<u32> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// 1–4 ASCII digits without a leading zero (`0` itself is allowed).
fn unpadded(s: &str) -> Option<u32> {
    let ok = (1..=4).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    ok.then(|| s.parse().ok()).flatten()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1-based). Howard Hinnant's algorithm.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (`month` 1-based) `days` after 1970-01-01. Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are small and positive by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-02-20 12:00 UTC, the BTCUSD fixture hour.
    const BTC_HOUR: i64 = 1_676_894_400_000;
    /// 2026-07-13 12:00 UTC, the jetta JSON fixture hour.
    const JETTA_HOUR: i64 = 1_783_944_000_000;

    fn points(p: u32, scale: u32) -> String {
        let mut s = String::new();
        push_points(&mut s, p, scale);
        s
    }

    fn units(v: f32) -> String {
        let mut s = String::new();
        push_volume_units(&mut s, v);
        s
    }

    fn multiplier(scale: u32) -> String {
        let mut s = String::new();
        push_multiplier(&mut s, scale);
        s
    }

    #[test]
    fn calendar_round_trips_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        let c = CivilHour::from_ms(BTC_HOUR);
        assert_eq!(
            c,
            CivilHour {
                year: 2023,
                month: 2,
                day: 20,
                hour: 12
            }
        );
        assert_eq!(c.to_ms(), Some(BTC_HOUR));
        assert_eq!(CivilHour::from_ms(JETTA_HOUR).month, 7);
        // Every day from 1900 to 2100 round-trips.
        for d in -25_567..47_482 {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
            assert!(day <= days_in_month(y, m));
        }
        assert_eq!(CivilHour::from_ms(-1).hour, 23);
        assert_eq!(floor_hour(BTC_HOUR + 1234), BTC_HOUR);
        assert_eq!(floor_hour(-1), -HOUR_MS);
    }

    #[test]
    fn paths_use_zero_based_bi5_month_and_one_based_json_month() {
        assert_eq!(
            bi5_path("BTCUSD", BTC_HOUR),
            "/datafeed/BTCUSD/2023/01/20/12h_ticks.bi5"
        );
        assert_eq!(
            json_path("BTCUSD", BTC_HOUR),
            "/v1/ticks/BTC-USD/2023/2/20/12"
        );
        // 2019-01-04 03:00 UTC (January) and 2024-12-31 23:00 UTC (December).
        assert_eq!(
            bi5_path("EURUSD", 1_546_570_800_000),
            "/datafeed/EURUSD/2019/00/04/03h_ticks.bi5"
        );
        assert_eq!(
            json_path("EURUSD", 1_546_570_800_000),
            "/v1/ticks/EUR-USD/2019/1/4/3"
        );
        assert_eq!(
            bi5_path("EURUSD", 1_735_686_000_000),
            "/datafeed/EURUSD/2024/11/31/23h_ticks.bi5"
        );
        assert_eq!(
            json_path("EURUSD", 1_735_686_000_000),
            "/v1/ticks/EUR-USD/2024/12/31/23"
        );
        assert_eq!(
            json_path("USA500IDXUSD", JETTA_HOUR),
            "/v1/ticks/USA500IDXUSD/2026/7/13/12"
        );
        assert_eq!(
            json_path("EURUSD", JETTA_HOUR),
            "/v1/ticks/EUR-USD/2026/7/13/12"
        );
    }

    #[test]
    fn parses_paths_strictly() {
        assert_eq!(
            parse_bi5_path("BTCUSD/2023/01/20/12h_ticks.bi5"),
            Some(("BTCUSD".to_owned(), BTC_HOUR))
        );
        assert_eq!(
            parse_json_path("BTC-USD/2023/2/20/12"),
            Some(("BTCUSD".to_owned(), BTC_HOUR))
        );
        assert_eq!(
            parse_json_path("USA500IDXUSD/2023/2/20/12"),
            Some(("USA500IDXUSD".to_owned(), BTC_HOUR))
        );
        for bad in [
            "BTCUSD/2023/12/20/12h_ticks.bi5", // month 12 does not exist zero-based
            "BTCUSD/2023/1/20/12h_ticks.bi5",  // unpadded
            "BTCUSD/2023/01/30/12h_ticks.bi5", // 30 February
            "BTCUSD/2023/01/20/24h_ticks.bi5",
            "BTCUSD/2023/01/20/12h_ticks.bi",
            "BTCUSD/2023/01/20/BID_candles_min_1.bi5",
            "/2023/01/20/12h_ticks.bi5",
            "BTCUSD/2023/01/20/12h_ticks.bi5/",
        ] {
            assert_eq!(parse_bi5_path(bad), None, "{bad}");
        }
        for bad in [
            "BTC-USD/2023/02/20/12", // padded
            "BTC-USD/2023/0/20/12",
            "BTC-USD/2023/13/20/12",
            "BTC-USD/2023/2/29/12",
            "BTC-USD/2023/2/20/24",
            "BTCUSD/2023/2/20/12", // six characters without the dash
            "BTC-US-D/2023/2/20/12",
            "BTC-USD/2023/2/20",
            "BTC-USD/2023/2/20/12/",
        ] {
            assert_eq!(parse_json_path(bad), None, "{bad}");
        }
        assert_eq!(
            parse_json_path("EUR-USD/2024/2/29/0"),
            Some(("EURUSD".to_owned(), 1_709_164_800_000))
        );
    }

    #[test]
    fn json_codes() {
        assert_eq!(json_code("EURUSD"), "EUR-USD");
        assert_eq!(json_code("XAUUSD"), "XAU-USD");
        assert_eq!(json_code("AAPLUSUSD"), "AAPLUSUSD");
        for sym in ["EURUSD", "BTCUSD", "AAPLUSUSD", "USA500IDXUSD"] {
            assert_eq!(sym_from_json_code(&json_code(sym)).as_deref(), Some(sym));
        }
    }

    #[test]
    fn decimals_from_integers() {
        assert_eq!(points(114_277, 5), "1.14277");
        assert_eq!(points(249_215, 1), "24921.5");
        assert_eq!(points(100_000, 5), "1.0");
        assert_eq!(points(114_270, 5), "1.1427");
        assert_eq!(points(7, 3), "0.007");
        assert_eq!(points(0, 2), "0.0");
        assert_eq!(points(123, 0), "123.0");
        assert_eq!(multiplier(5), "1.0E-5");
        assert_eq!(multiplier(4), "1.0E-4");
        assert_eq!(multiplier(3), "0.001");
        assert_eq!(multiplier(1), "0.1");
        assert_eq!(multiplier(0), "1.0");
        for scale in 0..=9 {
            let m: f64 = multiplier(scale).parse().unwrap();
            let expected: f64 = format!("1e-{scale}").parse().unwrap();
            assert_eq!(m, expected);
        }
    }

    #[test]
    fn volumes_in_units_without_float_error() {
        assert_eq!(units(1.8), "1800000.0");
        assert_eq!(units(0.9), "900000.0");
        assert_eq!(units(0.45), "450000.0");
        assert_eq!(units(14.49), "14490000.0");
        assert_eq!(units(1.35), "1350000.0");
        assert_eq!(units(0.000_013), "13.0");
        assert_eq!(units(0.000_001_3), "1.3");
        assert_eq!(units(1.234_567_8), "1234567.8");
        assert_eq!(units(0.0), "0.0");
        assert_eq!(units(-0.0), "0.0");
        assert_eq!(units(-2.5), "-2500000.0");
        assert_eq!(units(f32::NAN), "0.0");
        assert_eq!(units(f32::INFINITY), "0.0");
        assert_eq!(units(3.0), "3000000.0");
    }

    #[test]
    fn bi5_header_matches_dukascopy() {
        let ticks = [SimTick {
            ms_in_hour: 92,
            ask_points: 114_476,
            bid_points: 114_475,
            ask_volume: 1.5,
            bid_volume: 5.7,
        }];
        let body = encode_bi5(&ticks);
        assert_eq!(&body[..5], &[0x5d, 0x00, 0x00, 0x40, 0x00]);
        assert_eq!(&body[5..13], &20u64.to_le_bytes());
        let mut raw = Vec::new();
        lzma_rs::lzma_decompress(&mut body.as_slice(), &mut raw).unwrap();
        assert_eq!(raw, bi5_records(&ticks));
        assert_eq!(
            &raw[..12],
            &[0, 0, 0, 92, 0, 1, 0xbf, 0x2c, 0, 1, 0xbf, 0x2b]
        );
        assert!(encode_bi5(&[]).is_empty());
    }

    #[test]
    fn json_shape() {
        let ticks = [
            SimTick {
                ms_in_hour: 93,
                ask_points: 114_277,
                bid_points: 114_273,
                ask_volume: 1.8,
                bid_volume: 2.7,
            },
            SimTick {
                ms_in_hour: 197,
                ask_points: 114_275,
                bid_points: 114_271,
                ask_volume: 0.9,
                bid_volume: 14.49,
            },
        ];
        assert_eq!(
            encode_json(JETTA_HOUR, 5, &ticks),
            "{\"timestamp\":1783944000000,\"multiplier\":1.0E-5,\"ask\":1.14277,\"bid\":1.14273,\
             \"times\":[93,104],\"asks\":[0,-2],\"bids\":[0,-2],\
             \"askVolumes\":[1800000.0,900000.0],\"bidVolumes\":[2700000.0,14490000.0]}"
        );
        assert_eq!(
            encode_json(JETTA_HOUR, 5, &[]),
            "{\"timestamp\":1783944000000,\"multiplier\":1.0E-5,\"ask\":null,\"bid\":null,\
             \"times\":[],\"asks\":[],\"bids\":[],\"askVolumes\":[],\"bidVolumes\":[]}"
        );
    }
}
