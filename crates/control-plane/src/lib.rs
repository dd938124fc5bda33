//! `control-plane`: the symbols users add, the Pulsar structure they need, backfill jobs, and
//! which ingester replica serves which symbol.
//!
//! - [`proto`]: the generated `tickflow.control.v1` server and client.
//! - [`validate`]: what clients send, refused with `INVALID_ARGUMENT` and a reason.
//! - [`assign`]: rendezvous hashing of symbols over live replicas.

pub mod assign;
pub mod server;
pub mod service;
pub mod store;
pub mod validate;

/// The generated gRPC types of package `tickflow.control.v1`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations
)]
pub mod proto {
    tonic::include_proto!("tickflow.control.v1");

    /// The encoded file descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("control_descriptor");
}
