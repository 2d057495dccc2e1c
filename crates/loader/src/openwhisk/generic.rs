//! The generic HTTP backend, for platforms reached by one URL per function (Knative
//! services, OpenFaaS gateways, any HTTP function): an invocation POSTs its parameters
//! as a JSON object and records what HTTP alone can tell (status, send and answer
//! instants, error text); there is no activation record, so the class comes from the
//! HTTP status (2xx success, 429 throttled, 5xx server error, 4xx client error) or the
//! transport error. Such platforms deploy functions out of band: `deploy` only checks
//! that the function has a URL.
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value};

use super::classify::classify_plain_http;
use super::client::basic_auth;
use super::http::{
    Answer, ClientError, Failure, HttpOptions, RetryOptions, answered_outcome, build_client,
    error_message, send_with_retries,
};
use super::record::{Outcome, OutcomeClass};
use super::{Backend, BoxFut, Endpoint};
use faasload_os::clock::mono_ns;
use faasload_trace::{Function, User};

/// Settings of the generic HTTP backend.
#[derive(Clone, Debug, Default)]
pub struct GenericOptions {
    pub http: HttpOptions,
    pub retries: RetryOptions,
    /// The URL of each action (by action name).
    pub urls: HashMap<String, String>,
    /// For actions not in `urls`: a URL template with `{api_host}`, `{namespace}` and
    /// `{action}`, e.g. `{api_host}/function/{action}` (OpenFaaS) or
    /// `http://{action}.{namespace}.example.com` (Knative).
    pub template: Option<String>,
    /// Send the endpoint's key as HTTP Basic auth (off: no `Authorization` header).
    pub send_auth: bool,
}

/// One target URL (and header), built once.
struct Target {
    api_host: String,
    namespace: String,
    auth: String,
    action: String,
    url: Url,
    authorization: Option<HeaderValue>,
}

/// A platform of plain HTTP functions.
pub struct GenericHttp {
    client: reqwest::Client,
    opts: GenericOptions,
    urls: HashMap<String, Url>,
    hasher: RandomState,
    targets: RwLock<HashMap<u64, Vec<Arc<Target>>>>,
}

impl GenericHttp {
    /// A backend with its own HTTP client; every URL of `opts.urls` must parse.
    pub fn new(opts: GenericOptions) -> Result<GenericHttp, ClientError> {
        let client = build_client(&opts.http)?;
        Self::with_client(client, opts)
    }

    /// A backend sharing `client`.
    pub(crate) fn with_client(
        client: reqwest::Client,
        opts: GenericOptions,
    ) -> Result<GenericHttp, ClientError> {
        let mut urls = HashMap::new();
        for (action, u) in &opts.urls {
            urls.insert(action.clone(), parse_url(u, action)?);
        }
        Ok(GenericHttp {
            client,
            opts,
            urls,
            hasher: RandomState::new(),
            targets: RwLock::new(HashMap::new()),
        })
    }

    /// The URL `action` is invoked at for `ep`.
    pub(crate) fn url_for(&self, ep: &Endpoint, action: &str) -> Result<Url, ClientError> {
        if let Some(u) = self.urls.get(action) {
            return Ok(u.clone());
        }
        let Some(t) = &self.opts.template else {
            return Err(ClientError::BadUrl {
                what: format!("action '{action}'"),
                why: "no URL given for it and no URL template".into(),
            });
        };
        let host = ep.api_host.trim_end_matches('/');
        let s = t
            .replace("{api_host}", host)
            .replace("{namespace}", &ep.namespace)
            .replace("{action}", action);
        parse_url(&s, action)
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
        let authorization = if self.opts.send_auth {
            Some(basic_auth(&ep.auth).ok_or_else(|| ClientError::BadKey {
                namespace: ep.namespace.clone(),
            })?)
        } else {
            None
        };
        let t = Arc::new(Target {
            api_host: ep.api_host.clone(),
            namespace: ep.namespace.clone(),
            auth: ep.auth.clone(),
            action: action.to_string(),
            url: self.url_for(ep, action)?,
            authorization,
        });
        if let Ok(mut map) = self.targets.write() {
            let v = map.entry(h).or_default();
            if !v.iter().any(|x| same(&x)) {
                v.push(t.clone());
            }
        }
        Ok(t)
    }

    /// One invocation, classified by its HTTP status (never fails).
    pub(crate) async fn invoke_function(
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
            let req = self
                .client
                .post(t.url.clone())
                .header(CONTENT_TYPE, "application/json")
                .timeout(self.opts.http.request_timeout)
                .body(body);
            match &t.authorization {
                Some(a) => req.header(AUTHORIZATION, a.clone()),
                None => req,
            }
        };
        send_with_retries(&self.opts.retries, body, request, |sent, answered, a| {
            std::future::ready(plain_outcome(sent, answered, &a))
        })
        .await
    }
}

/// The outcome of an answer from a platform without records: its class from the HTTP
/// status, the id header as activation id, the body's message unless a success.
fn plain_outcome(sent: u64, answered: u64, a: &Answer) -> Outcome {
    let class = classify_plain_http(a.status);
    Outcome {
        activation_id: a.id().map(str::to_string),
        error: (class != OutcomeClass::Success).then(|| error_message(a.status, &a.body)),
        ..answered_outcome(sent, answered, Some(a.status), class)
    }
}

fn parse_url(u: &str, action: &str) -> Result<Url, ClientError> {
    let bad = |why: String| ClientError::BadUrl {
        what: format!("action '{action}'"),
        why,
    };
    let url = Url::parse(u).map_err(|e| bad(format!("'{u}': {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("'{u}': the scheme must be http or https")));
    }
    Ok(url)
}

impl Backend for GenericHttp {
    fn fork(&self) -> Option<Arc<dyn Backend>> {
        let client = build_client(&self.opts.http).ok()?;
        let fork = GenericHttp::with_client(client, self.opts.clone()).ok()?;
        if let (Ok(mine), Ok(mut theirs)) = (self.targets.read(), fork.targets.write()) {
            theirs.clone_from(&mine);
        }
        Some(Arc::new(fork))
    }

    /// Checks that `function` has a URL: plain HTTP platforms deploy out of band.
    fn deploy<'a>(
        &'a self,
        ep: &'a Endpoint,
        _user: &'a User,
        function: &'a Function,
    ) -> BoxFut<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.target(ep, &function.action)
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("function {}: {e}", function.name))
        })
    }

    fn invoke<'a>(
        &'a self,
        ep: &'a Endpoint,
        action: &'a str,
        params: &'a Map<String, Value>,
    ) -> BoxFut<'a, Outcome> {
        Box::pin(self.invoke_function(ep, action, params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, id: Option<&str>, body: &'static [u8]) -> Answer {
        Answer {
            status,
            id_header: id.map(|s| HeaderValue::from_str(s).unwrap()),
            retry_after: None,
            body: bytes::Bytes::from_static(body),
        }
    }

    #[test]
    fn plain_answers_are_classified_by_status_with_the_id_header() {
        let ok = plain_outcome(1, 2, &answer(201, Some("call-1"), b"{}"));
        assert_eq!(
            (ok.sent_ns, ok.answered_ns, ok.http_status, ok.class),
            (1, 2, Some(201), OutcomeClass::Success)
        );
        assert_eq!(ok.activation_id.as_deref(), Some("call-1"));
        assert_eq!(ok.error, None);
        let bad = plain_outcome(1, 2, &answer(502, None, b"Bad Gateway"));
        assert_eq!(bad.class, OutcomeClass::ServerError);
        assert_eq!(bad.error.as_deref(), Some("HTTP 502: Bad Gateway"));
        assert_eq!((bad.activation_id, bad.record.is_none()), (None, true));
    }

    #[test]
    fn urls_come_from_the_map_then_the_template() {
        let mut urls = HashMap::new();
        urls.insert("a".to_string(), "http://127.0.0.1:8080/a".to_string());
        let g = GenericHttp::new(GenericOptions {
            urls,
            template: Some("{api_host}/function/{action}".into()),
            ..Default::default()
        })
        .unwrap();
        let ep = Endpoint {
            api_host: "http://gw:8080/".into(),
            auth: String::new(),
            namespace: "ns".into(),
        };
        assert_eq!(
            g.url_for(&ep, "a").unwrap().as_str(),
            "http://127.0.0.1:8080/a"
        );
        assert_eq!(
            g.url_for(&ep, "b").unwrap().as_str(),
            "http://gw:8080/function/b"
        );
        let none = GenericHttp::new(GenericOptions::default()).unwrap();
        assert!(none.url_for(&ep, "b").is_err());
        let mut bad = HashMap::new();
        bad.insert("a".to_string(), "ftp://x".to_string());
        assert!(
            GenericHttp::new(GenericOptions {
                urls: bad,
                ..Default::default()
            })
            .is_err()
        );
    }
}
