//! One activation, from an accepted invoke to its stored record: take a container from
//! the pool (warm, prewarm or cold), initialise it when new, notify the monitor, run with
//! the time limit, turn the answer (or its absence) into the record's response, store it
//! and give the container back (destroyed after a crash, timeout or init failure).
//!
//! Every way an activation can end without a usable answer is a [`Fault`]; it is mapped
//! once to the record's response, to whether the container is kept and to the `timeout`
//! annotation.
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::activations::{Activation, Response, Status};
use super::backend::Container;
use super::container::{Failure, InitFailure};
use super::entities::{Action, KeyVal, Limits};
use super::ids::now_ms;
use super::pool::{Lease, Request, Start};
use super::runtime;
use super::server::Platform;

/// An accepted invocation.
pub(crate) struct Job {
    pub action: Arc<Action>,
    pub params: Map<String, Value>,
    /// Invoking namespace and subject.
    pub namespace: String,
    pub subject: String,
    pub activation_id: String,
    pub transaction_id: String,
    /// Epoch ms when the controller received the request.
    pub received_ms: u64,
}

/// Merges parameters: package < action < invoke.
pub(crate) fn merge_params(
    action: &Action,
    invoke: Option<Map<String, Value>>,
) -> Map<String, Value> {
    let mut m = Map::new();
    for KeyVal { key, value } in action.package_params.iter().chain(&action.parameters) {
        m.insert(key.clone(), value.clone());
    }
    if let Some(inv) = invoke {
        m.extend(inv);
    }
    m
}

fn kv(key: &str, value: Value) -> KeyVal {
    KeyVal {
        key: key.into(),
        value,
    }
}

/// Why an activation has no usable answer from its action.
#[derive(Debug)]
enum Fault {
    /// No container: the pool is closed, or creating or preparing one failed.
    Provision,
    /// The runtime answered the initialisation with `{"error": ...}`.
    InitError(Value),
    /// The initialisation got no (valid) answer.
    Init(Failure),
    /// The run got no (valid) answer; an answer that is not JSON is a `BadOutput`.
    Run(Failure),
    /// The run answered JSON that is neither a dictionary nor an array.
    NotDictionary,
}

impl Fault {
    /// The record's response: OpenWhisk's status and message for this fault.
    fn response(&self, limits: &Limits, payload_max: usize) -> Response {
        let dev = |msg: &str| Response::error(Status::DeveloperError, msg);
        match self {
            Fault::Provision => Response::error(
                Status::InternalError,
                "Failed to provision resources to run the action.",
            ),
            Fault::InitError(e) => {
                Response::new(Status::DeveloperError, serde_json::json!({ "error": e }))
            }
            Fault::Init(Failure::Timeout) => dev(&format!(
                "The action exceeded its time limits of {} milliseconds during initialization.",
                limits.timeout
            )),
            Fault::Init(Failure::Died { oom: false }) => {
                dev("The action did not initialize and exited unexpectedly.")
            }
            Fault::Init(Failure::TooLarge(n)) => dev(&format!(
                "The action failed during initialization: answer of {n} bytes"
            )),
            Fault::Init(Failure::BadOutput(s)) => dev(&format!(
                "The action failed during initialization: {}",
                s.trim()
            )),
            Fault::Init(Failure::Died { oom: true }) | Fault::Run(Failure::Died { oom: true }) => {
                dev("The action exhausted its memory and was aborted.")
            }
            Fault::Run(Failure::Timeout) => dev(&format!(
                "The action exceeded its time limits of {} milliseconds.",
                limits.timeout
            )),
            Fault::Run(Failure::Died { oom: false }) => {
                dev("The action did not produce a valid response and exited unexpectedly.")
            }
            Fault::Run(Failure::BadOutput(s)) => dev(&format!(
                "The action did not produce a valid JSON response: {}",
                s.trim()
            )),
            Fault::Run(Failure::TooLarge(n)) => Response::error(
                Status::ApplicationError,
                &format!(
                    "The action produced a response that exceeded the allowed length: {n} > {payload_max} bytes."
                ),
            ),
            Fault::NotDictionary => dev("The action did not return a dictionary or array."),
        }
    }

    /// Whether the container is still sound and goes back to the pool.
    fn keeps_container(&self) -> bool {
        matches!(
            self,
            Fault::NotDictionary | Fault::Run(Failure::TooLarge(_))
        )
    }

    /// The record's `timeout` annotation.
    fn timed_out(&self) -> bool {
        matches!(
            self,
            Fault::Init(Failure::Timeout) | Fault::Run(Failure::Timeout)
        )
    }
}

/// The record's response to a run's answer: a dictionary or array, an application error
/// when it has an `error` field.
fn answer_response(v: Value) -> Response {
    let status = if v.get("error").is_some() {
        Status::ApplicationError
    } else {
        Status::Success
    };
    Response::new(status, v)
}

/// A run's answer line as the action's result.
fn parse_answer(text: String) -> Result<Value, Fault> {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Ok(v),
        Ok(_) => Err(Fault::NotDictionary),
        Err(_) => Err(Fault::Run(Failure::BadOutput(text))),
    }
}

/// The record's times (epoch ms).
struct Times {
    /// From the controller's receipt to the start of the init or run.
    wait_ms: u64,
    /// Start of the init (new container) or of the run (warm); the execution's start
    /// when no container could be had.
    start_ms: u64,
    /// The initialisation's length, when there was one.
    init_ms: Option<u64>,
}

impl Times {
    /// The action's work starts at `at` (the first of init and run).
    fn started(&mut self, at: u64, received_ms: u64) {
        self.wait_ms = at.saturating_sub(received_ms);
        self.start_ms = at;
    }
}

/// What the attempt to run a job left: the action's result or why there is none, and
/// the logs collected.
struct Attempt {
    result: Result<Value, Fault>,
    logs: Vec<String>,
}

impl Attempt {
    fn fault(f: Fault, logs: Vec<String>) -> Attempt {
        Attempt {
            result: Err(f),
            logs,
        }
    }
}

/// Runs a job to its record (stored before returning).
pub(crate) async fn execute(p: Arc<Platform>, job: Job) -> Arc<Activation> {
    let mut times = Times {
        wait_ms: 0,
        start_ms: now_ms(),
        init_ms: None,
    };
    let Attempt { result, logs } = attempt(&p, &job, &mut times).await;
    let a = job.action.clone();
    let (response, timed_out) = match result {
        Ok(v) => (answer_response(v), false),
        Err(f) => (
            f.response(&a.limits, p.cfg.limits.payload_max),
            f.timed_out(),
        ),
    };
    let rec = Arc::new(record(job, times, response, timed_out, logs));
    tracing::debug!(
        "activation {} of {}: {} in {} ms",
        rec.activation_id,
        a.path(),
        rec.response.status,
        rec.duration
    );
    p.activations.insert(rec.clone());
    rec
}

/// Takes a container, initialises it when new, runs the job and gives the container
/// back (kept only when sound).
async fn attempt(p: &Platform, job: &Job, times: &mut Times) -> Attempt {
    let a = &job.action;
    let req = Request {
        namespace: job.namespace.clone(),
        action: a.path(),
        rev: a.rev,
        kind: a.exec.runtime,
        memory_mb: a.limits.memory,
    };
    let Some((lease, container)) = provision(p, job, &req).await else {
        return Attempt::fault(Fault::Provision, Vec::new());
    };
    // The monitor's activation begins with a cold start's init (the record's duration
    // includes it; the monitor records the start before anything runs, bounded wait);
    // the init's end is a boundary of its own, so the init's CPU and memory are also
    // known apart.
    p.notifier
        .activation_start(container.monitor_id(), &job.activation_id)
        .await;
    if lease.start != Start::Warm {
        if let Err(f) = initialise(p, job, &container, times).await {
            p.notifier
                .activation_end(container.monitor_id(), &job.activation_id);
            let logs = container.collect_logs().await;
            p.pool.release(lease, false);
            return Attempt::fault(f, logs);
        }
        p.notifier
            .init_end(container.monitor_id(), &job.activation_id)
            .await;
    }
    let (answer, logs) = run(p, job, &container, times).await;
    let result = answer.map_err(Fault::Run).and_then(parse_answer);
    let keep = match &result {
        Ok(_) => true,
        Err(f) => f.keeps_container(),
    };
    p.pool.release(lease, keep);
    Attempt { result, logs }
}

/// A lease on a container (created for a cold start, resumed when paused); None when
/// the pool is closed or the container could not be created.
async fn provision(p: &Platform, job: &Job, req: &Request) -> Option<(Lease, Arc<Container>)> {
    let mut lease = p.pool.acquire(req.clone()).await?;
    let container = match lease.container.clone() {
        Some(c) => c,
        None => match p.pool.create(&mut lease, req).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("activation {}: {e}", job.activation_id);
                p.pool.release(lease, false);
                return None;
            }
        },
    };
    if lease.paused {
        p.pool.resume(&container).await;
    }
    Some((lease, container))
}

/// Initialises a new container with the action's code.
async fn initialise(
    p: &Platform,
    job: &Job,
    container: &Container,
    times: &mut Times,
) -> Result<(), Fault> {
    let a = &job.action;
    let init_start = now_ms();
    times.started(init_start, job.received_ms);
    let r = container
        .init(
            &p.backend,
            &a.exec,
            &Map::new(),
            Duration::from_millis(a.limits.timeout),
            log_limit(&a.limits),
        )
        .await;
    times.init_ms = Some(now_ms().saturating_sub(init_start));
    r.map_err(|f| match f {
        InitFailure::Error(e) => Fault::InitError(e),
        InitFailure::Failed(f) => Fault::Init(f),
        InitFailure::Internal(e) => {
            tracing::error!("activation {}: init: {e}", job.activation_id);
            Fault::Provision
        }
    })
}

/// Runs the action once, before the monitor's end notification (its start, or a cold
/// start's init end, was notified before): its answer line (or failure) and its logs.
async fn run(
    p: &Platform,
    job: &Job,
    container: &Container,
    times: &mut Times,
) -> (Result<String, Failure>, Vec<String>) {
    let a = &job.action;
    let run_start = now_ms();
    if times.init_ms.is_none() {
        times.started(run_start, job.received_ms);
    }
    let provide_key = a
        .annotations
        .iter()
        .any(|k| k.key == "provide-api-key" && k.value == Value::Bool(true));
    let action_name = format!("/{}", a.path());
    let line = runtime::run_line(
        &job.params,
        &runtime::RunMeta {
            namespace: &job.namespace,
            action_name: &action_name,
            activation_id: &job.activation_id,
            transaction_id: &job.transaction_id,
            deadline: (run_start + a.limits.timeout).to_string(),
            api_key: if provide_key {
                p.api_key(&job.namespace)
            } else {
                None
            },
        },
    );
    let out = container
        .run(
            &line,
            Duration::from_millis(a.limits.timeout),
            log_limit(&a.limits),
        )
        .await;
    p.notifier
        .activation_end(container.monitor_id(), &job.activation_id);
    (out.result, out.logs)
}

/// The log limit in bytes (the action's limit is in MiB).
fn log_limit(limits: &Limits) -> usize {
    (limits.logs * 1024 * 1024) as usize
}

/// The activation record (its end is now).
fn record(
    job: Job,
    times: Times,
    response: Response,
    timed_out: bool,
    logs: Vec<String>,
) -> Activation {
    let a = &job.action;
    let end_ms = now_ms().max(times.start_ms);
    let mut annotations = vec![
        kv("path", Value::String(a.path())),
        kv("waitTime", Value::from(times.wait_ms)),
        kv("kind", Value::String(a.exec.kind.clone())),
        kv("timeout", Value::Bool(timed_out)),
        kv(
            "limits",
            serde_json::to_value(&a.limits).unwrap_or(Value::Null),
        ),
    ];
    if let Some(i) = times.init_ms {
        annotations.push(kv("initTime", Value::from(i)));
    }
    Activation {
        namespace: job.namespace,
        name: a.name.clone(),
        version: a.version.clone(),
        subject: job.subject,
        activation_id: job.activation_id,
        start: times.start_ms,
        end: end_ms,
        duration: end_ms - times.start_ms,
        response,
        logs,
        publish: false,
        annotations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            timeout: 3000,
            memory: 256,
            logs: 10,
            concurrency: 1,
        }
    }

    /// (status, error message, container kept, timeout annotation) of a fault.
    fn mapped(f: Fault) -> (Status, String, bool, bool) {
        let r = f.response(&limits(), 1000);
        let msg = r.result["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| r.result["error"].to_string());
        (r.status(), msg, f.keeps_container(), f.timed_out())
    }

    #[test]
    fn every_fault_maps_to_openwhisk_status_message_keep_and_timeout() {
        use Status::{ApplicationError as App, DeveloperError as Dev, InternalError as Int};
        let cases = [
            (
                Fault::Provision,
                (
                    Int,
                    "Failed to provision resources to run the action.",
                    false,
                    false,
                ),
            ),
            (
                Fault::InitError(Value::String("no main".into())),
                (Dev, "no main", false, false),
            ),
            (
                Fault::Init(Failure::Timeout),
                (
                    Dev,
                    "The action exceeded its time limits of 3000 milliseconds during initialization.",
                    false,
                    true,
                ),
            ),
            (
                Fault::Init(Failure::Died { oom: true }),
                (
                    Dev,
                    "The action exhausted its memory and was aborted.",
                    false,
                    false,
                ),
            ),
            (
                Fault::Init(Failure::Died { oom: false }),
                (
                    Dev,
                    "The action did not initialize and exited unexpectedly.",
                    false,
                    false,
                ),
            ),
            (
                Fault::Init(Failure::TooLarge(5000)),
                (
                    Dev,
                    "The action failed during initialization: answer of 5000 bytes",
                    false,
                    false,
                ),
            ),
            (
                Fault::Init(Failure::BadOutput(" junk \n".into())),
                (
                    Dev,
                    "The action failed during initialization: junk",
                    false,
                    false,
                ),
            ),
            (
                Fault::Run(Failure::Timeout),
                (
                    Dev,
                    "The action exceeded its time limits of 3000 milliseconds.",
                    false,
                    true,
                ),
            ),
            (
                Fault::Run(Failure::Died { oom: true }),
                (
                    Dev,
                    "The action exhausted its memory and was aborted.",
                    false,
                    false,
                ),
            ),
            (
                Fault::Run(Failure::Died { oom: false }),
                (
                    Dev,
                    "The action did not produce a valid response and exited unexpectedly.",
                    false,
                    false,
                ),
            ),
            (
                Fault::Run(Failure::BadOutput("junk\n".into())),
                (
                    Dev,
                    "The action did not produce a valid JSON response: junk",
                    false,
                    false,
                ),
            ),
            (
                Fault::Run(Failure::TooLarge(5000)),
                (
                    App,
                    "The action produced a response that exceeded the allowed length: 5000 > 1000 bytes.",
                    true,
                    false,
                ),
            ),
            (
                Fault::NotDictionary,
                (
                    Dev,
                    "The action did not return a dictionary or array.",
                    true,
                    false,
                ),
            ),
        ];
        for (fault, (status, msg, keep, timeout)) in cases {
            let name = format!("{fault:?}");
            assert_eq!(
                mapped(fault),
                (status, msg.to_string(), keep, timeout),
                "{name}"
            );
        }
    }

    #[test]
    fn answers_are_dictionaries_or_arrays_and_the_rest_is_a_fault() {
        assert_eq!(
            parse_answer(" {\"a\":1}\n".into()).unwrap(),
            serde_json::json!({"a": 1})
        );
        assert_eq!(parse_answer("[1]".into()).unwrap(), serde_json::json!([1]));
        assert!(matches!(
            parse_answer("3".into()),
            Err(Fault::NotDictionary)
        ));
        // Not JSON: the same answer as a bad output line, text kept for the message.
        match parse_answer("oops ".into()) {
            Err(Fault::Run(Failure::BadOutput(s))) => assert_eq!(s, "oops "),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            answer_response(serde_json::json!({"error": "x"})).status(),
            Status::ApplicationError
        );
        let ok = answer_response(serde_json::json!({"x": 1}));
        assert_eq!(ok.status(), Status::Success);
        assert!(ok.success);
    }
}
