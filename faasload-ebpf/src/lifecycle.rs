//! Rare events through the ring buffer: cgroup mkdir/rmdir/freeze/unfreeze, process exec
//! and exit in watched cgroups, OOM victims. Every failed reserve is counted.
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel_str_bytes},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use aya_log_ebpf::info;
use faasload_common::{Event, MEM_UNSET, SLOTS, counter, event_kind};

use crate::cgroup::{CPU_HIERARCHY, cgroup_id, find_slot, g, hierarchy_id, task_cgroup};
use crate::maps::{CACHE_GEN, EVENTS, SLOT_MEM, count};
use crate::sched::{rv, wv};

/// Reserves an event, fills it with `fill`, and submits it.
#[inline(always)]
fn emit(kind: u32, fill: impl FnOnce(&mut Event)) {
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        count(counter::EVENTS_DROPPED, 1);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: the reserved slot is ours until submitted.
    unsafe {
        (*ev).kind = kind;
        (*ev).hierarchy = 0;
        (*ev).cgroup = 0;
        (*ev).ts_ns = bpf_ktime_get_ns();
        (*ev).pid = 0;
        (*ev).tgid = 0;
        (*ev).path[0] = 0;
        fill(&mut *ev);
    }
    entry.submit(0);
    count(counter::EVENTS_SENT, 1);
}

/// `cgroup_event` class: TP_PROTO(struct cgroup *cgrp, const char *path).
#[inline(always)]
fn cgroup_event(ctx: &BtfTracePointContext, kind: u32) {
    let cgrp: *const u8 = ctx.arg(0);
    let path: *const u8 = ctx.arg(1);
    emit(kind, |ev| unsafe {
        ev.cgroup = cgroup_id(cgrp);
        ev.hierarchy = hierarchy_id(cgrp);
        if bpf_probe_read_kernel_str_bytes(path, &mut ev.path).is_err() {
            ev.path[0] = 0;
        }
    });
}

/// A cgroup of the CPU hierarchy appears or goes: addresses of its objects (css, task
/// group run queues) may be reused, so the key cache's entries are invalidated.
#[inline(always)]
fn new_cache_generation(cgrp: *const u8) {
    // SAFETY: typed kernel pointer.
    if u64::from(unsafe { hierarchy_id(cgrp) }) != g(&CPU_HIERARCHY) {
        return;
    }
    if let Some(p) = CACHE_GEN.get_ptr_mut(0) {
        // SAFETY: an element of the array map. mkdir and rmdir run under the kernel's
        // cgroup mutex, so bumps never race each other.
        crate::sched::inc(unsafe { &mut *p }, 1);
    }
}

#[btf_tracepoint(function = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: BtfTracePointContext) -> i32 {
    new_cache_generation(ctx.arg(0));
    cgroup_event(&ctx, event_kind::CGROUP_MKDIR);
    0
}

#[btf_tracepoint(function = "cgroup_rmdir")]
pub fn cgroup_rmdir(ctx: BtfTracePointContext) -> i32 {
    let cgrp: *const u8 = ctx.arg(0);
    new_cache_generation(cgrp);
    // A removed memory cgroup is no longer read by `mem_sample` (its memory is freed
    // some time after).
    // SAFETY: typed kernel pointer.
    let id = unsafe { cgroup_id(cgrp) };
    let mut slot = 0u32;
    while slot < SLOTS {
        if let Some(m) = SLOT_MEM.get_ptr_mut(slot) {
            // SAFETY: an element of the array map.
            let m = unsafe { &mut *m };
            if id != 0 && rv(&m.mem_id) == id {
                wv(&mut m.css, 0);
                wv(&mut m.usage_pages, MEM_UNSET);
            }
        }
        slot += 1;
    }
    cgroup_event(&ctx, event_kind::CGROUP_RMDIR);
    0
}

#[btf_tracepoint(function = "cgroup_freeze")]
pub fn cgroup_freeze(ctx: BtfTracePointContext) -> i32 {
    cgroup_event(&ctx, event_kind::CGROUP_FREEZE);
    0
}

#[btf_tracepoint(function = "cgroup_unfreeze")]
pub fn cgroup_unfreeze(ctx: BtfTracePointContext) -> i32 {
    cgroup_event(&ctx, event_kind::CGROUP_UNFREEZE);
    0
}

/// Emits a process event if `task`'s cgroup is watched.
#[inline(always)]
fn proc_event(task: *const u8, kind: u32) {
    // SAFETY: the tracepoint's typed task pointer.
    let id = unsafe { task_cgroup(task) };
    if find_slot(id) == faasload_common::NO_SLOT {
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    emit(kind, |ev| {
        ev.cgroup = id;
        ev.pid = pid_tgid as u32;
        ev.tgid = (pid_tgid >> 32) as u32;
        if let Ok(comm) = aya_ebpf::helpers::bpf_get_current_comm() {
            let n = comm.len().min(ev.path.len());
            ev.path[..n].copy_from_slice(&comm[..n]);
        }
    });
}

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    proc_event(ctx.arg(0), event_kind::PROC_EXEC);
    0
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    // The thread's last slice is charged at its final switch-out, like any other.
    proc_event(ctx.arg(0), event_kind::PROC_EXIT);
    0
}

#[btf_tracepoint(function = "mark_victim")]
pub fn mark_victim(ctx: BtfTracePointContext) -> i32 {
    // TP_PROTO(struct task_struct *task, uid_t uid): the victim's cgroup; the pid comes
    // from user space's view of the cgroup (the kernel side has no pid offset).
    let task: *const u8 = ctx.arg(0);
    // SAFETY: the tracepoint's typed task pointer.
    let id = unsafe { task_cgroup(task) };
    info!(&ctx, "oom victim in cgroup {}", id);
    emit(event_kind::OOM_VICTIM, |ev| ev.cgroup = id);
    0
}
