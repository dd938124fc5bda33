//! Text of the lines the OANDA simulator sends, and the random-walk price generator.
//!
//! Prices are caller-supplied decimal lexemes written into the JSON as strings, character for
//! character, as OANDA does (`"price":"1.09177"`). Nothing here goes through `f64`.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Deserialize;
use tickflow_schema::UnixNanos;

use crate::util::{SplitMix64, decimal, fnv1a, push_json_str};

/// One price to publish: a `PRICE` line of the pricing stream.
#[derive(Debug, Clone)]
pub struct SimPrice {
    /// e.g. `"EUR_USD"`.
    pub instrument: String,
    /// RFC 3339 time, e.g. `"2016-10-27T08:38:45.664613867Z"` (OANDA sends 9 fractional digits).
    pub time: String,
    /// Bid buckets, best first: (price lexeme, liquidity).
    pub bids: Vec<(String, u64)>,
    /// Ask buckets, best first: (price lexeme, liquidity).
    pub asks: Vec<(String, u64)>,
    /// `false` outside trading hours (status `"non-tradeable"`).
    pub tradeable: bool,
}

impl SimPrice {
    /// The `PRICE` line (without the newline), keys in the order of OANDA's documentation:
    ///
    /// `{"type":"PRICE","time":..,"bids":[{"price":"1.09177","liquidity":10000000},..],"asks":[..],
    /// "closeoutBid":..,"closeoutAsk":..,"status":"tradeable","tradeable":true,"instrument":"EUR_USD"}`
    ///
    /// `closeoutBid` / `closeoutAsk` are the deepest (last) bucket of each side; a field is left out
    /// when its side has no buckets.
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(200 + 48 * (self.bids.len() + self.asks.len()));
        s.push_str("{\"type\":\"PRICE\",\"time\":");
        push_json_str(&mut s, &self.time);
        push_buckets(&mut s, "bids", &self.bids);
        push_buckets(&mut s, "asks", &self.asks);
        if let Some((price, _)) = self.bids.last() {
            s.push_str(",\"closeoutBid\":");
            push_json_str(&mut s, price);
        }
        if let Some((price, _)) = self.asks.last() {
            s.push_str(",\"closeoutAsk\":");
            push_json_str(&mut s, price);
        }
        if self.tradeable {
            s.push_str(",\"status\":\"tradeable\",\"tradeable\":true");
        } else {
            s.push_str(",\"status\":\"non-tradeable\",\"tradeable\":false");
        }
        s.push_str(",\"instrument\":");
        push_json_str(&mut s, &self.instrument);
        s.push('}');
        s
    }
}

/// Appends `,"key":[{"price":"..","liquidity":N},..]`.
fn push_buckets(s: &mut String, key: &str, buckets: &[(String, u64)]) {
    s.push_str(",\"");
    s.push_str(key);
    s.push_str("\":[");
    for (i, (price, liquidity)) in buckets.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"price\":");
        push_json_str(s, price);
        // Writing into a String cannot fail.
        let _ = write!(s, ",\"liquidity\":{liquidity}}}");
    }
    s.push(']');
}

/// A `HEARTBEAT` line (with its newline) stamped with the current time.
pub(crate) fn heartbeat_line() -> String {
    let time = UnixNanos::now().format_rfc3339(9);
    format!("{{\"type\":\"HEARTBEAT\",\"time\":\"{time}\"}}\n")
}

/// The top-level `"instrument"` string of a JSON object line, if the line is one and has it.
pub(crate) fn line_instrument(line: &str) -> Option<Cow<'_, str>> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        instrument: Option<Cow<'a, str>>,
    }
    // A derived struct also deserializes from a JSON array; only objects count.
    if !line
        .trim_start_matches([' ', '\t', '\r', '\n'])
        .starts_with('{')
    {
        return None;
    }
    serde_json::from_str::<Probe<'_>>(line).ok()?.instrument
}

/// Liquidity of the first and second bucket of [`random_walk`] prices.
const LIQUIDITY: [u64; 2] = [1_000_000, 2_000_000];

/// Deterministic random-walk prices for `instrument`: `count` prices, the first at `start`, each next
/// one `step_ns` later (a `step_ns` below 1 counts as 1, so times strictly increase), formatted as
/// RFC 3339 with 9 fractional digits.
///
/// The mid starts at 1.08000 (150.000 for `*JPY` instruments) and moves by up to half a pip per step;
/// the spread is 1 to 3 pips. Prices have 5 decimals (3 for `*JPY`). Each side has 2 buckets, with
/// liquidity 1000000 and 2000000, the second 1 to 3 fractional pips behind the first. Every price is
/// tradeable. The same arguments always give the same prices; `seed` and the instrument name both
/// feed the generator.
pub fn random_walk(
    instrument: &str,
    start: UnixNanos,
    step_ns: i64,
    count: usize,
    seed: u64,
) -> Vec<SimPrice> {
    let jpy = instrument.ends_with("JPY");
    let decimals: u32 = if jpy { 3 } else { 5 };
    // Prices are integers in units of the last decimal; one pip is 10 units either way.
    let mut mid: i64 = if jpy { 150_000 } else { 108_000 };
    let step_ns = step_ns.max(1);
    let mut rng = SplitMix64(seed ^ fnv1a(instrument.as_bytes()));
    let mut out = Vec::with_capacity(count);
    let mut time = start.0;
    for i in 0..count {
        if i > 0 {
            mid = (mid + rng.below(11) - 5).max(1_000);
            time = time.saturating_add(step_ns);
        }
        let spread = 10 + rng.below(21);
        let bid = mid - spread / 2;
        let ask = bid + spread;
        let gap = 1 + rng.below(3);
        out.push(SimPrice {
            instrument: instrument.to_owned(),
            time: UnixNanos(time).format_rfc3339(9),
            bids: vec![
                (decimal(bid, decimals), LIQUIDITY[0]),
                (decimal(bid - gap, decimals), LIQUIDITY[1]),
            ],
            asks: vec![
                (decimal(ask, decimals), LIQUIDITY[0]),
                (decimal(ask + gap, decimals), LIQUIDITY[1]),
            ],
            tradeable: true,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_line_matches_the_documented_shape() {
        let p = SimPrice {
            instrument: "EUR_USD".into(),
            time: "2016-10-27T08:38:45.664613867Z".into(),
            bids: vec![
                ("1.09177".into(), 10_000_000),
                ("1.09173".into(), 10_000_000),
            ],
            asks: vec![
                ("1.09188".into(), 10_000_000),
                ("1.09192".into(), 10_000_000),
            ],
            tradeable: true,
        };
        assert_eq!(
            p.to_line(),
            r#"{"type":"PRICE","time":"2016-10-27T08:38:45.664613867Z","bids":[{"price":"1.09177","liquidity":10000000},{"price":"1.09173","liquidity":10000000}],"asks":[{"price":"1.09188","liquidity":10000000},{"price":"1.09192","liquidity":10000000}],"closeoutBid":"1.09173","closeoutAsk":"1.09192","status":"tradeable","tradeable":true,"instrument":"EUR_USD"}"#
        );
    }

    #[test]
    fn non_tradeable_price_without_buckets() {
        let p = SimPrice {
            instrument: "EUR_USD".into(),
            time: "2020-10-23T21:02:02.692522548Z".into(),
            bids: vec![],
            asks: vec![],
            tradeable: false,
        };
        assert_eq!(
            p.to_line(),
            r#"{"type":"PRICE","time":"2020-10-23T21:02:02.692522548Z","bids":[],"asks":[],"status":"non-tradeable","tradeable":false,"instrument":"EUR_USD"}"#
        );
    }

    #[test]
    fn instrument_probe() {
        assert_eq!(
            line_instrument(r#"{"type":"PRICE","instrument":"EUR_USD"}"#).as_deref(),
            Some("EUR_USD")
        );
        assert_eq!(
            line_instrument(r#"{"instrument":"EUR\u005fUSD"}"#).as_deref(),
            Some("EUR_USD")
        );
        assert_eq!(line_instrument(r#"{"type":"HEARTBEAT"}"#), None);
        assert_eq!(line_instrument(r#"{"instrument":7}"#), None);
        assert_eq!(line_instrument("not json"), None);
        assert_eq!(line_instrument(r#"["instrument"]"#), None);
    }

    #[test]
    fn heartbeat_has_nanosecond_time() {
        let line = heartbeat_line();
        assert!(line.ends_with("Z\"}\n"), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["type"], "HEARTBEAT");
        let time = v["time"].as_str().unwrap_or_default();
        assert_eq!(time.len(), "2016-10-27T08:38:44.327443673Z".len(), "{time}");
    }

    #[test]
    fn random_walk_is_deterministic_and_well_formed() {
        let start = UnixNanos(1_700_000_000_000_000_000);
        let a = random_walk("EUR_USD", start, 250_000_000, 1_000, 7);
        let b = random_walk("EUR_USD", start, 250_000_000, 1_000, 7);
        assert_eq!(a.len(), 1_000);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_line() == y.to_line()));
        assert_ne!(
            a[1..].iter().map(SimPrice::to_line).collect::<Vec<_>>(),
            random_walk("EUR_USD", start, 250_000_000, 1_000, 8)[1..]
                .iter()
                .map(SimPrice::to_line)
                .collect::<Vec<_>>()
        );
        assert_eq!(a[0].time, "2023-11-14T22:13:20.000000000Z");
        assert_eq!(a[1].time, "2023-11-14T22:13:20.250000000Z");
        for p in &a {
            check_price(p, 5);
        }
        let jpy = random_walk("USD_JPY", start, 1, 1_000, 7);
        assert!(jpy[0].bids[0].0.starts_with("149.") || jpy[0].bids[0].0.starts_with("150."));
        for p in &jpy {
            check_price(p, 3);
        }
        assert!(a[0].bids[0].0.starts_with("1.07") || a[0].bids[0].0.starts_with("1.08"));
        let times: Vec<&str> = jpy.iter().map(|p| p.time.as_str()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }

    fn units(lexeme: &str, decimals: usize) -> i64 {
        let (int, frac) = lexeme.split_once('.').unwrap_or(("", ""));
        assert_eq!(frac.len(), decimals, "{lexeme}");
        format!("{int}{frac}").parse().unwrap_or(-1)
    }

    fn check_price(p: &SimPrice, decimals: usize) {
        assert!(p.tradeable);
        assert_eq!(p.bids.len(), 2);
        assert_eq!(p.asks.len(), 2);
        assert_eq!(p.bids[0].1, 1_000_000);
        assert_eq!(p.bids[1].1, 2_000_000);
        assert_eq!(p.asks[0].1, 1_000_000);
        assert_eq!(p.asks[1].1, 2_000_000);
        let bid = units(&p.bids[0].0, decimals);
        let ask = units(&p.asks[0].0, decimals);
        assert!((10..=30).contains(&(ask - bid)), "{p:?}");
        assert!(units(&p.bids[1].0, decimals) < bid);
        assert!(units(&p.asks[1].0, decimals) > ask);
        assert_eq!(p.time.len(), 30, "{}", p.time);
    }
}
