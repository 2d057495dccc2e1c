//! Which cgroup a task is in: through `task->cgroups` (css_set) with offsets given at load
//! time. On cgroup v1 (hybrid hosts) the CPU controller's cgroup, on v2 the default one.
use aya_ebpf::helpers::bpf_probe_read_kernel;
use faasload_common::MODE_V1;

macro_rules! global {
    ($name:ident) => {
        #[unsafe(no_mangle)]
        static $name: u64 = 0;
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
global!(CPU_SUBSYS_ID);
global!(OFF_TASK_SE);
global!(OFF_SE_SUM);
global!(OFF_SE_PREV_SUM);
global!(OFF_TASK_PID);

/// The task's thread id.
#[inline(always)]
pub unsafe fn task_pid(task: *const u8) -> Result<u32, i32> {
    unsafe { read_at::<i32>(task, g(&OFF_TASK_PID)).map(|v| v as u32) }
}

/// The scheduler's accounting of the task: (`sum_exec_runtime`, `prev_sum_exec_runtime`).
#[inline(always)]
pub unsafe fn task_runtime(task: *const u8) -> Result<(u64, u64), i32> {
    unsafe {
        let se = g(&OFF_TASK_SE);
        let sum = read_at::<u64>(task, se + g(&OFF_SE_SUM))?;
        let prev = read_at::<u64>(task, se + g(&OFF_SE_PREV_SUM))?;
        Ok((sum, prev))
    }
}

/// Reads a load-time global (volatile so the verifier sees the value set by user space).
#[inline(always)]
fn g(v: &'static u64) -> u64 {
    // SAFETY: reading a static.
    unsafe { core::ptr::read_volatile(v) }
}

/// Reads a kernel pointer-sized value at `base + off`.
#[inline(always)]
unsafe fn read_at<T: Copy>(base: *const u8, off: u64) -> Result<T, i32> {
    // SAFETY: bpf_probe_read_kernel validates the address.
    unsafe { bpf_probe_read_kernel(base.add(off as usize) as *const T) }
}

/// The id (kernfs node id) of a `struct cgroup *`.
#[inline(always)]
pub unsafe fn cgroup_id(cgrp: *const u8) -> Result<u64, i32> {
    unsafe {
        let kn: *const u8 = read_at(cgrp, g(&OFF_CGROUP_KN))?;
        read_at::<u64>(kn, g(&OFF_KN_ID))
    }
}

/// The hierarchy id of a `struct cgroup *` (0 for cgroup v2).
#[inline(always)]
pub unsafe fn hierarchy_id(cgrp: *const u8) -> Result<u32, i32> {
    unsafe {
        let root: *const u8 = read_at(cgrp, g(&OFF_CGROUP_ROOT))?;
        read_at::<i32>(root, g(&OFF_ROOT_HIERARCHY_ID)).map(|v| v as u32)
    }
}

/// The cgroup id that CPU time of `task` is attributed to.
#[inline(always)]
pub unsafe fn task_cgroup(task: *const u8) -> Result<u64, i32> {
    unsafe {
        let cset: *const u8 = read_at(task, g(&OFF_TASK_CGROUPS))?;
        let cgrp: *const u8 = if g(&CGROUP_MODE) == MODE_V1 {
            let idx = g(&CPU_SUBSYS_ID) & 63;
            let css: *const u8 = read_at(cset, g(&OFF_CSS_SET_SUBSYS) + idx * 8)?;
            read_at(css, g(&OFF_CSS_CGROUP))?
        } else {
            read_at(cset, g(&OFF_CSS_SET_DFL_CGRP))?
        };
        cgroup_id(cgrp)
    }
}
