//! The platform side of the loader: one small interface ([`Backend`]: deploy, invoke,
//! fetch record) so the scheduler, recorder and reports never change, with the OpenWhisk
//! REST implementation (typed client, credentials like `wsk`) and a generic HTTP one.
pub mod record;

pub use record::{ActivationRecord, Outcome, OutcomeClass};

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

use crate::trace::{Function, User};

/// A boxed future (the backend is used as a trait object).
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
}
