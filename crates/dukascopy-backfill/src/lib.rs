//! `dukascopy-backfill`: tickflow's Dukascopy historical backfill.
//!
//! The service ([`Backfill`]) takes backfill tasks from `control/backfill-jobs` (a Shared
//! subscription: replicas split the work), downloads every hour from Dukascopy's JSON API or
//! its legacy `.bi5` datafeed, and publishes the hour's exact quotes and then a coverage marker
//! (complete, closed or missing) to `historical/dukascopy.<slug>.quote`. A task is acknowledged
//! once Pulsar has confirmed all of it. See the crate README for the rules.
//!
//! # Layout
//!
//! The service:
//!
//! - [`worker`]: the job queue, publishing and acknowledgement; [`hour`]: one hour downloaded
//!   until it is known (retries, throttling, empty answers against the market calendar);
//!   [`transport`]: the two interfaces behind one trait and the HTTP fetch; [`limiter`]: the
//!   adaptive concurrency limit; [`cache`]: finished hours on disk; [`config`], [`metrics`].
//!
//! The decoders:
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
