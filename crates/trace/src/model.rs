//! The trace model shared by every trace format and the loader. A [`Trace`] holds the
//! users and functions (small) and produces its invocations lazily, in intended-time
//! order, so a day-long trace is never materialised in memory.
use std::path::PathBuf;

use serde_json::{Map, Value};

/// A tenant: an OpenWhisk namespace with its own key.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// Name used in the trace and in results.
    pub name: String,
    /// OpenWhisk namespace (default: the user's name).
    pub namespace: String,
    /// `uuid:key`; None: from the environment / ~/.wskprops, or created on the embedded
    /// platform when `create` is set.
    pub auth: Option<String>,
    /// API host (URL) for this user; None: the run's default.
    pub api_host: Option<String>,
    /// Create this namespace (with a generated key) on the embedded platform.
    pub create: bool,
}

/// A function: an action deployed in every user's namespace that invokes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    /// Name used in the trace and in results (also the action name by default).
    pub name: String,
    /// Action name on the platform.
    pub action: String,
    /// OpenWhisk kind (`python:3`, `nodejs:20`, `native`, ...).
    pub kind: String,
    /// Code file or zip (resolved, readable: checked by validation).
    pub code: PathBuf,
    /// Entry point, if not `main`.
    pub main: Option<String>,
    /// Memory limit (MB).
    pub memory_mb: u32,
    /// Time limit (ms).
    pub timeout_ms: u32,
    /// Default parameters of the action.
    pub parameters: Map<String, Value>,
    /// Kind of input objects it takes (`image`, ...), if any.
    pub input_kind: Option<String>,
}

/// One invocation to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    /// Position in the schedule (0-based, in intended-time order; ties broken by stream).
    pub seq: u64,
    /// Intended instant, in nanoseconds from the run's common start.
    pub at_ns: u64,
    /// Index into [`Trace::users`].
    pub user: u32,
    /// Index into [`Trace::functions`].
    pub function: u32,
    /// Input object name (`image/17.jpg`), if any.
    pub input: Option<String>,
    /// Invocation parameters.
    pub params: Map<String, Value>,
}

/// A validated trace.
pub struct Trace {
    /// Where it came from (file or directory), for messages.
    pub origin: String,
    pub users: Vec<User>,
    pub functions: Vec<Function>,
    /// The run seed (arrival processes and parameter draws derive their streams from it).
    pub seed: u64,
    /// The (user, function) pairs that have invocations (what must be deployed).
    pub pairs: Vec<(u32, u32)>,
    /// Number of invocations, when known without walking the schedule.
    pub total: Option<u64>,
    /// Produces the invocations in intended-time order (each call starts over, and gives
    /// the same sequence for the same trace and seed).
    pub schedule: Box<dyn Fn() -> Box<dyn Iterator<Item = Invocation> + Send> + Send + Sync>,
}

impl Trace {
    /// The invocations in intended-time order.
    pub fn invocations(&self) -> Box<dyn Iterator<Item = Invocation> + Send> {
        (self.schedule)()
    }
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("origin", &self.origin)
            .field("users", &self.users)
            .field("functions", &self.functions)
            .field("seed", &self.seed)
            .field("pairs", &self.pairs)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}
