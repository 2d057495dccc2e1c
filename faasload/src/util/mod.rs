//! Small shared pieces: logging set-up, clocks, thread priority, steady memory, and the
//! test/benchmark workload.
pub mod clock;
pub mod logging;
pub mod memory;
pub mod priority;
pub mod workload;
