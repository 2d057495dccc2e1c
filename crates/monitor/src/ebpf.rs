//! Loads and attaches faasload's kernel programs (aya), and reads what they count: on-CPU
//! time, scheduler counters and memory samples per watched cgroup from arrays mapped into
//! this process ([`crate::slots`]), drop counters, BPF run-time statistics, and the ring
//! buffer of rare events. Programs are detached when [`Kernel`] is dropped.
use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result, anyhow};
use aya::maps::{Map, MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, RawTracePoint, RawTracePointRunOptions, TestRun};
use aya::{Btf, Ebpf, EbpfLoader};
use faasload_common::{
    CACHE_REGIONS, CACHE_SLOTS, CgroupStats, Event, MAX_CPUS, MODE_V1, MODE_V2, SLOTS, counter,
    globals, names,
};

use super::btf::{FairGroupOffsets, KernelOffsets};
use super::slots::{MapFds, Query, Reading, Shared, Slots};
use faasload_cgroup::{Layout, Version};
use faasload_os::clock::mono_ns;

/// The object built by `cargo xtask build-ebpf`, embedded at compile time.
static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("FAASLOAD_EBPF_OBJ"));

/// The programs and the tracepoints they attach to.
const PROGRAMS: [&str; 11] = [
    "sched_switch",
    "sched_wakeup",
    "sched_migrate_task",
    "cgroup_attach_task",
    "cgroup_mkdir",
    "cgroup_rmdir",
    "cgroup_freeze",
    "cgroup_unfreeze",
    "sched_process_exec",
    "sched_process_exit",
    "mark_victim",
];

/// Index in [`Kernel::counters`] of the context switches seen.
pub(crate) const SWITCHES: u32 = counter::COUNT;
/// Index of the switch-outs whose switch-in was not seen.
pub(crate) const SWITCHES_UNMATCHED: u32 = counter::COUNT + 1;
/// Index of the cgroups not watched because the slot table was full.
pub(crate) const TABLE_FULL: u32 = counter::COUNT + 2;
/// Index of the per-tick memory samples read from a cgroup file because the kernel did
/// not know the container's memory cgroup (yet).
pub(crate) const MEM_FILE_READS: u32 = counter::COUNT + 4;
/// Length of [`Kernel::counters`].
pub(crate) const N_COUNTERS: usize = counter::COUNT as usize + 5;
/// Index of the failed runs of `mem_sample` (memory read from files that tick).
pub(crate) const MEM_SAMPLE_FAILED: u32 = counter::COUNT + 3;

/// Names of the drop/activity counters, by index of [`Kernel::counters`].
pub(crate) const COUNTER_NAMES: [(u32, &str); 11] = [
    (SWITCHES, "switches"),
    (TABLE_FULL, "stats_map_full"),
    (counter::LOST_NS, "stats_lost_ns"),
    (counter::EVENTS_DROPPED, "events_dropped"),
    (counter::EVENTS_SENT, "events_sent"),
    (counter::READ_FAILED, "kernel_read_failed"),
    (SWITCHES_UNMATCHED, "switches_unmatched"),
    (counter::MOVES_SPLIT, "moves_split"),
    (counter::MOVES_OVERFLOW, "moves_overflow"),
    (MEM_SAMPLE_FAILED, "mem_sample_failed"),
    (MEM_FILE_READS, "mem_file_reads"),
];

/// Kernel BPF statistics of one program.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct ProgStats {
    pub name: String,
    pub run_time_ns: u64,
    pub run_count: u64,
}

/// The loaded kernel programs and their maps.
pub(crate) struct Kernel {
    slots: Slots,
    counters: PerCpuArray<MapData, u64>,
    table_full: std::sync::atomic::AtomicU64,
    sample_failed: std::sync::atomic::AtomicU64,
    mem_file_reads: std::sync::atomic::AtomicU64,
    prog_ids: Vec<(String, u32)>,
    _stats_fd: Option<OwnedFd>,
    // Dropped last: detaches the programs and closes the maps (after the mappings).
    _maps: Vec<Map>,
    _bpf: Ebpf,
}

/// What `load` hands over besides the [`Kernel`]: the event ring buffer and aya-log's.
pub(crate) struct Channels {
    pub events: RingBuf<MapData>,
    pub logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
}

fn array_fd(m: &Map) -> Result<std::os::fd::BorrowedFd<'_>> {
    match m {
        Map::Array(d) => Ok(d.fd().as_fd()),
        _ => Err(anyhow!("expected an array map")),
    }
}

impl Kernel {
    /// Loads and attaches every program, with offsets read from the kernel's BTF.
    /// `bpf_stats` turns on the kernel's run-time statistics while the monitor runs.
    pub(crate) fn load(layout: &Layout, bpf_stats: bool) -> Result<(Kernel, Channels)> {
        let off = KernelOffsets::from_sys()
            .context("reading kernel offsets from /sys/kernel/btf/vmlinux")?;
        let mode = match layout.version() {
            Version::V1 => MODE_V1,
            Version::V2 => MODE_V2,
        };
        let ncpu = aya::util::nr_cpus().map_err(|(what, e)| anyhow!("reading {what}: {e}"))?;
        if ncpu > MAX_CPUS as usize {
            tracing::warn!(
                "{ncpu} possible CPUs: moves of running tasks are split on the first {MAX_CPUS} only"
            );
        }
        let ncpu_u64 = ncpu as u64;
        let cpu_hierarchy = u64::from(cpu_hierarchy_id(layout));
        let css_usage = off.css_memcg_usage();
        let btf = Btf::from_sys_fs().context("reading kernel BTF")?;
        let stats_entries = u32::try_from(ncpu)
            .ok()
            .and_then(|n| n.checked_mul(SLOTS))
            .ok_or_else(|| anyhow!("{ncpu} possible CPUs: too many"))?;
        // On v1 a `cpu` cgroup is exactly one task group: its per-CPU run queue, which the
        // scheduler has just touched at a switch, keys the cgroup cache. On v2 a task group
        // may hold several cgroups (cpu controller not enabled below it): key by cgroup.
        let no_fair = FairGroupOffsets {
            se_cfs_rq: 0,
            cfs_rq_tg: 0,
            tg_css: 0,
            cfs_rq_rq: 0,
            rq_clock: 0,
        };
        // Switch-in times from the run queue's clock wherever the task's run queue is
        // reachable (fair group scheduling), else from bpf_ktime_get_ns.
        let clock_from_rq = u64::from(off.fair_group.is_some());
        let on_cpu = off.task_on_cpu.unwrap_or((0, 0));
        let (key_cfs_rq, fg) = match (mode, off.fair_group) {
            (MODE_V1, Some(f)) => (1u64, f),
            (_, f) => (0u64, f.unwrap_or(no_fair)),
        };
        let cache_entries = u32::try_from(ncpu)
            .ok()
            .and_then(|n| n.checked_mul(CACHE_REGIONS * CACHE_SLOTS))
            .ok_or_else(|| anyhow!("{ncpu} possible CPUs: too many"))?;
        let mut loader = EbpfLoader::new();
        loader
            .btf(Some(&btf))
            .map_max_entries(names::SLOT_STATS, stats_entries)
            .map_max_entries(names::CPU_STATE, ncpu as u32)
            .map_max_entries(names::KEY_CACHE, cache_entries)
            .override_global(globals::KEY_CFS_RQ, &key_cfs_rq, true)
            .override_global(globals::OFF_SE_CFS_RQ, &fg.se_cfs_rq, true)
            .override_global(globals::OFF_CFS_RQ_TG, &fg.cfs_rq_tg, true)
            .override_global(globals::OFF_TG_CSS, &fg.tg_css, true)
            .override_global(globals::CLOCK_FROM_RQ, &clock_from_rq, true)
            .override_global(globals::OFF_CFS_RQ_RQ, &fg.cfs_rq_rq, true)
            .override_global(globals::OFF_RQ_CLOCK, &fg.rq_clock, true)
            .override_global(globals::CGROUP_MODE, &mode, true)
            .override_global(globals::OFF_TASK_CGROUPS, &off.task_cgroups, true)
            .override_global(globals::OFF_CSS_SET_SUBSYS, &off.css_set_subsys, true)
            .override_global(globals::OFF_CSS_SET_DFL_CGRP, &off.css_set_dfl_cgrp, true)
            .override_global(globals::OFF_CSS_CGROUP, &off.css_cgroup, true)
            .override_global(globals::OFF_CGROUP_KN, &off.cgroup_kn, true)
            .override_global(globals::OFF_CGROUP_ROOT, &off.cgroup_root, true)
            .override_global(globals::OFF_ROOT_HIERARCHY_ID, &off.root_hierarchy_id, true)
            .override_global(globals::OFF_KN_ID, &off.kn_id, true)
            .override_global(globals::CPU_SUBSYS_ID, &off.cpu_cgrp_id, true)
            .override_global(globals::MEMORY_SUBSYS_ID, &off.memory_cgrp_id, true)
            .override_global(globals::OFF_TASK_SE, &off.task_se, true)
            .override_global(globals::OFF_SE_SUM, &off.se_sum_exec_runtime, true)
            .override_global(
                globals::OFF_SE_PREV_SUM,
                &off.se_prev_sum_exec_runtime,
                true,
            )
            .override_global(globals::OFF_TASK_TGID, &off.task_tgid, true)
            .override_global(globals::OFF_TASK_POLICY, &off.task_policy, true)
            .override_global(globals::OFF_TASK_PRIO, &off.task_prio, true)
            .override_global(globals::OFF_TASK_ON_CPU, &on_cpu.0, true)
            .override_global(globals::OFF_TASK_CPU, &on_cpu.1, true)
            .override_global(globals::OFF_CSS_MEMCG_USAGE, &css_usage, true)
            .override_global(globals::CPU_HIERARCHY, &cpu_hierarchy, true)
            .override_global(globals::NR_CPUS, &ncpu_u64, true);
        let mut bpf = loader.load(OBJECT).context("loading the eBPF object")?;
        let logger = match aya_log::EbpfLogger::init(&mut bpf) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("aya-log unavailable: {e}");
                None
            }
        };
        let mut prog_ids = Vec::new();
        for name in PROGRAMS {
            let prog: &mut BtfTracePoint = bpf
                .program_mut(name)
                .ok_or_else(|| anyhow!("program {name} missing from the object"))?
                .try_into()
                .with_context(|| format!("program {name} is not tp_btf"))?;
            prog.load(name, &btf)
                .with_context(|| format!("loading program {name}"))?;
            prog.attach()
                .with_context(|| format!("attaching program {name}"))?;
            if let Ok(info) = prog.info() {
                prog_ids.push((name.to_string(), info.id()));
            }
        }
        // Not attached: run by user space once per tick (BPF_PROG_TEST_RUN).
        let sample: &mut RawTracePoint = bpf
            .program_mut(names::MEM_SAMPLE)
            .ok_or_else(|| anyhow!("program {} missing from the object", names::MEM_SAMPLE))?
            .try_into()
            .with_context(|| format!("program {} is not a raw tracepoint", names::MEM_SAMPLE))?;
        sample
            .load()
            .with_context(|| format!("loading program {}", names::MEM_SAMPLE))?;
        if let Ok(info) = sample.info() {
            prog_ids.push((names::MEM_SAMPLE.to_string(), info.id()));
        }
        let stats_fd = if bpf_stats {
            match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    tracing::warn!("kernel BPF statistics unavailable: {e}");
                    None
                }
            }
        } else {
            None
        };
        let take = |bpf: &mut Ebpf, n: &str| {
            bpf.take_map(n)
                .ok_or_else(|| anyhow!("map {n} missing from the object"))
        };
        let maps = vec![
            take(&mut bpf, names::SLOT_STATS)?,
            take(&mut bpf, names::SLOT_IDS)?,
            take(&mut bpf, names::SLOT_MEM)?,
            take(&mut bpf, names::CPU_STATE)?,
            take(&mut bpf, names::MEM_LIST)?,
            take(&mut bpf, names::CACHE_GEN)?,
        ];
        let shared = Shared::map(
            &MapFds {
                stats: array_fd(&maps[0]).context(names::SLOT_STATS)?,
                ids: array_fd(&maps[1]).context(names::SLOT_IDS)?,
                mem: array_fd(&maps[2]).context(names::SLOT_MEM)?,
                cpus: array_fd(&maps[3]).context(names::CPU_STATE)?,
                mem_list: array_fd(&maps[4]).context(names::MEM_LIST)?,
                generation: array_fd(&maps[5]).context(names::CACHE_GEN)?,
            },
            ncpu,
        )
        .context("mapping the kernel programs' arrays")?;
        let counters = PerCpuArray::try_from(take(&mut bpf, names::COUNTERS)?)?;
        let events = RingBuf::try_from(take(&mut bpf, names::EVENTS)?)?;
        Ok((
            Kernel {
                slots: Slots::new(shared),
                counters,
                table_full: std::sync::atomic::AtomicU64::new(0),
                sample_failed: std::sync::atomic::AtomicU64::new(0),
                mem_file_reads: std::sync::atomic::AtomicU64::new(0),
                prog_ids,
                _stats_fd: stats_fd,
                _maps: maps,
                _bpf: bpf,
            },
            Channels { events, logger },
        ))
    }

    /// What the kernel counted for cgroups `ids` now (the slices running right now on
    /// any CPU included, so a query never misses the part of an activation not yet ended
    /// by a context switch), and the memory sampled for `mem_of`.
    pub(crate) fn read(&self, ids: &[u64], mem_of: Option<u64>) -> Reading {
        self.slots.read(ids, mem_of, mono_ns())
    }

    /// Reads the memory of every watched container into the mapped array: one run of
    /// the `mem_sample` program (one system call for all containers), which also notes
    /// the CPUs whose recorded task stopped running unseen. False if it could not run
    /// (the values are then those of the last run; the caller reads files).
    pub(crate) fn sample_memory(&self) -> bool {
        self.run_sample(self.slots.mem_list_len())
    }

    /// Notes the CPUs whose recorded task stopped running unseen (a switch the kernel did
    /// not trace), so that a reading right after counts no slice that has ended: for
    /// activation boundaries between two ticks.
    pub(crate) fn check_running(&self) {
        self.run_sample(0);
    }

    fn run_sample(&self, n: usize) -> bool {
        let prog: Option<&RawTracePoint> = self
            ._bpf
            .program(names::MEM_SAMPLE)
            .and_then(|p| p.try_into().ok());
        let ran = match prog {
            Some(p) => {
                let mut opts = RawTracePointRunOptions::new();
                opts.args[0] = n as u64;
                p.test_run(opts)
                    .map_err(|e| tracing::debug!("{}: {e}", names::MEM_SAMPLE))
                    .is_ok()
            }
            None => false,
        };
        if !ran {
            self.sample_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        ran
    }

    /// Counts a per-tick memory sample read from a file instead of the kernel's copy,
    /// and, if the container ran (`ran`), has the kernel look for its memory cgroup
    /// again (its key caches are refilled, at most once per second).
    pub(crate) fn note_mem_file_read(&self, ran: bool) {
        self.mem_file_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if ran {
            self.slots.relearn(mono_ns());
        }
    }

    /// [`Kernel::read`] for many containers at once (one pass over the CPUs).
    pub(crate) fn read_many(&self, queries: &[Query<'_>]) -> Vec<Reading> {
        self.slots.read_many(queries, mono_ns())
    }

    /// Counters of the cgroups `ids` summed over CPUs, slices running now included.
    pub(crate) fn cgroup_stats(&self, ids: &[u64]) -> CgroupStats {
        self.read(ids, None).stats
    }

    /// Drop and activity counters summed over CPUs, by index (see [`COUNTER_NAMES`]).
    pub(crate) fn counters(&self) -> [u64; N_COUNTERS] {
        let mut out = [0u64; N_COUNTERS];
        for (i, slot) in out.iter_mut().take(counter::COUNT as usize).enumerate() {
            if let Ok(v) = self.counters.get(&(i as u32), 0) {
                *slot = v.iter().sum();
            }
        }
        let (switches, unmatched) = self.slots.switch_counts();
        out[SWITCHES as usize] = switches;
        out[SWITCHES_UNMATCHED as usize] = unmatched;
        out[TABLE_FULL as usize] = self.table_full.load(std::sync::atomic::Ordering::Relaxed);
        out[MEM_SAMPLE_FAILED as usize] = self
            .sample_failed
            .load(std::sync::atomic::Ordering::Relaxed);
        out[MEM_FILE_READS as usize] = self
            .mem_file_reads
            .load(std::sync::atomic::Ordering::Relaxed);
        out
    }

    /// Counts cgroup `id`'s CPU time, switches and wake-ups from now on, and samples the
    /// page counter of memory cgroup `mem_id` (its inode; 0: none) at its switch-outs.
    /// Also asks for its process exec/exit events.
    pub(crate) fn watch(&self, id: u64, mem_id: u64) {
        if let Err(e) = self.slots.watch(id, mem_id, mono_ns()) {
            self.table_full
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!("{e}");
        }
    }

    /// Forgets cgroup `id` (after its container's grace period).
    pub(crate) fn forget(&self, id: u64) {
        self.slots.forget(id, mono_ns());
    }

    /// Kernel run-time statistics of each program (zero unless stats are on).
    pub(crate) fn program_stats(&self) -> Vec<ProgStats> {
        let wanted: HashSet<u32> = self.prog_ids.iter().map(|(_, id)| *id).collect();
        let mut out = Vec::new();
        for info in aya::programs::loaded_programs().flatten() {
            if wanted.contains(&info.id()) {
                let name = self
                    .prog_ids
                    .iter()
                    .find(|(_, id)| *id == info.id())
                    .map(|(n, _)| n.clone())
                    .unwrap_or_default();
                out.push(ProgStats {
                    name,
                    run_time_ns: info.run_time().as_nanos() as u64,
                    run_count: info.run_count(),
                });
            }
        }
        out
    }

    /// Ids of the programs this monitor loaded (to check they are gone after shutdown).
    pub(crate) fn program_ids(&self) -> Vec<u32> {
        self.prog_ids.iter().map(|(_, id)| *id).collect()
    }
}

/// Decodes one ring-buffer record.
pub(crate) fn decode(bytes: &[u8]) -> Option<Event> {
    if bytes.len() < std::mem::size_of::<Event>() {
        return None;
    }
    // SAFETY: size checked; Event is plain data, any bit pattern is valid.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const Event) })
}

/// The path carried by an event, up to its NUL.
pub(crate) fn event_path(ev: &Event) -> &str {
    let n = ev
        .path
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(ev.path.len());
    std::str::from_utf8(&ev.path[..n]).unwrap_or("")
}

/// Hierarchy id of the v1 `cpu` controller (from /proc/cgroups), or 0 for cgroup v2.
pub(crate) fn cpu_hierarchy_id(layout: &Layout) -> u32 {
    hierarchy_id(layout, "cpu")
}

/// Hierarchy id of the v1 `memory` controller, or 0 for cgroup v2 (or without it).
pub(crate) fn memory_hierarchy_id(layout: &Layout) -> u32 {
    hierarchy_id(layout, "memory")
}

fn hierarchy_id(layout: &Layout, controller: &str) -> u32 {
    if layout.version() == Version::V2 {
        return 0;
    }
    std::fs::read_to_string("/proc/cgroups")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some(controller))
                    .then(|| f.next()?.parse().ok())
                    .flatten()
            })
        })
        .unwrap_or(0)
}
