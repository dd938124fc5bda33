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
//! * [`oanda::OandaSim`]: OANDA v20 pricing stream
//!   (`GET /v3/accounts/{accountID}/pricing/stream?instruments=..`) over HTTP/1.1: a chunked
//!   `application/octet-stream` body of newline-delimited JSON, with the snapshot of current prices
//!   on connect (unless `snapshot=false`), `PRICE` lines filtered by the requested instruments, and a
//!   `HEARTBEAT` line every 5 s. Prices are decimal strings written verbatim; times are RFC 3339 with
//!   nanoseconds. [`oanda::random_walk`] generates deterministic realistic prices.
//!
//!   Fault knobs: [`set_chunking`](oanda::OandaSim::set_chunking) (chunk boundaries inside lines,
//!   see [`oanda::Chunking`]), [`set_token`](oanda::OandaSim::set_token) (401),
//!   [`reject_instrument`](oanda::OandaSim::reject_instrument) (400),
//!   [`fail_next`](oanda::OandaSim::fail_next) (429 with `Retry-After`, 503, ...),
//!   [`set_stalled`](oanda::OandaSim::set_stalled), [`drop_all`](oanda::OandaSim::drop_all) (body
//!   ended, connection closed), [`set_heartbeat_interval`](oanda::OandaSim::set_heartbeat_interval),
//!   and [`send_line`](oanda::OandaSim::send_line) / [`send_lines`](oanda::OandaSim::send_lines) for
//!   raw lines (fixtures, garbage, bulk benchmark data). Observation:
//!   [`requests`](oanda::OandaSim::requests), [`connections_total`](oanda::OandaSim::connections_total),
//!   [`open_streams`](oanda::OandaSim::open_streams),
//!   [`open_instruments`](oanda::OandaSim::open_instruments). Publishing is backpressured the same
//!   way, with a bounded queue per stream ([`oanda::QUEUE_CAPACITY`] writes).
//!
//! * [`dukascopy::DukascopySim`]: Dukascopy's historical tick data over HTTP/1.1, on both of its
//!   interfaces (`shared/PROTOCOLS.md` §3): the legacy datafeed
//!   (`GET /datafeed/{SYM}/{YYYY}/{MM0}/{DD}/{HH}h_ticks.bi5`, zero-based month, an LZMA-alone body of
//!   20-byte big-endian records with ask before bid) and the jetta JSON API
//!   (`GET /v1/ticks/{CODE}/{YYYY}/{M}/{D}/{H}`, one-based month, `EUR-USD` codes, columnar
//!   delta-encoded JSON with volumes in units). Hours are published as ticks
//!   ([`publish_ticks`](dukascopy::DukascopySim::publish_ticks), served in both encodings) or as exact
//!   bytes ([`publish_bi5`](dukascopy::DukascopySim::publish_bi5),
//!   [`publish_json`](dukascopy::DukascopySim::publish_json), for real fixtures); an unpublished hour
//!   is a 404. [`dukascopy::encode_bi5`] and [`dukascopy::encode_json`] are the encoders, and
//!   [`dukascopy::generate_hour`] / [`dukascopy::generate_hours`] generate deterministic tick hours
//!   with bursts, quiet stretches and Dukascopy-like volumes (closed hours left empty).
//!
//!   Fault knobs: [`fail_next`](dukascopy::DukascopySim::fail_next) (per-hour queue) and
//!   [`fail_all`](dukascopy::DukascopySim::fail_all) with a [`dukascopy::Fault`] (any status,
//!   429/503 with `Retry-After`, a request that is never answered, a spurious empty 200, a Cloudflare
//!   HTML block page, garbage, a truncated body),
//!   [`set_max_concurrent`](dukascopy::DukascopySim::set_max_concurrent) (a throttling CDN answering
//!   503 beyond `n` requests in flight) and [`set_latency`](dukascopy::DukascopySim::set_latency).
//!   Observation: [`requests`](dukascopy::DukascopySim::requests) (transport, symbol, hour, status),
//!   [`requests_for`](dukascopy::DukascopySim::requests_for),
//!   [`max_in_flight`](dukascopy::DukascopySim::max_in_flight). The simulator is a cheap, clonable
//!   handle; the server stops when the last clone is dropped.
//!
//! * [`market`]: a live market over the three: deterministic random walks with spreads and bursts
//!   for every Kraken symbol and OANDA instrument a client asks for (OANDA quiet while the forex
//!   week is closed), generated Dukascopy history published hour by hour, and a [`market::Sent`]
//!   record of everything sent for tests to compare the database with.
//!
//! The `venue-sim` binary runs all three on fixed ports with that market: the venues of `make demo`,
//! of the docker-compose demo and of the Kubernetes dev overlay (`venue-sim --help`).

pub mod dukascopy;
pub mod kraken;
pub mod market;
pub mod oanda;

mod util;
