//! Text of the frames the Kraken simulator sends, built with string formatting.
//!
//! Decimal fields are caller-supplied lexemes that are written into the JSON as bare numbers, character
//! for character (`"354.11000000"` becomes `354.11000000`). Nothing here goes through `f64`.

use std::fmt::Write as _;
use std::time::SystemTime;

use tickflow_schema::UnixNanos;

use super::{SimTicker, SimTrade};
use crate::util::push_json_str;

/// The heartbeat frame (§1.5).
pub(crate) const HEARTBEAT: &str = r#"{"channel":"heartbeat"}"#;

/// Appends `,"key":` followed by the JSON string literal of `value`.
fn push_str_field(buf: &mut String, key: &str, value: &str) {
    buf.push_str(",\"");
    buf.push_str(key);
    buf.push_str("\":");
    push_json_str(buf, value);
}

/// Appends `,"key":` followed by `lexeme` verbatim (a JSON number).
fn push_num_field(buf: &mut String, key: &str, lexeme: &str) {
    buf.push_str(",\"");
    buf.push_str(key);
    buf.push_str("\":");
    buf.push_str(lexeme);
}

/// One trade object, keys in the order of the docs (§1.6).
pub(crate) fn trade_object(t: &SimTrade) -> String {
    let mut s = String::with_capacity(
        112 + t.symbol.len() + t.price.len() + t.qty.len() + t.timestamp.len(),
    );
    s.push_str("{\"symbol\":");
    push_json_str(&mut s, &t.symbol);
    push_str_field(&mut s, "side", &t.side);
    push_num_field(&mut s, "price", &t.price);
    push_num_field(&mut s, "qty", &t.qty);
    push_str_field(&mut s, "ord_type", &t.ord_type);
    let _ = write!(s, ",\"trade_id\":{}", t.trade_id);
    push_str_field(&mut s, "timestamp", &t.timestamp);
    s.push('}');
    s
}

/// One ticker object, keys in the order of the docs (§1.7); `timestamp` only when present.
pub(crate) fn ticker_object(t: &SimTicker) -> String {
    let mut s = String::with_capacity(256);
    s.push_str("{\"symbol\":");
    push_json_str(&mut s, &t.symbol);
    push_num_field(&mut s, "bid", &t.bid);
    push_num_field(&mut s, "bid_qty", &t.bid_qty);
    push_num_field(&mut s, "ask", &t.ask);
    push_num_field(&mut s, "ask_qty", &t.ask_qty);
    push_num_field(&mut s, "last", &t.last);
    push_num_field(&mut s, "volume", &t.volume);
    push_num_field(&mut s, "vwap", &t.vwap);
    push_num_field(&mut s, "low", &t.low);
    push_num_field(&mut s, "high", &t.high);
    push_num_field(&mut s, "change", &t.change);
    push_num_field(&mut s, "change_pct", &t.change_pct);
    if let Some(ts) = &t.timestamp {
        push_str_field(&mut s, "timestamp", ts);
    }
    s.push('}');
    s
}

/// `{"channel":<channel>,"type":<kind>,"data":[<objects joined by commas>]}`.
pub(crate) fn data_frame<'a>(
    channel: &str,
    kind: &str,
    objects: impl Iterator<Item = &'a str> + Clone,
) -> String {
    let len: usize = objects.clone().map(|o| o.len() + 1).sum();
    let mut s = String::with_capacity(len + 48);
    s.push_str("{\"channel\":\"");
    s.push_str(channel);
    s.push_str("\",\"type\":\"");
    s.push_str(kind);
    s.push_str("\",\"data\":[");
    for (i, o) in objects.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(o);
    }
    s.push_str("]}");
    s
}

/// The status frame pushed right after connect (§1.5).
pub(crate) fn status_frame(connection_id: u64) -> String {
    format!(
        "{{\"channel\":\"status\",\"type\":\"update\",\"data\":[{{\"api_version\":\"v2\",\"connection_id\":{connection_id},\"system\":\"online\",\"version\":\"2.0.0\"}}]}}"
    )
}

/// Builder for request replies. Keys must be pushed in alphabetical order, as Kraken sends them.
#[derive(Debug)]
pub(crate) struct Reply {
    buf: String,
}

impl Reply {
    pub(crate) fn new() -> Self {
        let mut buf = String::with_capacity(192);
        buf.push('{');
        Self { buf }
    }

    fn key(&mut self, key: &str) {
        if self.buf.len() > 1 {
            self.buf.push(',');
        }
        self.buf.push('"');
        self.buf.push_str(key);
        self.buf.push_str("\":");
    }

    /// A string value.
    pub(crate) fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_json_str(&mut self.buf, value);
        self
    }

    /// Pre-serialised JSON (a number, a bool, an object).
    pub(crate) fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.buf.push_str(json);
        self
    }

    /// A raw value only when present.
    pub(crate) fn raw_opt(self, key: &str, json: Option<&str>) -> Self {
        match json {
            Some(json) => self.raw(key, json),
            None => self,
        }
    }

    /// A string value only when present.
    pub(crate) fn str_opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.str(key, value),
            None => self,
        }
    }

    /// The closing brace: the object as text (for nested objects such as `result`).
    pub(crate) fn close(self) -> String {
        let mut s = self.buf;
        s.push('}');
        s
    }

    /// `"time_in":..,"time_out":<now>` and the closing brace.
    pub(crate) fn finish(self, time_in: &str) -> String {
        let time_out = rfc3339_now();
        self.str("time_in", time_in)
            .str("time_out", &time_out)
            .close()
    }
}

/// The current time as RFC 3339 UTC with microseconds, e.g. `2023-10-06T17:35:55.219022Z`.
pub(crate) fn rfc3339_now() -> String {
    rfc3339_micros(SystemTime::now())
}

/// `t` as RFC 3339 UTC with microseconds, Kraken's format.
pub(crate) fn rfc3339_micros(t: SystemTime) -> String {
    UnixNanos::from(t).format_rfc3339(6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_known_instants() {
        let at = |secs: u64, micros: u64| {
            rfc3339_micros(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(1_696_613_755, 219_022), "2023-10-06T17:35:55.219022Z");
        assert_eq!(at(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(at(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
    }

    #[test]
    fn strings_are_escaped_like_serde_json() {
        for s in ["plain", "q\"uote", "back\\slash", "ctl\u{1}\n", "ünï/cödé"] {
            let mut buf = String::new();
            push_json_str(&mut buf, s);
            let back: String = serde_json::from_str(&buf).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn trade_object_matches_docs_shape() {
        let t = SimTrade {
            symbol: "MATIC/USD".into(),
            side: "buy".into(),
            price: "0.5147".into(),
            qty: "6423.46326".into(),
            ord_type: "limit".into(),
            trade_id: 4_665_846,
            timestamp: "2023-09-25T07:48:36.925533Z".into(),
        };
        assert_eq!(
            data_frame(
                "trade",
                "snapshot",
                std::iter::once(trade_object(&t).as_str())
            ),
            r#"{"channel":"trade","type":"snapshot","data":[{"symbol":"MATIC/USD","side":"buy","price":0.5147,"qty":6423.46326,"ord_type":"limit","trade_id":4665846,"timestamp":"2023-09-25T07:48:36.925533Z"}]}"#
        );
    }

    #[test]
    fn ticker_object_matches_docs_shape() {
        let t = SimTicker {
            symbol: "ALGO/USD".into(),
            bid: "0.10025".into(),
            bid_qty: "740.0".into(),
            ask: "0.10036".into(),
            ask_qty: "1361.44813783".into(),
            last: "0.10035".into(),
            volume: "997038.98383185".into(),
            vwap: "0.10148".into(),
            low: "0.09979".into(),
            high: "0.10285".into(),
            change: "-0.00017".into(),
            change_pct: "-0.17".into(),
            timestamp: Some("2023-09-25T09:04:31.742648Z".into()),
        };
        assert_eq!(
            data_frame(
                "ticker",
                "snapshot",
                std::iter::once(ticker_object(&t).as_str())
            ),
            r#"{"channel":"ticker","type":"snapshot","data":[{"symbol":"ALGO/USD","bid":0.10025,"bid_qty":740.0,"ask":0.10036,"ask_qty":1361.44813783,"last":0.10035,"volume":997038.98383185,"vwap":0.10148,"low":0.09979,"high":0.10285,"change":-0.00017,"change_pct":-0.17,"timestamp":"2023-09-25T09:04:31.742648Z"}]}"#
        );
    }

    #[test]
    fn status_frame_matches_docs_values() {
        let v: serde_json::Value =
            serde_json::from_str(&status_frame(13_834_774_380_200_032_777)).unwrap();
        assert_eq!(
            v["data"][0]["connection_id"].as_u64(),
            Some(13_834_774_380_200_032_777)
        );
        assert_eq!(v["channel"], "status");
    }
}
