//! Prerequisite of the HTML report tests (`tests/results/html.rs`): Debian's Chromium,
//! which they drive headless over the DevTools protocol; its path is exported to the
//! tests as `FAASLOAD_TEST_CHROMIUM`. Wired into `cargo xtask test` by one line in
//! `test.rs` STEPS. Idempotent: a Chromium that already renders a page is kept; only the
//! Debian package is used (no browser download of its own).
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace::Workspace;

/// Where Debian's `chromium` package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Flags for a headless Chromium run as root on a machine without a network beyond
/// the package registries (without the background-networking ones it keeps trying to
/// reach Google's hosts).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
];

/// Checks that `exe` starts headless and renders a small page (its DOM dumped).
fn renders(exe: &Path) -> Result<()> {
    if !exe.is_file() {
        bail!("{} is missing", exe.display());
    }
    let profile = std::env::temp_dir().join(format!("faasload-chromium-{}", std::process::id()));
    let out = Command::new(exe)
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", "data:text/html,<p id=probe>faasload</p>"])
        .output()
        .with_context(|| format!("cannot start {}", exe.display()));
    let _ = std::fs::remove_dir_all(&profile);
    let out = out?;
    let dom = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !dom.contains("<p id=\"probe\">faasload</p>") {
        bail!(
            "{} did not render a page ({}): {}",
            exe.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Debian's `chromium`, installed if it is missing or does not render; exports
/// `FAASLOAD_TEST_CHROMIUM`.
pub(crate) fn ensure(_: &Workspace) -> Result<()> {
    let exe = Path::new(CHROMIUM);
    if let Err(e) = renders(exe) {
        println!("    {e:#}: installing Debian's chromium");
        crate::test::apt_install(&["chromium"])?;
        renders(exe).context("after `apt-get install chromium`")?;
    }
    let version = crate::cmd::output(Command::new(exe).arg("--version"))?;
    println!("    {version}");
    crate::test::export("FAASLOAD_TEST_CHROMIUM", CHROMIUM);
    Ok(())
}
