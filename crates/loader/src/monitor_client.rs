//! Asks the monitor (its query socket) what an activation cost: the `activation`
//! request, and the samples of its window for the original `resources` table. When the
//! monitor is absent or fails, the reading says why (the run goes on; the caller warns
//! once).
//!
//! When the platform does not notify the monitor (an unpatched OpenWhisk), the monitor
//! does not know activation ids: the client then asks the monitor to attribute the
//! activation by namespace, action and the record's start/end (`attribute` request).
//! `FAASLOAD_MONITOR_ATTRIBUTION` chooses: `auto` (default: by id, else attribution; after
//! one activation unknown by id and attributed, later ones skip the wait by id), `window`
//! (attribution only) or `notify` (by id only).
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use faasload_protocol::record::ActivationRecord;
use faasload_results::store::MonitorReading;

/// Attribution modes (see the module doc).
const AUTO: u8 = 0;
const WINDOW: u8 = 1;
const NOTIFY: u8 = 2;
/// `auto` after the platform was found silent.
const SILENT: u8 = 3;

/// A client of the monitor's query socket.
#[derive(Clone, Debug)]
pub struct MonitorClient {
    socket: PathBuf,
    /// How long the monitor may take to see the activation's end.
    wait: Duration,
    /// Also fetch the samples of the activation's window.
    samples: bool,
    /// Attribution mode (shared by clones).
    mode: Arc<AtomicU8>,
}

impl MonitorClient {
    /// A client of `socket`.
    pub fn new(socket: PathBuf, wait: Duration, samples: bool) -> MonitorClient {
        let mode = match std::env::var("FAASLOAD_MONITOR_ATTRIBUTION").as_deref() {
            Ok("window") => WINDOW,
            Ok("notify") => NOTIFY,
            _ => AUTO,
        };
        MonitorClient {
            socket,
            wait,
            samples,
            mode: Arc::new(AtomicU8::new(mode)),
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &PathBuf {
        &self.socket
    }

    async fn request(&self, req: &Value) -> Result<Value, String> {
        let io = async {
            let s = UnixStream::connect(&self.socket).await?;
            let (rd, mut wr) = s.into_split();
            let mut line = req.to_string().into_bytes();
            line.push(b'\n');
            wr.write_all(&line).await?;
            let mut answer = String::new();
            BufReader::new(rd).read_line(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = tokio::time::timeout(self.wait + Duration::from_secs(5), io)
            .await
            .map_err(|_| format!("monitor at {} did not answer", self.socket.display()))?
            .map_err(|e| format!("monitor at {}: {e}", self.socket.display()))?;
        let v: Value = serde_json::from_str(&answer)
            .map_err(|e| format!("monitor answered {answer:?}: {e}"))?;
        if let Some(err) = v.get("error").and_then(Value::as_str) {
            return Err(format!("monitor: {err}"));
        }
        Ok(v)
    }

    /// What the monitor measured for the activation of `rec`: by its id, or attributed by
    /// namespace, action and time window when the platform does not notify the monitor.
    pub async fn reading_for(&self, rec: &ActivationRecord) -> MonitorReading {
        let mode = self.mode.load(Ordering::Relaxed);
        if mode == WINDOW {
            return self.attributed(rec).await;
        }
        let wait = if mode == SILENT {
            Duration::ZERO
        } else {
            self.wait
        };
        let r = self.reading_wait(&rec.activation_id, wait).await;
        let unknown = r
            .missing
            .as_deref()
            .is_some_and(|m| m.contains("unknown activation"));
        if mode == NOTIFY || !unknown {
            return r;
        }
        let a = self.attributed(rec).await;
        if a.missing.is_none() && mode == AUTO {
            self.mode.store(SILENT, Ordering::Relaxed);
        }
        a
    }

    /// The monitor's attribution of `rec` to a container (the `attribute` request).
    async fn attributed(&self, rec: &ActivationRecord) -> MonitorReading {
        let req = json!({
            "type": "attribute",
            "namespace": rec.namespace,
            "name": rec.name,
            "kind": rec.kind,
            "cold": rec.init_ms.is_some(),
            "start": rec.start_ms as f64 / 1000.0,
            "end": rec.end_ms as f64 / 1000.0,
            "wait_ms": self.wait.as_millis() as u64,
        });
        let v = match self.request(&req).await {
            Ok(v) => v,
            Err(e) => {
                return MonitorReading {
                    missing: Some(e),
                    ..Default::default()
                };
            }
        };
        if v["status"] != "attributed" {
            let names: Vec<&str> = v["candidates"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["busy"] == true)
                .filter_map(|c| c["container"].as_str())
                .collect();
            return MonitorReading {
                missing: Some(format!(
                    "monitor attribution {}: busy candidates [{}]",
                    v["status"].as_str().unwrap_or("failed"),
                    names.join(", ")
                )),
                ..Default::default()
            };
        }
        let u = |k: &str| v.get(k).and_then(Value::as_u64);
        MonitorReading {
            cpu_ns: u("cpu_ns"),
            mem_peak_bytes: u("mem_peak_bytes"),
            mem_avg_bytes: u("mem_avg_bytes"),
            container: v["container"].as_str().map(str::to_string),
            ..Default::default()
        }
    }

    /// What the monitor measured for `activation_id`.
    pub async fn reading(&self, activation_id: &str) -> MonitorReading {
        self.reading_wait(activation_id, self.wait).await
    }

    async fn reading_wait(&self, activation_id: &str, wait: Duration) -> MonitorReading {
        let req = json!({
            "type": "activation",
            "activation_id": activation_id,
            "wait_ms": wait.as_millis() as u64,
        });
        let s = match self.request(&req).await {
            Ok(s) => s,
            Err(e) => {
                return MonitorReading {
                    missing: Some(e),
                    ..Default::default()
                };
            }
        };
        let u = |k: &str| s.get(k).and_then(Value::as_u64);
        let c = |k: &str| s["counters"].get(k).and_then(Value::as_u64);
        let mut r = MonitorReading {
            cpu_ns: u("cpu_ns"),
            cpu_user_ns: u("cpu_user_ns"),
            cpu_sys_ns: u("cpu_sys_ns"),
            mem_peak_bytes: u("mem_peak_bytes"),
            mem_avg_bytes: u("mem_avg_bytes"),
            nvcsw: c("nvcsw"),
            nivcsw: c("nivcsw"),
            wakeups: c("wakeups"),
            migrations: c("migrations"),
            pgfault: c("pgfault"),
            pgmajfault: c("pgmajfault"),
            container: s
                .get("container")
                .and_then(Value::as_str)
                .map(str::to_string),
            samples: Vec::new(),
            missing: None,
        };
        if self.samples
            && let (Some(container), Some(start), Some(end)) =
                (&r.container, s["start"].as_f64(), s["end"].as_f64())
        {
            let req =
                json!({"type": "samples", "container": container, "start": start, "end": end});
            if let Ok(v) = self.request(&req).await {
                r.samples = v["samples"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .map(|x| {
                                (
                                    (x["date"].as_f64().unwrap_or(0.0) * 1000.0) as u64,
                                    x["memory_bytes"].as_u64(),
                                    x["cpu_ns"].as_u64(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            }
        }
        r
    }
}
