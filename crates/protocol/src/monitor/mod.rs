//! The monitor's socket protocol, typed: every request ([`request`]), answer
//! ([`answer`]), subscription stream item ([`stream`]) and error ([`error`]). This module
//! is the only place its JSON field names are written; the monitor, the loader's client,
//! the platform's notifier, the benchmarks and the tests all go through these types.
//!
//! Two UNIX sockets share one framing (a JSON value per request, newline-separated or
//! one per connection):
//! - notifications: the original FaaSLoad `{"action": "run|rm|pause|resume",
//!   "container"}` plus `activation_start` / `activation_end` (`container`,
//!   `activation_id`); with `"ack": true` the monitor answers `{"ok":true}` once the
//!   message is recorded;
//! - queries: the original FaaSLoad `{"container", "start", "end"}` (answered with its
//!   sample list, then the connection closes, as the original did), and typed requests
//!   `{"type": "hello" | "activation" | "window" | "samples" | "containers" | "stats" |
//!   "subscribe" | "attribute"}`.
//!
//! Errors are `{"code": "<kind>", "error": "<message>"}`. Answers on the two sockets are
//! written with their keys sorted ([`encode`]), as the monitor always wrote them, so
//! FaaSLoad-compatible answers stay the same byte for byte; stream items keep their
//! field order ([`stream::StreamItem`]).
mod answer;
mod error;
mod request;
mod stream;

#[cfg(test)]
mod tests;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use answer::{
    Ack, ActivationCounters, ActivationSummary, Attribution, AttributionMethod, AttributionOutcome,
    Backend, Candidate, CgroupVersion, ContainerInfo, ContainerList, ContainerName, ContainerState,
    Hardware, Hello, InitSummary, KernelCounters, MemPeakSource, NameSource, OpenWhiskName,
    OriginalSample, ProgramStats, Reply, SampleEntry, SamplesAnswer, Stats, WindowSummary,
};
pub use error::{ErrorAnswer, ErrorCode, ReplyError, RequestError};
pub use request::{
    ActivationQuery, AttributeQuery, ContainerAction, Notification, NotificationKind,
    OriginalQuery, Query, Request, Socket, SubscribeQuery, WindowQuery,
};
pub use stream::{ContainerEvent, StreamItem};

/// Protocol version announced by `hello`.
/// 2: adds `attribute` (activations without notifications) and names in `containers`.
/// 3: adds the `init_end` notification and the summary's `init` (a cold start's
///    initialisation, measured apart and included in the totals).
pub const PROTOCOL_VERSION: u32 = 3;

/// What `hello` says the monitor can do.
pub const CAPABILITIES: [&str; 10] = [
    "faasload-query",
    "activation",
    "window",
    "samples",
    "containers",
    "stats",
    "subscribe",
    "ack",
    "attribute",
    "init",
];

/// One answer as the monitor writes it on its sockets (without the newline): keys sorted
/// at every level, as they always were.
pub fn encode<T: Serialize + ?Sized>(answer: &T) -> Result<String, serde_json::Error> {
    let mut v = serde_json::to_value(answer)?;
    v.sort_all_objects();
    serde_json::to_string(&v)
}

/// Reads one answer line of the monitor: `T`, or the monitor's error answer, or why the
/// line is neither (a missing or renamed field is an error, never a silent default).
pub fn decode<T: DeserializeOwned>(line: &str) -> Result<T, ReplyError> {
    let line = line.trim_end();
    let fail = |what, source| ReplyError::Decode {
        what,
        line: line.to_string(),
        source,
    };
    let v: Value = serde_json::from_str(line).map_err(|e| fail(short_type_name::<T>(), e))?;
    if v.get("error").is_some() && v.get("code").is_some() {
        let e: ErrorAnswer =
            serde_json::from_value(v).map_err(|e| fail("ErrorAnswer".into(), e))?;
        return Err(ReplyError::Monitor(e));
    }
    serde_json::from_value(v).map_err(|e| fail(short_type_name::<T>(), e))
}

/// `T`'s name without module paths (`Vec<OriginalSample>`).
fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut word = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            out.push_str(word.rsplit("::").next().unwrap_or(&word));
            word.clear();
            out.push(c);
        }
    }
    out.push_str(word.rsplit("::").next().unwrap_or(&word));
    out
}

/// Epoch seconds as the protocol carries them, in epoch nanoseconds (None unless finite
/// and not negative).
pub fn secs_to_ns(secs: f64) -> Option<u64> {
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1e9).round() as u64)
}

/// Epoch nanoseconds as epoch seconds on the wire.
pub fn ns_to_secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Lenient readers of optional request fields: a value of the wrong type counts as absent
/// (the monitor always tolerated that), so parsing a request never fails on them.
mod lenient {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    pub(super) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Some(s),
            _ => None,
        })
    }

    pub(super) fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Value::deserialize(d)?.as_f64())
    }

    pub(super) fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(Value::deserialize(d)?.as_u64())
    }

    pub(super) fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(Value::deserialize(d)?.as_bool())
    }

    /// Any value, `null` included (the key's presence is what matters).
    pub(super) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        Value::deserialize(d).map(Some)
    }
}
