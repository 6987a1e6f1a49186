//! The typed frames of protocol v1. These serde types are the protocol: JSON and MessagePack are two
//! spellings of the same values (see protocol/PROTOCOL.md).
//!
//! Every client frame is a request `{"id": <u64>, "type": "<name>", ...fields}` and gets exactly one
//! reply echoing its `id`: `{"type": "<name>.ok", "id": ..., ...}` or `{"type": "error", "id": ...}`.
//! Frames from the hub without an `id` are events.
//!
//! Requests are in `request.rs`, the hub's replies and events in `server.rs`.

mod request;
mod server;

pub use crate::model::account::RevokeReason;
pub use request::{Request, RequestFrame};
pub use server::ServerFrame;

/// A user's settings document: a JSON object (a MessagePack map with string keys).
pub use crate::model::telemetry::SettingsDocument;

/// The client-chosen request id, echoed in the reply. Keep it below 2^53 for JavaScript clients.
pub type RequestId = u64;
