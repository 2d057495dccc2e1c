//! Scheduler programs: on-CPU time and switch counts per cgroup on `sched_switch`, plus
//! wake-ups and migrations. O(1) work per event, nothing sent to user space.
use aya_ebpf::{
    helpers::bpf_ktime_get_ns, macros::btf_tracepoint, programs::BtfTracePointContext,
};
use faasload_common::{counter, CpuState};

use crate::cgroup::task_cgroup;
use crate::maps::{count, stats_of, CPU_STATE};

#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    // TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next,
    //          unsigned int prev_state)
    let now = unsafe { bpf_ktime_get_ns() };
    let preempt: u64 = ctx.arg(0);
    let next: *const u8 = ctx.arg(2);
    let prev_state: u64 = ctx.arg(3);
    let Some(state) = CPU_STATE.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: per-CPU slot of this CPU.
    let st: &mut CpuState = unsafe { &mut *state };
    count(counter::SWITCHES, 1);

    // Charge the slice that just ended to the cgroup of the task switched in last time.
    if st.cgroup != 0 && st.last_switch_ns != 0 && now > st.last_switch_ns {
        let delta = now - st.last_switch_ns;
        match stats_of(st.cgroup) {
            Some(s) => {
                // SAFETY: per-CPU value of this CPU.
                let s = unsafe { &mut *s };
                s.cpu_ns += delta;
                if preempt & 1 != 0 || prev_state as u32 == 0 {
                    s.nivcsw += 1;
                } else {
                    s.nvcsw += 1;
                }
            }
            None => count(counter::STATS_LOST_NS, delta),
        }
    }

    // Remember who runs now. The idle task (pid 0) is not charged.
    st.last_switch_ns = now;
    st.cgroup = match unsafe { task_cgroup(next) } {
        Ok(id) => id,
        Err(_) => {
            count(counter::READ_FAILED, 1);
            0
        }
    };
    0
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
