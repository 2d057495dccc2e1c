//! The wire formats faasload speaks, each written once as a type: OpenWhisk activation
//! records and the outcome classes of an invocation ([`record`]).
pub mod record;

pub use record::{ActivationRecord, Outcome, OutcomeClass, RecordError};
