//! The loader's systemd unit (`config/systemd/faasload-loader.service`) finds its
//! credentials: it runs with `DynamicUser=yes` (no home, so no `~/.wskprops`) and hands
//! the properties file over with `LoadCredential=`; the loader, started as systemd starts
//! it (`$CREDENTIALS_DIRECTORY` set, no usable home, no `__OW_*`), reads the credential
//! and sends the key it holds. The unit verifies with `systemd-analyze verify` (warnings
//! about it count as failures; installed by `cargo xtask test`).
use std::path::PathBuf;
use std::process::{Command, Stdio};

use faasload_loader::openwhisk::SYSTEMD_CREDENTIAL;
use faasload_tests::bin;
use faasload_tests::loader::{rt, text};
use faasload_tests::openwhisk_fake::{FakeServer, Reply};
use serde_json::json;

const KEY: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:unitkeyunitkeyunitkey";

fn unit() -> (PathBuf, String) {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/systemd/faasload-loader.service");
    let text = std::fs::read_to_string(&p).unwrap();
    (p, text)
}

/// The values of `key=` in the unit's `[Service]` section.
fn service(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| l.trim() != "[Service]")
        .take_while(|l| l.trim() != "[Install]")
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_loader_unit_verifies_and_hands_its_credential_over() {
    let (path, unit_text) = unit();
    assert_eq!(service(&unit_text, "DynamicUser"), ["yes"]);
    // The credential the loader reads, from a file root owns.
    let creds = service(&unit_text, "LoadCredential");
    assert_eq!(creds.len(), 1, "{creds:?}");
    let (name, source) = creds[0].split_once(':').unwrap();
    assert_eq!(name, SYSTEMD_CREDENTIAL);
    assert!(source.starts_with("/etc/faasload/"), "{source}");
    // Nothing points the loader elsewhere.
    for e in service(&unit_text, "Environment") {
        assert!(
            !e.contains("WSK_CONFIG_FILE") && !e.contains("__OW_"),
            "{e}"
        );
    }
    // systemd accepts the unit.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join(path.file_name().unwrap());
    std::fs::write(
        &copy,
        unit_text.replace("/usr/local/bin/faasload", &bin().display().to_string()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (Debian systemd; installed by cargo xtask test)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("faasload-loader.service"),
        "{err}"
    );

    // The loader as the unit starts it: the credential directory systemd makes, no home.
    let rt = rt();
    let server = rt.block_on(FakeServer::start(|_, _| {
        Reply::json(
            200,
            &json!({"namespace": "guest", "name": "f", "activationId": "00000000000000000000000000000001",
                "start": 1, "end": 2, "duration": 1, "logs": [], "annotations": [],
                "response": {"result": {}, "status": "success", "success": true}}),
        )
    }));
    let dir = tempfile::tempdir().unwrap();
    let cred_dir = dir.path().join("credentials");
    std::fs::create_dir(&cred_dir).unwrap();
    std::fs::write(
        cred_dir.join(name),
        format!("APIHOST={}\nAUTH={KEY}\n", server.url()),
    )
    .unwrap();
    let trace = dir.path().join("trace.yaml");
    std::fs::write(
        &trace,
        format!(
            "users: [{{name: u, namespace: guest}}]\nfunctions:\n  - {{name: f, kind: \"python:3\", code: {}/../functions/python/noop.py, memory: 128, timeout: 1000}}\nstreams:\n  - {{user: u, function: f, invocations: [{{at: 0}}]}}\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let o = Command::new(bin())
        .args(["load"])
        .arg(&trace)
        .args(["--quiet", "--no-monitor", "--no-store"])
        .env_clear()
        .env("CREDENTIALS_DIRECTORY", &cred_dir)
        .env("HOME", "/")
        .env("FAASLOAD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let basic = reqs[0].header("authorization").unwrap_or_default();
    let expected = format!("Basic {}", base64_encode(KEY.as_bytes()));
    assert_eq!(basic, expected);
}

/// Standard base64 with padding.
fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
