//! One line of the pricing stream → [`Line`]. Pure: no I/O, no state, never panics.
//!
//! A line is a *price* (kept whether tradeable or not: a non-tradeable price is marked
//! indicative), a *heartbeat*, an *empty* keepalive line, a line of a `type` tickflow does not
//! read ([`Line::Other`], never an error), or *malformed* (an `Err`: the caller counts it under
//! [`ParseError::reason`], logs it at a limited rate and skips it).
//!
//! Exactness: prices are decimal strings turned into [`Decimal`]s digit by digit, keeping their
//! scale (`"1.09190"` stays `1.09190`); liquidity is a whole number (an integer, or an integral
//! float such as `10000000.0` in some captures) and comes out with scale 0; times keep their
//! nanoseconds, whether RFC 3339 or UNIX epoch seconds. Nothing goes through `f64`.
//!
//! Speed: a line is read in one pass by a scanner that handles what OANDA sends (plain strings,
//! numbers, no escapes) and gives up on anything else, which serde then reads into borrowed
//! wire types: the reference, and the judge of malformed lines ([`parse_line_via_serde`] reads
//! every line that way; the tests check that both agree). Only the best bucket of each side is
//! read, the deeper ones are skipped, and a price costs one allocation at most (the instrument
//! name, and only when it is longer than 23 bytes).

use rust_decimal::Decimal;
use smol_str::SmolStr;
use tickflow_schema::{Quote, Source, Symbol, UnixNanos};

use super::messages::{BucketText, LineFields, WireLine};
use super::scan;

/// What a line was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A `PRICE` (or a pre-Nov-2016 price line, which has an `instrument` but no `type`).
    Price(Price),
    /// A `HEARTBEAT`, from the pricing stream or the transactions stream (which adds
    /// `lastTransactionID`): it only proves the connection is alive.
    Heartbeat {
        /// OANDA's time of the heartbeat.
        time: UnixNanos,
    },
    /// An empty or whitespace-only line: a keepalive, not an error.
    Empty,
    /// A `type` tickflow does not read: ignored, not an error.
    Other {
        /// The `type`, cut to 80 characters.
        kind: String,
    },
}

/// The top of book of one `PRICE` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// OANDA's instrument name, `EUR_USD` (map it with [`super::instruments::canonical`]).
    pub instrument: SmolStr,
    /// OANDA's time of the price.
    pub time: UnixNanos,
    /// Best bid, with the scale it was sent with.
    pub bid: Decimal,
    /// Liquidity at the best bid (scale 0).
    pub bid_liquidity: Decimal,
    /// Best ask, with the scale it was sent with.
    pub ask: Decimal,
    /// Liquidity at the best ask (scale 0).
    pub ask_liquidity: Decimal,
    /// Whether the price can be traded now: `tradeable` if present, else deprecated
    /// `status == "tradeable"`, else `true`. Non-tradeable prices (market closed) are indicative.
    pub tradeable: bool,
}

impl Price {
    /// The domain quote of this price, under the canonical `symbol` of [`Price::instrument`].
    /// A non-tradeable price becomes an indicative quote.
    pub fn to_quote(&self, symbol: Symbol, received_at: UnixNanos, sequence: u64) -> Quote {
        Quote {
            source: Source::Oanda,
            symbol,
            venue_symbol: self.instrument.clone(),
            event_time: self.time,
            received_at,
            bid: self.bid,
            ask: self.ask,
            bid_size: self.bid_liquidity,
            ask_size: self.ask_liquidity,
            sequence,
            indicative: !self.tradeable,
        }
    }
}

/// Why a line was not understood. The texts are bounded: a hostile line never makes a long log
/// line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line is not UTF-8.
    #[error("line is not UTF-8")]
    NotUtf8,
    /// Not a JSON object, or a field of the wrong JSON type.
    #[error("not an OANDA stream line: {0}")]
    Json(String),
    /// A field a line of its type must have (`bids[0].price` names the best bid's price). A line
    /// with neither `type` nor `instrument` reports `type`.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// `time` is neither RFC 3339 nor UNIX epoch seconds.
    #[error("bad time: {0}")]
    BadTime(String),
    /// The best price of a side is not a positive decimal string.
    #[error("bad best {side} price: {reason}")]
    BadPrice {
        /// `bid` or `ask`.
        side: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The liquidity of a side's best bucket is not a whole non-negative number.
    #[error("bad best {side} liquidity: {reason}")]
    BadLiquidity {
        /// `bid` or `ask`.
        side: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `bids` or `asks` is an empty array: there is no best price to quote.
    #[error("PRICE line with empty `{0}`: no best price to quote")]
    EmptyBook(&'static str),
}

impl ParseError {
    /// A short label for a metric: `not_utf8`, `json`, `missing_field`, `time`, `price`,
    /// `liquidity` or `empty_book`.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::NotUtf8 => "not_utf8",
            ParseError::Json(_) => "json",
            ParseError::MissingField(_) => "missing_field",
            ParseError::BadTime(_) => "time",
            ParseError::BadPrice { .. } => "price",
            ParseError::BadLiquidity { .. } => "liquidity",
            ParseError::EmptyBook(_) => "empty_book",
        }
    }
}

/// At most 80 characters of outside text, for error messages.
fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// Parses one line of the stream, without its `\n`; a trailing `\r` (and any surrounding
/// ASCII whitespace) is tolerated.
pub fn parse_line(line: &[u8]) -> Result<Line, ParseError> {
    let Some(text) = object_text(line)? else {
        return Ok(Line::Empty);
    };
    match scan::fields(text) {
        Some(fields) => interpret(fields),
        None => interpret(serde_fields(text)?),
    }
}

/// [`parse_line`] without the fast scanner: every line read by serde. The reference the fast
/// path is tested and fuzzed against; not for production use.
#[doc(hidden)]
pub fn parse_line_via_serde(line: &[u8]) -> Result<Line, ParseError> {
    let Some(text) = object_text(line)? else {
        return Ok(Line::Empty);
    };
    interpret(serde_fields(text)?)
}

/// The line as text, trimmed; `None` when empty. Only a JSON object is a line: serde would
/// also read a struct from an array, by position.
fn object_text(line: &[u8]) -> Result<Option<&str>, ParseError> {
    let text = std::str::from_utf8(line)
        .map_err(|_| ParseError::NotUtf8)?
        .trim_ascii();
    if text.is_empty() {
        return Ok(None);
    }
    if !text.starts_with('{') {
        return Err(ParseError::Json(format!(
            "expected a JSON object, found {}",
            snippet(text)
        )));
    }
    Ok(Some(text))
}

fn serde_fields(text: &str) -> Result<LineFields<'_>, ParseError> {
    serde_json::from_str::<WireLine<'_>>(text)
        .map(LineFields::from)
        .map_err(|e| ParseError::Json(snippet(&e.to_string())))
}

fn interpret(fields: LineFields<'_>) -> Result<Line, ParseError> {
    match fields.kind.as_deref() {
        Some("PRICE") => price(fields).map(Line::Price),
        Some("HEARTBEAT") => Ok(Line::Heartbeat {
            time: time(fields.time)?,
        }),
        Some(other) => Ok(Line::Other {
            kind: snippet(other),
        }),
        // Before November 2016 price lines had no `type`.
        None if fields.instrument.is_some() => price(fields).map(Line::Price),
        None => Err(ParseError::MissingField("type")),
    }
}

fn price(wire: LineFields<'_>) -> Result<Price, ParseError> {
    let instrument = match wire.instrument {
        Some(name) if !name.is_empty() => name,
        _ => return Err(ParseError::MissingField("instrument")),
    };
    let time = time(wire.time)?;
    let (bid, bid_liquidity) = best(wire.bids, Side::Bid)?;
    let (ask, ask_liquidity) = best(wire.asks, Side::Ask)?;
    let tradeable = match (wire.tradeable, wire.status.as_deref()) {
        (Some(tradeable), _) => tradeable,
        (None, Some(status)) => status == "tradeable",
        (None, None) => true,
    };
    Ok(Price {
        instrument: SmolStr::new(instrument),
        time,
        bid,
        bid_liquidity,
        ask,
        ask_liquidity,
        tradeable,
    })
}

#[derive(Clone, Copy)]
enum Side {
    Bid,
    Ask,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Bid => "bid",
            Side::Ask => "ask",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Side::Bid => "bids",
            Side::Ask => "asks",
        }
    }

    fn price_field(self) -> &'static str {
        match self {
            Side::Bid => "bids[0].price",
            Side::Ask => "asks[0].price",
        }
    }

    fn liquidity_field(self) -> &'static str {
        match self {
            Side::Bid => "bids[0].liquidity",
            Side::Ask => "asks[0].liquidity",
        }
    }
}

/// The best bucket of a side: its price and liquidity.
fn best(
    side_buckets: Option<Option<BucketText<'_>>>,
    side: Side,
) -> Result<(Decimal, Decimal), ParseError> {
    let first = side_buckets.ok_or(ParseError::MissingField(side.field()))?;
    let bucket = first.ok_or(ParseError::EmptyBook(side.field()))?;
    let price = bucket
        .price
        .ok_or(ParseError::MissingField(side.price_field()))?;
    let liquidity = bucket
        .liquidity
        .ok_or(ParseError::MissingField(side.liquidity_field()))?;
    let price = price_decimal(price).map_err(|reason| ParseError::BadPrice {
        side: side.name(),
        reason,
    })?;
    let liquidity = liquidity_decimal(liquidity).map_err(|reason| ParseError::BadLiquidity {
        side: side.name(),
        reason,
    })?;
    Ok((price, liquidity))
}

/// The contents of a JSON string's raw text, when it is a string without escapes (no price or
/// time OANDA sends has any).
fn string_contents(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// A price: a JSON string holding a positive plain decimal, `"1.09177"`.
fn price_decimal(text: &str) -> Result<Decimal, String> {
    let Some(inner) = string_contents(text) else {
        return Err(format!(
            "{} is not a decimal string (OANDA sends prices as strings)",
            snippet(text)
        ));
    };
    let value = plain_decimal(inner).map_err(|why| format!("{:?} {why}", snippet(inner)))?;
    if value.is_sign_negative() || value.is_zero() {
        return Err(format!("{:?} is not positive", snippet(inner)));
    }
    Ok(value)
}

/// `DIGITS[.DIGITS]`, exactly, keeping the scale: `1.09190` has scale 5. No sign, exponent,
/// separator or surrounding space (rust_decimal's own parser would take `1_000`).
fn plain_decimal(text: &str) -> Result<Decimal, &'static str> {
    const SHAPE: &str = "is not a plain decimal (digits, optionally one '.' and more digits)";
    let mut mantissa: i64 = 0;
    let mut digits = 0usize;
    let mut scale: Option<u32> = None;
    for &b in text.as_bytes() {
        match b {
            b'0'..=b'9' => {
                if digits < 18 {
                    mantissa = mantissa * 10 + i64::from(b - b'0');
                }
                digits += 1;
                if let Some(s) = scale.as_mut() {
                    *s += 1;
                }
            }
            b'.' if scale.is_none() && digits > 0 => scale = Some(0),
            _ => return Err(SHAPE),
        }
    }
    if digits == 0 || scale == Some(0) {
        return Err(SHAPE);
    }
    if digits <= 18 {
        // At most 18 digits: the mantissa fits an i64 and the value is exact.
        Decimal::try_new(mantissa, scale.unwrap_or(0)).map_err(|_| "has too many decimal places")
    } else {
        // Long text: let rust_decimal refuse what it cannot hold exactly (never round).
        Decimal::from_str_exact(text).map_err(|_| "has more digits than a decimal holds exactly")
    }
}

/// Liquidity: a JSON number that is a whole non-negative value, `10000000` or `10000000.0`
/// (or `1e7`), as a decimal with scale 0.
fn liquidity_decimal(text: &str) -> Result<Decimal, String> {
    match text.as_bytes().first() {
        Some(b'0'..=b'9') => {}
        Some(b'-') => return Err(format!("{} is negative", snippet(text))),
        _ => return Err(format!("{} is not a JSON number", snippet(text))),
    }
    // Fast path: up to 18 integer digits, optionally followed by `.0…0`.
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.len() <= 18
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b == b'0')
    {
        let mut v: i64 = 0;
        for b in whole.bytes() {
            v = v * 10 + i64::from(b - b'0');
        }
        return Ok(Decimal::from(v));
    }
    let value = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str_exact(text)
    }
    .map_err(|_| format!("{} is not a number a decimal holds exactly", snippet(text)))?;
    if !value.fract().is_zero() {
        return Err(format!("{} is not a whole number", snippet(text)));
    }
    let mut whole = value.trunc();
    whole.rescale(0);
    Ok(whole)
}

/// `time`: an RFC 3339 string, or UNIX epoch seconds (a string, or a bare JSON number).
fn time(raw: Option<&str>) -> Result<UnixNanos, ParseError> {
    let text = raw.ok_or(ParseError::MissingField("time"))?;
    let unix = match text.as_bytes().first() {
        Some(b'"') => {
            let inner = string_contents(text).ok_or_else(|| {
                ParseError::BadTime(format!("escaped characters in {}", snippet(text)))
            })?;
            // `YYYY-`: RFC 3339; anything else is tried as epoch seconds.
            if inner.as_bytes().get(4) == Some(&b'-') {
                return UnixNanos::parse_rfc3339(inner)
                    .map_err(|e| ParseError::BadTime(e.to_string()));
            }
            inner
        }
        Some(b'0'..=b'9') => text,
        _ => {
            return Err(ParseError::BadTime(format!(
                "{} is neither an RFC 3339 nor a UNIX time",
                snippet(text)
            )));
        }
    };
    parse_unix_seconds(unix).map_err(|why| {
        let shown: String = unix.chars().take(40).collect();
        ParseError::BadTime(format!("not UNIX epoch seconds ({why}): {shown:?}"))
    })
}

/// `SECONDS[.FRACTION]` since the epoch, exactly: `1514852541.189833163` is
/// 1 514 852 541 189 833 163 ns. Up to nine fraction digits; no sign, no exponent.
pub fn parse_unix_seconds(text: &str) -> Result<UnixNanos, &'static str> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err("whole seconds are not digits");
    }
    let mut secs: i64 = 0;
    for b in whole.bytes() {
        secs = secs
            .checked_mul(10)
            .and_then(|s| s.checked_add(i64::from(b - b'0')))
            .ok_or("out of range")?;
    }
    let mut nanos: i64 = 0;
    if let Some(fraction) = fraction {
        if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err("fraction is not digits");
        }
        if fraction.len() > 9 {
            return Err("more than 9 fraction digits");
        }
        for b in fraction.bytes() {
            nanos = nanos * 10 + i64::from(b - b'0');
        }
        for _ in fraction.len()..9 {
            nanos *= 10;
        }
    }
    secs.checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .map(UnixNanos)
        .ok_or("out of range")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    /// Both paths, which must agree.
    fn parse(text: &str) -> Result<Line, ParseError> {
        let line = parse_line(text.as_bytes());
        assert_eq!(line, parse_line_via_serde(text.as_bytes()), "{text}");
        line
    }

    fn price_of(text: &str) -> Price {
        match parse(text) {
            Ok(Line::Price(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    const EUR_USD_2016: &str = r#"{"status":"tradeable","asks":[{"price":"1.09188","liquidity":10000000},{"price":"1.09190","liquidity":10000000}],"closeoutBid":"1.09173","bids":[{"price":"1.09177","liquidity":10000000},{"price":"1.09175","liquidity":10000000}],"instrument":"EUR_USD","time":"2016-10-27T08:38:45.664613867Z","closeoutAsk":"1.09192","type":"PRICE"}"#;

    #[test]
    fn price_line_keeps_every_digit() {
        let p = price_of(EUR_USD_2016);
        assert_eq!(p.instrument, "EUR_USD");
        assert_eq!(p.time, UnixNanos(1_477_557_525_664_613_867));
        assert_eq!(p.bid.to_string(), "1.09177");
        assert_eq!(p.ask.to_string(), "1.09188");
        assert_eq!(p.bid_liquidity.to_string(), "10000000");
        assert_eq!(p.ask_liquidity.to_string(), "10000000");
        assert!(p.tradeable);
        // Trailing zeros are part of the value's scale.
        let p = price_of(
            r#"{"type":"PRICE","instrument":"EUR_USD","time":"2016-10-27T08:38:45.664613867Z","bids":[{"price":"1.09190","liquidity":1}],"asks":[{"price":"1.10000","liquidity":2}]}"#,
        );
        assert_eq!(p.bid.to_string(), "1.09190");
        assert_eq!(p.bid.scale(), 5);
        assert_eq!(p.ask.to_string(), "1.10000");
    }

    #[test]
    fn to_quote_fills_every_field() {
        let p = price_of(EUR_USD_2016);
        let symbol = Symbol::parse("EUR/USD").unwrap();
        let q = p.to_quote(symbol.clone(), UnixNanos(42), 7);
        assert_eq!(
            q,
            Quote {
                source: Source::Oanda,
                symbol,
                venue_symbol: "EUR_USD".into(),
                event_time: UnixNanos(1_477_557_525_664_613_867),
                received_at: UnixNanos(42),
                bid: dec("1.09177"),
                ask: dec("1.09188"),
                bid_size: dec("10000000"),
                ask_size: dec("10000000"),
                sequence: 7,
                indicative: false,
            }
        );
    }

    #[test]
    fn tradeable_flag_then_status_then_true() {
        let line = |extra: &str| {
            format!(
                r#"{{"type":"PRICE","instrument":"EUR_USD","time":"2020-10-23T21:02:02.692522548Z",{extra}"bids":[{{"price":"1.18571","liquidity":10000000}}],"asks":[{{"price":"1.18671","liquidity":10000000}}]}}"#
            )
        };
        for (extra, want) in [
            (r#""tradeable":true,"status":"non-tradeable","#, true),
            (r#""tradeable":false,"status":"tradeable","#, false),
            (r#""status":"tradeable","#, true),
            (r#""status":"non-tradeable","#, false),
            (r#""status":"invalid","#, false),
            ("", true),
        ] {
            assert_eq!(price_of(&line(extra)).tradeable, want, "{extra}");
        }
        let q = price_of(&line(r#""tradeable":false,"#)).to_quote(
            Symbol::parse("EUR/USD").unwrap(),
            UnixNanos(0),
            0,
        );
        assert!(q.indicative, "a non-tradeable price is kept, as indicative");
    }

    #[test]
    fn untyped_price_lines_are_prices() {
        let line = EUR_USD_2016.replace(r#","type":"PRICE""#, "");
        assert!(!line.contains("type"));
        assert_eq!(price_of(&line), price_of(EUR_USD_2016));
        // Neither `type` nor `instrument`: nothing to go on.
        assert_eq!(
            parse(r#"{"time":"2016-10-27T08:38:44.327443673Z"}"#),
            Err(ParseError::MissingField("type"))
        );
    }

    #[test]
    fn heartbeats_keepalives_and_other_types() {
        assert_eq!(
            parse(r#"{"type":"HEARTBEAT","time":"2016-10-27T08:38:44.327443673Z"}"#),
            Ok(Line::Heartbeat {
                time: UnixNanos(1_477_557_524_327_443_673)
            })
        );
        assert_eq!(
            parse(
                r#"{"lastTransactionID":"7582","time":"2017-03-09T15:08:57.512620407Z","type":"HEARTBEAT"}"#
            ),
            Ok(Line::Heartbeat {
                time: UnixNanos(1_489_072_137_512_620_407)
            })
        );
        for empty in ["", "\r", " \t ", "\r\n", "\n"] {
            assert_eq!(parse(empty), Ok(Line::Empty), "{empty:?}");
        }
        assert_eq!(
            parse(r#"{"type":"ORDER_FILL","instrument":"EUR_USD"}"#),
            Ok(Line::Other {
                kind: "ORDER_FILL".into()
            })
        );
        assert_eq!(
            parse(r#"{"type":"HEARTBEAT"}"#),
            Err(ParseError::MissingField("time"))
        );
    }

    #[test]
    fn crlf_and_deprecated_fields_are_tolerated() {
        let crlf = format!("{EUR_USD_2016}\r");
        assert_eq!(price_of(&crlf), price_of(EUR_USD_2016));
        let deprecated = EUR_USD_2016.replace(
            r#""type":"PRICE""#,
            r#""type":"PRICE","quoteHomeConversionFactors":{"positiveUnits":"1.0","negativeUnits":"1.0"},"unitsAvailable":{"default":{"long":"100","short":"100"}},"somethingNew":[1,{"a":null}]"#,
        );
        assert_eq!(price_of(&deprecated), price_of(EUR_USD_2016));
    }

    #[test]
    fn liquidity_is_a_whole_number() {
        let line = |liq: &str| {
            format!(
                r#"{{"type":"PRICE","instrument":"EUR_USD","time":"2017-03-09T13:37:46.048197280Z","bids":[{{"liquidity":{liq},"price":"1.05522"}}],"asks":[{{"liquidity":1,"price":"1.05534"}}]}}"#
            )
        };
        for (liq, want) in [
            ("10000000", "10000000"),
            ("10000000.0", "10000000"),
            ("10000000.000", "10000000"),
            ("0", "0"),
            ("1e7", "10000000"),
            ("1.5E1", "15"),
            ("123456789012345678901234", "123456789012345678901234"),
            ("123456789012345678901234.00", "123456789012345678901234"),
        ] {
            let p = price_of(&line(liq));
            assert_eq!(p.bid_liquidity.to_string(), want, "{liq}");
            assert_eq!(p.bid_liquidity.scale(), 0, "{liq}");
        }
        for bad in [
            "10000000.5",
            "-1",
            "-0",
            "\"10000000\"",
            "null",
            "true",
            "1e400",
            "1e-3",
            "{}",
        ] {
            let e = parse(&line(bad)).unwrap_err();
            assert!(
                matches!(
                    e,
                    ParseError::BadLiquidity { side: "bid", .. }
                        | ParseError::MissingField("bids[0].liquidity")
                ),
                "{bad}: {e}"
            );
        }
        assert!(
            parse(&line("10000000.5"))
                .unwrap_err()
                .to_string()
                .contains("not a whole number")
        );
    }

    #[test]
    fn prices_are_positive_decimal_strings() {
        let line = |price: &str| {
            format!(
                r#"{{"type":"PRICE","instrument":"EUR_USD","time":"2017-03-09T13:37:46.048197280Z","bids":[{{"liquidity":1,"price":"1.05522"}}],"asks":[{{"liquidity":1,"price":{price}}}]}}"#
            )
        };
        for bad in [
            "1.05534",
            "\"\"",
            "\"1.\"",
            "\".5\"",
            "\"-1.0\"",
            "\"+1.0\"",
            "\"1_000\"",
            "\"1e5\"",
            "\" 1.0\"",
            "\"0\"",
            "\"0.00000\"",
            "\"1.2.3\"",
            "\"1\\u0030\"",
            "null",
            "[]",
            "\"0.00000000000000000000000000001\"",
            "\"99999999999999999999999999999999\"",
        ] {
            let e = parse(&line(bad)).unwrap_err();
            assert!(
                matches!(
                    e,
                    ParseError::BadPrice { side: "ask", .. }
                        | ParseError::MissingField("asks[0].price")
                ),
                "{bad}: {e}"
            );
        }
        for good in [
            "114.312",
            "0.00001",
            "7",
            "0007.50",
            "12345678901234567890.123456",
        ] {
            let p = price_of(&line(&format!("\"{good}\"")));
            assert_eq!(p.ask, dec(good), "{good}");
            assert_eq!(p.ask.scale(), dec(good).scale(), "{good}");
        }
    }

    #[test]
    fn empty_or_missing_book_sides() {
        let line = |bids: &str, asks: &str| {
            format!(
                r#"{{"type":"PRICE","instrument":"EUR_USD","time":"2020-10-23T21:02:02.692522548Z"{bids}{asks}}}"#
            )
        };
        let b = r#","bids":[{"price":"1.18571","liquidity":10000000}]"#;
        let a = r#","asks":[{"price":"1.18671","liquidity":10000000}]"#;
        assert_eq!(
            parse(&line(r#","bids":[]"#, a)),
            Err(ParseError::EmptyBook("bids"))
        );
        assert_eq!(
            parse(&line(b, r#","asks":[]"#)),
            Err(ParseError::EmptyBook("asks"))
        );
        assert_eq!(parse(&line("", a)), Err(ParseError::MissingField("bids")));
        assert_eq!(parse(&line(b, "")), Err(ParseError::MissingField("asks")));
        assert_eq!(
            parse(&line(r#","bids":[{"liquidity":1}]"#, a)),
            Err(ParseError::MissingField("bids[0].price"))
        );
        assert_eq!(ParseError::EmptyBook("bids").reason(), "empty_book");
        // Deeper buckets are skipped, whatever they hold.
        let deep = line(
            r#","bids":[{"price":"1.18571","liquidity":1},{"price":"junk"},7]"#,
            a,
        );
        assert_eq!(price_of(&deep).bid, dec("1.18571"));
        assert!(matches!(
            parse(&line(r#","bids":{}"#, a)),
            Err(ParseError::Json(_))
        ));
    }

    #[test]
    fn unix_times_are_exact() {
        assert_eq!(
            parse_unix_seconds("1514852541.189833163"),
            Ok(UnixNanos(1_514_852_541_189_833_163))
        );
        assert_eq!(
            parse_unix_seconds("1514852541"),
            Ok(UnixNanos(1_514_852_541_000_000_000))
        );
        assert_eq!(parse_unix_seconds("1.5"), Ok(UnixNanos(1_500_000_000)));
        assert_eq!(parse_unix_seconds("0.000000001"), Ok(UnixNanos(1)));
        for bad in [
            "",
            ".",
            "1.",
            ".5",
            "-1.5",
            "+1",
            "1.1234567891",
            "1e9",
            "1.2.3",
            "15148525 41",
            "99999999999999999999",
            "9300000000",
        ] {
            assert!(parse_unix_seconds(bad).is_err(), "{bad:?}");
        }
        let line = |time: &str| {
            format!(
                r#"{{"type":"PRICE","instrument":"EUR_USD","time":{time},"bids":[{{"price":"1.1","liquidity":1}}],"asks":[{{"price":"1.2","liquidity":1}}]}}"#
            )
        };
        assert_eq!(
            price_of(&line(r#""1514852541.189833163""#)).time,
            UnixNanos(1_514_852_541_189_833_163)
        );
        assert_eq!(
            price_of(&line("1514852541.189833163")).time,
            UnixNanos(1_514_852_541_189_833_163)
        );
        for bad in [
            r#""1514852541.1898331631""#,
            r#""yesterday""#,
            r#""2016-10-27 08:38:45Z""#,
            r#""2016-10-27T08:38:45.1234567890Z""#,
            "-1",
            "true",
            r#""\u0031""#,
        ] {
            let e = parse(&line(bad)).unwrap_err();
            assert_eq!(e.reason(), "time", "{bad}: {e}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for (text, reason) in [
            ("null", "json"),
            ("[]", "json"),
            (r#"["PRICE","EUR_USD"]"#, "json"),
            ("{", "json"),
            ("{}", "missing_field"),
            (r#"{"type":7}"#, "json"),
            (r#"{"type":"PRICE"}"#, "missing_field"),
            (r#"{"type":"PRICE","instrument":""}"#, "missing_field"),
            (r#"{"type":"HEARTBEAT","time":"x","time":"y"}"#, "json"),
            (r#"{"type":"HEARTBEAT","time":"x"} {}"#, "json"),
            ("\u{0}\u{1}", "json"),
        ] {
            assert_eq!(parse(text).map_err(|e| e.reason()), Err(reason), "{text:?}");
        }
        assert_eq!(parse_line(b"{\"type\":\"\xff\"}"), Err(ParseError::NotUtf8));
        assert_eq!(
            parse_line_via_serde(b"{\"type\":\"\xff\"}"),
            Err(ParseError::NotUtf8)
        );
        let long = format!(
            "{{\"type\":\"PRICE\",\"instrument\":\"{}\"",
            "a".repeat(10_000)
        );
        let e = parse(&long).unwrap_err().to_string();
        assert!(e.len() < 200, "error text is bounded: {} bytes", e.len());
        let long_kind = format!("{{\"type\":\"{}\"}}", "X".repeat(10_000));
        let Ok(Line::Other { kind }) = parse(&long_kind) else {
            panic!()
        };
        assert!(kind.len() < 100);
    }
}
