//! Injector mode (`faasload load trace.yaml`): the schedule -> invoke -> record pipeline.
//! The scheduler releases every invocation at its intended instant (absolute deadlines on
//! one monotonic clock, sub-millisecond), invoker tasks call the platform through the
//! [`crate::openwhisk::Backend`] interface and ask the monitor what each activation cost,
//! and one recorder task feeds the histograms and the store's batching writer: neither
//! the network nor the database ever sits on the scheduler's path.
pub mod dry_run;
pub mod invoker;
pub mod openwhisk;
pub mod monitor_client;
pub mod recorder;
pub mod run;
pub mod scheduler;
pub mod timer;
