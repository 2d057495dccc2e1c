//! Wires the monitor together: loads the kernel programs (or not, for the cgroupfs
//! backend), discovers existing containers, starts the sampler thread, the event reader,
//! the sockets and the metrics endpoint, and shuts everything down cleanly on
//! SIGINT/SIGTERM (programs detached, sockets removed).
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use super::config::{Backend, MonitorConfig};
use super::ebpf::Kernel;
use super::protocol::Socket;
use super::state::Monitor;
use super::{events, sampler, server};
use faasload_cgroup::Layout;

/// Runs the monitor until SIGINT or SIGTERM.
pub fn run(cfg: MonitorConfig) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("faasload-monitor")
        .build()?;
    rt.block_on(run_async(cfg))
}

async fn run_async(cfg: MonitorConfig) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("the monitor needs root (cgroupfs, eBPF); run it with sudo");
    }
    let layout = Layout::detect_with(cfg.cgroup_version).context("finding cgroup hierarchies")?;
    let (kernel, channels) = match cfg.backend {
        Backend::Ebpf => {
            let (k, c) = Kernel::load(&layout, cfg.bpf_stats)
                .context("eBPF backend (use --backend cgroupfs on hosts without BPF)")?;
            (Some(k), Some(c))
        }
        Backend::Cgroupfs => (None, None),
    };
    let notify = server::bind(
        &cfg.notify_socket,
        cfg.socket_mode,
        cfg.socket_group.as_deref(),
    )?;
    let query = server::bind(
        &cfg.query_socket,
        cfg.socket_mode,
        cfg.socket_group.as_deref(),
    )?;
    let metrics = match cfg.metrics_addr {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding metrics on {a}"))?,
        ),
        None => None,
    };
    let m = Arc::new(Monitor::new(cfg, layout, kernel)?);
    let n = m.rescan();
    tracing::info!(
        backend = %m.cfg.backend,
        cgroup = %m.layout.version(),
        containers = n,
        notify = %m.cfg.notify_socket.display(),
        query = %m.cfg.query_socket.display(),
        "monitor ready"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (m, stop) = (m.clone(), stop.clone());
        std::thread::Builder::new()
            .name("faasload-sampler".into())
            .spawn(move || sampler::run(m, stop))?
    };
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(ch) = channels {
        let mm = m.clone();
        tasks.spawn(async move { events::run(mm, ch.events).await });
        if let Some(l) = ch.logger {
            tasks.spawn(events::run_logger(l));
        }
    }
    tasks.spawn(super::attribution::run(m.clone()));
    {
        let mm = m.clone();
        let period = Duration::from_millis(m.cfg.rescan_ms.max(10));
        tasks.spawn(async move {
            let mut t = tokio::time::interval(period);
            loop {
                t.tick().await;
                let m2 = mm.clone();
                let _ = tokio::task::spawn_blocking(move || m2.rescan()).await;
            }
        });
    }
    let notify = Arc::new(notify);
    let query = Arc::new(query);
    {
        let (mm, l) = (m.clone(), notify.clone());
        tasks.spawn(async move {
            server::serve(mm, &l.listener, Socket::Notify).await;
            Ok(())
        });
        let (mm, l) = (m.clone(), query.clone());
        tasks.spawn(async move {
            server::serve(mm, &l.listener, Socket::Query).await;
            Ok(())
        });
    }
    if let Some(l) = metrics {
        tasks.spawn(super::metrics::serve(m.clone(), l));
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let reason = tokio::select! {
        _ = term.recv() => "SIGTERM".to_string(),
        _ = int.recv() => "SIGINT".to_string(),
        r = tasks.join_next() => format!("a task ended: {r:?}"),
    };
    tracing::info!("shutting down ({reason})");
    stop.store(true, Ordering::Relaxed);
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let _ = sampler.join();
    drop(notify);
    drop(query);
    // Dropping the last reference detaches and unloads the kernel programs.
    match Arc::try_unwrap(m) {
        Ok(m) => drop(m),
        Err(_) => tracing::warn!("monitor state still referenced at shutdown"),
    }
    tracing::info!("monitor stopped");
    Ok(())
}
