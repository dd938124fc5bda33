//! Generates the `tickflow.control.v1` server and client from `proto/`, and the file
//! descriptor set that server reflection serves.
//!
//! Needs `protoc` (Debian's `protobuf-compiler`, installed by `scripts/deps.sh`).

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = root.join("tickflow/control/v1/control.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let out = match std::env::var("OUT_DIR") {
        Ok(dir) => std::path::PathBuf::from(dir),
        Err(e) => {
            eprintln!("error: OUT_DIR is not set: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("control_descriptor.bin"))
        .compile_protos(&[&file], &[&root])
    {
        eprintln!(
            "error: could not generate the control API from {}: {e}\n\
             hint: install protoc with `bash scripts/deps.sh` (Debian package protobuf-compiler)",
            file.display()
        );
        std::process::exit(1);
    }
}
