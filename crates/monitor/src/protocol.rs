//! The socket protocol: what each request means and what it answers. Two sockets share
//! one framing (a JSON value per request, newline-separated or one per connection):
//! - notifications: the original FaaSLoad `{"action":"run|rm|pause|resume","container"}`
//!   plus `activation_start` / `activation_end` (`container`, `activation_id`); with
//!   `"ack": true` the monitor answers `{"ok":true}` once the boundary is recorded;
//! - queries: the original FaaSLoad `{"container","start","end"}` (answered with its
//!   sample list, then the connection closes, as the original did), and typed requests
//!   `{"type": "hello" | "activation" | "window" | "samples" | "containers" | "stats" |
//!   "subscribe" | "attribute"}` (`attribute`: see `attribution.rs`). Errors are `{"error": "<message>", "code": "<kind>"}`.
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use super::ebpf::COUNTER_NAMES;
use super::state::{Container, Monitor, Sample};

/// Protocol version announced by `hello`.
/// 2: adds `attribute` (activations without notifications) and names in `containers`.
pub const PROTOCOL_VERSION: u32 = 2;

/// What the connection does after a request.
pub enum After {
    /// Keep reading requests.
    Continue,
    /// Close after writing the answer (original FaaSLoad requests, fatal errors).
    Close,
    /// Switch to the subscription stream.
    Subscribe { samples: bool },
}

/// An answer: JSON text (without newline), or nothing (notifications without ack).
pub struct Answer {
    pub body: Option<String>,
    pub after: After,
}

impl Answer {
    fn json(v: Value, after: After) -> Answer {
        Answer {
            body: Some(v.to_string()),
            after,
        }
    }
    /// An error answer.
    pub fn error(msg: impl Into<String>, code: &str, after: After) -> Answer {
        Answer::json(json!({"error": msg.into(), "code": code}), after)
    }
}

/// Which socket a request came on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    Notify,
    Query,
}

fn secs_to_ns(v: &Value) -> Option<u64> {
    let f = v.as_f64()?;
    (f.is_finite() && f >= 0.0).then(|| (f * 1e9).round() as u64)
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// Handles one request.
pub async fn handle(m: &Arc<Monitor>, sock: Socket, req: Value) -> Answer {
    if !req.is_object() {
        m.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        return Answer::error("a request is a JSON object", "bad_request", After::Continue);
    }
    let answer = if let Some(action) = str_field(&req, "action") {
        notification(m, action, &req)
    } else if let Some(t) = str_field(&req, "type") {
        typed(m, t, &req).await
    } else if sock == Socket::Query && req.get("container").is_some() {
        original_query(m, &req)
    } else {
        Answer::error(
            "unknown request: expected \"action\", \"type\", or the FaaSLoad query {\"container\",\"start\",\"end\"}",
            "unknown_request",
            After::Continue,
        )
    };
    if answer
        .body
        .as_deref()
        .is_some_and(|b| b.starts_with("{\"code\"") || b.starts_with("{\"error\""))
    {
        m.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
    }
    answer
}

/// Finds a container, rescanning the cgroup tree once if it is not known yet.
fn find(m: &Monitor, id: &str) -> Option<Arc<Container>> {
    if let Some(c) = m.container(id) {
        return Some(c);
    }
    m.rescan();
    m.container(id)
}

fn notification(m: &Monitor, action: &str, req: &Value) -> Answer {
    let ack = req.get("ack").and_then(Value::as_bool).unwrap_or(false);
    let ok = |after| {
        if ack {
            Answer::json(json!({"ok": true}), after)
        } else {
            Answer { body: None, after }
        }
    };
    let Some(id) = str_field(req, "container") else {
        return Answer::error(
            "notification without \"container\"",
            "bad_request",
            After::Continue,
        );
    };
    match action {
        "run" => match find(m, id) {
            Some(_) => ok(After::Continue),
            None => {
                m.stats.unknown_container.fetch_add(1, Ordering::Relaxed);
                Answer::error(
                    format!("no cgroup found for container {id}"),
                    "not_found",
                    After::Continue,
                )
            }
        },
        "rm" => {
            m.remove(id);
            ok(After::Continue)
        }
        "pause" | "resume" => {
            if m.set_paused(id, action == "pause") {
                ok(After::Continue)
            } else {
                Answer::error(
                    format!("unknown container {id}"),
                    "not_found",
                    After::Continue,
                )
            }
        }
        "activation_start" | "activation_end" => {
            let Some(act) = str_field(req, "activation_id") else {
                return Answer::error(
                    "activation message without \"activation_id\"",
                    "bad_request",
                    After::Continue,
                );
            };
            let Some(c) = find(m, id) else {
                m.stats.unknown_container.fetch_add(1, Ordering::Relaxed);
                return Answer::error(
                    format!("unknown container {id}"),
                    "not_found",
                    After::Continue,
                );
            };
            if action == "activation_start" {
                m.activation_start(&c, act);
                ok(After::Continue)
            } else if m.activation_end(&c, act).is_some() {
                ok(After::Continue)
            } else {
                Answer::error(
                    format!("activation {act} ended but its start was never notified"),
                    "not_found",
                    After::Continue,
                )
            }
        }
        other => Answer::error(
            format!("unknown action {other:?}"),
            "unknown_action",
            After::Continue,
        ),
    }
}

/// The container and window (epoch ns) a request names, or the error answer.
fn window_of(m: &Monitor, req: &Value, after: After) -> Result<(Arc<Container>, u64, u64), Answer> {
    let (Some(id), Some(start), Some(end)) = (
        str_field(req, "container"),
        req.get("start").and_then(secs_to_ns),
        req.get("end").and_then(secs_to_ns),
    ) else {
        return Err(Answer::error(
            "expected {\"container\": string, \"start\": epoch seconds, \"end\": epoch seconds}",
            "bad_request",
            after,
        ));
    };
    match m.container(id) {
        Some(c) => Ok((c, start, end)),
        None => Err(Answer::error(
            format!("unknown container {id}"),
            "not_found",
            after,
        )),
    }
}

/// The original FaaSLoad query: samples in the window, CPU re-based to the first one.
fn original_query(m: &Monitor, req: &Value) -> Answer {
    let (c, start, end) = match window_of(m, req, After::Close) {
        Ok(w) => w,
        Err(a) => return a,
    };
    let samples = m.samples(&c, start, end);
    let base = samples.iter().find_map(Sample::cpu);
    let list: Vec<Value> = samples
        .iter()
        .map(|s| {
            json!({
                "date": s.t_ns as f64 / 1e9,
                "memory": s.rss_mapped(),
                "cpu": s.cpu().zip(base).map(|(c, b)| c.saturating_sub(b) as f64 / 1e9),
            })
        })
        .collect();
    Answer::json(Value::Array(list), After::Close)
}

async fn typed(m: &Arc<Monitor>, t: &str, req: &Value) -> Answer {
    match t {
        "hello" => Answer::json(
            json!({
                "type": "hello",
                "version": env!("CARGO_PKG_VERSION"),
                "protocol": PROTOCOL_VERSION,
                "backend": m.cfg.backend.to_string(),
                "cgroup": m.layout.version().to_string(),
                "interval_ms": m.cfg.interval_ms,
                "capabilities": ["faasload-query", "activation", "window", "samples", "containers", "stats", "subscribe", "ack", "attribute"],
                "hardware": m.hardware,
            }),
            After::Continue,
        ),
        "activation" => {
            let Some(id) = str_field(req, "activation_id") else {
                return Answer::error("expected \"activation_id\"", "bad_request", After::Continue);
            };
            let wait = req
                .get("wait_ms")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(60_000);
            let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
            loop {
                if let Some(s) = m.activation(id) {
                    return Answer::json(
                        serde_json::to_value(&*s).unwrap_or(Value::Null),
                        After::Continue,
                    );
                }
                if tokio::time::Instant::now() >= deadline {
                    let open = m.is_open(id);
                    let msg = if open {
                        "activation has not ended yet"
                    } else {
                        "unknown activation"
                    };
                    return Answer::error(
                        format!("{msg}: {id}"),
                        if open { "pending" } else { "not_found" },
                        After::Continue,
                    );
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        "window" | "samples" => {
            let (c, start, end) = match window_of(m, req, After::Continue) {
                Ok(w) => w,
                Err(a) => return a,
            };
            let s = m.samples(&c, start, end);
            if t == "samples" {
                let list: Vec<Value> = s
                    .iter()
                    .map(|s| json!({"date": s.t_ns as f64 / 1e9, "cpu_ns": s.cpu(), "memory_bytes": s.mem(), "rss_mapped_bytes": s.rss_mapped()}))
                    .collect();
                return Answer::json(json!({"container": c.id, "samples": list}), After::Continue);
            }
            let cpu = s
                .iter()
                .find_map(Sample::cpu)
                .zip(s.iter().rev().find_map(Sample::cpu))
                .map(|(a, b)| b.saturating_sub(a));
            let mems: Vec<u64> = s.iter().filter_map(Sample::mem).collect();
            Answer::json(
                json!({
                    "container": c.id,
                    "start": start as f64 / 1e9,
                    "end": end as f64 / 1e9,
                    "samples": s.len(),
                    "cpu_ns": cpu,
                    "mem_peak_bytes": mems.iter().max(),
                    "mem_avg_bytes": (!mems.is_empty()).then(|| mems.iter().sum::<u64>() / mems.len() as u64),
                    "resolution_ms": m.cfg.interval_ms,
                }),
                After::Continue,
            )
        }
        "containers" => {
            let mut list: Vec<Value> = m
                .containers()
                .iter()
                .map(|c| {
                    let mut v = serde_json::to_value(m.view(c)).unwrap_or(Value::Null);
                    if let Some(n) = m.names.get(&c.id) {
                        v["name"] = json!(n.name);
                        v["image"] = json!(n.image);
                        v["labels"] = json!(n.labels);
                        v["name_source"] = json!(n.source);
                        v["openwhisk"] = json!(n.openwhisk);
                    }
                    v
                })
                .collect();
            list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
            Answer::json(json!({"containers": list}), After::Continue)
        }
        "stats" => Answer::json(stats(m), After::Continue),
        "attribute" => {
            let v = super::attribution::attribute(m, req).await;
            Answer::json(v, After::Continue)
        }
        "subscribe" => Answer {
            body: Some(json!({"type": "subscribed"}).to_string()),
            after: After::Subscribe {
                samples: req.get("samples").and_then(Value::as_bool).unwrap_or(false),
            },
        },
        other => Answer::error(
            format!("unknown request type {other:?}"),
            "unknown_type",
            After::Continue,
        ),
    }
}

/// The monitor's own counters (drops included), as JSON.
pub fn stats(m: &Monitor) -> Value {
    let s = &m.stats;
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut kernel = serde_json::Map::new();
    let mut progs = Vec::new();
    let mut prog_ids = Vec::new();
    if let Some(k) = &m.kernel {
        prog_ids = k.program_ids();
        let c = k.counters();
        for (i, name) in COUNTER_NAMES {
            kernel.insert(name.to_string(), json!(c[i as usize]));
        }
        progs = k.program_stats().into_iter().map(|p| json!(p)).collect();
    }
    let ru = self_rusage();
    json!({
        "type": "stats",
        "backend": m.cfg.backend.to_string(),
        "containers": m.containers().len(),
        "samples": l(&s.samples),
        "sample_ticks": l(&s.sample_ticks),
        "late_ticks": l(&s.late_ticks),
        "activations": l(&s.activations),
        "activations_dropped": l(&s.activations_dropped),
        "unknown_container": l(&s.unknown_container),
        "bad_requests": l(&s.bad_requests),
        "refused_clients": l(&s.refused_clients),
        "events": l(&s.events),
        "events_undecodable": l(&s.events_undecodable),
        "stream_lagged": l(&s.stream_lagged),
        "kernel": kernel,
        "programs": progs,
        "program_ids": prog_ids,
        "self_cpu_user_ns": ru.0,
        "self_cpu_sys_ns": ru.1,
    })
}

/// This process's user and system CPU time in nanoseconds.
pub fn self_rusage() -> (u64, u64) {
    // SAFETY: zeroed rusage is valid, getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    (ns(ru.ru_utime), ns(ru.ru_stime))
}
