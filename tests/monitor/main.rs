//! End-to-end tests of the monitor (`faasload monitor`) on real cgroups and real eBPF:
//! the daemon and its sockets, containers of a real dockerd and of a Kubernetes node's
//! layout, and the deployment files that run it. One test binary, one module per area.
#![expect(
    clippy::unwrap_used,
    reason = "in tests, a failed unwrap is the test failing"
)]

mod daemon;
mod deploy_files;
mod docker;
mod k8s;
mod metrics;
