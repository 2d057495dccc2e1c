//! Prerequisite of the `/metrics` format test (`tests/monitor/metrics.rs`): the Python
//! `prometheus_client` from PyPI (its OpenMetrics and Prometheus text parsers) in a
//! virtualenv of its own, whose interpreter is exported to the tests as
//! `FAASLOAD_TEST_PROMETHEUS_PYTHON`. Wired into `cargo xtask test` by one line in
//! `test.rs` STEPS. Idempotent: an existing virtualenv that imports both parsers is kept.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::cmd;
use crate::workspace::Workspace;

/// Where the virtualenv lives.
pub(crate) const VENV: &str = "/var/lib/faasload-test/prometheus-client-venv";
/// What the test imports.
const PACKAGES: &[&str] = &["prometheus-client>=0.20"];

/// The interpreter that made the virtualenv: the system's Python 3.
fn base_python() -> PathBuf {
    let usr = Path::new("/usr/bin/python3");
    if usr.exists() {
        usr.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

/// True if `python` imports both of prometheus_client's parsers.
fn ready(python: &Path) -> bool {
    Command::new(python)
        .args([
            "-c",
            "import prometheus_client.openmetrics.parser, prometheus_client.parser",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// prometheus_client in [`VENV`]; exports `FAASLOAD_TEST_PROMETHEUS_PYTHON`.
pub(crate) fn ensure(_: &Workspace) -> Result<()> {
    let venv = Path::new(VENV);
    let python = venv.join("bin/python");
    if !ready(&python) {
        std::fs::create_dir_all(venv.parent().unwrap_or(Path::new("/")))?;
        crate::test::make_venv(base_python().as_os_str(), venv)?;
        cmd::run(
            Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "--disable-pip-version-check"])
                .args(PACKAGES),
        )?;
        if !ready(&python) {
            bail!(
                "{} cannot import prometheus_client's parsers after `pip install {}`",
                python.display(),
                PACKAGES.join(" ")
            );
        }
    }
    crate::test::export(
        "FAASLOAD_TEST_PROMETHEUS_PYTHON",
        &python.display().to_string(),
    );
    Ok(())
}
