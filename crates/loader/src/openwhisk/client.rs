//! The OpenWhisk backend: deploys actions (`PUT .../actions/{name}?overwrite=true`) and
//! invokes them over the REST API (`POST ...?blocking=true`: the record comes inline; on
//! 202 it polls `GET /activations/{id}` with exponential backoff until the record is
//! stored or a deadline passes), classifying every outcome. Invocations cost one request
//! body and one URL clone: each (endpoint, action) has its URL and `Authorization`
//! header built once and cached.
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value, json};

use super::classify::classify;
use super::http::{
    Answer, ClientError, Failure, HttpOptions, RetryOptions, answered_outcome, build_client,
    error_message, send_with_retries, timed,
};
use super::record::{ActivationRecord, Outcome, OutcomeClass};
use super::{Backend, BoxFut, Endpoint};
use faasload_os::clock::mono_ns;
use faasload_trace::{Function, User};

/// How records are obtained after a 202 (blocking wait exceeded, or non-blocking mode).
#[derive(Clone, Debug)]
pub struct PollOptions {
    /// Poll at all (off: a 202 is recorded as `Accepted` with its activation id).
    pub enabled: bool,
    /// First wait; doubles up to `max_interval`.
    pub first: Duration,
    pub max_interval: Duration,
    /// Give up this long after the 202 (the class stays `Accepted`).
    pub deadline: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            enabled: true,
            first: Duration::from_millis(20),
            max_interval: Duration::from_secs(1),
            // OpenWhisk's longest action time limit (5 min) and some margin.
            deadline: Duration::from_secs(330),
        }
    }
}

/// Settings of the OpenWhisk backend.
#[derive(Clone, Debug)]
pub struct OpenWhiskOptions {
    pub http: HttpOptions,
    /// Blocking invokes (the record comes with the answer). Off: non-blocking (202 and
    /// polling, if enabled).
    pub blocking: bool,
    /// The blocking wait (`timeout` query parameter, ms); None: the platform's default
    /// (60 s on OpenWhisk).
    pub wait_ms: Option<u32>,
    pub poll: PollOptions,
    pub retries: RetryOptions,
}

impl Default for OpenWhiskOptions {
    fn default() -> Self {
        OpenWhiskOptions {
            http: HttpOptions::default(),
            blocking: true,
            wait_ms: None,
            poll: PollOptions::default(),
            retries: RetryOptions::default(),
        }
    }
}

/// The URL and header of one (endpoint, action), built once.
struct Target {
    api_host: String,
    namespace: String,
    auth: String,
    action: String,
    invoke: Url,
    authorization: HeaderValue,
}

/// An OpenWhisk deployment (any number of API hosts and namespaces).
pub struct OpenWhisk {
    client: reqwest::Client,
    opts: OpenWhiskOptions,
    hasher: RandomState,
    targets: RwLock<HashMap<u64, Vec<Arc<Target>>>>,
}

/// `Basic base64(uuid:key)`, marked sensitive (never printed by the HTTP stack).
pub(super) fn basic_auth(auth: &str) -> Option<HeaderValue> {
    let enc = base64::engine::general_purpose::STANDARD.encode(auth.as_bytes());
    let mut v = HeaderValue::from_str(&format!("Basic {enc}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// `{api_host}/api/v1/namespaces/{ns}/{collection}/{name...}` with each segment
/// percent-encoded (`name` may be `package/action`).
pub(super) fn api_url(
    api_host: &str,
    namespace: &str,
    collection: &str,
    name: &str,
) -> Result<Url, ClientError> {
    let bad = |why: String| ClientError::BadUrl {
        what: format!("{namespace}/{name} at {api_host}"),
        why,
    };
    let mut url = Url::parse(api_host).map_err(|e| bad(e.to_string()))?;
    if name.is_empty() || name.split('/').any(str::is_empty) || namespace.is_empty() {
        return Err(bad("empty namespace or name".into()));
    }
    {
        let mut segs = url
            .path_segments_mut()
            .map_err(|_| bad("the API host cannot be a base URL".into()))?;
        segs.pop_if_empty();
        segs.extend(["api", "v1", "namespaces", namespace, collection]);
        segs.extend(name.split('/'));
    }
    Ok(url)
}

/// The body of the action PUT for `function` with code `code` (a zip, or anything that
/// is not UTF-8 text, is sent base64-encoded with `binary: true`).
pub(super) fn action_body(function: &Function, code: &[u8]) -> Value {
    let is_zip = code.starts_with(b"PK\x03\x04")
        || function
            .code
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    let mut exec = Map::new();
    exec.insert("kind".into(), Value::String(function.kind.clone()));
    match std::str::from_utf8(code) {
        Ok(text) if !is_zip => {
            exec.insert("code".into(), Value::String(text.to_string()));
        }
        _ => {
            let enc = base64::engine::general_purpose::STANDARD.encode(code);
            exec.insert("code".into(), Value::String(enc));
            exec.insert("binary".into(), Value::Bool(true));
        }
    }
    if let Some(main) = &function.main {
        exec.insert("main".into(), Value::String(main.clone()));
    }
    let parameters: Vec<Value> = function
        .parameters
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    json!({
        "exec": exec,
        "limits": {"memory": function.memory_mb, "timeout": function.timeout_ms},
        "parameters": parameters,
    })
}

impl OpenWhisk {
    /// A backend with its own HTTP client.
    pub fn new(opts: OpenWhiskOptions) -> Result<OpenWhisk, ClientError> {
        let client = build_client(&opts.http)?;
        Ok(Self::with_client(client, opts))
    }

    /// A backend sharing `client` (its TLS and pool settings win over `opts.http`'s).
    pub(crate) fn with_client(client: reqwest::Client, opts: OpenWhiskOptions) -> OpenWhisk {
        OpenWhisk {
            client,
            opts,
            hasher: RandomState::new(),
            targets: RwLock::new(HashMap::new()),
        }
    }

    fn target(&self, ep: &Endpoint, action: &str) -> Result<Arc<Target>, ClientError> {
        let h = self
            .hasher
            .hash_one((&ep.api_host, &ep.namespace, &ep.auth, action));
        let same = |t: &&Arc<Target>| {
            t.action == action
                && t.api_host == ep.api_host
                && t.namespace == ep.namespace
                && t.auth == ep.auth
        };
        if let Ok(map) = self.targets.read()
            && let Some(t) = map.get(&h).and_then(|v| v.iter().find(same))
        {
            return Ok(t.clone());
        }
        let mut invoke = api_url(&ep.api_host, &ep.namespace, "actions", action)?;
        match (self.opts.blocking, self.opts.wait_ms) {
            (true, Some(ms)) => invoke.set_query(Some(&format!("blocking=true&timeout={ms}"))),
            (true, None) => invoke.set_query(Some("blocking=true")),
            (false, _) => invoke.set_query(Some("blocking=false")),
        }
        let t = Arc::new(Target {
            api_host: ep.api_host.clone(),
            namespace: ep.namespace.clone(),
            auth: ep.auth.clone(),
            action: action.to_string(),
            invoke,
            authorization: basic_auth(&ep.auth).ok_or_else(|| ClientError::BadKey {
                namespace: ep.namespace.clone(),
            })?,
        });
        if let Ok(mut map) = self.targets.write() {
            let v = map.entry(h).or_default();
            if !v.iter().any(|x| same(&x)) {
                v.push(t.clone());
            }
        }
        Ok(t)
    }

    /// Creates or overwrites the action of `function` in `ep`'s namespace.
    pub(crate) async fn deploy_function(
        &self,
        ep: &Endpoint,
        function: &Function,
    ) -> anyhow::Result<()> {
        let code = tokio::fs::read(&function.code)
            .await
            .with_context(|| format!("reading the code {}", function.code.display()))?;
        let body = serde_json::to_vec(&action_body(function, &code))?;
        let mut url = api_url(&ep.api_host, &ep.namespace, "actions", &function.action)?;
        url.set_query(Some("overwrite=true"));
        let auth = basic_auth(&ep.auth).ok_or_else(|| ClientError::BadKey {
            namespace: ep.namespace.clone(),
        })?;
        let req = self
            .client
            .put(url)
            .header(AUTHORIZATION, auth)
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.opts.http.request_timeout)
            .body(body);
        match timed(req).await.2 {
            Ok(a) if (200..300).contains(&a.status) => Ok(()),
            Ok(a) => anyhow::bail!("{}", error_message(a.status, &a.body)),
            Err(f) => anyhow::bail!("{}", f.error),
        }
    }

    /// `GET /activations/{id}`: the record, or None while it is not stored (404).
    pub(crate) async fn get_record(
        &self,
        ep: &Endpoint,
        activation_id: &str,
    ) -> anyhow::Result<Option<ActivationRecord>> {
        let t = self.target_for_get(ep)?;
        match self.get_once(&t, activation_id).await {
            Got::Record(r) => Ok(Some(*r)),
            Got::NotYet(_) => Ok(None),
            Got::Fatal(e) => anyhow::bail!("activation {activation_id}: {e}"),
        }
    }

    fn target_for_get(&self, ep: &Endpoint) -> Result<(Url, HeaderValue), ClientError> {
        let base = api_url(&ep.api_host, &ep.namespace, "activations", "x")?;
        let auth = basic_auth(&ep.auth).ok_or_else(|| ClientError::BadKey {
            namespace: ep.namespace.clone(),
        })?;
        Ok((base, auth))
    }

    async fn get_once(&self, t: &(Url, HeaderValue), id: &str) -> Got {
        let mut url = t.0.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop().push(id);
        }
        let req = self
            .client
            .get(url)
            .header(AUTHORIZATION, t.1.clone())
            .timeout(self.opts.http.request_timeout);
        match timed(req).await.2 {
            Ok(a) if a.status == 200 => match ActivationRecord::from_slice(&a.body) {
                Ok(r) => Got::Record(Box::new(r)),
                Err(e) => Got::Fatal(format!("GET answered 200 without a record: {e}")),
            },
            // Not stored yet; or a transient server-side failure: try again.
            Ok(a) if a.status == 404 || a.status == 429 || a.status >= 500 => {
                Got::NotYet(error_message(a.status, &a.body))
            }
            Ok(a) => Got::Fatal(error_message(a.status, &a.body)),
            Err(f) => Got::NotYet(f.error),
        }
    }

    /// Polls the record of `id` until stored or the deadline; returns it with the
    /// number of GETs and the instant it arrived.
    async fn poll(&self, ep: &Endpoint, id: &str) -> (Result<ActivationRecord, String>, u32, u64) {
        let t = match self.target_for_get(ep) {
            Ok(t) => t,
            Err(e) => return (Err(e.to_string()), 0, mono_ns()),
        };
        let p = &self.opts.poll;
        let end = tokio::time::Instant::now() + p.deadline;
        let mut wait = p.first;
        let mut polls = 0;
        loop {
            polls += 1;
            let last = match self.get_once(&t, id).await {
                Got::Record(r) => return (Ok(*r), polls, mono_ns()),
                Got::Fatal(e) => return (Err(e), polls, mono_ns()),
                Got::NotYet(e) => e,
            };
            let now = tokio::time::Instant::now();
            if now >= end {
                let msg = format!(
                    "record of {id} not obtained within {:?} ({polls} polls; last: {last})",
                    p.deadline
                );
                return (Err(msg), polls, mono_ns());
            }
            tokio::time::sleep(wait.min(end - now)).await;
            wait = (wait * 2).min(p.max_interval);
        }
    }

    /// One invocation, classified (never fails).
    pub(crate) async fn invoke_action(
        &self,
        ep: &Endpoint,
        action: &str,
        params: &Map<String, Value>,
    ) -> Outcome {
        let now = mono_ns();
        let t = match self.target(ep, action) {
            Ok(t) => t,
            Err(e) => {
                return Failure::before_send(OutcomeClass::ClientError, e.to_string())
                    .into_outcome(now, now);
            }
        };
        let body = match serde_json::to_vec(params) {
            Ok(b) => b,
            Err(e) => {
                return Failure::before_send(
                    OutcomeClass::ProtocolError,
                    format!("parameters: {e}"),
                )
                .into_outcome(now, now);
            }
        };
        let request = |body: Vec<u8>| {
            self.client
                .post(t.invoke.clone())
                .header(AUTHORIZATION, t.authorization.clone())
                .header(CONTENT_TYPE, "application/json")
                .timeout(self.opts.http.request_timeout)
                .body(body)
        };
        send_with_retries(&self.opts.retries, body, request, |sent, answered, a| {
            self.answer(ep, sent, answered, a)
        })
        .await
    }

    /// Turns an invoke answer into an outcome (polling after a 202 when enabled).
    async fn answer(&self, ep: &Endpoint, sent: u64, answered: u64, a: Answer) -> Outcome {
        let mut out = answered_outcome(sent, answered, Some(a.status), OutcomeClass::ProtocolError);
        let record_expected = matches!(a.status, 200..=299 | 500..=599) && a.status != 202;
        if record_expected && let Ok(r) = ActivationRecord::from_slice(&a.body) {
            out.class = classify(a.status, Some(&r));
            out.activation_id = Some(r.activation_id.clone());
            if !r.success {
                out.error = r
                    .result
                    .get("error")
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string));
            }
            out.record = Some(r);
            return out;
        }
        out.class = classify(a.status, None);
        out.activation_id = activation_id_of(&a);
        if a.status != 202 {
            out.error = Some(if a.status == 200 {
                let why = ActivationRecord::from_slice(&a.body)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                format!("HTTP 200 without an activation record: {why}")
            } else {
                error_message(a.status, &a.body)
            });
            return out;
        }
        let Some(id) = out.activation_id.clone() else {
            out.class = OutcomeClass::ProtocolError;
            out.error = Some("HTTP 202 without an activation id".into());
            return out;
        };
        if !self.opts.poll.enabled {
            return out;
        }
        let (rec, polls, at) = self.poll(ep, &id).await;
        out.polls = polls;
        match rec {
            Ok(r) => {
                out.answered_ns = at;
                out.class = classify(a.status, Some(&r));
                if !r.success {
                    out.error = r
                        .result
                        .get("error")
                        .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string));
                }
                out.record = Some(r);
            }
            Err(e) => out.error = Some(e),
        }
        out
    }
}

enum Got {
    Record(Box<ActivationRecord>),
    NotYet(String),
    Fatal(String),
}

/// The activation id of a 202: the body's `activationId`, else the
/// `x-openwhisk-activation-id` header.
fn activation_id_of(a: &Answer) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Accepted {
        activation_id: String,
    }
    serde_json::from_slice::<Accepted>(&a.body)
        .ok()
        .map(|x| x.activation_id)
        .or_else(|| a.id().map(str::to_string))
        .filter(|id| !id.is_empty())
}

impl Backend for OpenWhisk {
    fn fork(&self) -> Option<Arc<dyn Backend>> {
        let client = build_client(&self.opts.http).ok()?;
        let fork = OpenWhisk::with_client(client, self.opts.clone());
        if let (Ok(mine), Ok(mut theirs)) = (self.targets.read(), fork.targets.write()) {
            theirs.clone_from(&mine);
        }
        Some(Arc::new(fork))
    }

    fn deploy<'a>(
        &'a self,
        ep: &'a Endpoint,
        _user: &'a User,
        function: &'a Function,
    ) -> BoxFut<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.deploy_function(ep, function).await.with_context(|| {
                format!(
                    "deploying {} as {}/{} at {}",
                    function.name, ep.namespace, function.action, ep.api_host
                )
            })
        })
    }

    fn invoke<'a>(
        &'a self,
        ep: &'a Endpoint,
        action: &'a str,
        params: &'a Map<String, Value>,
    ) -> BoxFut<'a, Outcome> {
        Box::pin(self.invoke_action(ep, action, params))
    }

    fn fetch_record<'a>(
        &'a self,
        ep: &'a Endpoint,
        activation_id: &'a str,
    ) -> BoxFut<'a, anyhow::Result<Option<ActivationRecord>>> {
        Box::pin(self.get_record(ep, activation_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(code: &str) -> Function {
        let mut parameters = Map::new();
        parameters.insert("ms".into(), json!(5));
        Function {
            name: "f".into(),
            action: "pkg/f".into(),
            kind: "python:3".into(),
            code: code.into(),
            main: Some("handler".into()),
            memory_mb: 256,
            timeout_ms: 3000,
            parameters,
            input_kind: None,
        }
    }

    #[test]
    fn action_bodies_carry_kind_code_limits_and_parameters() {
        let b = action_body(&function("f.py"), b"def handler(a):\n  return a\n");
        assert_eq!(b["exec"]["kind"], "python:3");
        assert_eq!(b["exec"]["code"], "def handler(a):\n  return a\n");
        assert_eq!(b["exec"]["main"], "handler");
        assert!(b["exec"].get("binary").is_none());
        assert_eq!(b["limits"], json!({"memory": 256, "timeout": 3000}));
        assert_eq!(b["parameters"], json!([{"key": "ms", "value": 5}]));
        let z = action_body(&function("f.zip"), b"PK\x03\x04rest");
        assert_eq!(z["exec"]["binary"], true);
        assert_eq!(z["exec"]["code"], "UEsDBHJlc3Q=");
        let bin = action_body(&function("f"), &[0xff, 0x00, 0x01]);
        assert_eq!(bin["exec"]["binary"], true);
    }

    #[test]
    fn urls_are_encoded_per_segment() {
        let u = api_url("http://127.0.0.1:3233", "guest", "actions", "pkg/my action").unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:3233/api/v1/namespaces/guest/actions/pkg/my%20action"
        );
        let u = api_url("https://h/prefix", "_", "activations", "abc").unwrap();
        assert_eq!(
            u.as_str(),
            "https://h/prefix/api/v1/namespaces/_/activations/abc"
        );
        assert!(api_url("http://h", "guest", "actions", "").is_err());
        assert!(api_url("not a url", "guest", "actions", "a").is_err());
    }

    #[test]
    fn the_authorization_header_is_basic_and_sensitive() {
        let h = basic_auth("uuid:key").unwrap();
        assert_eq!(h.to_str().unwrap(), "Basic dXVpZDprZXk=");
        assert!(h.is_sensitive());
    }

    #[test]
    fn targets_are_built_once_per_endpoint_and_action() {
        let ow = OpenWhisk::new(OpenWhiskOptions {
            wait_ms: Some(500),
            ..Default::default()
        })
        .unwrap();
        let ep = Endpoint {
            api_host: "http://127.0.0.1:1".into(),
            auth: "u:k".into(),
            namespace: "guest".into(),
        };
        let a = ow.target(&ep, "hello").unwrap();
        let b = ow.target(&ep, "hello").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(
            a.invoke.as_str(),
            "http://127.0.0.1:1/api/v1/namespaces/guest/actions/hello?blocking=true&timeout=500"
        );
        let other = Endpoint {
            auth: "u:other".into(),
            ..ep.clone()
        };
        assert!(!Arc::ptr_eq(&a, &ow.target(&other, "hello").unwrap()));
    }
}
