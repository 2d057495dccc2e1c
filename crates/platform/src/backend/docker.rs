//! The Docker backend: containers made as OpenWhisk's Docker container factory makes them
//! (`docker run -d --cpu-shares S --memory M --memory-swap M --network bridge --cap-drop
//! NET_RAW --cap-drop NET_ADMIN --ulimit nofile=1024:1024 --pids-limit P --log-driver
//! json-file --name wsk0_<n>_<ns>_<action>`), driven through dockerd's HTTP API on its UNIX
//! socket (bollard). The runtime in the container answers OpenWhisk's `/init` and `/run`
//! on port 8080 of the container's bridge address; its stdout/stderr are followed from the
//! json-file log up to the sentinels the runtime writes after each activation. Pause and
//! resume are `docker pause`/`unpause` (cgroup freezer); removal is `docker rm -f`; a
//! dead container's `State.OOMKilled` tells an OOM kill from a crash.
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::logs::{LOG_LINE_MAX, Logs};
use crate::config::{DockerConfig, PoolConfig};
use crate::container::{ContainerError, Failure, InitFailure, RunOutput, cpu_shares};
use crate::entities::Exec;
use crate::runtime::Kind;

/// Label set on every container of this platform (value: the invoker name).
pub(crate) const LABEL: &str = "faasload.invoker";
/// Port of the runtime's HTTP server in the container.
const PORT: u16 = 8080;
/// The daemon connection and what every container is created with.
pub struct DockerBackend {
    docker: Docker,
    http: reqwest::Client,
    cfg: DockerConfig,
    invoker: String,
    spec: Spec,
    result_max: usize,
}

/// What every container is created with.
struct Spec {
    invoker: String,
    user_memory_mb: u64,
    pids_max: u64,
    network: String,
    api_host: String,
}

fn derr(name: &str, e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Docker {
        name: name.to_string(),
        msg: e.to_string(),
    }
}

impl DockerBackend {
    /// Connects to the daemon at `cfg.host`, checks that it answers and that the runtime
    /// images exist, and removes containers left by an earlier run of this invoker.
    pub async fn connect(
        cfg: &DockerConfig,
        pool: &PoolConfig,
        api_host: String,
        result_max: usize,
    ) -> anyhow::Result<DockerBackend> {
        use anyhow::Context;
        let path = cfg
            .host
            .strip_prefix("unix://")
            .with_context(|| format!("docker host {:?} is not unix://", cfg.host))?;
        let docker = Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
            .with_context(|| format!("connect to {}", cfg.host))?;
        let v = docker
            .version()
            .await
            .with_context(|| format!("docker daemon at {} does not answer", cfg.host))?;
        tracing::info!(
            "docker daemon {} (API {}) at {}",
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default(),
            cfg.host
        );
        for img in [&cfg.python_image, &cfg.nodejs_image] {
            docker.inspect_image(img).await.with_context(|| {
                format!("runtime image {img} is missing (build it with `cargo xtask images`)")
            })?;
        }
        // No idle connections: a container's address is reused by the next container,
        // and a pooled connection to a removed one would look like a crash.
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .context("HTTP client")?;
        let b = DockerBackend {
            docker,
            http,
            cfg: cfg.clone(),
            invoker: pool.invoker_name.clone(),
            spec: Spec {
                invoker: pool.invoker_name.clone(),
                user_memory_mb: pool.user_memory_mb,
                pids_max: pool.pids_max,
                network: cfg.network.clone(),
                api_host,
            },
            result_max,
        };
        b.remove_stale().await?;
        Ok(b)
    }

    /// Removes (`rm -f`) every container named `<invoker>_*` with this platform's label.
    async fn remove_stale(&self) -> anyhow::Result<()> {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![format!("{LABEL}={}", self.invoker)],
        );
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await?;
        for c in list {
            let Some(id) = c.id else { continue };
            tracing::warn!("removing stale container {:?}", c.names.unwrap_or_default());
            self.rm(&id).await;
        }
        Ok(())
    }

    /// `docker rm -f <id>`; true when the container is gone.
    async fn rm(&self, id: &str) -> bool {
        let r = self
            .docker
            .remove_container(
                id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
        match r {
            Ok(()) => true,
            // Already gone: removed.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => true,
            Err(e) => {
                tracing::warn!("docker rm -f {id}: {e}");
                false
            }
        }
    }

    fn image(&self, kind: Kind) -> Option<&str> {
        match kind {
            Kind::Python => Some(&self.cfg.python_image),
            Kind::Node => Some(&self.cfg.nodejs_image),
            Kind::Native => None,
        }
    }
}

impl Spec {
    /// The create body of `docker run` as OpenWhisk's Docker factory sends it.
    fn body(&self, name: &str, image: &str, memory_mb: u64) -> ContainerCreateBody {
        let bytes = (memory_mb * 1024 * 1024) as i64;
        let mut labels = HashMap::new();
        labels.insert(LABEL.to_string(), self.invoker.clone());
        labels.insert("faasload.container".to_string(), name.to_string());
        ContainerCreateBody {
            image: Some(image.to_string()),
            env: Some(vec![format!("__OW_API_HOST={}", self.api_host)]),
            labels: Some(labels),
            host_config: Some(HostConfig {
                memory: Some(bytes),
                memory_swap: Some(bytes),
                cpu_shares: Some(cpu_shares(self.user_memory_mb, memory_mb) as i64),
                pids_limit: Some(self.pids_max as i64),
                ulimits: Some(vec![ResourcesUlimits {
                    name: Some("nofile".into()),
                    soft: Some(1024),
                    hard: Some(1024),
                }]),
                cap_drop: Some(vec!["NET_RAW".into(), "NET_ADMIN".into()]),
                network_mode: Some(self.network.clone()),
                log_config: Some(HostConfigLogConfig {
                    typ: Some("json-file".into()),
                    config: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// One Docker container.
pub(crate) struct DockerContainer {
    backend: Arc<DockerBackend>,
    name: String,
    id: String,
    /// `http://<bridge ip>:8080`.
    base: String,
    logs: Arc<Logs>,
    /// Held by init/run/pause so a pause never lands in the middle of a run.
    busy: tokio::sync::Mutex<()>,
    frozen: AtomicBool,
    follower: tokio::task::JoinHandle<()>,
}

impl DockerContainer {
    /// `docker run -d ...`: creates and starts the container, learns its bridge address
    /// and follows its log.
    pub(crate) async fn create(
        backend: Arc<DockerBackend>,
        name: &str,
        kind: Kind,
        memory_mb: u64,
    ) -> Result<DockerContainer, ContainerError> {
        let image = backend
            .image(kind)
            .ok_or_else(|| derr(name, format!("kind {} has no Docker image", kind.short())))?
            .to_string();
        let created = backend
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(name).build()),
                backend.spec.body(name, &image, memory_mb),
            )
            .await
            .map_err(|e| derr(name, format!("create: {e}")))?;
        let id = created.id;
        if let Err(e) = backend
            .docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            backend.rm(&id).await;
            return Err(derr(name, format!("start: {e}")));
        }
        let ip = match backend
            .docker
            .inspect_container(
                &id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Ok(i) => i
                .network_settings
                .and_then(|n| {
                    n.networks
                        .and_then(|m| {
                            m.get(&backend.cfg.network)
                                .and_then(|e| e.ip_address.clone())
                        })
                        .or(n.ip_address)
                })
                .filter(|ip| !ip.is_empty()),
            Err(e) => {
                backend.rm(&id).await;
                return Err(derr(name, format!("inspect: {e}")));
            }
        };
        let Some(ip) = ip else {
            backend.rm(&id).await;
            return Err(derr(name, "no IP address on the container network"));
        };
        let logs = Arc::new(Logs::default());
        let follower = tokio::spawn(follow(backend.docker.clone(), id.clone(), logs.clone()));
        Ok(DockerContainer {
            backend,
            name: name.to_string(),
            id,
            base: format!("http://{ip}:{PORT}"),
            logs,
            busy: tokio::sync::Mutex::new(()),
            frozen: AtomicBool::new(false),
            follower,
        })
    }

    /// The full container id (the monitor's name for it).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// `POST /init` with `{"value": {name, main, code, binary, env}}`; retries the
    /// connection while the runtime starts, within `timeout`.
    pub(crate) async fn init(
        &self,
        exec: &Exec,
        env: &serde_json::Map<String, serde_json::Value>,
        timeout: Duration,
        log_limit: usize,
    ) -> Result<(), InitFailure> {
        let _busy = self.busy.lock().await;
        self.logs.reset(log_limit);
        let body = serde_json::json!({"value": {
            "name": self.name,
            "main": exec.main.as_deref().unwrap_or("main"),
            "code": exec.code.as_deref().unwrap_or(""),
            "binary": exec.binary,
            "env": env,
        }});
        let deadline = tokio::time::Instant::now() + timeout;
        let url = format!("{}/init", self.base);
        let resp = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(InitFailure::Failed(Failure::Timeout));
            }
            match self
                .backend
                .http
                .post(&url)
                .json(&body)
                .timeout(left)
                .send()
                .await
            {
                Ok(r) => break r,
                Err(e) if e.is_connect() => {
                    if !self.running().await {
                        return Err(InitFailure::Failed(self.died().await));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) if e.is_timeout() => return Err(InitFailure::Failed(Failure::Timeout)),
                Err(_) => return Err(InitFailure::Failed(self.died().await)),
            }
        };
        let status = resp.status();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let text = match read_body(resp, self.backend.result_max, left).await {
            Ok(t) => t,
            Err(f @ (Failure::Timeout | Failure::TooLarge(_))) => {
                return Err(InitFailure::Failed(f));
            }
            Err(_) => return Err(InitFailure::Failed(self.died().await)),
        };
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
        if status.is_success() && v.get("ok") == Some(&serde_json::Value::Bool(true)) {
            return Ok(());
        }
        match v.get("error") {
            Some(e) => Err(InitFailure::Error(e.clone())),
            None => Err(InitFailure::Failed(Failure::BadOutput(text))),
        }
    }

    /// `POST /run` with the activation message; collects the logs up to the sentinels.
    pub(crate) async fn run(&self, line: &[u8], timeout: Duration, log_limit: usize) -> RunOutput {
        let _busy = self.busy.lock().await;
        let target = self.logs.begin(Some(log_limit));
        let url = format!("{}/run", self.base);
        let started = tokio::time::Instant::now();
        let sent = self
            .backend
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(line.to_vec())
            .timeout(timeout)
            .send()
            .await;
        let result = match sent {
            Ok(resp) => {
                let status = resp.status();
                match read_body(resp, self.backend.result_max, timeout).await {
                    Ok(text) if status.is_success() => Ok(text),
                    // The runtime answers an error status only for a request it cannot
                    // serve; a dying action makes it exit without answering.
                    Ok(text) => Err(Failure::BadOutput(text)),
                    Err(Failure::Died { .. }) => Err(self.died().await),
                    Err(f) => Err(f),
                }
            }
            // Only our own deadline is a time-out; a connection that fails earlier
            // (even with ETIMEDOUT) means the runtime is gone.
            Err(_) if started.elapsed() >= timeout => Err(Failure::Timeout),
            Err(_) => Err(self.died().await),
        };
        let wait = if result.is_ok() {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(200)
        };
        let logs = self.logs.take(target, wait).await;
        RunOutput { result, logs }
    }

    /// Is the container still running (inspect)?
    async fn running(&self) -> bool {
        self.state()
            .await
            .ok()
            .flatten()
            .and_then(|s| s.running)
            .unwrap_or(false)
    }

    /// The container's state (`docker inspect`'s `State`).
    async fn state(
        &self,
    ) -> Result<Option<bollard::models::ContainerState>, bollard::errors::Error> {
        self.backend
            .docker
            .inspect_container(
                &self.id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map(|i| i.state)
    }

    /// After the runtime stopped answering: waits for the container to stop and reads
    /// `State.OOMKilled`.
    async fn died(&self) -> Failure {
        let mut wait = self.backend.docker.wait_container(
            &self.id,
            None::<bollard::query_parameters::WaitContainerOptions>,
        );
        let _ = tokio::time::timeout(Duration::from_secs(2), wait.next()).await;
        let oom = match self.state().await {
            Ok(st) => st.and_then(|s| s.oom_killed).unwrap_or(false),
            Err(e) => {
                tracing::warn!("container {}: inspect: {e}", self.name);
                false
            }
        };
        Failure::Died { oom }
    }

    /// The log lines written since the last activation (after a failed init; the runtime
    /// writes the sentinels after a failed init too).
    pub(crate) async fn collect_logs(&self) -> Vec<String> {
        let target = self.logs.begin(None);
        self.logs.take(target, Duration::from_millis(500)).await
    }

    /// `docker pause` if lease `lease` is still the current one.
    pub(crate) async fn pause(&self, current: &AtomicU64, lease: u64) -> bool {
        let _busy = self.busy.lock().await;
        if current.load(Ordering::SeqCst) != lease || self.frozen.load(Ordering::SeqCst) {
            return false;
        }
        match self.backend.docker.pause_container(&self.id).await {
            Ok(()) => {
                self.frozen.store(true, Ordering::SeqCst);
                true
            }
            Err(e) => {
                tracing::warn!("container {}: pause: {e}", self.name);
                false
            }
        }
    }

    /// `docker unpause` if paused; true if it was.
    pub(crate) async fn resume(&self) -> bool {
        let _busy = self.busy.lock().await;
        if !self.frozen.load(Ordering::SeqCst) {
            return false;
        }
        if let Err(e) = self.backend.docker.unpause_container(&self.id).await {
            tracing::warn!("container {}: unpause: {e}", self.name);
        }
        self.frozen.store(false, Ordering::SeqCst);
        true
    }

    /// `docker rm -f`, after a pause or unpause in flight (a removal racing a pause can
    /// fail and leave the container paused); a run in flight is not waited for beyond
    /// a few seconds. A failed removal is tried again.
    pub(crate) async fn destroy(&self) {
        self.follower.abort();
        let _busy = tokio::time::timeout(Duration::from_secs(5), self.busy.lock())
            .await
            .ok();
        for attempt in 0..3 {
            if self.backend.rm(&self.id).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
    }
}

/// Reads a response body of at most `max` bytes within `timeout`.
async fn read_body(
    mut resp: reqwest::Response,
    max: usize,
    timeout: Duration,
) -> Result<String, Failure> {
    let mut buf = Vec::new();
    let mut total = 0usize;
    let read = async {
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    total += c.len();
                    if buf.len() < max {
                        let room = max - buf.len();
                        buf.extend_from_slice(&c[..c.len().min(room)]);
                    }
                }
                Ok(None) => return Ok(()),
                Err(_) => return Err(Failure::Died { oom: false }),
            }
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Err(f)) => Err(f),
        Ok(Ok(())) if total >= max => Err(Failure::TooLarge(total)),
        Ok(Ok(())) => Ok(String::from_utf8_lossy(&buf).into_owned()),
    }
}

/// Follows the container's log (stdout and stderr) into activation log lines, counting
/// the sentinels of each stream.
async fn follow(docker: Docker, id: String, logs: Arc<Logs>) {
    let mut stream = docker.logs(
        &id,
        Some(
            LogsOptionsBuilder::new()
                .follow(true)
                .stdout(true)
                .stderr(true)
                .build(),
        ),
    );
    let mut partial: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    while let Some(item) = stream.next().await {
        let (idx, msg) = match item {
            Ok(bollard::container::LogOutput::StdOut { message }) => (0, message),
            Ok(bollard::container::LogOutput::StdErr { message }) => (1, message),
            Ok(_) => continue,
            Err(_) => break,
        };
        let buf = &mut partial[idx];
        buf.extend_from_slice(&msg);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let rest = buf.split_off(i + 1);
            let mut line = std::mem::replace(buf, rest);
            line.truncate(LOG_LINE_MAX);
            logs.push(idx, &line);
        }
        if buf.len() > LOG_LINE_MAX {
            let line = std::mem::take(buf);
            logs.push(idx, &line);
        }
    }
    logs.closed();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_follows_openwhisk() {
        let b = Spec {
            invoker: "wsk0".into(),
            user_memory_mb: 2048,
            pids_max: 1024,
            network: "bridge".into(),
            api_host: "http://127.0.0.1:3233".into(),
        };
        let body = b.body("wsk0_1_guest_a", "img", 256);
        let h = body.host_config.unwrap();
        assert_eq!(h.memory, Some(256 << 20));
        assert_eq!(h.memory_swap, Some(256 << 20));
        assert_eq!(h.cpu_shares, Some(128));
        assert_eq!(h.pids_limit, Some(1024));
        assert_eq!(h.network_mode.as_deref(), Some("bridge"));
        assert_eq!(h.cap_drop.unwrap(), vec!["NET_RAW", "NET_ADMIN"]);
        let u = &h.ulimits.unwrap()[0];
        assert_eq!(
            (u.name.as_deref(), u.soft, u.hard),
            (Some("nofile"), Some(1024), Some(1024))
        );
        assert_eq!(h.log_config.unwrap().typ.as_deref(), Some("json-file"));
        assert_eq!(body.labels.unwrap()[LABEL], "wsk0");
    }
}
