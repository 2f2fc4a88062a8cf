//! The coordinator's one error type: every failure a handler can answer with.
//!
//! Client errors carry a status, a stable code and a safe message. Storage unavailability is
//! a 503 with `Retry-After`. Anything else is an internal error: logged with its cause and
//! answered with a generic message, never echoed.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::wire::ErrorBody;

use crate::store::StoreError;

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECS: u64 = 2;

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a missing or malformed parameter.
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// 401: the private API was called without the right key.
    #[error("missing or wrong bearer key")]
    Unauthorized,
    /// 403: refused by policy (e.g. proof-of-work).
    #[error("{1}")]
    Forbidden(&'static str, String),
    /// 404: not found, or not decided yet.
    #[error("{1}")]
    NotFound(&'static str, String),
    /// 409: conflicts with the stored state.
    #[error("{1}")]
    Conflict(&'static str, String),
    /// 410: expired or gone for good.
    #[error("{1}")]
    Gone(&'static str, String),
    /// 413: body over the limit.
    #[error("request body is too large")]
    TooLarge,
    /// 415: wrong content type.
    #[error("content type must be {0}")]
    UnsupportedMediaType(&'static str),
    /// 503: storage or the service is temporarily unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 503: the store lost this queue; it is held until an operator re-creates it.
    #[error("this queue is unavailable; the operator has been alerted")]
    QueueLost,
    /// 503: the operator paused admissions; claims wait.
    #[error("admissions are paused; try again shortly")]
    Paused,
    /// 503: the queue is not open yet; retry after this many seconds.
    #[error("queue is not open yet")]
    NotOpen(u64),
    /// 500: a bug or corrupt data; the cause is logged, not shown.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 400 `invalid_parameter`.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::BadRequest("invalid_parameter", message.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "storage unavailable");
                ApiError::Unavailable("storage is temporarily unavailable".into())
            }
            StoreError::Corrupt(cause) => ApiError::Internal(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::BadRequest(code, _) => (StatusCode::BAD_REQUEST, *code),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(code, _) => (StatusCode::FORBIDDEN, *code),
            ApiError::NotFound(code, _) => (StatusCode::NOT_FOUND, *code),
            ApiError::Conflict(code, _) => (StatusCode::CONFLICT, *code),
            ApiError::Gone(code, _) => (StatusCode::GONE, *code),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::NotOpen(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_open"),
            ApiError::Paused => (StatusCode::SERVICE_UNAVAILABLE, "paused"),
            ApiError::QueueLost => (StatusCode::SERVICE_UNAVAILABLE, "queue_lost"),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let body = ErrorBody { error: code.to_string(), message: self.to_string() };
        let mut resp = (status, Json(body)).into_response();
        match self {
            ApiError::Unavailable(_) | ApiError::Paused | ApiError::QueueLost => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            ApiError::NotOpen(secs) => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            ApiError::Unauthorized => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
