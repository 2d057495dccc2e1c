//! Builds the kernel programs (`faasload-ebpf`, a workspace of its own on the nightly
//! toolchain for the `bpfel-unknown-none` target) and hands their object to the monitor,
//! which embeds it (`FAASLOAD_EBPF_OBJ`).
//!
//! The nested build gets a target directory of its own (`<target>/ebpf`): sharing the
//! outer build's would make the two cargo processes wait on each other's lock. It needs
//! the nightly toolchain with `rust-src` and `bpf-linker`; `cargo xtask build-ebpf`
//! installs both. Nothing else of the workspace needs them: the `faasload` binary without
//! its `monitor` feature builds on stable alone.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The toolchain the kernel programs are built with (`faasload-ebpf/rust-toolchain.toml`).
const NIGHTLY: &str = "nightly";

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest
        .ancestors()
        .nth(2)
        .expect("crates/monitor/ is inside the workspace")
        .to_path_buf();
    let ebpf_dir = root.join("faasload-ebpf");
    for watched in [
        ebpf_dir.join("src"),
        ebpf_dir.join("Cargo.toml"),
        ebpf_dir.join("Cargo.lock"),
        ebpf_dir.join("rust-toolchain.toml"),
        ebpf_dir.join(".cargo/config.toml"),
        root.join("faasload-common/src"),
        root.join("faasload-common/Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    println!("cargo:rerun-if-env-changed=PATH");

    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
    .join("ebpf");

    let path = search_path();
    let Some(linker) = find_in(&path, "bpf-linker") else {
        fail("bpf-linker is not on PATH nor in cargo's bin directory", None);
    };

    // A clean environment: the outer build's variables (RUSTC, RUSTFLAGS, CARGO_CFG_*,
    // TARGET, ...) would pin the nested cargo to the wrong compiler or target.
    let mut cargo = Command::new("rustup");
    cargo
        .env_clear()
        .args(["run", NIGHTLY, "cargo", "build", "--release"])
        .current_dir(&ebpf_dir)
        .env("PATH", std::env::join_paths(&path).expect("PATH entries have no ':'"))
        .env("CARGO_TARGET_DIR", &target_dir);
    for keep in ["HOME", "RUSTUP_HOME", "CARGO_HOME", "CARGO_MAKEFLAGS", "TMPDIR"] {
        if let Some(v) = std::env::var_os(keep) {
            cargo.env(keep, v);
        }
    }
    let out = match cargo.output() {
        Ok(out) => out,
        Err(e) => fail(&format!("cannot run `rustup run {NIGHTLY} cargo`: {e}"), None),
    };
    if !out.status.success() {
        fail(
            &format!(
                "building the kernel programs failed ({}; bpf-linker: {})",
                out.status,
                linker.display()
            ),
            Some(&String::from_utf8_lossy(&out.stderr)),
        );
    }
    let object = target_dir.join("bpfel-unknown-none/release/faasload-ebpf");
    if !object.is_file() {
        fail(
            &format!("the kernel build succeeded but {} is missing", object.display()),
            Some(&String::from_utf8_lossy(&out.stderr)),
        );
    }
    println!("cargo:rustc-env=FAASLOAD_EBPF_OBJ={}", object.display());
}

fn env(name: &str) -> OsString {
    std::env::var_os(name).unwrap_or_else(|| panic!("{name} is set by cargo for build scripts"))
}

/// PATH, then cargo's bin directory (where `cargo install bpf-linker` puts it).
fn search_path() -> Vec<PathBuf> {
    let mut path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(bin) = cargo_home.map(|h| h.join("bin"))
        && !path.contains(&bin)
    {
        path.push(bin);
    }
    path
}

fn find_in(path: &[PathBuf], name: &str) -> Option<PathBuf> {
    path.iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn fail(why: &str, log: Option<&str>) -> ! {
    if let Some(log) = log {
        eprintln!("{log}");
    }
    eprintln!(
        "error: {why}.\n\
         The monitor embeds faasload's kernel programs, built with the nightly toolchain \
         (rust-src) and bpf-linker. Install both and build with:\n\n    \
         cargo xtask build-ebpf\n\n\
         (`cargo xtask demo` and `cargo xtask test` do it for you.) Everything but the \
         monitor builds on stable without them: `cargo build -p faasload \
         --no-default-features`."
    );
    std::process::exit(1);
}
