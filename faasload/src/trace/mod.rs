//! Traces: the model the loader replays (users, functions, invocations in time order),
//! read from faasload's YAML format or the original FaaSLoad TSV directory, validated
//! before anything is sent (errors say file:line:col).
pub mod model;

pub use model::{Function, Invocation, Trace, User};
