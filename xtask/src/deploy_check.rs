//! Prerequisites of the deployment-file checks (`tests/deploy_files.rs`): `systemd-analyze`
//! (Debian `systemd`) for the units, and `kubernetes-validate` (PyPI; ships the Kubernetes
//! JSON schemas, so validation is offline) in its own virtualenv for the manifests.
//! Wired into `cargo xtask test` by two lines in `test.rs` STEPS:
//! `("systemd-analyze", deploy_check::ensure_systemd_analyze)` and
//! `("kubernetes-validate (PyPI)", deploy_check::ensure_kubernetes_validate)`.
use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::cmd;
use crate::workspace::Workspace;

/// Where `kubernetes-validate` is installed (the test's default path).
pub(crate) const KV_VENV: &str = "/var/lib/faasload-test/kubernetes-validate";
/// Pinned version (its schemas cover Kubernetes up to 1.37).
const KV_VERSION: &str = "1.37.0";

fn apt_install(packages: &[&str]) -> Result<()> {
    cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// `systemd-analyze` for `systemd-analyze verify`.
pub(crate) fn ensure_systemd_analyze(_: &Workspace) -> Result<()> {
    if !have("systemd-analyze") {
        apt_install(&["systemd"])?;
    }
    Ok(())
}

/// `kubernetes-validate` in a virtualenv at [`KV_VENV`], at the pinned version.
pub(crate) fn ensure_kubernetes_validate(_: &Workspace) -> Result<()> {
    let venv = Path::new(KV_VENV);
    let bin = venv.join("bin/kubernetes-validate");
    let ok = Command::new(&bin).arg("--version").output().is_ok_and(|o| {
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains(KV_VERSION)
    });
    if ok {
        return Ok(());
    }
    crate::test::make_venv("python3".as_ref(), venv)?;
    cmd::run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .arg(format!("kubernetes-validate=={KV_VERSION}")),
    )
}
