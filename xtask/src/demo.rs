//! `cargo xtask demo`: the README's first command. Installs and builds what is needed
//! (kernel programs, the release binary), then runs `faasload monitor-check`: the real
//! monitor daemon against a sample workload, printing per-activation CPU and memory next
//! to the cgroups' own counters. Needs root (cgroups, eBPF).
use anyhow::Result;

use crate::cmd::{self, step};
use crate::ebpf;
use crate::workspace::Workspace;

pub fn run(ws: &Workspace) -> Result<()> {
    let bin = release_faasload(ws)?;
    step("faasload monitor-check", || {
        cmd::run(std::process::Command::new(&bin).arg("monitor-check"))
    })
}

/// Builds the kernel programs and the release `faasload` binary; returns its path.
pub fn release_faasload(ws: &Workspace) -> Result<std::path::PathBuf> {
    step("eBPF kernel programs", || {
        ebpf::build(ws, false).map(|_| ())
    })?;
    step("cargo build --release -p faasload", || {
        cmd::run(
            cmd::cargo()
                .args(["build", "--release", "-p", "faasload"])
                .current_dir(&ws.root),
        )
    })?;
    Ok(ws.target_dir.join("release").join("faasload"))
}
