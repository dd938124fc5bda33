//! The venue: OANDA v20 pricing stream (`../shared/PROTOCOLS.md` §2).
//!
//! The stream body is newline-delimited JSON (not SSE): one `PRICE` or `HEARTBEAT` object per
//! line, split on `\n` by the caller after buffering across HTTP chunks.
//!
//! - [`messages`]: the wire types, borrowed from the line text;
//! - [`parse`]: one line → [`parse::Line`] (pure, never panics; fuzzed by `fuzz/`), and a price
//!   → a domain [`tickflow_schema::Quote`];
//! - `scan`: the parser's fast path for well-formed lines (serde reads the rest);
//! - [`instruments`]: OANDA instrument names (`EUR_USD`) ↔ canonical symbols (`EUR/USD`).

pub mod instruments;
pub mod messages;
pub mod parse;
mod scan;
