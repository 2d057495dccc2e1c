//! The monitor's shared state: the container table (with each container's ring of
//! samples and open activations), the finished-activation store, and the counters the
//! monitor keeps about itself. Sampler, event reader and socket handlers all go through
//! here; locks are short and never held across I/O to clients.
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use faasload_common::CgroupStats;
use faasload_protocol::monitor::{
    ActivationCounters, ActivationSummary, ContainerEvent, InitSummary, MemPeakSource, StreamItem,
};
use tokio::sync::broadcast;

use super::config::{Backend, MonitorConfig};
use super::discovery::{Found, Matcher};
use super::ebpf::Kernel;
use super::slots::{Query, Reading};
use faasload_cgroup::{CgroupReader, Controller, Counters, Layout, inode};
use faasload_os::clock::epoch_ns;

/// Hardware counters' availability, as `hello` and summaries carry it.
pub(crate) use faasload_protocol::monitor::Hardware;

/// One sample of a container. `NONE` marks a value this host or cgroup lacks.
///
/// Where the values come from (eBPF backend): CPU from the kernel programs' counters,
/// memory from the page counter the `mem_sample` program read for all containers at this
/// tick (the cgroup file while the kernel does not know the container's memory cgroup
/// yet, at most once per second while the container does not run, and for the samples
/// taken at discovery and removal); `rss_mapped` from
/// `memory.stat` at most once per second and at activation boundaries, moved in between
/// by the page counter's change. The cgroupfs backend reads every value from the files
/// at every tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Epoch nanoseconds.
    pub t_ns: u64,
    /// Cumulative CPU time (ns): eBPF on-CPU time, or cgroupfs usage.
    pub cpu_ns: u64,
    /// Memory charged (bytes): the memory cgroup's page counter.
    pub mem_bytes: u64,
    /// FaaSLoad's memory metric: rss + mapped_file (bytes). eBPF backend: exact when
    /// `memory.stat` was read for this sample; otherwise the last reading (at most 1 s
    /// old) plus the change of `mem_bytes` since it (what was charged or freed meanwhile
    /// is taken as rss), never above `mem_bytes`.
    pub rss_mapped: u64,
}

/// How often, at most, `memory.stat` is read per container between activation
/// boundaries (its read flushes the kernel's statistics: the costly part of a sample).
pub(crate) const STAT_PERIOD_NS: u64 = 1_000_000_000;

/// Memory reading state of one container (eBPF backend).
#[derive(Clone, Copy, Debug, Default)]
struct MemTrack {
    /// Epoch ns of the last read of the memory file, the CPU counter and memory then.
    file: Option<(u64, u64, u64)>,
    /// The last `memory.stat` reading: (epoch ns, rss + mapped, memory charged then).
    stat: Option<(u64, u64, u64)>,
}

/// `rss + mapped` now, from a reading `rss_at` taken when `mem_at` was charged: moved
/// by the change of the charge since, within `[0, mem_now]`.
fn rss_estimate(rss_at: u64, mem_at: u64, mem_now: u64) -> u64 {
    if mem_now >= mem_at {
        rss_at.saturating_add(mem_now - mem_at).min(mem_now)
    } else {
        rss_at.saturating_sub(mem_at - mem_now).min(mem_now)
    }
}

/// Marker for a missing value in a [`Sample`].
pub(crate) const NONE: u64 = u64::MAX;

fn opt(v: u64) -> Option<u64> {
    (v != NONE).then_some(v)
}

impl Sample {
    pub(crate) fn cpu(&self) -> Option<u64> {
        opt(self.cpu_ns)
    }
    pub(crate) fn mem(&self) -> Option<u64> {
        opt(self.mem_bytes)
    }
    pub(crate) fn rss_mapped(&self) -> Option<u64> {
        opt(self.rss_mapped)
    }
}

/// Life-cycle state of a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Life {
    Running,
    Paused,
    Removed,
}

/// A snapshot of all counters at an activation boundary.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snap {
    pub t_ns: u64,
    pub ebpf: Option<CgroupStats>,
    pub cg: Counters,
}

/// An activation between its start and end notifications.
#[derive(Clone, Debug)]
struct Open {
    start: Snap,
    peak_reset: bool,
    /// A cold start's initialisation, once its end was notified.
    init: Option<InitEnd>,
}

/// The end of a cold start's initialisation: the reading there, and the memory peak of
/// the init (the watermark read there, before it was reset for the run).
#[derive(Clone, Debug)]
struct InitEnd {
    at: Snap,
    peak: Option<u64>,
    /// The watermark was reset for the run (so the end's watermark is the run's alone).
    peak_reset: bool,
}

/// One container and everything the monitor knows of it.
pub(crate) struct Container {
    pub id: String,
    pub kind: String,
    pub rel: PathBuf,
    pub reader: CgroupReader,
    inner: Mutex<Inner>,
}

struct Inner {
    cpu_ids: Vec<u64>,
    /// Cgroup id of its memory cgroup (0: not found yet).
    mem_id: u64,
    mem: MemTrack,
    ring: VecDeque<Sample>,
    life: Life,
    created_ns: u64,
    removed_ns: Option<u64>,
    open: HashMap<String, Open>,
}

impl Container {
    /// Its mutable part (a poisoned lock is still usable: the data stays consistent).
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A snapshot of a container (the `containers` answer is made of these).
#[derive(Clone, Debug)]
pub(crate) struct ContainerView {
    pub id: String,
    pub kind: String,
    pub cgroup: String,
    pub cgroup_ids: Vec<u64>,
    pub state: Life,
    pub discovered: f64,
    pub removed: Option<f64>,
    pub samples: usize,
    pub open_activations: usize,
}

/// Bounded store of finished activations (oldest dropped first, counted).
#[derive(Default)]
struct Activations {
    by_id: HashMap<String, Arc<ActivationSummary>>,
    order: VecDeque<String>,
}

/// Counters about the monitor itself.
#[derive(Default, Debug)]
pub(crate) struct SelfStats {
    pub samples: AtomicU64,
    pub sample_ticks: AtomicU64,
    pub late_ticks: AtomicU64,
    pub activations: AtomicU64,
    pub activations_dropped: AtomicU64,
    pub unknown_container: AtomicU64,
    pub bad_requests: AtomicU64,
    pub refused_clients: AtomicU64,
    pub events: AtomicU64,
    pub events_undecodable: AtomicU64,
    pub stream_lagged: AtomicU64,
}

/// Everything shared between the monitor's tasks.
pub(crate) struct Monitor {
    pub cfg: MonitorConfig,
    pub layout: Layout,
    pub kernel: Option<Kernel>,
    pub matcher: Matcher,
    pub stats: SelfStats,
    pub stream: broadcast::Sender<StreamItem>,
    pub hardware: Hardware,
    /// Container names (Docker API, kubelet, or cgroup).
    pub names: super::attribution::Names,
    containers: RwLock<HashMap<String, Arc<Container>>>,
    by_cgroup: RwLock<HashMap<u64, String>>,
    activations: Mutex<Activations>,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

impl Monitor {
    /// Creates the state; `kernel` is None for the cgroupfs backend.
    pub(crate) fn new(
        cfg: MonitorConfig,
        layout: Layout,
        kernel: Option<Kernel>,
    ) -> anyhow::Result<Monitor> {
        let matcher = Matcher::new(&cfg.patterns)?;
        let (stream, _) = broadcast::channel(4096);
        let kubelet = match &cfg.kubelet_url {
            Some(u) => Some(super::kubernetes::Kubelet::new(
                u,
                cfg.kubelet_token_file.as_deref(),
                cfg.kubelet_insecure_tls,
            )?),
            None => None,
        };
        let names = super::attribution::Names::new(cfg.docker_socket.as_deref(), kubelet);
        Ok(Monitor {
            hardware: super::hw::detect(),
            cfg,
            layout,
            kernel,
            matcher,
            stats: SelfStats::default(),
            stream,
            names,
            containers: RwLock::new(HashMap::new()),
            by_cgroup: RwLock::new(HashMap::new()),
            activations: Mutex::new(Activations::default()),
        })
    }

    /// Live containers and those in their grace period.
    pub(crate) fn containers(&self) -> Vec<Arc<Container>> {
        self.containers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// One container by id (or by the unique container whose id starts with `id`, like docker).
    pub(crate) fn container(&self, id: &str) -> Option<Arc<Container>> {
        let t = self.containers.read().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = t.get(id) {
            return Some(c.clone());
        }
        if id.len() >= 12 {
            let mut it = t.values().filter(|c| c.id.starts_with(id));
            if let (Some(c), None) = (it.next(), it.next()) {
                return Some(c.clone());
            }
        }
        None
    }

    /// Container owning CPU cgroup `id`.
    pub(crate) fn by_cgroup(&self, id: u64) -> Option<Arc<Container>> {
        let name = self
            .by_cgroup
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()?;
        self.container(&name)
    }

    /// Registers a discovered container (idempotent); returns true if it is new.
    pub(crate) fn add(&self, f: &Found, subs: &[PathBuf]) -> bool {
        let root = self.layout.cpu_root().to_path_buf();
        let mut ids = Vec::new();
        if let Ok(i) = inode(&root.join(&f.rel)) {
            ids.push(i);
        }
        for s in subs {
            if let Ok(i) = inode(&root.join(s)) {
                ids.push(i);
            }
        }
        {
            let t = self.containers.read().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = t.get(&f.id) {
                let mut inner = c.lock();
                if inner.life != Life::Removed {
                    for i in &ids {
                        if !inner.cpu_ids.contains(i) {
                            inner.cpu_ids.push(*i);
                            self.index_cgroup(*i, &f.id);
                            if let Some(k) = &self.kernel {
                                k.watch(*i, 0);
                            }
                        }
                    }
                    // Discovered from the CPU hierarchy's mkdir before its memory
                    // directory existed (v1 hierarchies are created one by one): tell the
                    // kernel its memory cgroup now.
                    if inner.mem_id == 0
                        && let Some(k) = &self.kernel
                        && let Some(&own) = inner.cpu_ids.first()
                    {
                        inner.mem_id = self.mem_id_of(&f.rel);
                        if inner.mem_id != 0 {
                            k.watch(own, inner.mem_id);
                        }
                    }
                    return false;
                }
            }
        }
        if ids.is_empty() {
            return false;
        }
        let c = Arc::new(Container {
            id: f.id.clone(),
            kind: f.kind.clone(),
            rel: f.rel.clone(),
            reader: CgroupReader::open(&self.layout, &f.rel),
            inner: Mutex::new(Inner {
                cpu_ids: ids.clone(),
                mem_id: 0,
                mem: MemTrack::default(),
                ring: VecDeque::new(),
                life: Life::Running,
                created_ns: epoch_ns(),
                removed_ns: None,
                open: HashMap::new(),
            }),
        });
        // The container's own memory cgroup is sampled in its own cgroup's slot (its
        // children's tasks charge it too, but their memory cgroups are their own).
        let mem_id = self.mem_id_of(&f.rel);
        c.lock().mem_id = mem_id;
        for (n, i) in ids.iter().enumerate() {
            self.index_cgroup(*i, &f.id);
            if let Some(k) = &self.kernel {
                k.watch(*i, if n == 0 { mem_id } else { 0 });
            }
        }
        // A first sample now, so a window starting right after discovery has a base.
        let mut mem = MemTrack::default();
        let first = self.sample_of(&c, &ids, &mut mem, false);
        {
            let mut i = c.lock();
            i.ring.push_back(first);
            i.mem = mem;
        }
        self.containers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(f.id.clone(), c);
        tracing::info!(id = %f.id, kind = %f.kind, cgroup = %f.rel.display(), "container discovered");
        let _ = self.stream.send(StreamItem::Container {
            event: ContainerEvent::Discovered,
            id: f.id.clone(),
            kind: f.kind.clone(),
            time: secs(epoch_ns()),
        });
        true
    }

    /// Container `id`'s memory cgroup (id `mem_id`) was created after the container was
    /// discovered: the kernel samples it from now on.
    pub(crate) fn memory_cgroup_appeared(&self, id: &str, mem_id: u64) {
        let Some(c) = self.container(id) else { return };
        let mut i = c.lock();
        if i.mem_id == 0 && i.life != Life::Removed {
            i.mem_id = mem_id;
            if let (Some(k), Some(&own)) = (&self.kernel, i.cpu_ids.first()) {
                k.watch(own, mem_id);
            }
        }
    }

    /// Inode (cgroup id) of container `rel`'s memory cgroup, 0 if it has none (yet).
    fn mem_id_of(&self, rel: &Path) -> u64 {
        self.layout
            .dir(Controller::Memory, rel)
            .and_then(|d| inode(&d).ok())
            .unwrap_or(0)
    }

    fn index_cgroup(&self, id: u64, name: &str) {
        self.by_cgroup
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, name.to_string());
    }

    /// Adds a child cgroup (relative path) to the container that contains it, if any.
    pub(crate) fn add_child(&self, rel: &Path, cgroup_id: u64) {
        let t = self.containers.read().unwrap_or_else(|e| e.into_inner());
        for c in t.values() {
            if rel.starts_with(&c.rel) && rel != c.rel {
                let mut inner = c.lock();
                if !inner.cpu_ids.contains(&cgroup_id) {
                    inner.cpu_ids.push(cgroup_id);
                    drop(inner);
                    self.index_cgroup(cgroup_id, &c.id);
                    if let Some(k) = &self.kernel {
                        k.watch(cgroup_id, 0);
                    }
                }
                return;
            }
        }
    }

    /// Marks a container removed (it answers queries during the grace period).
    pub(crate) fn remove(&self, id: &str) {
        let Some(c) = self.container(id) else { return };
        let mut inner = c.lock();
        if inner.life == Life::Removed {
            return;
        }
        // A last sample, so the end of its life is in the ring.
        if c.reader.exists() {
            let ids = inner.cpu_ids.clone();
            let mut mem = inner.mem;
            let s = self.sample_of(&c, &ids, &mut mem, false);
            inner.mem = mem;
            inner.ring.push_back(s);
        }
        inner.life = Life::Removed;
        inner.removed_ns = Some(epoch_ns());
        drop(inner);
        tracing::info!(id = %c.id, "container removed");
        let _ = self.stream.send(StreamItem::Container {
            event: ContainerEvent::Removed,
            id: c.id.clone(),
            kind: c.kind.clone(),
            time: secs(epoch_ns()),
        });
    }

    /// Sets paused/running (from notifications or the freezer).
    pub(crate) fn set_paused(&self, id: &str, paused: bool) -> bool {
        let Some(c) = self.container(id) else {
            return false;
        };
        let mut inner = c.lock();
        if inner.life != Life::Removed {
            inner.life = if paused { Life::Paused } else { Life::Running };
        }
        drop(inner);
        let _ = self.stream.send(StreamItem::Container {
            event: if paused {
                ContainerEvent::Paused
            } else {
                ContainerEvent::Resumed
            },
            id: c.id.clone(),
            kind: c.kind.clone(),
            time: secs(epoch_ns()),
        });
        true
    }

    /// Drops containers whose grace period is over; returns how many.
    pub(crate) fn expire(&self) -> usize {
        let grace = (self.cfg.grace_s * 1e9) as u64;
        let now = epoch_ns();
        let gone: Vec<Arc<Container>> = self
            .containers()
            .into_iter()
            .filter(|c| {
                let i = c.lock();
                i.removed_ns.is_some_and(|r| now.saturating_sub(r) >= grace)
            })
            .collect();
        for c in &gone {
            let ids = c.lock().cpu_ids.clone();
            self.containers
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&c.id);
            let mut bc = self.by_cgroup.write().unwrap_or_else(|e| e.into_inner());
            for i in ids {
                if bc.get(&i) == Some(&c.id) {
                    bc.remove(&i);
                    if let Some(k) = &self.kernel {
                        k.forget(i);
                    }
                }
            }
        }
        gone.len()
    }

    /// Reads one sample of container `c` (cgroups `cpu_ids`, its own first) now;
    /// `mem` is its memory reading state, updated. `sampled`: the kernel read every
    /// container's memory just before (the sampler's tick); otherwise the file is read.
    fn sample_of(
        &self,
        c: &Container,
        cpu_ids: &[u64],
        mem: &mut MemTrack,
        sampled: bool,
    ) -> Sample {
        let Some(k) = &self.kernel else {
            // The poller: every value from the files, every tick.
            let (cpu, mem, rss_mapped) = c.reader.read_sample(true);
            return Sample {
                t_ns: epoch_ns(),
                cpu_ns: cpu.unwrap_or(NONE),
                mem_bytes: mem.unwrap_or(NONE),
                rss_mapped: rss_mapped.unwrap_or(NONE),
            };
        };
        let r = k.read(cpu_ids, cpu_ids.first().copied());
        self.sample_from(c, k, &r, mem, sampled, epoch_ns())
    }

    /// A sample of container `c` at epoch time `now` from the kernel's reading `r`
    /// (eBPF backend), memory completed from files where the kernel has none.
    fn sample_from(
        &self,
        c: &Container,
        k: &Kernel,
        r: &Reading,
        mem: &mut MemTrack,
        sampled: bool,
        now: u64,
    ) -> Sample {
        let mut mem_bytes = match (r.mem_bytes, mem.file) {
            (Some(b), _) if sampled => Some(b),
            // The kernel has not located the memory cgroup: none of the container's
            // tasks was switched in since it was watched. While none runs (CPU counter
            // unchanged) its memory moves only by reclaim: the file once per second.
            (_, Some((t, cpu, m)))
                if cpu == r.stats.cpu_ns
                    && r.running_since_ns.is_none()
                    && now.saturating_sub(t) < STAT_PERIOD_NS =>
            {
                Some(m)
            }
            (_, last) => {
                if sampled {
                    let ran = r.running_since_ns.is_some()
                        || last.is_none_or(|(_, cpu, _)| cpu != r.stats.cpu_ns);
                    k.note_mem_file_read(ran);
                }
                let m = c.reader.mem_bytes();
                mem.file = m.map(|m| (now, r.stats.cpu_ns, m));
                m
            }
        };
        let rss_mapped = match (mem_bytes, mem.stat) {
            (Some(m), Some((t, rss, at))) if m == at || now.saturating_sub(t) < STAT_PERIOD_NS => {
                Some(rss_estimate(rss, at, m))
            }
            (Some(_), _) => {
                let (_, m, rss) = c.reader.read_sample(false);
                if m.is_some() {
                    mem_bytes = m;
                }
                if let (Some(m), Some(rss)) = (m, rss) {
                    mem.stat = Some((now, rss, m));
                }
                rss
            }
            (None, _) => None,
        };
        Sample {
            t_ns: now,
            cpu_ns: r.stats.cpu_ns,
            mem_bytes: mem_bytes.unwrap_or(NONE),
            rss_mapped: rss_mapped.unwrap_or(NONE),
        }
    }

    /// Takes one sample of every live container (called by the sampler every tick).
    /// With the eBPF backend: one run of the kernel's `mem_sample` program reads every
    /// container's memory, then the mapped arrays are read (no system call per
    /// container); a cgroup file is touched only for a container whose memory cgroup the
    /// kernel has not located yet, and for `memory.stat` at most once per second.
    pub(crate) fn sample_all(&self) {
        let max_age = (self.cfg.max_age_s * 1e9) as u64;
        let subscribed = self.stream.receiver_count() > 0;
        let live: Vec<(Arc<Container>, Vec<u64>, MemTrack)> = self
            .containers()
            .into_iter()
            .filter_map(|c| {
                let i = c.lock();
                let keep = (i.life != Life::Removed).then(|| (i.cpu_ids.clone(), i.mem));
                drop(i);
                keep.map(|(ids, mem)| (c, ids, mem))
            })
            .collect();
        // eBPF: every container's memory read by one program run, then one pass over
        // the mapped arrays for all of them.
        let readings = self.kernel.as_ref().map(|k| {
            let sampled = k.sample_memory();
            let queries: Vec<Query<'_>> = live
                .iter()
                .map(|(_, ids, _)| Query {
                    ids,
                    mem_of: ids.first().copied(),
                })
                .collect();
            (k, sampled, k.read_many(&queries), epoch_ns())
        });
        for (n, (c, ids, mut mem)) in live.into_iter().enumerate() {
            let s = match &readings {
                Some((k, sampled, rs, now)) => match rs.get(n) {
                    Some(r) => self.sample_from(&c, k, r, &mut mem, *sampled, *now),
                    None => continue,
                },
                None => self.sample_of(&c, &ids, &mut mem, false),
            };
            let mut i = c.lock();
            i.mem = mem;
            i.ring.push_back(s);
            while i
                .ring
                .front()
                .is_some_and(|f| s.t_ns.saturating_sub(f.t_ns) > max_age)
            {
                i.ring.pop_front();
            }
            drop(i);
            self.stats.samples.fetch_add(1, Ordering::Relaxed);
            if subscribed {
                let _ = self.stream.send(StreamItem::Sample {
                    id: c.id.clone(),
                    date: secs(s.t_ns),
                    cpu_ns: s.cpu(),
                    memory: s.mem(),
                    rss_mapped: s.rss_mapped(),
                });
            }
        }
    }

    /// Samples of container `c` with epoch-ns time in `[from, to]`.
    pub(crate) fn samples(&self, c: &Container, from: u64, to: u64) -> Vec<Sample> {
        let i = c.lock();
        i.ring
            .iter()
            .filter(|s| s.t_ns >= from && s.t_ns <= to)
            .copied()
            .collect()
    }

    /// The last sample at or before `t` (the cgroupfs backend's view of an instant).
    fn sample_before(&self, c: &Container, t: u64) -> Option<Sample> {
        let i = c.lock();
        i.ring.iter().rev().find(|s| s.t_ns <= t).copied()
    }

    /// Serializable view of a container.
    pub(crate) fn view(&self, c: &Container) -> ContainerView {
        let i = c.lock();
        ContainerView {
            id: c.id.clone(),
            kind: c.kind.clone(),
            cgroup: c.rel.display().to_string(),
            cgroup_ids: i.cpu_ids.clone(),
            state: i.life,
            discovered: secs(i.created_ns),
            removed: i.removed_ns.map(secs),
            samples: i.ring.len(),
            open_activations: i.open.len(),
        }
    }

    /// Counters at an activation boundary. The cgroupfs backend reads nothing there: it
    /// is a pure poller (like the original FaaSLoad) and answers from its samples.
    fn snap(&self, c: &Container, ids: &[u64]) -> Snap {
        match &self.kernel {
            Some(k) => Snap {
                t_ns: epoch_ns(),
                ebpf: {
                    k.check_running();
                    Some(k.cgroup_stats(ids))
                },
                cg: c.reader.read(),
            },
            None => Snap {
                t_ns: epoch_ns(),
                ebpf: None,
                cg: Counters::default(),
            },
        }
    }

    /// Pushes a boundary reading into the ring (eBPF backend only: a poller has none).
    fn push_boundary(&self, c: &Container, s: &Snap) {
        let Some(e) = s.ebpf else { return };
        let mut i = c.lock();
        if let (Some(m), Some(rss)) = (s.cg.mem_bytes, s.cg.mem_rss_mapped) {
            i.mem.stat = Some((s.t_ns, rss, m));
        }
        i.ring.push_back(Sample {
            t_ns: s.t_ns,
            cpu_ns: e.cpu_ns,
            mem_bytes: s.cg.mem_bytes.unwrap_or(NONE),
            rss_mapped: s.cg.mem_rss_mapped.unwrap_or(NONE),
        });
    }

    /// An activation starts in container `c`.
    pub(crate) fn activation_start(&self, c: &Container, activation_id: &str) {
        let ids = c.lock().cpu_ids.clone();
        let polling = self.kernel.is_none();
        let peak_reset = !polling && self.cfg.reset_peak && c.reader.reset_peak();
        let start = self.snap(c, &ids);
        self.push_boundary(c, &start);
        let mut i = c.lock();
        i.open.insert(
            activation_id.to_string(),
            Open {
                start,
                peak_reset,
                init: None,
            },
        );
    }

    /// The initialisation of a cold start ended in container `c` (its run begins): the
    /// phase since the activation's start is its init. False if its start was never
    /// seen (or its init already ended).
    pub(crate) fn activation_init_end(&self, c: &Container, activation_id: &str) -> bool {
        let ids = {
            let i = c.lock();
            match i.open.get(activation_id) {
                Some(o) if o.init.is_none() => i.cpu_ids.clone(),
                _ => return false,
            }
        };
        let at = self.snap(c, &ids);
        self.push_boundary(c, &at);
        // The init's peak is the watermark now; the run's starts afresh.
        let peak = at.cg.mem_peak;
        let peak_reset = self.kernel.is_some() && self.cfg.reset_peak && c.reader.reset_peak();
        let mut i = c.lock();
        match i.open.get_mut(activation_id) {
            Some(o) if o.init.is_none() => {
                o.init = Some(InitEnd {
                    at,
                    peak,
                    peak_reset,
                });
                true
            }
            _ => false,
        }
    }

    /// An activation ends in container `c`; returns its summary (None if its start was
    /// never seen).
    pub(crate) fn activation_end(
        &self,
        c: &Container,
        activation_id: &str,
    ) -> Option<Arc<ActivationSummary>> {
        let (ids, open) = {
            let mut i = c.lock();
            (i.cpu_ids.clone(), i.open.remove(activation_id))
        };
        let open = open?;
        let end = self.snap(c, &ids);
        self.push_boundary(c, &end);
        let s = self.summarize(c, activation_id, &open, &end);
        let s = Arc::new(s);
        self.store(s.clone());
        Some(s)
    }

    fn summarize(
        &self,
        c: &Container,
        activation_id: &str,
        open: &Open,
        end: &Snap,
    ) -> ActivationSummary {
        let st = &open.start;
        let d = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| b.saturating_sub(a));
        let window = self.samples(c, st.t_ns, end.t_ns);
        let mems: Vec<u64> = window.iter().filter_map(Sample::mem).collect();
        let mem_avg = (!mems.is_empty()).then(|| mems.iter().sum::<u64>() / mems.len() as u64);
        let sampled_peak = mems.iter().copied().max();
        // The watermark covers the whole activation, or (reset again at the end of a
        // cold start's init) its run, the init's peak being read then.
        let counter_peak = match &open.init {
            Some(i) if i.peak_reset => i.peak.zip(end.cg.mem_peak).map(|(a, b)| a.max(b)),
            Some(_) => None,
            None => end.cg.mem_peak,
        };
        let (mem_peak, source) = match (open.peak_reset, counter_peak) {
            (true, Some(p)) => (
                Some(p.max(sampled_peak.unwrap_or(0))),
                MemPeakSource::Counter,
            ),
            _ => (sampled_peak, MemPeakSource::Samples),
        };
        let cpu = self.cpu_between(c, st, end);
        let ebpf_counters = st.ebpf.zip(end.ebpf);
        let (cpu_user_ns, cpu_sys_ns) = split_user_sys(
            cpu,
            d(st.cg.cpu_user_ns, end.cg.cpu_user_ns),
            d(st.cg.cpu_sys_ns, end.cg.cpu_sys_ns),
        );
        let init = open.init.as_ref().map(|i| {
            let cpu = self.cpu_between(c, st, &i.at);
            let (cpu_user_ns, cpu_sys_ns) = split_user_sys(
                cpu,
                d(st.cg.cpu_user_ns, i.at.cg.cpu_user_ns),
                d(st.cg.cpu_sys_ns, i.at.cg.cpu_sys_ns),
            );
            InitSummary {
                end: secs(i.at.t_ns),
                cpu_ns: cpu,
                cpu_user_ns,
                cpu_sys_ns,
                mem_peak_bytes: i.peak.filter(|_| open.peak_reset),
            }
        });
        let counters = ActivationCounters {
            nvcsw: ebpf_counters.map(|(a, b)| b.nvcsw.saturating_sub(a.nvcsw)),
            nivcsw: ebpf_counters.map(|(a, b)| b.nivcsw.saturating_sub(a.nivcsw)),
            wakeups: ebpf_counters.map(|(a, b)| b.wakeups.saturating_sub(a.wakeups)),
            migrations: ebpf_counters.map(|(a, b)| b.migrations.saturating_sub(a.migrations)),
            pgfault: d(st.cg.pgfault, end.cg.pgfault),
            pgmajfault: d(st.cg.pgmajfault, end.cg.pgmajfault),
        };
        self.stats.activations.fetch_add(1, Ordering::Relaxed);
        ActivationSummary {
            activation_id: activation_id.to_string(),
            container: c.id.clone(),
            start: secs(st.t_ns),
            end: secs(end.t_ns),
            cpu_ns: cpu,
            cpu_user_ns,
            cpu_sys_ns,
            mem_peak_bytes: mem_peak,
            mem_peak_source: source,
            mem_avg_bytes: mem_avg,
            samples: window.len(),
            counters,
            hardware: self.hardware.clone(),
            backend: self.cfg.backend.into(),
            oom_killed: d(st.cg.oom_kills, end.cg.oom_kills).is_some_and(|n| n > 0),
            init,
        }
    }

    /// CPU time of container `c` between two boundary readings: the kernel's exact
    /// accounting, or (polling only) what the samples at the sampling interval tell.
    fn cpu_between(&self, c: &Container, a: &Snap, b: &Snap) -> Option<u64> {
        let d = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| b.saturating_sub(a));
        match self.cfg.backend {
            Backend::Ebpf => d(a.ebpf.map(|e| e.cpu_ns), b.ebpf.map(|e| e.cpu_ns)),
            Backend::Cgroupfs => d(
                self.sample_before(c, a.t_ns).and_then(|s| s.cpu()),
                self.sample_before(c, b.t_ns).and_then(|s| s.cpu()),
            ),
        }
    }

    fn store(&self, s: Arc<ActivationSummary>) {
        let mut a = self.activations.lock().unwrap_or_else(|e| e.into_inner());
        if a.by_id.insert(s.activation_id.clone(), s.clone()).is_none() {
            a.order.push_back(s.activation_id.clone());
        }
        while a.order.len() > self.cfg.max_activations {
            if let Some(old) = a.order.pop_front() {
                a.by_id.remove(&old);
                self.stats
                    .activations_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(a);
        if self.stream.receiver_count() > 0 {
            let _ = self.stream.send(StreamItem::Activation { summary: s });
        }
    }

    /// A finished activation by id.
    pub(crate) fn activation(&self, id: &str) -> Option<Arc<ActivationSummary>> {
        self.activations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_id
            .get(id)
            .cloned()
    }

    /// Is activation `id` started and not yet ended somewhere?
    pub(crate) fn is_open(&self, id: &str) -> bool {
        self.containers()
            .iter()
            .any(|c| c.lock().open.contains_key(id))
    }

    /// Finds containers now present in the cgroup tree; returns how many were new.
    pub(crate) fn rescan(&self) -> usize {
        let root = self.layout.cpu_root().to_path_buf();
        let found = self.matcher.scan(&root);
        let mut new = 0;
        let present: std::collections::HashSet<String> =
            found.iter().map(|(f, _)| f.id.clone()).collect();
        for (f, subs) in &found {
            if self.add(f, subs) {
                new += 1;
            }
        }
        // Containers whose cgroup vanished without an event (cgroupfs backend, drops).
        for c in self.containers() {
            let live = c.lock().life != Life::Removed;
            if live && !present.contains(&c.id) && !c.reader.exists() {
                self.remove(&c.id);
            }
        }
        new
    }
}

/// The user and system parts of an activation's CPU `total`. The cgroup's own split
/// (`cpuacct.usage_user/_sys`, `cpu.stat user_usec/system_usec`) is decided by where the
/// task was at the scheduler's ticks, and read at boundaries that do not fall where the
/// kernel programs close slices, so its sum drifts from the exact total (user alone
/// exceeded it on some activations). The split's proportion is applied to the exact
/// total instead: user + sys = total on every activation. Unknown (None) when the cgroup
/// saw no user or system time at all, or the total is unknown.
fn split_user_sys(
    total: Option<u64>,
    user: Option<u64>,
    sys: Option<u64>,
) -> (Option<u64>, Option<u64>) {
    match (total, user, sys) {
        (Some(t), Some(u), Some(s)) if u.saturating_add(s) > 0 => {
            let user = (u128::from(t) * u128::from(u) / (u128::from(u) + u128::from(s))) as u64;
            (Some(user), Some(t - user))
        }
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::split_user_sys;

    #[test]
    fn user_and_sys_add_up_to_the_exact_total() {
        // The cgroup's ticks said 68 ms user + 4 ms sys of an activation the scheduler
        // counted 67.3 ms for (seen in a replay: user alone above the total).
        let (u, s) = split_user_sys(Some(67_308_900), Some(68_000_000), Some(4_000_000));
        let (u, s) = (u.unwrap(), s.unwrap());
        assert_eq!(u + s, 67_308_900);
        assert_eq!(u, 67_308_900 * 68 / 72);
        // Every proportion, rounding included.
        for (t, uu, ss) in [(1, 1, 2), (999, 7, 0), (1_000, 0, 9), (u64::MAX / 2, 3, 5)] {
            let (u, s) = split_user_sys(Some(t), Some(uu), Some(ss));
            assert_eq!(u.unwrap() + s.unwrap(), t, "{t} {uu} {ss}");
        }
        // No split known, or no total: nothing made up.
        assert_eq!(split_user_sys(Some(5), Some(0), Some(0)), (None, None));
        assert_eq!(split_user_sys(None, Some(3), Some(4)), (None, None));
        assert_eq!(split_user_sys(Some(5), None, Some(4)), (None, None));
    }
}
