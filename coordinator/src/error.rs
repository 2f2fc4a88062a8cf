//! The coordinator's one error type: every failure a handler can answer with.
//!
//! A refusal carries a code of the shared vocabulary (`shared::error::ErrorCode`: its status
//! and default message) and a message safe to show. Storage unavailability is a 503 with
//! `Retry-After`. Anything else is an internal error: logged with its cause and answered with
//! the generic message, never echoed.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use shared::error::ErrorCode;

use crate::queue::QueueError;
use crate::state::Lookup;
use crate::store::StoreError;

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECS: u64 = 2;

/// An error answer.
#[derive(Debug)]
pub enum ApiError {
    /// A refusal: a code of the shared vocabulary and a message safe to show.
    Refused(ErrorCode, Cow<'static, str>),
    /// 503: the queue is not open yet; retry after this many seconds.
    NotOpen(u64),
    /// 500: a bug or corrupt data; the cause is logged, not shown.
    Internal(String),
}

impl ApiError {
    /// A refusal with the code's default message.
    pub fn new(code: ErrorCode) -> Self {
        ApiError::Refused(code, Cow::Borrowed(code.message()))
    }

    /// A refusal with a more specific message.
    pub fn with(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::Refused(code, message.into())
    }

    /// A 400 `invalid_parameter`.
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::with(ErrorCode::InvalidParameter, message)
    }

    /// The code answered.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Refused(code, _) => *code,
            ApiError::NotOpen(_) => ErrorCode::NotOpen,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Refused(_, message) => f.write_str(message),
            other => f.write_str(other.code().message()),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "storage unavailable");
                ApiError::new(ErrorCode::Unavailable)
            }
            StoreError::Corrupt(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Refused(code, message) => ApiError::Refused(code, message),
            QueueError::NotOpen(secs) => ApiError::NotOpen(secs),
            QueueError::Store(e) => e.into(),
        }
    }
}

impl From<Lookup> for ApiError {
    fn from(e: Lookup) -> Self {
        match e {
            Lookup::Unknown => ApiError::new(ErrorCode::UnknownQueue),
            Lookup::Lost => ApiError::new(ErrorCode::QueueLost),
            Lookup::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(code.body(self.to_string()))).into_response();
        let headers = resp.headers_mut();
        match (&self, code) {
            (ApiError::NotOpen(secs), _) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from((*secs).max(1)));
            }
            (_, ErrorCode::Unavailable | ErrorCode::Paused | ErrorCode::QueueLost) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            (_, ErrorCode::Unauthorized) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
