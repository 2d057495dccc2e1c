//! One module per `faasload` command: its clap arguments, and the hand-over to the crate
//! that does the work.
pub(crate) mod exit;
pub(crate) mod generate;
pub(crate) mod load;
#[cfg(feature = "monitor")]
pub(crate) mod monitor;
#[cfg(feature = "monitor")]
pub(crate) mod monitor_check;
pub(crate) mod platform;
pub(crate) mod store;
pub(crate) mod target;
pub(crate) mod trace;
pub(crate) mod workload;
