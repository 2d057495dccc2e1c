//! faasload: an eBPF per-container monitor, an embedded OpenWhisk-compatible platform and
//! a trace-driven load generator for FaaS research. The binary (`main.rs`) is a thin CLI
//! over the modules here, one folder per domain.
pub mod cgroup;
pub mod export;
pub mod generator;
pub mod inputs;
pub mod loader;
pub mod monitor;
pub mod openwhisk;
pub mod platform;
pub mod report;
pub mod store;
pub mod trace;
pub mod util;
