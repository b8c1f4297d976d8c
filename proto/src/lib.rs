//! Generated gRPC types and services of Tollgate's `tollgate.v1` API.
//!
//! This crate holds only generated code, so that the daemon and the console share one
//! definition of the wire format and never reach into each other's types.

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("tollgate.v1");
}

/// Encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tollgate_descriptor");
