//! One-command runs (`faasload load --embedded`): starts the monitor daemon (a child
//! process of this binary, sockets in a private directory) and the embedded platform
//! in-process with the trace's namespaces, and tears both down afterwards (every
//! container, cgroup, socket and process removed).
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use faasload_platform::PlatformHandle;
use faasload_platform::config::{NamespaceConfig, PlatformConfig, RuntimesConfig};
use faasload_trace::Trace;

/// Invoker ids tried for an embedded platform (`wsk0` .. `wsk<this>`).
const MAX_INVOKER_ID: u32 = 63;

/// The running embedded platform and monitor.
pub(crate) struct Embedded {
    platform: Option<PlatformHandle>,
    monitor: Option<Child>,
    dir: PathBuf,
    /// Base URL of the platform's API.
    pub api_host: String,
    /// The monitor's query socket (None when started without a monitor).
    pub query_socket: Option<PathBuf>,
    /// `uuid:key` of each trace user, in trace order.
    pub auths: Vec<String>,
    /// The platform's object store (inputs), if it has one.
    pub store_dir: Option<PathBuf>,
}

/// A deterministic-looking but unique `uuid:key` for a created namespace.
fn new_auth(ns: &str, salt: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    let mut next = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        h
    };
    for b in ns.bytes() {
        next(b);
    }
    let mut hex = String::new();
    while hex.len() < 96 {
        hex.push_str(&format!("{:016x}", next(0x5a)));
    }
    format!(
        "{}-{}-{}-{}-{}:{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32],
        &hex[32..96]
    )
}

impl Embedded {
    /// Starts the monitor (if `monitor`) and the platform for `trace`'s users.
    pub(crate) async fn start(trace: &Trace, monitor: bool) -> Result<Embedded> {
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!(
                "--embedded needs root (containers are cgroups, the monitor loads eBPF): run it with sudo"
            );
        }
        let dir = std::env::temp_dir().join(format!("faasload-embedded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut e = Embedded {
            platform: None,
            monitor: None,
            dir: dir.clone(),
            api_host: String::new(),
            query_socket: None,
            auths: Vec::new(),
            store_dir: None,
        };
        let notify = dir.join("notify.sock");
        if monitor {
            let query = dir.join("query.sock");
            e.monitor = Some(start_monitor(&dir, &notify, &query)?);
            wait_socket(&query, Duration::from_secs(30)).await?;
            e.query_socket = Some(query);
        }
        let mut cfg = PlatformConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            work_dir: dir.join("platform"),
            notify_socket: monitor.then_some(notify),
            ..PlatformConfig::default()
        };
        // A load injector's namespaces: generous limits (documented in the README).
        cfg.throttle.invocations_per_minute = 10_000_000;
        cfg.throttle.concurrent_invocations = 100_000;
        // The function suite's libraries and object store (functions/README.md): the
        // store is FAASLOAD_STORE_DIR, else the inputs the trace names, generated here.
        configure_platform(&mut cfg);
        if cfg.store_dir.is_none() {
            cfg.store_dir = faasload_inputs::suite::generated_store(trace, &dir)?;
        }
        // Each action is deployed with its trace's memory (original traces use up to GBs).
        let most = trace.functions.iter().map(|f| u64::from(f.memory_mb)).max();
        if let Some(m) = most.filter(|m| *m > cfg.limits.memory_max) {
            cfg.limits.memory_max = m;
            cfg.pool.user_memory_mb = cfg.pool.user_memory_mb.max(m);
        }
        let salt = faasload_os::clock::epoch_ns();
        for u in &trace.users {
            let auth = match &u.auth {
                Some(a) => a.clone(),
                None if u.namespace == "guest" => {
                    faasload_platform::config::NamespaceConfig::guest().auth
                }
                None => new_auth(&u.namespace, salt),
            };
            if !cfg.namespaces.iter().any(|n| n.name == u.namespace) {
                cfg.namespaces.push(NamespaceConfig {
                    name: u.namespace.clone(),
                    auth: auth.clone(),
                    invocations_per_minute: None,
                    concurrent_invocations: None,
                });
            }
            let auth = cfg
                .namespaces
                .iter()
                .find(|n| n.name == u.namespace)
                .map(|n| n.auth.clone())
                .unwrap_or(auth);
            e.auths.push(auth);
        }
        e.store_dir = cfg.store_dir.clone();
        // The first invoker id no other platform on this host holds (a crashed run's
        // leftovers under that name are cleaned by the platform on start).
        let mut id = 0;
        let handle = loop {
            cfg.pool.invoker_name = format!("wsk{id}");
            match faasload_platform::start(cfg.clone()).await {
                Err(err)
                    if id < MAX_INVOKER_ID
                        && matches!(
                            err.downcast_ref::<faasload_platform::LockError>(),
                            Some(faasload_platform::LockError::Busy { .. })
                        ) =>
                {
                    id += 1;
                }
                r => break r.context("starting the embedded platform")?,
            }
        };
        e.api_host = format!("http://{}", handle.addr());
        e.platform = Some(handle);
        Ok(e)
    }

    /// Stops the platform (containers and cgroups removed) and the monitor.
    pub(crate) async fn stop(mut self) -> Result<()> {
        let mut first: Option<anyhow::Error> = None;
        if let Some(p) = self.platform.take()
            && let Err(err) = p.shutdown().await
        {
            first = Some(err.context("stopping the embedded platform"));
        }
        if let Some(m) = self.monitor.take() {
            stop_child(m);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(m) = self.monitor.take() {
            stop_child(m);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_monitor(dir: &Path, notify: &Path, query: &Path) -> Result<Child> {
    let cfg = dir.join("monitor.yml");
    std::fs::write(
        &cfg,
        format!(
            "notify_socket: {}\nquery_socket: {}\n",
            notify.display(),
            query.display()
        ),
    )?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    // If this process dies without stopping it (SIGKILL), the monitor gets SIGTERM and
    // cleans up after itself. `start` runs on the thread that lives until exit.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.args(["monitor", "--config"])
        .arg(&cfg)
        .env(
            "FAASLOAD_LOG",
            std::env::var("FAASLOAD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .spawn()
        .context("starting the monitor")
}

async fn wait_socket(p: &Path, t: Duration) -> Result<()> {
    let deadline = Instant::now() + t;
    while tokio::net::UnixStream::connect(p).await.is_err() {
        if Instant::now() > deadline {
            bail!("the monitor did not open {} within {t:?}", p.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn stop_child(mut c: Child) {
    // SAFETY: signalling our own child by PID.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Points `cfg`'s runtimes at the suite's libraries when they are installed and the
/// runtimes are the defaults, and sets the store from `FAASLOAD_STORE_DIR` when the config
/// has none. Returns whether the suite was found.
pub(crate) fn configure_platform(cfg: &mut PlatformConfig) -> bool {
    if cfg.store_dir.is_none()
        && let Some(d) = std::env::var_os("FAASLOAD_STORE_DIR").filter(|d| !d.is_empty())
    {
        cfg.store_dir = Some(PathBuf::from(d));
    }
    let default = RuntimesConfig::default();
    if cfg.runtimes.python != default.python
        || !cfg.runtimes.python_path.is_empty()
        || !cfg.runtimes.node_path.is_empty()
    {
        return false;
    }
    match faasload_inputs::suite::SuitePaths::locate() {
        Some(s) => {
            cfg.runtimes.python = s.python;
            cfg.runtimes.python_path = s.python_path;
            cfg.runtimes.node_path = s.node_path;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::new_auth;

    #[test]
    fn generated_keys_look_like_openwhisk_keys() {
        let a = new_auth("alice", 1);
        let (uuid, key) = a.split_once(':').unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(key.len(), 64);
        assert_ne!(a, new_auth("bob", 1));
        assert_ne!(a, new_auth("alice", 2));
    }
}
