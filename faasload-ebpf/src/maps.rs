//! The maps shared with user space, and the counter helper every drop goes through.
//!
//! The four arrays of the per-switch path are `BPF_F_MMAPABLE`: user space maps them and
//! reads (or, for the table and the memory cgroups, writes) them without system calls.
//! Their sizes that depend on the machine (`SLOT_STATS`: one row of [`SLOTS`] per
//! possible CPU; `CPU_STATE`: one entry per possible CPU) are set by user space at load.
use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    macros::map,
    maps::{Array, PerCpuArray, RingBuf},
};
use faasload_common::{
    CACHE_REGIONS, CacheEntry, CgroupStats, CpuState, EVENTS_BYTES, SLOTS, SlotMem, counter,
};

/// `cpu * SLOTS + slot` -> counters of that slot on that CPU (written by that CPU only).
#[map]
pub static SLOT_STATS: Array<CgroupStats> = Array::with_max_entries(SLOTS, BPF_F_MMAPABLE);

/// slot -> watched cgroup id (an open-addressing table; written by user space).
#[map]
pub static SLOT_IDS: Array<u64> = Array::with_max_entries(SLOTS, BPF_F_MMAPABLE);

/// slot -> the memory cgroup expected there and its page counter when last read.
#[map]
pub static SLOT_MEM: Array<SlotMem> = Array::with_max_entries(SLOTS, BPF_F_MMAPABLE);

/// cpu -> the task on that CPU since its last switch, and its pending moves.
#[map]
pub static CPU_STATE: Array<CpuState> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// The slots whose memory `mem_sample` reads (the first `args[0]`; written by user space).
#[map]
pub static MEM_LIST: Array<u32> = Array::with_max_entries(SLOTS, BPF_F_MMAPABLE);

/// Which slot a scheduler object belongs to, per CPU and program (size set at load:
/// possible CPUs * CACHE_REGIONS * CACHE_SLOTS).
#[map]
pub static KEY_CACHE: Array<CacheEntry> = Array::with_max_entries(CACHE_REGIONS, 0);

/// The key cache's generation (user space bumps it through its mapping).
#[map]
pub static CACHE_GEN: Array<u64> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// Scratch words, one per program region.
#[map]
pub static SCRATCH: PerCpuArray<u64> = PerCpuArray::with_max_entries(4, 0);

/// Rare-path and drop counters.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Rare events for user space.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Adds `n` to counter `idx` of this CPU.
#[inline(always)]
pub fn count(idx: u32, n: u64) {
    if let Some(p) = COUNTERS.get_ptr_mut(idx) {
        // SAFETY: per-CPU slot, only this CPU writes it, preemption is off in the program.
        unsafe { *p += n };
    }
}

/// The counters of `slot` in CPU `cpu`'s row.
#[inline(always)]
pub fn stats_at(cpu: u32, slot: u32) -> Option<*mut CgroupStats> {
    SLOT_STATS.get_ptr_mut(cpu.wrapping_mul(SLOTS).wrapping_add(slot))
}
