//! Loads and attaches faasload's kernel programs (aya), and reads what they count: on-CPU
//! time and scheduler counters per cgroup, drop counters, BPF run-time statistics, and
//! the ring buffer of rare events. Programs are detached when [`Kernel`] is dropped.
use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::sync::{Mutex, RwLock};

use anyhow::{Context, Result, anyhow};
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};
use faasload_common::{CgroupStats, CpuState, Event, MODE_V1, MODE_V2, counter, globals, names};

use super::btf::KernelOffsets;
use faasload_cgroup::{Layout, Version};
use faasload_os::clock::mono_ns;

/// The object built by `cargo xtask build-ebpf`, embedded at compile time.
static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("FAASLOAD_EBPF_OBJ"));

/// The programs and the tracepoints they attach to.
const PROGRAMS: [&str; 10] = [
    "sched_switch",
    "sched_wakeup",
    "sched_migrate_task",
    "cgroup_mkdir",
    "cgroup_rmdir",
    "cgroup_freeze",
    "cgroup_unfreeze",
    "sched_process_exec",
    "sched_process_exit",
    "mark_victim",
];

/// Names of the drop/activity counters, by index.
pub const COUNTER_NAMES: [(u32, &str); 6] = [
    (counter::SWITCHES, "switches"),
    (counter::STATS_FULL, "stats_map_full"),
    (counter::STATS_LOST_NS, "stats_lost_ns"),
    (counter::EVENTS_DROPPED, "events_dropped"),
    (counter::EVENTS_SENT, "events_sent"),
    (counter::READ_FAILED, "kernel_read_failed"),
];

/// Kernel BPF statistics of one program.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProgStats {
    pub name: String,
    pub run_time_ns: u64,
    pub run_count: u64,
}

/// The loaded kernel programs and their maps.
pub struct Kernel {
    _bpf: Ebpf,
    stats: RwLock<PerCpuHashMap<MapData, u64, CgroupStats>>,
    cpu_state: PerCpuArray<MapData, CpuState>,
    counters: PerCpuArray<MapData, u64>,
    watched: Mutex<BpfHashMap<MapData, u64, u8>>,
    prog_ids: Vec<(String, u32)>,
    _stats_fd: Option<OwnedFd>,
}

/// What `load` hands over besides the [`Kernel`]: the event ring buffer and aya-log's.
pub struct Channels {
    pub events: RingBuf<MapData>,
    pub logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
}

impl Kernel {
    /// Loads and attaches every program, with offsets read from the kernel's BTF.
    /// `bpf_stats` turns on the kernel's run-time statistics while the monitor runs.
    pub fn load(layout: &Layout, bpf_stats: bool) -> Result<(Kernel, Channels)> {
        let off = KernelOffsets::from_sys()
            .context("reading kernel offsets from /sys/kernel/btf/vmlinux")?;
        let mode = match layout.version() {
            Version::V1 => MODE_V1,
            Version::V2 => MODE_V2,
        };
        let btf = Btf::from_sys_fs().context("reading kernel BTF")?;
        let mut loader = EbpfLoader::new();
        loader
            .btf(Some(&btf))
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
            .override_global(globals::OFF_TASK_SE, &off.task_se, true)
            .override_global(globals::OFF_SE_SUM, &off.se_sum_exec_runtime, true)
            .override_global(
                globals::OFF_SE_PREV_SUM,
                &off.se_prev_sum_exec_runtime,
                true,
            )
            .override_global(globals::OFF_TASK_PID, &off.task_pid, true);
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
        let stats = PerCpuHashMap::try_from(take(&mut bpf, names::CGROUP_STATS)?)?;
        let cpu_state = PerCpuArray::try_from(take(&mut bpf, names::CPU_STATE)?)?;
        let counters = PerCpuArray::try_from(take(&mut bpf, names::COUNTERS)?)?;
        let watched = BpfHashMap::try_from(take(&mut bpf, names::WATCHED)?)?;
        let events = RingBuf::try_from(take(&mut bpf, names::EVENTS)?)?;
        Ok((
            Kernel {
                _bpf: bpf,
                stats: RwLock::new(stats),
                cpu_state,
                counters,
                watched: Mutex::new(watched),
                prog_ids,
                _stats_fd: stats_fd,
            },
            Channels { events, logger },
        ))
    }

    /// Counters of the cgroups `ids` summed over CPUs, including the time of the slices
    /// running right now on any CPU for these cgroups (so a query never misses the part of
    /// an activation not yet ended by a context switch).
    pub fn cgroup_stats(&self, ids: &[u64]) -> CgroupStats {
        // The map and the per-CPU "running now" state are read separately; a context
        // switch of one of these cgroups between the two reads would move a slice from
        // "running" into the map unseen (or count it twice). So the state is read before
        // and after the map, and the read is retried until no such switch happened.
        let mut tries = 0;
        loop {
            let before = self.cpu_state.get(&0, 0).ok();
            let mut total = CgroupStats::default();
            {
                let map = self.stats.read().unwrap_or_else(|e| e.into_inner());
                for id in ids {
                    if let Ok(per_cpu) = map.get(id, 0) {
                        for v in per_cpu.iter() {
                            total.add(v);
                        }
                    }
                }
            }
            let after = self.cpu_state.get(&0, 0).ok();
            let now = mono_ns();
            let (Some(before), Some(after)) = (before, after) else {
                return total;
            };
            let moved = before
                .iter()
                .zip(after.iter())
                .any(|(b, a)| ids.contains(&b.cgroup) && b != a);
            tries += 1;
            if moved && tries < 100 {
                continue;
            }
            for s in after.iter() {
                if ids.contains(&s.cgroup) && s.last_switch_ns != 0 && now > s.last_switch_ns {
                    total.cpu_ns += now - s.last_switch_ns;
                }
            }
            return total;
        }
    }

    /// Drop and activity counters summed over CPUs, by index of [`counter`].
    pub fn counters(&self) -> [u64; counter::COUNT as usize] {
        let mut out = [0u64; counter::COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            if let Ok(v) = self.counters.get(&(i as u32), 0) {
                *slot = v.iter().sum();
            }
        }
        out
    }

    /// Asks for process exec/exit events of cgroup `id`.
    pub fn watch(&self, id: u64) {
        let mut w = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = w.insert(id, 1u8, 0) {
            tracing::warn!("cannot watch cgroup {id}: {e}");
        }
    }

    /// Forgets cgroup `id` (after its container's grace period).
    pub fn forget(&self, id: u64) {
        let _ = self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let _ = self
            .stats
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Kernel run-time statistics of each program (zero unless stats are on).
    pub fn program_stats(&self) -> Vec<ProgStats> {
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
    pub fn program_ids(&self) -> Vec<u32> {
        self.prog_ids.iter().map(|(_, id)| *id).collect()
    }
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Option<Event> {
    if bytes.len() < std::mem::size_of::<Event>() {
        return None;
    }
    // SAFETY: size checked; Event is plain data, any bit pattern is valid.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const Event) })
}

/// The path carried by an event, up to its NUL.
pub fn event_path(ev: &Event) -> &str {
    let n = ev
        .path
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(ev.path.len());
    std::str::from_utf8(&ev.path[..n]).unwrap_or("")
}

/// Hierarchy id of the v1 `cpu` controller (from /proc/cgroups), or 0 for cgroup v2.
pub fn cpu_hierarchy_id(layout: &Layout) -> u32 {
    if layout.version() == Version::V2 {
        return 0;
    }
    std::fs::read_to_string("/proc/cgroups")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some("cpu"))
                    .then(|| f.next()?.parse().ok())
                    .flatten()
            })
        })
        .unwrap_or(0)
}
