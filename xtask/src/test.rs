//! `cargo xtask test`: the project's single test command. Installs and starts what the
//! tests need, builds the workspace, then runs `cargo test --workspace` with
//! `FAASLOAD_BIN` pointing at the freshly built binary.
//!
//! Each prerequisite is one `ensure_*` function listed in [`STEPS`]; add a new one
//! (Docker, npm, pip, ...) by writing the function and adding a line there.
//! No tracefs or bpffs mount is needed: the kernel programs attach as `tp_btf`, which
//! needs only the kernel BTF, and nothing is pinned.

use std::path::Path;

use anyhow::{Result, bail};

use crate::cmd::{self, step};
use crate::ebpf;
use crate::workspace::Workspace;

/// A prerequisite of the test suite, run in order before the tests.
type Ensure = fn(&Workspace) -> Result<()>;

const STEPS: &[(&str, Ensure)] = &[
    ("running as root", ensure_root),
    ("kernel BTF", ensure_kernel_btf),
    ("eBPF kernel programs", ensure_ebpf),
    ("workspace build", ensure_workspace_built),
    (
        "bench platform --quick (harness smoke test)",
        ensure_bench_smoke,
    ),
];

pub fn run(ws: &Workspace, extra: &[String]) -> Result<()> {
    for (name, ensure) in STEPS {
        step(name, || ensure(ws))?;
    }
    step("cargo test --workspace", || {
        cmd::run(
            cmd::cargo()
                .args(["test", "--workspace"])
                .args(extra)
                .current_dir(&ws.root)
                .env("FAASLOAD_BIN", ws.faasload_bin()),
        )
    })
}

fn ensure_root(_: &Workspace) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        bail!(
            "the tests need root (uid 0, this is uid {euid}): they create cgroups and load \
             eBPF programs; run `sudo -E cargo xtask test`"
        );
    }
    Ok(())
}

fn ensure_kernel_btf(_: &Workspace) -> Result<()> {
    let btf = Path::new("/sys/kernel/btf/vmlinux");
    if !btf.exists() {
        bail!(
            "{} is missing: the monitor's tp_btf programs and kernel offsets need a kernel \
             built with CONFIG_DEBUG_INFO_BTF=y",
            btf.display()
        );
    }
    Ok(())
}

fn ensure_ebpf(ws: &Workspace) -> Result<()> {
    ebpf::build(ws, false).map(|_| ())
}

/// Runs one benchmark suite in quick mode so the harness cannot rot (its numbers are
/// not asserted and not written to BENCHMARKS.md).
fn ensure_bench_smoke(ws: &Workspace) -> Result<()> {
    crate::bench::run(
        ws,
        &["platform".to_owned()],
        &crate::bench::Options { quick: true },
    )
}

fn ensure_workspace_built(ws: &Workspace) -> Result<()> {
    cmd::run(
        cmd::cargo()
            .args(["build", "--workspace"])
            .current_dir(&ws.root),
    )?;
    let bin = ws.faasload_bin();
    if !bin.is_file() {
        bail!("`cargo build` succeeded but {} is missing", bin.display());
    }
    Ok(())
}
