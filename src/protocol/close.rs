//! The WebSocket close codes the hub sends, with their reasons.

/// WebSocket close codes the hub sends (protocol/PROTOCOL.md, "Close codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the client signed out or asked to close.
    Normal,
    /// 1007: a text frame that is not UTF-8 (RFC 6455 requires failing the connection).
    InvalidPayload,
    /// 1009: a frame over the hard size limit.
    MessageTooBig,
    /// 1011: the hub hit an internal error on this socket.
    InternalError,
    /// 1012: the hub is restarting or shutting down: reconnect (with backoff) and resume.
    ServiceRestart,
    /// 4001: no successful `auth` frame within the authentication deadline.
    AuthTimeout,
    /// 4002: too many failed `auth` frames.
    AuthFailed,
    /// 4003: the session was revoked (signed out, replaced, signed in elsewhere, the account
    /// deleted, or the agent disabled: the reasons of `session.revoked`).
    SessionRevoked,
    /// 4004: the session expired; sign in again.
    SessionExpired,
    /// 4008: the socket did not read its events fast enough and its outbound queue overflowed.
    SlowConsumer,
    /// 4009: frames arrived faster than the per-connection rate limit, and kept coming.
    Flood,
    /// 4010: too many malformed frames.
    ProtocolAbuse,
    /// 4011: no pong (or any frame) within the ping deadline.
    PingTimeout,
}

impl CloseCode {
    /// The numeric code carried in the close frame.
    pub fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::InvalidPayload => 1007,
            Self::MessageTooBig => 1009,
            Self::InternalError => 1011,
            Self::ServiceRestart => 1012,
            Self::AuthTimeout => 4001,
            Self::AuthFailed => 4002,
            Self::SessionRevoked => 4003,
            Self::SessionExpired => 4004,
            Self::SlowConsumer => 4008,
            Self::Flood => 4009,
            Self::ProtocolAbuse => 4010,
            Self::PingTimeout => 4011,
        }
    }

    /// The short reason carried in the close frame (also the metrics label).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::InvalidPayload => "invalid_payload",
            Self::MessageTooBig => "message_too_big",
            Self::InternalError => "internal_error",
            Self::ServiceRestart => "service_restart",
            Self::AuthTimeout => "auth_timeout",
            Self::AuthFailed => "auth_failed",
            Self::SessionRevoked => "session_revoked",
            Self::SessionExpired => "session_expired",
            Self::SlowConsumer => "slow_consumer",
            Self::Flood => "flood",
            Self::ProtocolAbuse => "protocol_abuse",
            Self::PingTimeout => "ping_timeout",
        }
    }
}
