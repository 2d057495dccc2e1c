//! The per-container monitor daemon (being written; see issue 2).
pub mod btf;
pub mod cli;
