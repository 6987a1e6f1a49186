//! The typed frames of protocol v1. These serde types are the protocol: JSON and MessagePack are two
//! spellings of the same values (see protocol/PROTOCOL.md).
//!
//! Every client frame is a request `{"id": <u64>, "type": "<name>", ...fields}` and gets exactly one
//! reply echoing its `id`: `{"type": "<name>.ok", "id": ..., ...}` or `{"type": "error", "id": ...}`.
//! Frames from the hub without an `id` are events.

pub use crate::auth::RevokeReason;
use crate::error::ErrorCode;
use crate::ids::{DeviceId, UserId};
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// The client-chosen request id, echoed in the reply. Keep it below 2^53 for JavaScript clients.
pub type RequestId = u64;

/// A request from a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Request {
    /// Authenticates the socket with a session token (the first frame of a connection).
    #[serde(rename = "auth")]
    Auth {
        /// The session token from `POST /v1/auth/verify`.
        token: String,
    },
    /// Application-level ping for clients that cannot see WebSocket pings (browsers). Allowed before `auth`.
    #[serde(rename = "ping")]
    Ping {},
    /// Issues a new token for this session with a fresh expiry; the old token stops working.
    #[serde(rename = "session.refresh")]
    SessionRefresh {},
    /// Signs this session out everywhere it is connected, then closes the socket (1000).
    #[serde(rename = "session.sign_out")]
    SessionSignOut {},
    /// The signed-in user's own account: id, number, registration time.
    #[serde(rename = "me")]
    Me {},
}

impl Request {
    /// Every request `type`, to tell an unknown type from a malformed known one.
    pub const TYPES: &'static [&'static str] = &["auth", "ping", "session.refresh", "session.sign_out", "me"];

    /// The request's `type`, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "auth",
            Self::Ping {} => "ping",
            Self::SessionRefresh {} => "session.refresh",
            Self::SessionSignOut {} => "session.sign_out",
            Self::Me {} => "me",
        }
    }
}

/// A decoded request with its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFrame {
    /// The client's id for the request.
    pub id: RequestId,
    /// What it asks for.
    pub request: Request,
}

/// A frame from the hub: a reply (with `id`) or an event (without).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerFrame {
    /// Reply to `auth`.
    #[serde(rename = "auth.ok")]
    AuthOk {
        /// Echoed request id.
        id: RequestId,
        /// The signed-in user.
        user_id: UserId,
        /// The device of the session.
        device_id: DeviceId,
        /// When the session's token expires (refresh before).
        session_expires_at: Millis,
    },
    /// Reply to `ping`.
    #[serde(rename = "ping.ok")]
    PingOk {
        /// Echoed request id.
        id: RequestId,
        /// The hub's clock.
        server_time: Millis,
    },
    /// Reply to `session.refresh`.
    #[serde(rename = "session.refresh.ok")]
    SessionRefreshOk {
        /// Echoed request id.
        id: RequestId,
        /// The new token; the old one no longer works.
        token: String,
        /// When the new token expires.
        expires_at: Millis,
    },
    /// Reply to `session.sign_out`; the hub then closes the socket with 1000.
    #[serde(rename = "session.sign_out.ok")]
    SessionSignOutOk {
        /// Echoed request id.
        id: RequestId,
    },
    /// Reply to `me`.
    #[serde(rename = "me.ok")]
    MeOk {
        /// Echoed request id.
        id: RequestId,
        /// The user's id.
        user_id: UserId,
        /// The user's own number (only ever sent to its owner).
        phone: String,
        /// When the number first signed in.
        registered_at: Millis,
    },
    /// The request failed, or a frame could not be understood (`id` is null when it could not be read).
    #[serde(rename = "error")]
    Error {
        /// Echoed request id, if the frame had a readable one.
        id: Option<RequestId>,
        /// Stable machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation (English, lowercase).
        message: String,
        /// When to try again, for `rate_limited` and similar.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Event: the session's token expires soon; send `session.refresh`.
    #[serde(rename = "session.expiring")]
    SessionExpiring {
        /// When it expires.
        expires_at: Millis,
    },
    /// Event: the session expired; the hub closes the socket with 4004.
    #[serde(rename = "session.expired")]
    SessionExpired {},
    /// Event: the session was revoked; the hub closes the socket with 4003.
    #[serde(rename = "session.revoked")]
    SessionRevoked {
        /// Why.
        reason: RevokeReason,
    },
}

impl ServerFrame {
    /// The frame's `type`, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AuthOk { .. } => "auth.ok",
            Self::PingOk { .. } => "ping.ok",
            Self::SessionRefreshOk { .. } => "session.refresh.ok",
            Self::SessionSignOutOk { .. } => "session.sign_out.ok",
            Self::MeOk { .. } => "me.ok",
            Self::Error { .. } => "error",
            Self::SessionExpiring { .. } => "session.expiring",
            Self::SessionExpired {} => "session.expired",
            Self::SessionRevoked { .. } => "session.revoked",
        }
    }

    /// The error reply for `error`, echoing `id`.
    pub fn error(id: Option<RequestId>, error: &crate::Error) -> Self {
        Self::Error {
            id,
            code: error.code(),
            message: error.public_message(),
            retry_after_ms: error.retry_after().map(|d| d.as_millis().min(u64::MAX as u128) as u64),
        }
    }
}
