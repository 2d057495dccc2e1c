//! What each request means to the monitor and what it answers. The wire format (every
//! request, answer and error, and which socket takes what) is
//! `faasload_protocol::monitor`; here requests arrive parsed and answers leave as those
//! types. A request that does not parse is a bad request, counted by its type
//! ([`bad`]); answers about the monitor's state (`not_found`, `pending`) are not.
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use faasload_protocol::monitor::{
    self as wire, Ack, ActivationQuery, ContainerAction, ContainerInfo, ContainerList,
    ContainerName, ContainerState, ErrorAnswer, ErrorCode, Hello, KernelCounters, Notification,
    NotificationKind, OriginalQuery, OriginalSample, ProgramStats, Query, Reply, Request,
    RequestError, SampleEntry, SamplesAnswer, Stats, StreamItem, WindowQuery, WindowSummary,
    ns_to_secs,
};
use serde_json::Value;

pub(crate) use faasload_protocol::monitor::{PROTOCOL_VERSION, Socket};

use super::config::Backend;
use super::state::{Container, Life, Monitor, Sample};

/// What the connection does after a request.
pub(crate) enum After {
    /// Keep reading requests.
    Continue,
    /// Close after writing the answer (original FaaSLoad requests, fatal errors).
    Close,
    /// Switch to the subscription stream.
    Subscribe { samples: bool },
}

/// An answer: its encoded line (without newline), or nothing (notifications without ack).
pub(crate) struct Answer {
    pub body: Option<String>,
    pub after: After,
}

impl Answer {
    fn reply(r: &Reply, after: After) -> Answer {
        match wire::encode(r) {
            Ok(b) => Answer {
                body: Some(b),
                after,
            },
            Err(e) => {
                // Only maps with string keys and numbers are encoded: cannot happen.
                tracing::error!("cannot encode an answer ({e}); closing the connection");
                Answer {
                    body: None,
                    after: After::Close,
                }
            }
        }
    }

    fn none(after: After) -> Answer {
        Answer { body: None, after }
    }

    /// An error answer.
    pub(crate) fn error(e: ErrorAnswer, after: After) -> Answer {
        Answer::reply(&Reply::Error(e), after)
    }
}

impl From<Backend> for wire::Backend {
    fn from(b: Backend) -> wire::Backend {
        match b {
            Backend::Ebpf => wire::Backend::Ebpf,
            Backend::Cgroupfs => wire::Backend::Cgroupfs,
        }
    }
}

/// Handles one request (one framed JSON value) that came on `sock`.
pub(crate) async fn handle(m: &Arc<Monitor>, sock: Socket, req: Value) -> Answer {
    match Request::parse(req, sock) {
        Ok(Request::Notification(n)) => notification(m, n),
        Ok(Request::Query(q)) => query(m, q).await,
        Ok(Request::Original(q)) => original_query(m, &q),
        Err(e) => bad(m, &e),
    }
}

/// Counts a bad request and answers it (closing the connection when the error says so).
pub(crate) fn bad(m: &Monitor, e: &RequestError) -> Answer {
    m.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
    let after = if e.closes() {
        After::Close
    } else {
        After::Continue
    };
    Answer::error(e.answer(), after)
}

fn not_found(msg: String, after: After) -> Answer {
    Answer::error(ErrorAnswer::new(ErrorCode::NotFound, msg), after)
}

/// Finds a container, rescanning the cgroup tree once if it is not known yet.
fn find(m: &Monitor, id: &str) -> Option<Arc<Container>> {
    if let Some(c) = m.container(id) {
        return Some(c);
    }
    m.rescan();
    m.container(id)
}

fn notification(m: &Monitor, n: Notification) -> Answer {
    let ok = || {
        if n.ack {
            Answer::reply(&Reply::Ack(Ack::OK), After::Continue)
        } else {
            Answer::none(After::Continue)
        }
    };
    let id = n.container.as_str();
    match &n.kind {
        NotificationKind::Container(ContainerAction::Run) => match find(m, id) {
            Some(_) => ok(),
            None => {
                m.stats.unknown_container.fetch_add(1, Ordering::Relaxed);
                not_found(
                    format!("no cgroup found for container {id}"),
                    After::Continue,
                )
            }
        },
        NotificationKind::Container(ContainerAction::Rm) => {
            m.remove(id);
            ok()
        }
        NotificationKind::Container(a @ (ContainerAction::Pause | ContainerAction::Resume)) => {
            if m.set_paused(id, *a == ContainerAction::Pause) {
                ok()
            } else {
                not_found(format!("unknown container {id}"), After::Continue)
            }
        }
        NotificationKind::ActivationStart { activation_id: act }
        | NotificationKind::InitEnd { activation_id: act }
        | NotificationKind::ActivationEnd { activation_id: act } => {
            let Some(c) = find(m, id) else {
                m.stats.unknown_container.fetch_add(1, Ordering::Relaxed);
                return not_found(format!("unknown container {id}"), After::Continue);
            };
            match &n.kind {
                NotificationKind::ActivationStart { .. } => {
                    m.activation_start(&c, act);
                    ok()
                }
                NotificationKind::InitEnd { .. } if m.activation_init_end(&c, act) => ok(),
                NotificationKind::InitEnd { .. } => not_found(
                    format!(
                        "the init of activation {act} ended but its start was never notified \
                         (or its init already ended)"
                    ),
                    After::Continue,
                ),
                _ if m.activation_end(&c, act).is_some() => ok(),
                _ => not_found(
                    format!("activation {act} ended but its start was never notified"),
                    After::Continue,
                ),
            }
        }
    }
}

/// The container a window names, and the window in epoch ns; or the error answer.
fn window_of(
    m: &Monitor,
    q: &WindowQuery,
    after: After,
) -> Result<(Arc<Container>, u64, u64), Answer> {
    let (start, end) = q.range_ns();
    match m.container(&q.container) {
        Some(c) => Ok((c, start, end)),
        None => Err(not_found(
            format!("unknown container {}", q.container),
            after,
        )),
    }
}

/// The original FaaSLoad query: samples in the window, CPU re-based to the first one;
/// the connection closes after the answer.
fn original_query(m: &Monitor, q: &OriginalQuery) -> Answer {
    let w = WindowQuery {
        container: q.container.clone(),
        start: q.start,
        end: q.end,
    };
    let (c, start, end) = match window_of(m, &w, After::Close) {
        Ok(w) => w,
        Err(a) => return a,
    };
    let samples = m.samples(&c, start, end);
    let base = samples.iter().find_map(Sample::cpu);
    let list = samples
        .iter()
        .map(|s| OriginalSample {
            date: ns_to_secs(s.t_ns),
            memory: s.rss_mapped(),
            cpu: s
                .cpu()
                .zip(base)
                .map(|(c, b)| ns_to_secs(c.saturating_sub(b))),
        })
        .collect();
    Answer::reply(&Reply::Original(list), After::Close)
}

async fn query(m: &Arc<Monitor>, q: Query) -> Answer {
    let reply = match q {
        Query::Hello => Reply::Hello(hello(m)),
        Query::Activation(q) => return activation(m, &q).await,
        Query::Window(q) => {
            let (c, start, end) = match window_of(m, &q, After::Continue) {
                Ok(w) => w,
                Err(a) => return a,
            };
            let s = m.samples(&c, start, end);
            let cpu = s
                .iter()
                .find_map(Sample::cpu)
                .zip(s.iter().rev().find_map(Sample::cpu))
                .map(|(a, b)| b.saturating_sub(a));
            let mems: Vec<u64> = s.iter().filter_map(Sample::mem).collect();
            Reply::Window(WindowSummary {
                container: c.id.clone(),
                start: ns_to_secs(start),
                end: ns_to_secs(end),
                samples: s.len(),
                cpu_ns: cpu,
                mem_peak_bytes: mems.iter().max().copied(),
                mem_avg_bytes: average(&mems),
                resolution_ms: m.cfg.interval_ms,
            })
        }
        Query::Samples(q) => {
            let (c, start, end) = match window_of(m, &q, After::Continue) {
                Ok(w) => w,
                Err(a) => return a,
            };
            let samples = m
                .samples(&c, start, end)
                .iter()
                .map(|s| SampleEntry {
                    date: ns_to_secs(s.t_ns),
                    cpu_ns: s.cpu(),
                    memory_bytes: s.mem(),
                    rss_mapped_bytes: s.rss_mapped(),
                })
                .collect();
            Reply::Samples(SamplesAnswer {
                container: c.id.clone(),
                samples,
            })
        }
        Query::Containers => Reply::Containers(containers(m)),
        Query::Stats => Reply::Stats(stats(m)),
        Query::Attribute(q) => Reply::Attribution(super::attribution::attribute(m, &q).await),
        Query::Subscribe(q) => {
            return Answer::reply(
                &Reply::Subscribed(StreamItem::Subscribed),
                After::Subscribe { samples: q.samples },
            );
        }
    };
    Answer::reply(&reply, After::Continue)
}

/// The integer mean, None when empty.
pub(crate) fn average(v: &[u64]) -> Option<u64> {
    (!v.is_empty()).then(|| v.iter().sum::<u64>() / v.len() as u64)
}

fn hello(m: &Monitor) -> Hello {
    Hello {
        version: env!("CARGO_PKG_VERSION").to_string(),
        protocol: PROTOCOL_VERSION,
        backend: m.cfg.backend.into(),
        cgroup: match m.layout.version() {
            faasload_cgroup::Version::V1 => wire::CgroupVersion::V1,
            faasload_cgroup::Version::V2 => wire::CgroupVersion::V2,
        },
        interval_ms: m.cfg.interval_ms,
        capabilities: wire::CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        hardware: m.hardware.clone(),
    }
}

/// An activation's summary, waiting up to `wait_ms` for its end.
async fn activation(m: &Monitor, q: &ActivationQuery) -> Answer {
    let id = q.activation_id.as_str();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(q.wait_ms());
    loop {
        if let Some(s) = m.activation(id) {
            return Answer::reply(&Reply::Activation(s), After::Continue);
        }
        if tokio::time::Instant::now() >= deadline {
            let e = if m.is_open(id) {
                ErrorAnswer::new(
                    ErrorCode::Pending,
                    format!("activation has not ended yet: {id}"),
                )
            } else {
                ErrorAnswer::new(ErrorCode::NotFound, format!("unknown activation: {id}"))
            };
            return Answer::error(e, After::Continue);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The container table, by id, with names where resolved.
fn containers(m: &Monitor) -> ContainerList {
    let mut list: Vec<ContainerInfo> = m
        .containers()
        .iter()
        .map(|c| {
            let v = m.view(c);
            ContainerInfo {
                id: v.id,
                kind: v.kind,
                cgroup: v.cgroup,
                cgroup_ids: v.cgroup_ids,
                state: match v.state {
                    Life::Running => ContainerState::Running,
                    Life::Paused => ContainerState::Paused,
                    Life::Removed => ContainerState::Removed,
                },
                discovered: v.discovered,
                removed: v.removed,
                samples: v.samples,
                open_activations: v.open_activations,
                name: m.names.get(&c.id).map(|n| ContainerName {
                    name: n.name.clone(),
                    image: n.image.clone(),
                    labels: n.labels.clone(),
                    name_source: n.source,
                    openwhisk: n.openwhisk.clone(),
                }),
            }
        })
        .collect();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    ContainerList { containers: list }
}

/// The monitor's own counters (drops included).
pub(crate) fn stats(m: &Monitor) -> Stats {
    use super::ebpf;
    use faasload_common::counter;
    let s = &m.stats;
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (kernel, programs, program_ids) = match &m.kernel {
        Some(k) => {
            let c = k.counters();
            let at = |i: u32| c[i as usize];
            let counters = KernelCounters {
                switches: at(ebpf::SWITCHES),
                switches_unmatched: at(ebpf::SWITCHES_UNMATCHED),
                stats_map_full: at(ebpf::TABLE_FULL),
                stats_lost_ns: at(counter::LOST_NS),
                moves_split: at(counter::MOVES_SPLIT),
                moves_overflow: at(counter::MOVES_OVERFLOW),
                mem_sample_failed: at(ebpf::MEM_SAMPLE_FAILED),
                mem_file_reads: at(ebpf::MEM_FILE_READS),
                events_dropped: at(counter::EVENTS_DROPPED),
                events_sent: at(counter::EVENTS_SENT),
                kernel_read_failed: at(counter::READ_FAILED),
            };
            let programs = k
                .program_stats()
                .into_iter()
                .map(|p| ProgramStats {
                    name: p.name,
                    run_time_ns: p.run_time_ns,
                    run_count: p.run_count,
                })
                .collect();
            (Some(counters), programs, k.program_ids())
        }
        None => (None, Vec::new(), Vec::new()),
    };
    let (user, sys) = self_rusage();
    Stats {
        backend: m.cfg.backend.into(),
        containers: m.containers().len(),
        samples: l(&s.samples),
        sample_ticks: l(&s.sample_ticks),
        late_ticks: l(&s.late_ticks),
        activations: l(&s.activations),
        activations_dropped: l(&s.activations_dropped),
        unknown_container: l(&s.unknown_container),
        bad_requests: l(&s.bad_requests),
        refused_clients: l(&s.refused_clients),
        events: l(&s.events),
        events_undecodable: l(&s.events_undecodable),
        stream_lagged: l(&s.stream_lagged),
        kernel,
        programs,
        program_ids,
        self_cpu_user_ns: user,
        self_cpu_sys_ns: sys,
    }
}

/// This process's user and system CPU time in nanoseconds.
pub(crate) fn self_rusage() -> (u64, u64) {
    // SAFETY: zeroed rusage is valid, getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid out-parameter for this process's usage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    (ns(ru.ru_utime), ns(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasload_protocol::monitor::{ContainerList, decode};

    /// A monitor (cgroupfs backend) over an empty cgroup v2 tree in a temp dir.
    fn monitor(dir: &std::path::Path) -> Arc<Monitor> {
        let mountinfo = format!(
            "30 1 0:26 / {} rw,relatime shared:4 - cgroup2 cgroup2 rw\n",
            dir.display()
        );
        let layout =
            faasload_cgroup::Layout::from_mountinfo(&mountinfo, Some(faasload_cgroup::Version::V2))
                .unwrap();
        let cfg = super::super::config::MonitorConfig {
            backend: Backend::Cgroupfs,
            docker_socket: None,
            patterns: vec![super::super::config::Pattern {
                kind: "test".into(),
                regex: "^faasload/(?P<id>c[0-9]+)$".into(),
            }],
            ..Default::default()
        };
        Arc::new(Monitor::new(cfg, layout, None).unwrap())
    }

    async fn ask(m: &Arc<Monitor>, sock: Socket, req: &str) -> Answer {
        handle(m, sock, serde_json::from_str(req).unwrap()).await
    }

    fn bad_requests(m: &Monitor) -> u64 {
        m.stats.bad_requests.load(Ordering::Relaxed)
    }

    #[tokio::test]
    async fn bad_requests_are_counted_by_type_not_by_answer() {
        let dir = tempfile::tempdir().unwrap();
        let m = monitor(dir.path());
        // Well-formed requests about things the monitor does not know: answered with an
        // error, but not bad requests.
        for (sock, req, code) in [
            (
                Socket::Query,
                r#"{"type":"activation","activation_id":"nope"}"#,
                ErrorCode::NotFound,
            ),
            (
                Socket::Query,
                r#"{"type":"window","container":"nope","start":1,"end":2}"#,
                ErrorCode::NotFound,
            ),
            (
                Socket::Notify,
                r#"{"action":"pause","container":"nope","ack":true}"#,
                ErrorCode::NotFound,
            ),
            (
                Socket::Notify,
                r#"{"action":"run","container":"nope"}"#,
                ErrorCode::NotFound,
            ),
        ] {
            let a = ask(&m, sock, req).await;
            let e = decode::<Ack>(a.body.as_deref().unwrap()).unwrap_err();
            assert_eq!(e.code(), Some(code), "{req}");
        }
        assert_eq!(bad_requests(&m), 0);
        assert_eq!(m.stats.unknown_container.load(Ordering::Relaxed), 1);
        // Unknown fields are tolerated: not bad either.
        let a = ask(&m, Socket::Query, r#"{"type":"hello","pad":[1,2]}"#).await;
        let h: Hello = decode(a.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            (h.protocol, h.backend),
            (PROTOCOL_VERSION, wire::Backend::Cgroupfs)
        );
        let a = ask(&m, Socket::Query, r#"{"type":"containers"}"#).await;
        let l: ContainerList = decode(a.body.as_deref().unwrap()).unwrap();
        assert!(l.containers.is_empty());
        assert_eq!(bad_requests(&m), 0);
        // Bad requests, each counted once, whatever their code.
        let wrong = [
            (Socket::Query, r#"{"type":"nope"}"#, ErrorCode::UnknownType),
            (Socket::Query, r#"{"what":1}"#, ErrorCode::UnknownRequest),
            (Socket::Notify, "[1]", ErrorCode::BadRequest),
            (
                Socket::Notify,
                r#"{"action":"explode","container":"x"}"#,
                ErrorCode::UnknownAction,
            ),
            (
                Socket::Query,
                r#"{"type":"attribute","namespace":"g","name":"a","start":2,"end":1}"#,
                ErrorCode::BadRequest,
            ),
        ];
        for (i, (sock, req, code)) in wrong.iter().enumerate() {
            let a = ask(&m, *sock, req).await;
            let e = decode::<Ack>(a.body.as_deref().unwrap()).unwrap_err();
            assert_eq!(e.code(), Some(*code), "{req}");
            assert!(matches!(a.after, After::Continue));
            assert_eq!(bad_requests(&m), i as u64 + 1, "{req}");
        }
        // The FaaSLoad query: a bad one is counted and closes the connection.
        let a = ask(&m, Socket::Query, r#"{"container":"c","start":1}"#).await;
        assert!(matches!(a.after, After::Close));
        assert_eq!(bad_requests(&m), wrong.len() as u64 + 1);
        let a = bad(&m, &RequestError::Truncated);
        assert_eq!(
            a.body.as_deref(),
            Some(r#"{"code":"bad_request","error":"truncated JSON request"}"#)
        );
        let stats: Stats = decode(&wire::encode(&stats(&m)).unwrap()).unwrap();
        assert_eq!(stats.bad_requests, wrong.len() as u64 + 2);
        assert_eq!(stats.kernel, None);
    }

    #[tokio::test]
    async fn notifications_and_the_original_query() {
        let dir = tempfile::tempdir().unwrap();
        let m = monitor(dir.path());
        std::fs::create_dir_all(dir.path().join("faasload/c1")).unwrap();
        // The original notification: no ack, no answer; the container is found.
        let a = ask(
            &m,
            Socket::Notify,
            r#"{"action": "run", "container": "c1"}"#,
        )
        .await;
        assert!(a.body.is_none() && matches!(a.after, After::Continue));
        let a = ask(
            &m,
            Socket::Notify,
            r#"{"action":"pause","container":"c1","ack":true}"#,
        )
        .await;
        assert_eq!(a.body.as_deref(), Some(r#"{"ok":true}"#));
        let a = ask(&m, Socket::Query, r#"{"type":"containers"}"#).await;
        let l: ContainerList = decode(a.body.as_deref().unwrap()).unwrap();
        assert_eq!(l.containers.len(), 1);
        assert_eq!(l.containers[0].id, "c1");
        assert_eq!(l.containers[0].state, ContainerState::Paused);
        // The original query: its sample list (no counters in this fake tree), then close.
        let a = ask(
            &m,
            Socket::Query,
            r#"{"container": "c1", "start": 0, "end": 9999999999}"#,
        )
        .await;
        assert!(matches!(a.after, After::Close));
        let body = a.body.unwrap();
        let list: Vec<OriginalSample> = decode(&body).unwrap();
        assert!(!list.is_empty(), "{body}");
        assert!(body.starts_with(r#"[{"cpu":null,"date":"#), "{body}");
        let a = ask(
            &m,
            Socket::Query,
            r#"{"container": "nope", "start": 1, "end": 2}"#,
        )
        .await;
        assert!(matches!(a.after, After::Close));
        assert_eq!(
            a.body.as_deref(),
            Some(r#"{"code":"not_found","error":"unknown container nope"}"#)
        );
        // An activation between notified boundaries, then its summary.
        for req in [
            r#"{"action":"activation_start","container":"c1","activation_id":"a1","ack":true}"#,
            r#"{"action":"activation_end","container":"c1","activation_id":"a1","ack":true}"#,
        ] {
            let a = ask(&m, Socket::Notify, req).await;
            assert_eq!(a.body.as_deref(), Some(r#"{"ok":true}"#));
        }
        let a = ask(
            &m,
            Socket::Query,
            r#"{"type":"activation","activation_id":"a1"}"#,
        )
        .await;
        let s: wire::ActivationSummary = decode(a.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            (s.activation_id.as_str(), s.container.as_str()),
            ("a1", "c1")
        );
        assert_eq!(s.backend, wire::Backend::Cgroupfs);
        assert_eq!(bad_requests(&m), 0);
    }
}
