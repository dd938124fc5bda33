//! Generates the `tickflow.v1` Rust types from `proto/` with prost.
//!
//! Needs `protoc` (Debian's `protobuf-compiler`, installed by `scripts/deps.sh`), or `PROTOC`
//! pointing at one.

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = root.join("tickflow/v1/ticks.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    if let Err(e) = prost_build::Config::new().compile_protos(&[&file], &[&root]) {
        // A build script reports failure by exiting non-zero; the message says what to install.
        eprintln!(
            "error: could not generate the tick schema from {}: {e}\n\
             hint: install protoc with `bash scripts/deps.sh` (Debian package protobuf-compiler) \
             or set PROTOC to a protoc binary",
            file.display()
        );
        std::process::exit(1);
    }
}
