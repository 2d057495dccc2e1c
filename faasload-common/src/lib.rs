//! Types shared between faasload's kernel programs (`faasload-ebpf`) and user space.
//!
//! Everything here is `#[repr(C)]` plain data with the same layout on both sides. The
//! `user` feature implements `aya::Pod` so user space can read the maps directly.
//!
//! The per-context-switch data lives in arrays that user space maps into its memory
//! (`BPF_F_MMAPABLE`), so reading every container's counters costs no system call:
//! - [`names::SLOT_IDS`]: the watched cgroups, an open-addressing table keyed by
//!   [`slot_hash`] of the cgroup id; a cgroup's *slot* is its index in this table. Written
//!   by user space only.
//! - [`names::SLOT_STATS`]: [`CgroupStats`] per CPU and slot, at `cpu * SLOTS + slot`
//!   (each CPU writes only its own row: no atomics).
//! - [`names::SLOT_MEM`]: per slot, the memory cgroup user space expects and the page
//!   counter the kernel last read there ([`SlotMem`]).
//! - [`names::CPU_STATE`]: per CPU, what runs there since the last switch ([`CpuState`]).
//! - [`names::MEM_LIST`]: the slots whose memory the `mem_sample` program reads on each
//!   of user space's ticks (run with `BPF_PROG_TEST_RUN`).
//!
//! - [`names::CACHE_GEN`]: the generation of the key cache, bumped by user space when
//!   the table changes.
//!
//! Not mapped: [`names::KEY_CACHE`], per CPU and program, remembers which slot a
//! scheduler object belongs to (see [`CacheEntry`]), so a context switch does not walk
//! `css -> cgroup -> kernfs_node` (cold cache lines) nor probe the table every time.
#![no_std]

/// Names of the maps and programs, so both sides agree on them.
pub mod names {
    /// Mmapable array, `cpu * SLOTS + slot` -> [`super::CgroupStats`].
    pub const SLOT_STATS: &str = "SLOT_STATS";
    /// Mmapable array, slot -> watched cgroup id (u64; [`super::SLOT_EMPTY`],
    /// [`super::SLOT_TOMBSTONE`]).
    pub const SLOT_IDS: &str = "SLOT_IDS";
    /// Mmapable array, slot -> [`super::SlotMem`].
    pub const SLOT_MEM: &str = "SLOT_MEM";
    /// Mmapable array, cpu -> [`super::CpuState`].
    pub const CPU_STATE: &str = "CPU_STATE";
    /// Mmapable array of u32: the slots `mem_sample` reads (the first `args[0]`).
    pub const MEM_LIST: &str = "MEM_LIST";
    /// Array, `(cpu * CACHE_REGIONS + region) * CACHE_SLOTS + hash` -> [`super::CacheEntry`].
    pub const KEY_CACHE: &str = "KEY_CACHE";
    /// Mmapable array of one u64: the generation of [`names::KEY_CACHE`], bumped by the
    /// kernel programs at every cgroup creation and removal (object addresses may be
    /// reused) and by user space at every change of the slot table.
    pub const CACHE_GEN: &str = "CACHE_GEN";
    /// Per-CPU array of u64: scratch words (pointers turned into numbers to hash them).
    pub const SCRATCH: &str = "SCRATCH";
    /// The program user space runs once per tick to read the memory of every container.
    pub const MEM_SAMPLE: &str = "mem_sample";
    /// Per-CPU array: rare-path and drop counters, indexed by [`super::counter`].
    pub const COUNTERS: &str = "COUNTERS";
    /// Ring buffer of [`super::Event`].
    pub const EVENTS: &str = "EVENTS";
}

/// Global variables set at load time by user space (`EbpfLoader::override_global`). They
/// land in `.rodata`, which the loader freezes, so the verifier knows them as constants:
/// offsets added to typed kernel pointers stay verifiable direct loads.
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
    /// Byte offset of `sched_entity.prev_sum_exec_runtime` (the sum when last picked).
    pub const OFF_SE_PREV_SUM: &str = "OFF_SE_PREV_SUM";
    /// Byte offset of `task_struct.tgid`.
    pub const OFF_TASK_TGID: &str = "OFF_TASK_TGID";
    /// Byte offset of `task_struct.policy` (scheduling policy).
    pub const OFF_TASK_POLICY: &str = "OFF_TASK_POLICY";
    /// Byte offset of `task_struct.prio` (effective priority; < 100: real-time).
    pub const OFF_TASK_PRIO: &str = "OFF_TASK_PRIO";
    /// Byte offset of `task_struct.on_cpu` (0: unknown; moves of a task whose switch-in
    /// was not seen are then not split).
    pub const OFF_TASK_ON_CPU: &str = "OFF_TASK_ON_CPU";
    /// Byte offset, from `task_struct`, of the CPU it is on (`thread_info.cpu`).
    pub const OFF_TASK_CPU: &str = "OFF_TASK_CPU";
    /// Byte offset, from a memory controller's `cgroup_subsys_state`, of its page
    /// counter's usage in pages: `mem_cgroup.memory.usage - mem_cgroup.css`.
    pub const OFF_CSS_MEMCG_USAGE: &str = "OFF_CSS_MEMCG_USAGE";
    /// Index of the controller used for CPU attribution on v1 (`cpu_cgrp_id`).
    pub const CPU_SUBSYS_ID: &str = "CPU_SUBSYS_ID";
    /// Index of the memory controller (`memory_cgrp_id`), on v1 and v2.
    pub const MEMORY_SUBSYS_ID: &str = "MEMORY_SUBSYS_ID";
    /// Hierarchy id of the cgroups CPU is attributed by (v1: the `cpu` hierarchy; v2: 0,
    /// the default hierarchy): the attaches that move CPU accounting.
    pub const CPU_HIERARCHY: &str = "CPU_HIERARCHY";
    /// Number of possible CPUs (entries of `CPU_STATE`, rows of `SLOT_STATS`).
    pub const NR_CPUS: &str = "NR_CPUS";
    /// 1: cache a task's cgroup by its `se.cfs_rq` (cgroup v1 with fair group
    /// scheduling, where a `cpu` cgroup is exactly one task group); 0: by its css (v1) or
    /// cgroup (v2) pointer.
    pub const KEY_CFS_RQ: &str = "KEY_CFS_RQ";
    /// Byte offset of `sched_entity.cfs_rq`.
    pub const OFF_SE_CFS_RQ: &str = "OFF_SE_CFS_RQ";
    /// Byte offset of `cfs_rq.tg`.
    pub const OFF_CFS_RQ_TG: &str = "OFF_CFS_RQ_TG";
    /// Byte offset of `task_group.css`.
    pub const OFF_TG_CSS: &str = "OFF_TG_CSS";
    /// 1: switch-in times from `task->se.cfs_rq->rq->clock`; 0: from bpf_ktime_get_ns.
    pub const CLOCK_FROM_RQ: &str = "CLOCK_FROM_RQ";
    /// Byte offset of `cfs_rq.rq`.
    pub const OFF_CFS_RQ_RQ: &str = "OFF_CFS_RQ_RQ";
    /// Byte offset of `rq.clock`.
    pub const OFF_RQ_CLOCK: &str = "OFF_RQ_CLOCK";
}

/// `CGROUP_MODE` values.
pub const MODE_V1: u64 = 1;
/// `CGROUP_MODE` value for cgroup v2.
pub const MODE_V2: u64 = 2;

/// Indexes into the `COUNTERS` per-CPU array (rare paths and drops: none is silent).
/// Context switches and unmatched switch-outs are counted in [`CpuState`] instead, on
/// the cache line the switch program writes anyway.
pub mod counter {
    /// The ring buffer was full: an event was dropped.
    pub const EVENTS_DROPPED: u32 = 0;
    /// Events written to the ring buffer.
    pub const EVENTS_SENT: u32 = 1;
    /// A kernel read (`bpf_probe_read_kernel`) failed.
    pub const READ_FAILED: u32 = 2;
    /// A running task moved to another cgroup: its slice was split at the move.
    pub const MOVES_SPLIT: u32 = 3;
    /// A running task moved more than [`super::MAX_SPLITS`] times within one slice: the
    /// later moves were merged into the last split (time between them misattributed).
    pub const MOVES_OVERFLOW: u32 = 4;
    /// Nanoseconds of slices of watched cgroups that could not be charged: their
    /// switch-in was not seen and the task is not of the fair class (whose slice start
    /// the scheduler keeps); an estimate (`sum_exec_runtime - prev_sum_exec_runtime`).
    pub const LOST_NS: u32 = 5;
    /// Number of counters.
    pub const COUNT: u32 = 8;
}

/// log2 of [`SLOTS`].
pub const SLOT_BITS: u32 = 11;
/// Watched-cgroup slots (open-addressing table size; a power of two).
pub const SLOTS: u32 = 1 << SLOT_BITS;
/// Positions of the table probed for one cgroup id (linear probing).
pub const PROBES: u32 = 8;
/// `SLOT_IDS` value of a position never used: a lookup stops there.
pub const SLOT_EMPTY: u64 = 0;
/// `SLOT_IDS` value of a position freed: a lookup goes on past it.
pub const SLOT_TOMBSTONE: u64 = u64::MAX;
/// "No slot": the task's cgroup is not watched.
pub const NO_SLOT: u32 = u32::MAX;
/// Upper bound of possible CPUs the move hook looks at (verifier loop bound).
pub const MAX_CPUS: u32 = 1024;
/// Moves of one running task within one slice remembered separately (later ones are
/// merged into the last, counted in `MOVES_OVERFLOW`).
pub const MAX_SPLITS: usize = 8;
/// [`Mailbox::base`] of moves of a task that runs on the CPU although its switch-in was
/// not seen (a switch the kernel did not trace): the slice's start is unknown, the parts
/// after the first split are not.
pub const ADOPTED: u64 = u64::MAX;
/// [`SlotMem::usage_pages`] before the kernel has read the page counter for that slot.
pub const MEM_UNSET: u64 = u64::MAX;
/// Entries of one region of the key cache (a power of two; direct-mapped).
pub const CACHE_SLOTS: u32 = 1024;
/// Regions of the key cache per CPU: one per program that fills it (a program never
/// interrupts itself, so each region has one writer at a time).
pub const CACHE_REGIONS: u32 = 2;
/// Key cache region of `sched_switch`.
pub const REGION_SWITCH: u32 = 0;
/// Key cache region of `sched_wakeup`.
pub const REGION_WAKEUP: u32 = 1;

/// First table position probed for cgroup `id` (Fibonacci hashing: cgroup ids are mostly
/// consecutive inode numbers, the multiply spreads them).
#[inline(always)]
pub const fn slot_hash(id: u64) -> u32 {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOT_BITS)) as u32
}

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
    /// Padding to one cache line, so that a switch touches one line of a CPU's row.
    pub _pad: [u64; 3],
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

/// Memory of one slot: which memory cgroup user space wants sampled there, where the
/// kernel found it, and its page counter when `mem_sample` last read it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotMem {
    /// Cgroup id of the memory cgroup whose page counter belongs to this slot (v1: the
    /// container's directory in the memory hierarchy; v2: the cgroup itself); 0: none.
    /// Written by user space before the slot is published.
    pub mem_id: u64,
    /// `mem_cgroup.memory.usage` in pages when `mem_sample` last ran; [`MEM_UNSET`]
    /// while `css` is unknown.
    pub usage_pages: u64,
    /// The memory cgroup's `cgroup_subsys_state *`, learnt by the switch program at the
    /// first switch-out of one of the slot's tasks whose memory cgroup is `mem_id`;
    /// cleared when that cgroup is removed; 0: not known.
    pub css: u64,
}

/// One entry of the key cache: scheduler object `key` (a `cfs_rq`, css or cgroup
/// address) belongs to slot `slot` ([`NO_SLOT`]: a cgroup not watched), as of cache
/// generation `generation` (low 32 bits). The slot is found from the key's own object,
/// never from the task that looked it up, so an entry cannot mix two cgroups; a removed
/// cgroup's addresses may be reused and the table may change, hence the generation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheEntry {
    pub key: u64,
    pub generation: u32,
    pub slot: u32,
}

/// One move of the running task: from `sum` (its `sum_exec_runtime` at the move, `ns`
/// the monotonic time of the move) on, its time belongs to `slot`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub sum: u64,
    pub ns: u64,
    pub slot: u32,
    pub _pad: u32,
}

/// Moves of the task running on a CPU, published by the `cgroup_attach_task` program
/// (which runs on another CPU, under the kernel's cgroup mutex, so one at a time) for the
/// CPU's own switch program to apply at the task's switch-out. Valid while `generation`
/// differs from [`CpuState::mbox_seen`] and `task`/`base` match the running slice (or
/// `base` is [`ADOPTED`]: `task` runs there unrecorded).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mailbox {
    /// Bumped (last) each time a split is published.
    pub generation: u64,
    /// `task_struct *` of the moved task.
    pub task: u64,
    /// [`CpuState::start_sum`] of the slice the splits belong to.
    pub base: u64,
    /// Splits used (at most [`MAX_SPLITS`]).
    pub count: u32,
    pub _pad: u32,
    pub splits: [Split; MAX_SPLITS],
    pub _reserved: [u64; 4],
}

/// What runs on one CPU since its last context switch. The first two cache lines are
/// written only by that CPU's switch program; `mbox` only by the move program.
///
/// Switch-in times are the run queue's clock (`rq->clock`, which the scheduler has just
/// updated: reading it costs a load where `bpf_ktime_get_ns()` cost ~0.1 µs per switch on
/// the test VM). It is `sched_clock`, not CLOCK_MONOTONIC: every [`CAL_PERIOD_NS`] of
/// it (at a switch) the program also reads CLOCK_MONOTONIC, and user space converts with
/// that pair (`cal_ktime - cal_clock`). The two clocks tick from the same counter and
/// drift apart by at most the NTP slew (500 ppm): at most 25 µs over a period.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuState {
    /// Odd while the switch program updates this CPU's state and counters (a sequence
    /// count: user space retries a read that saw it odd or changed).
    pub seq: u64,
    /// `task_struct *` switched in (0: not seen yet).
    pub task: u64,
    /// Its cgroup's slot, [`NO_SLOT`] if not watched.
    pub slot: u32,
    pub _pad: u32,
    /// Its `sum_exec_runtime` when switched in.
    pub start_sum: u64,
    /// The run queue's clock when switched in; set only when watched.
    pub start_clock: u64,
    /// Context switches on this CPU.
    pub switches: u64,
    /// The last [`Mailbox::generation`] this CPU's switch program looked at.
    pub mbox_seen: u64,
    /// The run queue's clock at the last calibration.
    pub cal_clock: u64,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) at the last calibration.
    pub cal_ktime: u64,
    /// Switch-outs of a task other than the one recorded at switch-in (a run missed).
    pub unmatched: u64,
    /// Written by `mem_sample` (user space's tick, on any CPU): `seq | 1` when it first
    /// found the recorded task not running on this CPU, `seq` when it found it again at a
    /// later run with no switch since (switched out unseen: a task being switched in is
    /// briefly not "on CPU" yet). While `seq` equals it, user space counts no part of the
    /// slice in progress here.
    pub stale_seq: u64,
    pub _reserved: [u64; 5],
    /// Moves of the running task (from the third cache line on).
    pub mbox: Mailbox,
}

impl CpuState {
    /// CLOCK_MONOTONIC of the current slice's switch-in.
    pub fn start_mono(&self) -> u64 {
        self.start_clock
            .wrapping_add(self.cal_ktime.wrapping_sub(self.cal_clock))
    }
}

/// How often (in run queue clock ns) a CPU's clock pair is taken again.
pub const CAL_PERIOD_NS: u64 = 50_000_000;

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

// The layouts user space maps: fixed sizes, cache-line-sized per-CPU state.
const _: () = assert!(core::mem::size_of::<CgroupStats>() == 64);
const _: () = assert!(core::mem::size_of::<SlotMem>() == 24);
const _: () = assert!(core::mem::size_of::<CacheEntry>() == 16);
const _: () = assert!(core::mem::size_of::<Mailbox>() == 256);
const _: () = assert!(core::mem::size_of::<CpuState>() == 384);
const _: () = assert!(core::mem::offset_of!(CpuState, mbox) == 128);

#[cfg(feature = "user")]
mod user {
    // SAFETY: all these types are #[repr(C)] plain integers without padding holes that
    // matter for reading; any bit pattern is valid.
    unsafe impl aya::Pod for super::CgroupStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::CpuState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SlotMem {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::CacheEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Event {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_stays_in_the_table_and_spreads_consecutive_ids() {
        let mut seen = [false; SLOTS as usize];
        let mut distinct = 0;
        for id in 1000..1000 + 256u64 {
            let h = slot_hash(id);
            assert!(h < SLOTS);
            if !seen[h as usize] {
                seen[h as usize] = true;
                distinct += 1;
            }
        }
        // 256 consecutive inode numbers land on (almost) as many positions.
        assert!(distinct >= 250, "{distinct}");
        assert!(slot_hash(u64::MAX) < SLOTS && slot_hash(0) < SLOTS);
    }
}
