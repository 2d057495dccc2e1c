//! Runs `faasload monitor` with a test configuration (sockets in a temp dir, patterns for
//! the test's cgroups), and talks to its sockets.
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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
            if let Ok(v) = m.try_request(&json!({"type": "hello"})) {
                assert_eq!(v["type"], "hello");
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

    /// One typed request on the query socket, one JSON line back.
    pub fn try_request(&self, req: &Value) -> std::io::Result<Value> {
        let mut s = UnixStream::connect(&self.query)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        writeln!(s, "{req}")?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        serde_json::from_str(&line).map_err(|e| std::io::Error::other(format!("{line:?}: {e}")))
    }

    /// Like [`Monitor::try_request`], panicking on failure.
    pub fn request(&self, req: Value) -> Value {
        self.try_request(&req)
            .unwrap_or_else(|e| panic!("request {req}: {e}"))
    }

    /// A notification with `ack`, waiting for `{"ok":true}`.
    pub fn notify(&self, mut msg: Value) -> Value {
        msg["ack"] = json!(true);
        let mut s = UnixStream::connect(&self.notify).expect("notify socket");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        writeln!(s, "{msg}").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// Waits until container `id` is known, returns its view.
    pub fn wait_container(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.request(json!({"type": "containers"}));
            if let Some(c) = v["containers"]
                .as_array()
                .and_then(|l| l.iter().find(|c| c["id"] == id))
            {
                return c.clone();
            }
            assert!(
                Instant::now() < deadline,
                "container {id} never discovered: {v}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the monitor with SIGTERM and checks it exits cleanly, removing its sockets
    /// and unloading its programs.
    pub fn stop(mut self) {
        let ids: Vec<u64> = self.request(json!({"type": "stats"}))["program_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
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
            let left: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| loaded.contains(&(*id as u32)))
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
