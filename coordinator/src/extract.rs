//! Extractors that answer bad input with the project's JSON errors (400, 413, 415) instead of
//! axum's plain-text rejections: bodies, and path parameters (a segment that does not decode
//! to UTF-8, found by `tests/fuzz_http.rs`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// An `application/x-www-form-urlencoded` body.
#[derive(Debug)]
pub struct Form<T>(pub T);

/// An `application/json` body.
#[derive(Debug)]
pub struct Json<T>(pub T);

/// Path parameters.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|_| ApiError::invalid("a path parameter is not valid"))
    }
}

fn content_type_is(req: &Request, want: &str) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

async fn body(req: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge)
        } else {
            ApiError::invalid("request body could not be read")
        }
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        const FORM: &str = "application/x-www-form-urlencoded";
        if !content_type_is(&req, FORM) {
            return Err(ApiError::with(
                ErrorCode::UnsupportedMediaType,
                format!("content type must be {FORM}"),
            ));
        }
        let bytes = body(req).await?;
        serde_urlencoded::from_bytes(&bytes)
            .map(Form)
            .map_err(|e| ApiError::invalid(format!("form body is invalid: {e}")))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        const JSON: &str = "application/json";
        if !content_type_is(&req, JSON) {
            return Err(ApiError::with(
                ErrorCode::UnsupportedMediaType,
                format!("content type must be {JSON}"),
            ));
        }
        let bytes = body(req).await?;
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| ApiError::invalid(format!("json body is invalid: {e}")))
    }
}

/// Whether a browser's `Origin`, when it sends one, is the origin the request was sent to
/// (`Host`): a change made with a console session must come from the console's own page.
pub fn same_origin(h: &axum::http::HeaderMap) -> bool {
    let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    !host.is_empty() && rest == Some(host)
}

/// The console session id in the request's cookie, if any.
pub fn session_id(h: &axum::http::HeaderMap) -> Option<&str> {
    h.get(header::COOKIE).and_then(|v| v.to_str().ok()).and_then(crate::session::from_cookie)
}

/// The console session's CSRF token header, if any.
pub fn csrf_token(h: &axum::http::HeaderMap) -> Option<&str> {
    h.get(crate::session::CSRF_HEADER).and_then(|v| v.to_str().ok())
}
