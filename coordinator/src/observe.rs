//! The private API's observability routes: `/metrics`, the audit log, the post-sale report,
//! named admin keys and webhook endpoints.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use shared::wire::{
    AdminKeyInput, AdminKeyView, AuditPage, ErrorBody, NewAdminKey, WebhookInput, WebhookView,
};

use crate::access::{Caller, StoredKey};
use crate::audit::{self, change};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{Json as JsonBody, Path};
use crate::metrics::QueueSnapshot;
use crate::state::AppState;
use crate::store::{AuditFrom, MinuteSample, RecordKind};
use crate::webhooks::{EVENT_TYPES, StoredWebhook};

/// Largest audit page.
const MAX_PAGE: usize = 1000;
/// Webhook endpoints at most (each event is sent to every one).
const MAX_WEBHOOKS: usize = 32;

/// Reads one queue's figures for a scrape.
async fn snapshot(state: &AppState, q: &shared::wire::QueueConfig) -> ApiResult<QueueSnapshot> {
    let now = state.now();
    let t0 = state.expiry_t0(q, now).await?;
    let stats = state.store().stats(q.id, now, t0).await?;
    let ctl = crate::control::load(state, q.id).await?;
    let health = crate::control::health(state, q.id).await?;
    let waits = state.store().wait_counts(q.id).await?;
    let policy = q.admission.as_ref().map(|a| &a.policy);
    use shared::admission::AdmissionPolicy as P;
    let (strategy, target_rate) = match policy {
        None | Some(P::Manual) => ("manual", None),
        Some(P::FixedRate { rate_per_sec, .. }) => ("fixed_rate", Some(*rate_per_sec)),
        Some(P::Capacity { .. }) => ("capacity", None),
        Some(P::Health(_)) => ("health", ctl.state.health.as_ref().map(|h| h.rate)),
    };
    Ok(QueueSnapshot {
        queue: q.queue_id.clone(),
        stats,
        max_active: policy.and_then(|p| p.max_active()),
        measured_rate: ctl.estimate.rate,
        target_rate,
        strategy,
        paused: q.admission.as_ref().is_some_and(|a| a.paused),
        draining: q.admission.as_ref().is_some_and(|a| a.draining),
        health: health.map(|h| (h, state.now_ms().saturating_sub(h.at_ms) as f64 / 1000.0)),
        pow_difficulty: q.pow_difficulty,
        waits: vec![
            ("served", crate::report::percentiles(&waits.served)),
            ("claimed", crate::report::percentiles(&waits.claimed)),
        ],
    })
}

/// Every queue's figures for a scrape, or `None` if the store failed (logged).
async fn snapshots(state: &AppState) -> Option<Vec<QueueSnapshot>> {
    let mut queues = state.cached_queues();
    queues.sort_by(|a, b| a.queue_id.cmp(&b.queue_id));
    let mut snap = Vec::with_capacity(queues.len());
    for q in &queues {
        match snapshot(state, q).await {
            Ok(s) => snap.push(s),
            Err(e) => {
                tracing::warn!(queue = %q.queue_id, cause = %e, "metrics: queue figures not read");
                return None;
            }
        }
    }
    Some(snap)
}

/// `GET /metrics`: the Prometheus exposition (admin or metrics key). When the store fails
/// it still answers 200 with this process's series and `anteroom_store_up 0`: a scrape
/// during an outage is when the Redis error counts matter most.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "observability",
    responses((status = 200, description = "Prometheus text exposition (0.0.4)", content_type = "text/plain"), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
pub async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let m = state
        .metrics()
        .ok_or_else(|| ApiError::with(ErrorCode::NotFound, "metrics are turned off"))?;
    let _one = m.scrape_lock.lock().await;
    let snap = snapshots(&state).await;
    let body = m.encode(snap, state.now_ms());
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE));
    Ok(resp)
}

/// Query of `GET /api/audit`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Only entries of this queue slug.
    queue: Option<String>,
    /// A cursor (`next` of the last page, or an entry id: entries after it) or unix ms
    /// (entries from then on).
    since: Option<String>,
    /// Entries per page, 1..=1000, default 100.
    limit: Option<usize>,
}

fn audit_from(since: Option<&str>) -> ApiResult<AuditFrom> {
    let bad = || ApiError::invalid("since must be an entry id (ms-seq) or unix milliseconds");
    match since {
        None => Ok(AuditFrom { ms: 0, seq: 0, exclusive: false }),
        Some(s) if s.contains('-') => {
            let (ms, seq) = audit::parse_id(s).ok_or_else(bad)?;
            Ok(AuditFrom { ms, seq, exclusive: true })
        }
        Some(s) => Ok(AuditFrom { ms: s.parse().map_err(|_| bad())?, seq: 0, exclusive: false }),
    }
}

/// `GET /api/audit?queue=&since=&limit=`: pages through the audit log, oldest first.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "observability",
    params(("queue" = Option<String>, Query, description = "only this queue slug"), ("since" = Option<String>, Query, description = "`next` of the last page, or unix ms"), ("limit" = Option<usize>, Query, description = "1..=1000, default 100")),
    responses((status = 200, description = "a page of entries, oldest first", body = AuditPage), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
pub async fn audit_log(
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    let Query(q) = query.map_err(|_| ApiError::invalid("query parameters are not valid"))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!("limit must be 1..={MAX_PAGE}")));
    }
    let from = audit_from(q.since.as_deref())?;
    Ok(Json(audit::page(&state, from, q.queue.as_deref(), limit).await?))
}

/// Query of the report.
#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    /// `json` (default) or `html`.
    format: Option<String>,
}

/// `GET /api/queue/{queue_id}/report[?format=html]`.
#[utoipa::path(
    get,
    path = "/api/queue/{queue_id}/report",
    tag = "observability",
    params(("queue_id" = String, Path, description = "the queue slug"), ("format" = Option<String>, Query, description = "json (default) or html")),
    responses((status = 200, description = "the report (JSON, or a self-contained HTML page with format=html)", body = shared::wire::Report), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
pub async fn report(
    State(state): State<AppState>,
    Path(queue_id): Path<String>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(fmt) = query.map_err(|_| ApiError::invalid("query parameters are not valid"))?;
    let html = match fmt.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(_) => return Err(ApiError::invalid("format must be json or html")),
    };
    let q = state.queue_by_slug(&queue_id).await?;
    let now = state.now();
    let t0 = state.expiry_t0(&q, now).await?;
    let stats = state.store().stats(q.id, now, t0).await?;
    let live = MinuteSample::of(now / 60, &stats, state.estimate(q.id).unwrap_or_default());
    let stored = state.store().minutes(q.id, 0).await?;
    let waits = state.store().wait_counts(q.id).await?;
    let r = crate::report::build(&q.queue_id, &stored, now, live, &waits);
    Ok(if html {
        Html(crate::report_page::html(&r)).into_response()
    } else {
        Json(r).into_response()
    })
}

/// `GET /api/admin_keys`: the named keys (never the keys themselves).
#[utoipa::path(
    get,
    path = "/api/admin_keys",
    tag = "keys",
    responses((status = 200, description = "the named keys (bootstrap key only)", body = Vec<AdminKeyView>), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
pub async fn list_admin_keys(State(state): State<AppState>) -> ApiResult<Json<Vec<AdminKeyView>>> {
    let mut all: Vec<AdminKeyView> = state
        .store()
        .records(RecordKind::AdminKey)
        .await?
        .iter()
        .filter_map(|j| serde_json::from_str::<StoredKey>(j).ok())
        .map(|k| AdminKeyView { name: k.name, created_at: k.created_at, created_by: k.created_by })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(all))
}

/// `POST /api/admin_keys`: adds a named key (bootstrap key only); the key is in this
/// answer and nowhere else.
#[utoipa::path(
    post,
    path = "/api/admin_keys",
    tag = "keys",
    request_body(content = AdminKeyInput, content_type = "application/json"),
    responses((status = 201, description = "the new key, shown this once (bootstrap key only)", body = NewAdminKey), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
pub async fn add_admin_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input): JsonBody<AdminKeyInput>,
) -> ApiResult<(StatusCode, Json<NewAdminKey>)> {
    let name = input.name.unwrap_or_default();
    if !crate::access::valid_name(&name) {
        return Err(ApiError::invalid(
            "name must match [a-z0-9_-]{1,32} and not be bootstrap, origin, metrics or controller",
        ));
    }
    let key = crate::access::fresh_key();
    let rec = StoredKey {
        name: name.clone(),
        sha256: shared::hex::encode(crate::access::digest(&key)),
        created_at: state.now_ms(),
        created_by: caller.key.clone(),
    };
    let json = serde_json::to_string(&rec).map_err(|e| ApiError::Internal(e.to_string()))?;
    if !state.store().add_record(RecordKind::AdminKey, name.clone(), json).await? {
        return Err(ApiError::with(ErrorCode::NameTaken, "a key with this name exists"));
    }
    state.access().reload(state.store()).await?;
    audit::record(&state, &caller, "admin_key.add", None, vec![change("name", (), &name)]).await;
    tracing::info!(name = %name, by = %caller.key, "admin key added");
    Ok((StatusCode::CREATED, Json(NewAdminKey { name, key })))
}

/// `DELETE /api/admin_keys/{name}`: revokes a named key, in every process within a second.
#[utoipa::path(
    delete,
    path = "/api/admin_keys/{name}",
    tag = "keys",
    params(("name" = String, Path, description = "the key name")),
    responses((status = 204, description = "revoked (bootstrap key only)"), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
pub async fn revoke_admin_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store().remove_record(RecordKind::AdminKey, name.clone()).await? {
        return Err(ApiError::with(ErrorCode::NotFound, "no key with this name"));
    }
    state.access().reload(state.store()).await?;
    audit::record(&state, &caller, "admin_key.revoke", None, vec![change("name", &name, ())]).await;
    tracing::info!(name = %name, by = %caller.key, "admin key revoked");
    Ok(StatusCode::NO_CONTENT)
}

fn view(w: StoredWebhook, with_secret: bool) -> WebhookView {
    WebhookView {
        id: w.id,
        url: w.url,
        events: w.events,
        queues: w.queues,
        created_at: w.created_at,
        secret: with_secret.then_some(w.secret),
    }
}

fn check_webhook(input: &WebhookInput) -> ApiResult<String> {
    let url = input.url.clone().unwrap_or_default();
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || url.len() > 2048 || reqwest::Url::parse(&url).is_err() {
        return Err(ApiError::invalid(
            "url must be an http:// or https:// URL of at most 2048 bytes",
        ));
    }
    if let Some(e) = input.events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
        return Err(ApiError::invalid(format!("unknown event type {e:?}")));
    }
    if input.queues.iter().any(|q| !shared::valid_slug(q)) || input.queues.len() > 64 {
        return Err(ApiError::invalid("queues must be at most 64 queue slugs"));
    }
    Ok(url)
}

/// `POST /api/webhooks`: adds an endpoint; its signing secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/webhooks",
    tag = "observability",
    request_body(content = WebhookInput, content_type = "application/json"),
    responses((status = 201, description = "the endpoint with its signing secret, shown this once", body = WebhookView), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
pub async fn add_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(input): JsonBody<WebhookInput>,
) -> ApiResult<(StatusCode, Json<WebhookView>)> {
    let url = check_webhook(&input)?;
    if state.store().records(RecordKind::Webhook).await?.len() >= MAX_WEBHOOKS {
        return Err(ApiError::invalid(format!("at most {MAX_WEBHOOKS} webhook endpoints")));
    }
    let w = StoredWebhook {
        id: shared::hex::encode(&crate::keys::random32()[..8]),
        url,
        secret: crate::webhooks::fresh_secret(),
        events: input.events,
        queues: input.queues,
        created_at: state.now_ms(),
    };
    let json = serde_json::to_string(&w).map_err(|e| ApiError::Internal(e.to_string()))?;
    if !state.store().add_record(RecordKind::Webhook, w.id.clone(), json).await? {
        return Err(ApiError::Internal("webhook id collision".into()));
    }
    state.webhooks().reload(state.store()).await?;
    let changes = vec![change("url", (), &w.url), change("events", (), &w.events)];
    audit::record(&state, &caller, "webhook.add", None, changes).await;
    Ok((StatusCode::CREATED, Json(view(w, true))))
}

/// `GET /api/webhooks`: the endpoints, without their secrets.
#[utoipa::path(
    get,
    path = "/api/webhooks",
    tag = "observability",
    responses((status = 200, description = "the endpoints, without secrets", body = Vec<WebhookView>), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
pub async fn list_webhooks(State(state): State<AppState>) -> ApiResult<Json<Vec<WebhookView>>> {
    let mut all: Vec<WebhookView> = state
        .store()
        .records(RecordKind::Webhook)
        .await?
        .iter()
        .filter_map(|j| serde_json::from_str::<StoredWebhook>(j).ok())
        .map(|w| view(w, false))
        .collect();
    all.sort_by_key(|w| w.created_at);
    Ok(Json(all))
}

/// `DELETE /api/webhooks/{id}`.
#[utoipa::path(
    delete,
    path = "/api/webhooks/{id}",
    tag = "observability",
    params(("id" = String, Path, description = "the endpoint id")),
    responses((status = 204, description = "removed"), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
pub async fn remove_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store().remove_record(RecordKind::Webhook, id.clone()).await? {
        return Err(ApiError::with(ErrorCode::NotFound, "no webhook with this id"));
    }
    state.webhooks().reload(state.store()).await?;
    audit::record(&state, &caller, "webhook.remove", None, vec![change("id", &id, ())]).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/overview`: every queue's state, numbers and warnings (the console's overview).
#[utoipa::path(
    get,
    path = "/api/overview",
    tag = "observability",
    responses((status = 200, description = "every queue with its numbers and warnings", body = shared::wire::Overview), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
pub async fn overview(State(state): State<AppState>) -> ApiResult<Json<shared::wire::Overview>> {
    Ok(Json(crate::overview::overview(&state).await?))
}

/// `GET /api/queue/{queue_id}/live`: a queue's settings, summary and the minutes of the
/// last hour (the console's queue page, `anteroom watch`).
#[utoipa::path(
    get,
    path = "/api/queue/{queue_id}/live",
    tag = "observability",
    params(("queue_id" = String, Path, description = "the queue slug")),
    responses((status = 200, description = "settings, summary and the last hour by minute", body = shared::wire::QueueLive), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
pub async fn live(
    State(state): State<AppState>,
    Path(queue_id): Path<String>,
) -> ApiResult<Json<shared::wire::QueueLive>> {
    let q = state.queue_by_slug(&queue_id).await?;
    Ok(Json(crate::overview::live(&state, &q).await?))
}
