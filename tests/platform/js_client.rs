//! The official OpenWhisk JavaScript client (npm `openwhisk`, installed into `tests/js`
//! by this test) creates, updates, invokes, lists and fetches against the platform.
//! Needs node and npm with access to the npm registry; fails (never skips) without them.
use std::path::PathBuf;
use std::process::Command;

use faasload_platform::config::GUEST_AUTH;
use faasload_tests::platform::TestPlatform;

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

fn npm_install() {
    if js_dir()
        .join("node_modules/openwhisk/package.json")
        .exists()
    {
        return;
    }
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--no-package-lock"])
        .current_dir(js_dir())
        .output()
        .expect("npm must be installed to run the JS client test (apt-get install npm)");
    assert!(
        out.status.success(),
        "npm install of the openwhisk client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn official_js_client_works_against_the_platform() {
    npm_install();
    let p = TestPlatform::start(|_| {});
    let out = Command::new("node")
        .arg(js_dir().join("client.js"))
        .env("__OW_API_HOST", format!("http://{}", p.addr))
        .env("__OW_API_KEY", GUEST_AUTH)
        .output()
        .expect("node must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client.js failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(v["ok"], true);
    assert_eq!(v["activations"], 3);
    assert_eq!(v["version"], "0.0.2");
}
