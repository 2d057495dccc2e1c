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
use faasload_common::{MODE_V1, NO_SLOT, PROBES, SLOT_EMPTY, SLOT_TOMBSTONE, SLOTS, slot_hash};

use crate::maps::SLOT_IDS;

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
global!(OFF_CSS_MEMCG_USAGE);
global!(CPU_SUBSYS_ID);
global!(MEMORY_SUBSYS_ID);
global!(CPU_HIERARCHY);
global!(NR_CPUS);

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
