//! The maps shared with user space, and the counter helper every drop goes through.
use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use faasload_common::{CgroupStats, CpuState, EVENTS_BYTES, MAX_CGROUPS, MAX_TASKS, counter};

/// cgroup id -> per-CPU counters.
#[map]
pub static CGROUP_STATS: PerCpuHashMap<u64, CgroupStats> =
    PerCpuHashMap::with_max_entries(MAX_CGROUPS, 0);

/// The task on each CPU since the last switch.
#[map]
pub static CPU_STATE: PerCpuArray<CpuState> = PerCpuArray::with_max_entries(1, 0);

/// Drop/overflow and activity counters.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Rare events for user space.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Cgroups whose process exec/exit user space wants to hear about.
#[map]
pub static WATCHED: HashMap<u64, u8> = HashMap::with_max_entries(MAX_CGROUPS, 0);

/// Thread id -> its `sum_exec_runtime` when it was last accounted (switched out).
#[map]
pub static LAST_RUNTIME: LruHashMap<u32, u64> = LruHashMap::with_max_entries(MAX_TASKS, 0);

/// Adds `n` to counter `idx` of this CPU.
#[inline(always)]
pub fn count(idx: u32, n: u64) {
    if let Some(p) = COUNTERS.get_ptr_mut(idx) {
        // SAFETY: per-CPU slot, only this CPU writes it, preemption is off in the program.
        unsafe { *p += n };
    }
}

/// Returns the counters of `cgroup`, creating them if needed; None (counted) if the map is full.
#[inline(always)]
pub fn stats_of(cgroup: u64) -> Option<*mut CgroupStats> {
    if let Some(p) = CGROUP_STATS.get_ptr_mut(&cgroup) {
        return Some(p);
    }
    let zero = CgroupStats::default();
    // BPF_NOEXIST = 1: another CPU may have created it meanwhile, that is fine.
    let _ = CGROUP_STATS.insert(&cgroup, &zero, 1);
    match CGROUP_STATS.get_ptr_mut(&cgroup) {
        Some(p) => Some(p),
        None => {
            count(counter::STATS_FULL, 1);
            None
        }
    }
}
