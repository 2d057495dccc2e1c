//! Optional Prometheus endpoint (`/metrics`, loopback only): per-container CPU and memory
//! from the latest sample, and the monitor's own cost (its CPU time, late ticks, kernel
//! counters, BPF run time per program).
//!
//! The metrics are gathered as [`Family`] values (name, help, type, unit, samples) and
//! rendered from them, so every family has its `# HELP` and `# TYPE` lines and its samples
//! together: as OpenMetrics 1.0 to a scraper that asks for it (`Accept:
//! application/openmetrics-text`: counters typed under their name without `_total`, units,
//! `# EOF`), else as the Prometheus text format 0.0.4 (counters typed under their
//! `_total` sample name), lint-clean for `promtool check metrics`.
use std::fmt::Write;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::{Router, extract::State, routing::get};

use super::ebpf::COUNTER_NAMES;
use super::protocol::self_rusage;
use super::state::Monitor;

/// Serves until the task is cancelled.
pub(crate) async fn serve(
    m: Arc<Monitor>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    let app = Router::new().route("/metrics", get(render)).with_state(m);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The content type of each exposition format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn render(
    State(m): State<Arc<Monitor>>,
    headers: HeaderMap,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let families = families(&m);
    if wants_openmetrics(&headers) {
        ([(CONTENT_TYPE, OPENMETRICS)], openmetrics(&families))
    } else {
        ([(CONTENT_TYPE, PROMETHEUS)], prometheus(&families))
    }
}

/// Whether the scraper accepts OpenMetrics (Prometheus asks for it first).
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

/// The type of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
}

/// One metric family: its samples, each with its labels (`(name, value)` pairs).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Family {
    /// The family's name: for a counter without `_total` (its samples add it), ending
    /// with its unit when it has one.
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// `seconds`, `bytes`, ...
    pub unit: Option<&'static str>,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn new(name: &'static str, kind: Kind, unit: Option<&'static str>, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind,
            unit,
            samples: Vec::new(),
        }
    }

    fn sample(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push((labels, value));
    }

    /// The name of its samples.
    fn sample_name(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            Kind::Gauge => self.name.to_string(),
        }
    }
}

/// A label value, escaped (backslash, double quote, newline).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The samples of `f`, one line each.
fn samples(o: &mut String, f: &Family) {
    let name = f.sample_name();
    for (labels, v) in &f.samples {
        o.push_str(&name);
        if !labels.is_empty() {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
                .collect();
            let _ = write!(o, "{{{}}}", l.join(","));
        }
        let _ = writeln!(o, " {v}");
    }
}

/// The Prometheus text format 0.0.4: `# HELP` and `# TYPE` under the samples' name.
pub(crate) fn prometheus(families: &[Family]) -> String {
    let mut o = String::new();
    for f in families {
        let name = f.sample_name();
        let _ = writeln!(o, "# HELP {name} {}", f.help);
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(o, "# TYPE {name} {kind}");
        samples(&mut o, f);
    }
    o
}

/// OpenMetrics 1.0: `# TYPE`, `# UNIT` and `# HELP` under the family's name, then `# EOF`.
pub(crate) fn openmetrics(families: &[Family]) -> String {
    let mut o = String::new();
    for f in families {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(o, "# TYPE {} {kind}", f.name);
        if let Some(u) = f.unit {
            let _ = writeln!(o, "# UNIT {} {u}", f.name);
        }
        let _ = writeln!(o, "# HELP {} {}", f.name, f.help);
        samples(&mut o, f);
    }
    o.push_str("# EOF\n");
    o
}

/// Every family, from the monitor's state now.
pub(crate) fn families(m: &Monitor) -> Vec<Family> {
    let mut cpu = Family::new(
        "faasload_container_cpu_seconds",
        Kind::Counter,
        Some("seconds"),
        "CPU time of the container.",
    );
    let mut mem = Family::new(
        "faasload_container_memory_bytes",
        Kind::Gauge,
        Some("bytes"),
        "Memory charged to the container.",
    );
    for c in m.containers() {
        let now = faasload_os::clock::epoch_ns();
        let last = m
            .samples(&c, now.saturating_sub(5_000_000_000), now)
            .last()
            .copied();
        let Some(s) = last else { continue };
        let labels = || vec![("id", c.id.clone()), ("kind", c.kind.clone())];
        if let Some(ns) = s.cpu() {
            cpu.sample(labels(), ns as f64 / 1e9);
        }
        if let Some(b) = s.mem() {
            mem.sample(labels(), b as f64);
        }
    }
    let (u, s) = self_rusage();
    let mut own = Family::new(
        "faasload_monitor_cpu_seconds",
        Kind::Counter,
        Some("seconds"),
        "CPU time of the monitor itself.",
    );
    own.sample(vec![("mode", "user".into())], u as f64 / 1e9);
    own.sample(vec![("mode", "system".into())], s as f64 / 1e9);
    let mut late = Family::new(
        "faasload_monitor_late_ticks",
        Kind::Counter,
        None,
        "Sampling ticks that came late.",
    );
    late.sample(
        Vec::new(),
        m.stats
            .late_ticks
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    let mut out = vec![cpu, mem, own, late];
    if let Some(k) = &m.kernel {
        let c = k.counters();
        let mut events = Family::new(
            "faasload_bpf_events",
            Kind::Counter,
            None,
            "Kernel-side activity and drops of the monitor's BPF programs, by counter (stats_lost_ns counts nanoseconds, the others events).",
        );
        for (i, name) in COUNTER_NAMES {
            events.sample(vec![("counter", name.to_string())], c[i as usize] as f64);
        }
        let mut run_time = Family::new(
            "faasload_bpf_run_seconds",
            Kind::Counter,
            Some("seconds"),
            "Kernel BPF run time per program (needs bpf_stats).",
        );
        let mut runs = Family::new(
            "faasload_bpf_runs",
            Kind::Counter,
            None,
            "Kernel BPF runs per program (needs bpf_stats).",
        );
        for p in k.program_stats() {
            run_time.sample(
                vec![("program", p.name.clone())],
                p.run_time_ns as f64 / 1e9,
            );
            runs.sample(vec![("program", p.name)], p.run_count as f64);
        }
        out.extend([events, run_time, runs]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Families like the monitor's: several samples per family, labels to escape.
    fn sample_families() -> Vec<Family> {
        let mut cpu = Family::new(
            "faasload_container_cpu_seconds",
            Kind::Counter,
            Some("seconds"),
            "CPU time of the container.",
        );
        cpu.sample(
            vec![("id", "a\"b\\c".into()), ("kind", "docker".into())],
            1.5,
        );
        cpu.sample(vec![("id", "d".into()), ("kind", "docker".into())], 0.25);
        let mut mem = Family::new(
            "faasload_container_memory_bytes",
            Kind::Gauge,
            Some("bytes"),
            "Memory charged to the container.",
        );
        mem.sample(vec![("id", "d".into()), ("kind", "docker".into())], 4096.0);
        let mut t = Family::new(
            "faasload_bpf_run_seconds",
            Kind::Counter,
            Some("seconds"),
            "x.",
        );
        let mut n = Family::new("faasload_bpf_runs", Kind::Counter, None, "y.");
        for p in ["sched_switch", "cgroup_mkdir"] {
            t.sample(vec![("program", p.into())], 0.001);
            n.sample(vec![("program", p.into())], 12.0);
        }
        let mut late = Family::new("faasload_monitor_late_ticks", Kind::Counter, None, "z.");
        late.sample(Vec::new(), 0.0);
        vec![cpu, mem, t, n, late]
    }

    /// The exposition rules a parser or promtool enforce, checked on `text`: every
    /// sample's family was declared (TYPE and HELP) before it, a family's samples are
    /// together, counters' samples end in `_total`, no name carries its type.
    fn check(text: &str, om: bool) {
        let mut declared: Vec<(String, String)> = Vec::new(); // (family, type)
        let mut helped: Vec<String> = Vec::new();
        let mut seen_samples: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        let lines: Vec<&str> = text.lines().collect();
        if om {
            assert_eq!(lines.last(), Some(&"# EOF"), "{text}");
        }
        for l in &lines {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap();
                assert!(
                    !declared.iter().any(|(n, _)| n == name),
                    "{name} declared twice"
                );
                declared.push((name.into(), ty.into()));
                current = Some(name.into());
            } else if let Some(rest) = l.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(!help.is_empty());
                helped.push(name.into());
            } else if l.starts_with("# UNIT ") || *l == "# EOF" {
            } else {
                let name = l.split(['{', ' ']).next().unwrap();
                let family = current.clone().expect("a sample before any TYPE");
                let (_, ty) = declared.iter().find(|(n, _)| *n == family).unwrap();
                let want = if om && ty == "counter" {
                    format!("{family}_total")
                } else {
                    family.clone()
                };
                assert_eq!(
                    name, want,
                    "sample of another family under {family}:\n{text}"
                );
                if seen_samples.last() != Some(&family) {
                    assert!(
                        !seen_samples.contains(&family),
                        "samples of {family} interleave with another family:\n{text}"
                    );
                    seen_samples.push(family.clone());
                }
                if ty == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                }
            }
        }
        for (n, _) in &declared {
            assert!(helped.contains(n), "{n} has no HELP:\n{text}");
            assert!(!n.contains("_counter"), "{n} carries its type in its name");
        }
    }

    #[test]
    fn both_formats_follow_the_exposition_rules() {
        let f = sample_families();
        let prom = prometheus(&f);
        check(&prom, false);
        assert!(prom.contains("# TYPE faasload_container_cpu_seconds_total counter\n"));
        assert!(prom.contains(
            "faasload_container_cpu_seconds_total{id=\"a\\\"b\\\\c\",kind=\"docker\"} 1.5\n"
        ));
        let om = openmetrics(&f);
        check(&om, true);
        assert!(om.contains("# TYPE faasload_container_cpu_seconds counter\n# UNIT faasload_container_cpu_seconds seconds\n"));
        assert!(om.contains("faasload_bpf_runs_total{program=\"cgroup_mkdir\"} 12\n"));
    }

    #[test]
    fn a_scraper_asking_for_openmetrics_gets_it() {
        let mut h = HeaderMap::new();
        assert!(!wants_openmetrics(&h));
        h.insert(
            ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
                .parse()
                .unwrap(),
        );
        assert!(wants_openmetrics(&h));
    }
}
