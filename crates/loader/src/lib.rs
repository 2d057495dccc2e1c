//! Injector mode (`faasload load trace.yaml`): the schedule -> invoke -> record pipeline.
//! The scheduler releases every invocation at its intended instant (absolute deadlines on
//! one monotonic clock, sub-millisecond), invoker tasks call the platform through the
//! [`crate::openwhisk::Backend`] interface and ask the monitor what each activation cost,
//! and one recorder task feeds the histograms and the store's batching writer: neither
//! the network nor the database ever sits on the scheduler's path.
mod dry_run;
mod invoker;
mod monitor_client;
pub mod openwhisk;
mod recorder;
mod run;
mod scheduler;
mod summary;
mod timer;

pub use dry_run::{render as render_dry_run, walk as walk_dry_run};
pub use invoker::{Ctx, Live, invoke};
pub use monitor_client::MonitorClient;
pub use recorder::RowSink;
pub use run::{DEFAULT_SENDER_NICE, ReplayOptions, ReplayResult, default_senders, replay};
pub use summary::{MaxFailed, RunSummary};
