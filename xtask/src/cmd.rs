//! Running external commands: echo them, time steps, and turn failures into errors
//! that say what was run and where.

use std::ffi::OsStr;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Environment that the outer `cargo run` (or a rustup proxy) sets and that would pin
/// a nested cargo/rustc to the wrong toolchain or compiler.
const TOOLCHAIN_ENV: &[&str] = &[
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTDOC",
    "CARGO",
];

/// A command for the stable toolchain's `cargo`: the one running xtask.
///
/// The variables `cargo run` sets for the xtask program itself (`CARGO_PKG_*`,
/// `CARGO_MANIFEST_DIR`, ...) are removed: build scripts that watch them (ring's does)
/// would otherwise see them change between a build run from xtask and one run from a
/// shell, and rebuild half the dependency tree every time.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if k.starts_with("CARGO_PKG_")
            || matches!(
                k,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            )
        {
            c.env_remove(k);
        }
    }
    c
}

/// A rustup-proxied tool (`cargo`, `rustc`) pinned to `+toolchain`, with the outer
/// toolchain's environment removed.
pub(crate) fn toolchain(tool: &str, toolchain: &str) -> Command {
    let mut c = Command::new(tool);
    c.arg(format!("+{toolchain}"));
    for var in TOOLCHAIN_ENV {
        c.env_remove(var);
    }
    c
}

fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    if let Some(dir) = c.get_current_dir() {
        s = format!("(cd {} && {s})", dir.display());
    }
    s
}

/// Echoes and runs `c` with inherited output; an error if it cannot start or fails.
pub(crate) fn run(c: &mut Command) -> Result<()> {
    let what = describe(c);
    println!("    $ {what}");
    let status = c
        .status()
        .with_context(|| format!("cannot start `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(())
}

/// Runs `c` quietly and returns its stdout (trimmed); an error, with stderr, if it fails.
pub(crate) fn output(c: &mut Command) -> Result<String> {
    let what = describe(c);
    let out = c
        .output()
        .with_context(|| format!("cannot start `{what}`"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout)
        .map(|s| s.trim().to_owned())
        .with_context(|| format!("`{what}` printed non-UTF-8 output"))
}

/// Runs one named step, printing its name, and its duration when it succeeds.
pub(crate) fn step<T>(name: impl AsRef<OsStr>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let name = name.as_ref().to_string_lossy();
    println!("==> {name}");
    let start = Instant::now();
    let v = f().with_context(|| format!("step `{name}` failed"))?;
    println!("    {name}: done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(v)
}

/// Bytes available to an unprivileged writer on the filesystem holding `path`.
pub(crate) fn disk_free(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}
