//! Runs `faasload monitor` with a test configuration (sockets in a temp dir, patterns for
//! the test's cgroups), and talks to its sockets in the protocol's types
//! (`faasload_protocol::monitor`); [`raw_exchange`] is for tests of the wire bytes.
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faasload_protocol::monitor::{
    Ack, ActivationQuery, ActivationSummary, ContainerInfo, ContainerList, ErrorAnswer, Hello,
    Notification, Query, ReplyError, Stats, decode,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A monitor daemon started by the test.
pub struct Monitor {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub notify: PathBuf,
    pub query: PathBuf,
}

impl Monitor {
    /// Starts a monitor with extra YAML config lines; waits until it answers `hello`.
    pub fn start(extra_yaml: &str) -> Monitor {
        let dir = tempfile::tempdir().unwrap();
        let notify = dir.path().join("notify.sock");
        let query = dir.path().join("query.sock");
        let cfg = dir.path().join("monitor.yml");
        std::fs::write(
            &cfg,
            format!(
                "notify_socket: {}\nquery_socket: {}\n{extra_yaml}\n",
                notify.display(),
                query.display()
            ),
        )
        .unwrap();
        let child = Command::new(crate::bin())
            .args(["monitor", "--config"])
            .arg(&cfg)
            .env("FAASLOAD_LOG", "info")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn monitor");
        let mut m = Monitor {
            child: Some(child),
            dir,
            notify,
            query,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = m.try_ask::<Hello>(&Query::Hello) {
                r.unwrap_or_else(|e| panic!("hello: {e}"));
                break;
            }
            if let Some(Ok(Some(st))) = m.child.as_mut().map(|c| c.try_wait()) {
                panic!("monitor exited early: {st}");
            }
            assert!(Instant::now() < deadline, "monitor did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    /// One request on the query socket, its one-line answer read as `T` (or the
    /// monitor's error answer, or why the line is not a `T`).
    pub fn try_ask<T: DeserializeOwned>(
        &self,
        req: &impl Serialize,
    ) -> std::io::Result<Result<T, ReplyError>> {
        exchange(&self.query, req).map(|line| decode(&line))
    }

    /// Like [`Monitor::try_ask`], panicking unless the answer is a `T`.
    pub fn ask<T: DeserializeOwned>(&self, req: &impl Serialize) -> T {
        let text = serde_json::to_string(req).unwrap();
        self.try_ask(req)
            .unwrap_or_else(|e| panic!("request {text}: {e}"))
            .unwrap_or_else(|e| panic!("request {text}: {e}"))
    }

    /// A request the monitor must answer with an error: that error.
    pub fn ask_err(&self, req: &impl Serialize) -> ErrorAnswer {
        let text = serde_json::to_string(req).unwrap();
        match self.try_ask::<serde_json::Value>(req) {
            Ok(Err(ReplyError::Monitor(e))) => e,
            other => panic!("request {text}: expected an error answer, got {other:?}"),
        }
    }

    /// The summary of activation `id`, waiting up to `wait_ms` for its end.
    pub fn activation(&self, id: &str, wait_ms: Option<u64>) -> ActivationSummary {
        self.ask(&Query::Activation(ActivationQuery {
            activation_id: id.to_string(),
            wait_ms,
        }))
    }

    pub fn hello(&self) -> Hello {
        self.ask(&Query::Hello)
    }

    pub fn stats(&self) -> Stats {
        self.ask(&Query::Stats)
    }

    /// The container table.
    pub fn containers(&self) -> Vec<ContainerInfo> {
        self.ask::<ContainerList>(&Query::Containers).containers
    }

    /// A notification with `ack`, waiting for `{"ok":true}` (panics on an error answer).
    pub fn notify(&self, msg: Notification) -> Ack {
        let msg = msg.with_ack();
        let line = exchange(&self.notify, &msg).expect("notify socket");
        decode(&line).unwrap_or_else(|e| panic!("{}: {e}", serde_json::to_string(&msg).unwrap()))
    }

    /// Waits until container `id` is known, returns its entry.
    pub fn wait_container(&self, id: &str) -> ContainerInfo {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.containers();
            if let Some(c) = all.iter().find(|c| c.id == id) {
                return c.clone();
            }
            assert!(
                Instant::now() < deadline,
                "container {id} never discovered: {all:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the monitor with SIGTERM and checks it exits cleanly, removing its sockets
    /// and unloading its programs.
    pub fn stop(mut self) {
        let ids = self.stats().program_ids;
        let mut child = self.child.take().unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let st = wait_timeout(&mut child, Duration::from_secs(20))
            .expect("monitor did not stop on SIGTERM");
        assert!(st.success(), "monitor exit status {st}");
        assert!(!self.notify.exists(), "notify socket left behind");
        assert!(!self.query.exists(), "query socket left behind");
        // The kernel frees programs asynchronously once their last fd is closed.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let loaded: Vec<u32> = aya::programs::loaded_programs()
                .flatten()
                .map(|p| p.id())
                .collect();
            let left: Vec<u32> = ids
                .iter()
                .copied()
                .filter(|id| loaded.contains(id))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "BPF programs {left:?} still loaded 10 s after shutdown"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_timeout(c: &mut Child, t: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + t;
    loop {
        if let Ok(Some(st)) = c.try_wait() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One request as a line on a fresh connection to `path`, one line back.
fn exchange(path: &Path, req: &impl Serialize) -> std::io::Result<String> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    Ok(answer)
}

/// Sends raw bytes on a socket, half-closes if asked, and reads everything until EOF.
pub fn raw_exchange(path: &Path, bytes: &[u8], shutdown: bool) -> std::io::Result<Vec<u8>> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(bytes)?;
    if shutdown {
        s.shutdown(std::net::Shutdown::Write)?;
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}
