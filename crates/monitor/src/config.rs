//! The monitor's configuration (`config/monitor.yml`), with documented defaults. Every
//! field may be omitted; unknown fields are refused so typos do not pass silently.
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use faasload_cgroup::Version;

/// Where CPU time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Kernel programs count on-CPU time per cgroup on every context switch.
    Ebpf,
    /// Polling of cgroupfs only (no BPF needed); activations resolved at the sampling
    /// interval, like the original FaaSLoad.
    Cgroupfs,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Ebpf => "ebpf",
            Backend::Cgroupfs => "cgroupfs",
        })
    }
}

/// A cgroup layout recognised as containers: a regex on the cgroup path relative to the
/// hierarchy root (no leading slash), with a named group `id` giving the container id.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    /// Label of the layout (`docker`, `kubernetes`, `faasload`, ...).
    pub kind: String,
    /// Regular expression with a named capture group `id`.
    pub regex: String,
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// `ebpf` (default) or `cgroupfs`.
    pub backend: Backend,
    /// Force cgroup `v1` or `v2`; default: v1 when the `cpu` controller is on v1.
    pub cgroup_version: Option<Version>,
    /// Sampling interval in milliseconds (FaaSLoad: 10).
    pub interval_ms: f64,
    /// How long samples are kept per container, in seconds.
    pub max_age_s: f64,
    /// How long a removed container still answers queries, in seconds.
    pub grace_s: f64,
    /// How many finished activations are kept (oldest dropped first, counted).
    pub max_activations: usize,
    /// How often the cgroup tree is rescanned, in milliseconds (safety net to events).
    pub rescan_ms: u64,
    /// Notification socket (original FaaSLoad: /run/wdm/notif).
    pub notify_socket: PathBuf,
    /// Query socket (original FaaSLoad: /run/wdm/meas).
    pub query_socket: PathBuf,
    /// Mode of both sockets.
    pub socket_mode: u32,
    /// Group owning both sockets (name or gid); none: root's.
    pub socket_group: Option<String>,
    /// Largest request accepted on a socket, in bytes.
    pub max_request_bytes: usize,
    /// Most concurrent socket clients; more are refused with an error.
    pub max_clients: usize,
    /// Prometheus endpoint address (loopback), e.g. `127.0.0.1:9464`; none: off.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Container layouts to recognise.
    pub patterns: Vec<Pattern>,
    /// Reset the cgroup's peak memory counter at each activation start (v1:
    /// `memory.max_usage_in_bytes`, shared with other readers; v2: per-reader, harmless).
    pub reset_peak: bool,
    /// Turn on the kernel's BPF run-time statistics while running (costs a little per
    /// program run; needed for the BPF run time in `stats` and `/metrics`).
    pub bpf_stats: bool,
    /// dockerd's socket, for container names, images and labels; none: names from the
    /// cgroup only. Used when it answers; the monitor runs without it.
    pub docker_socket: Option<PathBuf>,
    /// The kubelet's pod list (read-only), e.g. `http://127.0.0.1:10255/pods`; none:
    /// pod names from the cgroup path only.
    pub kubelet_url: Option<String>,
    /// Bearer token file for the kubelet (e.g. a service-account token).
    pub kubelet_token_file: Option<PathBuf>,
    /// Accept the kubelet's self-signed certificate.
    pub kubelet_insecure_tls: bool,
    /// How often the freezer state is read for pause/resume, in milliseconds.
    pub freezer_ms: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            backend: Backend::Ebpf,
            cgroup_version: None,
            interval_ms: 10.0,
            max_age_s: 300.0,
            grace_s: 300.0,
            max_activations: 100_000,
            rescan_ms: 1000,
            notify_socket: PathBuf::from("/run/faasload/notify.sock"),
            query_socket: PathBuf::from("/run/faasload/query.sock"),
            socket_mode: 0o660,
            socket_group: None,
            max_request_bytes: 64 * 1024,
            max_clients: 512,
            metrics_addr: None,
            patterns: default_patterns(),
            reset_peak: true,
            bpf_stats: false,
            docker_socket: Some(PathBuf::from("/var/run/docker.sock")),
            kubelet_url: None,
            kubelet_token_file: None,
            kubelet_insecure_tls: false,
            freezer_ms: 100,
        }
    }
}

/// The layouts of Docker (v1 and v2), Kubernetes and faasload's embedded platform.
pub(crate) fn default_patterns() -> Vec<Pattern> {
    let p = |kind: &str, regex: &str| Pattern {
        kind: kind.into(),
        regex: regex.into(),
    };
    vec![
        p("docker", r"^docker/(?P<id>[0-9a-f]{64})$"),
        p("docker", r"^(?:.*/)?docker-(?P<id>[0-9a-f]{64})\.scope$"),
        p(
            "kubernetes",
            r"^(?:.*/)?kubepods[^/]*(?:/[^/]+)*/(?:cri-containerd-|crio-|docker-)?(?P<id>[0-9a-f]{64})(?:\.scope)?$",
        ),
        p("faasload", r"^faasload/platform/(?P<id>[A-Za-z0-9_.-]+)$"),
    ]
}

impl MonitorConfig {
    /// Reads a YAML file; errors say file:line:col.
    pub fn load(path: &Path) -> anyhow::Result<MonitorConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses YAML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<MonitorConfig> {
        let cfg: MonitorConfig = yaml_serde::from_str(text).map_err(|e| match e.location() {
            Some(l) => anyhow::anyhow!("{origin}:{}:{}: {e}", l.line(), l.column()),
            None => anyhow::anyhow!("{origin}: {e}"),
        })?;
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        Ok(cfg)
    }

    /// Checks values a YAML type cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.interval_ms.is_finite() && self.interval_ms >= 0.1) {
            anyhow::bail!("interval_ms must be at least 0.1, got {}", self.interval_ms);
        }
        if !(self.max_age_s.is_finite() && self.max_age_s > 0.0) {
            anyhow::bail!("max_age_s must be positive");
        }
        if !(self.grace_s.is_finite() && self.grace_s >= 0.0) {
            anyhow::bail!("grace_s must be zero or positive");
        }
        if let Some(a) = self.metrics_addr
            && !a.ip().is_loopback()
        {
            anyhow::bail!("metrics_addr {a} is not a loopback address");
        }
        for p in &self.patterns {
            let re = regex::Regex::new(&p.regex)
                .map_err(|e| anyhow::anyhow!("pattern {:?}: {e}", p.regex))?;
            if !re.capture_names().any(|n| n == Some("id")) {
                anyhow::bail!("pattern {:?} has no named group `id`", p.regex);
            }
        }
        Ok(())
    }

    /// The sampling interval.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval_ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_yaml_overrides() {
        MonitorConfig::default().validate().unwrap();
        let c = MonitorConfig::parse("backend: cgroupfs\ninterval_ms: 5\n", "t.yml").unwrap();
        assert_eq!(c.backend, Backend::Cgroupfs);
        assert_eq!(c.interval_ms, 5.0);
        assert_eq!(c.patterns.len(), default_patterns().len());
    }

    #[test]
    fn shipped_config_is_the_documented_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/monitor.yml");
        let c = MonitorConfig::load(&path).unwrap();
        let d = MonitorConfig::default();
        assert_eq!(c.backend, d.backend);
        assert_eq!(c.interval_ms, d.interval_ms);
        assert_eq!(c.max_age_s, d.max_age_s);
        assert_eq!(c.grace_s, d.grace_s);
        assert_eq!(c.max_activations, d.max_activations);
        assert_eq!(c.rescan_ms, d.rescan_ms);
        assert_eq!(c.notify_socket, d.notify_socket);
        assert_eq!(c.query_socket, d.query_socket);
        assert_eq!(c.socket_mode, d.socket_mode);
        assert_eq!(c.max_request_bytes, d.max_request_bytes);
        assert_eq!(c.max_clients, d.max_clients);
        assert_eq!(c.bpf_stats, d.bpf_stats);
        assert_eq!(c.reset_peak, d.reset_peak);
        assert_eq!(c.docker_socket, d.docker_socket);
        assert_eq!(c.kubelet_url, d.kubelet_url);
        assert_eq!(c.freezer_ms, d.freezer_ms);
        let pats = |v: &[Pattern]| {
            v.iter()
                .map(|p| (p.kind.clone(), p.regex.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pats(&c.patterns), pats(&d.patterns));
    }

    #[test]
    fn errors_name_the_place() {
        let e = MonitorConfig::parse("interval_ms: 5\nbogus: 1\n", "m.yml").unwrap_err();
        assert!(e.to_string().starts_with("m.yml:2:"), "{e}");
        let e = MonitorConfig::parse("interval_ms: 0\n", "m.yml").unwrap_err();
        assert!(e.to_string().contains("interval_ms"), "{e}");
        let e = MonitorConfig::parse("patterns: [{kind: x, regex: 'a'}]\n", "m.yml").unwrap_err();
        assert!(e.to_string().contains("named group"), "{e}");
        let e = MonitorConfig::parse("metrics_addr: 0.0.0.0:9\n", "m.yml").unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }

    #[test]
    fn default_patterns_match_known_layouts() {
        let id = "a".repeat(64);
        let cases = [
            (format!("docker/{id}"), "docker"),
            (format!("system.slice/docker-{id}.scope"), "docker"),
            (format!("kubepods/burstable/pod1234-ab/{id}"), "kubernetes"),
            (
                format!(
                    "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-{id}.scope"
                ),
                "kubernetes",
            ),
            (
                "faasload/platform/wsk0_1_guest_hello".to_string(),
                "faasload",
            ),
        ];
        let pats = default_patterns();
        for (path, kind) in cases {
            let hit = pats
                .iter()
                .find(|p| regex::Regex::new(&p.regex).unwrap().is_match(&path));
            assert_eq!(hit.map(|p| p.kind.as_str()), Some(kind), "{path}");
        }
        assert!(
            !pats
                .iter()
                .any(|p| regex::Regex::new(&p.regex).unwrap().is_match("user.slice"))
        );
    }
}
