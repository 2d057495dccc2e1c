//! End-to-end tests of the HTML report: SQLite stores filled with known rows
//! (`support/store_rows.rs`), `faasload report STORE --html FILE` run by the real binary,
//! and `faasload load` writing the report beside its store at the end of the run; each
//! page is then opened in a real headless Chromium (Debian's), driven over the DevTools
//! protocol on a pipe (`--remote-debugging-pipe`), which checks that every expected plot
//! rendered (an `<svg>` per figure with a non-zero box, drawn lines, text, and coloured
//! pixels in a screenshot of it), that figures without data show their note instead,
//! that the page loaded nothing but itself, and that the console shows no error.
//!
//! Chromium comes from `cargo xtask test` (`xtask/src/browser.rs` installs Debian's
//! `chromium` and sets `FAASLOAD_TEST_CHROMIUM`); without it the tests fail with the
//! reason (they never skip).
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use faasload_results::store::{FunctionMeta, LoadMeta, LoadStatus, MonitorReading, Store};
use faasload_tests::loader::{load, rt, text};
use faasload_tests::openwhisk_fake::{FakeServer, Reply};
use faasload_tests::store_rows::{FUNCTIONS, START_MS, cold, synth};
use serde_json::{Value, json};

/// Every figure of a report, in page order.
const FIGURES: [&str; 7] = [
    "latency-cdf",
    "latency-time",
    "lag-time",
    "rate-time",
    "cpu-cdf",
    "memory-cdf",
    "cold-starts",
];

/// How long one page may take to load and be checked.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium to drive: `$FAASLOAD_TEST_CHROMIUM`, else Debian's `/usr/bin/chromium`.
fn chromium() -> PathBuf {
    let p = std::env::var_os("FAASLOAD_TEST_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        p.is_file(),
        "no Chromium at {} (CI={}): the HTML report test needs Debian's chromium; run \
         `cargo xtask test` (it installs it and sets FAASLOAD_TEST_CHROMIUM) or \
         `apt-get install chromium`",
        p.display(),
        std::env::var("CI").unwrap_or_default()
    );
    p
}

/// A headless Chromium driven over the DevTools protocol on a pipe: requests go to its
/// fd 3, answers and events come from its fd 4, each a JSON message ended by a NUL.
struct Browser {
    child: Child,
    to: std::io::PipeWriter,
    from: mpsc::Receiver<Value>,
    next_id: u64,
    /// Events received, in order.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let exe = chromium();
        let profile = tempfile::tempdir().unwrap();
        let (chrome_reads, to) = std::io::pipe().unwrap();
        let (mut from, chrome_writes) = std::io::pipe().unwrap();
        let (r, w) = (chrome_reads.as_raw_fd(), chrome_writes.as_raw_fd());
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--window-size=1200,900",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: between fork and exec the closure calls only fcntl and dup2, which are
        // async-signal-safe, on descriptors that are open in the parent.
        unsafe {
            cmd.pre_exec(move || {
                // Copies above 10 first (close-on-exec), so that dup2 onto 3 and 4 can
                // never clobber the other pipe's end, then onto 3 and 4 (inherited).
                let a = libc::fcntl(r, libc::F_DUPFD_CLOEXEC, 10);
                let b = libc::fcntl(w, libc::F_DUPFD_CLOEXEC, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", exe.display()));
        drop((chrome_reads, chrome_writes));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1 << 16];
            loop {
                let n = match from.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|&c| c == 0) {
                    let msg: Vec<u8> = buf.drain(..=end).collect();
                    match serde_json::from_slice::<Value>(&msg[..msg.len() - 1]) {
                        Ok(v) => {
                            if tx.send(v).is_err() {
                                return;
                            }
                        }
                        Err(e) => panic!("DevTools sent bad JSON: {e}"),
                    }
                }
            }
        });
        Browser {
            child,
            to,
            from: rx,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        }
    }

    /// Sends `method` (to the page `session` if given) and waits for its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("sending {method} to Chromium: {e}"));
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let v = self.recv(deadline, method);
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    fn recv(&mut self, deadline: Instant, what: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.from.recv_timeout(left) {
            Ok(v) => v,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("Chromium did not answer {what} within {PAGE_TIMEOUT:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let st = self.child.try_wait();
                panic!("Chromium closed its DevTools pipe during {what} (process: {st:?})")
            }
        }
    }

    /// Waits for the event `method` of `session`.
    fn wait_event(&mut self, session: &str, method: &str) {
        if self
            .events
            .iter()
            .any(|e| e["method"] == json!(method) && e["sessionId"] == json!(session))
        {
            return;
        }
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let v = self.recv(deadline, method);
            let hit = v["method"] == json!(method) && v["sessionId"] == json!(session);
            self.events.push(v);
            if hit {
                return;
            }
        }
    }

    /// A new tab, attached, with the console, log, page and network domains on.
    fn new_page(&mut self) -> String {
        let t = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target = t["targetId"].as_str().unwrap().to_string();
        let a = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        let s = a["sessionId"].as_str().unwrap().to_string();
        for m in [
            "Runtime.enable",
            "Log.enable",
            "Page.enable",
            "Network.enable",
        ] {
            self.call(Some(&s), m, json!({}));
        }
        s
    }

    /// Evaluates `js` in the page and returns its value.
    fn eval(&mut self, s: &str, js: &str) -> Value {
        let r = self.call(
            Some(s),
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "evaluating: {r}");
        r["result"]["value"].clone()
    }

    /// Console errors, uncaught exceptions and error log entries of `session`.
    fn errors(&self, session: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["sessionId"] == json!(session))
            .filter_map(|e| match e["method"].as_str()? {
                "Runtime.consoleAPICalled"
                    if matches!(e["params"]["type"].as_str(), Some("error" | "assert")) =>
                {
                    Some(format!("console: {}", e["params"]["args"]))
                }
                "Runtime.exceptionThrown" => {
                    Some(format!("exception: {}", e["params"]["exceptionDetails"]))
                }
                "Log.entryAdded" if e["params"]["entry"]["level"] == json!("error") => {
                    Some(format!("log: {}", e["params"]["entry"]))
                }
                _ => None,
            })
            .collect()
    }

    /// URLs the page of `session` requested.
    fn requests(&self, session: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| {
                e["sessionId"] == json!(session)
                    && e["method"] == json!("Network.requestWillBeSent")
            })
            .map(|e| {
                e["params"]["request"]["url"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let mut closed = false;
        self.next_id += 1;
        let msg = format!("{{\"id\":{},\"method\":\"Browser.close\"}}\0", self.next_id);
        if self.to.write_all(msg.as_bytes()).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    closed = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if !closed {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Standard base64 (screenshots come as such).
fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        let take = chunk.len() - 1;
        out.extend_from_slice(&n.to_be_bytes()[1..=take]);
    }
    out
}

/// What the page says of each figure (measured by the browser).
const MEASURE: &str = r#"(() => {
  const figs = [...document.querySelectorAll('figure')].map(f => {
    const svg = f.querySelector('svg');
    const out = { id: f.id, svg: !!svg, note: f.querySelector('p.note')?.textContent ?? null };
    if (svg) {
      const r = svg.getBoundingClientRect();
      const drawn = [...svg.querySelectorAll('polyline, path, line, circle, rect')]
        .filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; });
      const parsed = new DOMParser().parseFromString(svg.outerHTML, 'image/svg+xml');
      Object.assign(out, {
        x: r.left + window.scrollX, y: r.top + window.scrollY,
        width: r.width, height: r.height,
        lines: svg.querySelectorAll('polyline').length,
        circles: svg.querySelectorAll('circle').length,
        drawn: drawn.length,
        texts: [...svg.querySelectorAll('text')].map(t => t.textContent.trim()),
        xml_error: parsed.querySelector('parsererror')?.textContent ?? null,
      });
    }
    return out;
  });
  return { title: document.title, figures: figs, svgs: document.querySelectorAll('svg').length,
           tables: document.querySelectorAll('table').length,
           scripts: document.querySelectorAll('script').length };
})()"#;

/// Opens `page` in a new tab and checks it: the figures `charts` drawn, the others
/// notes (whose text contains `notes`' strings), the tables there, nothing loaded from
/// elsewhere, no console error.
fn check_in_browser(b: &mut Browser, page: &Path, charts: &[&str], notes: &[(&str, &str)]) {
    let s = b.new_page();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let nav = b.call(Some(&s), "Page.navigate", json!({"url": url}));
    assert!(nav.get("errorText").is_none(), "navigating to {url}: {nav}");
    b.wait_event(&s, "Page.loadEventFired");
    let m = b.eval(&s, MEASURE);
    let figs = m["figures"].as_array().unwrap();
    let ids: Vec<&str> = figs.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, FIGURES, "{m}");
    assert_eq!(m["svgs"], json!(charts.len()), "{m}");
    assert_eq!(m["scripts"], json!(0));
    assert!(m["tables"].as_u64().unwrap() >= 3, "{m}");
    for f in figs {
        let id = f["id"].as_str().unwrap();
        if !charts.contains(&id) {
            let (_, want) = notes
                .iter()
                .find(|(n, _)| *n == id)
                .unwrap_or_else(|| panic!("{id}: neither a chart nor an expected note: {f}"));
            assert_eq!(f["svg"], json!(false), "{f}");
            let note = f["note"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: no note: {f}"));
            assert!(note.contains(want), "{id}: note {note:?} lacks {want:?}");
            continue;
        }
        assert_eq!(f["svg"], json!(true), "{id}: no SVG: {f}");
        assert!(f["xml_error"].is_null(), "{id}: not well-formed SVG: {f}");
        let (w, h) = (f["width"].as_f64().unwrap(), f["height"].as_f64().unwrap());
        assert!(w >= 400.0 && h >= 200.0, "{id}: box {w}x{h}");
        assert!(
            f["drawn"].as_u64().unwrap() >= 10,
            "{id}: little drawn: {f}"
        );
        if id == "cold-starts" {
            assert!(f["circles"].as_u64().unwrap() >= 2, "{id}: no points: {f}");
        } else {
            assert!(f["lines"].as_u64().unwrap() >= 1, "{id}: no line: {f}");
        }
        let texts: Vec<&str> = f["texts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            texts.len() >= 8,
            "{id}: no axis labels or legend: {texts:?}"
        );
        // Painted: a screenshot of the chart's plotting column (the left three
        // quarters; the legend's colour swatches are in the right quarter) has coloured
        // pixels, where axes and text are black and grey and the series in colour.
        let shot = b.call(
            Some(&s),
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": f["x"], "y": f["y"], "width": w * 0.74, "height": h,
                            "scale": 1}}),
        );
        let png = base64(shot["data"].as_str().unwrap());
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let coloured = img
            .pixels()
            .filter(|p| {
                let [r, g, b] = p.0;
                r.max(g).max(b) - r.min(g).min(b) > 60
            })
            .count();
        let ink = img
            .pixels()
            .filter(|p| p.0.iter().any(|&c| c < 200))
            .count();
        assert!(
            coloured >= 300,
            "{id}: {coloured} coloured pixels in a {}x{} screenshot of the plot",
            img.width(),
            img.height()
        );
        assert!(ink >= 1000, "{id}: {ink} dark pixels: axes or text missing");
    }
    // Nothing but the page itself was requested.
    let requests = b.requests(&s);
    assert!(
        requests.iter().all(|r| *r == url || r.starts_with("data:")),
        "requests beyond the page: {requests:?}"
    );
    let errors = b.errors(&s);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    // The console watch works: an error logged now is seen.
    b.eval(&s, "console.error('faasload-probe'); 1");
    b.call(Some(&s), "Runtime.evaluate", json!({"expression": "1"}));
    let errors = b.errors(&s);
    assert!(
        errors.len() == 1 && errors[0].contains("faasload-probe"),
        "the probe error was not seen: {errors:?}"
    );
}

/// The kind of each function (the store's `functions` table).
fn metas() -> Vec<FunctionMeta> {
    FUNCTIONS
        .iter()
        .map(|f| FunctionMeta {
            name: f.to_string(),
            runtime: Some("python:3".into()),
            input_kind: Some("image".into()),
            ..FunctionMeta::default()
        })
        .collect()
}

/// Writes a load of `n` synthetic rows spread `gap_ms` apart (the monitor's readings
/// kept or dropped); returns its id.
async fn write_load(store: &Store, n: u64, gap_ms: u64, monitor: bool) -> i64 {
    let mut meta = LoadMeta::new("html-test", START_MS);
    meta.functions = metas();
    let load = store.begin_load(&meta).await.unwrap();
    let (tx, writer) = store.writer(load, Duration::from_millis(200));
    for i in 0..n {
        let mut r = synth(i);
        // Spread over time: every instant moves by the same amount.
        let shift = i * gap_ms * 1_000_000 - r.intended_ns;
        r.intended_ns += shift;
        r.sent_ns = r.sent_ns.map(|t| t + shift);
        // Latencies spread like a real platform's: 0 to 30 ms more, cold starts 150 ms.
        let extra = (i * 7919 % 1000) * 30_000 + if cold(i) { 150_000_000 } else { 0 };
        r.answered_ns = r.answered_ns.map(|t| t + shift + extra);
        if !monitor {
            r.monitor = MonitorReading {
                missing: Some("monitor socket absent".into()),
                ..MonitorReading::default()
            };
        }
        tx.send(r).await.unwrap();
    }
    drop(tx);
    assert_eq!(writer.await.unwrap().unwrap().rows, n);
    store.end_load(load, LoadStatus::Completed).await.unwrap();
    load
}

fn report(args: &[&str]) -> Output {
    Command::new(faasload_tests::bin())
        .arg("report")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running faasload report")
}

#[test]
fn report_html_renders_every_plot_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let url = format!("sqlite://{}", db.display());
    let (full, bare) = rt().block_on(async {
        let store = Store::open(&url).await.unwrap();
        let full = write_load(&store, 600, 20, true).await;
        let bare = write_load(&store, 200, 50, false).await;
        store.close().await;
        (full, bare)
    });

    let page = dir.path().join("full.html");
    let o = report(&[
        &url,
        "--load",
        &full.to_string(),
        "--html",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // The text report is the same as without --html.
    let plain = report(&[&url, "--load", &full.to_string()]);
    assert!(plain.status.success(), "{}", text(&plain));
    assert_eq!(o.stdout, plain.stdout);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("{}", page.display())),
        "{}",
        text(&o)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));

    // The last load by default: no monitor readings there.
    let bare_page = dir.path().join("bare.html");
    let o = report(&[&url, "--html", bare_page.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with(&format!("Load {bare} from html-test")),
        "{}",
        text(&o)
    );

    let mut b = Browser::start();
    check_in_browser(&mut b, &page, &FIGURES, &[]);
    check_in_browser(
        &mut b,
        &bare_page,
        &[
            "latency-cdf",
            "latency-time",
            "lag-time",
            "rate-time",
            "cold-starts",
        ],
        &[
            (
                "cpu-cdf",
                "No CPU readings from the monitor in this load: “monitor socket absent”",
            ),
            ("memory-cdf", "No memory readings from the monitor"),
        ],
    );
    drop(b);

    // Errors: an unwritable place, an unknown load; nothing is left behind.
    let o = report(&[&url, "--html", "/nonexistent-dir/x.html"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/nonexistent-dir"),
        "{}",
        text(&o)
    );
    let o = report(&[&url, "--load", "99", "--html", page.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no load 99"),
        "{}",
        text(&o)
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_load_writes_its_html_report_beside_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let server = rt.block_on(FakeServer::start(|_, _| {
        Reply::json(
            200,
            &json!({"namespace": "guest", "name": "x", "version": "0.0.1", "subject": "guest",
                    "activationId": "00000000000000000000000000000001",
                    "start": 1, "end": 2, "duration": 1,
                    "response": {"result": {}, "size": 2, "status": "success", "success": true},
                    "logs": [], "publish": false,
                    "annotations": [{"key": "waitTime", "value": 1}]}),
        )
    }));
    let code = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../functions/python/noop.py");
    let trace = dir.path().join("t.yaml");
    let at: Vec<String> = (0..20)
        .map(|i| format!("{{at: {}}}", f64::from(i) * 0.05))
        .collect();
    std::fs::write(
        &trace,
        format!(
            "users:\n  - {{name: u, namespace: guest, auth: \"a:b\", api_host: \"{}\"}}\n\
             functions:\n  - {{name: f, kind: \"python:3\", code: {}, memory: 128, timeout: 1000}}\n\
             streams:\n  - {{user: u, function: f, invocations: [{}]}}\n",
            server.url(),
            code.display(),
            at.join(", ")
        ),
    )
    .unwrap();
    let db = dir.path().join("r.db");
    let store = format!("sqlite://{}", db.display());
    let args = [
        trace.to_str().unwrap(),
        "--quiet",
        "--no-monitor",
        "--store",
        &store,
    ];

    let o = load(&args);
    assert!(o.status.success(), "{}", text(&o));
    let page = dir.path().join("r.db.load-1.html");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("HTML report: {}", page.display())),
        "{}",
        text(&o)
    );
    let mut b = Browser::start();
    check_in_browser(
        &mut b,
        &page,
        &["latency-cdf", "latency-time", "lag-time", "rate-time"],
        &[
            ("cpu-cdf", "No CPU readings from the monitor"),
            ("memory-cdf", "No memory readings from the monitor"),
            ("cold-starts", "No cold start in this load"),
        ],
    );
    drop(b);

    // A report that cannot be written is an error line; the load and its rows stand.
    std::fs::create_dir(dir.path().join("r.db.load-2.html")).unwrap();
    let o = load(&args);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error: writing the HTML report") && err.contains("r.db.load-2.html"),
        "{}",
        text(&o)
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("HTML report:"));
    let (status, rows) = rt.block_on(faasload_tests::loader::stored(&db));
    assert_eq!(status, LoadStatus::Completed);
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r.load_id == 2 && r.class == "success"));
}
