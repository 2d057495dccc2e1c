//! Generator mode (`faasload generate`): a sweep of functions x memory limits x inputs
//! x repetitions with drawn parameters, planned deterministically from a seed.
pub mod config;
pub mod plan;

pub use config::{parse_config, ColdPolicy, GenConfig, GenFunction, Pacing};
pub use plan::{plan, PlannedRun};
