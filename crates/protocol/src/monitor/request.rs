//! Requests to the monitor: notifications (original FaaSLoad container events and
//! activation boundaries), the original FaaSLoad query and the typed queries. Clients
//! serialize them; the monitor reads them with [`Request::parse`], which tolerates unknown
//! fields and optional fields of the wrong type (as the monitor always has) and turns
//! everything else into a typed [`RequestError`].
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::error::RequestError;
use super::{lenient, secs_to_ns};

/// Which socket a request came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Socket {
    /// `notify.sock`: what an invoker sends.
    Notify,
    /// `query.sock`: what a reader asks (the FaaSLoad query is only understood here).
    Query,
}

/// A request as the monitor reads it.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Notification(Notification),
    Query(Query),
    /// The original FaaSLoad query (query socket only).
    Original(OriginalQuery),
}

/// A container event of the original FaaSLoad notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerAction {
    /// The container started: the monitor looks for its cgroup.
    Run,
    /// It was removed (its data stays readable for the grace period).
    Rm,
    Pause,
    Resume,
}

impl ContainerAction {
    fn name(self) -> &'static str {
        match self {
            ContainerAction::Run => "run",
            ContainerAction::Rm => "rm",
            ContainerAction::Pause => "pause",
            ContainerAction::Resume => "resume",
        }
    }
}

/// What a notification says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotificationKind {
    Container(ContainerAction),
    ActivationStart {
        activation_id: String,
    },
    /// A cold start's initialisation ended: the run begins (protocol 3). The phase from
    /// `activation_start` to here is the activation's init.
    InitEnd {
        activation_id: String,
    },
    ActivationEnd {
        activation_id: String,
    },
}

impl NotificationKind {
    /// Its `action` on the wire.
    pub fn action(&self) -> &'static str {
        match self {
            NotificationKind::Container(a) => a.name(),
            NotificationKind::ActivationStart { .. } => "activation_start",
            NotificationKind::InitEnd { .. } => "init_end",
            NotificationKind::ActivationEnd { .. } => "activation_end",
        }
    }
}

/// A message on the notification socket:
/// `{"action", "container"[, "activation_id"][, "time"][, "ack": true]}` (in this order on
/// the wire; `ack` written only when true, so the original FaaSLoad messages are exactly
/// `{"action":"run","container":"<id>"}`).
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub kind: NotificationKind,
    pub container: String,
    /// Epoch seconds when the sender saw it (informative; the monitor uses its own clock).
    pub time: Option<f64>,
    /// Ask for `{"ok":true}` once recorded (errors are answered either way).
    pub ack: bool,
}

impl Notification {
    /// A container event, without ack (the original FaaSLoad message).
    pub fn container(action: ContainerAction, container: impl Into<String>) -> Notification {
        Notification {
            kind: NotificationKind::Container(action),
            container: container.into(),
            time: None,
            ack: false,
        }
    }

    /// An activation starts in `container`.
    pub fn activation_start(
        container: impl Into<String>,
        activation_id: impl Into<String>,
    ) -> Notification {
        Notification {
            kind: NotificationKind::ActivationStart {
                activation_id: activation_id.into(),
            },
            container: container.into(),
            time: None,
            ack: false,
        }
    }

    /// The initialisation of a cold start in `container` ended (its run begins).
    pub fn init_end(
        container: impl Into<String>,
        activation_id: impl Into<String>,
    ) -> Notification {
        Notification {
            kind: NotificationKind::InitEnd {
                activation_id: activation_id.into(),
            },
            container: container.into(),
            time: None,
            ack: false,
        }
    }

    /// An activation ended in `container`.
    pub fn activation_end(
        container: impl Into<String>,
        activation_id: impl Into<String>,
    ) -> Notification {
        Notification {
            kind: NotificationKind::ActivationEnd {
                activation_id: activation_id.into(),
            },
            container: container.into(),
            time: None,
            ack: false,
        }
    }

    /// The same, asking for the monitor's `{"ok":true}`.
    pub fn with_ack(mut self) -> Notification {
        self.ack = true;
        self
    }

    /// The same, stamped with the sender's time (epoch seconds).
    pub fn at(mut self, time: f64) -> Notification {
        self.time = Some(time);
        self
    }
}

impl Serialize for Notification {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("action", self.kind.action())?;
        m.serialize_entry("container", &self.container)?;
        match &self.kind {
            NotificationKind::ActivationStart { activation_id }
            | NotificationKind::InitEnd { activation_id }
            | NotificationKind::ActivationEnd { activation_id } => {
                m.serialize_entry("activation_id", activation_id)?;
            }
            NotificationKind::Container(_) => {}
        }
        if let Some(t) = self.time {
            m.serialize_entry("time", &t)?;
        }
        if self.ack {
            m.serialize_entry("ack", &true)?;
        }
        m.end()
    }
}

/// The original FaaSLoad query: the samples of `container` between `start` and `end`
/// (epoch seconds). Answered with a list of [`super::OriginalSample`], then the
/// connection closes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OriginalQuery {
    pub container: String,
    pub start: f64,
    pub end: f64,
}

/// A typed query (`{"type": ...}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Query {
    /// Answered with [`super::Hello`].
    Hello,
    /// Answered with [`super::ActivationSummary`].
    Activation(ActivationQuery),
    /// Answered with [`super::WindowSummary`].
    Window(WindowQuery),
    /// Answered with [`super::SamplesAnswer`].
    Samples(WindowQuery),
    /// Answered with [`super::ContainerList`].
    Containers,
    /// Answered with [`super::Stats`].
    Stats,
    /// Answered with [`super::StreamItem::Subscribed`], then the stream.
    Subscribe(SubscribeQuery),
    /// Answered with [`super::Attribution`].
    Attribute(AttributeQuery),
}

/// The longest an `activation` query waits for the activation to end.
pub(super) const MAX_ACTIVATION_WAIT_MS: u64 = 60_000;
/// How long an `attribute` query waits for the sampler by default, and at most.
pub(super) const DEFAULT_ATTRIBUTE_WAIT_MS: u64 = 1000;
pub(super) const MAX_ATTRIBUTE_WAIT_MS: u64 = 10_000;
/// The CPU time (µs) that makes a candidate busy unless the query says otherwise.
pub(super) const DEFAULT_MIN_BUSY_US: u64 = 100;

/// What the monitor measured for one activation, by its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActivationQuery {
    pub activation_id: String,
    /// How long to wait (ms) for the activation to end (default 0, at most 60 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

impl ActivationQuery {
    /// How long to wait, bounded.
    pub fn wait_ms(&self) -> u64 {
        self.wait_ms.unwrap_or(0).min(MAX_ACTIVATION_WAIT_MS)
    }
}

/// A container's time window (epoch seconds, finite and not negative once parsed).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowQuery {
    pub container: String,
    pub start: f64,
    pub end: f64,
}

impl WindowQuery {
    /// Start and end in epoch nanoseconds.
    pub fn range_ns(&self) -> (u64, u64) {
        (
            secs_to_ns(self.start).unwrap_or(0),
            secs_to_ns(self.end).unwrap_or(0),
        )
    }
}

/// Subscription to container events and activation summaries (and samples if asked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubscribeQuery {
    pub samples: bool,
}

/// Which container ran an activation the platform did not notify (protocol 2).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttributeQuery {
    pub namespace: String,
    /// The action (`action` would make the message a notification).
    pub name: String,
    /// Epoch seconds of the record's start and end.
    pub start: f64,
    pub end: f64,
    /// The runtime kind (`python:3`), to match pre-warmed containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether the record says cold start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_busy_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

impl AttributeQuery {
    /// Start and end in epoch nanoseconds.
    pub fn range_ns(&self) -> (u64, u64) {
        (
            secs_to_ns(self.start).unwrap_or(0),
            secs_to_ns(self.end).unwrap_or(0),
        )
    }

    /// The busy threshold in µs.
    pub fn min_busy_us(&self) -> u64 {
        self.min_busy_us.unwrap_or(DEFAULT_MIN_BUSY_US)
    }

    /// How long to wait for the sampler (ms), bounded.
    pub fn wait_ms(&self) -> u64 {
        self.wait_ms
            .unwrap_or(DEFAULT_ATTRIBUTE_WAIT_MS)
            .min(MAX_ATTRIBUTE_WAIT_MS)
    }
}

/// Every key a request may carry, read leniently: which ones make a valid request is
/// decided by [`Request::parse`]. Unknown keys are ignored.
#[derive(Deserialize, Default)]
struct Wire {
    #[serde(default, deserialize_with = "lenient::string")]
    action: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient::string")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient::present")]
    container: Option<Value>,
    #[serde(default, deserialize_with = "lenient::string")]
    activation_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    ack: Option<bool>,
    #[serde(default, deserialize_with = "lenient::f64")]
    time: Option<f64>,
    #[serde(default, deserialize_with = "lenient::f64")]
    start: Option<f64>,
    #[serde(default, deserialize_with = "lenient::f64")]
    end: Option<f64>,
    #[serde(default, deserialize_with = "lenient::u64")]
    wait_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    samples: Option<bool>,
    #[serde(default, deserialize_with = "lenient::string")]
    namespace: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, rename = "kind", deserialize_with = "lenient::string")]
    runtime: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    cold: Option<bool>,
    #[serde(default, deserialize_with = "lenient::u64")]
    min_busy_us: Option<u64>,
}

/// Epoch seconds usable as a time (finite, not negative).
fn epoch(secs: Option<f64>) -> Option<f64> {
    secs.filter(|s| secs_to_ns(*s).is_some())
}

impl Wire {
    fn container(&self) -> Option<String> {
        self.container.as_ref()?.as_str().map(str::to_string)
    }

    fn notification(self, action: &str) -> Result<Notification, RequestError> {
        let container = self
            .container()
            .ok_or(RequestError::NotificationWithoutContainer)?;
        let activation_id = || {
            self.activation_id
                .clone()
                .ok_or(RequestError::NotificationWithoutActivation)
        };
        let kind = match action {
            "run" => NotificationKind::Container(ContainerAction::Run),
            "rm" => NotificationKind::Container(ContainerAction::Rm),
            "pause" => NotificationKind::Container(ContainerAction::Pause),
            "resume" => NotificationKind::Container(ContainerAction::Resume),
            "activation_start" => NotificationKind::ActivationStart {
                activation_id: activation_id()?,
            },
            "init_end" => NotificationKind::InitEnd {
                activation_id: activation_id()?,
            },
            "activation_end" => NotificationKind::ActivationEnd {
                activation_id: activation_id()?,
            },
            other => return Err(RequestError::UnknownAction(other.to_string())),
        };
        Ok(Notification {
            kind,
            container,
            time: self.time,
            ack: self.ack.unwrap_or(false),
        })
    }

    fn window(&self) -> Option<WindowQuery> {
        Some(WindowQuery {
            container: self.container()?,
            start: epoch(self.start)?,
            end: epoch(self.end)?,
        })
    }

    fn query(self, kind: &str) -> Result<Query, RequestError> {
        Ok(match kind {
            "hello" => Query::Hello,
            "activation" => Query::Activation(ActivationQuery {
                activation_id: self
                    .activation_id
                    .ok_or(RequestError::QueryWithoutActivation)?,
                wait_ms: self.wait_ms,
            }),
            "window" => Query::Window(self.window().ok_or(RequestError::BadWindow)?),
            "samples" => Query::Samples(self.window().ok_or(RequestError::BadWindow)?),
            "containers" => Query::Containers,
            "stats" => Query::Stats,
            "subscribe" => Query::Subscribe(SubscribeQuery {
                samples: self.samples.unwrap_or(false),
            }),
            "attribute" => {
                let (Some(namespace), Some(name), Some(start), Some(end)) = (
                    self.namespace,
                    self.name,
                    epoch(self.start),
                    epoch(self.end),
                ) else {
                    return Err(RequestError::BadAttribute);
                };
                let q = AttributeQuery {
                    namespace,
                    name,
                    start,
                    end,
                    kind: self.runtime,
                    cold: self.cold,
                    min_busy_us: self.min_busy_us,
                    wait_ms: self.wait_ms,
                };
                let (s, e) = q.range_ns();
                if e < s {
                    return Err(RequestError::EndBeforeStart);
                }
                Query::Attribute(q)
            }
            other => return Err(RequestError::UnknownType(other.to_string())),
        })
    }
}

impl Request {
    /// Reads one request that came on `socket`: a string `action` makes a notification,
    /// else a string `type` a typed query, else (query socket) a `container` key the
    /// FaaSLoad query.
    pub fn parse(v: Value, socket: Socket) -> Result<Request, RequestError> {
        if !v.is_object() {
            return Err(RequestError::NotObject);
        }
        let w: Wire = serde_json::from_value(v).map_err(|_| RequestError::NotObject)?;
        if let Some(action) = w.action.clone() {
            return w.notification(&action).map(Request::Notification);
        }
        if let Some(kind) = w.kind.clone() {
            return w.query(&kind).map(Request::Query);
        }
        if socket == Socket::Query && w.container.is_some() {
            return w
                .window()
                .map(|q| {
                    Request::Original(OriginalQuery {
                        container: q.container,
                        start: q.start,
                        end: q.end,
                    })
                })
                .ok_or(RequestError::BadOriginalQuery);
        }
        Err(RequestError::UnknownRequest)
    }

    /// Reads one request from its bytes (for tests and tools; the monitor frames first).
    pub fn parse_str(text: &str, socket: Socket) -> Result<Request, RequestError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
        Request::parse(v, socket)
    }
}

impl From<Notification> for Request {
    fn from(n: Notification) -> Request {
        Request::Notification(n)
    }
}

impl From<Query> for Request {
    fn from(q: Query) -> Request {
        Request::Query(q)
    }
}

impl From<OriginalQuery> for Request {
    fn from(q: OriginalQuery) -> Request {
        Request::Original(q)
    }
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Request::Notification(n) => n.serialize(s),
            Request::Query(q) => q.serialize(s),
            Request::Original(q) => q.serialize(s),
        }
    }
}
