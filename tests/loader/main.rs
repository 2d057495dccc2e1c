//! End-to-end tests of the loader side: `faasload load` replays, the OpenWhisk and HTTP
//! backends against a scripted server, the function suite, `faasload generate` and
//! `faasload trace`. One test binary, one module per area.
#![expect(
    clippy::unwrap_used,
    reason = "in tests, a failed unwrap is the test failing"
)]

mod functions;
mod generator;
mod openwhisk;
mod replay;
mod run_end;
mod systemd_unit;
mod trace;
