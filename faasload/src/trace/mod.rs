//! Traces: the model the loader replays (users, functions, invocations in time order),
//! read from faasload's YAML format or the original FaaSLoad TSV directory, validated
//! before anything is sent (errors say file:line:col).
pub mod arrival;
pub mod error;
pub mod model;
pub mod resolve;
pub mod schedule;
pub mod seed;
pub mod spec;
pub mod yaml;
pub mod yaml_pos;

pub use arrival::{Arrival, Law};
pub use error::TraceError;
pub use model::{Function, Invocation, Trace, User};
pub use schedule::{Explicit, Stream, StreamKind};
pub use seed::DEFAULT_SEED;
pub use spec::{InputSpec, ParamSpec};
