//! Suite `loader` (issue 7, suite 3: loader-lag and loader-throughput): how precisely and
//! how fast `faasload load` sends, side by side with `oha` in the same run on the same
//! endpoint.
//!
//! The endpoint is nginx from Debian (installed with apt when `nginx` is missing), started
//! by this suite with its own configuration and prefix in a temporary directory on a free
//! loopback port: one worker, keep-alive, no access log, and every
//! `POST /api/v1/namespaces/*/actions/*` answered 200 with a fixed, valid OpenWhisk
//! activation record. `oha` is installed with `cargo install oha --locked` when it is not
//! on PATH.
//!
//! - loader-lag: fixed-rate periodic replays of one user and one function (never deployed)
//!   at 1,000 / 5,000 / 10,000 invocations/s; per-invocation send lag, latency and class
//!   are read back from the run's SQLite store (`xtask/bench/loader_read.py`). `oha -q R`
//!   with `--latency-correction` at the same rates on the same URL.
//! - loader-throughput: faasload at a rate it cannot reach (max 256 in flight) against
//!   `oha -c 256` without a rate limit.
//!
//! CPU per invocation is the child's user + sys time (`wait4` rusage) over its count. Every
//! measurement is repeated (3 times, once with `--quick`) and the tools alternate, so both
//! see the same machine noise. nginx is stopped by PID and the temporary directory removed
//! on every path.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::Options;
use crate::cmd::{self, step};
use crate::workspace::Workspace;

/// OpenWhisk's public guest key, as in `config/platform.yml`.
const GUEST_AUTH: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// The fixed activation record nginx answers (shape of `reference/openwhisk.md`).
const RECORD: &str = r#"{"namespace":"guest","name":"noop","version":"0.0.1","subject":"guest","activationId":"5f0c1d2e3b4a49687766554433221100","start":1700000000000,"end":1700000000001,"duration":1,"response":{"result":{},"size":2,"status":"success","success":true},"logs":[],"annotations":[{"key":"path","value":"guest/noop"},{"key":"waitTime","value":0},{"key":"kind","value":"python:3.11"},{"key":"timeout","value":false},{"key":"limits","value":{"concurrency":1,"logs":10,"memory":256,"timeout":60000}}],"publish":false}"#;

/// In-flight bound of the max-rate runs (both tools).
const MAX_IN_FLIGHT: u32 = 256;
/// Connections of oha's fixed-rate runs (enough that it is never connection-bound).
const OHA_FIXED_CONNECTIONS: u32 = 256;
/// Invocations per second of the max-rate run's plan: `MAX_RATE` × `max_duration_s`
/// invocations, all due within the first `max_duration_s` / `MAX_RATE_SQUEEZE` seconds, so
/// the schedule is in the past at once and the run goes as fast as the in-flight bound
/// lets it (like oha's unlimited mode), with no scheduler waiting between releases.
const MAX_RATE: u32 = 50_000;
const MAX_RATE_SQUEEZE: u32 = 1000;

struct Sizes {
    rates: &'static [u32],
    duration_s: u32,
    max_duration_s: u32,
    reps: u32,
}

pub(super) fn run(ws: &Workspace, opts: &Options) -> Result<String> {
    let sizes = if opts.quick {
        Sizes {
            rates: &[1000],
            duration_s: 5,
            max_duration_s: 3,
            reps: 1,
        }
    } else {
        Sizes {
            rates: &[1000, 5000, 10_000],
            duration_s: 10,
            max_duration_s: 5,
            reps: 3,
        }
    };
    let nginx_note = step("nginx (Debian)", ensure_nginx)?;
    let oha_note = step("oha (cargo install)", ensure_oha)?;
    let bin = opts.faasload(ws)?;
    let tmp = TempDir::create()?;
    let mut nginx = step("start nginx", || Nginx::start(&tmp.path))?;
    let measured = measure(ws, &bin, &tmp, &nginx, &sizes);
    let stopped = step("stop nginx", || nginx.stop());
    drop(tmp);
    let body = measured?;
    stopped?;
    Ok(format!("{nginx_note}\n{oha_note}\n{body}"))
}

/// Installs nginx with apt when it is missing; returns a Markdown line saying which.
fn ensure_nginx() -> Result<String> {
    if let Some(v) = nginx_version() {
        println!("    {v} found");
        return Ok(format!(
            "- endpoint: {v} (Debian package, already installed)"
        ));
    }
    let install = || {
        cmd::run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "nginx-light"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        cmd::run(Command::new("apt-get").arg("update"))?;
        install()?;
    }
    let v = nginx_version().context("nginx still missing after apt-get install nginx-light")?;
    Ok(format!(
        "- endpoint: {v} (installed by this run: `apt-get install -y nginx-light`)"
    ))
}

fn nginx_version() -> Option<String> {
    // `nginx -v` prints on stderr.
    let out = Command::new("nginx").arg("-v").output().ok()?;
    let s = String::from_utf8_lossy(&out.stderr);
    s.lines()
        .find_map(|l| l.strip_prefix("nginx version: "))
        .map(|v| v.trim().to_owned())
}

/// Installs oha with cargo when it is missing; returns a Markdown line saying which (and
/// how long the build took).
fn ensure_oha() -> Result<String> {
    if let Some(v) = oha_version() {
        println!("    {v} found on PATH");
        return Ok(format!("- peer: {v} (already on PATH)"));
    }
    let t = Instant::now();
    cmd::run(cmd::cargo().args(["install", "oha", "--locked"]))?;
    let secs = t.elapsed().as_secs_f64();
    let v = oha_version().context(
        "oha is not on PATH after `cargo install oha --locked` (is ~/.cargo/bin on PATH?)",
    )?;
    Ok(format!(
        "- peer: {v} (installed by this run: `cargo install oha --locked`, built in {secs:.0} s)"
    ))
}

fn oha_version() -> Option<String> {
    let out = Command::new("oha").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// One measurement of one tool.
#[derive(Clone, Copy, Default)]
struct Sample {
    /// Invocations / requests made.
    count: u64,
    errors: u64,
    /// Achieved rate, per second.
    rate: f64,
    /// Send lag (faasload only), ns.
    lag_p50: Option<f64>,
    lag_p99: Option<f64>,
    lag_max: Option<f64>,
    /// Latency from the intended send instant, ns.
    lat_p50: f64,
    lat_p99: f64,
    /// CPU (user + sys) of the process per invocation, ns.
    cpu_per: f64,
}

/// One fixed rate's samples: faasload as shipped, faasload with its sender threads at
/// the default priority (`--sender-nice 0`), and oha.
struct Fixed {
    rate: u32,
    ours: Vec<Sample>,
    ours_nice0: Vec<Sample>,
    theirs: Vec<Sample>,
}

fn measure(
    ws: &Workspace,
    bin: &Path,
    tmp: &TempDir,
    nginx: &Nginx,
    sizes: &Sizes,
) -> Result<String> {
    let reader = ws.root.join("xtask/bench/loader_read.py");
    let base = format!("http://{}", nginx.addr);
    let url = format!("{base}/api/v1/namespaces/guest/actions/noop?blocking=true&result=false");
    let code = ws.root.join("functions/python/noop.py");

    let runs = FaasloadRuns {
        bin,
        tmp,
        reader: &reader,
        code: &code,
        base: &base,
    };
    // Fixed rates.
    let mut fixed: Vec<Fixed> = Vec::new();
    for &rate in sizes.rates {
        let mut ours = Vec::new();
        let mut ours_nice0 = Vec::new();
        let mut theirs = Vec::new();
        for rep in 1..=sizes.reps {
            for (nice0, into) in [(false, &mut ours), (true, &mut ours_nice0)] {
                let what = if nice0 { " --sender-nice 0" } else { "" };
                let s = step(
                    format!(
                        "faasload load{what}: {rate}/s for {} s, rep {rep}",
                        sizes.duration_s
                    ),
                    || {
                        faasload_run(
                            &runs,
                            u64::from(rate),
                            f64::from(sizes.duration_s),
                            None,
                            if nice0 { &["--sender-nice", "0"] } else { &[] },
                        )
                    },
                )?;
                print_sample(if nice0 { "nice 0" } else { "faasload" }, &s);
                into.push(s);
            }
            let s = step(
                format!("oha -q {rate}: {} s, rep {rep}", sizes.duration_s),
                || {
                    oha_run(
                        tmp,
                        &reader,
                        &url,
                        Some(rate),
                        OHA_FIXED_CONNECTIONS,
                        sizes.duration_s,
                    )
                },
            )?;
            print_sample("oha", &s);
            theirs.push(s);
        }
        fixed.push(Fixed {
            rate,
            ours,
            ours_nice0,
            theirs,
        });
    }

    // Max rate.
    let mut max_ours = Vec::new();
    let mut max_theirs = Vec::new();
    for rep in 1..=sizes.reps {
        let s = step(
            format!(
                "faasload load: max rate ({MAX_RATE}/s asked, {MAX_IN_FLIGHT} in flight), rep {rep}"
            ),
            || {
                faasload_run(
                    &runs,
                    u64::from(MAX_RATE) * u64::from(MAX_RATE_SQUEEZE),
                    f64::from(sizes.max_duration_s) / f64::from(MAX_RATE_SQUEEZE),
                    Some(MAX_IN_FLIGHT),
                    &[],
                )
            },
        )?;
        print_sample("faasload", &s);
        max_ours.push(s);
        let s = step(
            format!(
                "oha -c {MAX_IN_FLIGHT}: {} s unlimited, rep {rep}",
                sizes.max_duration_s
            ),
            || {
                oha_run(
                    tmp,
                    &reader,
                    &url,
                    None,
                    MAX_IN_FLIGHT,
                    sizes.max_duration_s,
                )
            },
        )?;
        print_sample("oha", &s);
        max_theirs.push(s);
    }

    Ok(markdown(nginx, &url, sizes, &fixed, &max_ours, &max_theirs))
}

fn print_sample(tool: &str, s: &Sample) {
    println!(
        "    {tool:<8} {} done, {:.0}/s, lag p50/p99/max {}/{}/{} µs, latency p50/p99 {:.0}/{:.0} µs, \
         {} errors, CPU {:.1} µs/inv",
        s.count,
        s.rate,
        opt_us(s.lag_p50),
        opt_us(s.lag_p99),
        opt_us(s.lag_max),
        s.lat_p50 / 1e3,
        s.lat_p99 / 1e3,
        s.errors,
        s.cpu_per / 1e3
    );
}

fn opt_us(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0}", v / 1e3))
}

/// The trace of one run: one user, one function (never deployed), one periodic stream.
fn trace_text(code: &Path, base: &str, rate: u64, duration_s: f64) -> String {
    format!(
        "# Written by cargo xtask bench loader.\n\
         users:\n\
         \x20 - name: guest\n\
         \x20   namespace: guest\n\
         \x20   auth: \"{GUEST_AUTH}\"\n\
         \x20   api_host: \"{base}\"\n\
         functions:\n\
         \x20 - name: noop\n\
         \x20   kind: \"python:3\"\n\
         \x20   code: \"{}\"\n\
         streams:\n\
         \x20 - user: guest\n\
         \x20   function: noop\n\
         \x20   rate: {rate}\n\
         \x20   distribution: periodic\n\
         \x20   duration: {duration_s}\n",
        code.display()
    )
}

/// What every faasload run of the suite shares.
struct FaasloadRuns<'a> {
    bin: &'a Path,
    tmp: &'a TempDir,
    reader: &'a Path,
    code: &'a Path,
    base: &'a str,
}

/// One `faasload load` run of a periodic stream at `rate` for `duration_s`; `extra`
/// are further options.
fn faasload_run(
    f: &FaasloadRuns,
    rate: u64,
    duration_s: f64,
    max_in_flight: Option<u32>,
    extra: &[&str],
) -> Result<Sample> {
    let FaasloadRuns {
        bin,
        tmp,
        reader,
        code,
        base,
    } = *f;
    let trace = tmp.path.join("trace.yaml");
    std::fs::write(&trace, trace_text(code, base, rate, duration_s)).context("write the trace")?;
    let db = tmp.path.join("r.db");
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(tmp.path.join(format!("r.db{suffix}")));
    }
    let mut c = Command::new(bin);
    c.arg("load")
        .arg(&trace)
        .args(["--quiet", "--no-monitor", "--log", "warn"])
        // Failed invocations are counted from the store: they must not fail the run.
        .args(["--max-failed", "100%"])
        .arg("--store")
        .arg(format!("sqlite://{}", db.display()));
    if let Some(m) = max_in_flight {
        c.args(["--max-in-flight", &m.to_string()]);
    }
    c.args(extra);
    let log = tmp.path.join("faasload.log");
    let ru = run_measured(
        &mut c,
        &log,
        &log,
        Duration::from_secs_f64(duration_s.max(5.0) * 20.0 + 60.0),
    )?;
    let kv = cmd::output(Command::new("python3").arg(reader).arg("db").arg(&db))?;
    let kv = parse_kv(&kv);
    let count = kv.get_u("rows")?;
    if count == 0 {
        bail!("faasload stored no rows in {}", db.display());
    }
    Ok(Sample {
        count,
        errors: kv.get_u("errors")?,
        rate: kv.get_f("rate")?,
        lag_p50: Some(kv.get_f("lag_p50")?),
        lag_p99: Some(kv.get_f("lag_p99")?),
        lag_max: Some(kv.get_f("lag_max")?),
        lat_p50: kv.get_f("lat_p50")?,
        lat_p99: kv.get_f("lat_p99")?,
        cpu_per: ru.cpu_ns as f64 / count as f64,
    })
}

fn oha_command(url: &str, rate: Option<u32>, connections: u32, duration_s: u32) -> Command {
    let mut c = Command::new("oha");
    // -w: requests in flight at the deadline finish (else oha aborts them and counts
    // them as errors), as faasload's do.
    c.args(["-z", &format!("{duration_s}s"), "-w"])
        .args(["-c", &connections.to_string()]);
    if let Some(r) = rate {
        c.args(["-q", &r.to_string(), "--latency-correction"]);
    }
    c.args(["-m", "POST", "-d", "{}"])
        .args(["-H", "content-type: application/json"])
        .args(["-a", GUEST_AUTH])
        .args(["--no-tui", "--output-format", "json"])
        .arg(url);
    c
}

fn oha_run(
    tmp: &TempDir,
    reader: &Path,
    url: &str,
    rate: Option<u32>,
    connections: u32,
    duration_s: u32,
) -> Result<Sample> {
    let out = tmp.path.join("oha.json");
    let err = tmp.path.join("oha.err");
    let mut c = oha_command(url, rate, connections, duration_s);
    let ru = run_measured(
        &mut c,
        &out,
        &err,
        Duration::from_secs(u64::from(duration_s) * 5 + 60),
    )?;
    let kv = cmd::output(Command::new("python3").arg(reader).arg("oha").arg(&out))?;
    let kv = parse_kv(&kv);
    let count = kv.get_u("requests")?;
    if count == 0 {
        bail!("oha made no requests");
    }
    Ok(Sample {
        count,
        errors: kv.get_u("errors")?,
        rate: kv.get_f("rate")?,
        lag_p50: None,
        lag_p99: None,
        lag_max: None,
        lat_p50: kv.get_f("lat_p50")?,
        lat_p99: kv.get_f("lat_p99")?,
        cpu_per: ru.cpu_ns as f64 / count as f64,
    })
}

struct Kv(Vec<(String, String)>);

fn parse_kv(s: &str) -> Kv {
    Kv(s.split_whitespace()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

impl Kv {
    fn get(&self, k: &str) -> Result<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .with_context(|| format!("the reader printed no `{k}`"))
    }
    fn get_u(&self, k: &str) -> Result<u64> {
        self.get(k)?
            .parse()
            .with_context(|| format!("`{k}` is not an integer"))
    }
    fn get_f(&self, k: &str) -> Result<f64> {
        let v: f64 = self
            .get(k)?
            .parse()
            .with_context(|| format!("`{k}` is not a number"))?;
        if v < 0.0 {
            bail!("`{k}` missing (no values)");
        }
        Ok(v)
    }
}

/// What [`run_measured`] measured of a child.
pub(super) struct Usage {
    pub cpu_ns: u64,
    /// Peak resident set (`ru_maxrss`), KiB.
    pub max_rss_kb: u64,
}

/// Runs `c` (stdout and stderr to files), reaps it with `wait4` to get its rusage, kills it
/// after `timeout`; an error, with the tail of its stderr, unless it exited 0.
pub(super) fn run_measured(
    c: &mut Command,
    out: &Path,
    err: &Path,
    timeout: Duration,
) -> Result<Usage> {
    let stdout = File::create(out).with_context(|| format!("create {}", out.display()))?;
    let stderr = if err == out {
        stdout.try_clone()?
    } else {
        File::create(err).with_context(|| format!("create {}", err.display()))?
    };
    c.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let what = format!("{c:?}");
    println!("    $ {what}");
    let child = c.spawn().with_context(|| format!("cannot start {what}"))?;
    let pid = child.id() as libc::pid_t;
    // The child is reaped below by wait4, not by `Child`.
    #[expect(
        clippy::mem_forget,
        reason = "wait4 reaps the child (for its rusage); Child must not touch the pid again"
    )]
    std::mem::forget(child);
    let deadline = Instant::now() + timeout;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data, zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        // SAFETY: our own unreaped child; status and ru are valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("wait4");
        }
        if !killed && Instant::now() > deadline {
            // SAFETY: the child has not been reaped, so the pid is still ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    let cpu_ns = tv(ru.ru_utime) + tv(ru.ru_stime);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if killed || !ok {
        if let Ok(s) = std::fs::read_to_string(err) {
            let lines: Vec<&str> = s.lines().collect();
            for l in &lines[lines.len().saturating_sub(20)..] {
                eprintln!("    | {l}");
            }
        }
        if killed {
            bail!("{what} did not finish within {timeout:?}; killed it");
        }
        bail!("{what} failed (wait status {status:#x})");
    }
    Ok(Usage {
        cpu_ns,
        max_rss_kb: ru.ru_maxrss.max(0) as u64,
    })
}

/// Median and min..max of some values.
pub(super) fn spread(xs: &[f64]) -> (f64, f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (med, v[0], v[n - 1])
}

/// `median (min..max)` of `f(sample)`, scaled by `div`, with `prec` decimals.
fn cell(ss: &[Sample], f: impl Fn(&Sample) -> Option<f64>, div: f64, prec: usize) -> String {
    let xs: Vec<f64> = ss.iter().filter_map(&f).map(|x| x / div).collect();
    if xs.is_empty() {
        return "—".into();
    }
    let (m, lo, hi) = spread(&xs);
    if xs.len() == 1 {
        format!("{m:.prec$}")
    } else {
        format!("{m:.prec$} ({lo:.prec$}..{hi:.prec$})")
    }
}

fn median(ss: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    let xs: Vec<f64> = ss.iter().map(f).collect();
    spread(&xs).0
}

fn markdown(
    nginx: &Nginx,
    url: &str,
    sizes: &Sizes,
    fixed: &[Fixed],
    max_ours: &[Sample],
    max_theirs: &[Sample],
) -> String {
    let mut md = String::new();
    let reps = sizes.reps;
    let _ = writeln!(
        md,
        "\nSet-up: nginx started by the suite on {} (1 worker, keep-alive, no access log, \
         own prefix in a temporary directory), answering every \
         `POST /api/v1/namespaces/*/actions/*` with 200 and a fixed {}-byte activation \
         record. faasload: `target/release/faasload load <trace> --quiet --no-monitor \
         --log warn --store sqlite://<tmp>/r.db` on a trace with one user (`guest`, \
         `api_host` = nginx) and one function (`functions/python/noop.py`, never deployed) \
         and one stream `rate: R, distribution: periodic, duration: {}` (defaults: \
         `--max-in-flight` 1000, one sender thread at nice -10, which hands releases it is \
         more than 1 ms late for to the runtime's workers; the same runs with \
         `--sender-nice 0` show what the raised priority does); send lag (`lag_ns` = sent − intended), latency \
         (`latency_ns` = answered − intended) and class of every row are read back from \
         the store by `xtask/bench/loader_read.py` (exact nearest-rank percentiles), the \
         achieved rate is (rows − 1) / (last sent − first sent). oha: `{}`. CPU per \
         invocation is the child process's user + sys time (`wait4` rusage) divided by \
         its invocations: faasload's includes its SQLite writes and its report. Each \
         measurement {} time(s), the two tools alternating; cells are median \
         (min..max) over the repetitions. Both clients and nginx share the machine's \
         cores. faasload's latency in the max-rate run counts from the intended instant, so \
         it includes the time an invocation waited for one of the 256 slots (the schedule \
         runs ahead of what the endpoint absorbs); oha's unlimited run has no schedule, \
         its latency is the round trip.\n",
        nginx.addr,
        RECORD.len(),
        sizes.duration_s,
        cmd_text(&oha_command(
            url,
            Some(1000),
            OHA_FIXED_CONNECTIONS,
            sizes.duration_s
        )),
        reps,
    );

    let _ = writeln!(md, "### loader-lag: fixed rates\n");
    let _ = writeln!(
        md,
        "| rate asked (/s) | tool | invocations | achieved (/s) | send lag p50 (µs) | send lag p99 (µs) | send lag max (µs) | latency p50 (µs) | latency p99 (µs) | errors | CPU / invocation (µs) |"
    );
    let _ = writeln!(
        md,
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for f in fixed {
        let rate = f.rate;
        for (tool, ss) in [
            ("faasload", &f.ours),
            ("faasload --sender-nice 0", &f.ours_nice0),
            ("oha", &f.theirs),
        ] {
            let _ = writeln!(
                md,
                "| {rate} | {tool} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(ss, |s| Some(s.count as f64), 1.0, 0),
                cell(ss, |s| Some(s.rate), 1.0, 0),
                cell(ss, |s| s.lag_p50, 1e3, 0),
                cell(ss, |s| s.lag_p99, 1e3, 0),
                cell(ss, |s| s.lag_max, 1e3, 0),
                cell(ss, |s| Some(s.lat_p50), 1e3, 0),
                cell(ss, |s| Some(s.lat_p99), 1e3, 0),
                cell(ss, |s| Some(s.errors as f64), 1.0, 0),
                cell(ss, |s| Some(s.cpu_per), 1e3, 1),
            );
        }
    }
    let _ = writeln!(
        md,
        "\nRatios faasload / oha (medians):\n\n| rate (/s) | achieved rate | latency p50 | latency p99 | CPU / invocation |\n|---:|---:|---:|---:|---:|"
    );
    for f in fixed {
        let (rate, ours, theirs) = (f.rate, &f.ours, &f.theirs);
        let r = |f: &dyn Fn(&Sample) -> f64| median(ours, f) / median(theirs, f);
        let _ = writeln!(
            md,
            "| {rate} | {:.3} | {:.2} | {:.2} | {:.2} |",
            r(&|s| s.rate),
            r(&|s| s.lat_p50),
            r(&|s| s.lat_p99),
            r(&|s| s.cpu_per),
        );
    }

    let _ = writeln!(md, "\n### loader-throughput: max rate\n");
    let _ = writeln!(
        md,
        "faasload planned {MAX_RATE}/s × {} s invocations, all due within the first {} ms \
         (the plan is in the past at once), with `--max-in-flight {MAX_IN_FLIGHT}` (all \
         planned invocations are sent, so the run lasts as long as it needs); oha \
         `-c {MAX_IN_FLIGHT} -z {}s` without `-q`.\n",
        sizes.max_duration_s,
        sizes.max_duration_s * 1000 / MAX_RATE_SQUEEZE,
        sizes.max_duration_s
    );
    let _ = writeln!(
        md,
        "| tool | invocations | achieved (/s) | latency p50 (µs) | latency p99 (µs) | errors | CPU / invocation (µs) |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (tool, ss) in [("faasload", max_ours), ("oha", max_theirs)] {
        let _ = writeln!(
            md,
            "| {tool} | {} | {} | {} | {} | {} | {} |",
            cell(ss, |s| Some(s.count as f64), 1.0, 0),
            cell(ss, |s| Some(s.rate), 1.0, 0),
            cell(ss, |s| Some(s.lat_p50), 1e3, 0),
            cell(ss, |s| Some(s.lat_p99), 1e3, 0),
            cell(ss, |s| Some(s.errors as f64), 1.0, 0),
            cell(ss, |s| Some(s.cpu_per), 1e3, 1),
        );
    }
    let tput = median(max_ours, |s| s.rate) / median(max_theirs, |s| s.rate);
    let _ = writeln!(
        md,
        "\nThroughput ratio faasload / oha (medians): **{tput:.3}**.\n"
    );

    let _ = writeln!(md, "### Reading against the goals\n");
    for f in fixed {
        let (rate, ours) = (f.rate, &f.ours);
        let p99 = median(ours, |s| s.lag_p99.unwrap_or(f64::NAN)) / 1e3;
        let p99_nice0 = median(&f.ours_nice0, |s| s.lag_p99.unwrap_or(f64::NAN)) / 1e3;
        let asked = f64::from(rate);
        let achieved = median(ours, |s| s.rate);
        let tput = achieved / median(&f.theirs, |s| s.rate);
        let _ = writeln!(
            md,
            "- {rate}/s: send lag p99 {p99:.0} µs (median of {reps}) against the goal of \
             ≤ 200 µs: **{}** (with `--sender-nice 0`: {p99_nice0:.0} µs); achieved \
             {achieved:.0}/s ({:.1} % of the rate asked), {tput:.3}× oha's at the same rate \
             against the goal of ≥ 0.8×: **{}**.",
            if p99 <= 200.0 { "met" } else { "not met" },
            achieved / asked * 100.0,
            if tput >= 0.8 { "met" } else { "not met" },
        );
    }
    for f in fixed {
        let (rate, ours, theirs) = (f.rate, &f.ours, &f.theirs);
        // CPU time per second of sending = cores kept busy, whatever the rate.
        let cores = |ss: &[Sample]| median(ss, |s| s.cpu_per * s.rate) / 1e9;
        let _ = writeln!(
            md,
            "- CPU at {rate}/s: faasload {:.1} µs per invocation, i.e. {:.2} cores busy for \
             the run; oha {:.1} µs, {:.2} cores ({:.1}× less).",
            median(ours, |s| s.cpu_per) / 1e3,
            cores(ours),
            median(theirs, |s| s.cpu_per) / 1e3,
            cores(theirs),
            median(ours, |s| s.cpu_per) / median(theirs, |s| s.cpu_per),
        );
    }
    let _ = writeln!(
        md,
        "- max rate (no schedule to keep, as fast as 256 in flight allow): faasload \
         reached {:.0}/s, oha {:.0}/s: {tput:.3}× oha ({} 0.8×). faasload does more per \
         invocation than oha (parses and classifies the activation record, builds and \
         stores the row, keeps histograms).",
        median(max_ours, |s| s.rate),
        median(max_theirs, |s| s.rate),
        if tput >= 0.8 { "at or above" } else { "below" }
    );
    md
}

fn cmd_text(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        let a = a.to_string_lossy();
        if a == GUEST_AUTH {
            s.push_str(" <guest key>");
        } else if a.contains([' ', '{', '?', '&']) {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// The nginx endpoint: master process in the foreground (`daemon off`), stopped by PID.
struct Nginx {
    addr: SocketAddr,
    child: Option<Child>,
    prefix: PathBuf,
}

impl Nginx {
    fn start(tmp: &Path) -> Result<Self> {
        let prefix = tmp.join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).context("create the nginx prefix")?;
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(&prefix, addr)).context("write nginx.conf")?;
        let log = prefix.join("logs/stderr.log");
        let out = File::create(&log)?;
        let err = out.try_clone()?;
        let mut c = Command::new("nginx");
        c.arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        println!("    $ {c:?}");
        let child = c.spawn().context("start nginx")?;
        let mut n = Nginx {
            addr,
            child: Some(child),
            prefix,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let child = n.child.as_mut().expect("running");
            if let Some(status) = child.try_wait()? {
                n.child = None;
                n.print_logs();
                bail!("nginx exited during start-up ({status})");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                println!("    listening on {addr} (pid {})", child.id());
                return Ok(n);
            }
            if Instant::now() > deadline {
                n.print_logs();
                bail!("nginx did not listen on {addr} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn print_logs(&self) {
        for f in ["logs/stderr.log", "logs/error.log"] {
            if let Ok(s) = std::fs::read_to_string(self.prefix.join(f)) {
                for l in s
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    eprintln!("    nginx | {l}");
                }
            }
        }
    }

    /// SIGQUIT (graceful), then waits up to 10 s, then SIGKILL.
    fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: plain syscall on our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGQUIT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    self.print_logs();
                    bail!("nginx exited with {status} on SIGQUIT");
                }
                println!("    nginx (pid {pid}) stopped");
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("nginx did not stop within 10 s of SIGQUIT; killed it");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("xtask: {e:#}");
        }
    }
}

fn nginx_conf(prefix: &Path, addr: SocketAddr) -> String {
    let p = prefix.display();
    format!(
        "# Written by cargo xtask bench loader.\n\
         daemon off;\n\
         master_process on;\n\
         worker_processes 1;\n\
         worker_rlimit_nofile 16384;\n\
         pid {p}/nginx.pid;\n\
         error_log {p}/logs/error.log warn;\n\
         events {{ worker_connections 8192; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 client_body_temp_path {p}/body;\n\
         \x20 proxy_temp_path {p}/proxy;\n\
         \x20 fastcgi_temp_path {p}/fastcgi;\n\
         \x20 uwsgi_temp_path {p}/uwsgi;\n\
         \x20 scgi_temp_path {p}/scgi;\n\
         \x20 keepalive_timeout 75s;\n\
         \x20 keepalive_requests 100000000;\n\
         \x20 tcp_nodelay on;\n\
         \x20 server {{\n\
         \x20   listen {addr} backlog=4096;\n\
         \x20   default_type application/json;\n\
         \x20   location ~ ^/api/v1/namespaces/[^/]+/actions/[^/]+$ {{\n\
         \x20     if ($request_method != POST) {{ return 405; }}\n\
         \x20     return 200 '{RECORD}';\n\
         \x20   }}\n\
         \x20   location / {{ return 404; }}\n\
         \x20 }}\n\
         }}\n"
    )
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("find a free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// A temporary directory, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn create() -> Result<Self> {
        let base = std::env::temp_dir();
        for i in 0..100u32 {
            let path = base.join(format!("faasload-bench-loader-{}-{i}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
            }
        }
        bail!("cannot create a temporary directory in {}", base.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("xtask: cannot remove {}: {e}", self.path.display());
        }
    }
}
