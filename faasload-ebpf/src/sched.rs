//! Scheduler programs: on-CPU time and switch counts per watched cgroup on
//! `sched_switch`, plus wake-ups and migrations, and `mem_sample`, the per-tick memory
//! reader. O(1) work per event, no map update that needs a lock or an allocation,
//! nothing sent to user space.
//!
//! CPU time is the scheduler's own accounting (`se.sum_exec_runtime`, the figure cgroup
//! cpuacct and `cpu.stat` sum). At switch-in the CPU's [`CpuState`] records the task, its
//! cgroup's slot, its `sum_exec_runtime` and the run queue's clock; at its switch-out the
//! difference of the sums is exactly the slice that just ended (the kernel has run
//! `update_curr` for it before the tracepoint), charged to the slot in this CPU's row of
//! `SLOT_STATS` (plain adds: each CPU owns its row). Unlike `prev_sum_exec_runtime`, the
//! recorded start is right for every scheduling class (real-time and sched_ext tasks
//! never update that field). The slot comes from the CPU's key cache (see
//! [`crate::cgroup`]); a task of a cgroup that is not watched costs that cache lookup at
//! switch-in and a compare at switch-out.
//!
//! What this trades: the start of a slice is remembered per CPU, not per task, so it
//! relies on seeing every switch. Some kernels do not trace every switch: the test
//! machine's does not trace ~0.3 % of them (those involving its VM agent's threads).
//! What is done about it: a switch-out whose switch-in was not seen is charged from the
//! scheduler's own start of the slice (`prev_sum_exec_runtime`, exact for normal,
//! fair-class tasks; a real-time task's slice is counted in `LOST_NS`, never charged to
//! another cgroup); the recorded task that was switched out unseen is charged at the
//! CPU's next traced switch from its own `sum_exec_runtime`/`prev_sum_exec_runtime`
//! (`close_unseen`); `mem_sample`, run at each tick, notes CPUs whose recorded task no
//! longer runs there, so user space stops counting its slice as in progress; and a task
//! moved while running unrecorded gets its splits anyway (`moves.rs`, `ADOPTED`). What
//! remains: a slice both started and ended unseen is charged only if its task is of the
//! fair class, and while it runs it is not seen as in progress. Keeping "nothing lost"
//! needs per-task state written at every switch-out: measured on the test machine (100
//! busy containers, paired runs of both programs on the same switches), a hash map
//! keyed by task updated at each switch-out of a watched task adds 270-320 ns per
//! `sched_switch` run (to ~400 ns); the previous per-thread LRU hash took 1.3-1.5 µs.
//! Task-local storage would be cheaper, but aya 0.14 cannot create the BTF-described
//! map it needs.
//!
//! Memory: the switch program only learns, once per container, where its memory cgroup
//! is (when a CPU's key cache first sees one of its tasks); `mem_sample` reads every
//! listed container's page counter when user space runs it, once per tick (~3-4 µs for
//! 100 containers). Copying the page counter at every switch-out instead (walking the
//! task's css to its cgroup id to check it) cost ~300 ns more per switch at 100 busy
//! containers, grew with the switch rate rather than the tick rate, and went stale while
//! a task ran without a switch.
use aya_ebpf::{
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{btf_tracepoint, raw_tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext},
};
use faasload_common::{
    ADOPTED, CAL_PERIOD_NS, CpuState, MAX_CPUS, NO_SLOT, REGION_SWITCH, REGION_WAKEUP, SLOTS,
    counter,
};

use crate::cgroup::{
    CLOCK_FROM_RQ, MEMORY_SUBSYS_ID, NR_CPUS, OFF_CSS_CGROUP, OFF_CSS_MEMCG_USAGE, OFF_SE_PREV_SUM,
    OFF_SE_SUM, OFF_TASK_CPU, OFF_TASK_ON_CPU, OFF_TASK_POLICY, OFF_TASK_PRIO, OFF_TASK_SE,
    cgroup_id, find_slot, g, load, rq_clock, task_cgroup, task_css, task_prev_sum,
    task_slot_cached, task_sum,
};
use crate::maps::{CPU_STATE, MEM_LIST, SLOT_MEM, count, stats_at};

/// Volatile read (fields other CPUs or user space read or write concurrently).
#[inline(always)]
pub fn rv<T: Copy>(p: &T) -> T {
    // SAFETY: a valid reference.
    unsafe { core::ptr::read_volatile(p) }
}

/// Volatile write, kept in program order with the other volatile accesses.
#[inline(always)]
pub fn wv<T: Copy>(p: &mut T, v: T) {
    // SAFETY: a valid reference.
    unsafe { core::ptr::write_volatile(p, v) }
}

/// Adds `n` to a counter (volatile read and write).
#[inline(always)]
pub fn inc(p: &mut u64, n: u64) {
    let v = rv(p);
    wv(p, v.wrapping_add(n));
}

#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    // TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next,
    //          unsigned int prev_state)
    let preempt: u64 = ctx.arg(0);
    let prev: *const u8 = ctx.arg(1);
    let next: *const u8 = ctx.arg(2);
    let prev_state: u64 = ctx.arg(3);
    // SAFETY: helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(st) = CPU_STATE.get_ptr_mut(cpu) else {
        return 0;
    };
    // SAFETY: this CPU's entry; only this CPU's switch program writes its first line.
    let st: &mut CpuState = unsafe { &mut *st };
    let seq = rv(&st.seq);
    wv(&mut st.seq, seq + 1);
    inc(&mut st.switches, 1);

    let involuntary = preempt & 1 != 0 || prev_state as u32 == 0;
    let adopted = adopted_out(st, cpu, prev, involuntary);
    let recorded = rv(&st.task);
    if recorded == prev as u64 {
        switch_out(st, cpu, prev, involuntary);
    } else {
        if recorded != 0 {
            inc(&mut st.unmatched, 1);
            close_unseen(st, cpu, recorded);
        }
        if !adopted {
            unmatched(cpu, prev, involuntary);
        }
    }

    // SAFETY: the tracepoint's typed task pointer.
    let slot = unsafe {
        task_slot_cached(next, cpu, REGION_SWITCH, |slot| {
            if slot != NO_SLOT {
                learn_memory(next, slot);
            }
        })
    };
    wv(&mut st.task, next as u64);
    wv(&mut st.slot, slot);
    wv(&mut st.start_sum, unsafe { task_sum(next) });
    if slot != NO_SLOT {
        stamp(st, next);
    }
    wv(&mut st.seq, seq + 2);
    0
}

/// Records when `next` was switched in: the run queue's clock, with a CLOCK_MONOTONIC
/// reading to convert it every `CAL_PERIOD_NS` (see [`CpuState`]).
#[inline(always)]
fn stamp(st: &mut CpuState, next: *const u8) {
    // SAFETY: typed kernel pointer.
    let clock = if g(&CLOCK_FROM_RQ) == 1 {
        unsafe { rq_clock(next) }
    } else {
        0
    };
    if clock == 0 {
        // SAFETY: helper without arguments.
        let now = unsafe { bpf_ktime_get_ns() };
        wv(&mut st.start_clock, now);
        wv(&mut st.cal_clock, now);
        wv(&mut st.cal_ktime, now);
        return;
    }
    wv(&mut st.start_clock, clock);
    let cal = rv(&st.cal_clock);
    if cal == 0 || clock.wrapping_sub(cal) > CAL_PERIOD_NS {
        wv(&mut st.cal_clock, clock);
        // SAFETY: helper without arguments.
        wv(&mut st.cal_ktime, unsafe { bpf_ktime_get_ns() });
    }
}

/// Charges the slice `prev` just ended: to the slot recorded at its switch-in, or, if it
/// was moved to another cgroup meanwhile, each part to the slot it belonged to.
#[inline(always)]
fn switch_out(st: &mut CpuState, cpu: u32, prev: *const u8, involuntary: bool) {
    // SAFETY: `prev` is the tracepoint's typed task pointer.
    let sum = unsafe { task_sum(prev) };
    let mut slot = rv(&st.slot);
    let mut from = rv(&st.start_sum);
    let generation = rv(&st.mbox.generation);
    if generation != rv(&st.mbox_seen) {
        wv(&mut st.mbox_seen, generation);
        if rv(&st.mbox.task) == prev as u64 && rv(&st.mbox.base) == from {
            (from, slot) = apply_splits(st, cpu, slot, from);
        }
    }
    charge(cpu, slot, sum.saturating_sub(from), involuntary);
}

/// Charges the parts of the running slice closed by the mailbox's splits, the first from
/// `sum` `from` in `slot`; returns where the last part starts and its slot.
#[inline(always)]
fn apply_splits(st: &CpuState, cpu: u32, mut slot: u32, mut from: u64) -> (u64, u32) {
    let n = rv(&st.mbox.count) as usize;
    for (i, sp) in st.mbox.splits.iter().enumerate() {
        if i >= n {
            break;
        }
        let split_sum = rv(&sp.sum);
        add_cpu(cpu, slot, split_sum.saturating_sub(from));
        if split_sum > from {
            from = split_sum;
        }
        slot = rv(&sp.slot);
    }
    (from, slot)
}

/// A task moved while it ran unrecorded here (its switch-in was not traced): if it is
/// `prev`, charges its parts since the first move and returns true. Any such mailbox is
/// consumed at this CPU's next switch; if its task is not `prev` it stopped running here
/// unseen, and its parts are dropped (its time since is unknown here).
#[inline(always)]
fn adopted_out(st: &mut CpuState, cpu: u32, prev: *const u8, involuntary: bool) -> bool {
    let generation = rv(&st.mbox.generation);
    if generation == rv(&st.mbox_seen) || rv(&st.mbox.base) != ADOPTED {
        return false;
    }
    wv(&mut st.mbox_seen, generation);
    if rv(&st.mbox.task) != prev as u64 {
        return false;
    }
    let first = rv(&st.mbox.splits[0].sum);
    let (from, slot) = apply_splits(st, cpu, NO_SLOT, first);
    // SAFETY: the tracepoint's typed task pointer.
    let sum = unsafe { task_sum(prev) };
    charge(cpu, slot, sum.saturating_sub(from), involuntary);
    true
}

/// Adds `ns` of CPU time to `slot` in this CPU's row.
#[inline(always)]
fn add_cpu(cpu: u32, slot: u32, ns: u64) {
    if slot != NO_SLOT
        && let Some(s) = stats_at(cpu, slot)
    {
        // SAFETY: this CPU's row.
        inc(unsafe { &mut (*s).cpu_ns }, ns);
    }
}

/// Charges the last part of a slice of `prev` to `slot`, with the switch.
#[inline(always)]
fn charge(cpu: u32, slot: u32, ns: u64, involuntary: bool) {
    if slot == NO_SLOT {
        return;
    }
    let Some(s) = stats_at(cpu, slot) else {
        return;
    };
    // SAFETY: this CPU's row.
    let s = unsafe { &mut *s };
    inc(&mut s.cpu_ns, ns);
    if involuntary {
        inc(&mut s.nivcsw, 1);
    } else {
        inc(&mut s.nvcsw, 1);
    }
}

/// Learns the `cgroup_subsys_state *` of `slot`'s memory cgroup from `task` (one of its
/// tasks), if not known yet and if `task`'s memory cgroup is the one user space expects
/// there. Called when a CPU's key cache learns the task's slot (rarely).
#[inline(always)]
fn learn_memory(task: *const u8, slot: u32) {
    let Some(m) = SLOT_MEM.get_ptr_mut(slot) else {
        return;
    };
    // SAFETY: an element of the array map.
    let m = unsafe { &mut *m };
    if rv(&m.css) != 0 {
        return;
    }
    let want = rv(&m.mem_id);
    if want == 0 {
        return;
    }
    // SAFETY: typed kernel pointers (the tracepoint's task, fields loaded from it).
    let css = unsafe { task_css(task, g(&MEMORY_SUBSYS_ID)) };
    if css.is_null() {
        return;
    }
    let cgrp: *const u8 = unsafe { load(css, g(&OFF_CSS_CGROUP)) };
    if unsafe { cgroup_id(cgrp) } == want {
        wv(&mut m.css, css as u64);
    }
}

/// The memory of every listed slot, read on demand: user space runs this program with
/// `BPF_PROG_TEST_RUN` once per tick (`args[0]` = how many entries of `MEM_LIST` to
/// read), so all containers' memory costs one system call per tick. The page counter
/// (`mem_cgroup.memory.usage`, what `memory.usage_in_bytes` / `memory.current` print)
/// lies in `struct mem_cgroup` around the css the switch program learnt: a checked read.
/// Linux 7.0's memcg kfuncs (`bpf_get_mem_cgroup`, `bpf_mem_cgroup_usage`) would find the
/// memory cgroup without learning it from a task, but aya 0.14 cannot call kfuncs.
#[raw_tracepoint(tracepoint = "mem_sample")]
pub fn mem_sample(ctx: RawTracePointContext) -> i32 {
    check_recorded();
    let n: u64 = ctx.arg(0);
    let off = g(&OFF_CSS_MEMCG_USAGE);
    let mut i = 0u32;
    while i < SLOTS {
        if u64::from(i) >= n {
            break;
        }
        if let Some(&slot) = MEM_LIST.get(i)
            && let Some(m) = SLOT_MEM.get_ptr_mut(slot)
        {
            // SAFETY: an element of the array map.
            let m = unsafe { &mut *m };
            let css = rv(&m.css);
            if css != 0 {
                let usage = css.wrapping_add(off) as *const u64;
                // SAFETY: bpf_probe_read_kernel validates the address.
                match unsafe { bpf_probe_read_kernel(usage) } {
                    Ok(pages) => wv(&mut m.usage_pages, pages),
                    Err(_) => count(counter::READ_FAILED, 1),
                }
            }
        }
        i += 1;
    }
    0
}

/// For each CPU whose recorded task is not running there any more (switched out by a
/// switch the kernel did not trace), notes it (`CpuState::stale_seq`, confirmed at a
/// second run), so that user space does not count a slice in progress that has ended.
/// Runs with `mem_sample`.
#[inline(always)]
fn check_recorded() {
    let n = g(&NR_CPUS);
    let (on_off, cpu_off) = (g(&OFF_TASK_ON_CPU), g(&OFF_TASK_CPU));
    if on_off == 0 {
        return;
    }
    let mut cpu = 0u32;
    while cpu < MAX_CPUS {
        if u64::from(cpu) >= n {
            break;
        }
        if let Some(st) = CPU_STATE.get_ptr_mut(cpu) {
            // SAFETY: an element of the array map; `stale_seq` is this program's.
            let st = unsafe { &mut *st };
            let seq = rv(&st.seq);
            let t = rv(&st.task);
            if seq & 1 == 0 && t != 0 {
                // SAFETY: bpf_probe_read_kernel validates the addresses.
                let (on, on_cpu) = unsafe {
                    (
                        bpf_probe_read_kernel(t.wrapping_add(on_off) as *const i32),
                        bpf_probe_read_kernel(t.wrapping_add(cpu_off) as *const u32),
                    )
                };
                if let (Ok(on), Ok(c)) = (on, on_cpu)
                    && (on == 0 || c != cpu)
                    && rv(&st.seq) == seq
                {
                    // Confirmed at the second look (seq unchanged in between).
                    let seen = rv(&st.stale_seq);
                    wv(
                        &mut st.stale_seq,
                        if seen == seq | 1 { seq } else { seq | 1 },
                    );
                }
            }
        }
        cpu += 1;
    }
}

/// The recorded task was switched out unseen (a switch the kernel did not trace): its
/// slice ended at its `sum_exec_runtime` then. If it has not been picked again since, that
/// is its sum now; if it has (on any CPU), its `prev_sum_exec_runtime` is that sum (exact
/// unless it was picked more than once since, or is not of the fair class). Charged like
/// a switch-out, its moves included.
#[inline(always)]
fn close_unseen(st: &mut CpuState, cpu: u32, task: u64) {
    let mut slot = rv(&st.slot);
    let mut from = rv(&st.start_sum);
    let generation = rv(&st.mbox.generation);
    let moved =
        generation != rv(&st.mbox_seen) && rv(&st.mbox.task) == task && rv(&st.mbox.base) == from;
    if slot == NO_SLOT && !moved {
        return;
    }
    let se = task.wrapping_add(g(&OFF_TASK_SE));
    // SAFETY: bpf_probe_read_kernel validates the addresses (the task may be gone).
    let (Ok(sum), Ok(prev_sum)) = (unsafe {
        (
            bpf_probe_read_kernel(se.wrapping_add(g(&OFF_SE_SUM)) as *const u64),
            bpf_probe_read_kernel(se.wrapping_add(g(&OFF_SE_PREV_SUM)) as *const u64),
        )
    }) else {
        count(counter::READ_FAILED, 1);
        return;
    };
    let end = if prev_sum > from { prev_sum } else { sum };
    if moved {
        wv(&mut st.mbox_seen, generation);
        (from, slot) = apply_splits(st, cpu, slot, from);
    }
    add_cpu(cpu, slot, end.saturating_sub(from));
}

/// A switch-out of a task whose switch-in was not seen (the first switch on this CPU
/// since loading, or a switch the kernel did not trace). For a task of the fair class the
/// scheduler itself remembers where the slice started (`prev_sum_exec_runtime` is set
/// whenever a fair task is picked), so the slice is charged exactly to the task's cgroup
/// now; other classes never update that field, so their slice is counted as lost.
#[inline(always)]
fn unmatched(cpu: u32, prev: *const u8, involuntary: bool) {
    // SAFETY: typed kernel pointer.
    let slot = unsafe {
        task_slot_cached(prev, cpu, REGION_SWITCH, |slot| {
            if slot != NO_SLOT {
                learn_memory(prev, slot);
            }
        })
    };
    if slot == NO_SLOT {
        return;
    }
    let (sum, prev_sum, policy, prio) = unsafe {
        (
            task_sum(prev),
            task_prev_sum(prev),
            load::<u32>(prev, g(&OFF_TASK_POLICY)),
            load::<i32>(prev, g(&OFF_TASK_PRIO)),
        )
    };
    let slice = sum.saturating_sub(prev_sum);
    // SCHED_NORMAL, SCHED_BATCH, SCHED_IDLE, and not boosted to a real-time priority.
    if matches!(policy, 0 | 3 | 5) && prio >= 100 {
        charge(cpu, slot, slice, involuntary);
    } else {
        count(counter::LOST_NS, slice);
    }
}

#[btf_tracepoint(function = "sched_wakeup")]
pub fn sched_wakeup(ctx: BtfTracePointContext) -> i32 {
    let p: *const u8 = ctx.arg(0);
    bump(p, Some(REGION_WAKEUP), |s| inc(&mut s.wakeups, 1));
    0
}

#[btf_tracepoint(function = "sched_migrate_task")]
pub fn sched_migrate_task(ctx: BtfTracePointContext) -> i32 {
    let p: *const u8 = ctx.arg(0);
    // Rare: no cache of its own (a migration can interrupt a wake-up on the same CPU).
    bump(p, None, |s| inc(&mut s.migrations, 1));
    0
}

/// Applies `f` to this CPU's counters of `task`'s cgroup, if it is watched.
#[inline(always)]
fn bump(task: *const u8, region: Option<u32>, f: impl FnOnce(&mut faasload_common::CgroupStats)) {
    // SAFETY: helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    // SAFETY: typed kernel pointer.
    let slot = unsafe {
        match region {
            Some(r) => task_slot_cached(task, cpu, r, |_| {}),
            None => find_slot(task_cgroup(task)),
        }
    };
    if slot == NO_SLOT {
        return;
    }
    if let Some(s) = stats_at(cpu, slot) {
        // SAFETY: this CPU's row; programs on one CPU do not interleave on a field.
        f(unsafe { &mut *s });
    }
}
