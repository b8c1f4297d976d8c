//! Compiles the .proto files with protox so that no system `protoc` is needed.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["tollgate/v1/tollgate.proto"], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // Kept for gRPC server reflection.
    std::fs::write(out.join("tollgate_descriptor.bin"), fds.encode_to_vec())?;
    // Rows already encoded travel as shared slices of one buffer, not one Vec each.
    tonic_prost_build::configure()
        .bytes(".tollgate.v1.ExecutionRowsPage.executions")
        .compile_fds(fds)?;
    Ok(())
}
