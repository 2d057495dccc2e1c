//! `cargo xtask build-ebpf`: installs the kernel-program toolchain if missing (nightly
//! rust-src; bpf-linker built against the nightly's own libLLVM, rebuilt when that
//! changes), then builds the monitor crate, whose build script builds `faasload-ebpf`
//! (into `<target>/ebpf`) and embeds it. Commands that build the binary themselves
//! (`demo`, `test`, `bench`) only [`install`] the pieces.
//!
//! Recipe: `reference/ebpf-build.md`. bpf-linker needs no llvm-config and no headers,
//! only a `libLLVM.so` under `$LLVM_PREFIX/lib`; we point it at the nightly's own
//! library through symlinks in [`LLVM_PREFIX`], whose path ends up in its RUNPATH.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd::{self, step};
use crate::workspace::Workspace;

/// The nightly toolchain the kernel programs are built with.
const NIGHTLY: &str = "nightly";
/// bpf-linker release known to work with aya-ebpf 0.2.1 and the nightly's LLVM.
const BPF_LINKER_VERSION: &str = "0.13.0";
/// Persistent prefix holding `lib/libLLVM.so` links to the nightly's libLLVM.
const LLVM_PREFIX: &str = "/opt/llvm-rust-nightly";
/// Records which nightly (its `rustc -vV`) the installed bpf-linker was built against.
const STAMP: &str = "/opt/llvm-rust-nightly/bpf-linker.stamp";

/// Installs what the monitor's build script needs (nightly rust-src, bpf-linker in
/// cargo's bin directory, where the build script looks).
pub(crate) fn install() -> Result<()> {
    step("nightly toolchain with rust-src", ensure_rust_src)?;
    step(
        format!("bpf-linker {BPF_LINKER_VERSION}"),
        ensure_bpf_linker,
    )?;
    Ok(())
}

/// `cargo xtask build-ebpf`: installs the pieces, then builds the monitor crate (its
/// build script builds the kernel programs and fails with the compiler's output).
pub(crate) fn build(ws: &Workspace) -> Result<()> {
    install()?;
    step("kernel programs (cargo build -p faasload-monitor)", || {
        cmd::run(
            cmd::cargo()
                .args(["build", "-p", "faasload-monitor"])
                .current_dir(&ws.root),
        )
    })
}

fn ensure_rust_src() -> Result<()> {
    let installed = cmd::output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        NIGHTLY,
    ]));
    match installed {
        Ok(list) if list.lines().any(|l| l.trim() == "rust-src") => {
            println!("    rust-src already installed for {NIGHTLY}");
            Ok(())
        }
        Ok(_) => cmd::run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            NIGHTLY,
        ])),
        // The toolchain itself is missing.
        Err(e) => {
            println!("    {NIGHTLY} toolchain not usable ({e:#}); installing it");
            cmd::run(Command::new("rustup").args([
                "toolchain",
                "install",
                NIGHTLY,
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ]))
        }
    }
}

/// Where `cargo install` puts binaries (`$CARGO_HOME/bin`, default `~/.cargo/bin`).
fn cargo_bin_dir() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Ok(PathBuf::from(home).join("bin"));
    }
    let home = std::env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cargo").join("bin"))
}

/// The nightly's LLVM: major version, and the libLLVM shared object in its sysroot.
struct NightlyLlvm {
    rustc_vv: String,
    major: String,
    lib: PathBuf,
}

fn nightly_llvm() -> Result<NightlyLlvm> {
    let rustc_vv = cmd::output(cmd::toolchain("rustc", NIGHTLY).arg("-vV"))?;
    let major = rustc_vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        .with_context(|| {
            format!("no `LLVM version: N.x` line in `rustc +{NIGHTLY} -vV`:\n{rustc_vv}")
        })?
        .to_owned();
    let sysroot = cmd::output(cmd::toolchain("rustc", NIGHTLY).args(["--print", "sysroot"]))?;
    let lib_dir = Path::new(&sysroot).join("lib");
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&lib_dir)
        .with_context(|| format!("cannot list {}", lib_dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("libLLVM.so."))
        .map(|e| e.path())
        .collect();
    libs.sort();
    let lib = libs.into_iter().next().with_context(|| {
        format!(
            "no libLLVM.so.* in {}: this nightly does not ship LLVM as a shared library",
            lib_dir.display()
        )
    })?;
    Ok(NightlyLlvm {
        rustc_vv,
        major,
        lib,
    })
}

/// True if `bpf-linker --version` runs (its libLLVM resolves) and is the wanted version.
fn linker_works(linker: &Path) -> bool {
    cmd::output(Command::new(linker).arg("--version"))
        .map(|v| v.split_whitespace().last() == Some(BPF_LINKER_VERSION))
        .unwrap_or(false)
}

/// Makes `$LLVM_PREFIX/lib` hold `libLLVM.so` (for linking) and the library's own
/// SONAME-named file (for the runtime loader), both pointing into the nightly sysroot;
/// removes links left by older nightlies.
fn link_llvm(lib: &Path) -> Result<()> {
    let dir = Path::new(LLVM_PREFIX).join("lib");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let soname = lib.file_name().context("libLLVM path has no file name")?;
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("libLLVM.so") {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    for name in [std::ffi::OsStr::new("libLLVM.so"), soname] {
        let link = dir.join(name);
        std::os::unix::fs::symlink(lib, &link)
            .with_context(|| format!("cannot link {} -> {}", link.display(), lib.display()))?;
        println!("    {} -> {}", link.display(), lib.display());
    }
    Ok(())
}

/// Installs bpf-linker unless the stamp says it was built against this very nightly and
/// it still runs.
fn ensure_bpf_linker() -> Result<()> {
    let bin_dir = cargo_bin_dir()?;
    let linker = bin_dir.join("bpf-linker");
    let llvm = nightly_llvm()?;
    let want = format!(
        "bpf-linker {BPF_LINKER_VERSION} --features llvm-{}\nLLVM_PREFIX={LLVM_PREFIX}\n{}\n",
        llvm.major, llvm.rustc_vv
    );
    let have = std::fs::read_to_string(STAMP).unwrap_or_default();
    if have == want && linker_works(&linker) {
        println!(
            "    {} is up to date (built against LLVM {} of this nightly)",
            linker.display(),
            llvm.major
        );
        return Ok(());
    }
    println!(
        "    {}: building bpf-linker against {}",
        if have.is_empty() {
            "no stamp"
        } else if have != want {
            "the nightly changed"
        } else {
            "installed bpf-linker does not run"
        },
        llvm.lib.display()
    );
    // A stale stamp must not survive a failed rebuild.
    if Path::new(STAMP).exists() {
        std::fs::remove_file(STAMP).with_context(|| format!("cannot remove {STAMP}"))?;
    }
    link_llvm(&llvm.lib)?;
    cmd::run(
        cmd::toolchain("cargo", NIGHTLY)
            .args([
                "install",
                &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                "--locked",
                "--force",
                "--no-default-features",
                "--features",
                &format!("llvm-{}", llvm.major),
            ])
            .env("LLVM_PREFIX", LLVM_PREFIX),
    )?;
    if !linker_works(&linker) {
        bail!(
            "{} was installed but `{} --version` does not report {BPF_LINKER_VERSION}",
            linker.display(),
            linker.display()
        );
    }
    std::fs::write(STAMP, want).with_context(|| format!("cannot write {STAMP}"))?;
    Ok(())
}
