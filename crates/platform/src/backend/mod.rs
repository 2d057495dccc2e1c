//! The container backend interface the pool and the invoke path use: create (a stem cell
//! until init), init, run, logs after a failed init, pause/resume for a lease, destroy,
//! and what the monitor is told about a container. Two backends implement it: the
//! process backend (`platform::container`, cgroups + namespaces on this host) and the
//! Docker backend (`docker`, containers created like OpenWhisk's Docker factory does).
//! `backend: process|docker` in `platform.yml` (or `faasload platform --backend`) picks one.
pub(crate) mod docker;
pub(crate) mod logs;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::container::{ContainerError, InitFailure, ProcessBackend, ProcessContainer, RunOutput};
use super::entities::Exec;
use super::runtime::Kind;

/// The backend chosen at start-up.
pub enum Backend {
    Process(Arc<ProcessBackend>),
    Docker(Arc<docker::DockerBackend>),
}

impl Backend {
    /// `process` or `docker`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Process(_) => "process",
            Backend::Docker(_) => "docker",
        }
    }
}

enum Inner {
    Process(Arc<ProcessContainer>),
    Docker(docker::DockerContainer),
}

/// One container of either backend.
pub struct Container {
    pub name: String,
    pub kind: Kind,
    pub memory_mb: u64,
    /// Bumped each time the pool hands the container out; a pause for an older lease is void.
    pub lease: AtomicU64,
    inner: Inner,
}

impl Container {
    /// Creates and starts a container (a stem cell until [`Container::init`]).
    pub async fn create(
        backend: &Backend,
        name: String,
        kind: Kind,
        memory_mb: u64,
    ) -> Result<Arc<Container>, ContainerError> {
        let inner = match backend {
            Backend::Process(b) => Inner::Process(
                ProcessContainer::create(b.clone(), name.clone(), kind, memory_mb).await?,
            ),
            Backend::Docker(b) => Inner::Docker(
                docker::DockerContainer::create(b.clone(), &name, kind, memory_mb).await?,
            ),
        };
        Ok(Arc::new(Container {
            name,
            kind,
            memory_mb,
            lease: AtomicU64::new(0),
            inner,
        }))
    }

    /// Initialises the runtime with the action's code.
    pub async fn init(
        &self,
        backend: &Backend,
        exec: &Exec,
        env: &serde_json::Map<String, serde_json::Value>,
        timeout: Duration,
        log_limit: usize,
    ) -> Result<(), InitFailure> {
        match (&self.inner, backend) {
            (Inner::Process(c), Backend::Process(b)) => {
                c.init(b, exec, env, timeout, log_limit).await
            }
            (Inner::Docker(c), _) => c.init(exec, env, timeout, log_limit).await,
            (Inner::Process(_), _) => Err(InitFailure::Internal("backend mismatch".into())),
        }
    }

    /// Runs one activation (`line`: the ActionLoop run message) and collects its logs.
    pub async fn run(&self, line: &[u8], timeout: Duration, log_limit: usize) -> RunOutput {
        match &self.inner {
            Inner::Process(c) => c.run(line, timeout, log_limit).await,
            Inner::Docker(c) => c.run(line, timeout, log_limit).await,
        }
    }

    /// The log lines written since the last activation (after a failed init).
    pub async fn collect_logs(&self) -> Vec<String> {
        match &self.inner {
            Inner::Process(c) => c.collect_logs().await,
            Inner::Docker(c) => c.collect_logs().await,
        }
    }

    /// Pauses the container if lease `lease` is still the current one.
    pub async fn pause(&self, lease: u64) -> bool {
        match &self.inner {
            Inner::Process(c) => c.pause(&self.lease, lease).await,
            Inner::Docker(c) => c.pause(&self.lease, lease).await,
        }
    }

    /// Resumes the container if it is paused; true if it was.
    pub async fn resume(&self) -> bool {
        match &self.inner {
            Inner::Process(c) => c.resume().await,
            Inner::Docker(c) => c.resume().await,
        }
    }

    /// Removes the container and everything it holds.
    pub async fn destroy(&self) {
        match &self.inner {
            Inner::Process(c) => c.destroy().await,
            Inner::Docker(c) => c.destroy().await,
        }
    }

    /// How the monitor knows the container: its name on the process backend (cgroup
    /// `faasload/platform/<name>`), its full id on Docker (cgroup `docker/<id>` or
    /// `docker-<id>.scope`).
    pub fn monitor_id(&self) -> &str {
        match &self.inner {
            Inner::Process(_) => &self.name,
            Inner::Docker(c) => c.id(),
        }
    }
}
