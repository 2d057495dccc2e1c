//! The subscription stream: after `{"type":"subscribe"}` the connection carries one JSON
//! line per item — `subscribed` first, then container events, activation summaries,
//! samples (when asked) and `lagged` when the subscriber fell behind. Items are written
//! directly (`serde_json::to_string`), fields in the order declared here.
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::answer::ActivationSummary;

/// What happened to a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerEvent {
    Discovered,
    Removed,
    Paused,
    Resumed,
}

/// One line of the subscription stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamItem {
    /// The answer to `subscribe`: the stream starts after it.
    Subscribed,
    Container {
        event: ContainerEvent,
        id: String,
        /// The pattern kind that recognised it.
        kind: String,
        /// Epoch seconds.
        time: f64,
    },
    /// A sample of a container (only with `"samples": true`).
    Sample {
        id: String,
        /// Epoch seconds.
        date: f64,
        #[serde(deserialize_with = "super::answer::required")]
        cpu_ns: Option<u64>,
        #[serde(deserialize_with = "super::answer::required")]
        memory: Option<u64>,
        #[serde(deserialize_with = "super::answer::required")]
        rss_mapped: Option<u64>,
    },
    Activation {
        summary: Arc<ActivationSummary>,
    },
    /// The subscriber fell behind and missed this many items.
    Lagged {
        missed: u64,
    },
}
