//! `control-plane`: the symbols users add, the Pulsar structure they need, backfill jobs, and
//! which ingester replica serves which symbol.
//!
//! - [`proto`]: the generated `tickflow.control.v1` server and client.
//! - [`validate`]: what clients send, refused with `INVALID_ARGUMENT` and a reason.
//! - [`assign`]: rendezvous hashing of symbols over live replicas.
//! - [`backfill`]: backfill jobs and tasks, `FillGaps`, progress from the sink's coverage.
//! - [`follow`]: follow mode, which keeps every dukascopy symbol's history caught up.

pub mod assign;
pub mod backfill;
pub mod config;
pub mod follow;
pub mod server;
pub mod service;
pub mod store;
pub mod tail;
pub mod validate;

pub use tickflow_control::proto;
