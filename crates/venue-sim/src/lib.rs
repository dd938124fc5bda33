//! Fake venue servers for tickflow's tests and benchmarks.
//!
//! Each simulator is a real network server on `127.0.0.1` with an ephemeral port, driven in-process by
//! the test: the test publishes market data, the simulator encodes it exactly as the venue would, and
//! fault knobs make the venue misbehave on demand.
//!
//! * [`kraken::KrakenSim`]: Kraken spot WebSocket v2 (`wss://ws.kraken.com/v2`), speaking the wire
//!   format described in `shared/PROTOCOLS.md` §1: the `status` frame on connect, per-symbol
//!   subscribe/unsubscribe acks with `req_id` echoed, `trade` snapshots (last 50, opt-in) and updates,
//!   `ticker` snapshots (default on) and updates, application `ping`/`pong`, `heartbeat` once a
//!   subscription exists, and Kraken's error shapes (`Currency pair not supported <S>`,
//!   `Subscription Not Found` with `method:"subscribe"`, `Channel not supported`,
//!   `EGeneral:Invalid arguments`). Prices and quantities are decimal lexemes written into the JSON as
//!   bare numbers character for character; nothing goes through `f64`.
//!
//!   Fault knobs: [`reject_symbol`](kraken::KrakenSim::reject_symbol) (subscribe error),
//!   [`set_acks`](kraken::KrakenSim::set_acks) (requests swallowed),
//!   [`drop_all`](kraken::KrakenSim::drop_all) (abrupt TCP drop, no close frame),
//!   [`set_stalled`](kraken::KrakenSim::set_stalled) (sockets open, nothing written),
//!   [`set_data_paused`](kraken::KrakenSim::set_data_paused) (market data discarded, heartbeats and
//!   acks still flow), [`set_frame_delay`](kraken::KrakenSim::set_frame_delay) (slow sender),
//!   [`set_heartbeat_interval`](kraken::KrakenSim::set_heartbeat_interval), and
//!   [`send_raw`](kraken::KrakenSim::send_raw) / [`send_raw_binary`](kraken::KrakenSim::send_raw_binary)
//!   for garbage frames. Observation: [`requests`](kraken::KrakenSim::requests),
//!   [`subscribed`](kraken::KrakenSim::subscribed), [`connections_total`](kraken::KrakenSim::connections_total),
//!   [`open_connections`](kraken::KrakenSim::open_connections).
//!
//!   Publishing is backpressured: each connection has a bounded queue
//!   ([`kraken::QUEUE_CAPACITY`] frames) and [`trades`](kraken::KrakenSim::trades) /
//!   [`ticker`](kraken::KrakenSim::ticker) await room, so a benchmark measures the client and the
//!   simulator never drops a frame on its own (only the stall and pause knobs discard).
//!
//! OANDA v20 and Dukascopy simulators will join this crate later.

pub mod kraken;
