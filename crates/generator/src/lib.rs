//! Generator mode (`faasload generate`): a sweep of functions x memory limits x inputs
//! x repetitions with drawn parameters, planned deterministically from a seed, run with
//! crash-proof checkpoints so that a resumed generation gives the same dataset.
pub mod checkpoint;
mod config;
mod plan;
pub mod session;

pub use config::{ColdPolicy, GenConfig, GenFunction, Pacing, parse_config};
pub use plan::{PlannedRun, Planner, plan, total, variant_name};
