//! `cargo xtask test`: the project's single test command. Installs and starts what the
//! tests need, builds the workspace, then runs `cargo test --workspace` with
//! `FAASLOAD_BIN` pointing at the freshly built binary.
//!
//! Each prerequisite is one `ensure_*` function listed in [`STEPS`]; add a new one
//! (Docker, npm, pip, ...) by writing the function and adding a line there.
//! No tracefs or bpffs mount is needed: the kernel programs attach as `tp_btf`, which
//! needs only the kernel BTF, and nothing is pinned.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cmd::{self, step};
use crate::ebpf;
use crate::workspace::Workspace;

/// A prerequisite of the test suite, run in order before the tests.
type Ensure = fn(&Workspace) -> Result<()>;

const STEPS: &[(&str, Ensure)] = &[
    ("running as root", ensure_root),
    ("kernel BTF", ensure_kernel_btf),
    (
        "stable alone: every crate but the monitor checks without nightly or bpf-linker",
        crate::stable::check_without_nightly,
    ),
    (
        "eBPF toolchain (nightly rust-src, bpf-linker)",
        ensure_ebpf_toolchain,
    ),
    ("workspace build", ensure_workspace_built),
    (
        "cargo clippy --workspace --all-targets -- -D warnings",
        clippy_clean,
    ),
    ("PostgreSQL test server", ensure_postgres),
    ("MariaDB test server", ensure_mariadb),
    (
        "systemd-analyze",
        crate::deploy_check::ensure_systemd_analyze,
    ),
    (
        "kubernetes-validate (PyPI)",
        crate::deploy_check::ensure_kubernetes_validate,
    ),
    (
        "function suite deps (ensure_functions)",
        crate::functions::ensure,
    ),
    ("private dockerd and runtime images", crate::docker::ensure),
    ("pyarrow and pandas (PyPI)", crate::pyarrow::ensure),
    ("prometheus_client (PyPI)", crate::promclient::ensure),
    (
        "Chromium for the HTML report tests (Debian)",
        crate::browser::ensure,
    ),
    (
        "bench platform monitor-query --quick (harness smoke test)",
        ensure_bench_smoke,
    ),
];

/// Free disk below which the run warns at its start: a fresh run needs about 2 GiB for
/// the debug build, 1.5 GiB for the runtime images (vfs copies each layer per
/// container) and 1 GiB for packages, virtualenvs and databases.
const DISK_WARN: u64 = 6 << 30;

/// Prints the free space where the build and the test state grow (a full disk shows up
/// as odd failures of whatever writes next; the log then says why).
fn report_disk(ws: &Workspace) -> Option<u64> {
    let free = cmd::disk_free(&ws.target_dir)?;
    println!(
        "    disk: {:.1} GiB free under {}",
        free as f64 / f64::from(1u32 << 30),
        ws.target_dir.display()
    );
    Some(free)
}

pub(crate) fn run(ws: &Workspace, extra: &[String]) -> Result<()> {
    if report_disk(ws).is_some_and(|f| f < DISK_WARN) {
        println!(
            "    warning: less than {} GiB free; a fresh run may fill the disk",
            DISK_WARN >> 30
        );
    }
    for (name, ensure) in STEPS {
        let r = step(name, || ensure(ws));
        report_disk(ws);
        if let Err(e) = r {
            // A step after the private dockerd's failed: stop it anyway.
            let _ = step("stop the private dockerd", crate::docker::stop);
            return Err(e);
        }
    }
    let tests = step("cargo test --workspace", || {
        cmd::run(
            cmd::cargo()
                .args(["test", "--workspace"])
                .args(extra)
                .current_dir(&ws.root)
                .env("FAASLOAD_BIN", ws.faasload_bin()),
        )
    });
    report_disk(ws);
    let docker = step("stop the private dockerd", crate::docker::stop);
    tests.and(docker)
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

fn ensure_ebpf_toolchain(_: &Workspace) -> Result<()> {
    ebpf::install()
}

/// Runs two quick benchmark suites (`monitor-query` takes about 10 s) so the harness
/// cannot rot (its numbers are not asserted and not written to BENCHMARKS.md). They
/// measure the debug binary the workspace build made: a release build here would cost
/// CI about 7 minutes and 1.4 GiB of disk for numbers nobody reads.
fn ensure_bench_smoke(ws: &Workspace) -> Result<()> {
    crate::bench::run(
        ws,
        &["platform".to_owned(), "monitor-query".to_owned()],
        &crate::bench::Options {
            quick: true,
            dev_build: true,
        },
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

/// The workspace lints (root `Cargo.toml`) and clippy's defaults, warnings as errors.
fn clippy_clean(ws: &Workspace) -> Result<()> {
    cmd::run(
        cmd::cargo()
            .args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])
            .current_dir(&ws.root),
    )
}

/// `apt-get update` runs at most once per `cargo xtask test`.
static APT_UPDATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Installs Debian packages (after one `apt-get update`).
pub(crate) fn apt_install(packages: &[&str]) -> Result<()> {
    use std::sync::atomic::Ordering;
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        cmd::run(std::process::Command::new("apt-get").args(["update", "-qq"]))?;
    }
    cmd::run(
        std::process::Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Creates (or empties) the virtualenv `venv` with `python -m venv --clear`; Debian
/// ships venv's ensurepip in a package of its own, installed when the first try fails.
pub(crate) fn make_venv(python: &std::ffi::OsStr, venv: &Path) -> Result<()> {
    let mut mk = std::process::Command::new(python);
    mk.args(["-m", "venv", "--clear"]).arg(venv);
    if cmd::run(&mut mk).is_err() {
        apt_install(&["python3-venv"])?;
        cmd::run(&mut mk)?;
    }
    Ok(())
}

/// Sets a variable for the `cargo test` step (xtask is single-threaded here).
pub(crate) fn export(var: &str, value: &str) {
    println!("    {var}={value}");
    // SAFETY: xtask runs its steps on one thread; no other thread reads the environment.
    unsafe { std::env::set_var(var, value) };
}

/// Polls `ready` every 200 ms for up to `secs` seconds.
pub(crate) fn wait_until(what: &str, secs: u64, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    bail!("{what} not ready after {secs} s")
}

/// The test PostgreSQL: its own cluster in /var/lib/faasload-test/postgres, on
/// 127.0.0.1:55432 (socket in the data directory), user `faasload` / password
/// `faasload`, database `faasload_test`. Left running for the next run; a cluster
/// already running is reused. Exports `FAASLOAD_TEST_POSTGRES_URL`.
fn ensure_postgres(_: &Workspace) -> Result<()> {
    use std::process::Command;
    const DIR: &str = "/var/lib/faasload-test/postgres";
    const PORT: &str = "55432";
    let bin = || -> Option<std::path::PathBuf> {
        let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("pg_ctl").is_file())
            .collect();
        versions.sort_by_key(|b| {
            b.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        versions.pop()
    };
    let bin = match bin() {
        Some(b) => b,
        None => {
            apt_install(&["postgresql", "postgresql-client"])?;
            bin().context("postgresql installed but no /usr/lib/postgresql/*/bin/pg_ctl")?
        }
    };
    let as_pg = |tool: &str| {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    };
    let running = || {
        as_pg("pg_ctl")
            .args(["status", "-D", DIR])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !running() {
        if !Path::new(DIR).join("PG_VERSION").is_file() {
            std::fs::create_dir_all(DIR).with_context(|| format!("creating {DIR}"))?;
            cmd::run(Command::new("chown").args(["-R", "postgres:postgres", DIR]))?;
            cmd::run(as_pg("initdb").args([
                "-D",
                DIR,
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ]))?;
        }
        let opts = format!("-c listen_addresses=127.0.0.1 -p {PORT} -k {DIR} -c fsync=off");
        cmd::run(as_pg("pg_ctl").args([
            "start",
            "-D",
            DIR,
            "-w",
            "-t",
            "60",
            "-l",
            &format!("{DIR}/server.log"),
            "-o",
            &opts,
        ]))?;
    }
    let psql = |sql: &str| {
        cmd::output(as_pg("psql").args([
            "-h", DIR, "-p", PORT, "-U", "postgres", "-d", "postgres", "-tA", "-c", sql,
        ]))
    };
    wait_until("PostgreSQL", 30, || psql("SELECT 1").is_ok())?;
    if psql("SELECT 1 FROM pg_roles WHERE rolname = 'faasload'")?.is_empty() {
        psql("CREATE ROLE faasload LOGIN PASSWORD 'faasload'")?;
    }
    if psql("SELECT 1 FROM pg_database WHERE datname = 'faasload_test'")?.is_empty() {
        psql("CREATE DATABASE faasload_test OWNER faasload")?;
    }
    export(
        "FAASLOAD_TEST_POSTGRES_URL",
        &format!("postgres://faasload:faasload@127.0.0.1:{PORT}/faasload_test"),
    );
    Ok(())
}

/// The test MariaDB: its own server on /var/lib/faasload-test/mariadb, 127.0.0.1:53306
/// (socket in the data directory), user `faasload` / password `faasload`,
/// database `faasload_test`. Left running for the next run; a server already answering
/// on the socket is reused. Exports `FAASLOAD_TEST_MYSQL_URL`.
fn ensure_mariadb(_: &Workspace) -> Result<()> {
    use std::process::{Command, Stdio};
    const DIR: &str = "/var/lib/faasload-test/mariadb";
    const SOCK: &str = "/var/lib/faasload-test/mariadb/mariadbd.sock";
    const PORT: &str = "53306";
    if !Path::new("/usr/sbin/mariadbd").is_file() {
        apt_install(&["mariadb-server", "mariadb-client"])?;
    }
    let client = |sql: &str| {
        cmd::output(Command::new("mariadb").args([
            "--no-defaults",
            &format!("--socket={SOCK}"),
            "-uroot",
            "-N",
            "-e",
            sql,
        ]))
    };
    if client("SELECT 1").is_err() {
        if !Path::new(DIR).join("mysql").is_dir() {
            std::fs::create_dir_all(DIR).with_context(|| format!("creating {DIR}"))?;
            cmd::run(Command::new("chown").args(["-R", "mysql:mysql", DIR]))?;
            cmd::run(Command::new("mariadb-install-db").args([
                "--no-defaults",
                "--user=mysql",
                &format!("--datadir={DIR}"),
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ]))?;
        }
        // Detached (own session, no inherited output) so it outlives xtask.
        let mut c = Command::new("setsid");
        c.args([
            "/usr/sbin/mariadbd",
            "--no-defaults",
            "--user=mysql",
            &format!("--datadir={DIR}"),
            &format!("--socket={SOCK}"),
            &format!("--port={PORT}"),
            "--bind-address=127.0.0.1",
            &format!("--pid-file={DIR}/mariadbd.pid"),
            &format!("--log-error={DIR}/error.log"),
            "--innodb-flush-log-at-trx-commit=2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        println!("    $ setsid /usr/sbin/mariadbd --datadir={DIR} --port={PORT} ...");
        c.spawn().context("starting mariadbd")?;
        wait_until("MariaDB", 60, || client("SELECT 1").is_ok())
            .with_context(|| format!("see {DIR}/error.log"))?;
    }
    client(
        "CREATE DATABASE IF NOT EXISTS faasload_test; \
         CREATE USER IF NOT EXISTS 'faasload'@'127.0.0.1' IDENTIFIED BY 'faasload'; \
         GRANT ALL ON faasload_test.* TO 'faasload'@'127.0.0.1'",
    )?;
    export(
        "FAASLOAD_TEST_MYSQL_URL",
        &format!("mysql://faasload:faasload@127.0.0.1:{PORT}/faasload_test"),
    );
    Ok(())
}
