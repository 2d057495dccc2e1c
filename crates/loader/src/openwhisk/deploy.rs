//! Deploying a trace: creates or overwrites the action of every (user, function) pair
//! with invocations, in that user's namespace, with the function's kind, code, memory
//! and time limits (idempotent: `overwrite=true`). Every pair is tried; failures are
//! reported together, each with the user, namespace, action and API host.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::{Backend, Endpoint};
use faasload_trace::Trace;

/// One deployed action.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployedAction {
    pub user: String,
    pub function: String,
    pub namespace: String,
    pub action: String,
    pub api_host: String,
    pub took: Duration,
}

/// What [`deploy_all`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeployReport {
    /// Deployed actions, in trace order of the pairs.
    pub deployed: Vec<DeployedAction>,
    /// Pairs that named an action already deployed by an earlier pair (same API host,
    /// namespace and action: users sharing a namespace).
    pub shared: usize,
}

/// Deploys every pair of `trace.pairs` with `backend`; `endpoints[i]` is user `i`'s.
/// Fails (after trying every pair) if any deployment failed, listing each failure.
pub async fn deploy_all(
    backend: &dyn Backend,
    endpoints: &[Endpoint],
    trace: &Trace,
) -> anyhow::Result<DeployReport> {
    if endpoints.len() != trace.users.len() {
        bail!(
            "{}: {} users but {} endpoints",
            trace.origin,
            trace.users.len(),
            endpoints.len()
        );
    }
    let mut report = DeployReport::default();
    let mut seen = HashSet::new();
    let mut failures = Vec::new();
    for &(u, f) in &trace.pairs {
        let (Some(user), Some(function), Some(ep)) = (
            trace.users.get(u as usize),
            trace.functions.get(f as usize),
            endpoints.get(u as usize),
        ) else {
            bail!(
                "{}: pair (user {u}, function {f}) is out of range",
                trace.origin
            );
        };
        if !seen.insert((&ep.api_host, &ep.namespace, &function.action)) {
            report.shared += 1;
            continue;
        }
        let t0 = Instant::now();
        match backend.deploy(ep, user, function).await {
            Ok(()) => {
                tracing::debug!(
                    "deployed {}/{} at {} for user {}",
                    ep.namespace,
                    function.action,
                    ep.api_host,
                    user.name
                );
                report.deployed.push(DeployedAction {
                    user: user.name.clone(),
                    function: function.name.clone(),
                    namespace: ep.namespace.clone(),
                    action: function.action.clone(),
                    api_host: ep.api_host.clone(),
                    took: t0.elapsed(),
                })
            }
            Err(e) => failures.push(format!(
                "user {}, function {} ({}/{} at {}): {e:#}",
                user.name, function.name, ep.namespace, function.action, ep.api_host
            )),
        }
    }
    if !failures.is_empty() {
        bail!(
            "{}: {} of {} deployments failed ({} succeeded):\n  {}",
            trace.origin,
            failures.len(),
            failures.len() + report.deployed.len(),
            report.deployed.len(),
            failures.join("\n  ")
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::{Map, Value};

    use super::*;
    use crate::openwhisk::{BoxFut, Outcome};
    use faasload_trace::{Function, User};

    /// Records deployments; fails those of action `bad`.
    struct Rec(Mutex<Vec<String>>);

    impl Backend for Rec {
        fn deploy<'a>(
            &'a self,
            ep: &'a Endpoint,
            _: &'a User,
            f: &'a Function,
        ) -> BoxFut<'a, anyhow::Result<()>> {
            Box::pin(async move {
                if f.action == "bad" {
                    bail!("HTTP 400: memory size 1024 MB exceeds allowed threshold of 512 MB");
                }
                self.0
                    .lock()
                    .unwrap()
                    .push(format!("{}/{}", ep.namespace, f.action));
                Ok(())
            })
        }
        fn invoke<'a>(
            &'a self,
            _: &'a Endpoint,
            _: &'a str,
            _: &'a Map<String, Value>,
        ) -> BoxFut<'a, Outcome> {
            unreachable!("deploy_all never invokes")
        }
    }

    fn user(n: &str, ns: &str) -> User {
        User {
            name: n.into(),
            namespace: ns.into(),
            auth: None,
            api_host: None,
            create: false,
        }
    }

    fn function(n: &str) -> Function {
        Function {
            name: n.into(),
            action: n.into(),
            kind: "python:3".into(),
            code: "x.py".into(),
            main: None,
            memory_mb: 128,
            timeout_ms: 1000,
            parameters: Map::new(),
            input_kind: None,
        }
    }

    fn trace(pairs: Vec<(u32, u32)>, fns: Vec<Function>) -> Trace {
        Trace {
            origin: "t.yaml".into(),
            users: vec![user("a", "nsa"), user("b", "nsb"), user("c", "nsa")],
            functions: fns,
            seed: 0,
            pairs,
            total: Some(0),
            schedule: Box::new(|| Box::new(std::iter::empty())),
        }
    }

    fn eps() -> Vec<Endpoint> {
        ["nsa", "nsb", "nsa"]
            .iter()
            .map(|ns| Endpoint {
                api_host: "http://h".into(),
                auth: "u:k".into(),
                namespace: ns.to_string(),
            })
            .collect()
    }

    #[tokio::test]
    async fn every_pair_once_and_shared_namespaces_once() {
        let b = Rec(Mutex::new(Vec::new()));
        let t = trace(
            vec![(0, 0), (1, 0), (2, 0), (0, 1)],
            vec![function("f"), function("g")],
        );
        let r = deploy_all(&b, &eps(), &t).await.unwrap();
        assert_eq!(*b.0.lock().unwrap(), ["nsa/f", "nsb/f", "nsa/g"]);
        assert_eq!(r.deployed.len(), 3);
        assert_eq!(r.shared, 1);
    }

    #[tokio::test]
    async fn failures_are_all_reported_with_their_context() {
        let b = Rec(Mutex::new(Vec::new()));
        let t = trace(
            vec![(0, 1), (1, 0), (1, 1)],
            vec![function("f"), function("bad")],
        );
        let e = deploy_all(&b, &eps(), &t).await.unwrap_err().to_string();
        assert!(e.contains("2 of 3 deployments failed"), "{e}");
        assert!(
            e.contains("user a, function bad (nsa/bad at http://h)"),
            "{e}"
        );
        assert!(
            e.contains("user b, function bad (nsb/bad at http://h)"),
            "{e}"
        );
        assert!(e.contains("exceeds allowed threshold"), "{e}");
        assert_eq!(*b.0.lock().unwrap(), ["nsb/f"]);
        let short = eps()[..1].to_vec();
        assert!(deploy_all(&b, &short, &t).await.is_err());
        let oob = trace(vec![(7, 0)], vec![function("f")]);
        assert!(deploy_all(&b, &eps(), &oob).await.is_err());
    }
}
