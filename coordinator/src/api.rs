//! The public API (`docs/api.md`): enqueue, place and serving status, token issue, JWKS.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::sync::TicketStanding;
use shared::ticket::{Ticket, TicketKind};
use shared::wire::ErrorBody;
use shared::wire::{
    AssignResponse, EventData, PositionResponse, QueueConfig, QueueForm, SessionEvent, StillQueued,
    WaitingNumResponse,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::batcher::NotPlaced;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{Form, Path};
use crate::queue::{
    check_claim_open, check_enqueue_open, ensure_drawn, open_ticket, place_of, prequeue_seed,
    token_response,
};
use crate::report::wait_bucket;
use crate::state::AppState;
use crate::store::{Claim, ClaimWaits, PreQueued, ReplayKey};

/// Suggested wait before asking for a token again while still queued.
const QUEUED_RETRY_MS: u64 = 2000;

/// Routes of the public listener. In edge-only mode every route but the JWKS and the
/// pre-queue record (and the health checks added around them) needs the edge's client header.
pub fn routes(state: AppState) -> OpenApiRouter<AppState> {
    let through_edge = OpenApiRouter::new()
        .routes(routes!(assign_queue_pos))
        .routes(routes!(queue_pos))
        .routes(routes!(serving_pos))
        .routes(routes!(waiting_num))
        .routes(routes!(generate_token))
        .route_layer(axum::middleware::from_fn_with_state(state, from_edge));
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(prequeue_info))
        .routes(routes!(crate::spec::openapi_json))
        .merge(through_edge)
}

/// The visitor's IP, vouched for by the edge's client header or taken from the socket.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

/// Whether the call came through the edge (its client header checked out).
#[derive(Debug, Clone, Copy)]
pub struct ViaEdge(pub bool);

/// Checks the edge's client header (when present, or always in edge-only mode) and hands the
/// IP it vouches for to the handler.
async fn from_edge(
    State(state): State<AppState>,
    peer: PeerIp,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let ip = match client_ip(&state, req.headers(), peer) {
        Ok(ip) => ip,
        Err(e) => return e.into_response(),
    };
    let via_edge = req.headers().contains_key(CLIENT_HEADER);
    req.extensions_mut().insert(ClientIp(ip));
    req.extensions_mut().insert(ViaEdge(via_edge));
    next.run(req).await
}

fn required<'a>(v: &'a Option<String>, name: &str) -> ApiResult<&'a str> {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::invalid(format!("{name} is required"))),
    }
}

#[utoipa::path(
    get,
    path = "/prequeue/{queue_id}",
    tag = "public",
    params(("queue_id" = String, Path, description = "the queue slug")),
    responses((status = 200, description = "the pre-queue's commitment, and after the draw its seed", body = shared::wire::PrequeueInfo), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn prequeue_info(
    State(state): State<AppState>,
    Path(queue_id): Path<String>,
) -> ApiResult<Json<shared::wire::PrequeueInfo>> {
    let q = state.queue_by_slug(&queue_id).await?;
    if q.prequeue_opens_at.is_none() {
        return Err(ApiError::with(ErrorCode::NoPrequeue, "this queue has no pre-queue"));
    }
    let seed = prequeue_seed(&state, &q).await?;
    let drawn = state.store().drawn(q.id).await?;
    Ok(Json(shared::wire::PrequeueInfo {
        id: q.id,
        commitment: shared::prequeue::commitment(&seed),
        prequeue_opens_at: q.prequeue_opens_at,
        opens_at: q.opens_at,
        base: drawn.map(|d| d.0),
        count: drawn.map(|d| d.1),
        seed: drawn.map(|_| shared::prequeue::seed_to_hex(&seed)),
    }))
}

fn expired_error() -> ApiError {
    ApiError::with(ErrorCode::Expired, "request_id has expired")
}

/// The client's address as the socket saw it (absent when called without a socket, in tests).
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Header in which the edge passes the visitor's IP, MAC'd with the edge key.
pub const CLIENT_HEADER: &str = shared::sync::CLIENT_HEADER;

/// The visitor's IP: from the edge's MAC'd header when present, else the socket's peer (a
/// 403 in edge-only mode).
fn client_ip(state: &AppState, headers: &HeaderMap, peer: PeerIp) -> ApiResult<String> {
    match headers.get(CLIENT_HEADER) {
        None if state.settings().edge_only => Err(ApiError::with(
            ErrorCode::EdgeRequired,
            "this endpoint answers only requests that come through the waiting room's edge",
        )),
        Some(h) => {
            let key = state.settings().edge_key.ok_or_else(|| {
                ApiError::with(ErrorCode::BadClientHeader, "client header not accepted")
            })?;
            let h = h.to_str().map_err(|_| {
                ApiError::with(ErrorCode::BadClientHeader, "client header is malformed")
            })?;
            shared::sync::verify_client(&key, h, state.now().saturating_mul(1000)).map_err(|_| {
                ApiError::with(ErrorCode::BadClientHeader, "client header failed its check")
            })
        }
        None => Ok(peer.0.map(|ip| ip.to_string()).unwrap_or_default()),
    }
}

/// Checks the proof-of-work of an enqueue when the queue asks for one; returns the nonce to
/// remember (the store refuses it if seen before).
fn check_pow(
    state: &AppState,
    q: &QueueConfig,
    form: &QueueForm,
    ip: &str,
) -> ApiResult<Option<ReplayKey>> {
    if q.pow_difficulty == 0 || (q.allow_no_js && form.no_js.as_deref() == Some("1")) {
        return Ok(None);
    }
    let key = state
        .settings()
        .edge_key
        .ok_or_else(|| ApiError::with(ErrorCode::Unavailable, "proof-of-work is not configured"))?;
    let (Some(challenge), Some(counter)) = (&form.pow_challenge, &form.pow_counter) else {
        return Err(ApiError::with(ErrorCode::PowRequired, "a proof-of-work solution is required"));
    };
    let counter: u64 = counter
        .trim()
        .parse()
        .map_err(|_| ApiError::with(ErrorCode::PowInvalid, "pow_counter is not a number"))?;
    let c = shared::pow::open(&key, challenge)
        .map_err(|_| ApiError::with(ErrorCode::PowInvalid, "pow_challenge is not valid"))?;
    if c.difficulty < q.pow_difficulty {
        return Err(ApiError::with(
            ErrorCode::PowInvalid,
            "pow_challenge is easier than the queue requires",
        ));
    }
    let nonce = shared::pow::verify_solution(&key, challenge, counter, q.id, ip, state.now())
        .map_err(|e| match e {
            shared::pow::PowError::Expired => {
                ApiError::with(ErrorCode::PowExpired, "pow_challenge has expired")
            }
            _ => ApiError::with(ErrorCode::PowInvalid, "proof-of-work solution is not valid"),
        })?;
    let mut fingerprint = [0u8; 8];
    fingerprint.copy_from_slice(&nonce[..8]);
    Ok(Some(ReplayKey { fingerprint, expires_at: u64::from(c.expires_at) }))
}

/// Counts an enqueue refused for its proof-of-work.
fn count_pow(state: &AppState, q: &QueueConfig, e: &ApiError) {
    let reason = match e.code() {
        ErrorCode::PowRequired => "required",
        ErrorCode::PowExpired => "expired",
        ErrorCode::PowReplayed => "replayed",
        ErrorCode::PowInvalid => "invalid",
        _ => return,
    };
    if let Some(m) = state.metrics() {
        m.pow_refused(&q.queue_id, reason);
    }
}

#[utoipa::path(
    post,
    path = "/assign_queue_pos",
    tag = "public",
    request_body(content = QueueForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "a place, stored", body = AssignResponse), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn assign_queue_pos(
    State(state): State<AppState>,
    axum::Extension(ClientIp(ip)): axum::Extension<ClientIp>,
    Form(form): Form<QueueForm>,
) -> ApiResult<Json<AssignResponse>> {
    let q = state.queue_by_slug(required(&form.queue_id, "queue_id")?).await?;
    let started = std::time::Instant::now();
    let answer = assign(&state, &q, &ip, &form).await;
    if let Some(m) = state.metrics() {
        m.enqueued(q.id, &q.queue_id, started.elapsed());
        if let Err(e) = &answer {
            count_pow(&state, &q, e);
        }
    }
    answer
}

/// Hands out a place in `q` (or a pre-queue arrival).
async fn assign(
    state: &AppState,
    q: &QueueConfig,
    ip: &str,
    form: &QueueForm,
) -> ApiResult<Json<AssignResponse>> {
    let now = state.now();
    check_enqueue_open(q, now)?;
    let replay = check_pow(state, q, form, ip)?;
    let in_prequeue = q.prequeue_opens_at.is_some() && q.opens_at.is_some_and(|o| now < o);
    // An enqueue changes only the waiting count, which status answers may show up to
    // STATUS_TTL late: the status cache is kept (dropping it on every enqueue made each poll
    // after one go to the store, and took a write lock per enqueue).
    let arrival = if in_prequeue {
        state.store().assign_prequeue(q.id, replay).await?
    } else {
        PreQueued::Drawn
    };
    if arrival == PreQueued::Replayed {
        return Err(ApiError::with(
            ErrorCode::PowReplayed,
            "proof-of-work challenge was already used",
        ));
    }
    if let PreQueued::Arrival(index) = arrival {
        let ticket = Ticket {
            key_id: 0,
            kind: TicketKind::PreQueue,
            queue: q.id,
            position: index,
            entered_at: u32::try_from(now).unwrap_or(u32::MAX),
        };
        let request_id = ticket.seal(state.keys().ticket_signer());
        return Ok(Json(AssignResponse { request_id, position: None }));
    }
    if q.prequeue_opens_at.is_some() {
        // The pre-queue's places come first: draw before any FIFO place is handed out.
        ensure_drawn(state, q).await?;
    }
    let placed = state.batchers().assign(q.id, q.keep_secs(), replay).await;
    let (position, entered_at) = placed.map_err(|e| match e {
        NotPlaced::Store(e) => ApiError::from(e),
        NotPlaced::Replayed => {
            ApiError::with(ErrorCode::PowReplayed, "proof-of-work challenge was already used")
        }
    })?;
    let ticket = Ticket {
        key_id: 0,
        kind: TicketKind::Fifo,
        queue: q.id,
        position,
        entered_at: u32::try_from(entered_at).unwrap_or(u32::MAX),
    };
    let request_id = ticket.seal(state.keys().ticket_signer());
    Ok(Json(AssignResponse { request_id, position: Some(position) }))
}

/// Counts a status answer.
fn count_read(state: &AppState, q: &QueueConfig, via: Option<axum::Extension<ViaEdge>>) {
    if let Some(m) = state.metrics() {
        m.status_read(&q.queue_id, via.is_some_and(|v| v.0.0));
    }
}

#[utoipa::path(
    get,
    path = "/queue_pos/{queue_id}/{request_id}",
    tag = "public",
    params(("queue_id" = String, Path, description = "the queue slug"), ("request_id" = String, Path, description = "the ticket")),
    responses((status = 200, description = "the ticket's place", body = PositionResponse), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn queue_pos(
    State(state): State<AppState>,
    via: Option<axum::Extension<ViaEdge>>,
    Path((queue_id, request_id)): Path<(String, String)>,
) -> ApiResult<Json<PositionResponse>> {
    let q = state.queue_by_slug(&queue_id).await?;
    count_read(&state, &q, via);
    let t = open_ticket(&state, &q, &request_id)?;
    let now = state.now();
    // Answered from the status cache with the edge's rule; a ticket beyond the cached counter
    // is either newer than the cache or lost, so the store is asked once more.
    let mut view = state.status(&q).await?;
    if view.line(&q).place_of(&t).is_some_and(|p| p > view.assigned) {
        view = state.read_status(&q).await?;
    }
    let line = shared::sync::Line { as_of_ms: u64::MAX, ..view.line(&q) };
    let place = match line.standing(&t, now) {
        TicketStanding::Foreign => return Err(ApiError::Internal("ticket queue mismatch".into())),
        TicketStanding::NotDecided => {
            return Err(ApiError::with(ErrorCode::NotReady, "place is not decided yet"));
        }
        TicketStanding::Expired => return Err(expired_error()),
        TicketStanding::Waiting | TicketStanding::Ready => line.place_of(&t).unwrap_or(t.position),
    };
    let ahead = place.saturating_sub(view.serving);
    Ok(Json(PositionResponse {
        position: place,
        ahead: Some(ahead),
        eta: state.estimate(q.id).and_then(|e| shared::eta::eta(&e, ahead)),
        admission_rate: state.estimate(q.id).map(|e| e.rate),
        version: None,
        next_poll_ms: None,
        shown: q.presentation(),
    }))
}

#[utoipa::path(
    get,
    path = "/serving_pos/{queue_id}",
    tag = "public",
    params(("queue_id" = String, Path, description = "the queue slug")),
    responses((status = 200, description = "the serving position", body = PositionResponse), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn serving_pos(
    State(state): State<AppState>,
    via: Option<axum::Extension<ViaEdge>>,
    Path(queue_id): Path<String>,
) -> ApiResult<Json<PositionResponse>> {
    let q = state.queue_by_slug(&queue_id).await?;
    count_read(&state, &q, via);
    let s = state.status(&q).await?;
    Ok(Json(PositionResponse {
        position: s.serving,
        ahead: None,
        eta: None,
        admission_rate: state.estimate(q.id).map(|e| e.rate),
        version: None,
        next_poll_ms: None,
        shown: Default::default(),
    }))
}

#[utoipa::path(
    get,
    path = "/waiting_num/{queue_id}",
    tag = "public",
    params(("queue_id" = String, Path, description = "the queue slug")),
    responses((status = 200, description = "visitors waiting", body = WaitingNumResponse), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn waiting_num(
    State(state): State<AppState>,
    via: Option<axum::Extension<ViaEdge>>,
    Path(queue_id): Path<String>,
) -> ApiResult<Json<WaitingNumResponse>> {
    let q = state.queue_by_slug(&queue_id).await?;
    count_read(&state, &q, via);
    let waiting_num = state.status(&q).await?.waiting;
    Ok(Json(WaitingNumResponse { waiting_num, version: None, next_poll_ms: None }))
}

fn still_queued(position: u64, serving_pos: u64) -> Response {
    let body = StillQueued {
        position,
        serving_pos,
        retry_after_ms: QUEUED_RETRY_MS,
        next_poll_ms: None,
        version: None,
    };
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(QUEUED_RETRY_MS.div_ceil(1000)));
    resp
}

#[utoipa::path(
    post,
    path = "/generate_token",
    tag = "public",
    request_body(content = QueueForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "the session's access token", body = shared::wire::TokenResponse), (status = 202, description = "still queued, or the session cap is reached", body = StillQueued), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn generate_token(
    State(state): State<AppState>,
    Form(form): Form<QueueForm>,
) -> ApiResult<Response> {
    let q = state.queue_by_slug(required(&form.queue_id, "queue_id")?).await?;
    let started = std::time::Instant::now();
    let answer = claim(&state, &q, &form).await;
    if let Some(m) = state.metrics() {
        m.claimed(q.id, &q.queue_id, started.elapsed());
    }
    answer
}

/// The token of a due place of `q` (or the answer that it is not due).
async fn claim(state: &AppState, q: &QueueConfig, form: &QueueForm) -> ApiResult<Response> {
    let request_id = required(&form.request_id, "request_id")?;
    let mut t = open_ticket(state, q, request_id)?;
    check_claim_open(q, state.now())?;
    let Some(place) = place_of(state, q, &t).await? else {
        return Ok(still_queued(t.position, 0));
    };
    t.position = place;
    let facts = state.store().place(q.id, t.position).await?;
    if t.position > facts.counters.assigned {
        return Err(ApiError::with(ErrorCode::NotReady, "place is not committed"));
    }
    if t.position > facts.counters.serving {
        return Ok(still_queued(t.position, facts.counters.serving));
    }
    let now = state.now();
    let pauses = match q.expiry() {
        Some(_) if !facts.claimed => state.store().pauses(q.id).await?,
        _ => Vec::new(),
    };
    let (entered, passed) = (u64::from(t.entered_at), facts.passed_at);
    if !facts.claimed && shared::place::expired(entered, passed, now, q.expiry(), &pauses) {
        return Err(expired_error());
    }
    let validity = u64::from(q.token_validity_second);
    // A session cap holds atomically in the claim, even when many due visitors claim at once.
    let max_active = q.admission.as_ref().and_then(|a| a.policy.max_active()).map_or(0, u64::from);
    // For the report: the waits of this visitor, recorded if the claim opens the session.
    let waits = ClaimWaits {
        served: wait_bucket(passed.unwrap_or(now).saturating_sub(entered)),
        claimed: wait_bucket(now.saturating_sub(entered)),
    };
    let claimed = state.store().claim(q.id, t.position, now, validity, max_active, waits).await;
    state.forget_status(q.id, None);
    let session = match claimed? {
        Claim::Issued(s) => {
            token_generated(state, q, request_id, t.position, s.exp, now);
            s
        }
        Claim::Existing(s) => s,
        Claim::Ended => return Err(ApiError::with(ErrorCode::SessionEnded, "session has ended")),
        Claim::Full { .. } => {
            // Waiting for the session cap is no fault of the visitor: their clock stands still.
            state.note_pause(q.id, now).await;
            return Ok(still_queued(t.position, facts.counters.serving));
        }
    };
    let mut resp =
        Json(token_response(state, q, request_id, t.position, session, now)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Sends `token_generated` for a new session.
fn token_generated(state: &AppState, q: &QueueConfig, rid: &str, place: u64, exp: u64, now: u64) {
    let data = SessionEvent {
        event_id: q.queue_id.clone(),
        queue_id: q.queue_id.clone(),
        request_id: Some(rid.to_string()),
        jti: crate::queue::jti(q.id, place),
        position: place,
        status: None,
        expires_at: Some(exp),
        by: None,
    };
    state.webhooks().emit(&q.queue_id, now, EventData::TokenGenerated(data));
}

#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "public",
    responses((status = 200, description = "the public keys tokens are signed with", body = shared::token::Jwks), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn jwks(State(state): State<AppState>) -> Response {
    let mut resp = Json(state.keys().jwks(state.now())).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    resp
}
