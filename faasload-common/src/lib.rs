//! Types shared between faasload's kernel programs (`faasload-ebpf`) and user space.
//!
//! Everything here is `#[repr(C)]` plain data with the same layout on both sides. The
//! `user` feature implements `aya::Pod` so user space can read the maps directly.
#![no_std]

/// Names of the maps and programs, so both sides agree on them.
pub mod names {
    /// Per-CPU hash: cgroup id (u64) -> [`super::CgroupStats`].
    pub const CGROUP_STATS: &str = "CGROUP_STATS";
    /// Per-CPU array (one slot): [`super::CpuState`] of the task currently on that CPU.
    pub const CPU_STATE: &str = "CPU_STATE";
    /// Per-CPU array: drop/overflow and activity counters, indexed by [`super::counter`].
    pub const COUNTERS: &str = "COUNTERS";
    /// Ring buffer of [`super::Event`].
    pub const EVENTS: &str = "EVENTS";
    /// Hash: cgroup id (u64) -> u8, cgroups whose process exec/exit user space wants.
    pub const WATCHED: &str = "WATCHED";
    /// LRU hash: thread id (u32) -> the task's `sum_exec_runtime` when last accounted.
    pub const LAST_RUNTIME: &str = "LAST_RUNTIME";
}

/// Global variables set at load time by user space (`EbpfLoader::override_global`).
pub mod globals {
    /// 1 = cgroup v1 (read `task->cgroups->subsys[CPU_SUBSYS_ID]`), 2 = cgroup v2 (`dfl_cgrp`).
    pub const CGROUP_MODE: &str = "CGROUP_MODE";
    /// Byte offset of `task_struct.cgroups`.
    pub const OFF_TASK_CGROUPS: &str = "OFF_TASK_CGROUPS";
    /// Byte offset of `css_set.subsys` (array of `cgroup_subsys_state *`).
    pub const OFF_CSS_SET_SUBSYS: &str = "OFF_CSS_SET_SUBSYS";
    /// Byte offset of `css_set.dfl_cgrp` (`struct cgroup *`).
    pub const OFF_CSS_SET_DFL_CGRP: &str = "OFF_CSS_SET_DFL_CGRP";
    /// Byte offset of `cgroup_subsys_state.cgroup`.
    pub const OFF_CSS_CGROUP: &str = "OFF_CSS_CGROUP";
    /// Byte offset of `cgroup.kn`.
    pub const OFF_CGROUP_KN: &str = "OFF_CGROUP_KN";
    /// Byte offset of `cgroup.root`.
    pub const OFF_CGROUP_ROOT: &str = "OFF_CGROUP_ROOT";
    /// Byte offset of `cgroup_root.hierarchy_id`.
    pub const OFF_ROOT_HIERARCHY_ID: &str = "OFF_ROOT_HIERARCHY_ID";
    /// Byte offset of `kernfs_node.id`.
    pub const OFF_KN_ID: &str = "OFF_KN_ID";
    /// Byte offset of `task_struct.se`.
    pub const OFF_TASK_SE: &str = "OFF_TASK_SE";
    /// Byte offset of `sched_entity.sum_exec_runtime`.
    pub const OFF_SE_SUM: &str = "OFF_SE_SUM";
    /// Byte offset of `sched_entity.prev_sum_exec_runtime`.
    pub const OFF_SE_PREV_SUM: &str = "OFF_SE_PREV_SUM";
    /// Byte offset of `task_struct.pid`.
    pub const OFF_TASK_PID: &str = "OFF_TASK_PID";
    /// Index of the controller used for CPU attribution on v1 (`cpu_cgrp_id`).
    pub const CPU_SUBSYS_ID: &str = "CPU_SUBSYS_ID";
    /// Hierarchy id whose cgroup life-cycle events are reported (0 = all).
    pub const EVENT_HIERARCHY: &str = "EVENT_HIERARCHY";
}

/// `CGROUP_MODE` values.
pub const MODE_V1: u64 = 1;
/// `CGROUP_MODE` value for cgroup v2.
pub const MODE_V2: u64 = 2;

/// Indexes into the `COUNTERS` per-CPU array. Every drop has its own counter: none is silent.
pub mod counter {
    /// Context switches seen.
    pub const SWITCHES: u32 = 0;
    /// `CGROUP_STATS` was full: a cgroup's CPU time could not be recorded.
    pub const STATS_FULL: u32 = 1;
    /// Nanoseconds that could not be recorded because `CGROUP_STATS` was full.
    pub const STATS_LOST_NS: u32 = 2;
    /// The ring buffer was full: an event was dropped.
    pub const EVENTS_DROPPED: u32 = 3;
    /// Events written to the ring buffer.
    pub const EVENTS_SENT: u32 = 4;
    /// A kernel read (`bpf_probe_read_kernel`) failed: a switch was not attributed.
    pub const READ_FAILED: u32 = 5;
    /// Number of counters.
    pub const COUNT: u32 = 8;
}

/// Maximum number of threads whose last accounted run time is remembered (LRU).
pub const MAX_TASKS: u32 = 65536;
/// Maximum number of cgroups tracked at once in `CGROUP_STATS`.
pub const MAX_CGROUPS: u32 = 16384;
/// Size of the event ring buffer in bytes (power of two, multiple of the page size).
pub const EVENTS_BYTES: u32 = 1 << 20;
/// Bytes of cgroup path carried in an event (NUL-terminated, truncated if longer).
pub const PATH_LEN: usize = 256;

/// Per-cgroup counters accumulated by the scheduler programs (one copy per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// On-CPU time in nanoseconds, as the scheduler accounts it (`sum_exec_runtime`).
    pub cpu_ns: u64,
    /// Voluntary context switches (the task blocked).
    pub nvcsw: u64,
    /// Involuntary context switches (the task was preempted).
    pub nivcsw: u64,
    /// Wake-ups of tasks of this cgroup.
    pub wakeups: u64,
    /// Migrations of tasks of this cgroup to another CPU.
    pub migrations: u64,
}

impl CgroupStats {
    /// Adds another CPU's copy into this one.
    pub fn add(&mut self, o: &CgroupStats) {
        self.cpu_ns = self.cpu_ns.wrapping_add(o.cpu_ns);
        self.nvcsw = self.nvcsw.wrapping_add(o.nvcsw);
        self.nivcsw = self.nivcsw.wrapping_add(o.nivcsw);
        self.wakeups = self.wakeups.wrapping_add(o.wakeups);
        self.migrations = self.migrations.wrapping_add(o.migrations);
    }
}

/// What runs on one CPU since its last context switch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuState {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) of the last switch on this CPU.
    pub last_switch_ns: u64,
    /// Cgroup id of the task switched in then (0 = idle or unknown).
    pub cgroup: u64,
}

/// Kinds of [`Event`].
pub mod event_kind {
    /// A cgroup directory was created.
    pub const CGROUP_MKDIR: u32 = 1;
    /// A cgroup directory was removed.
    pub const CGROUP_RMDIR: u32 = 2;
    /// A cgroup v2 was frozen.
    pub const CGROUP_FREEZE: u32 = 3;
    /// A cgroup v2 was thawed.
    pub const CGROUP_UNFREEZE: u32 = 4;
    /// A process of a watched cgroup called exec.
    pub const PROC_EXEC: u32 = 5;
    /// A process of a watched cgroup exited.
    pub const PROC_EXIT: u32 = 6;
    /// The OOM killer chose a victim (pid).
    pub const OOM_VICTIM: u32 = 7;
}

/// A rare event sent through the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// One of [`event_kind`].
    pub kind: u32,
    /// Hierarchy id of the cgroup (cgroup events) or 0.
    pub hierarchy: u32,
    /// Cgroup id (kernfs node id == inode number of the cgroup directory).
    pub cgroup: u64,
    /// `bpf_ktime_get_ns()` when it happened.
    pub ts_ns: u64,
    /// Thread id (process events).
    pub pid: u32,
    /// Process id (process events).
    pub tgid: u32,
    /// Cgroup path relative to its hierarchy root (cgroup events), or the command name.
    pub path: [u8; PATH_LEN],
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: all these types are #[repr(C)] plain integers without padding holes that
    // matter for reading; any bit pattern is valid.
    unsafe impl aya::Pod for super::CgroupStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::CpuState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Event {}
}
