//! Which cgroup a task is in, and which slot of the watched-cgroup table that is.
//!
//! The task and cgroup pointers `tp_btf` hands over are typed: loads through them are
//! plain memory loads the verifier checks against the kernel's BTF (and turns into
//! fault-safe loads), not `bpf_probe_read_kernel` calls. Rust has no CO-RE relocations,
//! so the field offsets are load-time globals set by user space from the kernel's BTF;
//! they live in `.rodata`, which the loader freezes, so the verifier knows them as
//! constants and can check every load. On cgroup v1 (hybrid hosts) CPU is attributed by
//! the `cpu` controller's cgroup (`task->cgroups->subsys[cpu_cgrp_id]->cgroup`), on v2 by
//! the default one (`task->cgroups->dfl_cgrp`); the mode is a load-time constant too, so
//! the verifier drops the other branch.
//!
//! Walking from a task to its cgroup's id touches cache lines the scheduler does not
//! (css, cgroup, kernfs node): ~0.5 µs per switch at 100 busy containers on the test
//! machine. So the slot is cached per CPU and program, keyed by the first object on the
//! way that the scheduler has just touched anyway: on v1 the task's `se.cfs_rq` (its
//! `cpu` cgroup's run queue on that CPU, hot at switch-in), on v2 the cgroup pointer
//! (`task->cgroups->dfl_cgrp`). See [`faasload_common::CacheEntry`].
use faasload_common::{
    CACHE_REGIONS, CACHE_SLOTS, MODE_V1, NO_SLOT, PROBES, SLOT_EMPTY, SLOT_TOMBSTONE, SLOTS,
    slot_hash,
};

use crate::maps::{CACHE_GEN, KEY_CACHE, SCRATCH, SLOT_IDS};

macro_rules! global {
    ($name:ident) => {
        #[unsafe(no_mangle)]
        pub static $name: u64 = 0;
    };
}
global!(CGROUP_MODE);
global!(OFF_TASK_CGROUPS);
global!(OFF_CSS_SET_SUBSYS);
global!(OFF_CSS_SET_DFL_CGRP);
global!(OFF_CSS_CGROUP);
global!(OFF_CGROUP_KN);
global!(OFF_CGROUP_ROOT);
global!(OFF_ROOT_HIERARCHY_ID);
global!(OFF_KN_ID);
global!(OFF_TASK_SE);
global!(OFF_SE_SUM);
global!(OFF_SE_PREV_SUM);
global!(OFF_TASK_TGID);
global!(OFF_TASK_POLICY);
global!(OFF_TASK_PRIO);
global!(OFF_TASK_ON_CPU);
global!(OFF_TASK_CPU);
global!(OFF_CSS_MEMCG_USAGE);
global!(CPU_SUBSYS_ID);
global!(MEMORY_SUBSYS_ID);
global!(CPU_HIERARCHY);
global!(NR_CPUS);
global!(KEY_CFS_RQ);
global!(OFF_SE_CFS_RQ);
global!(OFF_CFS_RQ_TG);
global!(OFF_TG_CSS);
global!(CLOCK_FROM_RQ);
global!(OFF_CFS_RQ_RQ);
global!(OFF_RQ_CLOCK);

/// Reads a load-time global (volatile, so that the compiler does not fold the zero it
/// was compiled with; the verifier sees the value user space set).
#[inline(always)]
pub fn g(v: &'static u64) -> u64 {
    // SAFETY: reading a static.
    unsafe { core::ptr::read_volatile(v) }
}

/// Direct load of a `T` at `base + off`, `base` a typed kernel pointer (the verifier
/// checks the access against BTF; a NULL or bad `base` reads as zero).
#[inline(always)]
pub unsafe fn load<T: Copy>(base: *const u8, off: u64) -> T {
    // SAFETY: the caller passes a verifier-typed kernel pointer.
    unsafe { core::ptr::read_volatile(base.add(off as usize) as *const T) }
}

/// The id (kernfs node id, the directory's inode number) of a `struct cgroup *`; 0 if
/// it cannot be read.
#[inline(always)]
pub unsafe fn cgroup_id(cgrp: *const u8) -> u64 {
    if cgrp.is_null() {
        return 0;
    }
    unsafe {
        let kn: *const u8 = load(cgrp, g(&OFF_CGROUP_KN));
        if kn.is_null() {
            return 0;
        }
        load::<u64>(kn, g(&OFF_KN_ID))
    }
}

/// The hierarchy id of a `struct cgroup *` (0 for cgroup v2), `u32::MAX` if unreadable.
#[inline(always)]
pub unsafe fn hierarchy_id(cgrp: *const u8) -> u32 {
    if cgrp.is_null() {
        return u32::MAX;
    }
    unsafe {
        let root: *const u8 = load(cgrp, g(&OFF_CGROUP_ROOT));
        if root.is_null() {
            return u32::MAX;
        }
        load::<i32>(root, g(&OFF_ROOT_HIERARCHY_ID)) as u32
    }
}

/// The task's `cgroup_subsys_state *` of controller `subsys` (NULL if unreadable).
#[inline(always)]
pub unsafe fn task_css(task: *const u8, subsys: u64) -> *const u8 {
    unsafe {
        let cset: *const u8 = load(task, g(&OFF_TASK_CGROUPS));
        if cset.is_null() {
            return core::ptr::null();
        }
        load(cset, g(&OFF_CSS_SET_SUBSYS) + (subsys & 63) * 8)
    }
}

/// The id of the cgroup CPU time of `task` is attributed to (0 if unreadable).
#[inline(always)]
pub unsafe fn task_cgroup(task: *const u8) -> u64 {
    unsafe {
        let cgrp: *const u8 = if g(&CGROUP_MODE) == MODE_V1 {
            let css = task_css(task, g(&CPU_SUBSYS_ID));
            if css.is_null() {
                return 0;
            }
            load(css, g(&OFF_CSS_CGROUP))
        } else {
            let cset: *const u8 = load(task, g(&OFF_TASK_CGROUPS));
            if cset.is_null() {
                return 0;
            }
            load(cset, g(&OFF_CSS_SET_DFL_CGRP))
        };
        cgroup_id(cgrp)
    }
}

/// The slot of the cgroup CPU time of `task` is attributed to ([`NO_SLOT`] if not
/// watched or unreadable), through the key cache of program region `region` on CPU
/// `cpu`. `on_fill(slot)` runs when the cache had to be filled (rarely).
#[inline(always)]
pub unsafe fn task_slot_cached(
    task: *const u8,
    cpu: u32,
    region: u32,
    on_fill: impl FnOnce(u32),
) -> u32 {
    unsafe {
        if g(&KEY_CFS_RQ) == 1 {
            let cfs_rq: *const u8 = load(task, g(&OFF_TASK_SE) + g(&OFF_SE_CFS_RQ));
            if !cfs_rq.is_null() {
                return cached(cfs_rq, cpu, region, on_fill, |rq| {
                    let tg: *const u8 = load(rq, g(&OFF_CFS_RQ_TG));
                    if tg.is_null() {
                        return 0;
                    }
                    // An autogroup's task group has no cgroup: id 0, never watched.
                    let cgrp: *const u8 = load(tg, g(&OFF_TG_CSS) + g(&OFF_CSS_CGROUP));
                    cgroup_id(cgrp)
                });
            }
        }
        if g(&CGROUP_MODE) == MODE_V1 {
            let css = task_css(task, g(&CPU_SUBSYS_ID));
            if css.is_null() {
                return NO_SLOT;
            }
            cached(css, cpu, region, on_fill, |css| {
                let cgrp: *const u8 = load(css, g(&OFF_CSS_CGROUP));
                cgroup_id(cgrp)
            })
        } else {
            let cset: *const u8 = load(task, g(&OFF_TASK_CGROUPS));
            if cset.is_null() {
                return NO_SLOT;
            }
            let cgrp: *const u8 = load(cset, g(&OFF_CSS_SET_DFL_CGRP));
            if cgrp.is_null() {
                return NO_SLOT;
            }
            cached(cgrp, cpu, region, on_fill, |c| cgroup_id(c))
        }
    }
}

/// The slot of key object `obj` from the cache, or from the table with the cgroup id
/// `id_of(obj)` (then cached, and `on_fill` called with it).
#[inline(always)]
unsafe fn cached(
    obj: *const u8,
    cpu: u32,
    region: u32,
    on_fill: impl FnOnce(u32),
    id_of: impl FnOnce(*const u8) -> u64,
) -> u32 {
    // The verifier allows no arithmetic on a pointer but adding constants: going through
    // memory turns the address into a number that can be hashed.
    let Some(scratch) = SCRATCH.get_ptr_mut(region) else {
        return find_slot(id_of(obj));
    };
    // SAFETY: this CPU's scratch word of this program.
    let key = unsafe {
        core::ptr::write_volatile(scratch, obj as u64);
        core::ptr::read_volatile(scratch)
    };
    let generation = match CACHE_GEN.get_ptr(0) {
        // SAFETY: an element of the array map.
        Some(p) => (unsafe { core::ptr::read_volatile(p) }) as u32,
        None => return find_slot(id_of(obj)),
    };
    let h = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as u32 & (CACHE_SLOTS - 1);
    let idx = (cpu.wrapping_mul(CACHE_REGIONS).wrapping_add(region))
        .wrapping_mul(CACHE_SLOTS)
        .wrapping_add(h);
    let Some(e) = KEY_CACHE.get_ptr_mut(idx) else {
        return find_slot(id_of(obj));
    };
    // SAFETY: this CPU's entry of this program's region: no other writer runs meanwhile.
    unsafe {
        if core::ptr::read_volatile(&(*e).key) == key
            && core::ptr::read_volatile(&(*e).generation) == generation
        {
            return core::ptr::read_volatile(&(*e).slot);
        }
        let slot = find_slot(id_of(obj));
        core::ptr::write_volatile(&mut (*e).key, key);
        core::ptr::write_volatile(&mut (*e).slot, slot);
        core::ptr::write_volatile(&mut (*e).generation, generation);
        on_fill(slot);
        slot
    }
}

/// The clock of the run queue `task` is on (`se.cfs_rq->rq->clock`), 0 if unreadable.
/// At a switch the scheduler has just updated it.
#[inline(always)]
pub unsafe fn rq_clock(task: *const u8) -> u64 {
    unsafe {
        let cfs_rq: *const u8 = load(task, g(&OFF_TASK_SE) + g(&OFF_SE_CFS_RQ));
        if cfs_rq.is_null() {
            return 0;
        }
        let rq: *const u8 = load(cfs_rq, g(&OFF_CFS_RQ_RQ));
        if rq.is_null() {
            return 0;
        }
        load(rq, g(&OFF_RQ_CLOCK))
    }
}

/// The scheduler's total CPU time of `task` (`se.sum_exec_runtime`, ns).
#[inline(always)]
pub unsafe fn task_sum(task: *const u8) -> u64 {
    unsafe { load(task, g(&OFF_TASK_SE) + g(&OFF_SE_SUM)) }
}

/// The scheduler's `se.prev_sum_exec_runtime` of `task` (its sum when last picked).
#[inline(always)]
pub unsafe fn task_prev_sum(task: *const u8) -> u64 {
    unsafe { load(task, g(&OFF_TASK_SE) + g(&OFF_SE_PREV_SUM)) }
}

/// The slot of watched cgroup `id`, or [`NO_SLOT`]. Linear probing from
/// [`slot_hash`]`(id)`; an empty position ends the search, so a cgroup that is not
/// watched usually costs one array load.
#[inline(always)]
pub fn find_slot(id: u64) -> u32 {
    if id == SLOT_EMPTY || id == SLOT_TOMBSTONE {
        return NO_SLOT;
    }
    let h = slot_hash(id);
    let mut i = 0;
    while i < PROBES {
        let pos = (h + i) & (SLOTS - 1);
        match SLOT_IDS.get_ptr(pos) {
            // SAFETY: an element of the array map (user space writes whole u64s).
            Some(p) => {
                let v = unsafe { core::ptr::read_volatile(p) };
                if v == id {
                    return pos;
                }
                if v == SLOT_EMPTY {
                    return NO_SLOT;
                }
            }
            None => return NO_SLOT,
        }
        i += 1;
    }
    NO_SLOT
}
