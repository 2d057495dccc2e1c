//! `cargo xtask demo`: the README's first command. Installs and builds what is needed
//! (kernel programs, the release binary), then runs the main job on the embedded
//! default: `faasload load config/demo-trace.yaml --embedded`, which starts the embedded
//! platform and the monitor, deploys the demo's actions, replays the trace (three
//! tenants, cold and warm starts, under a minute), prints the latency report and stores
//! every invocation in `faasload-results.db`, then cleans up. Needs root.
use anyhow::Result;

use crate::cmd::{self, step};
use crate::ebpf;
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace) -> Result<()> {
    let bin = release_faasload(ws)?;
    let trace = ws.root.join("config").join("demo-trace.yaml");
    step("faasload load config/demo-trace.yaml --embedded", || {
        cmd::run(
            std::process::Command::new(&bin)
                .arg("load")
                .arg(&trace)
                .arg("--embedded")
                .arg("--store")
                .arg("sqlite://faasload-results.db")
                .current_dir(&ws.root),
        )
    })?;
    println!(
        "\nEvery invocation is in faasload-results.db (`{} report` prints it again).",
        bin.display()
    );
    Ok(())
}

/// Builds the kernel programs and the release `faasload` binary; returns its path.
pub(crate) fn release_faasload(ws: &Workspace) -> Result<std::path::PathBuf> {
    step("eBPF toolchain (nightly rust-src, bpf-linker)", || {
        ebpf::install()
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
