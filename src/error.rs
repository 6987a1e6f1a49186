//! The one domain error enum: everything that can go wrong for a client, in the product's words, with
//! its text; and the hub's `Result`. How an error goes out on the wire (its code, HTTP status and
//! public message) is `protocol::errors`.

use std::time::Duration;

/// Result with the hub's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong for a client, in the product's words.
///
/// Messages are lowercase, without a trailing period, and never contain a phone number, code,
/// token or message body.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The frame or body could not be decoded into the request it names (missing field, wrong type, not a map).
    #[error("{0}")]
    BadRequest(String),
    /// The frame's `type` is not one the hub knows.
    #[error("unknown frame type")]
    UnknownType,
    /// Something the client sent is larger than its limit. The message names it, its size when
    /// known, and the limit, in the unit the limit counts.
    #[error("{}", too_large_message(what, *size, *limit, *unit))]
    TooLarge {
        /// What is too large, as the message names it: "frame", "body", "request body".
        what: &'static str,
        /// Its size; `None` when it was read only up to the limit (an HTTP body).
        size: Option<usize>,
        /// The limit in force.
        limit: usize,
        /// What `size` and `limit` count.
        unit: SizeUnit,
    },
    /// An HTTP request head over the listener's limits (see `server::MAX_REQUEST_HEAD`); answered
    /// `431`, not the `413` of its code.
    #[error("request head is over the limit of {bytes} bytes or {fields} header fields")]
    HeadTooLarge {
        /// The limit on the request line and headers together, in bytes.
        bytes: usize,
        /// The limit on the number of header fields.
        fields: usize,
    },
    /// A text frame that is not valid UTF-8.
    #[error("text frame is not valid utf-8")]
    InvalidUtf8,
    /// A request other than `auth` or `ping` before the socket authenticated.
    #[error("authenticate first")]
    Unauthenticated,
    /// The session token is unknown, expired or revoked.
    #[error("session token is not valid")]
    Unauthorized,
    /// An agent's sign-in with a wrong email or password, or as a disabled agent: one answer for
    /// all, so that the route does not tell which emails exist. Its code is `unauthorized`.
    #[error("wrong email or password")]
    WrongCredentials,
    /// `auth` on a socket that is already authenticated.
    #[error("this socket is already authenticated")]
    AlreadyAuthenticated,
    /// Too many requests; try again after the hint.
    #[error("too many requests")]
    RateLimited {
        /// When the client may try again.
        retry_after: Duration,
    },
    /// The input is not a valid mobile number.
    #[error("{0}")]
    InvalidPhone(&'static str),
    /// The number belongs to a country the operator does not serve.
    #[error("numbers from this country are not accepted")]
    CountryNotAllowed,
    /// There is no valid code for this number: it expired, was used, or was never sent.
    #[error("no valid code for this number: request a new one")]
    CodeExpired,
    /// The code does not match.
    #[error("wrong code ({attempts_left} tries left)")]
    CodeInvalid {
        /// How many more tries this code allows.
        attempts_left: u32,
    },
    /// Too many wrong codes: for this code (ask for a new one) or for this number (locked for a while).
    #[error("too many wrong codes")]
    TooManyAttempts {
        /// Set when the number is locked: when sign-in may be tried again.
        retry_after: Option<Duration>,
    },
    /// The hub's hourly SMS budget is spent (a circuit breaker against SMS pumping).
    #[error("the hub cannot send more codes right now")]
    SmsBudgetExhausted {
        /// When the budget window resets.
        retry_after: Duration,
    },
    /// The SMS gateway failed or timed out.
    #[error("the code could not be sent: try again later")]
    SmsUnavailable,
    /// The thing named does not exist (or the caller may not know it exists).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may not do this.
    #[error("not allowed")]
    Forbidden,
    /// The route exists, but not with this HTTP method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The thing exists already (an agent with this email).
    #[error("{0}")]
    Conflict(&'static str),
    /// The action does not fit the ticket's state (claiming a resolved ticket, writing before claiming).
    #[error("{0}")]
    WrongState(&'static str),
    /// An upload that is not an acceptable image.
    #[error("{0}")]
    BadImage(&'static str),
    /// An upload whose bytes are not of an accepted type (told by the content), or a request body
    /// of the wrong type for the route.
    #[error("{0}")]
    UnsupportedMedia(&'static str),
    /// An upload refused by a per-person limit (uploads in progress, bytes of the day); nothing
    /// was created.
    #[error("{reason}")]
    UploadLimit {
        /// Which limit, in words.
        reason: &'static str,
        /// When a new upload may succeed.
        retry_after: Duration,
    },
    /// A request without the protocol version its route requires (tus: `Tus-Resumable: 1.0.0`).
    #[error("{0}")]
    PreconditionFailed(&'static str),
    /// A message or reply with no text.
    #[error("message body is empty")]
    EmptyBody,
    /// The user's consent switch for what the request needs is off (analytics for view events,
    /// personalisation for settings); nothing was stored.
    #[error("{0}")]
    ConsentRequired(&'static str),
    /// The new mobile number is already another account's; the change was not made.
    #[error("this number belongs to another account")]
    PhoneTaken,
    /// An account deletion's confirmation is wrong, expired or another account's: ask again.
    #[error("the confirmation is wrong or expired: ask for a new one")]
    ConfirmationInvalid,
    /// The hub is at capacity for this kind of work; nothing was stored. Retry after the hint.
    #[error("the hub is overloaded: retry shortly")]
    Overloaded {
        /// When to retry.
        retry_after: Duration,
    },
    /// A billing report whose `Anapars-Signature` header is missing or malformed, or none of whose
    /// signatures matches the body under `billing_secret`; nothing was read from the body.
    #[error("missing, malformed or wrong signature")]
    BadSignature,
    /// A correctly signed billing report whose timestamp is further from the hub's clock than
    /// `billing_tolerance_secs`: a replay of an old request, or a clock that is off.
    #[error("signature timestamp outside the allowed window")]
    StaleSignature,
    /// A backing service (database, Redis) is unreachable or too slow; nothing was done.
    #[error("service temporarily unavailable: try again")]
    Unavailable,
    /// A bug or an unexpected backend failure. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

/// What a size limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeUnit {
    /// Bytes (frames, HTTP bodies, images, settings documents).
    Bytes,
    /// Unicode scalar values (message bodies, announcement texts).
    Characters,
    /// Files (the attachments of one message).
    Files,
}

impl std::fmt::Display for SizeUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bytes => "bytes",
            Self::Characters => "characters",
            Self::Files => "files",
        })
    }
}

/// The text of [`Error::TooLarge`]: "body of 4001 characters is over the limit of 4000 characters",
/// or, without a size, "request body is over the limit of 16384 bytes".
fn too_large_message(what: &str, size: Option<usize>, limit: usize, unit: SizeUnit) -> String {
    match size {
        Some(size) => format!("{what} of {size} {unit} is over the limit of {limit} {unit}"),
        None => format!("{what} is over the limit of {limit} {unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_says_what_and_in_which_unit() {
        let body = Error::TooLarge { what: "body", size: Some(4001), limit: 4000, unit: SizeUnit::Characters };
        assert_eq!(body.to_string(), "body of 4001 characters is over the limit of 4000 characters");
        let http = Error::TooLarge { what: "request body", size: None, limit: 16384, unit: SizeUnit::Bytes };
        assert_eq!(http.to_string(), "request body is over the limit of 16384 bytes");
    }
}
