//! Asks the monitor (its query socket) what an activation cost: the `activation`
//! request, and the samples of its window for the original `resources` table. When the
//! monitor is absent or fails, the reading says why (the run goes on; the caller warns
//! once).
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::store::MonitorReading;

/// A client of the monitor's query socket.
#[derive(Clone, Debug)]
pub struct MonitorClient {
    socket: PathBuf,
    /// How long the monitor may take to see the activation's end.
    wait: Duration,
    /// Also fetch the samples of the activation's window.
    samples: bool,
}

impl MonitorClient {
    /// A client of `socket`.
    pub fn new(socket: PathBuf, wait: Duration, samples: bool) -> MonitorClient {
        MonitorClient {
            socket,
            wait,
            samples,
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

    /// What the monitor measured for `activation_id`.
    pub async fn reading(&self, activation_id: &str) -> MonitorReading {
        let req = json!({
            "type": "activation",
            "activation_id": activation_id,
            "wait_ms": self.wait.as_millis() as u64,
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
