//! End-to-end tests of the results: the store on real SQLite, PostgreSQL and MariaDB, and
//! `faasload export`. One test binary, one module per area.
#![expect(
    clippy::unwrap_used,
    reason = "in tests, a failed unwrap is the test failing"
)]

mod cli;
mod export;
mod html;
mod store;
