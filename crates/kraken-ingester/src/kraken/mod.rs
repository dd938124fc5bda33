//! The venue: Kraken spot WebSocket v2 (`../shared/PROTOCOLS.md` §1).
//!
//! - `messages`: the wire types, borrowed from the frame text;
//! - [`parse`]: frame text → ticks and control events (pure; fuzzed by `fuzz/`);
//! - [`symbols`]: pair names ↔ canonical symbols (the `XBT` → `BTC` table).

mod messages;
pub mod parse;
pub mod symbols;
