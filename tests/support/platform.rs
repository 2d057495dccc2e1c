//! Support for the platform's end-to-end tests: starts the embedded platform in-process
//! (its own tokio runtime, a private work directory, a unique invoker name so parallel
//! tests never touch each other's containers), a small blocking HTTP/1.1 client with
//! OpenWhisk's guest credentials, and helpers to deploy the sample actions of
//! `functions/` and to look at container cgroups.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faasload_platform::PlatformHandle;
use faasload_platform::config::{BackendKind, GUEST_AUTH, PlatformConfig};
use serde_json::Value;

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON (panics with the body text when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn b64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Base64 of `data` (for native actions' code).
pub fn base64(data: &[u8]) -> String {
    b64(data)
}

/// One HTTP/1.1 request (`Connection: close`); `auth` is `uuid:key`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect to the platform");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: Basic {}\r\n", b64(a.as_bytes())));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 2 + n + 2..];
    }
    out
}

/// Fails (never skips) unless the test runs as root: the platform needs cgroups,
/// namespaces and the action user.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the platform tests need root (cgroups, namespaces, the action user); run them with sudo"
    );
}

/// An invoker name unique to this process and call (letters, digits, `_`).
fn unique_invoker() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "wskt{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Annotation `key` of an activation record.
pub fn ann<'a>(rec: &'a Value, key: &str) -> Option<&'a Value> {
    rec["annotations"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

/// Configures the Docker backend on the test dockerd (`FAASLOAD_TEST_DOCKER_HOST`, checked
/// to answer): pass to [`TestPlatform::start`] or call first in its closure.
pub fn docker_backend(c: &mut PlatformConfig) {
    crate::docker::socket();
    c.backend = BackendKind::Docker;
    c.docker.host = crate::docker::host();
}

/// A platform running in this test process.
pub struct TestPlatform {
    pub addr: SocketAddr,
    pub invoker: String,
    pub work: PathBuf,
    rt: tokio::runtime::Runtime,
    handle: Option<PlatformHandle>,
    _tmp: tempfile::TempDir,
}

/// The repository's `functions/` directory.
pub fn functions() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../functions")
}

impl TestPlatform {
    /// Starts a platform with test defaults (ephemeral port, no prewarm, no monitor),
    /// adjusted by `f`.
    pub fn start(f: impl FnOnce(&mut PlatformConfig)) -> TestPlatform {
        require_root();
        let tmp = tempfile::Builder::new()
            .prefix("faasload-platform-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let invoker = unique_invoker();
        let mut cfg = PlatformConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            work_dir: tmp.path().join("work"),
            notify_socket: None,
            ..PlatformConfig::default()
        };
        cfg.pool.invoker_name = invoker.clone();
        cfg.pool.prewarm.clear();
        f(&mut cfg);
        let work = cfg.work_dir.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt
            .block_on(faasload_platform::start(cfg))
            .expect("start the platform");
        TestPlatform {
            addr: handle.addr(),
            invoker,
            work,
            rt,
            handle: Some(handle),
            _tmp: tmp,
        }
    }

    /// A request with the guest key and a JSON body.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let b = body
            .map(|v| serde_json::to_vec(v).unwrap())
            .unwrap_or_default();
        http(self.addr, method, path, Some(GUEST_AUTH), &[], &b)
    }

    /// Creates (or replaces) action `name` with the code of `functions/<file>`.
    pub fn deploy(&self, name: &str, kind: &str, file: &str, extra: Value) -> Value {
        let code = std::fs::read(functions().join(file)).unwrap();
        let code = if kind == "native" {
            b64(&code)
        } else {
            String::from_utf8(code).unwrap()
        };
        let mut body = serde_json::json!({"exec": {"kind": kind, "code": code}});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let r = self.call(
            "PUT",
            &format!("/api/v1/namespaces/_/actions/{name}?overwrite=true"),
            Some(&body),
        );
        assert_eq!(
            r.status,
            200,
            "deploy {name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// A blocking invoke.
    pub fn invoke(&self, name: &str, params: Value) -> Resp {
        self.call(
            "POST",
            &format!("/api/v1/namespaces/_/actions/{name}?blocking=true"),
            Some(&params),
        )
    }

    /// Polls the record of `id` until it is stored.
    pub fn wait_record(&self, id: &str, within: Duration) -> Value {
        let end = Instant::now() + within;
        loop {
            let r = self.call(
                "GET",
                &format!("/api/v1/namespaces/_/activations/{id}"),
                None,
            );
            if r.status == 200 {
                return r.json();
            }
            assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
            assert!(Instant::now() < end, "activation {id} never stored");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Containers in the pool: (name, busy, paused, prewarm).
    pub fn containers(&self) -> Vec<(String, bool, bool, bool)> {
        self.handle.as_ref().unwrap().platform().pool.snapshot()
    }

    /// Waits until `f(containers)` holds.
    pub fn wait_pool(
        &self,
        what: &str,
        within: Duration,
        f: impl Fn(&[(String, bool, bool, bool)]) -> bool,
    ) {
        let end = Instant::now() + within;
        while !f(&self.containers()) {
            assert!(
                Instant::now() < end,
                "pool never reached: {what}; now {:?}",
                self.containers()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The cgroup directory of container `name` for v1 controller `ctrl` (or the v2 dir).
    pub fn cgroup_dir(&self, ctrl: &str, name: &str) -> PathBuf {
        let layout = faasload_cgroup::Layout::detect().unwrap();
        let rel = Path::new("faasload/platform").join(name);
        match layout.version() {
            faasload_cgroup::Version::V1 => PathBuf::from("/sys/fs/cgroup").join(ctrl).join(rel),
            faasload_cgroup::Version::V2 => layout.v2().unwrap().join(rel),
        }
    }

    /// Every cgroup of this platform's containers that still exists.
    pub fn leftover_cgroups(&self) -> Vec<String> {
        let dir = self.cgroup_dir("cpu", "");
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&format!("{}_", self.invoker)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stops the platform (every container removed).
    pub fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(h.shutdown()).expect("shutdown");
        }
    }
}

impl Drop for TestPlatform {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = self.rt.block_on(h.shutdown());
        }
    }
}

/// The `faasload` binary: `$FAASLOAD_BIN`, else `target/debug/faasload` (build it first
/// with `cargo build -p faasload`).
pub fn faasload_bin() -> PathBuf {
    if let Ok(p) = std::env::var("FAASLOAD_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/faasload");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p faasload` first",
        p.display()
    );
    p
}

/// The address a `faasload platform` child prints on its first output line
/// (`... listening on http://ADDR`), read from its stdout.
pub fn listening_addr(out: &mut impl std::io::BufRead) -> SocketAddr {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    line.trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}
