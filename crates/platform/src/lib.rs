//! The embedded OpenWhisk-compatible platform (`faasload platform`): OpenWhisk's REST API
//! (`rest/`), actions and packages (`entities`), activation records (`activations`), rate
//! limits (`throttle`), the container pool with OpenWhisk's classic rules (`pool`), the
//! container backends (`backend`: the process backend `container`, confined by
//! `sandbox`, or Docker `backend::docker`), ActionLoop runtimes (`runtime`),
//! one activation end to end (`invoke`), monitor notifications (`notify`), one live
//! platform per invoker name (`invoker_lock`), and start-up / shutdown (`server`). Configuration: `config/platform.yml` (`config`).
pub mod activations;
pub mod backend;
pub mod config;
pub mod container;
pub mod entities;
pub mod ids;
pub mod invoke;
pub mod invoker_lock;
pub mod notify;
pub mod pool;
pub mod rest;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod throttle;
