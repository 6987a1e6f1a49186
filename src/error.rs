//! The one domain error enum, and the one place it is mapped to the wire: a stable machine-readable
//! code, an HTTP status, a retry-after hint and a message that leaks no internals.
//!
//! One file on purpose: each error's code, status and message are read side by side.

use serde::{Deserialize, Serialize};
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
}

impl std::fmt::Display for SizeUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bytes => "bytes",
            Self::Characters => "characters",
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

/// The stable, machine-readable error codes of protocol v1 (see protocol/PROTOCOL.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// See [`Error::BadRequest`].
    BadRequest,
    /// See [`Error::UnknownType`].
    UnknownType,
    /// See [`Error::TooLarge`].
    TooLarge,
    /// See [`Error::InvalidUtf8`].
    InvalidUtf8,
    /// See [`Error::Unauthenticated`].
    Unauthenticated,
    /// See [`Error::Unauthorized`].
    Unauthorized,
    /// See [`Error::AlreadyAuthenticated`].
    AlreadyAuthenticated,
    /// See [`Error::RateLimited`].
    RateLimited,
    /// See [`Error::InvalidPhone`].
    InvalidPhone,
    /// See [`Error::CountryNotAllowed`].
    CountryNotAllowed,
    /// See [`Error::CodeExpired`].
    CodeExpired,
    /// See [`Error::CodeInvalid`].
    CodeInvalid,
    /// See [`Error::TooManyAttempts`].
    TooManyAttempts,
    /// See [`Error::SmsBudgetExhausted`].
    SmsBudgetExhausted,
    /// See [`Error::SmsUnavailable`].
    SmsUnavailable,
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::Forbidden`].
    Forbidden,
    /// See [`Error::MethodNotAllowed`].
    MethodNotAllowed,
    /// See [`Error::Conflict`].
    Conflict,
    /// See [`Error::WrongState`].
    WrongState,
    /// See [`Error::EmptyBody`].
    EmptyBody,
    /// See [`Error::BadImage`].
    BadImage,
    /// See [`Error::ConsentRequired`].
    ConsentRequired,
    /// See [`Error::PhoneTaken`].
    PhoneTaken,
    /// See [`Error::ConfirmationInvalid`].
    ConfirmationInvalid,
    /// See [`Error::Overloaded`].
    Overloaded,
    /// See [`Error::BadSignature`].
    BadSignature,
    /// See [`Error::StaleSignature`].
    StaleSignature,
    /// See [`Error::Unavailable`].
    Unavailable,
    /// See [`Error::Internal`].
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownType => "unknown_type",
            Self::TooLarge => "too_large",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::Unauthenticated => "unauthenticated",
            Self::Unauthorized => "unauthorized",
            Self::AlreadyAuthenticated => "already_authenticated",
            Self::RateLimited => "rate_limited",
            Self::InvalidPhone => "invalid_phone",
            Self::CountryNotAllowed => "country_not_allowed",
            Self::CodeExpired => "code_expired",
            Self::CodeInvalid => "code_invalid",
            Self::TooManyAttempts => "too_many_attempts",
            Self::SmsBudgetExhausted => "sms_budget_exhausted",
            Self::SmsUnavailable => "sms_unavailable",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::WrongState => "wrong_state",
            Self::EmptyBody => "empty_body",
            Self::BadImage => "bad_image",
            Self::ConsentRequired => "consent_required",
            Self::PhoneTaken => "phone_taken",
            Self::ConfirmationInvalid => "confirmation_invalid",
            Self::Overloaded => "overloaded",
            Self::BadSignature => "bad_signature",
            Self::StaleSignature => "stale_signature",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl Error {
    /// The wire code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::UnknownType => ErrorCode::UnknownType,
            Self::TooLarge { .. } | Self::HeadTooLarge { .. } => ErrorCode::TooLarge,
            Self::InvalidUtf8 => ErrorCode::InvalidUtf8,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::AlreadyAuthenticated => ErrorCode::AlreadyAuthenticated,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::InvalidPhone(_) => ErrorCode::InvalidPhone,
            Self::CountryNotAllowed => ErrorCode::CountryNotAllowed,
            Self::CodeExpired => ErrorCode::CodeExpired,
            Self::CodeInvalid { .. } => ErrorCode::CodeInvalid,
            Self::TooManyAttempts { .. } => ErrorCode::TooManyAttempts,
            Self::SmsBudgetExhausted { .. } => ErrorCode::SmsBudgetExhausted,
            Self::SmsUnavailable => ErrorCode::SmsUnavailable,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::WrongState(_) => ErrorCode::WrongState,
            Self::EmptyBody => ErrorCode::EmptyBody,
            Self::BadImage(_) => ErrorCode::BadImage,
            Self::ConsentRequired(_) => ErrorCode::ConsentRequired,
            Self::PhoneTaken => ErrorCode::PhoneTaken,
            Self::ConfirmationInvalid => ErrorCode::ConfirmationInvalid,
            Self::Overloaded { .. } => ErrorCode::Overloaded,
            Self::BadSignature => ErrorCode::BadSignature,
            Self::StaleSignature => ErrorCode::StaleSignature,
            Self::Unavailable => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status for this error on the HTTP routes.
    pub fn http_status(&self) -> u16 {
        match self.code() {
            ErrorCode::BadRequest
            | ErrorCode::UnknownType
            | ErrorCode::InvalidUtf8
            | ErrorCode::InvalidPhone
            | ErrorCode::AlreadyAuthenticated
            | ErrorCode::EmptyBody
            | ErrorCode::BadImage
            | ErrorCode::ConfirmationInvalid => 400,
            ErrorCode::Unauthenticated
            | ErrorCode::Unauthorized
            | ErrorCode::BadSignature
            | ErrorCode::StaleSignature => 401,
            ErrorCode::CountryNotAllowed | ErrorCode::Forbidden | ErrorCode::ConsentRequired => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict | ErrorCode::WrongState | ErrorCode::PhoneTaken => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::CodeExpired | ErrorCode::CodeInvalid => 422,
            ErrorCode::RateLimited | ErrorCode::TooManyAttempts | ErrorCode::SmsBudgetExhausted => 429,
            ErrorCode::Internal => 500,
            ErrorCode::SmsUnavailable | ErrorCode::Unavailable | ErrorCode::Overloaded => 503,
        }
    }

    /// When the client may try again, for errors that have such a time.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after }
            | Self::SmsBudgetExhausted { retry_after }
            | Self::Overloaded { retry_after } => Some(*retry_after),
            Self::TooManyAttempts { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// The message sent to the client: the Display text, cut to a sane length.
    pub fn public_message(&self) -> String {
        let mut text = self.to_string();
        if text.len() > 200 {
            let mut cut = 200;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        text
    }

    /// Records the error in metrics and, for internal errors, in the log. Called where an error
    /// leaves the hub for a client, so that every error sent is counted once.
    pub fn observe(&self) {
        metrics::counter!(crate::metrics::ERRORS, "code" => self.code().as_str()).increment(1);
        if let Self::Internal(detail) = self {
            tracing::error!(detail = %detail, "internal error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_match_serde_names() {
        let all = [
            Error::BadRequest("x".into()),
            Error::UnknownType,
            Error::TooLarge { what: "frame", size: Some(2), limit: 1, unit: SizeUnit::Bytes },
            Error::HeadTooLarge { bytes: 2, fields: 1 },
            Error::InvalidUtf8,
            Error::Unauthenticated,
            Error::Unauthorized,
            Error::AlreadyAuthenticated,
            Error::RateLimited { retry_after: Duration::from_secs(1) },
            Error::InvalidPhone("x"),
            Error::CountryNotAllowed,
            Error::CodeExpired,
            Error::CodeInvalid { attempts_left: 1 },
            Error::TooManyAttempts { retry_after: None },
            Error::SmsBudgetExhausted { retry_after: Duration::from_secs(1) },
            Error::SmsUnavailable,
            Error::NotFound("ticket"),
            Error::Forbidden,
            Error::MethodNotAllowed,
            Error::Conflict("x"),
            Error::WrongState("x"),
            Error::EmptyBody,
            Error::BadImage("x"),
            Error::ConsentRequired("x"),
            Error::Overloaded { retry_after: Duration::from_secs(1) },
            Error::BadSignature,
            Error::StaleSignature,
            Error::Unavailable,
            Error::Internal("secret detail".into()),
        ];
        for e in all {
            let json = serde_json::to_value(e.code()).unwrap();
            assert_eq!(json.as_str().unwrap(), e.code().as_str());
        }
    }

    #[test]
    fn too_large_says_what_and_in_which_unit() {
        let body = Error::TooLarge { what: "body", size: Some(4001), limit: 4000, unit: SizeUnit::Characters };
        assert_eq!(body.public_message(), "body of 4001 characters is over the limit of 4000 characters");
        let http = Error::TooLarge { what: "request body", size: None, limit: 16384, unit: SizeUnit::Bytes };
        assert_eq!(http.public_message(), "request body is over the limit of 16384 bytes");
    }

    #[test]
    fn internal_detail_never_reaches_the_client() {
        let e = Error::Internal("password=hunter2 at db.rs:12".into());
        assert_eq!(e.public_message(), "internal error");
    }
}
