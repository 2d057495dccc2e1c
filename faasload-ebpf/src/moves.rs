//! A running task moved to another cgroup: its slice is split at the move.
//!
//! `cgroup:cgroup_attach_task` fires after the kernel has moved the task (and, with the
//! thread-group flag, all its threads) and, for the `cpu` controller, after
//! `sched_move_task` brought the task's `sum_exec_runtime` up to the move. For every CPU
//! whose recorded task is one of the moved threads, this program publishes a split
//! (`sum_exec_runtime` and time at the move, the new slot) in that CPU's mailbox; the
//! CPU's own switch program applies it at the task's switch-out (so only the owning CPU
//! ever charges its row, without atomics), and user space applies it to the slice in
//! progress. Attaches run one at a time (under the kernel's cgroup mutex), so mailboxes
//! have a single writer. A switch-out racing with this program keeps the whole slice in
//! the old cgroup: the error is bounded by this program's own run time.
//!
//! If the moved leader runs but no CPU has it recorded (its switch-in was not traced),
//! the split goes to the mailbox of the CPU it is on with base `ADOPTED`: its switch-out
//! charges the parts after the move (the part before is unknown: lost, not misattributed).
//!
//! The split point is the task's `sum_exec_runtime` read here: with the `cpu` controller
//! (v1, or v2 with it enabled) `sched_move_task` has just brought it up to the move;
//! without it (v2 without the `cpu` controller) it is as of the task's last tick, which
//! is also where the kernel's own counters split the slice (they charge time not yet
//! accounted to the cgroup the task is in when it is). One difference remains: on v2 with
//! the `cpu` controller the kernel charges the part since the last tick (at most one
//! tick) to the new cgroup, the monitor to the old one, where it ran. The test machine
//! (v1, `cpu` hierarchy written first) agrees to the nanosecond (tests/monitor.rs,
//! `moves_charge_the_cgroup_moved_into_*`).
//!
//! Without this, the time a moved task ran in its new cgroup until its next switch-out
//! stayed charged to the old one (and the old design charged the old cgroup's part of
//! the slice to the new one).
use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use faasload_common::{ADOPTED, CpuState, MAX_CPUS, MAX_SPLITS, counter};

use crate::cgroup::{
    CPU_HIERARCHY, NR_CPUS, OFF_SE_SUM, OFF_TASK_CPU, OFF_TASK_ON_CPU, OFF_TASK_SE, OFF_TASK_TGID,
    cgroup_id, find_slot, g, hierarchy_id, load,
};
use crate::maps::{CPU_STATE, count};
use crate::sched::{inc, rv, wv};

#[btf_tracepoint(function = "cgroup_attach_task")]
pub fn cgroup_attach_task(ctx: BtfTracePointContext) -> i32 {
    // TP_PROTO(struct cgroup *dst_cgrp, const char *path, struct task_struct *task,
    //          bool threadgroup)
    let dst: *const u8 = ctx.arg(0);
    let task: *const u8 = ctx.arg(2);
    let threadgroup: u64 = ctx.arg(3);
    // SAFETY: typed kernel pointers.
    if u64::from(unsafe { hierarchy_id(dst) }) != g(&CPU_HIERARCHY) {
        return 0; // another v1 hierarchy (or v2 on a v1 host): CPU attribution unchanged
    }
    let new_slot = find_slot(unsafe { cgroup_id(dst) });
    let tgid: i32 = unsafe { load(task, g(&OFF_TASK_TGID)) };
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    let n = g(&NR_CPUS);
    let mut cpu = 0u32;
    let mut recorded = false;
    while cpu < MAX_CPUS {
        if u64::from(cpu) >= n {
            break;
        }
        recorded |= split_on(cpu, task as u64, tgid, threadgroup & 1 != 0, new_slot, now);
        cpu += 1;
    }
    if !recorded && g(&OFF_TASK_ON_CPU) != 0 {
        // SAFETY: typed kernel pointer.
        let (on_cpu, cpu, sum) = unsafe {
            (
                load::<i32>(task, g(&OFF_TASK_ON_CPU)),
                load::<u32>(task, g(&OFF_TASK_CPU)),
                load::<u64>(task, g(&OFF_TASK_SE) + g(&OFF_SE_SUM)),
            )
        };
        if on_cpu != 0 && u64::from(cpu) < n {
            adopt_on(cpu, task as u64, sum, new_slot, now);
        }
    }
    0
}

/// The leader runs on `cpu` but its switch-in was not seen there (a switch the kernel
/// did not trace): publishes the split with base [`ADOPTED`], so its switch-out charges
/// the parts after this move (the part before is unknown: lost, not misattributed).
#[inline(always)]
fn adopt_on(cpu: u32, task: u64, sum: u64, new_slot: u32, now: u64) {
    let Some(st) = CPU_STATE.get_ptr_mut(cpu) else {
        return;
    };
    // SAFETY: an element of the array map; its mailbox belongs to this program.
    let st = unsafe { &mut *st };
    let pending = rv(&st.mbox.generation) != rv(&st.mbox_seen)
        && rv(&st.mbox.task) == task
        && rv(&st.mbox.base) == ADOPTED;
    let used = if pending {
        (rv(&st.mbox.count) as usize).min(MAX_SPLITS)
    } else {
        0
    };
    if !pending {
        wv(&mut st.mbox.task, task);
        wv(&mut st.mbox.base, ADOPTED);
    }
    publish(st, used, sum, now, new_slot);
}

/// Publishes a split on `cpu` if the task recorded there is `task` (or one of its
/// threads). Returns whether `task` itself is recorded there.
#[inline(always)]
fn split_on(cpu: u32, task: u64, tgid: i32, threadgroup: bool, new_slot: u32, now: u64) -> bool {
    let Some(st) = CPU_STATE.get_ptr_mut(cpu) else {
        return false;
    };
    // SAFETY: an element of the array map; its first line belongs to `cpu`'s switch
    // program (read only here), its mailbox to this program.
    let st = unsafe { &mut *st };
    let seq = rv(&st.seq);
    let t = rv(&st.task);
    if seq & 1 == 1 {
        // Switching right now: the new slice starts in the new cgroup.
        return t == task;
    }
    if t == 0 {
        return false;
    }
    if t != task {
        if !threadgroup {
            return false;
        }
        let tg = (t + g(&OFF_TASK_TGID)) as *const i32;
        // SAFETY: bpf_probe_read_kernel validates the address.
        match unsafe { bpf_probe_read_kernel(tg) } {
            Ok(v) if v == tgid => {}
            Ok(_) => return false,
            Err(_) => {
                count(counter::READ_FAILED, 1);
                return false;
            }
        }
    }
    let leader = t == task;
    let base = rv(&st.start_sum);
    let pending = rv(&st.mbox.generation) != rv(&st.mbox_seen)
        && rv(&st.mbox.task) == t
        && rv(&st.mbox.base) == base;
    let used = if pending {
        (rv(&st.mbox.count) as usize).min(MAX_SPLITS)
    } else {
        0
    };
    let current = match used.checked_sub(1).and_then(|i| st.mbox.splits.get(i)) {
        Some(sp) => rv(&sp.slot),
        None => rv(&st.slot),
    };
    if current == new_slot {
        return leader;
    }
    let sum_at = (t + g(&OFF_TASK_SE) + g(&OFF_SE_SUM)) as *const u64;
    // SAFETY: bpf_probe_read_kernel validates the address.
    let Ok(sum) = (unsafe { bpf_probe_read_kernel(sum_at) }) else {
        count(counter::READ_FAILED, 1);
        return leader;
    };
    if rv(&st.seq) != seq {
        return leader; // it switched meanwhile: that switch charged the slice
    }
    if !pending {
        wv(&mut st.mbox.task, t);
        wv(&mut st.mbox.base, base);
    }
    publish(st, used, sum, now, new_slot);
    leader
}

/// Appends split (`sum`, `now`, `new_slot`) after the `used` ones and publishes it.
#[inline(always)]
fn publish(st: &mut CpuState, used: usize, sum: u64, now: u64, new_slot: u32) {
    if let Some(sp) = st.mbox.splits.get_mut(used) {
        wv(&mut sp.sum, sum);
        wv(&mut sp.ns, now);
        wv(&mut sp.slot, new_slot);
        wv(&mut st.mbox.count, used as u32 + 1);
    } else {
        if let Some(last) = st.mbox.splits.last_mut() {
            wv(&mut last.slot, new_slot);
        }
        count(counter::MOVES_OVERFLOW, 1);
    }
    // Published last: the owning CPU reads the generation first.
    inc(&mut st.mbox.generation, 1);
    count(counter::MOVES_SPLIT, 1);
}
