//! The edges' freshness pulls (`GET /edge/state/{queue_id}`, `GET /edge/index`) through the
//! public router: only the edge may pull, answers are signed for their path, one snapshot
//! answers a burst of pulls, the index names deleted and lost queues, and the position-expiry
//! floor the freshness bound implies. (Two PoPs pulling through real workerd instances are
//! tested in `miniflare-tests/multipop.test.mjs`.)
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use common::{ADMIN_KEY, EDGE_KEY_BYTES, call};
use coordinator::Limits;
use coordinator::store::memory::MemoryStore;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use shared::pull::{INDEX_PATH, PULL_HEADER, STATE_PATH};
use shared::sync::{EdgeIndex, EdgeState, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use shared::wire::QueueMode;
use tower::ServiceExt as _;

const T0: u64 = 1_800_000_000;
const NOW_MS: u64 = T0 * 1000;

struct Routers {
    public: Router,
    admin: Router,
}

async fn routers() -> Routers {
    let (state, _clock) = common::state_with(Arc::new(MemoryStore::new()), T0).await;
    Routers {
        public: coordinator::public_app(state.clone(), Limits::default()),
        admin: coordinator::admin_app(state, Limits::default()),
    }
}

async fn admin(r: &Routers, method: &str, uri: &str, body: Value) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, json) = call(&r.admin, req).await;
    (status, json)
}

/// A pull of `path` with `header` as [`PULL_HEADER`] (none if `None`): status, headers, body.
async fn pull(r: &Routers, path: &str, header: Option<String>) -> (u16, HeaderMap, Vec<u8>) {
    let mut req = Request::get(path);
    if let Some(h) = header {
        req = req.header(PULL_HEADER, h);
    }
    let resp = r.public.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

fn signed(path: &str) -> Option<String> {
    Some(shared::pull::sign_request(&EDGE_KEY_BYTES, path, NOW_MS))
}

/// The body of a 200 pull of `path`, after checking its signature as the edge does.
async fn pulled(r: &Routers, path: &str) -> Vec<u8> {
    let (status, headers, body) = pull(r, path, signed(path)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let ts: u64 = headers[TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
    let sig = headers[SIGNATURE_HEADER].to_str().unwrap();
    shared::pull::verify_answer(&EDGE_KEY_BYTES, path, ts, &body, sig, NOW_MS).unwrap();
    assert!(
        shared::pull::verify_answer(&EDGE_KEY_BYTES, "/edge/state/x", ts, &body, sig, NOW_MS)
            .is_err(),
        "an answer is bound to its path"
    );
    body
}

fn error_of(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).unwrap()["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn only_the_edge_may_pull_and_answers_are_signed_for_their_path() {
    let r = routers().await;
    let (s, q) = admin(&r, "POST", "/api/queue", json!({"queue_id": "shop"})).await;
    assert_eq!(s, 200, "{q}");
    let path = format!("{STATE_PATH}shop");
    let (status, _, body) = pull(&r, &path, None).await;
    assert_eq!((status, error_of(&body).as_str()), (403, "edge_required"));
    let other = shared::pull::sign_request(&EDGE_KEY_BYTES, INDEX_PATH, NOW_MS);
    let stale = shared::pull::sign_request(&EDGE_KEY_BYTES, &path, NOW_MS - 60_000);
    let wrong_key = shared::pull::sign_request(&[1; 32], &path, NOW_MS);
    for bad in [other, stale, wrong_key, "garbage".into()] {
        let (status, _, body) = pull(&r, &path, Some(bad.clone())).await;
        assert_eq!((status, error_of(&body).as_str()), (403, "bad_client_header"), "{bad}");
    }
    let state: EdgeState = serde_json::from_slice(&pulled(&r, &path).await).unwrap();
    assert_eq!(state.queue.queue_id, "shop");
    assert_eq!(state.queue.id, q["id"].as_u64().unwrap() as u32);
    assert!(state.version >= NOW_MS, "versions are at least the clock");
    assert_eq!(state.published_at_ms, NOW_MS);
    let (status, _, body) = pull(&r, "/edge/state/nope", signed("/edge/state/nope")).await;
    assert_eq!((status, error_of(&body).as_str()), (400, "unknown_queue"));
}

#[tokio::test]
async fn one_snapshot_answers_a_burst_of_pulls_and_a_change_is_in_the_next() {
    let r = routers().await;
    admin(&r, "POST", "/api/queue", json!({"queue_id": "shop"})).await;
    let path = format!("{STATE_PATH}shop");
    let bodies = futures::future::join_all((0..50).map(|_| pulled(&r, &path))).await;
    let versions: std::collections::HashSet<u64> =
        bodies.iter().map(|b| serde_json::from_slice::<EdgeState>(b).unwrap().version).collect();
    assert_eq!(versions.len(), 1, "fifty pulls at once share one snapshot: {versions:?}");
}

#[tokio::test]
async fn the_index_lists_live_queues_and_deletions_by_id() {
    let r = routers().await;
    let (_, a) = admin(&r, "POST", "/api/queue", json!({"queue_id": "a", "paths": ["/a"]})).await;
    let (_, b) = admin(&r, "POST", "/api/queue", json!({"queue_id": "b", "paths": ["/b"]})).await;
    let (s, _) = admin(&r, "DELETE", &format!("/api/queue/{}", b["id"]), Value::Null).await;
    assert_eq!(s, 200);
    let index: EdgeIndex = serde_json::from_slice(&pulled(&r, INDEX_PATH).await).unwrap();
    assert!(index.version >= NOW_MS);
    let live = index.queues.iter().find(|q| q.queue_id == "a").unwrap();
    assert_eq!(
        (live.id, live.removed_at, live.paths.clone()),
        (a["id"].as_u64().unwrap() as u32, 0, vec!["/a".to_owned()])
    );
    let gone = index.queues.iter().find(|q| q.queue_id == "b").unwrap();
    assert_eq!(gone.id, b["id"].as_u64().unwrap() as u32);
    assert_eq!(gone.mode, QueueMode::Closed);
    assert!(gone.removed_at > 0, "a deletion is announced by id: {gone:?}");
}

#[tokio::test]
async fn position_expiry_has_a_floor_that_says_why() {
    let r = routers().await;
    let floor = shared::pull::MIN_POSITION_EXPIRY_SECS;
    let body = json!({"queue_id": "fast", "enable_queue_position_expiry": true, "position_expiry_second": floor - 1});
    let (s, e) = admin(&r, "POST", "/api/queue", body).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_parameter")));
    assert!(e["message"].as_str().unwrap().contains("freshness bound"), "{e}");
    let body = json!({"queue_id": "fast", "enable_queue_position_expiry": true, "position_expiry_second": floor});
    assert_eq!(admin(&r, "POST", "/api/queue", body).await.0, 200);
}

/// The private listener's `/metrics`, as series → value.
async fn metrics(r: &Routers) -> std::collections::HashMap<String, f64> {
    let req = Request::get("/metrics")
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .body(Body::empty())
        .unwrap();
    let resp = r.admin.clone().oneshot(req).await.unwrap();
    let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec());
    text.unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(k, v)| (k.to_owned(), v.parse().unwrap())))
        .collect()
}

#[tokio::test]
async fn pulls_are_counted_by_queue_and_outcome() {
    let r = routers().await;
    admin(&r, "POST", "/api/queue", json!({"queue_id": "shop"})).await;
    let path = format!("{STATE_PATH}shop");
    for _ in 0..3 {
        pulled(&r, &path).await;
    }
    pulled(&r, INDEX_PATH).await;
    assert_eq!(pull(&r, &path, None).await.0, 403);
    assert_eq!(pull(&r, INDEX_PATH, Some("garbage".into())).await.0, 403);
    // A slug no queue has is counted without it: a caller cannot grow the label set.
    for slug in ["nope", "nope2"] {
        let p = format!("{STATE_PATH}{slug}");
        assert_eq!(pull(&r, &p, signed(&p)).await.0, 400);
    }
    let m = metrics(&r).await;
    let n = |what: &str, queue: &str, outcome: &str| {
        let k = format!(
            "anteroom_edge_pulls_total{{what=\"{what}\",queue=\"{queue}\",outcome=\"{outcome}\"}}"
        );
        m.get(&k).copied().unwrap_or(0.0)
    };
    assert_eq!(n("state", "shop", "served"), 3.0);
    assert_eq!(n("index", "", "served"), 1.0);
    assert_eq!(n("state", "", "unauthorised"), 1.0);
    assert_eq!(n("index", "", "unauthorised"), 1.0);
    assert_eq!(n("state", "", "not_found"), 2.0);
    let series = m.keys().filter(|k| k.starts_with("anteroom_edge_pulls_total")).count();
    assert_eq!(series, 5, "{m:?}");
}
