//! The one mapping of the hub's [`Error`] to the wire, for the socket and the HTTP routes alike: the
//! stable error code, the message sent (which leaks no internals), the retry hint, the HTTP status,
//! the HTTP error body, and the count of every error answered. PROTOCOL.md's error table lists them.
//! The close codes a socket ends with are in [`CloseCode`](super::CloseCode).

use crate::error::Error;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

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
    /// See [`Error::UnsupportedMedia`].
    UnsupportedMedia,
    /// See [`Error::UploadLimit`].
    UploadLimit,
    /// See [`Error::PreconditionFailed`].
    PreconditionFailed,
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
            Self::UnsupportedMedia => "unsupported_media",
            Self::UploadLimit => "upload_limit",
            Self::PreconditionFailed => "precondition_failed",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// How an [`Error`] goes out on the wire.
pub trait WireError {
    /// The wire code for this error.
    fn code(&self) -> ErrorCode;

    /// The HTTP status for this error on the HTTP routes.
    fn http_status(&self) -> u16;

    /// When the client may try again, for errors that have such a time.
    fn retry_after(&self) -> Option<Duration>;

    /// [`WireError::retry_after`] in milliseconds: `retry_after_ms` in error frames and bodies.
    fn retry_after_ms(&self) -> Option<u64> {
        self.retry_after().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// [`WireError::retry_after`] in whole seconds, at least 1: the HTTP `Retry-After` header.
    fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after().map(|d| u64::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u64::MAX).max(1))
    }

    /// The message sent to the client: the error's text, cut to a sane length.
    fn public_message(&self) -> String;

    /// Records the error in metrics and, for internal errors, in the log. Called where an error
    /// leaves the hub for a client, so that every error sent is counted once.
    fn observe(&self);
}

impl WireError for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::UnknownType => ErrorCode::UnknownType,
            Self::TooLarge { .. } | Self::HeadTooLarge { .. } => ErrorCode::TooLarge,
            Self::InvalidUtf8 => ErrorCode::InvalidUtf8,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::Unauthorized | Self::WrongCredentials => ErrorCode::Unauthorized,
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
            Self::UnsupportedMedia(_) => ErrorCode::UnsupportedMedia,
            Self::UploadLimit { .. } => ErrorCode::UploadLimit,
            Self::PreconditionFailed(_) => ErrorCode::PreconditionFailed,
            Self::Unavailable => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    fn http_status(&self) -> u16 {
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
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::TooLarge => 413,
            ErrorCode::UnsupportedMedia => 415,
            ErrorCode::CodeExpired | ErrorCode::CodeInvalid => 422,
            ErrorCode::RateLimited
            | ErrorCode::TooManyAttempts
            | ErrorCode::SmsBudgetExhausted
            | ErrorCode::UploadLimit => 429,
            ErrorCode::Internal => 500,
            ErrorCode::SmsUnavailable | ErrorCode::Unavailable | ErrorCode::Overloaded => 503,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after }
            | Self::SmsBudgetExhausted { retry_after }
            | Self::Overloaded { retry_after }
            | Self::UploadLimit { retry_after, .. } => Some(*retry_after),
            Self::TooManyAttempts { retry_after } => *retry_after,
            _ => None,
        }
    }

    fn public_message(&self) -> String {
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

    fn observe(&self) {
        metrics::counter!(crate::metrics::ERRORS, "code" => self.code().as_str()).increment(1);
        if let Self::Internal(detail) = self {
            tracing::error!(detail = %detail, "internal error");
        }
    }
}

/// The HTTP error body: `{"error": {"code", "message", "retry_after_ms"?}}`.
pub fn http_body(e: &Error) -> serde_json::Value {
    let mut body = json!({"code": e.code(), "message": e.public_message()});
    if let Some(after) = e.retry_after_ms() {
        body["retry_after_ms"] = json!(after);
    }
    json!({ "error": body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SizeUnit;

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
            Error::WrongCredentials,
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
    fn internal_detail_never_reaches_the_client() {
        let e = Error::Internal("password=hunter2 at db.rs:12".into());
        assert_eq!(e.public_message(), "internal error");
    }

    #[test]
    fn a_long_message_is_cut_at_200_bytes_between_characters() {
        let e = Error::BadRequest("ی".repeat(150));
        let message = e.public_message();
        assert_eq!(message.len(), 200);
        assert!(message.chars().all(|c| c == 'ی'));
    }

    #[test]
    fn the_retry_hint_in_milliseconds_and_in_whole_seconds() {
        let e = Error::Overloaded { retry_after: Duration::from_millis(1_500) };
        assert_eq!((e.retry_after_ms(), e.retry_after_secs()), (Some(1_500), Some(2)));
        let e = Error::RateLimited { retry_after: Duration::from_millis(20) };
        assert_eq!((e.retry_after_ms(), e.retry_after_secs()), (Some(20), Some(1)));
        assert_eq!(Error::Forbidden.retry_after_ms(), None);
        assert_eq!(
            http_body(&e),
            json!({"error": {"code": "rate_limited", "message": "too many requests", "retry_after_ms": 20}})
        );
        assert_eq!(http_body(&Error::Forbidden), json!({"error": {"code": "forbidden", "message": "not allowed"}}));
    }
}
