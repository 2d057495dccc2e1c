//! The wire formats faasload speaks, each written once as a type: the monitor's socket
//! protocol ([`monitor`]: requests, answers, notifications, errors, the subscription
//! stream), OpenWhisk activation records and the outcome classes of an invocation
//! ([`record`]).
pub mod monitor;
pub mod record;

pub use record::{ActivationRecord, Outcome, OutcomeClass, RecordError};
