//! Locates the kernel programs' object for embedding (`FAASLOAD_EBPF_OBJ`) and refuses to
//! build with a missing or stale one: the object is built by `cargo xtask build-ebpf`
//! (nightly toolchain, bpf-linker), which a plain `cargo build` cannot do itself.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("faasload/ is inside the workspace")
        .to_path_buf();
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    let object = target_dir.join("bpfel-unknown-none/release/faasload-ebpf");
    let sources = [
        root.join("faasload-ebpf/src"),
        root.join("faasload-ebpf/Cargo.toml"),
        root.join("faasload-common/src"),
        root.join("faasload-common/Cargo.toml"),
    ];

    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    println!("cargo:rerun-if-changed={}", object.display());
    for s in &sources {
        println!("cargo:rerun-if-changed={}", s.display());
    }

    let built = match std::fs::metadata(&object).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(_) => fail(&format!("the eBPF object {} is missing", object.display())),
    };
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for s in &sources {
        newest_file(s, &mut newest);
    }
    if let Some((t, path)) = newest
        && t > built
    {
        fail(&format!(
            "the eBPF object {} is older than {}",
            object.display(),
            path.display()
        ));
    }
    println!("cargo:rustc-env=FAASLOAD_EBPF_OBJ={}", object.display());
}

/// Keeps in `newest` the most recently modified file under `path` (recursively).
fn newest_file(path: &Path, newest: &mut Option<(SystemTime, PathBuf)>) {
    let Ok(meta) = std::fs::metadata(path) else {
        fail(&format!("cannot read {}", path.display()));
    };
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            fail(&format!("cannot list {}", path.display()));
        };
        for entry in entries.flatten() {
            newest_file(&entry.path(), newest);
        }
    } else if let Ok(t) = meta.modified()
        && newest.as_ref().is_none_or(|(n, _)| t > *n)
    {
        *newest = Some((t, path.to_path_buf()));
    }
}

fn fail(why: &str) -> ! {
    eprintln!(
        "error: {why}.\n\
         The faasload binary embeds its kernel programs; build them first with:\n\n    \
         cargo xtask build-ebpf\n\n\
         (`cargo xtask test` does it for you.)"
    );
    std::process::exit(1);
}
