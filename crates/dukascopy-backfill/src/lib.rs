//! `dukascopy-backfill`: tickflow's Dukascopy historical backfill.
//!
//! For now this crate holds the decoders of Dukascopy's `.bi5` datafeed files; the backfill
//! service itself (download, retry, publish, coverage markers) arrives with its issue.
//!
//! # Layout
//!
//! - [`bi5`]: the container and the records. [`bi5::decompress`] opens the LZMA "alone" body
//!   with a hard output cap (an empty body is an empty hour), [`bi5::tick_records`] splits it into
//!   20-byte tick records (ms in the hour, ask, bid, ask volume, bid volume),
//!   [`bi5::candle_records`] into 24-byte candle records (seconds, open, **close, low, high**,
//!   volume).
//! - [`instruments`]: tickflow's own table of supported instruments: canonical symbol, datafeed
//!   symbol and number of decimal places (price = points / 10^scale).
//! - [`ticks`]: tick records of one hour → exact domain [`Quote`](tickflow_schema::Quote)s.
//! - [`candles`]: candle records of one day of 1-minute bars → exact [`candles::Candle`]s, and
//!   the same bars built from quotes ([`candles::bid_minute_ohlc`]).
//! - [`jetta`]: Dukascopy's JSON data API (`jetta.dukascopy.com/v1/ticks/…`, the fallback since
//!   the `.bi5` feed stopped answering in July 2026): one hour's delta-encoded columns → the
//!   same exact quotes, with its own [`jetta::JettaError`].
//!
//! Every price and size is an exact [`Decimal`](tickflow_schema::Decimal): prices are integers at
//! the instrument's scale, sizes are the float32 volumes' shortest decimal text (see
//! [`ticks::volume_units`]). Nothing here panics on hostile input: every problem is a
//! [`Bi5Error`] that says what is wrong.

pub mod bi5;
pub mod cache;
pub mod candles;
pub mod config;
mod error;
pub mod hour;
pub mod instruments;
pub mod jetta;
pub mod limiter;
pub mod metrics;
mod service;
pub mod ticks;
pub mod transport;
pub mod worker;

pub use config::Config;
pub use error::Bi5Error;
pub use service::{Backfill, BackfillHandle, StartError, transport};
