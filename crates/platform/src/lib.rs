//! The embedded OpenWhisk-compatible platform (`faasload platform`): OpenWhisk's REST API
//! (`rest/`), actions and packages (`entities`), activation records (`activations`), rate
//! limits (`throttle`), the container pool with OpenWhisk's classic rules (`pool`), the
//! container backends (`backend`: the process backend `container`, confined by
//! `sandbox`, or Docker `backend::docker`), ActionLoop runtimes (`runtime`),
//! one activation end to end (`invoke`), monitor notifications (`notify`), one live
//! platform per invoker name (`invoker_lock`), and start-up / shutdown (`server`). Configuration: `config/platform.yml` (`config`).
mod activations;
mod backend;
pub mod config;
mod container;
mod entities;
mod ids;
mod invoke;
mod invoker_lock;
mod notify;
mod pool;
mod rest;
mod runtime;
mod sandbox;
mod server;
mod throttle;

pub use ids::{is_activation_id, now_ms};
pub use invoker_lock::LockError;
pub use server::{PlatformHandle, start};
