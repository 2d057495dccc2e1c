//! OS facilities shared by faasload's crates: the monotonic and wall clocks every
//! measurement is taken on, thread priority for time-critical and background threads,
//! and steady process memory for replays.
pub mod clock;
pub mod memory;
pub mod priority;
