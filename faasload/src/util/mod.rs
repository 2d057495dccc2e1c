//! Small shared pieces: logging set-up, clocks, and the test/benchmark workload.
pub mod clock;
pub mod logging;
pub mod workload;
