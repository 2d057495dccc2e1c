//! One activation, from an accepted invoke to its stored record: take a container from
//! the pool (warm, prewarm or cold), initialise it when new, notify the monitor, run with
//! the time limit, turn the answer (or its absence) into the record's response, store it
//! and give the container back (destroyed after a crash, timeout or init failure).
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::activations::{Activation, Response, Status};
use super::container::{Failure, InitFailure};
use super::entities::{Action, KeyVal};
use super::pool::{Request, Start};
use super::runtime;
use super::server::Platform;

/// An accepted invocation.
pub struct Job {
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
pub fn merge_params(action: &Action, invoke: Option<Map<String, Value>>) -> Map<String, Value> {
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

/// Runs a job to its record (stored before returning).
pub async fn execute(p: Arc<Platform>, job: Job) -> Arc<Activation> {
    let a = job.action.clone();
    let req = Request {
        namespace: job.namespace.clone(),
        action: a.path(),
        rev: a.rev,
        kind: a.exec.runtime,
        memory_mb: a.limits.memory,
    };
    let timeout = Duration::from_millis(a.limits.timeout);
    let mut init_ms: Option<u64> = None;
    let mut wait_ms = 0;
    let mut timed_out = false;
    let mut logs = Vec::new();
    let mut start_ms = super::ids::now_ms();
    let response;
    let mut keep = false;

    let lease = p.pool.acquire(req.clone()).await;
    'run: {
        let Some(mut lease) = lease else {
            response = Response::error(
                Status::InternalError,
                "Failed to provision resources to run the action.",
            );
            break 'run;
        };
        let container = match lease.container.clone() {
            Some(c) => c,
            None => match p.pool.create(&mut lease, &req).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("activation {}: {e}", job.activation_id);
                    p.pool.release(lease, false);
                    response = Response::error(
                        Status::InternalError,
                        "Failed to provision resources to run the action.",
                    );
                    break 'run;
                }
            },
        };
        if lease.paused {
            p.pool.resume(&container).await;
        }
        if lease.start != Start::Warm {
            let init_start = super::ids::now_ms();
            wait_ms = init_start.saturating_sub(job.received_ms);
            start_ms = init_start;
            let env = Map::new();
            let log_limit = (a.limits.logs * 1024 * 1024) as usize;
            let r = container
                .init(&p.backend, &a.exec, &env, timeout, log_limit)
                .await;
            let init_end = super::ids::now_ms();
            init_ms = Some(init_end - init_start);
            if let Err(f) = r {
                let msg = match f {
                    InitFailure::Error(e) => {
                        Response::new(Status::DeveloperError, serde_json::json!({ "error": e }))
                    }
                    InitFailure::Failed(Failure::Timeout) => {
                        timed_out = true;
                        Response::error(
                            Status::DeveloperError,
                            &format!(
                                "The action exceeded its time limits of {} milliseconds during initialization.",
                                a.limits.timeout
                            ),
                        )
                    }
                    InitFailure::Failed(Failure::Died { oom: true }) => Response::error(
                        Status::DeveloperError,
                        "The action exhausted its memory and was aborted.",
                    ),
                    InitFailure::Failed(Failure::Died { oom: false }) => Response::error(
                        Status::DeveloperError,
                        "The action did not initialize and exited unexpectedly.",
                    ),
                    InitFailure::Failed(Failure::TooLarge(n)) => Response::error(
                        Status::DeveloperError,
                        &format!("The action failed during initialization: answer of {n} bytes"),
                    ),
                    InitFailure::Failed(Failure::BadOutput(s)) => Response::error(
                        Status::DeveloperError,
                        &format!("The action failed during initialization: {}", s.trim()),
                    ),
                    InitFailure::Internal(e) => {
                        tracing::error!("activation {}: init: {e}", job.activation_id);
                        Response::error(
                            Status::InternalError,
                            "Failed to provision resources to run the action.",
                        )
                    }
                };
                response = msg;
                logs = container.collect_logs().await;
                p.pool.release(lease, false);
                break 'run;
            }
        }
        // The monitor records the start before the run begins (bounded wait), so the
        // activation's whole CPU time is between its boundaries.
        p.notifier
            .activation_start(container.monitor_id(), &job.activation_id)
            .await;
        let run_start = super::ids::now_ms();
        if init_ms.is_none() {
            wait_ms = run_start.saturating_sub(job.received_ms);
            start_ms = run_start;
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
            .run(&line, timeout, (a.limits.logs * 1024 * 1024) as usize)
            .await;
        p.notifier
            .activation_end(container.monitor_id(), &job.activation_id);
        logs = out.logs;
        response = match out.result {
            Ok(text) => match serde_json::from_str::<Value>(text.trim()) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => {
                    if v.get("error").is_some() {
                        keep = true;
                        Response::new(Status::ApplicationError, v)
                    } else {
                        keep = true;
                        Response::new(Status::Success, v)
                    }
                }
                Ok(_) => {
                    keep = true;
                    Response::error(
                        Status::DeveloperError,
                        "The action did not return a dictionary or array.",
                    )
                }
                Err(_) => Response::error(
                    Status::DeveloperError,
                    &format!(
                        "The action did not produce a valid JSON response: {}",
                        text.trim()
                    ),
                ),
            },
            Err(Failure::Timeout) => {
                timed_out = true;
                Response::error(
                    Status::DeveloperError,
                    &format!(
                        "The action exceeded its time limits of {} milliseconds.",
                        a.limits.timeout
                    ),
                )
            }
            Err(Failure::Died { oom: true }) => Response::error(
                Status::DeveloperError,
                "The action exhausted its memory and was aborted.",
            ),
            Err(Failure::Died { oom: false }) => Response::error(
                Status::DeveloperError,
                "The action did not produce a valid response and exited unexpectedly.",
            ),
            Err(Failure::BadOutput(s)) => Response::error(
                Status::DeveloperError,
                &format!(
                    "The action did not produce a valid JSON response: {}",
                    s.trim()
                ),
            ),
            Err(Failure::TooLarge(n)) => {
                keep = true;
                Response::error(
                    Status::ApplicationError,
                    &format!(
                        "The action produced a response that exceeded the allowed length: {n} > {} bytes.",
                        p.cfg.limits.payload_max
                    ),
                )
            }
        };
        p.pool.release(lease, keep);
    }
    let end_ms = super::ids::now_ms().max(start_ms);
    let mut annotations = vec![
        kv("path", Value::String(a.path())),
        kv("waitTime", Value::from(wait_ms)),
        kv("kind", Value::String(a.exec.kind.clone())),
        kv("timeout", Value::Bool(timed_out)),
        kv(
            "limits",
            serde_json::to_value(&a.limits).unwrap_or(Value::Null),
        ),
    ];
    if let Some(i) = init_ms {
        annotations.push(kv("initTime", Value::from(i)));
    }
    let rec = Arc::new(Activation {
        namespace: job.namespace,
        name: a.name.clone(),
        version: a.version.clone(),
        subject: job.subject,
        activation_id: job.activation_id,
        start: start_ms,
        end: end_ms,
        duration: end_ms - start_ms,
        response,
        logs,
        publish: false,
        annotations,
    });
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
