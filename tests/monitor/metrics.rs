//! The monitor's `/metrics` (root: real eBPF with `bpf_stats`, a container with an
//! activation) read by the parsers of the Python `prometheus_client` from PyPI: as
//! OpenMetrics when the scraper asks for it (`Accept: application/openmetrics-text`, the
//! strict parser: `# EOF`, counters typed without `_total`, a family's samples
//! together), else as the Prometheus text format; both lint-clean (every family with
//! HELP and TYPE, counters ending in `_total`, no type in a name). The interpreter comes
//! from `cargo xtask test` (`xtask/src/promclient.rs`) as `FAASLOAD_TEST_PROMETHEUS_PYTHON`.
use std::io::{Read, Write};
use std::process::Command;

use faasload_protocol::monitor::{Ack, ContainerAction, Notification};
use faasload_tests::cgroups::TestTree;
use faasload_tests::monitor::Monitor;
use faasload_tests::workload::Workload;
use faasload_tests::{require_root, unique};

fn python() -> String {
    std::env::var("FAASLOAD_TEST_PROMETHEUS_PYTHON").unwrap_or_else(|_| {
        panic!(
            "FAASLOAD_TEST_PROMETHEUS_PYTHON is not set: this test parses /metrics with \
             prometheus_client from PyPI, installed by `cargo xtask test` (xtask/src/promclient.rs)"
        )
    })
}

/// `GET /metrics` with `accept`: (content type, body).
fn scrape(port: u16, accept: &str) -> (String, String) {
    let mut http = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        http,
        "GET /metrics HTTP/1.0\r\nHost: x\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut all = String::new();
    http.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(" 200 "), "{head}");
    let ct = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (ct, body.to_string())
}

/// What `prometheus_client` makes of `body` with the parser of `module`: one line per
/// family, `name type samples...`, or the parser's error (a failed command).
const PARSE: &str = r#"
import sys, importlib
mod = importlib.import_module(sys.argv[1])
text = sys.stdin.read()
for f in mod.text_string_to_metric_families(text):
    print(f.name, f.type, f.documentation != "", " ".join(sorted({s.name for s in f.samples})))
"#;

fn parse(module: &str, body: &str) -> Vec<String> {
    let mut child = Command::new(python())
        .args(["-c", PARSE, module])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{module} refused /metrics: {}\n{body}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// promtool's lints on the Prometheus text: HELP and TYPE for every family, counters
/// named `_total`, no `_counter` in a name, a family's samples together.
fn lint(body: &str) {
    let mut typed: Vec<(&str, &str)> = Vec::new();
    let mut helped: Vec<&str> = Vec::new();
    let mut order: Vec<&str> = Vec::new();
    for l in body.lines() {
        if let Some(r) = l.strip_prefix("# TYPE ") {
            let (n, t) = r.split_once(' ').unwrap();
            typed.push((n, t));
        } else if let Some(r) = l.strip_prefix("# HELP ") {
            helped.push(r.split_once(' ').unwrap().0);
        } else if !l.starts_with('#') && !l.is_empty() {
            let n = l.split(['{', ' ']).next().unwrap();
            if order.last() != Some(&n) {
                assert!(
                    !order.contains(&n),
                    "samples of {n} are not together:\n{body}"
                );
                order.push(n);
            }
        }
    }
    for n in &order {
        let t = typed.iter().find(|(x, _)| x == n).map(|(_, t)| *t);
        assert!(t.is_some(), "{n} has no TYPE:\n{body}");
        assert!(helped.contains(n), "{n} has no HELP:\n{body}");
        if t == Some("counter") {
            assert!(n.ends_with("_total"), "counter {n} without _total");
        }
        assert!(!n.contains("_counter"), "{n} carries its type in its name");
    }
}

#[test]
fn metrics_are_valid_openmetrics_and_lint_clean_prometheus_text() {
    require_root();
    let tree = TestTree::new(None);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let m = Monitor::start(&format!(
        "cgroup_version: {}\npatterns:\n  - kind: test\n    regex: '{}'\nbackend: ebpf\nmetrics_addr: 127.0.0.1:{port}\nbpf_stats: true\n",
        tree.layout.version(),
        tree.pattern()
    ));
    let name = "metrics";
    let cg = tree.create(name);
    let mut w = Workload::spawn();
    cg.add_pid(w.pid()).unwrap();
    w.cmd("cpu 0");
    assert_eq!(
        m.notify(Notification::container(ContainerAction::Run, name)),
        Ack::OK
    );
    m.wait_container(name);
    let act = unique("act").replace('-', "");
    assert_eq!(
        m.notify(Notification::activation_start(name, &act)),
        Ack::OK
    );
    w.cmd("cpu 30");
    assert_eq!(m.notify(Notification::activation_end(name, &act)), Ack::OK);
    m.activation(&act, None);

    // OpenMetrics, as Prometheus asks for it.
    let (ct, om) = scrape(
        port,
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    );
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let families = parse("prometheus_client.openmetrics.parser", &om);
    let has = |f: &[String], want: &str| f.iter().any(|l| l.starts_with(want));
    for want in [
        "faasload_container_cpu_seconds counter True faasload_container_cpu_seconds_total",
        "faasload_container_memory_bytes gauge True",
        "faasload_monitor_cpu_seconds counter True",
        "faasload_monitor_late_ticks counter True",
        "faasload_bpf_events counter True",
        "faasload_bpf_run_seconds counter True",
        "faasload_bpf_runs counter True faasload_bpf_runs_total",
    ] {
        assert!(has(&families, want), "{want}: {families:?}\n{om}");
    }
    assert!(om.contains(&format!(
        "faasload_container_cpu_seconds_total{{id=\"{name}\""
    )));
    let runs = om
        .lines()
        .find(|l| l.starts_with("faasload_bpf_runs_total{program=\"sched_switch\"}"))
        .unwrap_or_else(|| panic!("{om}"));
    let n: f64 = runs.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n > 0.0, "BPF stats on, sched_switch must have run: {runs}");

    // The Prometheus text format, for any other scraper (and promtool).
    let (ct, text) = scrape(port, "*/*");
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let families = parse("prometheus_client.parser", &text);
    assert!(
        has(
            &families,
            "faasload_bpf_runs counter True faasload_bpf_runs_total"
        ),
        "{families:?}"
    );
    lint(&text);
    w.stop();
    cg.remove().unwrap();
    m.stop();
}
