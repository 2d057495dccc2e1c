//! The kernel programs' per-switch arrays, mapped into this process (`BPF_F_MMAPABLE`),
//! and the table of watched cgroups ("slots") user space keeps in them.
//!
//! Reading a container's CPU time, switch counts and memory costs no system call: its
//! slots' counters are summed over the CPU rows of `SLOT_STATS`, plus the slice running
//! right now on any CPU for one of its slots (from `CPU_STATE`, split at moves by the
//! mailbox). Each CPU's state and row are read under that CPU's sequence count (the
//! switch program makes it odd while it writes), so a context switch during the read
//! never counts a slice twice or not at all. This relies on the kernel's plain stores
//! becoming visible in program order, which x86-64 guarantees (TSO); on weakly-ordered
//! CPUs a read racing a switch may rarely be torn.
//!
//! The table is open addressing keyed by [`slot_hash`], written only here: a position is
//! published by storing the cgroup id last, after its counters were zeroed and its
//! memory cgroup set; a forgotten cgroup leaves a tombstone, reused only after
//! [`REUSE_AFTER_NS`] and once no CPU state or mailbox refers to it (a task switched in
//! before the tombstone may still charge it until its switch-out).
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering, fence};

use faasload_common::{
    ADOPTED, CgroupStats, CpuState, MAX_SPLITS, MEM_UNSET, Mailbox, NO_SLOT, PROBES, SLOT_EMPTY,
    SLOT_TOMBSTONE, SLOTS, SlotMem, slot_hash,
};

/// A freed slot is reused no earlier than this after it was freed (ns).
pub(crate) const REUSE_AFTER_NS: u64 = 1_000_000_000;
/// Reads of one CPU retried at most this often before taking what was read.
const MAX_TRIES: u32 = 10_000;

/// One array's memory: a shared mapping of the map, or (tests) a heap buffer.
struct Region {
    ptr: *mut u8,
    len: usize,
    mmap: bool,
    _heap: Vec<u64>,
}

// SAFETY: the region is plain shared memory; every access goes through volatile or
// atomic operations, and its lifetime is the owning `Shared`'s.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// Maps `len` bytes of the mmapable array map `fd`, read-write and shared.
    fn map(fd: std::os::fd::BorrowedFd<'_>, len: usize, what: &str) -> std::io::Result<Region> {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of a BPF array map; the kernel checks the size.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            return Err(std::io::Error::new(
                e.kind(),
                format!("mmap of BPF map {what} ({len} bytes): {e}"),
            ));
        }
        Ok(Region {
            ptr: ptr.cast(),
            len,
            mmap: true,
            _heap: Vec::new(),
        })
    }

    #[cfg(test)]
    fn heap(len: usize) -> Region {
        let mut v = vec![0u64; len.div_ceil(8)];
        Region {
            ptr: v.as_mut_ptr().cast(),
            len,
            mmap: false,
            _heap: v,
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.mmap {
            // SAFETY: unmapping our own mapping, never used after this.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }
}

/// The kernel's stride of an array map of `T`: the value size rounded up to 8 bytes.
const fn stride<T>() -> usize {
    std::mem::size_of::<T>().next_multiple_of(8)
}

/// Bytes of an array map's mapping: `entries` elements of `T`, whole pages.
fn array_bytes<T>(entries: usize) -> usize {
    let page = page_size() as usize;
    (stride::<T>() * entries).next_multiple_of(page)
}

impl Region {
    /// Element `i` of an array of `T` laid out as the kernel does.
    fn elem<T>(&self, i: usize) -> *mut T {
        debug_assert!((i + 1) * stride::<T>() <= self.len);
        // SAFETY: in bounds (callers index within the map's entries).
        unsafe { self.ptr.add(i * stride::<T>()) as *mut T }
    }
}

/// The system's page size.
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// The mapped arrays.
pub(crate) struct Shared {
    stats: Region,
    ids: Region,
    mem: Region,
    cpus: Region,
    mem_list: Region,
    generation: Region,
    ncpu: usize,
}

/// File descriptors of the mmapable maps, to map them.
pub(crate) struct MapFds<'a> {
    pub stats: std::os::fd::BorrowedFd<'a>,
    pub ids: std::os::fd::BorrowedFd<'a>,
    pub mem: std::os::fd::BorrowedFd<'a>,
    pub cpus: std::os::fd::BorrowedFd<'a>,
    pub mem_list: std::os::fd::BorrowedFd<'a>,
    pub generation: std::os::fd::BorrowedFd<'a>,
}

impl Shared {
    /// Maps the arrays of a loaded object made for `ncpu` possible CPUs.
    pub(crate) fn map(fds: &MapFds<'_>, ncpu: usize) -> std::io::Result<Shared> {
        Ok(Shared {
            stats: Region::map(
                fds.stats,
                array_bytes::<CgroupStats>(ncpu * SLOTS as usize),
                "SLOT_STATS",
            )?,
            ids: Region::map(fds.ids, array_bytes::<u64>(SLOTS as usize), "SLOT_IDS")?,
            mem: Region::map(fds.mem, array_bytes::<SlotMem>(SLOTS as usize), "SLOT_MEM")?,
            cpus: Region::map(fds.cpus, array_bytes::<CpuState>(ncpu), "CPU_STATE")?,
            mem_list: Region::map(fds.mem_list, array_bytes::<u32>(SLOTS as usize), "MEM_LIST")?,
            generation: Region::map(fds.generation, array_bytes::<u64>(1), "CACHE_GEN")?,
            ncpu,
        })
    }

    /// Heap-backed arrays with the kernel's layout (tests play the kernel's part).
    #[cfg(test)]
    pub(crate) fn heap(ncpu: usize) -> Shared {
        Shared {
            stats: Region::heap(array_bytes::<CgroupStats>(ncpu * SLOTS as usize)),
            ids: Region::heap(array_bytes::<u64>(SLOTS as usize)),
            mem: Region::heap(array_bytes::<SlotMem>(SLOTS as usize)),
            cpus: Region::heap(array_bytes::<CpuState>(ncpu)),
            mem_list: Region::heap(array_bytes::<u32>(SLOTS as usize)),
            generation: Region::heap(array_bytes::<u64>(1)),
            ncpu,
        }
    }

    /// Possible CPUs.
    pub(crate) fn ncpu(&self) -> usize {
        self.ncpu
    }

    fn cpu(&self, cpu: usize) -> *mut CpuState {
        debug_assert!(cpu < self.ncpu);
        self.cpus.elem(cpu)
    }

    fn stats(&self, cpu: usize, slot: u32) -> *mut CgroupStats {
        debug_assert!(cpu < self.ncpu && slot < SLOTS);
        self.stats.elem(cpu * SLOTS as usize + slot as usize)
    }

    fn id_at(&self, pos: u32) -> &AtomicU64 {
        debug_assert!(pos < SLOTS);
        // SAFETY: in bounds, 8-byte aligned, shared with the kernel as whole u64s.
        unsafe { &*self.ids.elem::<AtomicU64>(pos as usize) }
    }

    fn mem(&self, slot: u32) -> *mut SlotMem {
        debug_assert!(slot < SLOTS);
        self.mem.elem(slot as usize)
    }

    fn mem_list(&self, i: usize) -> *mut u32 {
        debug_assert!(i < SLOTS as usize);
        // u32 elements, 8 bytes apart as in the kernel's array.
        self.mem_list.elem(i)
    }

    /// The kernel's key cache generation.
    fn generation(&self) -> &AtomicU64 {
        // SAFETY: the map's single, 8-aligned u64.
        unsafe { &*self.generation.elem::<AtomicU64>(0) }
    }

    fn seq(&self, cpu: usize) -> &AtomicU64 {
        // SAFETY: `seq` is the first, 8-aligned field of the entry.
        unsafe { &*(self.cpu(cpu) as *const AtomicU64) }
    }

    /// The mailbox's generation of `cpu`.
    fn mbox_generation(&self, cpu: usize) -> &AtomicU64 {
        // SAFETY: `mbox.generation` is an 8-aligned u64 inside the entry.
        unsafe {
            &*((self.cpu(cpu) as *const u8).add(
                std::mem::offset_of!(CpuState, mbox) + std::mem::offset_of!(Mailbox, generation),
            ) as *const AtomicU64)
        }
    }
}

/// The slot table as user space knows it.
#[derive(Default)]
struct Table {
    by_id: HashMap<u64, u32>,
    /// Tombstoned positions and when they were freed (monotonic ns).
    freed: HashMap<u32, u64>,
    /// Slots with a memory cgroup, in the order written to `MEM_LIST`.
    mem_list: Vec<u32>,
}

/// Why a cgroup could not be watched.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "no free slot for cgroup {id} within {PROBES} positions of the {SLOTS}-slot table: its CPU time is not counted"
)]
pub(crate) struct TableFull {
    pub id: u64,
}

/// What the kernel counted for a set of cgroups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reading {
    /// Counters summed over CPUs and the given cgroups, the slices running now included.
    pub stats: CgroupStats,
    /// Bytes charged to the memory cgroup of the cgroup asked for, as the switch program
    /// last read it (None: never read since the slot was set).
    pub mem_bytes: Option<u64>,
    /// Monotonic ns since when a task of these cgroups has run without a switch, the
    /// earliest over CPUs (None: none runs now).
    pub running_since_ns: Option<u64>,
    /// Some of the cgroups have no slot (table full): their CPU time is missing.
    pub incomplete: bool,
}

/// One container's cgroups in a batched read ([`Slots::read_many`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query<'a> {
    /// Its cgroups.
    pub ids: &'a [u64],
    /// The one whose memory is wanted (its own cgroup).
    pub mem_of: Option<u64>,
}

/// The mapped arrays and the table.
pub(crate) struct Slots {
    shared: Shared,
    table: RwLock<Table>,
    page_size: u64,
    /// Monotonic ns of the last [`Slots::relearn`].
    relearn_ns: AtomicU64,
}

impl Slots {
    pub(crate) fn new(shared: Shared) -> Slots {
        Slots {
            shared,
            table: RwLock::new(Table::default()),
            page_size: page_size(),
            relearn_ns: AtomicU64::new(0),
        }
    }

    /// Slot of watched cgroup `id`.
    #[cfg(test)]
    pub(crate) fn slot_of(&self, id: u64) -> Option<u32> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_id
            .get(&id)
            .copied()
    }

    /// Watches cgroup `id` (idempotent): gives it a slot, with its counters at zero and
    /// `mem_id` (0: none) as the memory cgroup sampled there. `now` is monotonic ns.
    pub(crate) fn watch(&self, id: u64, mem_id: u64, now: u64) -> Result<u32, TableFull> {
        if id == SLOT_EMPTY || id == SLOT_TOMBSTONE {
            return Err(TableFull { id });
        }
        let mut t = self.table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&slot) = t.by_id.get(&id) {
            let m = self.shared.mem(slot);
            // SAFETY: in-bounds element of the mapping.
            if mem_id != 0 && unsafe { std::ptr::read_volatile(&(*m).mem_id) } != mem_id {
                // SAFETY: the same element; user space writes it under the table lock.
                unsafe {
                    std::ptr::write_volatile(&mut (*m).css, 0);
                    std::ptr::write_volatile(&mut (*m).usage_pages, MEM_UNSET);
                    std::ptr::write_volatile(&mut (*m).mem_id, mem_id);
                }
                if !t.mem_list.contains(&slot) {
                    t.mem_list.push(slot);
                    self.write_mem_list(&t.mem_list);
                }
                // The kernel learns the memory cgroup when it fills its key cache.
                self.shared.generation().fetch_add(1, Ordering::AcqRel);
            }
            return Ok(slot);
        }
        let busy = self.referenced();
        let h = slot_hash(id);
        for i in 0..PROBES {
            let pos = (h + i) & (SLOTS - 1);
            let v = self.shared.id_at(pos).load(Ordering::Acquire);
            let free = v == SLOT_EMPTY
                || (v == SLOT_TOMBSTONE
                    && t.freed
                        .get(&pos)
                        .is_some_and(|&at| now.saturating_sub(at) >= REUSE_AFTER_NS)
                    && !busy.contains(&pos));
            if !free {
                continue;
            }
            for cpu in 0..self.shared.ncpu() {
                // SAFETY: in-bounds element; no kernel writer refers to this slot.
                unsafe {
                    std::ptr::write_volatile(self.shared.stats(cpu, pos), CgroupStats::default())
                };
            }
            // SAFETY: in-bounds element.
            unsafe {
                std::ptr::write_volatile(
                    self.shared.mem(pos),
                    SlotMem {
                        mem_id,
                        usage_pages: MEM_UNSET,
                        css: 0,
                    },
                )
            };
            // Published last: a program that finds the id sees the zeroed slot. Then the
            // kernel's key caches, which may hold "not watched" for it, start over.
            self.shared.id_at(pos).store(id, Ordering::Release);
            self.shared.generation().fetch_add(1, Ordering::AcqRel);
            t.freed.remove(&pos);
            t.by_id.insert(id, pos);
            if mem_id != 0 {
                t.mem_list.push(pos);
                self.write_mem_list(&t.mem_list);
            }
            return Ok(pos);
        }
        Err(TableFull { id })
    }

    /// Stops watching cgroup `id` (its slot becomes a tombstone).
    pub(crate) fn forget(&self, id: u64, now: u64) {
        let mut t = self.table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = t.by_id.remove(&id) {
            self.shared
                .id_at(pos)
                .store(SLOT_TOMBSTONE, Ordering::Release);
            self.shared.generation().fetch_add(1, Ordering::AcqRel);
            t.freed.insert(pos, now);
            if let Some(i) = t.mem_list.iter().position(|&s| s == pos) {
                t.mem_list.swap_remove(i);
                self.write_mem_list(&t.mem_list);
                // SAFETY: in-bounds field; `mem_sample` no longer reads this slot.
                unsafe { std::ptr::write_volatile(&mut (*self.shared.mem(pos)).css, 0) };
            }
        }
    }

    /// Writes the list `mem_sample` reads. A run racing this write may read a slot twice
    /// or miss one for that tick; each slot is read from its own memory cgroup, so no
    /// value lands in the wrong slot.
    fn write_mem_list(&self, list: &[u32]) {
        for (i, &slot) in list.iter().enumerate().take(SLOTS as usize) {
            // SAFETY: in-bounds element.
            unsafe { std::ptr::write_volatile(self.shared.mem_list(i), slot) };
        }
    }

    /// How many entries of `MEM_LIST` `mem_sample` should read.
    pub(crate) fn mem_list_len(&self) -> usize {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .mem_list
            .len()
    }

    /// Slots some CPU's state or mailbox refers to now.
    fn referenced(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for cpu in 0..self.shared.ncpu() {
            // SAFETY: in-bounds element; a racy copy is fine for this conservative check.
            let st: CpuState = unsafe { std::ptr::read_volatile(self.shared.cpu(cpu)) };
            if st.task != 0 {
                out.push(st.slot);
            }
            let n = (st.mbox.count as usize).min(MAX_SPLITS);
            out.extend(st.mbox.splits.iter().take(n).map(|s| s.slot));
        }
        out
    }

    /// Makes the kernel's key caches start over (the programs learn a container's
    /// memory cgroup when they cache its slot), at most once per [`REUSE_AFTER_NS`].
    /// For a container whose tasks run while its memory cgroup is still unknown.
    pub(crate) fn relearn(&self, now: u64) {
        let last = self.relearn_ns.load(Ordering::Relaxed);
        if now.saturating_sub(last) < REUSE_AFTER_NS
            || self
                .relearn_ns
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.shared.generation().fetch_add(1, Ordering::AcqRel);
    }

    /// Context switches and unmatched switch-outs over all CPUs.
    pub(crate) fn switch_counts(&self) -> (u64, u64) {
        let (mut sw, mut un) = (0u64, 0u64);
        for cpu in 0..self.shared.ncpu() {
            let p = self.shared.cpu(cpu);
            // SAFETY: in-bounds fields.
            unsafe {
                sw = sw.wrapping_add(std::ptr::read_volatile(&(*p).switches));
                un = un.wrapping_add(std::ptr::read_volatile(&(*p).unmatched));
            }
        }
        (sw, un)
    }

    /// What the kernel counted for cgroups `ids` at monotonic time `now`, and the memory
    /// sampled for `mem_of` (one of them, the container's own cgroup).
    pub(crate) fn read(&self, ids: &[u64], mem_of: Option<u64>, now: u64) -> Reading {
        self.read_many(&[Query { ids, mem_of }], now)
            .pop()
            .unwrap_or_default()
    }

    /// [`Slots::read`] for many containers at once (the sampler's tick): each CPU's
    /// state is read once, with the rows of every container's slots, under one check of
    /// its sequence count.
    pub(crate) fn read_many(&self, queries: &[Query<'_>], now: u64) -> Vec<Reading> {
        let mut out = vec![Reading::default(); queries.len()];
        // Slots of every query, flat: query q owns slots[bounds[q]..bounds[q + 1]].
        let mut slots: Vec<u32> = Vec::with_capacity(queries.len());
        let mut bounds: Vec<usize> = Vec::with_capacity(queries.len() + 1);
        let mut mem_slots: Vec<Option<u32>> = Vec::with_capacity(queries.len());
        {
            let t = self.table.read().unwrap_or_else(|e| e.into_inner());
            for (q, r) in queries.iter().zip(out.iter_mut()) {
                bounds.push(slots.len());
                let before = slots.len();
                slots.extend(q.ids.iter().filter_map(|i| t.by_id.get(i).copied()));
                r.incomplete = slots.len() - before < q.ids.len();
                mem_slots.push(q.mem_of.and_then(|i| t.by_id.get(&i).copied()));
            }
            bounds.push(slots.len());
        }
        let mut part = vec![CgroupStats::default(); queries.len()];
        for cpu in 0..self.shared.ncpu() {
            let (st, mbox) = self.read_cpu(cpu, &slots, &bounds, &mut part);
            for (q, r) in out.iter_mut().enumerate() {
                let own = &slots[bounds[q]..bounds[q + 1]];
                if own.is_empty() {
                    continue;
                }
                if let Some(s) = in_progress(&st, mbox.as_ref(), own, now, &mut part[q]) {
                    r.running_since_ns = Some(r.running_since_ns.map_or(s, |o: u64| o.min(s)));
                }
                r.stats.add(&part[q]);
            }
        }
        for (r, slot) in out.iter_mut().zip(mem_slots) {
            if let Some(slot) = slot {
                // SAFETY: in-bounds field, written whole by the kernel.
                let pages =
                    unsafe { std::ptr::read_volatile(&(*self.shared.mem(slot)).usage_pages) };
                if pages != MEM_UNSET {
                    r.mem_bytes = Some(pages.saturating_mul(self.page_size));
                }
            }
        }
        out
    }

    /// One CPU's state and mailbox, and its row's counters summed per query into `part`
    /// (query q's slots are `slots[bounds[q]..bounds[q + 1]]`), read consistently.
    fn read_cpu(
        &self,
        cpu: usize,
        slots: &[u32],
        bounds: &[usize],
        part: &mut [CgroupStats],
    ) -> (CpuState, Option<Mailbox>) {
        let seq = self.shared.seq(cpu);
        let mut tries = 0;
        loop {
            tries += 1;
            let s1 = seq.load(Ordering::Acquire);
            if s1 & 1 == 1 && tries < MAX_TRIES {
                std::hint::spin_loop();
                continue;
            }
            // SAFETY: in-bounds elements; a torn copy is detected by the sequence count.
            let st: CpuState = unsafe { std::ptr::read_volatile(self.shared.cpu(cpu)) };
            for (q, p) in part.iter_mut().enumerate() {
                *p = CgroupStats::default();
                for &s in &slots[bounds[q]..bounds[q + 1]] {
                    // SAFETY: in-bounds element.
                    p.add(&unsafe { std::ptr::read_volatile(self.shared.stats(cpu, s)) });
                }
            }
            let mbox = self.mailbox(cpu);
            fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) != s1 && tries < MAX_TRIES {
                continue;
            }
            return (st, mbox);
        }
    }

    /// A consistent copy of `cpu`'s mailbox (None if it kept changing).
    fn mailbox(&self, cpu: usize) -> Option<Mailbox> {
        let generation = self.shared.mbox_generation(cpu);
        for _ in 0..100 {
            let g1 = generation.load(Ordering::Acquire);
            // SAFETY: in-bounds field; torn copies are detected by the generation.
            let m: Mailbox = unsafe { std::ptr::read_volatile(&(*self.shared.cpu(cpu)).mbox) };
            fence(Ordering::Acquire);
            if generation.load(Ordering::Relaxed) == g1 {
                return Some(m);
            }
        }
        None
    }
}

/// Adds to `part` the time of the slice running on a CPU (state `st`) that belongs to
/// `slots`: parts closed by a move from the scheduler's sums, the open part from the
/// clock. Returns when the open part started, if it belongs to `slots`.
fn in_progress(
    st: &CpuState,
    mbox: Option<&Mailbox>,
    slots: &[u32],
    now: u64,
    part: &mut CgroupStats,
) -> Option<u64> {
    let pending = mbox.filter(|m| m.generation != st.mbox_seen && m.count > 0);
    // A task runs unrecorded (its switch-in was not traced) and was moved: from its
    // first move on, its time is known; the recorded task is not running.
    if let Some(m) = pending.filter(|m| m.base == ADOPTED) {
        let first = m.splits[0];
        let (mut slot, mut from_sum, mut from_ns) = (first.slot, first.sum, first.ns);
        for sp in m
            .splits
            .iter()
            .take((m.count as usize).min(MAX_SPLITS))
            .skip(1)
        {
            if slots.contains(&slot) {
                part.cpu_ns = part.cpu_ns.wrapping_add(sp.sum.saturating_sub(from_sum));
            }
            (slot, from_sum, from_ns) = (sp.slot, from_sum.max(sp.sum), sp.ns);
        }
        if slot == NO_SLOT || !slots.contains(&slot) {
            return None;
        }
        part.cpu_ns = part.cpu_ns.wrapping_add(now.saturating_sub(from_ns));
        return Some(from_ns);
    }
    if st.task == 0 {
        return None;
    }
    let mut slot = st.slot;
    let mut from_sum = st.start_sum;
    let mut from_ns = if st.start_clock == 0 {
        0
    } else {
        st.start_mono()
    };
    if let Some(m) = pending
        && m.task == st.task
        && m.base == st.start_sum
    {
        for sp in m.splits.iter().take((m.count as usize).min(MAX_SPLITS)) {
            if slot != NO_SLOT && slots.contains(&slot) {
                part.cpu_ns = part.cpu_ns.wrapping_add(sp.sum.saturating_sub(from_sum));
            }
            from_sum = from_sum.max(sp.sum);
            from_ns = sp.ns;
            slot = sp.slot;
        }
    }
    // The recorded task was found switched out (unseen) since its switch-in: no part
    // in progress (its closed parts above stand).
    let ended = st.stale_seq != 0 && st.stale_seq == st.seq;
    if slot == NO_SLOT || !slots.contains(&slot) || from_ns == 0 || ended {
        return None;
    }
    part.cpu_ns = part.cpu_ns.wrapping_add(now.saturating_sub(from_ns));
    Some(from_ns)
}

#[cfg(test)]
#[expect(
    clippy::undocumented_unsafe_blocks,
    reason = "the tests play the kernel's part on a heap-backed region: every access is an \
              in-bounds element of it"
)]
mod tests {
    use super::*;
    use faasload_common::Split;

    const S: u64 = 1_000_000_000;

    /// Plays the switch program on `cpu`: `task` of `slot` switched in at `ns` with
    /// `sum` run so far.
    fn switch_in(sh: &Shared, cpu: usize, task: u64, slot: u32, sum: u64, ns: u64) {
        let p = sh.cpu(cpu);
        unsafe {
            let seq = (*p).seq;
            (*p).seq = seq + 1;
            (*p).task = task;
            (*p).slot = slot;
            (*p).start_sum = sum;
            (*p).start_clock = ns;
            (*p).cal_clock = 0;
            (*p).cal_ktime = 0;
            (*p).seq = seq + 2;
        }
    }

    /// A mailbox's split array holding `used` first.
    fn splits(used: &[Split]) -> [Split; MAX_SPLITS] {
        let mut a = [Split::default(); MAX_SPLITS];
        a[..used.len()].copy_from_slice(used);
        a
    }

    fn charge(sh: &Shared, cpu: usize, slot: u32, ns: u64) {
        unsafe { (*sh.stats(cpu, slot)).cpu_ns += ns };
    }

    #[test]
    fn counters_are_summed_over_cpus_and_slots_with_the_running_slice() {
        let slots = Slots::new(Shared::heap(2));
        let a = slots.watch(1001, 0, 0).unwrap();
        let b = slots.watch(1002, 0, 0).unwrap();
        let other = slots.watch(5000, 0, 0).unwrap();
        charge(&slots.shared, 0, a, 10);
        charge(&slots.shared, 1, a, 20);
        charge(&slots.shared, 1, b, 300);
        charge(&slots.shared, 0, other, 7);
        // CPU 1 runs a task of `b` since t=100 s.
        switch_in(&slots.shared, 1, 0xffff1, b, 5 * S, 100 * S);
        let r = slots.read(&[1001, 1002], Some(1001), 100 * S + 40);
        assert_eq!(r.stats.cpu_ns, 10 + 20 + 300 + 40);
        assert_eq!(r.running_since_ns, Some(100 * S));
        assert!(!r.incomplete);
        assert_eq!(r.mem_bytes, None, "memory never sampled");
        // Another container's running task adds nothing here.
        let r = slots.read(&[5000], None, 100 * S + 40);
        assert_eq!(r.stats.cpu_ns, 7);
        assert_eq!(r.running_since_ns, None);
        // Unknown cgroups make the reading incomplete, never wrong.
        let r = slots.read(&[1001, 77], None, 100 * S + 40);
        assert!(r.incomplete);
        assert_eq!(r.stats.cpu_ns, 30);
    }

    #[test]
    fn a_recorded_task_found_not_running_has_no_slice_in_progress() {
        let slots = Slots::new(Shared::heap(1));
        let a = slots.watch(61, 0, 0).unwrap();
        switch_in(&slots.shared, 0, 0x61, a, 0, 10 * S);
        assert_eq!(slots.read(&[61], None, 11 * S).stats.cpu_ns, S);
        let p = slots.shared.cpu(0);
        unsafe { (*p).stale_seq = (*p).seq };
        assert_eq!(slots.read(&[61], None, 11 * S).stats.cpu_ns, 0);
        // A switch since the check makes the state current again.
        switch_in(&slots.shared, 0, 0x62, a, 0, 10 * S);
        assert_eq!(slots.read(&[61], None, 11 * S).stats.cpu_ns, S);
    }

    #[test]
    fn switch_in_times_are_converted_to_the_monotonic_clock() {
        let slots = Slots::new(Shared::heap(1));
        let a = slots.watch(51, 0, 0).unwrap();
        // The run queue's clock is 7 s behind CLOCK_MONOTONIC (calibrated at 90 s).
        let p = slots.shared.cpu(0);
        unsafe {
            (*p).task = 0x51;
            (*p).slot = a;
            (*p).start_sum = 1;
            (*p).start_clock = 93 * S;
            (*p).cal_clock = 90 * S;
            (*p).cal_ktime = 97 * S;
        }
        let r = slots.read(&[51], None, 100 * S + 5);
        assert_eq!(r.running_since_ns, Some(100 * S));
        assert_eq!(r.stats.cpu_ns, 5);
    }

    #[test]
    fn a_batched_read_equals_reads_one_by_one() {
        let slots = Slots::new(Shared::heap(2));
        for (i, id) in [41u64, 42, 43, 44].into_iter().enumerate() {
            let s = slots.watch(id, 9000 + id, 0).unwrap();
            charge(&slots.shared, i % 2, s, 1000 * id);
            unsafe { (*slots.shared.mem(s)).usage_pages = id };
        }
        let b = slots.slot_of(42).unwrap();
        switch_in(&slots.shared, 1, 0x77, b, 0, 50 * S);
        let now = 50 * S + 123;
        let queries = [
            Query {
                ids: &[41, 42],
                mem_of: Some(41),
            },
            Query {
                ids: &[43],
                mem_of: Some(43),
            },
            Query {
                ids: &[],
                mem_of: None,
            },
            Query {
                ids: &[44, 99],
                mem_of: Some(44),
            },
        ];
        let many = slots.read_many(&queries, now);
        let one: Vec<Reading> = queries
            .iter()
            .map(|q| slots.read(q.ids, q.mem_of, now))
            .collect();
        assert_eq!(many, one);
        assert_eq!(many[0].stats.cpu_ns, 41_000 + 42_000 + 123);
        assert_eq!(many[0].running_since_ns, Some(50 * S));
        assert_eq!(many[1].mem_bytes, Some(43 * page_size()));
        assert!(many[3].incomplete && !many[0].incomplete);
        assert_eq!(many[2], Reading::default());
    }

    #[test]
    fn a_move_splits_the_running_slice_by_the_scheduler_sums() {
        let slots = Slots::new(Shared::heap(1));
        let a = slots.watch(11, 0, 0).unwrap();
        let b = slots.watch(12, 0, 0).unwrap();
        // A task of `a` runs since t=10 s (sum 1 s); moved to `b` at t=10.5 s with 1.4 s
        // run, then back to `a` at t=10.8 s with 1.7 s run.
        switch_in(&slots.shared, 0, 0xabc, a, S, 10 * S);
        let p = slots.shared.cpu(0);
        unsafe {
            (*p).mbox = Mailbox {
                generation: 2,
                task: 0xabc,
                base: S,
                count: 2,
                _pad: 0,
                splits: splits(&[
                    Split {
                        sum: S + 400_000_000,
                        ns: 10 * S + 500_000_000,
                        slot: b,
                        _pad: 0,
                    },
                    Split {
                        sum: S + 700_000_000,
                        ns: 10 * S + 800_000_000,
                        slot: a,
                        _pad: 0,
                    },
                ]),
                _reserved: [0; 4],
            };
        }
        let now = 11 * S;
        let rb = slots.read(&[12], None, now);
        assert_eq!(rb.stats.cpu_ns, 300_000_000, "b: exactly its part by sums");
        assert_eq!(rb.running_since_ns, None, "the task no longer runs in b");
        let ra = slots.read(&[11], None, now);
        assert_eq!(ra.stats.cpu_ns, 400_000_000 + 200_000_000);
        assert_eq!(ra.running_since_ns, Some(10 * S + 800_000_000));
        // Once the switch program consumed the mailbox (seen == generation), it is
        // ignored: the state of the next slice alone counts.
        unsafe { (*p).mbox_seen = 2 };
        assert_eq!(slots.read(&[12], None, now).stats.cpu_ns, 0);
        // A mailbox of another slice (base differs) is ignored too.
        unsafe {
            (*p).mbox_seen = 0;
            (*p).mbox.base = 42;
        }
        assert_eq!(slots.read(&[12], None, now).stats.cpu_ns, 0);
        // From an unwatched cgroup into a watched one: only the part after the move.
        switch_in(&slots.shared, 0, 0xdef, NO_SLOT, 3 * S, 0);
        unsafe {
            (*p).mbox.task = 0xdef;
            (*p).mbox.base = 3 * S;
            (*p).mbox.count = 1;
            (*p).mbox.splits[0] = Split {
                sum: 3 * S + 5,
                ns: 20 * S,
                slot: b,
                _pad: 0,
            };
        }
        let rb = slots.read(&[12], None, 20 * S + 1000);
        assert_eq!(rb.stats.cpu_ns, 1000);
        assert_eq!(rb.running_since_ns, Some(20 * S));
        // A task running unrecorded (switch-in not traced) moved into `b` at 30 s and
        // into `a` at 30.2 s (with 0.15 s run in between): `b` has its part by the sums,
        // `a` the time since; the recorded task (unwatched) is not running.
        switch_in(&slots.shared, 0, 0x999, NO_SLOT, 0, 0);
        unsafe {
            (*p).mbox_seen = 0;
            (*p).mbox = Mailbox {
                generation: 9,
                task: 0x1234,
                base: ADOPTED,
                count: 2,
                _pad: 0,
                splits: splits(&[
                    Split {
                        sum: 7 * S,
                        ns: 30 * S,
                        slot: b,
                        _pad: 0,
                    },
                    Split {
                        sum: 7 * S + 150_000_000,
                        ns: 30 * S + 200_000_000,
                        slot: a,
                        _pad: 0,
                    },
                ]),
                _reserved: [0; 4],
            };
        }
        let now = 31 * S;
        assert_eq!(slots.read(&[12], None, now).stats.cpu_ns, 150_000_000);
        let ra = slots.read(&[11], None, now);
        assert_eq!(ra.running_since_ns, Some(30 * S + 200_000_000));
        assert_eq!(ra.stats.cpu_ns, 800_000_000);
        unsafe { (*p).mbox_seen = 9 };
        assert_eq!(slots.read(&[12], None, now).stats.cpu_ns, 0, "consumed");
    }

    #[test]
    fn memory_is_read_only_once_sampled_and_only_for_the_cgroup_asked() {
        let slots = Slots::new(Shared::heap(1));
        let a = slots.watch(21, 9021, 0).unwrap();
        let m = slots.shared.mem(a);
        assert_eq!(unsafe { (*m).mem_id }, 9021);
        assert_eq!(slots.mem_list_len(), 1);
        assert_eq!(unsafe { *slots.shared.mem_list(0) }, a);
        assert_eq!(slots.read(&[21], Some(21), 1).mem_bytes, None);
        unsafe { (*m).usage_pages = 3 };
        let page = page_size();
        assert_eq!(slots.read(&[21], Some(21), 1).mem_bytes, Some(3 * page));
        assert_eq!(slots.read(&[21], None, 1).mem_bytes, None);
        // Watching again with another memory cgroup resets the sample.
        unsafe { (*m).css = 0xffff_8888 };
        slots.watch(21, 9022, 0).unwrap();
        assert_eq!(slots.read(&[21], Some(21), 1).mem_bytes, None);
        assert_eq!(unsafe { ((*m).mem_id, (*m).css) }, (9022, 0));
        assert_eq!(slots.mem_list_len(), 1);
        // Slots without a memory cgroup are not listed; forgetting unlists.
        let b = slots.watch(22, 0, 0).unwrap();
        let c = slots.watch(23, 9023, 0).unwrap();
        assert_eq!(slots.mem_list_len(), 2);
        assert_ne!(b, c);
        slots.forget(21, 5);
        assert_eq!(slots.mem_list_len(), 1);
        assert_eq!(unsafe { *slots.shared.mem_list(0) }, c);
    }

    #[test]
    fn table_probes_reuses_tombstones_late_and_reports_full() {
        let slots = Slots::new(Shared::heap(1));
        // Ids that all hash to the same position.
        let h = slot_hash(100);
        let same: Vec<u64> = (1..2_000_000u64)
            .filter(|&i| slot_hash(i) == h)
            .take(PROBES as usize + 1)
            .collect();
        assert_eq!(same.len(), PROBES as usize + 1);
        let mut got = Vec::new();
        for &id in &same[..PROBES as usize] {
            got.push(slots.watch(id, 0, 0).unwrap());
        }
        let expect: Vec<u32> = (0..PROBES).map(|i| (h + i) & (SLOTS - 1)).collect();
        assert_eq!(got, expect, "linear probing");
        let generation = slots.shared.generation().load(Ordering::Relaxed);
        assert_eq!(
            generation, PROBES as u64,
            "every new slot invalidates the key caches"
        );
        assert_eq!(slots.watch(same[0], 0, 0), Ok(got[0]), "idempotent");
        assert_eq!(
            slots.shared.generation().load(Ordering::Relaxed),
            generation
        );
        let extra = same[PROBES as usize];
        assert_eq!(slots.watch(extra, 0, 0), Err(TableFull { id: extra }));
        // Forget one: its position is a tombstone, not reusable at once.
        slots.forget(same[2], 5 * S);
        assert_eq!(
            slots.shared.generation().load(Ordering::Relaxed),
            generation + 1
        );
        assert_eq!(
            slots.shared.id_at(got[2]).load(Ordering::Relaxed),
            SLOT_TOMBSTONE
        );
        assert!(slots.watch(extra, 0, 5 * S + 1).is_err());
        // Not while a CPU still runs a task charged to it.
        charge(&slots.shared, 0, got[2], 123);
        switch_in(&slots.shared, 0, 0x1, got[2], 0, 5 * S);
        assert!(slots.watch(extra, 0, 7 * S).is_err());
        switch_in(&slots.shared, 0, 0x2, NO_SLOT, 0, 0);
        assert_eq!(slots.watch(extra, 0, 7 * S), Ok(got[2]));
        assert_eq!(
            slots.read(&[extra], None, 7 * S).stats.cpu_ns,
            0,
            "a reused slot starts at zero"
        );
        // Later positions stay reachable past the tombstone's reuse.
        assert_eq!(slots.slot_of(same[7]), Some(got[7]));
        assert_eq!(slots.watch(0, 0, 0), Err(TableFull { id: 0 }));
    }

    #[test]
    fn elements_are_laid_out_with_the_kernels_stride() {
        // The kernel rounds an array map's value size up to 8 bytes: a u32 list has
        // 8-byte elements (writing them 4 bytes apart put half the slots out of reach).
        assert_eq!(stride::<u32>(), 8);
        assert_eq!(stride::<CgroupStats>(), 64);
        assert_eq!(stride::<CpuState>(), 384);
        assert_eq!(stride::<SlotMem>(), 24);
        let sh = Shared::heap(1);
        let base = sh.mem_list.ptr as usize;
        assert_eq!(sh.mem_list(3) as usize - base, 24);
    }

    #[test]
    fn an_odd_sequence_that_never_settles_does_not_hang_the_reader() {
        let slots = Slots::new(Shared::heap(1));
        let a = slots.watch(31, 0, 0).unwrap();
        charge(&slots.shared, 0, a, 5);
        unsafe { (*slots.shared.cpu(0)).seq = 7 };
        assert_eq!(slots.read(&[31], None, 0).stats.cpu_ns, 5);
    }
}
