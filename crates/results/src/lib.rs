//! faasload's results: the store of every run ([`store`]: SQLite, PostgreSQL, MariaDB,
//! FaaSLoad-compatible schema), latency reports from it ([`report`]: HdrHistograms,
//! text, interval logs, Prometheus), and datasets exported from it ([`export`]).
pub mod export;
pub mod report;
pub mod store;
