//! Proof that everything but the monitor and the kernel programs builds on the stable
//! toolchain alone: `cargo check` of the workspace (tests and benches included, the
//! binary without its `monitor` feature) run with the nightly toolchain and bpf-linker
//! hidden. The stable toolchain's own `cargo` and `rustc` are called directly (no rustup
//! proxy), rustup is pointed at an empty home, and PATH holds neither rustup nor cargo's
//! bin directory (where bpf-linker lives); the step first checks that nightly and
//! bpf-linker really are out of reach, so it cannot pass by accident.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::workspace::Workspace;

/// Directories of the base system that hold no Rust toolchain.
const SYSTEM_PATH: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

pub(crate) fn check_without_nightly(ws: &Workspace) -> Result<()> {
    let sysroot = cmd::output(cmd::toolchain("rustc", "stable").args(["--print", "sysroot"]))?;
    let stable_bin = Path::new(&sysroot).join("bin");
    let empty_home = ws.target_dir.join("stable-alone").join("rustup-home");
    std::fs::create_dir_all(&empty_home)
        .with_context(|| format!("creating {}", empty_home.display()))?;
    let mut path: Vec<PathBuf> = vec![stable_bin.clone()];
    path.extend(SYSTEM_PATH.iter().map(PathBuf::from));
    for dir in &path {
        for hidden in ["bpf-linker", "rustup"] {
            if dir.join(hidden).exists() {
                bail!(
                    "{} is in {}: the check could not prove it builds without it",
                    hidden,
                    dir.display()
                );
            }
        }
    }
    let path = std::env::join_paths(&path).context("building PATH")?;
    let hidden = |c: &mut Command| {
        for var in [
            "RUSTUP_TOOLCHAIN",
            "RUSTC",
            "RUSTC_WRAPPER",
            "RUSTDOC",
            "CARGO",
            "RUSTFLAGS",
        ] {
            c.env_remove(var);
        }
        c.env("PATH", &path).env("RUSTUP_HOME", &empty_home);
    };

    let mut version = Command::new(stable_bin.join("rustc"));
    version.arg("-vV");
    hidden(&mut version);
    let vv = cmd::output(&mut version)?;
    if vv.contains("nightly") || vv.contains("-dev") {
        bail!("the stable toolchain's rustc is not stable:\n{vv}");
    }
    // The kernel programs' toolchain must be unreachable from here.
    let mut nightly = Command::new(stable_bin.join("cargo"));
    nightly.args(["+nightly", "--version"]);
    hidden(&mut nightly);
    if nightly.output().is_ok_and(|o| o.status.success()) {
        bail!("`cargo +nightly` still works with the nightly hidden");
    }
    println!("    {}", vv.lines().next().unwrap_or_default());

    let mut check = Command::new(stable_bin.join("cargo"));
    check
        .args([
            "check",
            "--workspace",
            "--exclude",
            "faasload-monitor",
            "--no-default-features",
            "--all-targets",
        ])
        .current_dir(&ws.root)
        .env("CARGO_TARGET_DIR", &ws.target_dir);
    hidden(&mut check);
    cmd::run(&mut check)
}
