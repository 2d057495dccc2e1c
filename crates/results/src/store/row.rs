//! One invocation's row, as the loader hands it to the recorder (writer and histograms).
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use faasload_protocol::{ActivationRecord, OutcomeClass};

/// What the monitor measured for an activation (its `activation` answer), or why nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorReading {
    pub cpu_ns: Option<u64>,
    pub cpu_user_ns: Option<u64>,
    pub cpu_sys_ns: Option<u64>,
    pub mem_peak_bytes: Option<u64>,
    pub mem_avg_bytes: Option<u64>,
    pub nvcsw: Option<u64>,
    pub nivcsw: Option<u64>,
    pub wakeups: Option<u64>,
    pub migrations: Option<u64>,
    pub pgfault: Option<u64>,
    pub pgmajfault: Option<u64>,
    /// A cold start's initialisation: its CPU time and memory peak (included in the
    /// totals above, as the record's duration includes the init); None when warm.
    #[serde(default)]
    pub init_cpu_ns: Option<u64>,
    #[serde(default)]
    pub init_mem_peak_bytes: Option<u64>,
    /// Container the activation ran in.
    pub container: Option<String>,
    /// Samples in the activation's window: (epoch ms, memory bytes, cumulative CPU ns).
    pub samples: Vec<(u64, Option<u64>, Option<u64>)>,
    /// Why the values are missing (monitor absent, unknown activation, ...); None if read.
    pub missing: Option<String>,
}

/// One invocation, complete (also a spill journal's `run` line: see
/// [`super::journal`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    /// Position in the schedule.
    pub seq: u64,
    pub user: String,
    pub namespace: String,
    /// Function name in the trace.
    pub function: String,
    /// Action name on the platform.
    pub action: String,
    pub input: Option<String>,
    /// Size of the input object in bytes, when the caller knows it (the generator does).
    pub input_bytes: Option<u64>,
    pub params: Map<String, Value>,
    /// Intended instant, ns from the run's start (monotonic clock).
    pub intended_ns: u64,
    /// When the request went, ns from the run's start (None: never sent).
    pub sent_ns: Option<u64>,
    /// When the answer (or the record) came, ns from the run's start.
    pub answered_ns: Option<u64>,
    /// Time spent waiting for an in-flight slot on the client (ns).
    pub queue_ns: u64,
    /// Epoch ms of the run's start (to turn the relative instants into dates).
    pub run_start_epoch_ms: u64,
    pub class: OutcomeClass,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub polls: u32,
    pub retries: u32,
    pub record: Option<ActivationRecord>,
    pub monitor: MonitorReading,
}

impl RunRow {
    /// Send lag: sent − intended (ns).
    pub fn lag_ns(&self) -> Option<u64> {
        self.sent_ns.map(|s| s.saturating_sub(self.intended_ns))
    }

    /// Latency from the intended instant: answered − intended (ns).
    pub fn latency_ns(&self) -> Option<u64> {
        self.answered_ns.map(|a| a.saturating_sub(self.intended_ns))
    }

    /// Cold start (the record carries `initTime`); None without a record.
    pub fn cold(&self) -> Option<bool> {
        self.record.as_ref().map(ActivationRecord::cold)
    }
}
