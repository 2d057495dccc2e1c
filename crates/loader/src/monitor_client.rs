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

use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use faasload_protocol::monitor::{
    ActivationQuery, ActivationSummary, AttributeQuery, Attribution, AttributionOutcome, ErrorCode,
    Query, ReplyError, SamplesAnswer, WindowQuery, decode,
};
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

/// Why a request to the monitor gave no answer of the expected type.
#[derive(Debug, thiserror::Error)]
enum AskError {
    /// The socket could not be reached or did not answer in time.
    #[error("{0}")]
    Io(String),
    /// The monitor answered with an error, or with something else than expected.
    #[error(transparent)]
    Reply(#[from] ReplyError),
}

impl AskError {
    fn code(&self) -> Option<ErrorCode> {
        match self {
            AskError::Io(_) => None,
            AskError::Reply(r) => r.code(),
        }
    }
}

/// A reading with nothing but why it is missing.
fn missing(why: impl ToString) -> MonitorReading {
    MonitorReading {
        missing: Some(why.to_string()),
        ..Default::default()
    }
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

    /// One query on a fresh connection, its one-line answer read as `T`.
    async fn ask<T: DeserializeOwned>(&self, q: &Query) -> Result<T, AskError> {
        let mut line =
            serde_json::to_vec(q).map_err(|e| AskError::Io(format!("cannot encode {q:?}: {e}")))?;
        line.push(b'\n');
        let io = async {
            let s = UnixStream::connect(&self.socket).await?;
            let (rd, mut wr) = s.into_split();
            wr.write_all(&line).await?;
            let mut answer = String::new();
            BufReader::new(rd).read_line(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = tokio::time::timeout(self.wait + Duration::from_secs(5), io)
            .await
            .map_err(|_| {
                AskError::Io(format!(
                    "monitor at {} did not answer",
                    self.socket.display()
                ))
            })?
            .map_err(|e| AskError::Io(format!("monitor at {}: {e}", self.socket.display())))?;
        Ok(decode(&answer)?)
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
        let summary = self.summary(&rec.activation_id, wait).await;
        // Unknown by id (not pending, not failed): the platform did not notify it.
        let unknown = matches!(&summary, Err(e) if e.code() == Some(ErrorCode::NotFound));
        if mode == NOTIFY || !unknown {
            return match summary {
                Ok(s) => self.reading_of(&s).await,
                Err(e) => missing(e),
            };
        }
        let a = self.attributed(rec).await;
        if a.missing.is_none() && mode == AUTO {
            self.mode.store(SILENT, Ordering::Relaxed);
        }
        a
    }

    /// The monitor's attribution of `rec` to a container (the `attribute` request).
    async fn attributed(&self, rec: &ActivationRecord) -> MonitorReading {
        let q = Query::Attribute(AttributeQuery {
            namespace: rec.namespace.clone(),
            name: rec.name.clone(),
            start: rec.start_ms as f64 / 1000.0,
            end: rec.end_ms as f64 / 1000.0,
            kind: rec.kind.clone(),
            cold: Some(rec.init_ms.is_some()),
            min_busy_us: None,
            wait_ms: Some(self.wait.as_millis() as u64),
        });
        let a: Attribution = match self.ask(&q).await {
            Ok(a) => a,
            Err(e) => return missing(e),
        };
        match a.outcome {
            AttributionOutcome::Attributed {
                container,
                cpu_ns,
                mem_peak_bytes,
                mem_avg_bytes,
                ..
            } => MonitorReading {
                cpu_ns: Some(cpu_ns),
                mem_peak_bytes,
                mem_avg_bytes,
                container: Some(container),
                ..Default::default()
            },
            AttributionOutcome::Ambiguous | AttributionOutcome::Unattributed => {
                let status = if a.outcome == AttributionOutcome::Ambiguous {
                    "ambiguous"
                } else {
                    "none"
                };
                missing(format!(
                    "monitor attribution {status}: busy candidates [{}]",
                    a.busy().collect::<Vec<_>>().join(", ")
                ))
            }
        }
    }

    /// The monitor's summary of `activation_id`, waiting up to `wait` for its end.
    async fn summary(
        &self,
        activation_id: &str,
        wait: Duration,
    ) -> Result<ActivationSummary, AskError> {
        let q = Query::Activation(ActivationQuery {
            activation_id: activation_id.to_string(),
            wait_ms: Some(wait.as_millis() as u64),
        });
        self.ask(&q).await
    }

    /// A summary as a reading, with the samples of its window if asked.
    async fn reading_of(&self, s: &ActivationSummary) -> MonitorReading {
        let c = &s.counters;
        let mut r = MonitorReading {
            cpu_ns: s.cpu_ns,
            cpu_user_ns: s.cpu_user_ns,
            cpu_sys_ns: s.cpu_sys_ns,
            mem_peak_bytes: s.mem_peak_bytes,
            mem_avg_bytes: s.mem_avg_bytes,
            nvcsw: c.nvcsw,
            nivcsw: c.nivcsw,
            wakeups: c.wakeups,
            migrations: c.migrations,
            pgfault: c.pgfault,
            pgmajfault: c.pgmajfault,
            init_cpu_ns: s.init.as_ref().and_then(|i| i.cpu_ns),
            init_mem_peak_bytes: s.init.as_ref().and_then(|i| i.mem_peak_bytes),
            container: Some(s.container.clone()),
            samples: Vec::new(),
            missing: None,
        };
        if self.samples {
            let q = Query::Samples(WindowQuery {
                container: s.container.clone(),
                start: s.start,
                end: s.end,
            });
            match self.ask::<SamplesAnswer>(&q).await {
                Ok(a) => {
                    r.samples = a
                        .samples
                        .iter()
                        .map(|x| ((x.date * 1000.0) as u64, x.memory_bytes, x.cpu_ns))
                        .collect();
                }
                Err(e) => tracing::debug!("samples of activation {}: {e}", s.activation_id),
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use faasload_protocol::monitor::{
        ActivationCounters, Backend, Candidate, ErrorAnswer, Hardware, InitSummary, MemPeakSource,
        Reply, Request, SampleEntry, Socket, encode,
    };
    use tokio::net::UnixListener;

    use super::*;

    fn summary() -> ActivationSummary {
        ActivationSummary {
            activation_id: "a1".into(),
            container: "c1".into(),
            start: 1700000000.25,
            end: 1700000000.5,
            cpu_ns: Some(67_308_900),
            cpu_user_ns: Some(60_000_000),
            cpu_sys_ns: Some(4_000_000),
            mem_peak_bytes: Some(4_292_608),
            mem_peak_source: MemPeakSource::Counter,
            mem_avg_bytes: Some(1_855_247),
            samples: 17,
            counters: ActivationCounters {
                nvcsw: Some(1),
                nivcsw: Some(13),
                wakeups: Some(2),
                migrations: Some(0),
                pgfault: Some(1093),
                pgmajfault: Some(0),
            },
            hardware: Hardware {
                available: false,
                reason: Some("no PMU".into()),
            },
            backend: Backend::Ebpf,
            oom_killed: false,
            init: Some(InitSummary {
                end: 1700000000.4,
                cpu_ns: Some(40_000_000),
                cpu_user_ns: Some(30_000_000),
                cpu_sys_ns: Some(10_000_000),
                mem_peak_bytes: Some(3_000_000),
            }),
        }
    }

    fn record() -> ActivationRecord {
        ActivationRecord {
            activation_id: "a1".into(),
            namespace: "guest".into(),
            name: "act".into(),
            start_ms: 1700000000250,
            end_ms: 1700000000500,
            duration_ms: 250,
            status: "success".into(),
            success: true,
            result: serde_json::json!({}),
            wait_ms: None,
            init_ms: None,
            kind: Some("python:3".into()),
            timeout: false,
            memory_mb: Some(256),
            logs: vec![],
        }
    }

    /// A fake monitor on a temp socket: answers each request with `answer(request)`
    /// (a line as the monitor writes it) and records the requests.
    fn fake(
        dir: &tempfile::TempDir,
        answer: impl Fn(&Request) -> String + Send + 'static,
    ) -> (PathBuf, Arc<Mutex<Vec<Request>>>) {
        let path = dir.path().join("q.sock");
        let l = UnixListener::bind(&path).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let (rd, mut wr) = s.into_split();
                let mut line = String::new();
                BufReader::new(rd).read_line(&mut line).await.unwrap();
                let req = Request::parse_str(&line, Socket::Query).unwrap();
                let mut out = answer(&req).into_bytes();
                log.lock().unwrap().push(req);
                out.push(b'\n');
                wr.write_all(&out).await.unwrap();
            }
        });
        (path, seen)
    }

    #[tokio::test]
    async fn a_summary_is_read_whole_with_its_samples() {
        let dir = tempfile::tempdir().unwrap();
        let (path, seen) = fake(&dir, |r| match r {
            Request::Query(Query::Activation(_)) => {
                encode(&Reply::Activation(Arc::new(summary()))).unwrap()
            }
            Request::Query(Query::Samples(_)) => encode(&Reply::Samples(SamplesAnswer {
                container: "c1".into(),
                samples: vec![SampleEntry {
                    date: 1700000000.375,
                    cpu_ns: Some(5),
                    memory_bytes: Some(4096),
                    rss_mapped_bytes: None,
                }],
            }))
            .unwrap(),
            other => panic!("unexpected {other:?}"),
        });
        let c = MonitorClient::new(path, Duration::from_millis(300), true);
        let r = c.reading_for(&record()).await;
        assert_eq!(r.missing, None);
        assert_eq!(r.cpu_ns, Some(67_308_900));
        assert_eq!(r.mem_peak_bytes, Some(4_292_608));
        assert_eq!(
            (r.nivcsw, r.wakeups, r.pgfault),
            (Some(13), Some(2), Some(1093))
        );
        assert_eq!(r.container.as_deref(), Some("c1"));
        assert_eq!(
            (r.init_cpu_ns, r.init_mem_peak_bytes),
            (Some(40_000_000), Some(3_000_000))
        );
        assert_eq!(r.samples, vec![(1700000000375, Some(4096), Some(5))]);
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0],
            Request::Query(Query::Activation(ActivationQuery {
                activation_id: "a1".into(),
                wait_ms: Some(300)
            }))
        );
        assert!(
            matches!(&seen[1], Request::Query(Query::Samples(w)) if w.container == "c1" && w.start == 1700000000.25)
        );
    }

    #[tokio::test]
    async fn a_renamed_summary_field_is_reported_not_read_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = fake(&dir, |_| {
            encode(&Reply::Activation(Arc::new(summary())))
                .unwrap()
                .replace("\"cpu_ns\"", "\"cpu_nanos\"")
        });
        let c = MonitorClient::new(path, Duration::from_millis(100), false);
        let r = c.reading_for(&record()).await;
        assert_eq!(r.cpu_ns, None);
        let why = r
            .missing
            .expect("a summary without cpu_ns is not a reading");
        assert!(why.contains("cpu_ns"), "{why}");
    }

    #[tokio::test]
    async fn unknown_by_id_falls_back_to_attribution_then_skips_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (path, seen) = fake(&dir, |r| match r {
            Request::Query(Query::Activation(_)) => encode(&Reply::Error(ErrorAnswer::new(
                ErrorCode::NotFound,
                "unknown activation: a1",
            )))
            .unwrap(),
            Request::Query(Query::Attribute(q)) => encode(&Reply::Attribution(Attribution {
                method: faasload_protocol::monitor::AttributionMethod::NameBusy,
                namespace: q.namespace.clone(),
                name: "wsk0_3_guest_act".into(),
                start: q.start,
                end: q.end,
                resolution_ms: 10.0,
                min_busy_us: 100,
                candidates: vec![Candidate {
                    container: "c9".into(),
                    name: "wsk0_3_guest_act".into(),
                    busy_ns: Some(20_000_000),
                    busy: true,
                }],
                outcome: AttributionOutcome::Attributed {
                    container: "c9".into(),
                    cpu_ns: 20_000_000,
                    mem_peak_bytes: Some(1 << 20),
                    mem_avg_bytes: None,
                    samples: 3,
                },
            }))
            .unwrap(),
            other => panic!("unexpected {other:?}"),
        });
        let c = MonitorClient::new(path, Duration::from_millis(200), false);
        let r = c.reading_for(&record()).await;
        assert_eq!(r.missing, None);
        assert_eq!(
            (r.container.as_deref(), r.cpu_ns, r.mem_peak_bytes),
            (Some("c9"), Some(20_000_000), Some(1 << 20))
        );
        c.reading_for(&record()).await;
        let seen = seen.lock().unwrap();
        let Request::Query(Query::Attribute(q)) = &seen[1] else {
            panic!("{seen:?}")
        };
        assert_eq!(
            (q.kind.as_deref(), q.cold, q.start, q.wait_ms),
            (Some("python:3"), Some(false), 1700000000.25, Some(200))
        );
        // The platform is silent: the next activation is asked by id without waiting.
        assert!(
            matches!(&seen[2], Request::Query(Query::Activation(a)) if a.wait_ms == Some(0)),
            "{seen:?}"
        );
    }
}
