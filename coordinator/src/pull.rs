//! The edges' freshness pulls (`shared::pull`): `GET /edge/state/{queue_id}` and
//! `GET /edge/index` on the public listener, MAC'd both ways under the edge key.
//!
//! Each PoP pulls about once per queue per `FRESH_MS`; every process answers from a snapshot
//! at most `COORDINATOR_CACHE_MS` old, built by one request while the others of that moment
//! wait for it, so the store sees a handful of reads per queue per process per second however
//! many PoPs and visitors there are.
//!
//! Each pull is counted (`anteroom_edge_pulls_total`, by what was pulled, queue and outcome).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use shared::pull::{COORDINATOR_CACHE_MS, INDEX_PATH, PULL_HEADER, STATE_PATH};
use shared::sync::{EdgeIndex, EdgeQueue, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use shared::wire::ErrorBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::Path;
use crate::publish::{REMOVAL_SECS, snapshot};
use crate::state::AppState;

const CACHE: Duration = Duration::from_millis(COORDINATOR_CACHE_MS);

/// What a snapshot is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Index,
    State(u32),
}

/// A built answer body and when it was built.
#[derive(Debug)]
struct Built {
    at: Instant,
    body: Bytes,
}

/// This process's snapshots, one slot per key; a slot's lock makes concurrent pulls of one
/// key share one build.
#[derive(Debug, Default)]
pub struct PullCache {
    slots: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Option<Built>>>>>,
}

impl PullCache {
    async fn get_or_build<F, Fut>(&self, key: Key, build: F) -> ApiResult<Bytes>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<Vec<u8>>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(key).or_default().clone()
        };
        let mut held = slot.lock().await;
        if let Some(b) = held.as_ref().filter(|b| b.at.elapsed() < CACHE) {
            return Ok(b.body.clone());
        }
        let body = Bytes::from(build().await?);
        *held = Some(Built { at: Instant::now(), body: body.clone() });
        Ok(body)
    }

    /// Drops the slots of queues no longer served (deleted, or not this store's).
    fn retain(&self, live: impl Fn(u32) -> bool) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|k, _| match k {
            Key::Index => true,
            Key::State(id) => live(*id),
        });
    }
}

/// The pull routes (merged into the public router, outside the edge-only check: they carry
/// their own MAC).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(state_of))
        .routes(routes!(index))
        .layer(Extension(Arc::new(PullCache::default())))
}

/// What a pull's answer says, for the `outcome` label.
fn outcome<T>(answer: &ApiResult<T>) -> &'static str {
    match answer {
        Ok(_) => "served",
        Err(e) => match e.code() {
            ErrorCode::EdgeRequired | ErrorCode::BadClientHeader => "unauthorised",
            ErrorCode::UnknownQueue => "not_found",
            ErrorCode::QueueLost => "lost",
            _ => "error",
        },
    }
}

/// Counts a pull; `queue` only for a queue this process knows (never a slug an unchecked
/// request named, so callers cannot grow the label set).
fn count<T>(state: &AppState, what: &'static str, queue: &str, answer: &ApiResult<T>) {
    if let Some(m) = state.metrics() {
        let outcome = outcome(answer);
        let known = matches!(outcome, "served" | "lost");
        m.edge_pull(what, if known { queue } else { "" }, outcome);
    }
}

/// The edge key, if the request's [`PULL_HEADER`] is valid for `path`.
fn authorised(state: &AppState, headers: &HeaderMap, path: &str) -> ApiResult<[u8; 32]> {
    let key = state.settings().edge_key.ok_or_else(|| {
        ApiError::with(ErrorCode::EdgeRequired, "pulls need an edge key on the coordinator")
    })?;
    let h = headers
        .get(PULL_HEADER)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| ApiError::with(ErrorCode::EdgeRequired, "only the edge may pull state"))?;
    shared::pull::verify_request(&key, path, h, state.now_ms())
        .map_err(|e| ApiError::with(ErrorCode::BadClientHeader, e.to_string()))?;
    Ok(key)
}

/// A JSON answer signed for `path`.
fn signed(key: &[u8; 32], path: &str, now_ms: u64, body: Bytes) -> Response {
    let sig = shared::pull::sign_answer(key, path, now_ms, &body);
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let (Ok(ts), Ok(sig)) = (HeaderValue::from_str(&now_ms.to_string()), sig.parse()) {
        h.insert(TIMESTAMP_HEADER, ts);
        h.insert(SIGNATURE_HEADER, sig);
    }
    resp
}

/// `GET /edge/state/{queue_id}`: the queue's [`shared::sync::EdgeState`], as the publisher
/// would send it, from a snapshot at most `COORDINATOR_CACHE_MS` old. 503 `queue_lost` for a
/// queue the store lost (the edge keeps its last state and marks it lost).
#[utoipa::path(
    get,
    path = "/edge/state/{queue_id}",
    tag = "edge",
    params(("queue_id" = String, Path, description = "the queue slug"), ("x-anteroom-pull" = String, Header, description = "`<unix ms>|<mac>` under the edge key (shared::pull)")),
    responses((status = 200, description = "the queue's edge state, signed for its path (x-anteroom-timestamp, x-anteroom-signature)", content_type = "application/json"), (status = "4XX", description = "refused (no or bad pull header, unknown queue, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable or queue lost (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn state_of(
    State(state): State<AppState>,
    Extension(cache): Extension<Arc<PullCache>>,
    Path(queue_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let answer = state_answer(&state, &cache, &queue_id, &headers).await;
    count(&state, "state", &queue_id, &answer);
    answer
}

async fn state_answer(
    state: &AppState,
    cache: &PullCache,
    queue_id: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let path = format!("{STATE_PATH}{queue_id}");
    let key = authorised(state, headers, &path)?;
    state.refresh_queues_within(CACHE).await?;
    let q = state.queue_by_slug(queue_id).await?;
    let body = cache
        .get_or_build(Key::State(q.id), || async {
            let mut s = snapshot(state, &q).await?;
            let now = state.now_ms();
            s.version = state.store().next_version(q.id, now).await?;
            s.published_at_ms = now;
            serde_json::to_vec(&s).map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await?;
    Ok(signed(&key, &path, state.now_ms(), body))
}

/// `GET /edge/index`: every queue's edge settings (lost ones included, so they stay held) and
/// the deletions of the last hour as entries with `removed_at`, so a PoP whose KV lags still
/// holds a deleted queue's paths closed and then releases them.
#[utoipa::path(
    get,
    path = "/edge/index",
    tag = "edge",
    params(("x-anteroom-pull" = String, Header, description = "`<unix ms>|<mac>` under the edge key (shared::pull)")),
    responses((status = 200, description = "every queue's edge settings and the last hour's deletions, signed for the path", content_type = "application/json"), (status = "4XX", description = "refused (no or bad pull header)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn index(
    State(state): State<AppState>,
    Extension(cache): Extension<Arc<PullCache>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let answer = index_answer(&state, &cache, &headers).await;
    count(&state, "index", "", &answer);
    answer
}

async fn index_answer(
    state: &AppState,
    cache: &PullCache,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let key = authorised(state, headers, INDEX_PATH)?;
    let body = cache.get_or_build(Key::Index, || build_index(state, cache)).await?;
    Ok(signed(&key, INDEX_PATH, state.now_ms(), body))
}

async fn build_index(state: &AppState, cache: &PullCache) -> ApiResult<Vec<u8>> {
    state.refresh_queues_within(CACHE).await?;
    let live = state.cached_queues();
    let mut queues: Vec<EdgeQueue> =
        live.iter().chain(state.lost_queues().iter()).map(|q| EdgeQueue::from(&**q)).collect();
    let since = state.now().saturating_sub(REMOVAL_SECS);
    for t in state.store().tombstones(since).await? {
        if !queues.iter().any(|q| q.id == t.id) {
            queues.push(EdgeQueue::removed(t.id, t.queue_id, t.deleted_at.saturating_mul(1000)));
        }
    }
    cache.retain(|id| live.iter().any(|q| q.id == id));
    let index = EdgeIndex { queues, version: state.now_ms() };
    serde_json::to_vec(&index).map_err(|e| ApiError::Internal(e.to_string()))
}
