//! Dukascopy's two interfaces behind one trait: where an hour lives ([`Transport::url`]) and how
//! its body becomes quotes ([`Transport::decode`]); and the HTTP fetch that classifies every
//! answer ([`fetch`]).
//!
//! - [`JsonApi`]: `{base}/v1/ticks/{CODE}/{YYYY}/{M}/{D}/{H}`, CODE `EUR-USD`, **one-based**
//!   month, no padding; a columnar delta-encoded JSON body ([`crate::jetta`]).
//! - [`Bi5Feed`]: `{base}/datafeed/{SYM}/{YYYY}/{MM0}/{DD}/{HH}h_ticks.bi5`, **zero-based**
//!   month, zero-padded; an LZMA "alone" body of 20-byte records ([`crate::bi5`]).
//!
//! Both number an hour's ticks 0, 1, 2… in the order the venue sent them, so the same hour
//! downloaded again gives the same keys.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Datelike as _, Timelike as _, Utc};
use tickflow_schema::{Quote, Symbol, UnixNanos};

use crate::config::TransportKind;
use crate::instruments::Instrument;
use crate::{Bi5Error, bi5, jetta, ticks};

/// Why a body is not a good hour. Never retried on the same bytes; the hour is downloaded again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A `.bi5` body.
    #[error("{0}")]
    Bi5(#[from] Bi5Error),
    /// A JSON body.
    #[error("{0}")]
    Json(#[from] jetta::JettaError),
}

/// One of Dukascopy's interfaces.
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Which.
    fn kind(&self) -> TransportKind;
    /// The URL of the hour starting at `hour` (UTC, on the hour).
    fn url(&self, instrument: &Instrument, hour: UnixNanos) -> String;
    /// The hour's quotes from a body the server answered 200 with. An empty hour is `Ok(vec![])`.
    fn decode(
        &self,
        body: &[u8],
        instrument: &Instrument,
        hour: UnixNanos,
        received_at: UnixNanos,
    ) -> Result<Vec<Quote>, DecodeError>;
}

/// The civil UTC hour of `hour`.
fn civil(hour: UnixNanos) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(hour.0)
}

fn symbol_of(instrument: &Instrument) -> Result<Symbol, Bi5Error> {
    Symbol::parse(instrument.symbol)
        .map_err(|_| Bi5Error::UnknownInstrument(instrument.symbol.to_owned()))
}

/// The JSON API's instrument code: `EURUSD` → `EUR-USD` (six letters split after the third;
/// other symbols are sent as they are).
pub fn json_code(datafeed_symbol: &str) -> String {
    if datafeed_symbol.len() == 6 && datafeed_symbol.is_ascii() {
        format!("{}-{}", &datafeed_symbol[..3], &datafeed_symbol[3..])
    } else {
        datafeed_symbol.to_owned()
    }
}

/// Dukascopy's JSON API.
#[derive(Debug, Clone)]
pub struct JsonApi {
    base: String,
    max_ticks: usize,
}

impl JsonApi {
    /// On `base` (`https://jetta.dukascopy.com`), refusing hours of more than `max_ticks` ticks.
    pub fn new(base: &str, max_ticks: usize) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            max_ticks,
        }
    }
}

impl Transport for JsonApi {
    fn kind(&self) -> TransportKind {
        TransportKind::Json
    }

    fn url(&self, instrument: &Instrument, hour: UnixNanos) -> String {
        let t = civil(hour);
        format!(
            "{}/v1/ticks/{}/{}/{}/{}/{}",
            self.base,
            json_code(instrument.datafeed_symbol),
            t.year(),
            t.month(),
            t.day(),
            t.hour()
        )
    }

    fn decode(
        &self,
        body: &[u8],
        instrument: &Instrument,
        hour: UnixNanos,
        received_at: UnixNanos,
    ) -> Result<Vec<Quote>, DecodeError> {
        let symbol = symbol_of(instrument)?;
        Ok(jetta::quotes(
            body,
            &symbol,
            instrument.datafeed_symbol,
            hour,
            received_at,
            self.max_ticks,
        )?)
    }
}

/// The legacy `.bi5` datafeed.
#[derive(Debug, Clone)]
pub struct Bi5Feed {
    base: String,
    max_output: usize,
}

impl Bi5Feed {
    /// On `base` (`https://datafeed.dukascopy.com`), refusing hours that decompress to more than
    /// `max_output` bytes.
    pub fn new(base: &str, max_output: usize) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            max_output,
        }
    }
}

impl Transport for Bi5Feed {
    fn kind(&self) -> TransportKind {
        TransportKind::Bi5
    }

    fn url(&self, instrument: &Instrument, hour: UnixNanos) -> String {
        let t = civil(hour);
        format!(
            "{}/datafeed/{}/{}/{:02}/{:02}/{:02}h_ticks.bi5",
            self.base,
            instrument.datafeed_symbol,
            t.year(),
            t.month0(),
            t.day(),
            t.hour()
        )
    }

    fn decode(
        &self,
        body: &[u8],
        instrument: &Instrument,
        hour: UnixNanos,
        received_at: UnixNanos,
    ) -> Result<Vec<Quote>, DecodeError> {
        let symbol = symbol_of(instrument)?;
        let raw = bi5::decompress(body, self.max_output)?;
        let records = bi5::tick_records(&raw)?;
        Ok(ticks::quotes(
            &symbol,
            instrument.datafeed_symbol,
            hour,
            &records,
            received_at,
        )?)
    }
}

/// What one request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 with a body that is not an HTML page (maybe empty).
    Body(Bytes),
    /// 404: no file for the hour.
    NotFound,
    /// 429 or 503: slow down; `Retry-After` if the server said.
    Throttled {
        /// The status.
        status: u16,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// An HTML page instead of data (a Cloudflare block or error page), or 403.
    Blocked {
        /// The status.
        status: u16,
    },
    /// No complete answer within the request timeout.
    Timeout,
    /// Another status.
    Http {
        /// The status.
        status: u16,
    },
    /// The connection failed, or the body was cut off.
    Network(String),
    /// The body is larger than the cap: not read.
    TooLarge {
        /// The cap.
        cap: usize,
    },
}

impl Answer {
    /// The metric label of this outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Answer::Body(b) if b.is_empty() => "empty",
            Answer::Body(_) => "ok",
            Answer::NotFound => "not_found",
            Answer::Throttled { .. } => "throttled",
            Answer::Blocked { .. } => "blocked",
            Answer::Timeout => "timeout",
            Answer::Http { .. } => "http",
            Answer::Network(_) | Answer::TooLarge { .. } => "network",
        }
    }
}

/// Whether a body is an HTML page (a block page served with status 200).
pub fn looks_like_html(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    body.get(start..start + 1) == Some(b"<")
}

/// GETs `url` within `timeout`, reading at most `max_body` bytes, and classifies the answer.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    max_body: usize,
) -> Answer {
    match tokio::time::timeout(timeout, fetch_inner(client, url, max_body)).await {
        Ok(answer) => answer,
        Err(_) => Answer::Timeout,
    }
}

async fn fetch_inner(client: &reqwest::Client, url: &str, max_body: usize) -> Answer {
    let mut response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Answer::Timeout,
        Err(e) => return Answer::Network(e.without_url().to_string()),
    };
    let status = response.status().as_u16();
    let html = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    match status {
        200 => {}
        404 => return Answer::NotFound,
        429 | 503 => {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Answer::Throttled {
                status,
                retry_after,
            };
        }
        403 => return Answer::Blocked { status },
        _ => return Answer::Http { status },
    }
    if html {
        return Answer::Blocked { status };
    }
    if response
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > max_body))
    {
        return Answer::TooLarge { cap: max_body };
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_body {
                    return Answer::TooLarge { cap: max_body };
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Answer::Timeout,
            Err(e) => return Answer::Network(e.without_url().to_string()),
        }
    }
    if looks_like_html(&body) {
        return Answer::Blocked { status };
    }
    Answer::Body(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use crate::instruments::by_datafeed_symbol;

    fn hour(rfc3339: &str) -> UnixNanos {
        UnixNanos::parse_rfc3339(rfc3339).unwrap()
    }

    #[test]
    fn the_two_interfaces_number_months_differently() {
        let btc = by_datafeed_symbol("BTCUSD").unwrap();
        let h = hour("2023-02-20T12:00:00Z");
        assert_eq!(
            Bi5Feed::new("http://x/", 1).url(btc, h),
            "http://x/datafeed/BTCUSD/2023/01/20/12h_ticks.bi5"
        );
        assert_eq!(
            JsonApi::new("http://x", 1).url(btc, h),
            "http://x/v1/ticks/BTC-USD/2023/2/20/12"
        );
        let eur = by_datafeed_symbol("EURUSD").unwrap();
        let h = hour("2019-01-04T03:00:00Z");
        assert_eq!(
            Bi5Feed::new("http://x", 1).url(eur, h),
            "http://x/datafeed/EURUSD/2019/00/04/03h_ticks.bi5"
        );
        assert_eq!(
            JsonApi::new("http://x", 1).url(eur, h),
            "http://x/v1/ticks/EUR-USD/2019/1/4/3"
        );
        let dec = hour("2024-12-31T23:00:00Z");
        assert!(
            Bi5Feed::new("http://x", 1)
                .url(eur, dec)
                .ends_with("/2024/11/31/23h_ticks.bi5")
        );
        assert!(
            JsonApi::new("http://x", 1)
                .url(eur, dec)
                .ends_with("/2024/12/31/23")
        );
    }

    #[test]
    fn html_is_recognised_whatever_the_status() {
        assert!(looks_like_html(
            b"<!DOCTYPE html><title>Attention Required!"
        ));
        assert!(looks_like_html(b"\r\n  <html>"));
        assert!(!looks_like_html(b"{\"timestamp\":1}"));
        assert!(!looks_like_html(&[0x5d, 0, 0, 0x40]));
        assert!(!looks_like_html(b""));
    }
}
