//! The private (operator) API, on its own listener; every call needs a bearer key, and each
//! route says which kinds (`access::Role`).

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use shared::wire::{
    ActiveNumResponse, ErrorBody, EventData, IncrementForm, QueueConfig, QueueInput, ServingEvent,
    ServingPosResponse, SessionEvent, TokenStatusForm,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Caller, Role};
use crate::audit::{self, change};
use crate::console;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{Form, Json as JsonBody, Path};
use crate::keys::{Keyring, rotate};
use crate::observe;
use crate::queue::{jti, open_ticket, place_of, prequeue_seed, token_response};
use crate::state::AppState;
use crate::store::{Created, Ended, Outcome};

/// Upper bounds, so a typo cannot make a session last a year.
const MAX_TOKEN_VALIDITY: u32 = 86_400;
const MAX_POSITION_EXPIRY: u32 = 86_400;
/// Shortest position expiry (the edge's freshness bound and a poll must fit in it).
const MIN_POSITION_EXPIRY: u32 = shared::pull::MIN_POSITION_EXPIRY_SECS;
/// Largest single serving increment.
const MAX_INCREMENT: u64 = 1_000_000_000;
/// Seconds between publishing a rotated key and signing with it, beyond two publish
/// intervals: every process reloads the key ring once a second.
pub const ROTATION_LEAD_SECS: u64 = 5;

/// Routes of the private listener. Operator routes take any admin key; managing the named
/// keys takes the bootstrap key; the origin's three routes (ending and extending sessions,
/// health telemetry) also take the origin key; `/metrics` also takes the metrics key.
pub fn routes(state: AppState) -> OpenApiRouter<AppState> {
    let guard = |allowed: fn(Role) -> bool| {
        middleware::from_fn_with_state((state.clone(), allowed), authorize)
    };
    let keys = OpenApiRouter::new()
        .routes(routes!(observe::list_admin_keys, observe::add_admin_key))
        .routes(routes!(observe::revoke_admin_key))
        .route_layer(guard(|r| r == Role::Bootstrap));
    let admin_only = OpenApiRouter::new()
        .routes(routes!(create_queue, update_queue))
        .routes(routes!(get_queue, delete_queue))
        .routes(routes!(increment_serving))
        .routes(routes!(active_token_num))
        .routes(routes!(queue_status))
        .routes(routes!(observe::report))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(drain))
        .routes(routes!(open))
        .routes(routes!(list_queues))
        .routes(routes!(health_view))
        .routes(routes!(rotate_keys))
        .routes(routes!(observe::audit_log))
        .routes(routes!(observe::list_webhooks, observe::add_webhook))
        .routes(routes!(observe::remove_webhook))
        .routes(routes!(observe::overview))
        .routes(routes!(observe::live))
        .routes(routes!(queue_defaults))
        .routes(routes!(crate::spec::openapi_json))
        .route_layer(guard(Role::is_admin));
    let origin = OpenApiRouter::new()
        .routes(routes!(update_token_status))
        .routes(routes!(extend_session))
        .routes(routes!(report_health))
        .route_layer(guard(|r| r.is_admin() || r == Role::Origin));
    let metrics = OpenApiRouter::new()
        .routes(routes!(observe::metrics))
        .route_layer(guard(|r| r.is_admin() || r == Role::Metrics));
    // The console's page and session routes authenticate themselves (the page needs no
    // key; the session routes read the cookie).
    let console = OpenApiRouter::new()
        .routes(routes!(console::page))
        .routes(routes!(console::asset))
        .routes(routes!(console::sign_in, console::who, console::sign_out));
    keys.merge(admin_only).merge(origin).merge(metrics).merge(console)
}

fn bearer(h: &axum::http::HeaderMap) -> &str {
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// The state of a route guard: the app state and which roles may pass.
type Guarded = (AppState, fn(Role) -> bool);

/// The key a request stands for: its bearer, or else its console session (`session`); a
/// change made with a session without its CSRF token is refused.
async fn identify(
    state: &AppState,
    h: &axum::http::HeaderMap,
    safe: bool,
) -> Result<Option<(String, Role)>, ApiError> {
    let bearer = bearer(h);
    if !bearer.is_empty() {
        return Ok(state.access().identify(bearer));
    }
    let Some(id) = crate::extract::session_id(h) else { return Ok(None) };
    let Some(session) = state.sessions().find(state.store(), id, state.now_ms()).await else {
        return Ok(None);
    };
    let csrf_ok = crate::extract::csrf_token(h).is_some_and(|t| crate::session::csrf_ok(id, t));
    let from_console = csrf_ok && crate::extract::same_origin(h);
    if !safe && !from_console {
        return Err(ApiError::new(ErrorCode::CsrfFailed));
    }
    Ok(crate::session::key_of(state.access(), &session))
}

/// Lets the request through when its bearer (or console session) is a key of an allowed
/// role, with the [`Caller`] for the handler (its name and the peer address); 401
/// otherwise, 403 for a session's change without its CSRF token.
async fn authorize(
    State((state, allowed)): State<Guarded>,
    mut req: Request,
    next: Next,
) -> Response {
    let safe = req.method().is_safe();
    let found = match identify(&state, req.headers(), safe).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let Some((key, role)) = found.filter(|(_, r)| allowed(*r)) else {
        return ApiError::new(ErrorCode::Unauthorized).into_response();
    };
    let from = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    req.extensions_mut().insert(Caller { key, role, from });
    next.run(req).await
}

/// Applies `input` over `base`, checking every bound.
fn merge(base: QueueConfig, input: &QueueInput) -> ApiResult<QueueConfig> {
    let i = input.clone();
    let cfg = QueueConfig {
        token_validity_second: i.token_validity_second.unwrap_or(base.token_validity_second),
        enable_queue_position_expiry: i
            .enable_queue_position_expiry
            .unwrap_or(base.enable_queue_position_expiry),
        position_expiry_second: i.position_expiry_second.unwrap_or(base.position_expiry_second),
        mode: i.mode.unwrap_or(base.mode),
        paths: i.paths.unwrap_or(base.paths),
        bypass: i.bypass.unwrap_or(base.bypass),
        case_sensitive: i.case_sensitive.unwrap_or(base.case_sensitive),
        pow_difficulty: i.pow_difficulty.unwrap_or(base.pow_difficulty),
        fail_open: i.fail_open.unwrap_or(base.fail_open),
        waiting_status: i.waiting_status.unwrap_or(base.waiting_status),
        admission: i.admission.unwrap_or(base.admission),
        prequeue_opens_at: i.prequeue_opens_at.unwrap_or(base.prequeue_opens_at),
        opens_at: i.opens_at.unwrap_or(base.opens_at),
        closes_at: i.closes_at.unwrap_or(base.closes_at),
        session_max_second: i.session_max_second.unwrap_or(base.session_max_second),
        allow_no_js: i.allow_no_js.unwrap_or(base.allow_no_js),
        template: i.template.unwrap_or(base.template),
        forward_token: i.forward_token.unwrap_or(base.forward_token),
        display_name: i.display_name.unwrap_or(base.display_name),
        logo_text: i.logo_text.unwrap_or(base.logo_text),
        notice: i.notice.unwrap_or(base.notice),
        ..base
    };
    let invalid = |e: shared::presentation::TextError| ApiError::invalid(e.0);
    if let Some(n) = &cfg.display_name {
        shared::presentation::check_display_name(n).map_err(invalid)?;
    }
    if let Some(l) = &cfg.logo_text {
        shared::presentation::check_logo_text(l).map_err(invalid)?;
    }
    if let Some(n) = &cfg.notice {
        shared::presentation::check_notice(n).map_err(invalid)?;
    }
    if let Some(t) = &cfg.template {
        shared::template::check(t).map_err(|e| ApiError::invalid(e.to_string()))?;
    }
    if cfg.session_max_second != 0
        && !(cfg.token_validity_second..=MAX_TOKEN_VALIDITY).contains(&cfg.session_max_second)
    {
        return Err(ApiError::invalid(
            "session_max_second must be 0 or between token_validity_second and 86400",
        ));
    }
    if let Some(pq) = cfg.prequeue_opens_at
        && cfg.opens_at.is_none_or(|o| o <= pq)
    {
        return Err(ApiError::invalid("a pre-queue needs opens_at after prequeue_opens_at"));
    }
    if let (Some(o), Some(c)) = (cfg.opens_at, cfg.closes_at)
        && c <= o
    {
        return Err(ApiError::invalid("closes_at must be after opens_at"));
    }
    if !(1..=MAX_TOKEN_VALIDITY).contains(&cfg.token_validity_second) {
        return Err(ApiError::invalid(format!(
            "token_validity_second must be 1..={MAX_TOKEN_VALIDITY}"
        )));
    }
    if !(MIN_POSITION_EXPIRY..=MAX_POSITION_EXPIRY).contains(&cfg.position_expiry_second) {
        return Err(ApiError::invalid(format!(
            "position_expiry_second must be {MIN_POSITION_EXPIRY}..={MAX_POSITION_EXPIRY}: a \
             served visitor's page learns its turn up to {} ms late (the edge's freshness \
             bound) plus one poll, and then needs time to claim",
            shared::pull::STALENESS_BOUND_MS
        )));
    }
    if cfg.pow_difficulty > shared::pow::MAX_DIFFICULTY {
        return Err(ApiError::invalid(format!(
            "pow_difficulty must be 0..={}",
            shared::pow::MAX_DIFFICULTY
        )));
    }
    if ![200, 202, 429].contains(&cfg.waiting_status) {
        return Err(ApiError::invalid("waiting_status must be 200, 202 or 429"));
    }
    if cfg.paths.len() + cfg.bypass.len() > 64 {
        return Err(ApiError::invalid("paths and bypass are at most 64 patterns"));
    }
    for p in &cfg.paths {
        if p.starts_with("*.") {
            return Err(ApiError::invalid(
                "paths are prefixes starting with /; *.ext is for bypass",
            ));
        }
    }
    for p in cfg.paths.iter().chain(&cfg.bypass) {
        if p.len() > 256 {
            return Err(ApiError::invalid("a path pattern is at most 256 bytes"));
        }
        shared::path::check_pattern(p).map_err(ApiError::invalid)?;
    }
    if let Some(a) = &cfg.admission {
        a.policy.validate().map_err(|e| ApiError::invalid(format!("admission: {e}")))?;
        if a.policy.max_active().is_some() && !cfg.enable_queue_position_expiry {
            return Err(ApiError::invalid(
                "a queue with max_active needs enable_queue_position_expiry: a served place \
                 nobody claims holds its slot until it expires, so without expiry a few \
                 unclaimed places (bots, closed tabs) would stop the line for good",
            ));
        }
    }
    Ok(cfg)
}

#[utoipa::path(
    post,
    path = "/api/queue",
    tag = "queues",
    request_body(content = QueueInput, content_type = "application/json"),
    responses((status = 200, description = "the queue as stored", body = QueueConfig), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn create_queue(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input): JsonBody<QueueInput>,
) -> ApiResult<Json<QueueConfig>> {
    if input.id.is_some() {
        return Err(ApiError::invalid("id is assigned by the server; omit it"));
    }
    let slug = input.queue_id.clone().ok_or_else(|| ApiError::invalid("queue_id is required"))?;
    if !shared::valid_slug(&slug) {
        return Err(ApiError::invalid("queue_id must match [a-z0-9_-]{1,32}"));
    }
    let base = QueueConfig { created_at: state.now_ms(), ..QueueConfig::with_defaults(slug) };
    let cfg = merge(base, &input)?;
    match state.store().create_queue(cfg).await? {
        Created::Ok(cfg) => {
            if cfg.prequeue_opens_at.is_some() {
                prequeue_seed(&state, &cfg).await?;
            }
            state.refresh_queues().await?;
            tracing::info!(id = cfg.id, queue = %cfg.queue_id, by = %caller.key, "queue created");
            let changes = audit::diff(None, Some(&cfg));
            audit::record(&state, &caller, "queue.create", Some(&cfg), changes).await;
            Ok(Json(*cfg))
        }
        Created::SlugTaken => {
            Err(ApiError::with(ErrorCode::DuplicateQueueId, "queue_id is already in use"))
        }
    }
}

async fn find(state: &AppState, id: u32) -> ApiResult<QueueConfig> {
    state
        .store()
        .list_queues()
        .await?
        .into_iter()
        .find(|q| q.id == id)
        .ok_or_else(|| ApiError::with(ErrorCode::QueueNotFound, "no queue with this id"))
}

#[utoipa::path(
    put,
    path = "/api/queue",
    tag = "queues",
    request_body(content = QueueInput, content_type = "application/json"),
    responses((status = 200, description = "the queue as stored", body = QueueConfig), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn update_queue(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input): JsonBody<QueueInput>,
) -> ApiResult<Json<QueueConfig>> {
    let id = input.id.ok_or_else(|| ApiError::invalid("id is required"))?;
    let current = find(&state, id).await?;
    if input.queue_id.as_ref().is_some_and(|s| *s != current.queue_id) {
        return Err(ApiError::with(ErrorCode::ImmutableQueueId, "queue_id cannot change"));
    }
    let cfg = merge(current.clone(), &input)?;
    store_update(&state, &caller, "queue.update", &current, cfg).await
}

/// Stores a queue's new settings and audits the change as `action`.
async fn store_update(
    state: &AppState,
    caller: &Caller,
    action: &str,
    current: &QueueConfig,
    cfg: QueueConfig,
) -> ApiResult<Json<QueueConfig>> {
    if !state.store().update_queue(cfg.clone()).await? {
        return Err(ApiError::with(ErrorCode::QueueNotFound, "no queue with this id"));
    }
    if cfg.prequeue_opens_at.is_some() {
        prequeue_seed(state, &cfg).await?;
    }
    state.refresh_queues().await?;
    state.forget_status(cfg.id, None);
    audit::record(state, caller, action, Some(&cfg), audit::diff(Some(current), Some(&cfg))).await;
    Ok(Json(cfg))
}

/// The operator's switches: pause, resume, drain, open.
#[derive(Debug, Clone, Copy)]
enum Switch {
    Pause,
    Resume,
    Drain,
    Open,
}

/// Applies a switch to a queue's settings at `now` (unix seconds). Pause, resume and drain
/// act on automatic admission; open lets new visitors in now: mode `queue` from `closed`,
/// draining and paused off, and for a queue scheduled to open later `opens_at` brought to
/// now (a pre-queue not open yet is dropped: nobody is in it; one already open is drawn
/// now).
fn switched(mut q: QueueConfig, switch: Switch, now: u64) -> ApiResult<QueueConfig> {
    let manual = q.admission.is_none();
    if manual && !matches!(switch, Switch::Open) {
        return Err(ApiError::new(ErrorCode::AdmissionManual));
    }
    if let Some(a) = q.admission.as_mut() {
        match switch {
            Switch::Pause => a.paused = true,
            Switch::Resume => a.paused = false,
            Switch::Drain => a.draining = true,
            Switch::Open => (a.paused, a.draining) = (false, false),
        }
    }
    if matches!(switch, Switch::Open) {
        if q.mode == shared::wire::QueueMode::Closed {
            q.mode = shared::wire::QueueMode::Queue;
        }
        if q.opens_at.is_some_and(|o| o > now) {
            q.opens_at = Some(now);
            if q.prequeue_opens_at.is_some_and(|p| p >= now) {
                q.prequeue_opens_at = None;
            }
        }
        if q.closes_at.is_some_and(|c| c <= now) {
            q.closes_at = None;
        }
    }
    Ok(q)
}

async fn apply_switch(
    state: AppState,
    caller: Caller,
    queue_id: String,
    switch: Switch,
    action: &str,
) -> ApiResult<Json<QueueConfig>> {
    let q = state.queue_by_slug(&queue_id).await?;
    let current = find(&state, q.id).await?;
    let cfg = switched(current.clone(), switch, state.now())?;
    store_update(&state, &caller, action, &current, cfg).await
}

/// `POST /api/queue/{queue_id}/pause`: admit nobody until resumed (claims answer 503).
#[utoipa::path(
    post,
    path = "/api/queue/{queue_id}/pause",
    tag = "queues",
    params(("queue_id" = String, Path, description = "the queue slug")),
    responses((status = 200, description = "paused", body = QueueConfig), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(queue_id): Path<String>,
) -> ApiResult<Json<QueueConfig>> {
    apply_switch(state, caller, queue_id, Switch::Pause, "queue.pause").await
}

/// `POST /api/queue/{queue_id}/resume`.
#[utoipa::path(
    post,
    path = "/api/queue/{queue_id}/resume",
    tag = "queues",
    params(("queue_id" = String, Path, description = "the queue slug")),
    responses((status = 200, description = "resumed", body = QueueConfig), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(queue_id): Path<String>,
) -> ApiResult<Json<QueueConfig>> {
    apply_switch(state, caller, queue_id, Switch::Resume, "queue.resume").await
}

/// `POST /api/queue/{queue_id}/drain`: no new places or sessions; running ones finish.
#[utoipa::path(
    post,
    path = "/api/queue/{queue_id}/drain",
    tag = "queues",
    params(("queue_id" = String, Path, description = "the queue slug")),
    responses((status = 200, description = "draining", body = QueueConfig), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn drain(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(queue_id): Path<String>,
) -> ApiResult<Json<QueueConfig>> {
    apply_switch(state, caller, queue_id, Switch::Drain, "queue.drain").await
}

/// `POST /api/queue/{queue_id}/open`: take visitors again.
#[utoipa::path(
    post,
    path = "/api/queue/{queue_id}/open",
    tag = "queues",
    params(("queue_id" = String, Path, description = "the queue slug")),
    responses((status = 200, description = "open", body = QueueConfig), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn open(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(queue_id): Path<String>,
) -> ApiResult<Json<QueueConfig>> {
    apply_switch(state, caller, queue_id, Switch::Open, "queue.open").await
}

/// `GET /api/queue_defaults`: a new queue's settings and the bounds checked on them.
#[utoipa::path(
    get,
    path = "/api/queue_defaults",
    tag = "queues",
    responses((status = 200, description = "every setting at its default, and the bounds", body = shared::wire::QueueDefaults), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody))
)]
async fn queue_defaults() -> Json<shared::wire::QueueDefaults> {
    use shared::presentation as p;
    Json(shared::wire::QueueDefaults {
        queue: QueueConfig::with_defaults(""),
        max_token_validity_second: MAX_TOKEN_VALIDITY,
        min_position_expiry_second: MIN_POSITION_EXPIRY,
        max_position_expiry_second: MAX_POSITION_EXPIRY,
        max_pow_difficulty: shared::pow::MAX_DIFFICULTY,
        max_display_name: p::MAX_DISPLAY_NAME,
        max_logo_text: p::MAX_LOGO_TEXT,
        max_notice: p::MAX_NOTICE,
    })
}

fn parse_id(id: &str) -> ApiResult<u32> {
    id.parse().map_err(|_| ApiError::invalid("id must be a positive integer"))
}

#[utoipa::path(
    get,
    path = "/api/queue/{id}",
    tag = "queues",
    params(("id" = String, Path, description = "the numeric queue id")),
    responses((status = 200, description = "the queue", body = QueueConfig), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn get_queue(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<QueueConfig>> {
    Ok(Json(find(&state, parse_id(&id)?).await?))
}

#[utoipa::path(
    get,
    path = "/api/queues",
    tag = "queues",
    responses((status = 200, description = "every queue", body = Vec<QueueConfig>), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn list_queues(State(state): State<AppState>) -> ApiResult<Json<Vec<QueueConfig>>> {
    Ok(Json(state.store().list_queues().await?))
}

#[utoipa::path(
    delete,
    path = "/api/queue/{id}",
    tag = "queues",
    params(("id" = String, Path, description = "the numeric queue id")),
    responses((status = 200, description = "deleted"), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn delete_queue(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    // A queue the store lost can be deleted too: that is the operator's word the edge waits
    // for before it forgets the queue.
    let lost = state.lost_queues().into_iter().find(|q| q.id == id).map(|q| (*q).clone());
    let known = state.queue_by_id_cached(id).map(|q| (*q).clone()).or_else(|| lost.clone());
    if !state.store().delete_queue(id, lost, state.now()).await? {
        return Err(ApiError::with(ErrorCode::QueueNotFound, "no queue with this id"));
    }
    state.forget_lost(id);
    state.floors().forget(id);
    state.batchers().forget(id);
    if let Some(m) = state.metrics() {
        m.forget_queue(id);
    }
    state.refresh_queues().await?;
    tracing::info!(id, by = %caller.key, "queue deleted");
    audit::record(&state, &caller, "queue.delete", known.as_ref(), Vec::new()).await;
    Ok(StatusCode::OK)
}

#[utoipa::path(
    post,
    path = "/api/queue/increment_serving_position",
    tag = "queues",
    request_body(content = IncrementForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "the new serving position", body = ServingPosResponse), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn increment_serving(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Form(form): Form<IncrementForm>,
) -> ApiResult<Json<ServingPosResponse>> {
    let slug = form.queue_id.as_deref().ok_or_else(|| ApiError::invalid("queue_id is required"))?;
    let q = state.queue_by_slug(slug).await?;
    let by: u64 = form
        .increment_by
        .as_deref()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| (1..=MAX_INCREMENT).contains(n))
        .ok_or_else(|| ApiError::invalid(format!("increment_by must be 1..={MAX_INCREMENT}")))?;
    let now = state.now();
    let serving_pos = state.store().increment_serving(q.id, by, now, q.keep_secs()).await?;
    state.forget_status(q.id, None);
    let previous = serving_pos - by;
    let event = ServingEvent {
        event_id: q.queue_id.clone(),
        queue_id: q.queue_id.clone(),
        previous,
        serving_num: serving_pos,
        by: caller.key.clone(),
    };
    state.webhooks().emit(&q.queue_id, now, EventData::ServingPositionAdvanced(event));
    let changes = vec![change("serving_pos", previous, serving_pos)];
    audit::record(&state, &caller, "serving.increment", Some(&q), changes).await;
    Ok(Json(ServingPosResponse { serving_pos }))
}

#[utoipa::path(
    post,
    path = "/api/queue/update_token_status",
    tag = "origin",
    request_body(content = TokenStatusForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "the session is ended"), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn update_token_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Form(form): Form<TokenStatusForm>,
) -> ApiResult<StatusCode> {
    let slug = form.queue_id.as_deref().ok_or_else(|| ApiError::invalid("queue_id is required"))?;
    let q = state.queue_by_slug(slug).await?;
    let rid =
        form.request_id.as_deref().ok_or_else(|| ApiError::invalid("request_id is required"))?;
    let outcome = match form.status.as_deref().map(str::trim) {
        Some("1") => Outcome::Completed,
        Some("2") => Outcome::Abandoned,
        _ => {
            return Err(ApiError::invalid("status must be 1 (COMPLETED) or 2 (ABANDONED)"));
        }
    };
    let t = open_ticket(&state, &q, rid)?;
    let place = place_of(&state, &q, &t)
        .await?
        .ok_or_else(|| ApiError::invalid("no access token was issued for this request_id"))?;
    let now = state.now();
    let session = jti(q.id, place);
    match state.store().end_session(q.id, place, session.clone(), now, outcome).await? {
        Ended::Now => {
            let event = SessionEvent {
                event_id: q.queue_id.clone(),
                queue_id: q.queue_id.clone(),
                request_id: Some(rid.to_string()),
                jti: session.clone(),
                position: place,
                status: Some(outcome.name().into()),
                expires_at: None,
                by: Some(caller.key.clone()),
            };
            state.webhooks().emit(&q.queue_id, now, EventData::SessionUpdated(event));
            if caller.role.is_admin() {
                let changes = vec![
                    change("session", (), &session),
                    change("status", "active", outcome.name()),
                ];
                audit::record(&state, &caller, "session.status", Some(&q), changes).await;
            }
            Ok(StatusCode::OK)
        }
        Ended::Already => Ok(StatusCode::OK),
        Ended::NeverClaimed => {
            Err(ApiError::invalid("no access token was issued for this request_id"))
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/queue/{queue_id}/active_token_num",
    tag = "queues",
    params(("queue_id" = String, Path, description = "the queue slug")),
    responses((status = 200, description = "live sessions", body = ActiveNumResponse), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn active_token_num(
    State(state): State<AppState>,
    Path(queue_id): Path<String>,
) -> ApiResult<Json<ActiveNumResponse>> {
    let q = state.queue_by_slug(&queue_id).await?;
    let active_num = state.store().active_sessions(q.id, state.now()).await?;
    Ok(Json(ActiveNumResponse { active_num }))
}

/// Extends a live session (a payment in progress) up to the queue's `session_max_second`
/// from issue; answers a fresh token for the same session (same `jti`, later `exp`).
#[utoipa::path(
    post,
    path = "/api/queue/extend_session",
    tag = "origin",
    request_body(content = shared::wire::ExtendForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "a token for the same session, later expiry", body = shared::wire::TokenResponse), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn extend_session(
    State(state): State<AppState>,
    Form(form): Form<shared::wire::ExtendForm>,
) -> ApiResult<Json<shared::wire::TokenResponse>> {
    let slug = form.queue_id.as_deref().ok_or_else(|| ApiError::invalid("queue_id is required"))?;
    let q = state.queue_by_slug(slug).await?;
    let rid =
        form.request_id.as_deref().ok_or_else(|| ApiError::invalid("request_id is required"))?;
    let by: u64 = form
        .extend_by
        .as_deref()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| (1..=u64::from(MAX_TOKEN_VALIDITY)).contains(n))
        .ok_or_else(|| ApiError::invalid("extend_by must be 1..=86400"))?;
    if q.session_max_second == 0 {
        return Err(ApiError::with(
            ErrorCode::ExtensionDisabled,
            "sessions of this queue cannot be extended",
        ));
    }
    let t = open_ticket(&state, &q, rid)?;
    let place = place_of(&state, &q, &t)
        .await?
        .ok_or_else(|| ApiError::invalid("no access token was issued for this request_id"))?;
    let now = state.now();
    let cap = u64::from(q.session_max_second);
    let session = state
        .store()
        .extend_session(q.id, place, by, cap, now)
        .await?
        .ok_or_else(|| ApiError::with(ErrorCode::SessionEnded, "no live session to extend"))?;
    Ok(Json(token_response(&state, &q, rid, place, session, now)))
}

/// Records the origin's health; the reading is stamped with the time it arrived.
#[utoipa::path(
    post,
    path = "/api/queue/{queue_id}/health",
    tag = "origin",
    params(("queue_id" = String, Path, description = "the queue slug")),
    request_body(content = shared::wire::HealthReport, content_type = "application/json"),
    responses((status = 204, description = "recorded"), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn report_health(
    State(state): State<AppState>,
    Path(queue_id): Path<String>,
    JsonBody(report): JsonBody<shared::wire::HealthReport>,
) -> ApiResult<StatusCode> {
    let q = state.queue_by_slug(&queue_id).await?;
    let ok_latency =
        report.latency_ms.is_finite() && (0.0..=3_600_000.0).contains(&report.latency_ms);
    if !ok_latency || !report.error_rate.is_finite() || !(0.0..=1.0).contains(&report.error_rate) {
        return Err(ApiError::invalid("latency_ms must be 0..=3600000 and error_rate 0..=1"));
    }
    let reading = shared::admission::HealthReading {
        latency_ms: report.latency_ms,
        error_rate: report.error_rate,
        in_flight: report.in_flight,
        at_ms: state.now_ms(),
    };
    let json = serde_json::to_string(&reading).map_err(|e| ApiError::Internal(e.to_string()))?;
    state.store().put_meta(q.id, "health", json).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Strategy and parameters, counters, sessions, admission rate, the ETA of the last
/// position and the last health reading of a queue.
#[utoipa::path(
    get,
    path = "/api/queue/{queue_id}/status",
    tag = "queues",
    params(("queue_id" = String, Path, description = "the queue slug")),
    responses((status = 200, description = "the queue's state", body = shared::wire::QueueStatus), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn queue_status(
    State(state): State<AppState>,
    Path(queue_id): Path<String>,
) -> ApiResult<Json<shared::wire::QueueStatus>> {
    let q = state.queue_by_slug(&queue_id).await?;
    let now = state.now();
    let w = state.waiting_facts_at(&q, now).await?;
    let ctl = crate::control::load(&state, q.id).await?;
    // Never below a serving position this process has seen (a store that lost writes).
    let serving = state.floors().saw(q.id, w.counters);
    let ahead = w.counters.assigned.saturating_sub(serving);
    Ok(Json(shared::wire::QueueStatus {
        serving_pos: serving,
        assigned: w.counters.assigned,
        waiting_num: w.waiting(),
        active_num: state.store().active_sessions(q.id, now).await?,
        admission_rate: ctl.estimate.rate,
        admission_rate_sd: ctl.estimate.var.max(0.0).sqrt(),
        eta_last_position: shared::eta::eta(&ctl.estimate, ahead),
        last_decision: ctl.last,
        last_health: crate::control::health(&state, q.id).await?,
        health_rate: ctl.state.health.as_ref().map(|h| h.rate),
        queue: (*q).clone(),
    }))
}

/// Rotates the token signing key; the old public key stays in the JWKS until every token it
/// signed has expired (the longest token validity of any queue).
#[utoipa::path(
    post,
    path = "/api/keys/rotate",
    tag = "operations",
    responses((status = 200, description = "the JWKS with the new key", body = shared::token::Jwks), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn rotate_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<shared::token::Jwks>> {
    if state.settings().keys_from_config {
        return Err(ApiError::with(
            ErrorCode::KeysFromConfig,
            "signing key is set by configuration; rotate it there",
        ));
    }
    let now = state.now();
    // A session lasts at most its token's validity, or what an extension allows.
    let longest = state
        .store()
        .list_queues()
        .await?
        .iter()
        .map(|q| u64::from(q.token_validity_second.max(q.session_max_second)))
        .max()
        .unwrap_or(300);
    // The new key is published at once and signs only after every process has reloaded the
    // ring (each second) and the publisher has sent it to the edge twice over.
    let lead = ROTATION_LEAD_SECS + 2 * state.publish_interval().as_secs();
    let active_from = now + lead;
    let retire_after = active_from + longest + shared::token::LEEWAY_SECS as u64;
    let stored = state.store().secrets_or_init(crate::keys::fresh_secrets()).await?;
    let next = rotate(&stored, now, active_from, retire_after);
    state.store().put_secrets(next.clone()).await?;
    let ring = Keyring::build(&next, None, None)
        .map_err(ApiError::Internal)?
        .with_ticket_keys_of(&state.keys());
    let jwks = ring.jwks(now);
    let (old, new) = (
        state.keys().signer(active_from).kid().to_string(),
        ring.signer(active_from).kid().to_string(),
    );
    tracing::info!(kid = %new, active_from, by = %caller.key, "signing key rotated");
    state.set_keys(ring);
    let changes = vec![change("signing_kid", old, new), change("active_from", (), active_from)];
    audit::record(&state, &caller, "keys.rotate", None, changes).await;
    Ok(Json(jwks))
}

/// `GET /api/health`: the store's reachability, faults this process found, queues held as
/// lost.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "operations",
    responses((status = 200, description = "faults found and queues held as lost", body = shared::wire::HealthView), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn health_view(State(state): State<AppState>) -> Json<shared::wire::HealthView> {
    let mut lost: Vec<shared::wire::LostQueue> = state
        .lost_queues()
        .iter()
        .map(|q| shared::wire::LostQueue { id: q.id, queue_id: q.queue_id.clone() })
        .collect();
    lost.sort_by(|a, b| a.queue_id.cmp(&b.queue_id));
    Json(shared::wire::HealthView {
        store: state.store().kind().to_string(),
        store_up: state.store().ping().await.is_ok(),
        faults: state.faults().snapshot(),
        lost_queues: lost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_now_brings_a_scheduled_opening_forward_and_drops_an_unopened_prequeue() {
        let mut q = QueueConfig::with_defaults("q");
        (q.prequeue_opens_at, q.opens_at, q.closes_at) = (Some(150), Some(200), Some(900));
        let open = |q: &QueueConfig, now| switched(q.clone(), Switch::Open, now).ok();
        let early = open(&q, 100).expect("open");
        assert_eq!(
            (early.prequeue_opens_at, early.opens_at, early.closes_at),
            (None, Some(100), Some(900))
        );
        // The pre-queue is open: its arrivals are drawn at the new opening.
        let during = open(&q, 170).expect("open");
        assert_eq!((during.prequeue_opens_at, during.opens_at), (Some(150), Some(170)));
        // Past closing: taking visitors again means no closing time.
        let late = open(&q, 1000).expect("open");
        assert_eq!((late.opens_at, late.closes_at), (Some(200), None));
        q.mode = shared::wire::QueueMode::Closed;
        assert_eq!(open(&q, 1000).map(|c| c.mode), Some(shared::wire::QueueMode::Queue));
        assert!(switched(q, Switch::Pause, 0).is_err(), "manual admission cannot pause");
    }
}
