//! The platform's configuration (`config/platform.yml`): listen address, namespaces and
//! keys, action limits, rate limits, container pool, runtimes, sandbox, activation store
//! and monitor notifications. Every field has a default, so an empty file is valid.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// OpenWhisk's public guest key (`uuid:key`) of every fresh deployment.
pub const GUEST_AUTH: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlatformConfig {
    /// Address of the REST API (loopback only by default).
    pub listen: SocketAddr,
    /// Namespaces and their `uuid:key` credentials.
    pub namespaces: Vec<NamespaceConfig>,
    /// Action limits (ranges and defaults).
    pub limits: LimitsConfig,
    /// Rate limits per namespace.
    pub throttle: ThrottleConfig,
    /// Container pool.
    pub pool: PoolConfig,
    /// Language runtimes.
    pub runtimes: RuntimesConfig,
    /// Sandbox of action code.
    pub sandbox: SandboxConfig,
    /// Activation records.
    pub activations: ActivationsConfig,
    /// Directory for container working directories and runtime launchers.
    pub work_dir: PathBuf,
    /// The monitor's notification socket (messages sent only when it exists).
    pub notify_socket: Option<PathBuf>,
    /// Force the cgroup version (`v1` or `v2`); detected at run time by default.
    pub cgroup_version: Option<faasload_cgroup::Version>,
    /// Directory object store shared with the actions (containers are sub-directories):
    /// given to them as `FAASLOAD_STORE_DIR` and left writable inside the sandbox.
    pub store_dir: Option<PathBuf>,
    /// Container backend: `process` (default) or `docker`.
    pub backend: BackendKind,
    /// Docker backend settings.
    pub docker: DockerConfig,
}

/// Which container backend runs actions.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Process trees in cgroups of this host.
    #[default]
    Process,
    /// Docker containers, as OpenWhisk's Docker container factory makes them.
    Docker,
}

/// The Docker backend: daemon socket, network and runtime images.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// Docker daemon address (`unix:///path/docker.sock`).
    pub host: String,
    /// Network of action containers (OpenWhisk: `bridge`).
    pub network: String,
    /// Image of python kinds.
    pub python_image: String,
    /// Image of nodejs kinds.
    pub nodejs_image: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            host: "unix:///var/run/docker.sock".into(),
            network: "bridge".into(),
            python_image: "faasload/action-python:latest".into(),
            nodejs_image: "faasload/action-nodejs:latest".into(),
        }
    }
}

impl Default for PlatformConfig {
    fn default() -> Self {
        PlatformConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 3233)),
            namespaces: vec![NamespaceConfig::guest()],
            limits: LimitsConfig::default(),
            throttle: ThrottleConfig::default(),
            pool: PoolConfig::default(),
            runtimes: RuntimesConfig::default(),
            sandbox: SandboxConfig::default(),
            activations: ActivationsConfig::default(),
            work_dir: PathBuf::from("/run/faasload/platform"),
            notify_socket: Some(PathBuf::from("/run/faasload/notify.sock")),
            cgroup_version: None,
            store_dir: None,
            backend: BackendKind::Process,
            docker: DockerConfig::default(),
        }
    }
}

/// Errors of loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {msg}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl PlatformConfig {
    /// Reads and validates a YAML file.
    pub fn load(path: &Path) -> Result<PlatformConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates YAML text (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<PlatformConfig, ConfigError> {
        let cfg: PlatformConfig = if text.trim().is_empty() {
            PlatformConfig::default()
        } else {
            yaml_serde::from_str(text).map_err(|e| {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                ConfigError::Parse {
                    path: path.to_path_buf(),
                    line,
                    column,
                    msg: e.to_string(),
                }
            })?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks cross-field rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.namespaces.is_empty() {
            return bad("at least one namespace is needed".into());
        }
        for ns in &self.namespaces {
            if ns.auth.split_once(':').is_none() {
                return bad(format!("namespace {}: auth must be `uuid:key`", ns.name));
            }
            if !valid_name(&ns.name) || ns.name == "_" {
                return bad(format!("namespace name {:?} is not valid", ns.name));
            }
        }
        let l = &self.limits;
        if !(l.memory_min <= l.memory_default && l.memory_default <= l.memory_max) {
            return bad("limits: memory_min <= memory_default <= memory_max must hold".into());
        }
        if !(l.timeout_min <= l.timeout_default && l.timeout_default <= l.timeout_max) {
            return bad("limits: timeout_min <= timeout_default <= timeout_max must hold".into());
        }
        if !(l.logs_min <= l.logs_default && l.logs_default <= l.logs_max) {
            return bad("limits: logs_min <= logs_default <= logs_max must hold".into());
        }
        if l.concurrency_max != 1 {
            return bad(
                "limits: concurrency_max must be 1 (the backends run one activation per container)"
                    .into(),
            );
        }
        if self.pool.user_memory_mb < l.memory_max {
            return bad("pool: user_memory_mb must be at least limits.memory_max".into());
        }
        for p in &self.pool.prewarm {
            match crate::runtime::Kind::parse(&p.kind) {
                None => return bad(format!("pool.prewarm: unknown kind {:?}", p.kind)),
                Some(crate::runtime::Kind::Native) if self.backend == BackendKind::Docker => {
                    return bad(format!(
                        "pool.prewarm: kind {:?} has no Docker image",
                        p.kind
                    ));
                }
                Some(_) => {}
            }
        }
        if self.backend == BackendKind::Docker && !self.docker.host.starts_with("unix://") {
            return bad(format!(
                "docker.host: {:?} is not a unix:// socket address",
                self.docker.host
            ));
        }
        Ok(())
    }
}

/// Is `s` a valid OpenWhisk entity name (letters, digits, `_ @ . -` and spaces inside)?
pub(crate) fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'@' | b'.' | b'-' | b' '))
        && !s.ends_with(' ')
}

/// One namespace and its credentials.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceConfig {
    /// Namespace name (`guest`).
    pub name: String,
    /// `uuid:key` credentials.
    pub auth: String,
    /// Per-namespace override of the per-minute invocation limit.
    #[serde(default)]
    pub invocations_per_minute: Option<u32>,
    /// Per-namespace override of the concurrent invocation limit.
    #[serde(default)]
    pub concurrent_invocations: Option<u32>,
}

impl NamespaceConfig {
    /// The guest namespace with OpenWhisk's public key.
    pub fn guest() -> Self {
        NamespaceConfig {
            name: "guest".into(),
            auth: GUEST_AUTH.into(),
            invocations_per_minute: None,
            concurrent_invocations: None,
        }
    }
}

/// Action limits: allowed ranges and defaults (OpenWhisk's deployment values).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub timeout_min: u64,
    pub timeout_max: u64,
    pub timeout_default: u64,
    pub memory_min: u64,
    pub memory_max: u64,
    pub memory_default: u64,
    pub logs_min: u64,
    pub logs_max: u64,
    pub logs_default: u64,
    pub concurrency_max: u64,
    /// Largest parameters / result (bytes).
    pub payload_max: usize,
    /// Largest wait of a blocking invoke (ms).
    pub blocking_timeout_max: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            timeout_min: 100,
            timeout_max: 300_000,
            timeout_default: 60_000,
            memory_min: 128,
            memory_max: 512,
            memory_default: 256,
            logs_min: 0,
            logs_max: 10,
            logs_default: 10,
            concurrency_max: 1,
            payload_max: 1_048_576,
            blocking_timeout_max: 60_000,
        }
    }
}

/// Rate limits per namespace. Real deployments use 60 per minute and 30 concurrent; the
/// defaults here are generous because a load injector is the usual client.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    pub invocations_per_minute: u32,
    pub concurrent_invocations: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            invocations_per_minute: 60_000,
            concurrent_invocations: 1_000,
        }
    }
}

/// Container pool (OpenWhisk classic invoker rules).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Memory budget of all warm and busy containers (MB).
    pub user_memory_mb: u64,
    /// Idle time before a container is paused (ms): 50 in OpenWhisk 1.0.0, 10 000 since 2022.
    pub pause_grace_ms: u64,
    /// Idle time before a container is removed (s).
    pub idle_container_s: u64,
    /// Stem cells kept started per kind and memory.
    pub prewarm: Vec<PrewarmConfig>,
    /// Invoker part of container names (`wsk0` -> `wsk0_<n>_<ns>_<action>`).
    pub invoker_name: String,
    /// pids limit of each container.
    pub pids_max: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            user_memory_mb: 2048,
            pause_grace_ms: 50,
            idle_container_s: 600,
            prewarm: vec![PrewarmConfig {
                kind: "nodejs:20".into(),
                count: 2,
                memory: 256,
            }],
            invoker_name: "wsk0".into(),
            pids_max: 1024,
        }
    }
}

/// Stem cells of one kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrewarmConfig {
    pub kind: String,
    pub count: usize,
    pub memory: u64,
}

/// Interpreters of the language runtimes.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimesConfig {
    pub python: PathBuf,
    pub node: PathBuf,
    /// Directories given to Python actions as `PYTHONPATH` (e.g. functions/python/lib).
    pub python_path: Vec<PathBuf>,
    /// Directories given to Node.js actions as `NODE_PATH` (e.g. a node_modules).
    pub node_path: Vec<PathBuf>,
}

impl Default for RuntimesConfig {
    fn default() -> Self {
        RuntimesConfig {
            python: PathBuf::from("/usr/bin/python3"),
            node: PathBuf::from("/usr/bin/node"),
            python_path: Vec::new(),
            node_path: Vec::new(),
        }
    }
}

/// How action code is confined.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Unprivileged user that runs action code.
    pub user: String,
    /// Create the user (useradd --system) at start when missing.
    pub create_user: bool,
    /// Own PID and mount namespaces, read-only file system but the working directory.
    pub namespaces: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            user: "faasload-action".into(),
            create_user: true,
            namespaces: true,
        }
    }
}

/// Activation records.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivationsConfig {
    /// Records kept (oldest dropped first).
    pub max_records: usize,
    /// JSON-lines file that keeps records across restarts (none: memory only).
    pub persist: Option<PathBuf>,
}

impl Default for ActivationsConfig {
    fn default() -> Self {
        ActivationsConfig {
            max_records: 100_000,
            persist: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_default_and_errors_have_location() {
        let c = PlatformConfig::parse("", Path::new("x.yml")).unwrap();
        assert_eq!(c.listen.port(), 3233);
        assert_eq!(c.namespaces[0].name, "guest");
        let e = PlatformConfig::parse("pool:\n  user_memory_mb: [1]\n", Path::new("x.yml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.yml:2:"), "{e}");
        let e = PlatformConfig::parse("nope: 1\n", Path::new("x.yml")).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn shipped_config_parses_and_backend_keys() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/platform.yml");
        let c = PlatformConfig::load(&p).unwrap();
        assert_eq!(c.backend, BackendKind::Process);
        assert_eq!(c.docker.python_image, "faasload/action-python:latest");
        let c = PlatformConfig::parse(
            "backend: docker\ndocker:\n  host: unix:///run/x.sock\n",
            Path::new("x.yml"),
        )
        .unwrap();
        assert_eq!(c.backend, BackendKind::Docker);
        assert_eq!(c.docker.host, "unix:///run/x.sock");
        assert_eq!(c.docker.network, "bridge");
        let e = PlatformConfig::parse(
            "backend: docker\ndocker: {host: tcp://h:1}\n",
            Path::new("x.yml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unix://"), "{e}");
        let e = PlatformConfig::parse("backend: podman\n", Path::new("x.yml")).unwrap_err();
        assert!(e.to_string().starts_with("x.yml:1:"), "{e}");
    }

    #[test]
    fn names() {
        assert!(valid_name("hello"));
        assert!(valid_name("a-b.c@d e"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("-a"));
    }
}
