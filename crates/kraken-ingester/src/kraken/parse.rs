//! Frame text → domain ticks and control events. Pure: no I/O, no state, never panics.
//!
//! A frame is either *data* (`trade`, `ticker`: appended to the caller's tick buffer), *control*
//! (heartbeat, status, pong, subscribe/unsubscribe acks and refusals: routed by the socket
//! handler, never counted as errors), or *malformed* (an `Err`: counted, logged at a limited
//! rate, skipped). Inside a data frame each element stands alone: one bad trade is reported in
//! `bad` and its good neighbours are kept.

use std::borrow::Cow;
use std::fmt;

use rust_decimal::Decimal;
use serde_json::value::RawValue;
use smol_str::{SmolStr, format_smolstr};
use tickflow_schema::{Quote, Side, Source, Tick, Trade, UnixNanos};

use super::messages::{Envelope, WireStatus, WireTicker, WireTrade};
use super::symbols;

/// The data channels tickflow reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// `trade`: one trade tick per element.
    Trade,
    /// `ticker`: best bid/offer with quantities, one quote tick per element.
    Ticker,
}

impl Channel {
    /// The channel's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Trade => "trade",
            Channel::Ticker => "ticker",
        }
    }

    /// Parses a wire name.
    pub fn from_wire(name: &str) -> Option<Self> {
        match name {
            "trade" => Some(Channel::Trade),
            "ticker" => Some(Channel::Ticker),
            _ => None,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a frame was.
#[derive(Debug, PartialEq)]
pub enum Frame<'a> {
    /// A `trade` or `ticker` message; its good elements were appended to the tick buffer.
    Data {
        /// Which channel.
        channel: Channel,
        /// `type: "snapshot"` (sent right after a subscription) rather than `"update"`.
        snapshot: bool,
        /// Ticks appended.
        ticks: usize,
        /// Ticker elements with a zero bid and ask: "no quote", skipped (`PROTOCOLS.md` §1.7).
        no_quote: usize,
    },
    /// `{"channel":"heartbeat"}`.
    Heartbeat,
    /// The engine's state, pushed after connect and on every change.
    Status {
        /// `online`, `cancel_only`, `maintenance`, `post_only`.
        system: Cow<'a, str>,
        /// Kraken's id of this connection (above 2^53: a `u64`).
        connection_id: Option<u64>,
        /// API version string.
        version: Option<Cow<'a, str>>,
    },
    /// The reply to our application-level ping.
    Pong {
        /// Echo of our `req_id`.
        req_id: Option<u64>,
    },
    /// A successful reply to a request: one per symbol for subscribe and unsubscribe.
    Ack {
        /// `subscribe` or `unsubscribe`.
        method: Cow<'a, str>,
        /// Echo of our `req_id`.
        req_id: Option<u64>,
        /// The channel acknowledged.
        channel: Option<Cow<'a, str>>,
        /// The pair acknowledged (venue spelling).
        symbol: Option<Cow<'a, str>>,
        /// Deprecation notices and the like.
        warnings: Vec<Cow<'a, str>>,
    },
    /// A refused request. Route it by `req_id`, not by `method`: Kraken answers an unsubscribe of
    /// something not subscribed with `method: "subscribe"` (`PROTOCOLS.md` §1.4).
    Refused {
        /// As sent by Kraken (not reliable, see above).
        method: Cow<'a, str>,
        /// Echo of our `req_id`.
        req_id: Option<u64>,
        /// The pair refused, when the refusal names one.
        symbol: Option<Cow<'a, str>>,
        /// Kraken's error text, e.g. `Currency pair not supported XBT/USD`.
        error: Cow<'a, str>,
    },
    /// A channel tickflow does not read (`book`, `instrument`, ...): ignored.
    OtherChannel(Cow<'a, str>),
}

/// Why a frame, or one element of it, was not understood. The texts are bounded: hostile input
/// never makes a log line long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not a JSON object of the shape of any v2 message.
    #[error("not a Kraken v2 message: {0}")]
    Json(String),
    /// A data message without a `data` array.
    #[error("{0} message without a data array")]
    NoData(Channel),
    /// One element of a data message.
    #[error("{channel} element {index}: {reason}")]
    Element {
        /// The channel.
        channel: Channel,
        /// Position in `data`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Valid JSON that is no message we know.
    #[error("unrecognised message: {0}")]
    Unrecognised(String),
}

fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// Parses one text frame. Data elements become ticks appended to `out` (quotes with
/// `sequence` 0: the session numbers them); elements that fail are appended to `bad`.
pub fn parse_frame<'a>(
    text: &'a str,
    received_at: UnixNanos,
    out: &mut Vec<Tick>,
    bad: &mut Vec<FrameError>,
) -> Result<Frame<'a>, FrameError> {
    let env: Envelope<'a> =
        serde_json::from_str(text).map_err(|e| FrameError::Json(snippet(&e.to_string())))?;
    if let Some(channel) = env.channel {
        let snapshot = env.kind.as_deref() == Some("snapshot");
        return match channel.as_ref() {
            "trade" => {
                let data = env.data.ok_or(FrameError::NoData(Channel::Trade))?;
                let before = out.len();
                parse_trades(data, received_at, out, bad)?;
                Ok(Frame::Data {
                    channel: Channel::Trade,
                    snapshot,
                    ticks: out.len() - before,
                    no_quote: 0,
                })
            }
            "ticker" => {
                let data = env.data.ok_or(FrameError::NoData(Channel::Ticker))?;
                let before = out.len();
                let no_quote = parse_tickers(data, received_at, out, bad)?;
                Ok(Frame::Data {
                    channel: Channel::Ticker,
                    snapshot,
                    ticks: out.len() - before,
                    no_quote,
                })
            }
            "heartbeat" => Ok(Frame::Heartbeat),
            "status" => parse_status(env.data),
            _ => Ok(Frame::OtherChannel(channel)),
        };
    }
    let Some(method) = env.method else {
        return Err(FrameError::Unrecognised(snippet(text)));
    };
    if method == "pong" {
        return Ok(Frame::Pong { req_id: env.req_id });
    }
    match env.success {
        Some(true) => {
            let (channel, symbol, warnings) = match env.result {
                Some(r) => (r.channel, r.symbol, r.warnings.unwrap_or_default()),
                None => (None, env.symbol, Vec::new()),
            };
            Ok(Frame::Ack {
                method,
                req_id: env.req_id,
                channel,
                symbol,
                warnings,
            })
        }
        Some(false) => Ok(Frame::Refused {
            method,
            req_id: env.req_id,
            symbol: env.symbol.or(env.result.and_then(|r| r.symbol)),
            error: env.error.unwrap_or(Cow::Borrowed("(no error text)")),
        }),
        None => Err(FrameError::Unrecognised(snippet(text))),
    }
}

fn parse_status(data: Option<&RawValue>) -> Result<Frame<'_>, FrameError> {
    let data = data.ok_or_else(|| FrameError::Unrecognised("status without data".to_owned()))?;
    let mut items: Vec<WireStatus<'_>> = serde_json::from_str(data.get())
        .map_err(|e| FrameError::Json(snippet(&format!("status data: {e}"))))?;
    if items.is_empty() {
        return Err(FrameError::Unrecognised(
            "status with empty data".to_owned(),
        ));
    }
    let status = items.swap_remove(0);
    Ok(Frame::Status {
        system: status.system.unwrap_or(Cow::Borrowed("unknown")),
        connection_id: status.connection_id,
        version: status.version,
    })
}

/// Parses `data` as an array of `T`: in one pass when every element is well formed (the fast
/// path), element by element otherwise, so that one bad element costs only itself.
fn for_each_element<'a, T: serde::Deserialize<'a>>(
    data: &'a RawValue,
    channel: Channel,
    bad: &mut Vec<FrameError>,
    mut each: impl FnMut(usize, T) -> Result<(), String>,
) -> Result<(), FrameError> {
    let mut element = |index: usize, item: T, bad: &mut Vec<FrameError>| {
        if let Err(reason) = each(index, item) {
            bad.push(FrameError::Element {
                channel,
                index,
                reason,
            });
        }
    };
    match serde_json::from_str::<Vec<T>>(data.get()) {
        Ok(items) => {
            for (i, item) in items.into_iter().enumerate() {
                element(i, item, bad);
            }
        }
        Err(_) => {
            let raws: Vec<&'a RawValue> = serde_json::from_str(data.get()).map_err(|e| {
                FrameError::Json(snippet(&format!("{channel} data is not an array: {e}")))
            })?;
            for (i, raw) in raws.into_iter().enumerate() {
                match serde_json::from_str::<T>(raw.get()) {
                    Ok(item) => element(i, item, bad),
                    Err(e) => bad.push(FrameError::Element {
                        channel,
                        index: i,
                        reason: snippet(&e.to_string()),
                    }),
                }
            }
        }
    }
    Ok(())
}

fn parse_trades(
    data: &RawValue,
    received_at: UnixNanos,
    out: &mut Vec<Tick>,
    bad: &mut Vec<FrameError>,
) -> Result<(), FrameError> {
    for_each_element(data, Channel::Trade, bad, |_, t: WireTrade<'_>| {
        out.push(Tick::Trade(trade(t, received_at)?));
        Ok(())
    })
}

fn trade(t: WireTrade<'_>, received_at: UnixNanos) -> Result<Trade, String> {
    let symbol = symbols::canonical(&t.symbol).map_err(|e| format!("symbol: {e}"))?;
    let side = match t.side.as_ref() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        other => return Err(format!("side {:?} is neither buy nor sell", snippet(other))),
    };
    let price = decimal(t.price, "price")?;
    let size = decimal(t.qty, "qty")?;
    if price <= Decimal::ZERO || size <= Decimal::ZERO {
        return Err(format!("price {price} and qty {size} must be positive"));
    }
    let event_time =
        UnixNanos::parse_rfc3339(&t.timestamp).map_err(|e| format!("timestamp: {e}"))?;
    Ok(Trade {
        source: Source::Kraken,
        symbol,
        venue_symbol: SmolStr::new(t.symbol),
        event_time,
        received_at,
        price,
        size,
        side,
        trade_id: format_smolstr!("{}", t.trade_id),
    })
}

fn parse_tickers(
    data: &RawValue,
    received_at: UnixNanos,
    out: &mut Vec<Tick>,
    bad: &mut Vec<FrameError>,
) -> Result<usize, FrameError> {
    let mut no_quote = 0;
    for_each_element(data, Channel::Ticker, bad, |_, t: WireTicker<'_>| {
        match quote(t, received_at)? {
            Some(q) => out.push(Tick::Quote(q)),
            None => no_quote += 1,
        }
        Ok(())
    })?;
    Ok(no_quote)
}

fn quote(t: WireTicker<'_>, received_at: UnixNanos) -> Result<Option<Quote>, String> {
    let symbol = symbols::canonical(&t.symbol).map_err(|e| format!("symbol: {e}"))?;
    let bid = decimal(t.bid, "bid")?;
    let ask = decimal(t.ask, "ask")?;
    let bid_size = decimal(t.bid_qty, "bid_qty")?;
    let ask_size = decimal(t.ask_qty, "ask_qty")?;
    if bid.is_zero() && ask.is_zero() {
        return Ok(None);
    }
    if bid.is_sign_negative() || ask.is_sign_negative() {
        return Err(format!("negative price: bid {bid}, ask {ask}"));
    }
    if bid_size.is_sign_negative() || ask_size.is_sign_negative() {
        return Err(format!(
            "negative quantity: bid_qty {bid_size}, ask_qty {ask_size}"
        ));
    }
    // `timestamp` is optional in the v2 ticker; without it the receive time is the best we know.
    let event_time = match t.timestamp.as_deref() {
        Some(ts) => UnixNanos::parse_rfc3339(ts).map_err(|e| format!("timestamp: {e}"))?,
        None => received_at,
    };
    Ok(Some(Quote {
        source: Source::Kraken,
        symbol,
        venue_symbol: SmolStr::new(t.symbol),
        event_time,
        received_at,
        bid,
        ask,
        bid_size,
        ask_size,
        sequence: 0,
        indicative: false,
    }))
}

/// A decimal from a JSON number's text, exactly: `354.11000000` keeps its eight places. A number
/// in exponent form (`1e-8`) is accepted; a string, `null` or a number beyond 28 digits is not.
pub fn decimal(raw: &RawValue, field: &str) -> Result<Decimal, String> {
    let text = raw.get();
    let numeric = matches!(text.as_bytes().first(), Some(b'-' | b'0'..=b'9'));
    if !numeric {
        return Err(format!("{field} is not a JSON number: {}", snippet(text)));
    }
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str_exact(text)
    };
    parsed.map_err(|e| format!("{field} {}: {e}", snippet(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RX: UnixNanos = UnixNanos(1_700_000_000_000_000_000);

    fn parse(text: &str) -> (Result<Frame<'_>, FrameError>, Vec<Tick>, Vec<FrameError>) {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        let frame = parse_frame(text, RX, &mut out, &mut bad);
        (frame, out, bad)
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn trade_frame_keeps_every_lexeme() {
        let text = r#"{"channel":"trade","type":"update","data":[{"symbol":"XBT/USD","side":"sell","price":354.11000000,"qty":0.89594024,"ord_type":"limit","trade_id":7,"timestamp":"2021-04-17T16:49:02.557535Z"}]}"#;
        let (frame, out, bad) = parse(text);
        assert_eq!(
            frame.unwrap(),
            Frame::Data {
                channel: Channel::Trade,
                snapshot: false,
                ticks: 1,
                no_quote: 0
            }
        );
        assert!(bad.is_empty());
        let Tick::Trade(t) = &out[0] else { panic!() };
        assert_eq!(t.symbol.as_str(), "BTC/USD");
        assert_eq!(t.venue_symbol, "XBT/USD");
        assert_eq!(t.price.to_string(), "354.11000000");
        assert_eq!(t.size.to_string(), "0.89594024");
        assert_eq!(t.side, Side::Sell);
        assert_eq!(t.trade_id, "7");
        assert_eq!(t.event_time, UnixNanos(1_618_678_142_557_535_000));
        assert_eq!(t.received_at, RX);
    }

    #[test]
    fn one_bad_element_costs_only_itself() {
        let text = r#"{"channel":"trade","type":"update","data":[
            {"symbol":"BTC/USD","side":"buy","price":1.5,"qty":2,"ord_type":"limit","trade_id":1,"timestamp":"2024-01-01T00:00:00.000001Z"},
            {"symbol":"BTC/USD","side":"buy","price":"1.5","qty":2,"ord_type":"limit","trade_id":2,"timestamp":"2024-01-01T00:00:00.000001Z"},
            {"symbol":"BTC/USD","side":"hold","price":1.5,"qty":2,"ord_type":"limit","trade_id":3,"timestamp":"2024-01-01T00:00:00.000001Z"},
            {"symbol":"BTC/USD","side":"buy","price":1.5,"qty":2,"ord_type":"limit","trade_id":4,"timestamp":"yesterday"},
            {"symbol":"BTC/USD","side":"buy","price":0,"qty":2,"ord_type":"limit","trade_id":5,"timestamp":"2024-01-01T00:00:00.000001Z"},
            {"symbol":"BTC/USD","side":"buy","price":1e400,"qty":2,"ord_type":"limit","trade_id":6,"timestamp":"2024-01-01T00:00:00.000001Z"},
            {"symbol":"BTC/USD","side":"sell","price":1.25,"qty":3,"ord_type":"market","trade_id":7,"timestamp":"2024-01-01T00:00:00.000002Z"},
            7
        ]}"#;
        let (frame, out, bad) = parse(text);
        assert!(matches!(frame.unwrap(), Frame::Data { ticks: 2, .. }));
        let ids: Vec<_> = out
            .iter()
            .map(|t| match t {
                Tick::Trade(t) => t.trade_id.to_string(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(ids, ["1", "7"]);
        let indices: Vec<_> = bad
            .iter()
            .map(|e| match e {
                FrameError::Element { index, .. } => *index,
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(indices, [1, 2, 3, 4, 5, 7]);
    }

    #[test]
    fn ticker_is_a_quote_and_zero_is_no_quote() {
        let text = r#"{"channel":"ticker","type":"snapshot","data":[{"symbol":"ALGO/USD","bid":0.10025,"bid_qty":740.0,"ask":0.10036,"ask_qty":1361.44813783,"last":0.10035,"volume":997038.98383185,"vwap":0.10148,"low":0.09979,"high":0.10285,"change":-0.00017,"change_pct":-0.17,"timestamp":"2023-09-25T09:04:31.742648Z"}]}"#;
        let (frame, out, _) = parse(text);
        assert!(matches!(
            frame.unwrap(),
            Frame::Data {
                channel: Channel::Ticker,
                snapshot: true,
                ticks: 1,
                no_quote: 0
            }
        ));
        let Tick::Quote(q) = &out[0] else { panic!() };
        assert_eq!((q.bid, q.ask), (dec("0.10025"), dec("0.10036")));
        assert_eq!(q.bid_size.to_string(), "740.0");
        assert_eq!(q.ask_size.to_string(), "1361.44813783");
        assert_eq!(q.event_time, UnixNanos(1_695_632_671_742_648_000));

        let zero = r#"{"channel":"ticker","type":"update","data":[{"symbol":"ANETX/USD","bid":0,"bid_qty":0,"ask":0,"ask_qty":0,"last":0,"timestamp":"1970-01-01T00:00:00.000000Z"}]}"#;
        let (frame, out, bad) = parse(zero);
        assert!(matches!(
            frame.unwrap(),
            Frame::Data {
                ticks: 0,
                no_quote: 1,
                ..
            }
        ));
        assert!(out.is_empty() && bad.is_empty());

        let untimed = r#"{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":1,"bid_qty":1,"ask":2,"ask_qty":1}]}"#;
        let (_, out, _) = parse(untimed);
        assert_eq!(out[0].event_time(), RX, "no timestamp: the receive time");
    }

    #[test]
    fn control_frames_are_control() {
        assert_eq!(
            parse(r#"{"channel":"heartbeat"}"#).0.unwrap(),
            Frame::Heartbeat
        );
        assert_eq!(
            parse(r#"{"method":"pong","req_id":101,"time_in":"x","time_out":"y"}"#)
                .0
                .unwrap(),
            Frame::Pong { req_id: Some(101) }
        );
        let status = r#"{"channel":"status","data":[{"api_version":"v2","connection_id":13834774380200032777,"system":"online","version":"2.0.0"}],"type":"update"}"#;
        assert_eq!(
            parse(status).0.unwrap(),
            Frame::Status {
                system: "online".into(),
                connection_id: Some(13_834_774_380_200_032_777),
                version: Some("2.0.0".into())
            }
        );
        let ack = r#"{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"ALGO/USD","warnings":["deprecated"]},"success":true,"req_id":4,"time_in":"2023-10-06T17:35:55.219022Z","time_out":"2023-10-06T17:35:55.219067Z"}"#;
        assert_eq!(
            parse(ack).0.unwrap(),
            Frame::Ack {
                method: "subscribe".into(),
                req_id: Some(4),
                channel: Some("book".into()),
                symbol: Some("ALGO/USD".into()),
                warnings: vec!["deprecated".into()]
            }
        );
        let refused = r#"{"error":"Currency pair not supported XBT/USD","method":"subscribe","success":false,"symbol":"XBT/USD","req_id":9,"time_in":"a","time_out":"b"}"#;
        assert_eq!(
            parse(refused).0.unwrap(),
            Frame::Refused {
                method: "subscribe".into(),
                req_id: Some(9),
                symbol: Some("XBT/USD".into()),
                error: "Currency pair not supported XBT/USD".into()
            }
        );
        assert_eq!(
            parse(r#"{"channel":"book","type":"update","data":[]}"#)
                .0
                .unwrap(),
            Frame::OtherChannel("book".into())
        );
    }

    #[test]
    fn long_pair_names_up_to_the_symbol_limit() {
        // The fuzzer's first find: a 32-byte pair name panicked inside Symbol::parse.
        let text = r#"{"channel":"ticker","type":"snapshot","data":[{"symbol":"ALGO/USDCCCCCCCCCCCCCCCCCCCCCCCC","bid":0.10025,"bid_qty":740.0,"ask":0.10036,"ask_qty":13610285}]}"#;
        let (frame, out, bad) = parse(text);
        assert!(
            matches!(frame.unwrap(), Frame::Data { ticks: 1, .. }),
            "{bad:?}"
        );
        assert_eq!(out[0].symbol().as_str(), "ALGO/USDCCCCCCCCCCCCCCCCCCCCCCCC");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "",
            "null",
            "[]",
            "{",
            "{}",
            r#"{"channel":"trade"}"#,
            r#"{"channel":"trade","data":{}}"#,
            r#"{"channel":"status","data":[]}"#,
            r#"{"method":"subscribe"}"#,
            r#"{"channel":7}"#,
            "\u{0}\u{1}",
        ] {
            assert!(parse(text).0.is_err(), "{text:?}");
        }
        let long = format!("{{\"x\":\"{}\"", "a".repeat(10_000));
        let e = parse(&long).0.unwrap_err().to_string();
        assert!(e.len() < 200, "error text is bounded: {} bytes", e.len());
    }

    #[test]
    fn decimals_never_go_through_floats() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert_eq!(
            decimal(&raw("0.00012340"), "p").unwrap().to_string(),
            "0.00012340"
        );
        assert_eq!(
            decimal(&raw("29430.4"), "p").unwrap().to_string(),
            "29430.4"
        );
        assert_eq!(
            decimal(&raw("1e-8"), "p").unwrap().to_string(),
            "0.00000001"
        );
        // Beyond 28 digits: an error, never a silently rounded price.
        assert!(decimal(&raw("0.1000000000000000055511151231257827"), "p").is_err());
        assert!(decimal(&raw("\"1.5\""), "p").is_err());
        assert!(decimal(&raw("null"), "p").is_err());
    }
}
