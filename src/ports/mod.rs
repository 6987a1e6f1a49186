//! The ports: narrow capability traits the domain calls and the adapters implement, each with one
//! conformance suite that every implementation passes.

pub mod broker;
pub mod quota;
pub mod roster;
pub mod sms;
pub mod store;
