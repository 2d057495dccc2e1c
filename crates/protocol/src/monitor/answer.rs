//! The monitor's answers: `{"ok":true}`, `hello`, an activation's summary, a window's
//! summary or samples, the original FaaSLoad sample list, the container table, the
//! monitor's own counters, and the `attribute` answer. Clients read them with
//! [`super::decode`]: every field the monitor always writes is required (`null` when it
//! has no value), so a missing or renamed field is an error, never a silent `None`.
//! Unknown fields are ignored (a newer monitor may add some), and so is the `type` key
//! that `hello`, `stats` and `attribution` carry (the request decides the answer's type).
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::ErrorAnswer;
use super::stream::StreamItem;

/// `Option` fields that must be present (as a value or `null`): serde otherwise takes a
/// missing `Option` field for `None`.
pub(super) fn required<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// `{"ok":true}`: a notification with `ack` was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
}

impl Ack {
    pub const OK: Ack = Ack { ok: true };
}

/// Where the monitor's CPU time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Kernel programs count on-CPU time per cgroup.
    Ebpf,
    /// cgroupfs polling only.
    Cgroupfs,
}

/// The cgroup version the monitor reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Hardware counters (cycles, instructions, cache misses), or why they are unavailable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    pub available: bool,
    #[serde(deserialize_with = "required")]
    pub reason: Option<String>,
}

/// The answer to `hello`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "hello")]
pub struct Hello {
    /// The monitor's crate version.
    pub version: String,
    /// [`super::PROTOCOL_VERSION`].
    pub protocol: u32,
    pub backend: Backend,
    pub cgroup: CgroupVersion,
    /// Sampling interval.
    pub interval_ms: f64,
    /// [`super::CAPABILITIES`].
    pub capabilities: Vec<String>,
    pub hardware: Hardware,
}

/// OS-level counters of an activation (`null` where the backend or host has none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationCounters {
    #[serde(deserialize_with = "required")]
    pub nvcsw: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub nivcsw: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub wakeups: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub migrations: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub pgfault: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub pgmajfault: Option<u64>,
}

/// Where an activation's memory peak comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemPeakSource {
    /// The cgroup's own peak counter, reset at the start.
    Counter,
    /// The highest sample.
    Samples,
}

/// What the monitor measured for one activation: the answer to `activation`, and the
/// `summary` of an activation stream item (field order as in the stream).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivationSummary {
    pub activation_id: String,
    pub container: String,
    /// Epoch seconds of the start and end notifications.
    pub start: f64,
    pub end: f64,
    #[serde(deserialize_with = "required")]
    pub cpu_ns: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub cpu_user_ns: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub cpu_sys_ns: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub mem_peak_bytes: Option<u64>,
    pub mem_peak_source: MemPeakSource,
    #[serde(deserialize_with = "required")]
    pub mem_avg_bytes: Option<u64>,
    pub samples: usize,
    pub counters: ActivationCounters,
    pub hardware: Hardware,
    pub backend: Backend,
    pub oom_killed: bool,
    /// A cold start's initialisation (from `activation_start` to `init_end`), which the
    /// totals above include (as the record's `duration` does); null for a warm start.
    /// Protocol 3 (absent from older monitors' answers: read as null).
    #[serde(default)]
    pub init: Option<InitSummary>,
}

/// The initialisation phase of a cold start: what it cost of the activation's totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitSummary {
    /// Epoch seconds of the `init_end` notification (the run began then).
    pub end: f64,
    #[serde(deserialize_with = "required")]
    pub cpu_ns: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub cpu_user_ns: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub cpu_sys_ns: Option<u64>,
    /// Peak memory during the initialisation (the page counter's watermark at its end).
    #[serde(deserialize_with = "required")]
    pub mem_peak_bytes: Option<u64>,
}

/// The answer to `window`: CPU and memory of a container over a time window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    pub container: String,
    /// The window asked (epoch seconds).
    pub start: f64,
    pub end: f64,
    /// Samples in the window.
    pub samples: usize,
    /// CPU between the first and the last sample.
    #[serde(deserialize_with = "required")]
    pub cpu_ns: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub mem_peak_bytes: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub mem_avg_bytes: Option<u64>,
    /// The sampling interval.
    pub resolution_ms: f64,
}

/// One sample of the `samples` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleEntry {
    /// Epoch seconds.
    pub date: f64,
    /// Cumulative CPU time.
    #[serde(deserialize_with = "required")]
    pub cpu_ns: Option<u64>,
    /// Memory charged.
    #[serde(deserialize_with = "required")]
    pub memory_bytes: Option<u64>,
    /// FaaSLoad's memory metric: rss + mapped_file.
    #[serde(deserialize_with = "required")]
    pub rss_mapped_bytes: Option<u64>,
}

/// The answer to `samples`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplesAnswer {
    pub container: String,
    pub samples: Vec<SampleEntry>,
}

/// One sample of the original FaaSLoad query's answer (a list of them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OriginalSample {
    /// CPU seconds since the window's first sample.
    #[serde(deserialize_with = "required")]
    pub cpu: Option<f64>,
    /// Epoch seconds.
    pub date: f64,
    /// rss + mapped_file (bytes).
    #[serde(deserialize_with = "required")]
    pub memory: Option<u64>,
}

/// Life-cycle state of a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Running,
    Paused,
    Removed,
}

/// Where a container's name comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameSource {
    /// dockerd's API.
    Docker,
    /// The kubelet's pod list.
    Kubelet,
    /// The cgroup path (the id).
    Cgroup,
}

/// An OpenWhisk container name, read: `wsk<invoker>_<n>_<rest>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWhiskName {
    /// `wsk<uniqueName><invokerId>` part.
    pub invoker: String,
    /// The invoker's container counter.
    pub n: u64,
    /// `<namespace>_<action>` (sanitized: only letters, digits, `_`), or for a prewarm
    /// container `prewarm_<kind>`.
    pub rest: String,
    /// The runtime kind of a pre-warmed container (`python3` for `python:3`).
    #[serde(deserialize_with = "required")]
    pub prewarm_kind: Option<String>,
}

/// A container's name, once resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerName {
    pub name: String,
    #[serde(deserialize_with = "required")]
    pub image: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub name_source: NameSource,
    /// What the name says under OpenWhisk's naming scheme.
    #[serde(deserialize_with = "required")]
    pub openwhisk: Option<OpenWhiskName>,
}

/// One entry of the container table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub id: String,
    /// The pattern kind that recognised it.
    pub kind: String,
    /// Its cgroup, relative to the hierarchy root.
    pub cgroup: String,
    /// Its cgroup ids (the container's and its children's).
    pub cgroup_ids: Vec<u64>,
    pub state: ContainerState,
    /// Epoch seconds it was discovered and removed.
    pub discovered: f64,
    #[serde(deserialize_with = "required")]
    pub removed: Option<f64>,
    /// Samples in its ring.
    pub samples: usize,
    pub open_activations: usize,
    /// Its name, once resolved (absent before).
    #[serde(flatten, deserialize_with = "name_if_any")]
    pub name: Option<ContainerName>,
}

/// A container's name keys: none (not named yet), or all of them (a missing one is an
/// error; serde alone would take a flattened `Option` that fails for `None`).
fn name_if_any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ContainerName>, D::Error> {
    let rest = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
    const KEYS: [&str; 5] = ["name", "image", "labels", "name_source", "openwhisk"];
    if !KEYS.iter().any(|k| rest.contains_key(*k)) {
        return Ok(None);
    }
    ContainerName::deserialize(serde_json::Value::Object(rest))
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// The answer to `containers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerList {
    pub containers: Vec<ContainerInfo>,
}

/// The kernel programs' activity and drop counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelCounters {
    /// Context switches seen.
    pub switches: u64,
    /// Switch-outs whose switch-in was not seen (switches the kernel did not trace): the
    /// slice was charged from the task's own counters.
    pub switches_unmatched: u64,
    /// Cgroups not watched because the kernel's slot table was full.
    pub stats_map_full: u64,
    /// Nanoseconds of watched slices that could not be charged (an estimate).
    pub stats_lost_ns: u64,
    /// Running tasks moved to another cgroup whose slice was split at the move.
    pub moves_split: u64,
    /// Moves within one slice beyond what the kernel remembers (merged into the last).
    pub moves_overflow: u64,
    /// Ticks whose in-kernel memory read failed (memory read from files that tick).
    pub mem_sample_failed: u64,
    /// Memory samples read from a cgroup file (the kernel did not know the container's
    /// memory cgroup yet).
    pub mem_file_reads: u64,
    /// Events dropped (ring buffer full).
    pub events_dropped: u64,
    pub events_sent: u64,
    /// Kernel reads that failed (a switch not attributed).
    pub kernel_read_failed: u64,
}

/// Kernel BPF statistics of one program (zero unless `bpf_stats` is on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramStats {
    pub name: String,
    pub run_time_ns: u64,
    pub run_count: u64,
}

/// The answer to `stats`: the monitor's own counters and cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "stats")]
pub struct Stats {
    pub backend: Backend,
    /// Containers known (live and in their grace period).
    pub containers: usize,
    pub samples: u64,
    pub sample_ticks: u64,
    /// Sampler ticks that came late.
    pub late_ticks: u64,
    pub activations: u64,
    /// Finished activations dropped from the bounded store.
    pub activations_dropped: u64,
    /// Notifications naming a container the monitor could not find.
    pub unknown_container: u64,
    /// Requests that were not understood (see [`super::RequestError`]).
    pub bad_requests: u64,
    /// Clients refused (too many at once).
    pub refused_clients: u64,
    /// Kernel events read, and those that could not be decoded.
    pub events: u64,
    pub events_undecodable: u64,
    /// Stream items subscribers missed.
    pub stream_lagged: u64,
    /// The kernel programs' counters (`{}` on the cgroupfs backend).
    #[serde(with = "kernel_or_empty")]
    pub kernel: Option<KernelCounters>,
    pub programs: Vec<ProgramStats>,
    /// Ids of the loaded kernel programs.
    pub program_ids: Vec<u32>,
    /// The monitor's own CPU time.
    pub self_cpu_user_ns: u64,
    pub self_cpu_sys_ns: u64,
}

/// `Option<KernelCounters>` as an object that is empty when there is no kernel side.
mod kernel_or_empty {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        k: &Option<KernelCounters>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match k {
            Some(k) => k.serialize(s),
            None => BTreeMap::<String, u64>::new().serialize(s),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<KernelCounters>, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if v.as_object().is_some_and(serde_json::Map::is_empty) {
            return Ok(None);
        }
        KernelCounters::deserialize(v)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// How `attribute` decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributionMethod {
    /// The container's name is for the action (or it is pre-warmed) and its CPU was busy
    /// between the record's start and end.
    #[serde(rename = "name+busy")]
    NameBusy,
}

/// A container that could have run the activation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub container: String,
    pub name: String,
    /// Its CPU time over the window.
    #[serde(deserialize_with = "required")]
    pub busy_ns: Option<u64>,
    pub busy: bool,
}

/// The verdict of `attribute`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum AttributionOutcome {
    /// Exactly one busy candidate: it ran the activation, with this CPU and memory.
    Attributed {
        container: String,
        cpu_ns: u64,
        #[serde(deserialize_with = "required")]
        mem_peak_bytes: Option<u64>,
        #[serde(deserialize_with = "required")]
        mem_avg_bytes: Option<u64>,
        samples: usize,
    },
    /// Several busy candidates (listed; never a guess).
    Ambiguous,
    /// No busy candidate.
    #[serde(rename = "none")]
    Unattributed,
}

/// The answer to `attribute`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "attribution")]
pub struct Attribution {
    pub method: AttributionMethod,
    pub namespace: String,
    /// The action asked about; once attributed, the name of the container that ran it.
    pub name: String,
    /// The window asked (epoch seconds).
    pub start: f64,
    pub end: f64,
    /// The sampling interval.
    pub resolution_ms: f64,
    pub min_busy_us: u64,
    pub candidates: Vec<Candidate>,
    #[serde(flatten)]
    pub outcome: AttributionOutcome,
}

impl Attribution {
    /// The busy candidates' containers.
    pub fn busy(&self) -> impl Iterator<Item = &str> {
        self.candidates
            .iter()
            .filter(|c| c.busy)
            .map(|c| c.container.as_str())
    }
}

/// Every answer the monitor writes on its sockets (serialized with [`super::encode`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Ack(Ack),
    Error(ErrorAnswer),
    Hello(Hello),
    Activation(Arc<ActivationSummary>),
    Window(WindowSummary),
    Samples(SamplesAnswer),
    /// The original FaaSLoad query's answer.
    Original(Vec<OriginalSample>),
    Containers(ContainerList),
    Stats(Stats),
    Attribution(Attribution),
    /// The answer to `subscribe` ([`StreamItem::Subscribed`]); the stream follows.
    Subscribed(StreamItem),
}
