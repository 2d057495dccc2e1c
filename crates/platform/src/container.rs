//! The process backend: one container = a process tree in its own cgroup
//! (`faasload/platform/<name>`) with the action's memory limit (no swap), OpenWhisk's CPU
//! shares, a pids limit and a private directory. It speaks ActionLoop with the runtime
//! (init, run), collects stdout/stderr into activation log lines up to the sentinels,
//! tells an OOM kill from a crash, and pauses/resumes through the cgroup freezer.
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

use super::backend::logs::{LOG_LINE_MAX, Logs};
use super::runtime::{self, Kind, Runtimes, SENTINEL};
use super::sandbox::{self, ActionUser, SpawnSpec};
use faasload_cgroup::{CgroupReader, Controller, Layout, OwnedCgroup};

/// Errors of container management (the record says "whisk internal error").
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("cgroup of container {name}: {source}")]
    Cgroup {
        name: String,
        #[source]
        source: faasload_cgroup::CgroupError,
    },
    #[error("container {name}: {source}")]
    Sandbox {
        name: String,
        #[source]
        source: sandbox::SandboxError,
    },
    #[error("container {name}: docker: {msg}")]
    Docker { name: String, msg: String },
    #[error("container {name}: {what}: {source}")]
    Io {
        name: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// What the backend needs to create containers.
pub struct ProcessBackend {
    pub layout: Layout,
    pub runtimes: Runtimes,
    pub user: ActionUser,
    pub containers_root: PathBuf,
    pub namespaces: bool,
    pub user_memory_mb: u64,
    pub pids_max: u64,
    pub base_env: Vec<(String, String)>,
    /// Directories that stay writable inside the sandbox (the object store).
    pub writable: Vec<PathBuf>,
    /// Largest answer line kept (bytes); longer answers are consumed and reported.
    pub result_max: usize,
}

/// How an init or run ended when it did not answer normally.
#[derive(Debug)]
pub enum Failure {
    /// No answer within the time limit (the container must be destroyed).
    Timeout,
    /// The process died; `oom` when the memory cgroup killed it.
    Died { oom: bool },
    /// The answer was not one JSON line.
    BadOutput(String),
    /// The answer line was longer than allowed (its length in bytes).
    TooLarge(usize),
}

/// The live process of a container.
struct Io {
    child: Option<tokio::process::Child>,
    stdin: Option<pipe::Sender>,
    results: Option<BufReader<pipe::Receiver>>,
    taps: Option<(pipe::Sender, pipe::Sender)>,
    line: Vec<u8>,
}

/// One container of the process backend.
pub(crate) struct ProcessContainer {
    pub name: String,
    pub kind: Kind,
    cgroup: Arc<Mutex<Option<OwnedCgroup>>>,
    reader: CgroupReader,
    dir: PathBuf,
    io: tokio::sync::Mutex<Io>,
    logs: Arc<Logs>,
    frozen: AtomicBool,
    result_max: usize,
}

impl ProcessContainer {
    /// Creates the cgroup and directory, and for kinds with a launcher starts it (a stem
    /// cell until [`Container::init`]).
    pub(crate) async fn create(
        backend: Arc<ProcessBackend>,
        name: String,
        kind: Kind,
        memory_mb: u64,
    ) -> Result<Arc<ProcessContainer>, ContainerError> {
        let b = backend.clone();
        let n = name.clone();
        let (cgroup, dir) = tokio::task::spawn_blocking(move || prepare(&b, &n, memory_mb))
            .await
            .map_err(|e| ContainerError::Io {
                name: name.clone(),
                what: "create",
                source: std::io::Error::other(e),
            })??;
        let reader = CgroupReader::open(&backend.layout, cgroup.rel());
        let c = Arc::new(ProcessContainer {
            name,
            kind,
            cgroup: Arc::new(Mutex::new(Some(cgroup))),
            reader,
            dir,
            io: tokio::sync::Mutex::new(Io {
                child: None,
                stdin: None,
                results: None,
                taps: None,
                line: Vec::with_capacity(4096),
            }),
            logs: Arc::new(Logs::default()),
            frozen: AtomicBool::new(false),
            result_max: backend.result_max,
        });
        if let Some((prog, args)) = backend.runtimes.launcher(kind) {
            let mut io = c.io.lock().await;
            if let Err(e) = c.start(&backend, &mut io, &prog, &args, &[]) {
                drop(io);
                c.destroy().await;
                return Err(e);
            }
        }
        Ok(c)
    }

    fn start(
        &self,
        backend: &ProcessBackend,
        io: &mut Io,
        program: &std::path::Path,
        args: &[String],
        extra_env: &[(String, String)],
    ) -> Result<(), ContainerError> {
        let procs: Vec<PathBuf> = {
            let g = self.cgroup.lock().unwrap_or_else(|e| e.into_inner());
            g.as_ref()
                .map(|c| c.dirs().map(|d| d.join("cgroup.procs")).collect())
                .unwrap_or_default()
        };
        let mut env = backend.base_env.clone();
        env.push(("HOME".into(), self.dir.display().to_string()));
        env.push(("TMPDIR".into(), self.dir.display().to_string()));
        env.extend(extra_env.iter().cloned());
        let s = sandbox::spawn(&SpawnSpec {
            program,
            args,
            env: &env,
            dir: &self.dir,
            containers_root: &backend.containers_root,
            cgroup_procs: procs,
            user: backend.user,
            namespaces: backend.namespaces,
            writable: &backend.writable,
        })
        .map_err(|source| ContainerError::Sandbox {
            name: self.name.clone(),
            source,
        })?;
        tokio::spawn(read_logs(s.stdout, 0, self.logs.clone()));
        tokio::spawn(read_logs(s.stderr, 1, self.logs.clone()));
        io.child = Some(s.child);
        io.stdin = Some(s.stdin);
        io.results = Some(BufReader::new(s.results));
        io.taps = Some((s.stdout_tap, s.stderr_tap));
        Ok(())
    }

    /// Writes the code and initialises the runtime; Ok(()) or the failure and the error
    /// the runtime reported (`{"error": ...}` of a failed init).
    pub(crate) async fn init(
        &self,
        backend: &ProcessBackend,
        exec: &super::entities::Exec,
        env: &serde_json::Map<String, serde_json::Value>,
        timeout: Duration,
        log_limit: usize,
    ) -> Result<(), InitFailure> {
        self.logs.reset(log_limit);
        let file = runtime::code_file(self.kind, exec.binary);
        let code = exec.code.as_deref().unwrap_or("");
        let bytes = if exec.binary {
            decode_base64(code)
                .ok_or_else(|| InitFailure::Internal("code is not valid base64".into()))?
        } else {
            code.as_bytes().to_vec()
        };
        let zipped = self.kind == Kind::Native && bytes.starts_with(b"PK\x03\x04");
        let file = if zipped { "action.zip" } else { file };
        self.write_code(file, &bytes)
            .map_err(|e| InitFailure::Internal(e.to_string()))?;
        let mut io = self.io.lock().await;
        if self.kind == Kind::Native {
            if zipped {
                self.unzip(backend, &mut io, timeout).await?;
            }
            let prog = self.dir.join("exec");
            let extra = [("__OW_WAIT_FOR_ACK".to_string(), "true".to_string())];
            self.start(backend, &mut io, &prog, &[], &extra)
                .map_err(|e| InitFailure::Internal(e.to_string()))?;
        } else {
            let line = runtime::init_line(exec.main.as_deref(), exec.binary, file, env);
            if self.send(&mut io, &line).await.is_err() {
                return Err(InitFailure::Failed(self.died(&mut io).await));
            }
        }
        match self.answer(&mut io, timeout).await {
            Ok(text) => {
                let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
                if v.get("ok") == Some(&serde_json::Value::Bool(true)) {
                    Ok(())
                } else if let Some(e) = v.get("error") {
                    Err(InitFailure::Error(e.clone()))
                } else {
                    Err(InitFailure::Failed(Failure::BadOutput(text)))
                }
            }
            Err(f) => Err(InitFailure::Failed(f)),
        }
    }

    fn write_code(&self, file: &str, bytes: &[u8]) -> std::io::Result<()> {
        let p = self.dir.join(file);
        std::fs::write(&p, bytes)?;
        let mode = if self.kind == Kind::Native && file == "exec" {
            0o500
        } else {
            0o400
        };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::chown(&p, Some(self.owner().0), Some(self.owner().1))
    }

    /// Unpacks `action.zip` of a native action inside the sandbox (never as root), then
    /// makes its regular files executable; the zip must hold `exec`.
    async fn unzip(
        &self,
        backend: &ProcessBackend,
        io: &mut Io,
        timeout: Duration,
    ) -> Result<(), InitFailure> {
        let args: Vec<String> = ["-I", "-m", "zipfile", "-e", "action.zip", "."]
            .iter()
            .map(|s| s.to_string())
            .collect();
        self.start(backend, io, backend.runtimes.python(), &args, &[])
            .map_err(|e| InitFailure::Internal(e.to_string()))?;
        let status = match io.child.as_mut() {
            Some(c) => tokio::time::timeout(timeout, c.wait()).await,
            None => return Err(InitFailure::Internal("unzip did not start".into())),
        };
        match status {
            Ok(Ok(st)) if st.success() => {}
            Ok(_) => {
                return Err(InitFailure::Error(serde_json::Value::String(
                    "Cannot initialize the action: the zip file could not be extracted".into(),
                )));
            }
            Err(_) => return Err(InitFailure::Failed(Failure::Timeout)),
        }
        let exec = self.dir.join("exec");
        match std::fs::symlink_metadata(&exec) {
            Ok(m) if m.is_file() => {}
            _ => {
                return Err(InitFailure::Error(serde_json::Value::String(
                    "Cannot initialize the action: the zip file has no executable 'exec'".into(),
                )));
            }
        }
        make_executable(&self.dir).map_err(|e| InitFailure::Internal(e.to_string()))
    }

    fn owner(&self) -> (u32, u32) {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.dir)
            .map(|m| (m.uid(), m.gid()))
            .unwrap_or((65534, 65534))
    }

    async fn send(&self, io: &mut Io, line: &[u8]) -> std::io::Result<()> {
        match io.stdin.as_mut() {
            Some(s) => s.write_all(line).await,
            None => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        }
    }

    /// Reads one answer line on fd 3 within `timeout`.
    async fn answer(&self, io: &mut Io, timeout: Duration) -> Result<String, Failure> {
        let mut line = std::mem::take(&mut io.line);
        line.clear();
        let max = self.result_max;
        let r = match io.results.as_mut() {
            Some(rd) => tokio::time::timeout(timeout, read_line_bounded(rd, &mut line, max)).await,
            None => Ok(Ok((0, false))),
        };
        let out = match r {
            Err(_) => Err(Failure::Timeout),
            Ok(Ok((n, true))) if n > max => Err(Failure::TooLarge(n - 1)),
            Ok(Ok((n, true))) if n > 0 => Ok(String::from_utf8_lossy(&line).into_owned()),
            Ok(_) => Err(self.died(io).await),
        };
        io.line = line;
        out
    }

    /// After the result pipe closed: waits for the process and tells OOM from a crash.
    async fn died(&self, io: &mut Io) -> Failure {
        if let Some(c) = io.child.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.wait()).await;
        }
        io.stdin = None;
        let oom = self.reader.read().oom_kills.unwrap_or(0) > 0;
        Failure::Died { oom }
    }

    /// Runs one activation: sends `line`, waits for the result, collects the logs.
    pub(crate) async fn run(&self, line: &[u8], timeout: Duration, log_limit: usize) -> RunOutput {
        let mut io = self.io.lock().await;
        let target = self.logs.begin(Some(log_limit));
        let result = match self.send(&mut io, line).await {
            Ok(()) => self.answer(&mut io, timeout).await,
            Err(_) => Err(self.died(&mut io).await),
        };
        let ok = result.is_ok();
        if ok {
            write_sentinels(&mut io).await;
        }
        let wait = if ok {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(50)
        };
        let logs = self.logs.take(target, wait).await;
        RunOutput { result, logs }
    }

    /// The log lines written since the last activation (after a failed init).
    pub(crate) async fn collect_logs(&self) -> Vec<String> {
        let mut io = self.io.lock().await;
        let target = self.logs.begin(None);
        write_sentinels(&mut io).await;
        drop(io);
        self.logs.take(target, Duration::from_millis(500)).await
    }

    /// Freezes the container if lease `lease` is still the current one (`current`,
    /// checked while no run holds the container).
    pub(crate) async fn pause(&self, current: &AtomicU64, lease: u64) -> bool {
        let _io = self.io.lock().await;
        if current.load(Ordering::SeqCst) != lease || self.frozen.load(Ordering::SeqCst) {
            return false;
        }
        let ok = self.with_cgroup(|c| c.set_frozen(true)).await;
        if ok {
            self.frozen.store(true, Ordering::SeqCst);
        }
        ok
    }

    /// Thaws the container if it is frozen; true if it was.
    pub(crate) async fn resume(&self) -> bool {
        let _io = self.io.lock().await;
        if !self.frozen.load(Ordering::SeqCst) {
            return false;
        }
        self.with_cgroup(|c| c.set_frozen(false)).await;
        self.frozen.store(false, Ordering::SeqCst);
        true
    }

    /// Runs a (blocking) cgroup operation off the async workers.
    async fn with_cgroup(
        &self,
        f: impl FnOnce(&OwnedCgroup) -> faasload_cgroup::Result<()> + Send + 'static,
    ) -> bool {
        let cg = self.cgroup.clone();
        let r = tokio::task::spawn_blocking(move || {
            let g = cg.lock().unwrap_or_else(|e| e.into_inner());
            g.as_ref().map(f)
        })
        .await;
        match r {
            Ok(Some(Ok(()))) => true,
            Ok(Some(Err(e))) => {
                tracing::warn!("container {}: {e}", self.name);
                false
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!("container {}: {e}", self.name);
                false
            }
        }
    }

    /// Kills every process, removes the cgroup and the directory.
    pub(crate) async fn destroy(&self) {
        let cg = self.cgroup.lock().unwrap_or_else(|e| e.into_inner()).take();
        let dir = self.dir.clone();
        let name = self.name.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(cg) = cg
                && let Err(e) = cg.remove()
            {
                tracing::warn!("container {name}: {e}");
            }
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("container {name}: remove {}: {e}", dir.display());
            }
        })
        .await;
        let mut io = self.io.lock().await;
        io.stdin = None;
        io.results = None;
        io.taps = None;
        if let Some(mut c) = io.child.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), c.wait()).await;
        }
    }
}

/// A failed init.
#[derive(Debug)]
pub enum InitFailure {
    /// The runtime answered `{"error": ...}`.
    Error(serde_json::Value),
    /// No (valid) answer.
    Failed(Failure),
    /// The platform could not prepare it.
    Internal(String),
}

/// The result line (or failure) and the log lines of one run.
pub struct RunOutput {
    pub result: Result<String, Failure>,
    pub logs: Vec<String>,
}

fn prepare(
    b: &ProcessBackend,
    name: &str,
    memory_mb: u64,
) -> Result<(OwnedCgroup, PathBuf), ContainerError> {
    let cgerr = |source| ContainerError::Cgroup {
        name: name.to_string(),
        source,
    };
    let cg = OwnedCgroup::create(&b.layout, format!("platform/{name}")).map_err(cgerr)?;
    cg.set_memory_limit(memory_mb * 1024 * 1024)
        .map_err(cgerr)?;
    cg.set_cpu_shares(cpu_shares(b.user_memory_mb, memory_mb))
        .map_err(cgerr)?;
    cg.set_pids_max(b.pids_max).map_err(cgerr)?;
    if cg.dir(Controller::Memory).is_none() {
        tracing::warn!("container {name}: no memory controller, memory limit not enforced");
    }
    let dir = b.containers_root.join(name);
    let ioerr = |what| {
        move |source| ContainerError::Io {
            name: name.to_string(),
            what,
            source,
        }
    };
    std::fs::create_dir_all(&dir).map_err(ioerr("create directory"))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(ioerr("chmod"))?;
    std::os::unix::fs::chown(&dir, Some(b.user.uid), Some(b.user.gid)).map_err(ioerr("chown"))?;
    Ok((cg, dir))
}

/// `chmod u+x` on every regular file below `dir` (symbolic links are not followed).
fn make_executable(dir: &std::path::Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            make_executable(&e.path())?;
        } else if t.is_file() {
            let m = e.metadata()?.permissions().mode();
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(m | 0o500))?;
        }
    }
    Ok(())
}

/// OpenWhisk's CPU shares: max(1024 / (userMemory / M), 2), integer division.
pub(crate) fn cpu_shares(user_memory_mb: u64, memory_mb: u64) -> u64 {
    let ratio = (user_memory_mb / memory_mb.max(1)).max(1);
    (1024 / ratio).max(2)
}

async fn read_logs(rx: pipe::Receiver, idx: usize, logs: Arc<Logs>) {
    let mut rd = BufReader::new(rx);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        match read_line_bounded(&mut rd, &mut buf, LOG_LINE_MAX).await {
            Ok((0, _)) | Err(_) => break,
            Ok(_) => {}
        }
        logs.push(idx, &buf);
    }
    logs.closed();
}

/// Writes the sentinel into the action's stdout and stderr after what it wrote so far.
async fn write_sentinels(io: &mut Io) {
    if let Some((o, e)) = io.taps.as_mut() {
        let s = format!("{SENTINEL}\n");
        let _ = o.write_all(s.as_bytes()).await;
        let _ = e.write_all(s.as_bytes()).await;
    }
}

/// Reads one line, keeping at most `max` bytes of it in `buf` and consuming the rest.
/// Returns the line's full length (newline included; 0 at end of input) and whether a
/// newline ended it.
async fn read_line_bounded<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(usize, bool)> {
    let mut total = 0;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok((total, false));
        }
        let (n, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..n.min(room)]);
        total += n;
        r.consume(n);
        if done {
            return Ok((total, true));
        }
    }
}

/// Decodes standard base64 (padding and whitespace tolerated).
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut n = 0;
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\n' | b'\r' | b' ' => continue,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((acc >> n) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_openwhisk() {
        assert_eq!(cpu_shares(2048, 256), 128);
        assert_eq!(cpu_shares(2048, 512), 256);
        assert_eq!(cpu_shares(2048, 128), 64);
        assert_eq!(cpu_shares(2048, 4096), 1024);
        assert_eq!(cpu_shares(1_000_000, 128), 2);
    }

    #[tokio::test]
    async fn bounded_lines() {
        let data: &[u8] = b"short\nthis line is long\nlast";
        let mut r = tokio::io::BufReader::with_capacity(4, data);
        let mut b = Vec::new();
        assert_eq!(
            read_line_bounded(&mut r, &mut b, 100).await.unwrap(),
            (6, true)
        );
        assert_eq!(b, b"short\n");
        b.clear();
        assert_eq!(
            read_line_bounded(&mut r, &mut b, 4).await.unwrap(),
            (18, true)
        );
        assert_eq!(b, b"this");
        b.clear();
        assert_eq!(
            read_line_bounded(&mut r, &mut b, 100).await.unwrap(),
            (4, false)
        );
        b.clear();
        assert_eq!(
            read_line_bounded(&mut r, &mut b, 100).await.unwrap(),
            (0, false)
        );
    }

    #[test]
    fn base64() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGk\n").unwrap(), b"hi");
        assert!(decode_base64("a*b").is_none());
    }
}
