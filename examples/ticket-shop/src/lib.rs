//! Anteroom's demo origin: a small ticket shop that stands behind the edge worker.
//!
//! It shows what an origin does with Anteroom: it verifies every visitor's access token
//! itself against the coordinator's JWKS (so visitors who go around the edge are refused),
//! ends sessions with the origin key when a visitor buys or leaves (so the next one gets in),
//! and reports its health so the admission controller can steer by it.
//!
//! `app` builds the router (tests can call it without a socket); `run` serves it until
//! `shutdown` resolves; `build` turns a [`Config`] into running state.

pub mod config;
pub mod keys;
pub mod pages;
pub mod telemetry;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{AppendHeaders, Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Form, Router};
use shared::token::Verified;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

pub use config::Config;
use keys::KeyCache;
use pages::{Refusal, Session};
use telemetry::{Meter, Reporter};

/// Largest request body (a checkout form is a few bytes).
pub const BODY_LIMIT: usize = 4 * 1024;
/// Per-request time limit.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests handled at once before new ones are shed with 503.
pub const CONCURRENCY_LIMIT: usize = 512;
/// Time limit of each call to the coordinator.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the JWKS is refreshed even when no unknown key id shows up.
const JWKS_REFRESH: Duration = Duration::from_secs(300);

/// `update_token_status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The visitor bought: status 1.
    Completed,
    /// The visitor left: status 2.
    Abandoned,
}

impl Outcome {
    fn code(self) -> &'static str {
        match self {
            Outcome::Completed => "1",
            Outcome::Abandoned => "2",
        }
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct Shop {
    /// The configuration it was built from.
    cfg: Config,
    /// The coordinator's public keys.
    keys: KeyCache,
    /// Client for calls to the coordinator (timeouts set).
    client: reqwest::Client,
    /// Measurements for health telemetry.
    meter: Arc<Meter>,
    /// Sessions this shop has ended (`jti` → `exp`): their tokens stay cryptographically
    /// valid until they expire, so the shop remembers not to serve them again. Per process;
    /// the edge refuses them everywhere once the coordinator publishes the revocation.
    ended: Mutex<HashMap<String, i64>>,
}

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shop>);

impl AppState {
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.cfg
    }

    /// The JWKS cache.
    pub fn keys(&self) -> &KeyCache {
        &self.0.keys
    }

    fn is_ended(&self, jti: &str) -> bool {
        self.0.ended.lock().unwrap_or_else(PoisonError::into_inner).contains_key(jti)
    }

    fn mark_ended(&self, v: &Verified, now: i64) {
        let mut ended = self.0.ended.lock().unwrap_or_else(PoisonError::into_inner);
        ended.retain(|_, exp| now < *exp + shared::token::LEEWAY_SECS);
        ended.insert(v.claims.jti.clone(), v.exp);
    }

    /// Ends the visitor's session at the coordinator with the origin key.
    async fn end_session(&self, v: &Verified, outcome: Outcome) -> Result<(), ShopError> {
        let cfg = &self.0.cfg;
        let url = format!(
            "{}/api/queue/update_token_status",
            cfg.coordinator_admin.trim_end_matches('/')
        );
        let form = [
            ("queue_id", cfg.queue_id.as_str()),
            ("request_id", v.claims.sub.as_str()),
            ("status", outcome.code()),
        ];
        let resp = self
            .0
            .client
            .post(url)
            .bearer_auth(&cfg.origin_key.0)
            .form(&form)
            .send()
            .await
            .map_err(|e| ShopError::Upstream(format!("update_token_status failed: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ShopError::Upstream(format!("update_token_status answered {status}")));
        }
        self.mark_ended(v, unix_now());
        tracing::info!(jti = %v.claims.jti, qpos = v.claims.qpos, ?outcome, "session ended");
        Ok(())
    }
}

/// Unix time in seconds.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Builds the shop's state from its configuration (no network call yet).
pub fn build(cfg: Config) -> anyhow::Result<AppState> {
    cfg.validate().map_err(anyhow::Error::msg)?;
    let client = reqwest::Client::builder()
        .timeout(UPSTREAM_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let keys = KeyCache::new(
        client.clone(),
        &cfg.coordinator_public,
        Duration::from_millis(cfg.jwks_refetch_ms),
    );
    Ok(AppState(Arc::new(Shop {
        cfg,
        keys,
        client,
        meter: Arc::new(Meter::default()),
        ended: Mutex::new(HashMap::new()),
    })))
}

/// Why a request was not served. Client errors carry a safe page; upstream failures are
/// logged and answered with a generic page.
#[derive(Debug)]
pub enum ShopError {
    /// No token, one that does not verify, or one whose session was already ended here;
    /// `join` is the public address to link to.
    Refused {
        /// Why.
        why: Refusal,
        /// Where to join the line, if configured.
        join: Option<String>,
    },
    /// A state-changing request from another site.
    CrossSite,
    /// A form that does not parse.
    BadForm(&'static str),
    /// No such page.
    NotFound,
    /// The coordinator could not be reached or refused; the detail is logged only.
    Upstream(String),
    /// Shed by the concurrency limit or timed out.
    Overloaded,
}

impl IntoResponse for ShopError {
    fn into_response(self) -> Response {
        match self {
            ShopError::Refused { why, join } => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Html(pages::refused(why, join.as_deref())),
            )
                .into_response(),
            ShopError::CrossSite => (
                StatusCode::FORBIDDEN,
                Html(pages::error(
                    "Request refused",
                    "this form must be sent from the shop itself",
                )),
            )
                .into_response(),
            ShopError::BadForm(msg) => {
                (StatusCode::BAD_REQUEST, Html(pages::error("Please check the form", msg)))
                    .into_response()
            }
            ShopError::NotFound => (
                StatusCode::NOT_FOUND,
                Html(pages::error("Page not found", "there is no such page")),
            )
                .into_response(),
            ShopError::Upstream(detail) => {
                tracing::error!(cause = %detail, "coordinator call failed");
                (
                    StatusCode::BAD_GATEWAY,
                    Html(pages::error(
                        "Please try again",
                        "we could not reach the ticketing system; nothing was bought and your visit is still open",
                    )),
                )
                    .into_response()
            }
            ShopError::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "2")],
                Html(pages::error(
                    "Busy",
                    "the shop is busy right now; please try again in a moment",
                )),
            )
                .into_response(),
        }
    }
}

/// The visitor's token: `Authorization: Bearer`, else the queue's cookie (`__Host-` first).
fn presented_token(headers: &HeaderMap, queue_id: &str) -> Option<String> {
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = auth.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(token.trim().to_owned());
    }
    let host_name = format!("__Host-anteroom-{queue_id}");
    let dev_name = format!("anteroom-{queue_id}");
    let cookies: Vec<(&str, &str)> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .collect();
    [host_name, dev_name]
        .iter()
        .find_map(|name| cookies.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim().to_owned()))
}

/// A visitor whose access token verified for this shop's queue.
#[derive(Debug, Clone)]
pub struct Visitor(pub Verified);

impl FromRequestParts<AppState> for Visitor {
    type Rejection = ShopError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ShopError> {
        let cfg = state.config();
        let refused = |why| ShopError::Refused { why, join: cfg.join_url.clone() };
        let token = presented_token(&parts.headers, &cfg.queue_id)
            .ok_or_else(|| refused(Refusal::NoAccess))?;
        let v = state.keys().verify(&token, &cfg.issuer, &cfg.queue_id, unix_now()).await.map_err(
            |e| {
                tracing::info!(reason = %e, path = %parts.uri.path(), "token refused");
                refused(Refusal::NoAccess)
            },
        )?;
        if state.is_ended(&v.claims.jti) {
            return Err(refused(Refusal::SessionOver));
        }
        Ok(Visitor(v))
    }
}

impl Visitor {
    fn session(&self) -> Session {
        Session { position: self.0.claims.qpos, expires_at: self.0.exp, now: unix_now() }
    }
}

/// Refuses state-changing requests a browser marks as coming from another site (the
/// edge's cookie is `SameSite=Lax`, which already keeps it off cross-site POSTs; this is
/// the belt to those braces).
fn same_site(headers: &HeaderMap) -> Result<(), ShopError> {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) if site.eq_ignore_ascii_case("cross-site") => Err(ShopError::CrossSite),
        _ => Ok(()),
    }
}

/// `Set-Cookie` values that drop the visitor's token cookies once the session is over.
fn clear_cookies(queue_id: &str) -> AppendHeaders<[(header::HeaderName, String); 2]> {
    AppendHeaders([
        (
            header::SET_COOKIE,
            format!(
                "__Host-anteroom-{queue_id}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax"
            ),
        ),
        (
            header::SET_COOKIE,
            format!("anteroom-{queue_id}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
        ),
    ])
}

async fn product(v: Visitor) -> Html<String> {
    Html(pages::product(v.session()))
}

async fn checkout_form(v: Visitor) -> Html<String> {
    Html(pages::checkout(v.session()))
}

/// The checkout form.
#[derive(Debug, serde::Deserialize)]
struct CheckoutForm {
    #[serde(default)]
    quantity: Option<String>,
}

async fn checkout(
    State(state): State<AppState>,
    headers: HeaderMap,
    v: Visitor,
    form: Result<Form<CheckoutForm>, FormRejection>,
) -> Result<Response, ShopError> {
    same_site(&headers)?;
    let Form(form) = form.map_err(|_| ShopError::BadForm("the order form could not be read"))?;
    let quantity = form
        .quantity
        .as_deref()
        .map_or(Ok(1), |q| q.trim().parse::<u64>())
        .ok()
        .filter(|q| (1..=pages::MAX_QUANTITY).contains(q))
        .ok_or(ShopError::BadForm("choose between 1 and 4 tickets"))?;
    state.end_session(&v.0, Outcome::Completed).await?;
    let order = format!("RT-{}", v.0.claims.jti.replace('.', "-"));
    Ok((clear_cookies(&state.config().queue_id), Html(pages::thank_you(quantity, &order)))
        .into_response())
}

async fn leave(
    State(state): State<AppState>,
    headers: HeaderMap,
    v: Visitor,
) -> Result<Response, ShopError> {
    same_site(&headers)?;
    state.end_session(&v.0, Outcome::Abandoned).await?;
    Ok((clear_cookies(&state.config().queue_id), Html(pages::left())).into_response())
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> ShopError {
    ShopError::NotFound
}

async fn overloaded(_: BoxError) -> ShopError {
    ShopError::Overloaded
}

/// Measures every request but `/healthz` for telemetry and sets the security headers.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let probe = req.uri().path() == "/healthz";
    let meter = state.0.meter.clone();
    let guard = (!probe).then(|| meter.start());
    let started = Instant::now();
    let mut resp = next.run(req).await;
    if guard.is_some() {
        meter.record(started.elapsed(), resp.status().is_server_error());
    }
    drop(guard);
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    resp
}

/// The shop's router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(product))
        .route("/checkout", get(checkout_form).post(checkout))
        .route("/leave", post(leave))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(CONCURRENCY_LIMIT)
                .timeout(REQUEST_TIMEOUT),
        )
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Keeps the JWKS fresh: at once, then every few minutes, until `stop` fires.
async fn refresh_keys(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(JWKS_REFRESH);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if state.keys().refresh().await {
            tracing::debug!(keys = state.keys().len(), "jwks refreshed");
        }
    }
}

/// Serves the shop until `shutdown` resolves, then drains in-flight requests and returns.
/// Reports health telemetry meanwhile if the configuration asks for it.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let cfg = state.config();
    let reporter = cfg.report_health.then(|| {
        let r = Reporter {
            client: state.0.client.clone(),
            url: format!(
                "{}/api/queue/{}/health",
                cfg.coordinator_admin.trim_end_matches('/'),
                cfg.queue_id
            ),
            key: cfg.origin_key.0.clone(),
            interval: Duration::from_millis(cfg.health_interval_ms),
        };
        tokio::spawn(r.run(state.0.meter.clone(), stop_rx.clone()))
    });
    let refresher = tokio::spawn(refresh_keys(state.clone(), stop_rx.clone()));
    let mut wait = stop_rx;
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
        let _ = wait.changed().await;
    });
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let served = server.await;
    let _ = refresher.await;
    if let Some(r) = reporter {
        let _ = r.await;
    }
    served?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn check(pairs: &[(&str, &str)], expected: Option<&str>) {
        assert_eq!(presented_token(&headers(pairs), "demo").as_deref(), expected, "{pairs:?}");
    }

    #[test]
    fn token_sources() {
        check(&[], None);
        check(&[("authorization", "Bearer abc")], Some("abc"));
        check(&[("authorization", "bearer abc ")], Some("abc"));
        check(&[("authorization", "Basic abc")], None);
        check(&[("cookie", "anteroom-demo=dev")], Some("dev"));
        check(&[("cookie", "a=b; __Host-anteroom-demo=host; anteroom-demo=dev")], Some("host"));
        check(
            &[("cookie", "anteroom-demo=dev"), ("cookie", "__Host-anteroom-demo=host")],
            Some("host"),
        );
        check(&[("cookie", "anteroom-other=x; xanteroom-demo=y; noequals")], None);
        check(&[("authorization", "Bearer b"), ("cookie", "anteroom-demo=c")], Some("b"));
    }

    #[test]
    fn cross_site_posts_are_refused() {
        assert!(same_site(&headers(&[])).is_ok());
        assert!(same_site(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_site(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
    }
}
