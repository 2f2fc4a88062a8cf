//! The operator console on the private listener: the page at `/console` and its two assets
//! (compiled in, served under content-hashed names, nothing from elsewhere), and its
//! session routes: sign in with an admin key (`POST /console/session`, answered with the
//! session cookie), who is signed in and the CSRF token (`GET`), sign out (`DELETE`).
//!
//! Everything else the page does goes through the private API's own routes, which take the
//! session cookie as they take the bearer key (`admin::authorize`, `session`): the console
//! has no route of its own that changes anything.

use std::net::SocketAddr;
use std::sync::LazyLock;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sha2::{Digest, Sha256};
use shared::wire::{ConsoleSession, ConsoleSignIn, ErrorBody};

use crate::access::{Caller, Role};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{Json as JsonBody, Path};
use crate::session::{self, StoredSession};
use crate::state::AppState;

const PAGE: &str = include_str!("../assets/console.html");
const SOURCES: [(&str, &str, &str); 2] = [
    ("console.js", "text/javascript; charset=utf-8", include_str!("../assets/console.js")),
    ("console.css", "text/css; charset=utf-8", include_str!("../assets/console.css")),
];

/// Content-Security-Policy of the page: its own script and style, calls to its own origin,
/// nothing inline, never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// An asset under its hashed name.
struct Asset {
    name: String,
    content_type: &'static str,
    body: &'static str,
}

/// The assets and the page that names them, made once.
struct Built {
    assets: Vec<Asset>,
    page: String,
}

static BUILT: LazyLock<Built> = LazyLock::new(|| {
    let assets: Vec<Asset> = SOURCES
        .iter()
        .map(|&(file, content_type, body)| {
            let hash = shared::hex::encode(&Sha256::digest(body.as_bytes())[..6]);
            let (stem, ext) = file.split_once('.').unwrap_or((file, ""));
            Asset { name: format!("{stem}.{hash}.{ext}"), content_type, body }
        })
        .collect();
    let named = |ext: &str| {
        assets.iter().find(|a| a.name.ends_with(ext)).map_or(String::new(), |a| a.name.clone())
    };
    let page = PAGE
        .replace("{{js}}", &format!("/console/assets/{}", named(".js")))
        .replace("{{css}}", &format!("/console/assets/{}", named(".css")));
    Built { assets, page }
});

fn hardened(mut resp: Response, cache: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    resp
}

fn enabled(state: &AppState) -> ApiResult<()> {
    if state.settings().console.enabled {
        Ok(())
    } else {
        Err(ApiError::with(ErrorCode::NotFound, "the console is turned off (ANTEROOM_CONSOLE)"))
    }
}

/// `GET /console`: the console page (it signs in, then uses the private API).
#[utoipa::path(
    get,
    path = "/console",
    tag = "console",
    responses((status = 200, description = "the console page (no key needed: it signs in itself)", content_type = "text/html"), (status = "4XX", description = "the console is turned off", body = ErrorBody))
)]
pub async fn page(State(state): State<AppState>) -> ApiResult<Response> {
    enabled(&state)?;
    let mut resp = BUILT.page.clone().into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    Ok(hardened(resp, "no-store"))
}

/// `GET /console/assets/{name}`: the page's script and style, cached for good under their
/// content-hashed names.
#[utoipa::path(
    get,
    path = "/console/assets/{name}",
    tag = "console",
    params(("name" = String, Path, description = "the asset's hashed name")),
    responses((status = 200, description = "the asset", content_type = "text/javascript"), (status = "4XX", description = "no such asset", body = ErrorBody))
)]
pub async fn asset(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    enabled(&state)?;
    let a = BUILT
        .assets
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ApiError::with(ErrorCode::NotFound, "no such asset"))?;
    let mut resp = a.body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    Ok(hardened(resp, "public, max-age=31536000, immutable"))
}

fn peer(connect: Option<&Extension<ConnectInfo<SocketAddr>>>) -> String {
    connect.map(|c| c.0.0.to_string()).unwrap_or_default()
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn view(id: &str, s: &StoredSession) -> ConsoleSession {
    ConsoleSession {
        key: s.key.clone(),
        bootstrap: s.key == crate::access::BOOTSTRAP,
        csrf: session::csrf(id),
        expires_at_ms: s.expires_at_ms,
    }
}

/// The request's session, if its cookie names a live one whose key is still an admin key:
/// the id, the session and the key's role.
async fn current<'h>(
    state: &AppState,
    h: &'h HeaderMap,
) -> ApiResult<(&'h str, StoredSession, Role)> {
    let not_signed_in = || ApiError::with(ErrorCode::Unauthorized, "not signed in");
    let id = crate::extract::session_id(h).ok_or_else(not_signed_in)?;
    let s =
        state.sessions().find(state.store(), id, state.now_ms()).await.ok_or_else(not_signed_in)?;
    let (_, role) = session::key_of(state.access(), &s).ok_or_else(not_signed_in)?;
    Ok((id, s, role))
}

fn with_cookie(mut resp: Response, cookie: &str) -> ApiResult<Response> {
    let v = HeaderValue::from_str(cookie).map_err(|e| ApiError::Internal(e.to_string()))?;
    resp.headers_mut().insert(header::SET_COOKIE, v);
    Ok(resp)
}

/// `POST /console/session`: signs in with an admin key; the session id comes back in an
/// `HttpOnly`, `SameSite=Strict` cookie, the CSRF token in the body.
#[utoipa::path(
    post,
    path = "/console/session",
    tag = "console",
    request_body(content = ConsoleSignIn, content_type = "application/json"),
    responses((status = 200, description = "signed in: the session cookie is set", body = ConsoleSession), (status = "4XX", description = "not an admin key (401), from another site (403), bad body (400, 415)", body = ErrorBody), (status = "5XX", description = "storage unavailable or too many sessions (503)", body = ErrorBody))
)]
pub async fn sign_in(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<ConsoleSignIn>,
) -> ApiResult<Response> {
    if !crate::extract::same_origin(&headers) {
        return Err(ApiError::new(ErrorCode::CsrfFailed));
    }
    let from = peer(connect.as_ref());
    let key = input.key.unwrap_or_default();
    let key = key.trim();
    let Some((name, role)) = state.access().identify(key).filter(|(_, r)| r.is_admin()) else {
        tracing::warn!(from = %from, "console sign-in refused: not an admin key");
        return Err(ApiError::with(ErrorCode::Unauthorized, "that is not an admin key"));
    };
    let now_ms = state.now_ms();
    let secs = state.settings().console.session_secs;
    let stored = StoredSession {
        key: name.clone(),
        key_sha256: shared::hex::encode(crate::access::digest(key)),
        created_at_ms: now_ms,
        expires_at_ms: now_ms + secs * 1000,
    };
    let id = match state.sessions().create(state.store(), stored.clone(), now_ms).await? {
        Ok(id) => id,
        Err(session::NotMade::Full) => {
            return Err(ApiError::with(
                ErrorCode::Unavailable,
                "too many console sessions: sign out elsewhere or wait for some to expire",
            ));
        }
    };
    let caller = Caller { key: name.clone(), role, from };
    tracing::info!(key = %name, from = %caller.from, "console sign-in");
    crate::audit::record(&state, &caller, "console.sign_in", None, Vec::new()).await;
    let cookie = session::set_cookie(&id, secs, state.settings().console.secure_cookie);
    with_cookie(no_store(Json(view(&id, &stored)).into_response()), &cookie)
}

/// `GET /console/session`: the signed-in key and the CSRF token, or 401.
#[utoipa::path(
    get,
    path = "/console/session",
    tag = "console",
    responses((status = 200, description = "the session's key name, CSRF token and expiry", body = ConsoleSession), (status = "4XX", description = "not signed in (401)", body = ErrorBody))
)]
pub async fn who(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let (id, s, _) = current(&state, &headers).await?;
    Ok(no_store(Json(view(id, &s)).into_response()))
}

/// `DELETE /console/session`: signs out (the session ends in every process within a
/// second); needs the CSRF token.
#[utoipa::path(
    delete,
    path = "/console/session",
    tag = "console",
    responses((status = 204, description = "signed out: the cookie is cleared"), (status = "4XX", description = "not signed in (401), no CSRF token (403)", body = ErrorBody))
)]
pub async fn sign_out(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (id, s, role) = current(&state, &headers).await?;
    let token_ok = crate::extract::csrf_token(&headers).is_some_and(|t| session::csrf_ok(id, t));
    if !token_ok || !crate::extract::same_origin(&headers) {
        return Err(ApiError::new(ErrorCode::CsrfFailed));
    }
    state.sessions().end(state.store(), id).await?;
    let caller = Caller { key: s.key.clone(), role, from: peer(connect.as_ref()) };
    crate::audit::record(&state, &caller, "console.sign_out", None, Vec::new()).await;
    let cookie = session::clear_cookie(state.settings().console.secure_cookie);
    with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie)
}
