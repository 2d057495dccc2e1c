//! Starting and stopping the platform: the shared state every handler sees, the set-up
//! (cgroup layout, invoker lock, stale containers of this invoker and of dead ones
//! removed, action user, launchers,
//! monitor notifier, container pool), the HTTP server on its loopback address, and a
//! clean shutdown that removes every container and cgroup. [`start`] is the in-process
//! entry point (tests, the loader); `faasload platform` wraps it.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::activations::ActivationStore;
use super::backend::Backend;
use super::config::{NamespaceConfig, PlatformConfig};
use super::container::ProcessBackend;
use super::entities::Entities;
use super::notify::Notifier;
use super::pool::Pool;
use super::runtime::Runtimes;
use super::sandbox;
use super::throttle::Throttle;
use faasload_cgroup::{Controller, Layout};

/// The state shared by every request.
pub struct Platform {
    pub cfg: PlatformConfig,
    /// `uuid:key` -> namespace.
    pub keys: HashMap<String, NamespaceConfig>,
    pub entities: Entities,
    pub activations: ActivationStore,
    pub throttle: Throttle,
    pub pool: Arc<Pool>,
    pub backend: Arc<Backend>,
    pub notifier: Notifier,
}

impl Platform {
    /// The `uuid:key` of namespace `ns`.
    pub fn api_key(&self, ns: &str) -> Option<&str> {
        self.cfg
            .namespaces
            .iter()
            .find(|n| n.name == ns)
            .map(|n| n.auth.as_str())
    }
}

/// A running platform.
pub struct PlatformHandle {
    addr: SocketAddr,
    platform: Arc<Platform>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Held while it runs: its invoker's cgroups and containers are its own.
    _lock: super::invoker_lock::InvokerLock,
}

impl PlatformHandle {
    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (pool inspection in tests).
    pub fn platform(&self) -> &Arc<Platform> {
        &self.platform
    }

    /// Stops serving, then destroys every container and cgroup.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.platform.pool.shutdown().await;
        if let Ok(layout) = Layout::detect_with(self.platform.cfg.cgroup_version) {
            faasload_cgroup::prune_empty(&layout, Path::new("platform"));
        }
        (&mut self.server)
            .await
            .context("server task")?
            .context("server")?;
        Ok(())
    }
}

/// The environment given to actions for their libraries (`PYTHONPATH`, `NODE_PATH`) and
/// object store (`FAASLOAD_STORE_DIR`), and the directories left writable in the sandbox.
/// Relative paths are taken from the current directory. The store directory is created
/// when missing and made writable by everyone with the sticky bit (like /tmp), so that
/// the action user can create its output containers.
/// Environment variables for actions, and directories left writable in the sandbox.
type ActionEnv = (Vec<(String, String)>, Vec<PathBuf>);

fn action_env(cfg: &PlatformConfig) -> anyhow::Result<ActionEnv> {
    let join = |dirs: &[PathBuf]| -> anyhow::Result<String> {
        let abs: Vec<String> = dirs
            .iter()
            .map(|d| std::path::absolute(d).map(|d| d.display().to_string()))
            .collect::<std::io::Result<_>>()?;
        Ok(abs.join(":"))
    };
    let mut env = Vec::new();
    if !cfg.runtimes.python_path.is_empty() {
        env.push(("PYTHONPATH".into(), join(&cfg.runtimes.python_path)?));
    }
    if !cfg.runtimes.node_path.is_empty() {
        env.push(("NODE_PATH".into(), join(&cfg.runtimes.node_path)?));
    }
    let mut writable = Vec::new();
    if let Some(store) = &cfg.store_dir {
        std::fs::create_dir_all(store).with_context(|| format!("store_dir {}", store.display()))?;
        let store = store
            .canonicalize()
            .with_context(|| format!("store_dir {}", store.display()))?;
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o1777))
            .with_context(|| format!("store_dir {}: chmod 1777", store.display()))?;
        env.push(("FAASLOAD_STORE_DIR".into(), store.display().to_string()));
        writable.push(store);
    }
    Ok((env, writable))
}

/// Sets everything up and starts serving (see the module documentation).
pub async fn start(cfg: PlatformConfig) -> anyhow::Result<PlatformHandle> {
    cfg.validate()?;
    let layout = Layout::detect_with(cfg.cgroup_version).context("cgroup layout")?;
    // Only with the invoker's lock are its leftover cgroups (a platform of ours that
    // died) ours to remove: a live platform with the same name keeps its own.
    let lock = super::invoker_lock::acquire(&cfg.pool.invoker_name)?;
    remove_stale(&layout, &cfg.pool.invoker_name);
    remove_dead_invokers(&layout);
    let user = sandbox::ensure_user(&cfg.sandbox.user, cfg.sandbox.create_user)?;
    make_dir(&cfg.work_dir)?;
    let runtimes = Runtimes::install(&cfg.runtimes, &cfg.work_dir.join("runtimes"))
        .with_context(|| format!("install launchers in {}", cfg.work_dir.display()))?;
    let containers_root = cfg.work_dir.join("containers");
    make_dir(&containers_root)?;
    remove_stale_dirs(&containers_root, &cfg.pool.invoker_name);
    let (extra_env, writable) = action_env(&cfg)?;
    let activations = ActivationStore::open(
        cfg.activations.max_records,
        cfg.activations.persist.as_deref(),
    )?;
    let notifier = match &cfg.notify_socket {
        Some(p) => Notifier::start(p.clone()),
        None => Notifier::disabled(),
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("bind {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let process = ProcessBackend {
        layout,
        runtimes,
        user,
        containers_root,
        namespaces: cfg.sandbox.namespaces,
        user_memory_mb: cfg.pool.user_memory_mb,
        pids_max: cfg.pool.pids_max,
        result_max: cfg.limits.payload_max + 1,
        base_env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ("__OW_API_HOST".into(), format!("http://{addr}")),
        ]
        .into_iter()
        .chain(extra_env)
        .collect(),
        writable,
    };
    let backend = Arc::new(match cfg.backend {
        super::config::BackendKind::Process => Backend::Process(Arc::new(process)),
        super::config::BackendKind::Docker => Backend::Docker(Arc::new(
            super::backend::docker::DockerBackend::connect(
                &cfg.docker,
                &cfg.pool,
                format!("http://{addr}"),
                cfg.limits.payload_max + 1,
            )
            .await
            .context("docker backend")?,
        )),
    });
    tracing::info!("container backend: {}", backend.name());
    let pool = Pool::new(cfg.pool.clone(), backend.clone(), notifier.clone());
    pool.start();
    let keys = cfg
        .namespaces
        .iter()
        .map(|n| (n.auth.clone(), n.clone()))
        .collect();
    let platform = Arc::new(Platform {
        cfg,
        keys,
        entities: Entities::default(),
        activations,
        throttle: Throttle::default(),
        pool,
        backend,
        notifier,
    });
    let app = super::rest::router(platform.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });
    tracing::info!("platform listening on http://{addr}");
    Ok(PlatformHandle {
        addr,
        platform,
        stop: Some(stop_tx),
        server,
        _lock: lock,
    })
}

fn make_dir(p: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("create {}", p.display()))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", p.display()))
}

/// Names of the container cgroups under faasload's `platform/` (cpu hierarchy).
fn container_cgroups(layout: &Layout) -> Vec<String> {
    let Some(dir) = layout.dir(
        Controller::Cpu,
        &Path::new(faasload_cgroup::SUBTREE).join("platform"),
    ) else {
        return vec![];
    };
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return vec![];
    };
    rd.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Removes cgroups left by an earlier run of this invoker (`platform/<invoker>_*`).
fn remove_stale(layout: &Layout, invoker: &str) {
    let prefix = format!("{invoker}_");
    for name in container_cgroups(layout) {
        if !name.starts_with(&prefix) {
            continue;
        }
        tracing::warn!("removing stale container cgroup {name}");
        let rel = Path::new("platform").join(&name);
        // Its processes are containers of a platform of ours that died (SIGKILL): a
        // paused one cannot even take the SIGKILL its parent's death sent until it is
        // thawed, so thaw and empty it first.
        match faasload_cgroup::OwnedCgroup::create(layout, &rel) {
            Ok(cg) => {
                if let Err(e) = cg.kill_all(Duration::from_secs(5)) {
                    tracing::warn!("emptying stale cgroup {name}: {e}");
                }
                drop(cg); // removes it when it has no child cgroups
            }
            Err(e) => tracing::warn!("stale cgroup {name}: {e}"),
        }
        if let Err(e) = faasload_cgroup::remove_subtree(layout, &rel) {
            tracing::warn!("{e}");
        }
    }
}

/// Removes the cgroups of every other invoker whose lock is free: what platforms of
/// ours that died (SIGKILL) left behind under another invoker name.
fn remove_dead_invokers(layout: &Layout) {
    let mut invokers: Vec<String> = container_cgroups(layout)
        .into_iter()
        .filter_map(|name| name.split_once('_').map(|(inv, _)| inv.to_string()))
        .collect();
    invokers.sort();
    invokers.dedup();
    for inv in invokers {
        // Held by a live platform: its cgroups are its own.
        if let Ok(_held) = super::invoker_lock::acquire(&inv) {
            remove_stale(layout, &inv);
        }
    }
}

fn remove_stale_dirs(root: &Path, invoker: &str) {
    let prefix = format!("{invoker}_");
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
