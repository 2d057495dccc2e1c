//! The platform side of the loader: one small interface ([`Backend`]: deploy, invoke,
//! fetch record) so the scheduler, recorder and reports never change, with the OpenWhisk
//! REST implementation (typed client, credentials like `wsk`) and a generic HTTP one.
//!
//! - [`record`]: outcomes, classes and typed activation records (parsed from JSON);
//! - [`classify`]: HTTP status / record status / transport error -> [`OutcomeClass`];
//! - [`credentials`]: endpoints from the trace, the environment or `~/.wskprops`;
//! - [`http`]: the shared HTTP client, timeouts, retries, timed requests;
//! - [`client`]: the [`OpenWhisk`] backend; [`generic`]: the [`GenericHttp`] backend;
//! - [`deploy`]: [`deploy_all`], every (user, function) pair of a trace.
mod classify;
mod client;
mod credentials;
mod deploy;
mod generic;
mod http;

pub use client::{OpenWhisk, OpenWhiskOptions, PollOptions};
pub use credentials::{CredentialsError, SYSTEMD_CREDENTIAL, resolve_endpoint};
pub use deploy::{DeployReport, DeployedAction, deploy_all};
pub use faasload_protocol::record::{self, ActivationRecord, Outcome, OutcomeClass};
pub use generic::{GenericHttp, GenericOptions};
pub use http::{ClientError, HttpOptions, RetryOptions};

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

use faasload_trace::{Function, User};

/// A boxed future (the backend is used as a trait object).
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a user's requests go and with which key.
#[derive(Clone)]
pub struct Endpoint {
    /// Base URL, e.g. `http://127.0.0.1:3233`.
    pub api_host: String,
    /// `uuid:key`. Never logged (Debug hides it).
    pub auth: String,
    /// The user's namespace.
    pub namespace: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("api_host", &self.api_host)
            .field("namespace", &self.namespace)
            .field("auth", &"<hidden>")
            .finish()
    }
}

/// One platform the loader drives.
pub trait Backend: Send + Sync {
    /// Creates or overwrites the action of `function` in `user`'s namespace (idempotent).
    fn deploy<'a>(
        &'a self,
        ep: &'a Endpoint,
        user: &'a User,
        function: &'a Function,
    ) -> BoxFut<'a, anyhow::Result<()>>;
    /// Invokes `action` with `params`; never fails: every outcome is classified.
    fn invoke<'a>(
        &'a self,
        ep: &'a Endpoint,
        action: &'a str,
        params: &'a Map<String, Value>,
    ) -> BoxFut<'a, Outcome>;
    /// A copy of this backend with its own connections, for one sender thread of a
    /// replay: a connection then lives on the thread that uses it (no hand-off between
    /// threads per request). None: the threads share this one.
    fn fork(&self) -> Option<std::sync::Arc<dyn Backend>> {
        None
    }
    /// The stored record of an activation (None while it is not stored). Platforms that
    /// keep no records answer an error.
    fn fetch_record<'a>(
        &'a self,
        _ep: &'a Endpoint,
        activation_id: &'a str,
    ) -> BoxFut<'a, anyhow::Result<Option<ActivationRecord>>> {
        Box::pin(async move {
            Err(anyhow::anyhow!(
                "activation {activation_id}: this platform keeps no activation records"
            ))
        })
    }
}
