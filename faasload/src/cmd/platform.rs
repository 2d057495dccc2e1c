//! `faasload platform` command line: loads the configuration, starts the platform, and
//! on SIGINT/SIGTERM stops it cleanly (every container and cgroup removed).
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use faasload_platform::config::PlatformConfig;

/// Arguments of `faasload platform`.
#[derive(clap::Args, Debug)]
pub(crate) struct PlatformArgs {
    /// Configuration file (YAML); defaults apply without one.
    #[arg(long, short, env = "FAASLOAD_PLATFORM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address, overriding the configuration (loopback by default).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Working directory for containers, overriding the configuration.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Container backend, overriding the configuration (`process` or `docker`).
    #[arg(long, value_enum)]
    pub backend: Option<faasload_platform::config::BackendKind>,
    /// Docker daemon socket (`unix:///path`), overriding the configuration.
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<String>,
}

/// Runs the platform until interrupted.
pub(crate) fn run(a: PlatformArgs) -> anyhow::Result<()> {
    let mut cfg = match &a.config {
        Some(p) => PlatformConfig::load(p)?,
        None => PlatformConfig::default(),
    };
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(w) = a.work_dir {
        cfg.work_dir = w;
    }
    if let Some(b) = a.backend {
        cfg.backend = b;
    }
    if let Some(h) = a.docker_host {
        cfg.docker.host = h;
    }
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!(
            "the platform needs root (cgroups, namespaces, the action user): run it with sudo"
        );
    }
    let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
    rt.block_on(async move {
        let handle = faasload_platform::start(cfg).await?;
        println!("faasload platform listening on http://{}", handle.addr());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("SIGINT handler")?,
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: removing containers");
        handle.shutdown().await
    })
}
