//! The per-container monitor (`sudo faasload monitor`): discovers containers from the
//! cgroup layout, counts their CPU in the kernel (eBPF) or by polling cgroupfs, samples
//! memory, accounts activations between notified boundaries, and answers on UNIX sockets
//! with the original FaaSLoad protocol and a richer one.
mod attribution;
mod btf;
mod config;
mod daemon;
mod discovery;
mod docker;
mod ebpf;
mod events;
mod hw;
mod kubernetes;
mod metrics;
mod protocol;
mod sampler;
mod server;
mod slots;
mod state;

pub use config::{Backend, MonitorConfig};
pub use daemon::run;
