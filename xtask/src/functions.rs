//! The function suite's dependencies (`cargo xtask ensure-functions`, and the
//! `ensure_functions` step of `cargo xtask test`): ImageMagick's libMagickWand from
//! Debian, a venv `functions/.venv` with Wand from PyPI (`functions/python/requirements.txt`)
//! and `functions/nodejs/node_modules` with sharp from npm (`functions/nodejs/package.json`;
//! sharp ships libvips as `@img/*` npm packages, nothing is downloaded from GitHub).
//! Each part is checked by loading the library and installed only when that fails.
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::workspace::Workspace;

/// The interpreter the venv is made from (the platform's default `runtimes.python`).
const BASE_PYTHON: &str = "/usr/bin/python3";

/// Debian package with libMagickWand-6.Q16.so.6, what Wand loads.
const MAGICKWAND_DEB: &str = "libmagickwand-6.q16-6";

fn quietly_ok(c: &mut Command) -> bool {
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn apt_install(packages: &[&str]) -> Result<()> {
    cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn magickwand_present() -> bool {
    cmd::output(Command::new("ldconfig").arg("-p"))
        .is_ok_and(|o| o.contains("libMagickWand-6.Q16.so"))
}

pub(crate) fn ensure(ws: &Workspace) -> Result<()> {
    let functions = ws.root.join("functions");
    if !magickwand_present() {
        apt_install(&[MAGICKWAND_DEB])?;
        if !magickwand_present() {
            bail!("{MAGICKWAND_DEB} installed but ldconfig lists no libMagickWand-6.Q16.so");
        }
    }
    ensure_venv(&functions)?;
    ensure_node_modules(&functions.join("nodejs"))?;
    Ok(())
}

fn ensure_venv(functions: &Path) -> Result<()> {
    let venv = functions.join(".venv");
    let python = venv.join("bin").join("python");
    let wand_loads = || {
        quietly_ok(
            Command::new(&python)
                .args(["-c", "import wand.image"])
                .current_dir(functions),
        )
    };
    // The venv must be built on an interpreter the action user can run (a pyenv python
    // under /root is not): the platform's default, /usr/bin/python3, when there is one.
    let base = Path::new(BASE_PYTHON);
    let base_cmd = if base.is_file() {
        BASE_PYTHON
    } else {
        "python3"
    };
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).unwrap_or_default();
    let built_on_base = !base.is_file()
        || cfg.lines().any(|l| {
            l.split_once('=')
                .is_some_and(|(k, v)| k.trim() == "home" && v.trim() == "/usr/bin")
        });
    if python.is_file() && built_on_base && wand_loads() {
        return Ok(());
    }
    if venv.exists() && !built_on_base {
        std::fs::remove_dir_all(&venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    if !python.is_file() {
        crate::test::make_venv(base_cmd.as_ref(), &venv)?;
    }
    cmd::run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(functions.join("python").join("requirements.txt")),
    )?;
    if !wand_loads() {
        bail!(
            "{}: `import wand.image` still fails after pip install",
            python.display()
        );
    }
    Ok(())
}

fn ensure_node_modules(dir: &Path) -> Result<()> {
    let sharp_loads = || {
        quietly_ok(
            Command::new("node")
                .args(["-e", "require('sharp')"])
                .current_dir(dir),
        )
    };
    if sharp_loads() {
        return Ok(());
    }
    let mut npm = Command::new("npm");
    if dir.join("package-lock.json").is_file() {
        npm.arg("ci");
    } else {
        npm.arg("install");
    }
    cmd::run(
        npm.args(["--no-audit", "--no-fund", "--omit=dev"])
            .current_dir(dir),
    )
    .context("installing the Node.js function suite's modules (npm)")?;
    if !sharp_loads() {
        bail!(
            "{}: require('sharp') still fails after npm install",
            dir.display()
        );
    }
    Ok(())
}
