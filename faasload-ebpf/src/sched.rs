//! Scheduler programs: on-CPU time and switch counts per cgroup on `sched_switch`, plus
//! wake-ups and migrations. O(1) work per event, nothing sent to user space.
//!
//! CPU time is the scheduler's own accounting (`se.sum_exec_runtime`, the figure cgroup
//! cpuacct and `cpu.stat` sum), charged to the task's cgroup when the task is switched
//! out: the delta since the task was last switched out, remembered per thread. So a
//! missed or reordered event never moves time to the wrong cgroup; it is picked up at the
//! task's next switch. `CPU_STATE` tells user space who runs now, so a query can add the
//! slice in progress.
use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::btf_tracepoint, programs::BtfTracePointContext};
use faasload_common::{CpuState, counter};

use crate::cgroup::{task_cgroup, task_pid, task_runtime};
use crate::maps::{CPU_STATE, LAST_RUNTIME, count, stats_of};

#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    // TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next,
    //          unsigned int prev_state)
    let now = unsafe { bpf_ktime_get_ns() };
    let preempt: u64 = ctx.arg(0);
    let prev: *const u8 = ctx.arg(1);
    let next: *const u8 = ctx.arg(2);
    let prev_state: u64 = ctx.arg(3);
    count(counter::SWITCHES, 1);
    charge_prev(prev, preempt & 1 != 0 || prev_state as u32 == 0);

    // Remember who runs now on this CPU (for the slice in progress).
    if let Some(state) = CPU_STATE.get_ptr_mut(0) {
        // SAFETY: per-CPU slot of this CPU.
        let st: &mut CpuState = unsafe { &mut *state };
        st.last_switch_ns = now;
        st.cgroup = match unsafe { task_pid(next) } {
            Ok(0) => 0, // the idle task
            _ => unsafe { task_cgroup(next) }.unwrap_or(0),
        };
    }
    0
}

/// Charges the CPU time `prev` used since it was last switched out to its cgroup.
#[inline(always)]
fn charge_prev(prev: *const u8, involuntary: bool) {
    let (Ok(pid), Ok((sum, prev_sum)), Ok(cg)) = (
        unsafe { task_pid(prev) },
        unsafe { task_runtime(prev) },
        unsafe { task_cgroup(prev) },
    ) else {
        count(counter::READ_FAILED, 1);
        return;
    };
    if pid == 0 {
        return; // the idle task
    }
    // First time this thread is seen (new, or forgotten): charge the slice the scheduler
    // has just accounted since it picked the task.
    let delta = match unsafe { LAST_RUNTIME.get(&pid) } {
        Some(&last) if sum >= last => sum - last,
        _ => sum.saturating_sub(prev_sum),
    };
    let _ = LAST_RUNTIME.insert(&pid, &sum, 0);
    match stats_of(cg) {
        Some(s) => {
            // SAFETY: per-CPU value of this CPU.
            let s = unsafe { &mut *s };
            s.cpu_ns += delta;
            if involuntary {
                s.nivcsw += 1;
            } else {
                s.nvcsw += 1;
            }
        }
        None => count(counter::STATS_LOST_NS, delta),
    }
}

#[btf_tracepoint(function = "sched_wakeup")]
pub fn sched_wakeup(ctx: BtfTracePointContext) -> i32 {
    let p: *const u8 = ctx.arg(0);
    bump(p, |s| s.wakeups += 1);
    0
}

#[btf_tracepoint(function = "sched_migrate_task")]
pub fn sched_migrate_task(ctx: BtfTracePointContext) -> i32 {
    let p: *const u8 = ctx.arg(0);
    bump(p, |s| s.migrations += 1);
    0
}

/// Applies `f` to the counters of `task`'s cgroup, if it already has some (only cgroups
/// that ran are in the map, so a task that never ran creates nothing here).
#[inline(always)]
fn bump(task: *const u8, f: impl FnOnce(&mut faasload_common::CgroupStats)) {
    match unsafe { task_cgroup(task) } {
        Ok(id) if id != 0 => {
            if let Some(s) = crate::maps::CGROUP_STATS.get_ptr_mut(&id) {
                // SAFETY: per-CPU value of this CPU.
                f(unsafe { &mut *s });
            }
        }
        Ok(_) => {}
        Err(_) => count(counter::READ_FAILED, 1),
    }
}
