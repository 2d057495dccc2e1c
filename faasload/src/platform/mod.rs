//! The embedded OpenWhisk-compatible platform (being written; see issue 3).
pub mod cli;
