//! The per-container monitor (`sudo faasload monitor`): discovers containers from the
//! cgroup layout, counts their CPU in the kernel (eBPF) or by polling cgroupfs, samples
//! memory, accounts activations between notified boundaries, and answers on UNIX sockets
//! with the original FaaSLoad protocol and a richer one.
pub mod attribution;
pub mod btf;
pub mod config;
pub mod daemon;
pub mod discovery;
pub mod docker;
pub mod ebpf;
pub mod events;
pub mod hw;
pub mod kubernetes;
pub mod metrics;
pub mod protocol;
pub mod sampler;
pub mod server;
pub mod slots;
pub mod state;
