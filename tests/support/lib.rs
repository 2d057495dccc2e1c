//! placeholder
pub mod platform;
