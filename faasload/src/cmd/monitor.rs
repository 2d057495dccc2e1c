//! `faasload monitor` command line: reads the config file and applies flag overrides.
use std::path::PathBuf;

use anyhow::Context;

use faasload_cgroup::Version;
use faasload_monitor::{Backend, MonitorConfig};

/// Arguments of `faasload monitor`.
#[derive(clap::Args, Debug)]
pub(crate) struct MonitorArgs {
    /// Configuration file (YAML); default: built-in defaults (see config/monitor.yml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// CPU accounting backend.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Force the cgroup version (default: chosen from the host's mounts).
    #[arg(long, value_parser = parse_version)]
    pub cgroup_version: Option<Version>,
    /// Sampling interval in milliseconds.
    #[arg(long)]
    pub interval_ms: Option<f64>,
    /// Notification socket path.
    #[arg(long)]
    pub notify_socket: Option<PathBuf>,
    /// Query socket path.
    #[arg(long)]
    pub query_socket: Option<PathBuf>,
    /// Prometheus endpoint on loopback, e.g. 127.0.0.1:9464.
    #[arg(long)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Turn on the kernel's BPF run-time statistics (small cost per program run).
    #[arg(long)]
    pub bpf_stats: bool,
    /// Validate the configuration (file and flags), print the effective configuration as
    /// YAML and exit without starting (needs no root), e.g. before a unit starts.
    #[arg(long)]
    pub check_config: bool,
}

fn parse_version(s: &str) -> Result<Version, String> {
    match s {
        "1" | "v1" => Ok(Version::V1),
        "2" | "v2" => Ok(Version::V2),
        _ => Err(format!("expected v1 or v2, got {s:?}")),
    }
}

/// Runs the monitor.
pub(crate) fn run(a: MonitorArgs) -> anyhow::Result<()> {
    let mut cfg = match &a.config {
        Some(p) => MonitorConfig::load(p)?,
        None => MonitorConfig::default(),
    };
    if let Some(b) = a.backend {
        cfg.backend = b;
    }
    if let Some(v) = a.cgroup_version {
        cfg.cgroup_version = Some(v);
    }
    if let Some(i) = a.interval_ms {
        cfg.interval_ms = i;
    }
    if let Some(p) = a.notify_socket {
        cfg.notify_socket = p;
    }
    if let Some(p) = a.query_socket {
        cfg.query_socket = p;
    }
    if let Some(m) = a.metrics {
        cfg.metrics_addr = Some(m);
    }
    if a.bpf_stats {
        cfg.bpf_stats = true;
    }
    cfg.validate()?;
    if a.check_config {
        print!(
            "{}",
            yaml_serde::to_string(&cfg).context("printing the configuration")?
        );
        return Ok(());
    }
    faasload_monitor::run(cfg)
}
