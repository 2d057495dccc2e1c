//! Optional Prometheus endpoint (`/metrics`, loopback only): per-container CPU and memory
//! from the latest sample, and the monitor's own cost (its CPU time, drops, kernel BPF
//! run time per program).
use std::fmt::Write;
use std::sync::Arc;

use axum::{Router, extract::State, routing::get};

use super::ebpf::COUNTER_NAMES;
use super::protocol::self_rusage;
use super::state::Monitor;

/// Serves until the task is cancelled.
pub async fn serve(m: Arc<Monitor>, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let app = Router::new().route("/metrics", get(render)).with_state(m);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn render(State(m): State<Arc<Monitor>>) -> ([(&'static str, &'static str); 1], String) {
    ([("content-type", "text/plain; version=0.0.4")], text(&m))
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The exposition text.
pub fn text(m: &Monitor) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# HELP faasload_container_cpu_seconds_total CPU time of the container."
    );
    let _ = writeln!(o, "# TYPE faasload_container_cpu_seconds_total counter");
    let mut mem = String::new();
    for c in m.containers() {
        let now = faasload_os::clock::epoch_ns();
        let last = m
            .samples(&c, now.saturating_sub(5_000_000_000), now)
            .last()
            .copied();
        let Some(s) = last else { continue };
        let labels = format!("id=\"{}\",kind=\"{}\"", esc(&c.id), esc(&c.kind));
        if let Some(cpu) = s.cpu() {
            let _ = writeln!(
                o,
                "faasload_container_cpu_seconds_total{{{labels}}} {}",
                cpu as f64 / 1e9
            );
        }
        if let Some(b) = s.mem() {
            let _ = writeln!(mem, "faasload_container_memory_bytes{{{labels}}} {b}");
        }
    }
    let _ = writeln!(
        o,
        "# HELP faasload_container_memory_bytes Memory charged to the container."
    );
    let _ = writeln!(o, "# TYPE faasload_container_memory_bytes gauge");
    o.push_str(&mem);
    let (u, s) = self_rusage();
    let _ = writeln!(
        o,
        "# HELP faasload_monitor_cpu_seconds_total CPU time of the monitor itself."
    );
    let _ = writeln!(o, "# TYPE faasload_monitor_cpu_seconds_total counter");
    let _ = writeln!(
        o,
        "faasload_monitor_cpu_seconds_total{{mode=\"user\"}} {}",
        u as f64 / 1e9
    );
    let _ = writeln!(
        o,
        "faasload_monitor_cpu_seconds_total{{mode=\"system\"}} {}",
        s as f64 / 1e9
    );
    let _ = writeln!(o, "# TYPE faasload_monitor_late_ticks_total counter");
    let _ = writeln!(
        o,
        "faasload_monitor_late_ticks_total {}",
        m.stats
            .late_ticks
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    if let Some(k) = &m.kernel {
        let c = k.counters();
        let _ = writeln!(
            o,
            "# HELP faasload_bpf_counter_total Kernel-side activity and drop counters."
        );
        let _ = writeln!(o, "# TYPE faasload_bpf_counter_total counter");
        for (i, name) in COUNTER_NAMES {
            let _ = writeln!(
                o,
                "faasload_bpf_counter_total{{counter=\"{name}\"}} {}",
                c[i as usize]
            );
        }
        let _ = writeln!(
            o,
            "# HELP faasload_bpf_run_seconds_total Kernel BPF run time per program (needs bpf_stats)."
        );
        let _ = writeln!(o, "# TYPE faasload_bpf_run_seconds_total counter");
        for p in k.program_stats() {
            let _ = writeln!(
                o,
                "faasload_bpf_run_seconds_total{{program=\"{}\"}} {}",
                p.name,
                p.run_time_ns as f64 / 1e9
            );
            let _ = writeln!(
                o,
                "faasload_bpf_runs_total{{program=\"{}\"}} {}",
                p.name, p.run_count
            );
        }
    }
    o
}
