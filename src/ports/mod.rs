//! The ports: narrow capability traits the domain calls and the adapters implement. The ports with
//! two implementations (storage, roster, quotas, objects) have one conformance suite each that both pass;
//! the suites live in `tests/conformance/`, so that they build into the tests and not into the hub.

pub mod broker;
pub mod objects;
pub mod push;
pub mod quota;
pub mod roster;
pub mod sms;
pub mod store;
