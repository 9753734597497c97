//! Generated types, client and server of the control API `pcn.v1` (see
//! `proto/pcn/v1/control.proto` for the documented contract).

pub mod codec;

/// Package `pcn.v1`.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("pcn.v1");

    /// Encoded `FileDescriptorSet` of the package, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("pcn_v1_descriptor");
}
