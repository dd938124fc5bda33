//! tickflow's control API, package `tickflow.control.v1` (`proto/tickflow/control/v1/`):
//!
//! - [`proto`]: the generated server and client (tonic), and the descriptor set that server
//!   reflection serves;
//! - [`watch`]: the loop an ingester runs to follow its assignment from the control plane.

pub mod status;
pub mod watch;

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
