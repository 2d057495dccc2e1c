//! What `load`, `deploy` and `generate` share: where the platform is and how to talk to
//! it (the target arguments), each user's endpoint, the backend, the monitor socket to
//! ask, and the runtime the commands run on.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::embedded::Embedded;
use faasload_loader::openwhisk::HttpOptions;
use faasload_loader::openwhisk::{
    Backend, Endpoint, OpenWhisk, OpenWhiskOptions, resolve_endpoint,
};
use faasload_loader::openwhisk::{GenericHttp, GenericOptions};
use faasload_trace::Trace;

/// Which kind of platform the loader drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PlatformKind {
    /// OpenWhisk's REST API (real deployments and the embedded platform).
    Openwhisk,
    /// Plain HTTP functions, one URL per function (Knative, OpenFaaS, ...).
    Http,
}

/// Where the platform is and how to talk to it (shared by `load`, `deploy` and
/// `generate`; the first and the last also take `--embedded`).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct TargetArgs {
    /// Platform kind.
    #[arg(long, value_enum, default_value = "openwhisk")]
    pub platform: PlatformKind,
    /// API host for users without their own (else `__OW_API_HOST`, then ~/.wskprops).
    #[arg(long)]
    pub api_host: Option<String>,
    /// `uuid:key` for users without their own (else `__OW_API_KEY`, then ~/.wskprops).
    #[arg(long, env = "FAASLOAD_AUTH", hide_env_values = true)]
    pub auth: Option<String>,
    /// Accept any TLS certificate (self-signed test deployments).
    #[arg(long)]
    pub insecure: bool,
    /// For `--platform http`: URL template, e.g. `{api_host}/function/{action}`.
    #[arg(long)]
    pub url_template: Option<String>,
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

pub(crate) fn http_options(t: &TargetArgs, request_timeout: Duration) -> HttpOptions {
    HttpOptions {
        insecure: t.insecure,
        request_timeout,
        ..HttpOptions::default()
    }
}

/// The endpoints of every user (trace order).
pub(crate) fn endpoints(
    trace: &Trace,
    t: &TargetArgs,
    emb: Option<&Embedded>,
) -> Result<Vec<Endpoint>> {
    trace
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| match emb {
            Some(e) => Ok(Endpoint {
                api_host: e.api_host.clone(),
                auth: e.auths[i].clone(),
                namespace: u.namespace.clone(),
            }),
            None => resolve_endpoint(
                u.api_host.as_deref().or(t.api_host.as_deref()),
                u.auth.as_deref().or(t.auth.as_deref()),
                Some(&u.namespace),
            )
            .with_context(|| format!("{}: user {}", trace.origin, u.name)),
        })
        .collect()
}

pub(crate) fn backend(t: &TargetArgs, ow: OpenWhiskOptions) -> Result<Arc<dyn Backend>> {
    Ok(match t.platform {
        PlatformKind::Openwhisk => Arc::new(OpenWhisk::new(ow)?),
        PlatformKind::Http => Arc::new(GenericHttp::new(GenericOptions {
            http: ow.http,
            retries: ow.retries,
            template: t.url_template.clone(),
            ..GenericOptions::default()
        })?),
    })
}

/// The monitor's query socket to ask: none when disabled, the embedded monitor's, the
/// given one, else the default path when it exists (with a warning when it does not).
pub(crate) fn monitor_socket(
    disabled: bool,
    given: Option<&PathBuf>,
    emb: Option<&Embedded>,
) -> Option<PathBuf> {
    if disabled {
        return None;
    }
    if let Some(e) = emb {
        return e.query_socket.clone();
    }
    let p = given
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/run/faasload/query.sock"));
    if given.is_some() || p.exists() {
        Some(p)
    } else {
        tracing::warn!(
            "no monitor socket at {}: rows will have no CPU/memory (--monitor-socket to set one)",
            p.display()
        );
        None
    }
}
