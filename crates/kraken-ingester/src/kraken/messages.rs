//! Kraken spot WebSocket v2 wire types, borrowed from the frame text (`PROTOCOLS.md` §1).
//!
//! Every message is a JSON object. Data messages carry `channel`, `type` and `data`; replies to
//! our requests carry `method`, `success` and `req_id` and no `channel`. Prices and quantities are
//! JSON *numbers* with the engine's full precision, so they are kept as [`RawValue`]s (their text)
//! and turned into decimals from that text, never through `f64`. Unknown fields are ignored:
//! Kraken adds fields without notice.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The top level of any v2 message: enough to route it.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub method: Option<Cow<'a, str>>,
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(borrow, default)]
    pub error: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub symbol: Option<Cow<'a, str>>,
    #[serde(default)]
    pub req_id: Option<u64>,
    #[serde(borrow, default)]
    pub result: Option<AckResult<'a>>,
}

/// `result` of a successful subscribe/unsubscribe: one per symbol.
#[derive(Debug, Deserialize)]
pub(crate) struct AckResult<'a> {
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub symbol: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub warnings: Option<Vec<Cow<'a, str>>>,
}

/// One element of a `trade` message's `data`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireTrade<'a> {
    #[serde(borrow)]
    pub symbol: Cow<'a, str>,
    #[serde(borrow)]
    pub side: Cow<'a, str>,
    #[serde(borrow)]
    pub price: &'a RawValue,
    #[serde(borrow)]
    pub qty: &'a RawValue,
    pub trade_id: u64,
    #[serde(borrow)]
    pub timestamp: Cow<'a, str>,
}

/// One element of a `ticker` message's `data`: the fields tickflow keeps (level 1).
#[derive(Debug, Deserialize)]
pub(crate) struct WireTicker<'a> {
    #[serde(borrow)]
    pub symbol: Cow<'a, str>,
    #[serde(borrow)]
    pub bid: &'a RawValue,
    #[serde(borrow)]
    pub bid_qty: &'a RawValue,
    #[serde(borrow)]
    pub ask: &'a RawValue,
    #[serde(borrow)]
    pub ask_qty: &'a RawValue,
    #[serde(borrow, default)]
    pub timestamp: Option<Cow<'a, str>>,
}

/// The single element of a `status` message's `data`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireStatus<'a> {
    #[serde(borrow, default)]
    pub system: Option<Cow<'a, str>>,
    /// Larger than 2^53 in practice: a `u64`, never a double.
    #[serde(default)]
    pub connection_id: Option<u64>,
    #[serde(borrow, default)]
    pub version: Option<Cow<'a, str>>,
}
