//! Generator mode (`faasload generate`): a sweep of functions x memory limits x inputs
//! x repetitions with drawn parameters, planned deterministically from a seed.
pub mod config;
pub mod plan;

pub use config::{ColdPolicy, GenConfig, GenFunction, Pacing, parse_config};
pub use plan::{PlannedRun, plan};
