//! End-to-end tests of `faasload monitor` on real cgroups and real eBPF (root needed):
//! per-activation CPU against the cgroup's own accounting (also across moves of a
//! running process between containers), memory peaks, discovery of
//! existing containers, the grace period, the original FaaSLoad socket protocol byte for
//! byte, robustness against bad clients, the cgroupfs backend, and clean shutdown.
use std::time::Duration;

use faasload_cgroup::{OwnedCgroup, Version};
use faasload_protocol::monitor::{
    Ack, ActivationSummary, Backend, ContainerAction, ContainerEvent, ContainerState, ErrorAnswer,
    ErrorCode, Hello, MemPeakSource, Notification, OriginalSample, Query, ReplyError,
    SamplesAnswer, StreamItem, SubscribeQuery, WindowQuery, decode,
};
use faasload_tests::cgroups::{TestTree, cpu_usage_ns, mem_peak};
use faasload_tests::monitor::{Monitor, raw_exchange};
use faasload_tests::workload::Workload;
use faasload_tests::{require_root, unique};
use serde_json::Value;

fn config(tree: &TestTree, extra: &str) -> String {
    format!(
        "cgroup_version: {}\npatterns:\n  - kind: test\n    regex: '{}'\n{extra}",
        tree.layout.version(),
        tree.pattern()
    )
}

/// A container with a workload inside, known to the monitor.
fn container(m: &Monitor, tree: &TestTree, name: &str) -> (OwnedCgroup, Workload) {
    let cg = tree.create(name);
    let mut w = Workload::spawn();
    cg.add_pid(w.pid()).unwrap();
    // Finish start-up inside the cgroup before anything is measured.
    w.cmd("cpu 0");
    assert_eq!(
        m.notify(Notification::container(ContainerAction::Run, name)),
        Ack::OK
    );
    m.wait_container(name);
    (cg, w)
}

/// Runs `cmd` as one activation; returns (monitor summary, cgroup's own CPU delta).
fn activation(
    m: &Monitor,
    cg: &OwnedCgroup,
    v: Version,
    w: &mut Workload,
    name: &str,
    cmd: &str,
) -> (ActivationSummary, u64) {
    let act = unique("act").replace('-', "");
    let before = cpu_usage_ns(cg, v);
    assert_eq!(
        m.notify(Notification::activation_start(name, &act)),
        Ack::OK
    );
    w.cmd(cmd);
    assert_eq!(m.notify(Notification::activation_end(name, &act)), Ack::OK);
    let after = cpu_usage_ns(cg, v);
    let s = m.activation(&act, None);
    assert_eq!(s.activation_id, act, "{s:?}");
    (s, after - before)
}

fn cpu_accuracy(v: Version) {
    require_root();
    let tree = TestTree::new(Some(v));
    let m = Monitor::start(&config(&tree, "backend: ebpf\n"));
    let (cg, mut w) = container(&m, &tree, "burn");
    for ms in [1.0, 2.0, 5.0, 20.0, 100.0, 500.0, 3000.0] {
        let (s, truth) = activation(&m, &cg, v, &mut w, "burn", &format!("cpu {ms}"));
        let got = s.cpu_ns.unwrap_or_else(|| panic!("no cpu_ns: {s:?}"));
        let tol = ((truth as f64) * 0.01).max(200_000.0);
        let err = (got as f64 - truth as f64).abs();
        assert!(
            err <= tol,
            "{v} {ms} ms: monitor {got} ns vs cgroup {truth} ns (error {err} > {tol}); {s:?}; monitor stats {:?}",
            m.stats()
        );
        // The work really happened: the cgroup saw at least the requested CPU time
        // (v2 counts in µs).
        assert!(
            truth as f64 >= ms * 1e6 - 1000.0,
            "{ms} ms: cgroup only saw {truth} ns"
        );
        assert!(s.counters.nvcsw.is_some(), "{s:?}");
        assert!(!s.hardware.available, "{s:?}");
        assert!(
            s.hardware.reason.as_deref().is_some_and(|r| !r.is_empty()),
            "{s:?}"
        );
    }
    w.stop();
    cg.remove().unwrap();
    m.stop();
}

#[test]
fn cpu_per_activation_matches_cgroup_v1() {
    cpu_accuracy(Version::V1);
}

#[test]
fn cpu_per_activation_matches_cgroup_v2() {
    cpu_accuracy(Version::V2);
}

/// A busy loop that never sleeps nor makes a system call; killed on drop.
struct Burner(std::process::Child);

impl Burner {
    fn spawn() -> Burner {
        Burner(
            std::process::Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .expect("spawn sh"),
        )
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process moved into a container while it runs, and out again, without sleeping in
/// between: the container is charged what its own counter says (before, the time
/// stayed with the cgroup it was switched in from until its next switch, and the
/// monitor charged the new cgroup the old one's part of the slice).
fn moves_charge_the_cgroup_moved_into(v: Version) {
    require_root();
    let tree = TestTree::new(Some(v));
    let m = Monitor::start(&config(&tree, "backend: ebpf\n"));
    let home = tree.create("mvhome");
    let dest = tree.create("mvdest");
    for name in ["mvhome", "mvdest"] {
        assert_eq!(
            m.notify(Notification::container(ContainerAction::Run, name)),
            Ack::OK
        );
        m.wait_container(name);
    }
    let burner = Burner::spawn();
    let pid = burner.0.id();
    home.add_pid(pid).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Three rounds: with the first move, seven moves, within the kernel's eight splits
    // per slice should the burner run them all in one slice.
    for round in 0..3 {
        let act = unique("mv").replace('-', "");
        let before = cpu_usage_ns(&dest, v);
        assert_eq!(
            m.notify(Notification::activation_start("mvdest", &act)),
            Ack::OK
        );
        dest.add_pid(pid).unwrap();
        // Until it has run a while there (on a busy machine it may wait for a CPU).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while cpu_usage_ns(&dest, v) - before < 30_000_000 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        home.add_pid(pid).unwrap();
        assert_eq!(
            m.notify(Notification::activation_end("mvdest", &act)),
            Ack::OK
        );
        let truth = cpu_usage_ns(&dest, v) - before;
        let s = m.activation(&act, None);
        let got = s.cpu_ns.unwrap_or_else(|| panic!("no cpu_ns: {s:?}"));
        assert!(
            truth >= 30_000_000,
            "round {round}: the burner hardly ran in the container ({truth} ns)"
        );
        let tol = ((truth as f64) * 0.01).max(200_000.0);
        let err = (got as f64 - truth as f64).abs();
        assert!(
            err <= tol,
            "{v} round {round}: monitor {got} ns vs cgroup {truth} ns (error {err} > {tol}); {s:?}; monitor stats {:?}",
            m.stats()
        );
    }
    drop(burner);
    home.remove().unwrap();
    dest.remove().unwrap();
    m.stop();
}

#[test]
fn moves_charge_the_cgroup_moved_into_v1() {
    moves_charge_the_cgroup_moved_into(Version::V1);
}

#[test]
fn moves_charge_the_cgroup_moved_into_v2() {
    moves_charge_the_cgroup_moved_into(Version::V2);
}

/// A cold start: the init (between `activation_start` and `init_end`) and the run are
/// measured apart, the totals cover both (as the record's duration does), and user +
/// sys adds up to the total.
fn cold_start_init_measured_apart(v: Version) {
    require_root();
    let tree = TestTree::new(Some(v));
    let m = Monitor::start(&config(&tree, "backend: ebpf\n"));
    let (cg, mut w) = container(&m, &tree, "cold");
    let act = unique("cold").replace('-', "");
    let t0 = cpu_usage_ns(&cg, v);
    assert_eq!(
        m.notify(Notification::activation_start("cold", &act)),
        Ack::OK
    );
    // The init: CPU and a memory peak the run never reaches again.
    w.cmd("cpu 60");
    w.cmd("mem 64");
    w.cmd("free");
    // None where this version has no memory controller here (hybrid hosts: v1 only).
    let init_peak = mem_peak(&cg, v);
    assert_eq!(m.notify(Notification::init_end("cold", &act)), Ack::OK);
    let t1 = cpu_usage_ns(&cg, v);
    w.cmd("cpu 30");
    w.cmd("mem 8");
    assert_eq!(
        m.notify(Notification::activation_end("cold", &act)),
        Ack::OK
    );
    let t2 = cpu_usage_ns(&cg, v);
    let s = m.activation(&act, None);
    let init = s.init.clone().unwrap_or_else(|| panic!("no init: {s:?}"));
    let close = |what: &str, got: Option<u64>, truth: u64| {
        let got = got.unwrap_or_else(|| panic!("{v} {what}: none in {s:?}"));
        let tol = ((truth as f64) * 0.01).max(200_000.0);
        let err = (got as f64 - truth as f64).abs();
        assert!(
            err <= tol,
            "{v} {what}: monitor {got} ns vs cgroup {truth} ns (error {err} > {tol}); {s:?}"
        );
    };
    close("init cpu", init.cpu_ns, t1 - t0);
    close("total cpu", s.cpu_ns, t2 - t0);
    for (what, user, sys, total) in [
        ("init", init.cpu_user_ns, init.cpu_sys_ns, init.cpu_ns),
        ("total", s.cpu_user_ns, s.cpu_sys_ns, s.cpu_ns),
    ] {
        let (u, y, t) = (user.unwrap(), sys.unwrap(), total.unwrap());
        assert_eq!(u + y, t, "{v} {what}: user {u} + sys {y} != total {t}");
    }
    // The init's peak is the watermark at its end; the activation's is the larger of the
    // init's and the run's. Without a peak counter, the monitor claims none.
    match init_peak {
        Some(truth) => {
            let ip = init
                .mem_peak_bytes
                .unwrap_or_else(|| panic!("no init peak: {s:?}"));
            assert!(ip >= 64 << 20, "{v}: init peak {ip}");
            assert!(
                (ip as f64 - truth as f64).abs() <= truth as f64 * 0.01,
                "{v}: init peak {ip} vs cgroup {truth}"
            );
            assert!(s.mem_peak_bytes.is_some_and(|p| p >= ip), "{s:?}");
        }
        None => assert_eq!(init.mem_peak_bytes, None, "{v}: {s:?}"),
    }
    // A warm activation after it has no init.
    let (warm, _) = activation(&m, &cg, v, &mut w, "cold", "cpu 5");
    assert_eq!(warm.init, None, "{warm:?}");
    // An init end for an activation never started is refused.
    let e = m.ask_err(&Notification::init_end("cold", "neverstarted").with_ack());
    assert_eq!(e.code, ErrorCode::NotFound, "{e:?}");
    w.stop();
    cg.remove().unwrap();
    m.stop();
}

#[test]
fn cold_start_init_measured_apart_v1() {
    cold_start_init_measured_apart(Version::V1);
}

#[test]
fn cold_start_init_measured_apart_v2() {
    cold_start_init_measured_apart(Version::V2);
}

#[test]
fn memory_peak_matches_cgroup_peak_counter() {
    require_root();
    let tree = TestTree::new(None);
    let v = tree.layout.version();
    let m = Monitor::start(&config(&tree, ""));
    let (cg, mut w) = container(&m, &tree, "mem");
    for mib in [16, 96] {
        let (s, _) = activation(&m, &cg, v, &mut w, "mem", &format!("mem {mib}"));
        let truth = mem_peak(&cg, v).expect("this host has a peak memory counter");
        let got = s.mem_peak_bytes.unwrap_or_else(|| panic!("no peak: {s:?}"));
        let err = (got as f64 - truth as f64).abs();
        assert!(
            err <= truth as f64 * 0.01,
            "{mib} MiB: monitor {got} vs cgroup {truth}"
        );
        assert!(got >= mib * 1024 * 1024, "{mib} MiB: peak only {got}");
        assert_eq!(s.mem_peak_source, MemPeakSource::Counter);
        w.cmd("free");
    }
    w.stop();
    cg.remove().unwrap();
    m.stop();
}

/// The cgroup's memory charged now (its page counter's file).
fn mem_usage(cg: &OwnedCgroup, v: Version) -> u64 {
    let d = cg.dir(faasload_cgroup::Controller::Memory).unwrap();
    let f = match v {
        Version::V1 => d.join("memory.usage_in_bytes"),
        Version::V2 => d.join("memory.current"),
    };
    std::fs::read_to_string(&f)
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        .trim()
        .parse()
        .unwrap()
}

/// The per-tick memory samples come from the kernel (one program run per tick for all
/// containers), not from a file per container, and equal the cgroups' page counters.
#[test]
fn memory_samples_come_from_the_kernel_and_match_the_page_counter() {
    require_root();
    let tree = TestTree::new(None);
    let v = tree.layout.version();
    let m = Monitor::start(&config(&tree, "backend: ebpf\ninterval_ms: 10\n"));
    let mut all = Vec::new();
    for (i, mib) in [8u64, 24, 40].into_iter().enumerate() {
        let name = format!("kmem{i}");
        let (cg, mut w) = container(&m, &tree, &name);
        // Runs (and switches) in the container, so the kernel locates its memory cgroup.
        w.cmd(&format!("mem {mib}"));
        all.push((name, mib, cg, w));
    }
    std::thread::sleep(Duration::from_millis(200));
    let file_reads = |m: &Monitor| {
        let st = m.stats();
        st.kernel
            .unwrap_or_else(|| panic!("no kernel counters: {st:?}"))
            .mem_file_reads
    };
    let before = file_reads(&m);
    let t0 = now();
    // Each runs again: a container whose memory the kernel did not read would now be
    // read from its file at every tick.
    for (_, _, _, w) in all.iter_mut() {
        w.cmd("cpu 20");
    }
    std::thread::sleep(Duration::from_millis(200));
    let truths: Vec<u64> = all.iter().map(|(_, _, cg, _)| mem_usage(cg, v)).collect();
    let t1 = now();
    assert_eq!(
        file_reads(&m),
        before,
        "memory read from files while the kernel knows the containers' memory cgroups"
    );
    for ((name, mib, _, _), truth) in all.iter().zip(truths) {
        let s: SamplesAnswer = m.ask(&Query::Samples(WindowQuery {
            container: name.clone(),
            start: t0,
            end: t1,
        }));
        assert!(s.samples.len() >= 10, "too few samples at 10 ms: {s:?}");
        let last = s
            .samples
            .last()
            .and_then(|e| e.memory_bytes)
            .unwrap_or_else(|| panic!("{s:?}"));
        assert!(truth >= mib << 20, "{name} holds {mib} MiB: {truth}");
        // The workloads are idle: their page counters do not move between the reads.
        assert_eq!(
            last, truth,
            "{name}: kernel sample vs the cgroup's page counter"
        );
    }
    for (_, _, cg, w) in all {
        w.stop();
        cg.remove().unwrap();
    }
    m.stop();
}

#[test]
fn existing_containers_are_found_and_removed_ones_answer_during_grace() {
    require_root();
    let tree = TestTree::new(None);
    let v = tree.layout.version();
    // Created before the monitor starts (like pre-warmed containers).
    let cg = tree.create("early");
    let mut w = Workload::spawn();
    cg.add_pid(w.pid()).unwrap();
    let m = Monitor::start(&config(&tree, "grace_s: 60\ninterval_ms: 5\n"));
    let c = m.wait_container("early");
    assert_eq!(c.state, ContainerState::Running, "{c:?}");
    let t0 = now();
    w.cmd("cpu 30");
    std::thread::sleep(Duration::from_millis(50));
    let t1 = now();
    let (s, _) = activation(&m, &cg, v, &mut w, "early", "cpu 5");
    assert!(s.cpu_ns.unwrap() > 4_000_000, "{s:?}");
    // Remove it: no notification, only the cgroup going away.
    w.stop();
    cg.remove().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let c = m.wait_container("early");
        if c.state == ContainerState::Removed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "removal never seen: {c:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still answers the original query and the activation query.
    let req = format!("{{\"container\": \"early\", \"start\": {t0}, \"end\": {t1}}}");
    let out = raw_exchange(&m.query, req.as_bytes(), false).unwrap();
    let list: Vec<OriginalSample> = decode(&String::from_utf8(out).unwrap()).unwrap();
    assert!(
        list.len() >= 5,
        "too few samples in the window: {}",
        list.len()
    );
    let last_cpu = list.last().unwrap().cpu.unwrap();
    assert!(
        last_cpu >= 0.02,
        "the 30 ms burn is not in the samples: {last_cpu}"
    );
    let again = m.activation(&s.activation_id, None);
    assert_eq!(again.cpu_ns, s.cpu_ns);
    m.stop();
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn original_faasload_protocol_byte_for_byte() {
    require_root();
    let tree = TestTree::new(None);
    let m = Monitor::start(&config(&tree, "interval_ms: 10\n"));
    let cg = tree.create("orig");
    let mut w = Workload::spawn();
    cg.add_pid(w.pid()).unwrap();
    // The original invoker wrapper: one JSON object per connection, no newline, no reply.
    let out = raw_exchange(
        &m.notify,
        br#"{"action": "run", "container": "orig"}"#,
        true,
    )
    .unwrap();
    assert!(
        out.is_empty(),
        "a notification without ack gets no answer: {out:?}"
    );
    m.wait_container("orig");
    let start = now();
    w.cmd("mem 8");
    w.cmd("cpu 50");
    std::thread::sleep(Duration::from_millis(30));
    let end = now();
    // The original loader's query: ms-precision epoch seconds, no newline, reply until EOF.
    let req = format!(r#"{{"container": "orig", "start": {start:.3}, "end": {end:.3}}}"#);
    let out = raw_exchange(&m.query, req.as_bytes(), false).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with('['), "{text}");
    let list: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(list.len() >= 3, "{text}");
    for s in &list {
        let o = s.as_object().unwrap();
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["cpu", "date", "memory"], "{s}");
        let d = s["date"].as_f64().unwrap();
        assert!(
            d >= start - 0.001 && d <= end + 0.001,
            "date {d} outside [{start}, {end}]"
        );
        assert!(s["memory"].is_u64() || s["memory"].is_null());
    }
    assert_eq!(
        list[0]["cpu"].as_f64(),
        Some(0.0),
        "CPU is re-based to the first sample"
    );
    let last = list.last().unwrap()["cpu"].as_f64().unwrap();
    assert!(
        last > 0.03 && last < 0.2,
        "50 ms of CPU in seconds, got {last}"
    );
    let mem = list.last().unwrap()["memory"]
        .as_u64()
        .expect("rss + mapped_file");
    assert!(mem >= 8 * 1024 * 1024, "memory (rss + mapped_file) {mem}");
    // rm: the container goes into its grace period.
    let out = raw_exchange(&m.notify, br#"{"action": "rm", "container": "orig"}"#, true).unwrap();
    assert!(out.is_empty());
    assert_eq!(m.wait_container("orig").state, ContainerState::Removed);
    w.stop();
    cg.remove().unwrap();
    m.stop();
}

#[test]
fn bad_clients_get_errors_and_the_daemon_goes_on() {
    require_root();
    let tree = TestTree::new(None);
    let m = Monitor::start(&config(&tree, "max_clients: 64\n"));
    // The first answer line of raw bytes, as an error answer.
    let first_error = |out: &[u8]| -> ErrorAnswer {
        serde_json::from_slice(out.split(|&b| b == b'\n').next().unwrap())
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(out)))
    };
    let err = |bytes: &[u8], shutdown: bool, code: ErrorCode| {
        for sock in [&m.query, &m.notify] {
            let out = raw_exchange(sock, bytes, shutdown).unwrap();
            let e = first_error(&out);
            assert_eq!(e.code, code, "{e:?}");
            assert!(!e.error.is_empty(), "{e:?}");
        }
    };
    err(b"}{ not json\n", false, ErrorCode::BadRequest);
    err(br#"{"type": "hello""#, true, ErrorCode::BadRequest);
    err(b"[1, 2]\n", true, ErrorCode::BadRequest);
    err(br#"{"type": "nope"}"#, true, ErrorCode::UnknownType);
    err(
        br#"{"action": "explode", "container": "x"}"#,
        true,
        ErrorCode::UnknownAction,
    );
    err(br#"{"what": 1}"#, true, ErrorCode::UnknownRequest);
    let big = vec![b' '; 10 * 1024 * 1024];
    let mut req = b"{\"type\": \"hello\", \"pad\": \"".to_vec();
    req.extend_from_slice(&big);
    // The daemon answers "too_large" and closes: the writer may see EPIPE, fine.
    let out = {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&m.query).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let _ = s.write_all(&req);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    };
    assert_eq!(first_error(&out).code, ErrorCode::TooLarge);
    // Hundreds of concurrent clients: every one answered (hello) or refused (busy).
    let handles: Vec<_> = (0..300)
        .map(|_| {
            let q = m.query.clone();
            std::thread::spawn(move || {
                let out = raw_exchange(&q, b"{\"type\":\"hello\"}\n", true).unwrap();
                let line =
                    String::from_utf8_lossy(out.split(|&b| b == b'\n').next().unwrap()).to_string();
                match decode::<Hello>(&line) {
                    Ok(_) => true,
                    Err(ReplyError::Monitor(e)) => e.code == ErrorCode::Busy,
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let answered = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .filter(|ok| *ok)
        .count();
    assert_eq!(answered, 300, "every client answered or refused");
    // Still alive and serving.
    m.hello();
    let st = m.stats();
    assert!(st.bad_requests >= 13, "{st:?}");
    m.stop();
}

#[test]
fn cgroupfs_backend_agrees_within_its_resolution() {
    require_root();
    let tree = TestTree::new(None);
    let v = tree.layout.version();
    let interval_ms = 10.0;
    let m = Monitor::start(&config(
        &tree,
        &format!(
            "backend: cgroupfs
interval_ms: {interval_ms}
"
        ),
    ));
    assert_eq!(m.hello().backend, Backend::Cgroupfs);
    let (cg, mut w) = container(&m, &tree, "poll");
    for ms in [50.0, 400.0] {
        let act = unique("act").replace('-', "");
        let before = cpu_usage_ns(&cg, v);
        m.notify(Notification::activation_start("poll", &act));
        w.cmd(&format!("cpu {ms}"));
        // Let one more sampling tick pass after the work, as a poller needs.
        std::thread::sleep(Duration::from_millis(3 * interval_ms as u64));
        m.notify(Notification::activation_end("poll", &act));
        let truth = cpu_usage_ns(&cg, v) - before;
        let s = m.activation(&act, None);
        let got = s.cpu_ns.unwrap_or_else(|| panic!("{s:?}"));
        // A poller sees CPU only at its ticks: within one interval of CPU on each side.
        let tol = 2.0 * interval_ms * 1e6 + truth as f64 * 0.01;
        assert!(
            (got as f64 - truth as f64).abs() <= tol,
            "{ms} ms: cgroupfs {got} vs cgroup {truth}"
        );
        assert_eq!(s.backend, Backend::Cgroupfs);
    }
    w.stop();
    cg.remove().unwrap();
    m.stop();
}

#[test]
fn subscription_streams_container_events_and_metrics_are_served() {
    use std::io::{BufRead, BufReader, Read, Write};
    require_root();
    let tree = TestTree::new(None);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let m = Monitor::start(&config(
        &tree,
        &format!("metrics_addr: 127.0.0.1:{port}\nbpf_stats: true\n"),
    ));
    let mut sub = std::os::unix::net::UnixStream::connect(&m.query).unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let subscribe = Query::Subscribe(SubscribeQuery { samples: false });
    writeln!(sub, "{}", serde_json::to_string(&subscribe).unwrap()).unwrap();
    let mut lines = BufReader::new(sub.try_clone().unwrap());
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    assert_eq!(
        serde_json::from_str::<StreamItem>(&line).unwrap(),
        StreamItem::Subscribed
    );
    let (cg, mut w) = container(&m, &tree, "sub");
    let (s, _) = activation(&m, &cg, tree.layout.version(), &mut w, "sub", "cpu 20");
    let mut seen = (false, false);
    while !(seen.0 && seen.1) {
        line.clear();
        lines.read_line(&mut line).expect("stream line");
        match serde_json::from_str::<StreamItem>(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
        {
            StreamItem::Container {
                event: ContainerEvent::Discovered,
                id,
                ..
            } if id == "sub" => seen.0 = true,
            StreamItem::Activation { summary } if summary.activation_id == s.activation_id => {
                seen.1 = true
            }
            _ => {}
        }
    }
    // Prometheus text on loopback, with the container and the monitor's own cost.
    let mut http = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(http, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    http.read_to_string(&mut body).unwrap();
    assert!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "{body}"
    );
    assert!(
        body.contains("faasload_container_cpu_seconds_total{id=\"sub\""),
        "{body}"
    );
    assert!(
        body.contains("faasload_monitor_cpu_seconds_total{mode=\"user\"}"),
        "{body}"
    );
    let runs = body
        .lines()
        .find(|l| l.starts_with("faasload_bpf_runs_total{program=\"sched_switch\"}"))
        .unwrap_or_else(|| panic!("{body}"));
    let n: u64 = runs.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n > 0, "BPF stats on, sched_switch must have run: {runs}");
    drop(sub);
    w.stop();
    cg.remove().unwrap();
    m.stop();
}

#[test]
fn monitor_check_command_reports_exact_cpu() {
    require_root();
    let child = std::process::Command::new(faasload_tests::bin())
        .arg("monitor-check")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let layout = faasload_cgroup::Layout::detect().unwrap();
    for root in layout.roots() {
        let d = root.join(format!("faasload/check-{pid}"));
        assert!(!d.exists(), "{} left behind", d.display());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("containers seen by the monitor: 3"), "{text}");
    assert!(text.contains("of the cgroups' own counters: yes"), "{text}");
}
