//! End-to-end tests of the embedded OpenWhisk-compatible platform: its REST API over real
//! HTTP, the sandbox seen from inside an action, the official JavaScript client, the
//! Docker backend, the loader's OpenWhisk client against it, and its notifications to the
//! monitor. One test binary, one module per area.
#![expect(
    clippy::unwrap_used,
    reason = "in tests, a failed unwrap is the test failing"
)]

mod api;
mod docker;
mod js_client;
mod monitor;
mod openwhisk_client;
mod sandbox;
