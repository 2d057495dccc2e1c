//! Consumes the kernel's ring buffer of rare events: cgroup mkdir/rmdir (containers appear
//! and go), freeze/unfreeze (cgroup v2 pause/resume), process exec/exit and OOM victims.
//! Also drives aya-log's buffer so kernel log lines reach `tracing`.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use aya::maps::{MapData, RingBuf};
use faasload_common::event_kind;
use tokio::io::unix::AsyncFd;

use super::ebpf::{cpu_hierarchy_id, decode, event_path, memory_hierarchy_id};
use super::state::Monitor;

/// Reads events until the task is cancelled.
pub(crate) async fn run(m: Arc<Monitor>, ring: RingBuf<MapData>) -> anyhow::Result<()> {
    let cpu_h = cpu_hierarchy_id(&m.layout);
    let mem_h = memory_hierarchy_id(&m.layout);
    // SAFETY: the ring buffer owns its fd for as long as the AsyncFd lives.
    let mut fd = unsafe { AsyncFd::register(ring) }.map_err(|e| anyhow::anyhow!("{e}"))?;
    loop {
        let mut guard = fd.readable_mut().await?;
        let ring = guard.get_inner_mut();
        while let Some(item) = ring.next() {
            m.stats.events.fetch_add(1, Ordering::Relaxed);
            let Some(ev) = decode(&item) else {
                m.stats.events_undecodable.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            drop(item);
            handle(&m, cpu_h, mem_h, &ev);
        }
        guard.clear_ready();
    }
}

fn handle(m: &Monitor, cpu_h: u32, mem_h: u32, ev: &faasload_common::Event) {
    match ev.kind {
        // On v1 a container's memory directory appears after its cpu one (each
        // hierarchy is made in turn): its memory cgroup is then told to the kernel.
        event_kind::CGROUP_MKDIR if ev.hierarchy == mem_h && mem_h != 0 && mem_h != cpu_h => {
            let rel = event_path(ev).trim_start_matches('/');
            if let Some(f) = m.matcher.matches(rel) {
                m.memory_cgroup_appeared(&f.id, ev.cgroup);
            }
        }
        event_kind::CGROUP_MKDIR if ev.hierarchy == cpu_h => {
            let path = event_path(ev);
            let rel = path.trim_start_matches('/');
            if let Some(f) = m.matcher.matches(rel) {
                m.add(&f, &[]);
            } else {
                m.add_child(Path::new(rel), ev.cgroup);
            }
        }
        event_kind::CGROUP_RMDIR if ev.hierarchy == cpu_h => {
            if let Some(f) = m.matcher.matches(event_path(ev).trim_start_matches('/')) {
                m.remove(&f.id);
            }
        }
        event_kind::CGROUP_FREEZE | event_kind::CGROUP_UNFREEZE => {
            if let Some(c) = m.by_cgroup(ev.cgroup) {
                m.set_paused(&c.id, ev.kind == event_kind::CGROUP_FREEZE);
            }
        }
        event_kind::PROC_EXEC | event_kind::PROC_EXIT => {
            if let Some(c) = m.by_cgroup(ev.cgroup) {
                tracing::debug!(container = %c.id, pid = ev.tgid, comm = event_path(ev),
                    "process {}", if ev.kind == event_kind::PROC_EXEC { "exec" } else { "exit" });
            }
        }
        event_kind::OOM_VICTIM => {
            let who = m
                .by_cgroup(ev.cgroup)
                .map(|c| c.id.clone())
                .unwrap_or_default();
            tracing::warn!(container = %who, cgroup = ev.cgroup, "OOM killer chose a victim");
        }
        _ => {}
    }
}

/// Forwards aya-log records from the kernel programs into `tracing`.
pub(crate) async fn run_logger(
    logger: aya_log::EbpfLogger<&'static dyn log::Log>,
) -> anyhow::Result<()> {
    // SAFETY: the logger owns its ring buffer fd for as long as the AsyncFd lives.
    let mut fd = unsafe { AsyncFd::register(logger) }.map_err(|e| anyhow::anyhow!("{e}"))?;
    loop {
        let mut guard = fd.readable_mut().await?;
        guard.get_inner_mut().flush();
        guard.clear_ready();
    }
}
