//! Compiles `pcn/v1/control.proto` with protox (pure Rust, no `protoc`) and generates the tonic
//! client and server; the encoded descriptor set is kept for gRPC server reflection.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=pcn/v1/control.proto");
    let descriptors = protox::compile(["pcn/v1/control.proto"], ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("pcn_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // A request that does not decode is INVALID_ARGUMENT, not tonic-prost's INTERNAL.
        .codec_path("crate::codec::ArgumentCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
