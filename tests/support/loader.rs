//! Support for the tests that run `faasload load`: the command, its output for failure
//! messages, the rows it stored, and the small Python + Node.js trace replayed on the
//! embedded platform (process and Docker backends).
use std::path::Path;
use std::process::{Command, Output, Stdio};

use faasload_results::store::{LoadStatus, Store, StoredRow};

/// `faasload load <args>` (log level warn), run to its end.
pub fn load(args: &[&str]) -> Output {
    Command::new(crate::bin())
        .arg("load")
        .args(args)
        .env("FAASLOAD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run faasload load")
}

/// Status, stdout and stderr of a finished command, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A tokio runtime for the store's async API.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The status and rows of the last load in the SQLite store `db`.
pub async fn stored(db: &Path) -> (LoadStatus, Vec<StoredRow>) {
    let s = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let loads = s.loads().await.unwrap();
    let last = loads.last().expect("a load in the store");
    let rows = s.rows(last.id).await.unwrap();
    let status = last.status;
    s.close().await;
    (status, rows)
}

/// A small trace of `functions/python/burn.py` (`py`) and `functions/nodejs/hello.js`
/// (`js`), 128 MB each: user `ann` invokes `py` in a burst of two (cold starts) then
/// spaced (warm), 5 in all; `js_user` invokes `js` 3 times, the last with
/// `js_last_params` (a YAML flow mapping, or empty). `users` is the YAML list of users;
/// `more_streams` is appended to the streams.
pub fn py_js_trace(users: &str, js_user: &str, js_last_params: &str, more_streams: &str) -> String {
    let f = crate::platform::functions();
    let last = if js_last_params.is_empty() {
        String::new()
    } else {
        format!(", parameters: {js_last_params}")
    };
    format!(
        r#"seed: 7
users:
{users}
functions:
  - {{name: py, kind: "python:3", code: {f}/python/burn.py, memory: 128, timeout: 20000}}
  - {{name: js, kind: "nodejs:20", code: {f}/nodejs/hello.js, memory: 128, timeout: 20000}}
streams:
  - user: ann
    function: py
    parameters: {{ms: 30, mb: 8}}
    invocations: [{{at: 0}}, {{at: 0}}, {{at: 1.0}}, {{at: 1.5}}, {{at: 2.0}}]
  - user: {js_user}
    function: js
    invocations: [{{at: 0.2}}, {{at: 1.2}}, {{at: 1.7{last}}}]
{more_streams}"#,
        f = f.display()
    )
}
