//! Scheduled opening with a fair pre-queue: 503 before it opens, 1,000 pre-queue arrivals
//! put in an order anyone can recompute from the revealed seed, FIFO arrivals after them,
//! and no enqueue after closing. On the memory store and on a real Redis.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Request, header};
use coordinator::Limits;
use coordinator::store::Store;
use coordinator::store::memory::MemoryStore;
use coordinator::store::redis::RedisStore;
use serde_json::json;

const T0: u64 = 1_800_000_000;

use common::call;

fn enqueue_req() -> Request<Body> {
    Request::post("/assign_queue_pos")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("queue_id=sale"))
        .unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

async fn suite(store: Arc<dyn Store>) {
    let (state, clock) = common::state_with(store, T0).await;
    let public = coordinator::public_app(state.clone(), Limits::default());
    let admin = coordinator::admin_app(state.clone(), Limits::default());
    let at = |secs: u64| clock.store(secs * 1000, Ordering::SeqCst);

    let body = json!({"queue_id": "sale", "prequeue_opens_at": T0 + 100, "opens_at": T0 + 200, "closes_at": T0 + 10_000});
    let req = Request::post("/api/queue")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
        .body(Body::from(body.to_string()))
        .unwrap();
    let (st, _, cfg) = call(&admin, req).await;
    assert_eq!(st, 200, "{cfg}");
    let id = cfg["id"].as_u64().unwrap() as u32;

    // The commitment is public before anything opens; the seed is not.
    let (st, _, info) = call(&public, get("/prequeue/sale")).await;
    assert_eq!(st, 200);
    let commitment = info["commitment"].as_str().unwrap().to_string();
    assert_eq!(commitment.len(), 64);
    assert!(info["seed"].is_null());

    // Before the pre-queue opens: 503 with the wait.
    let (st, h, v) = call(&public, enqueue_req()).await;
    assert_eq!((st, v["error"].as_str()), (503, Some("not_open")));
    assert_eq!(h[header::RETRY_AFTER], "100");

    // 1,000 arrivals during the pre-queue, at different moments: all treated equally.
    let mut pre = Vec::new();
    for i in 0..1000u64 {
        at(T0 + 100 + i / 10);
        let (st, _, v) = call(&public, enqueue_req()).await;
        assert_eq!(st, 200);
        assert!(v["position"].is_null(), "no place before the draw");
        pre.push(v["request_id"].as_str().unwrap().to_string());
    }
    let (st, _, _) = call(&public, get(&format!("/queue_pos/sale/{}", pre[0]))).await;
    assert_eq!(st, 404, "place not decided before the draw");
    let form = format!("queue_id=sale&request_id={}", pre[0]);
    let req = Request::post("/generate_token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    assert_eq!(call(&public, req).await.0, 202);

    // Opening: the first FIFO arrival comes after every pre-queue place.
    at(T0 + 200);
    let mut fifo = Vec::new();
    for _ in 0..5 {
        let (st, _, v) = call(&public, enqueue_req()).await;
        assert_eq!(st, 200);
        fifo.push(v["position"].as_u64().unwrap());
    }
    assert_eq!(fifo, vec![1001, 1002, 1003, 1004, 1005]);

    // The seed is revealed; it matches the commitment; every place recomputes.
    let (_, _, info) = call(&public, get("/prequeue/sale")).await;
    let seed = shared::prequeue::seed_from_hex(info["seed"].as_str().unwrap()).unwrap();
    assert!(shared::prequeue::verify_commitment(&seed, &commitment));
    assert_eq!((info["count"].as_u64(), info["base"].as_u64()), (Some(1000), Some(0)));
    let mut places = HashSet::new();
    let mut in_arrival_order = 0;
    for (i, rid) in pre.iter().enumerate() {
        let (st, _, v) = call(&public, get(&format!("/queue_pos/sale/{rid}"))).await;
        assert_eq!(st, 200);
        let place = v["position"].as_u64().unwrap();
        let expect = shared::prequeue::drawn_place(&seed, id, 1000, i as u64 + 1).unwrap();
        assert_eq!(place, expect, "anyone can recompute arrival {}'s place", i + 1);
        assert!(places.insert(place));
        in_arrival_order += usize::from(place == i as u64 + 1);
    }
    assert_eq!(places.len(), 1000);

    // The state published to the edge carries the draw, and the edge's own computation of a
    // pre-queue ticket's place agrees with the coordinator's.
    let q = state.queue_by_slug("sale").await.unwrap();
    let published = coordinator::publish::snapshot(&state, &q).await.unwrap();
    assert_eq!(published.draw.as_ref().map(|d| d.count), Some(1000));
    let keys = state.keys();
    for (i, rid) in pre.iter().enumerate().step_by(97) {
        let t = shared::ticket::Ticket::open(rid, |id| keys.ticket_key(id)).unwrap();
        let expect = shared::prequeue::drawn_place(&seed, id, 1000, i as u64 + 1);
        assert_eq!(published.place_of(&t), expect);
    }
    assert_eq!((places.iter().min(), places.iter().max()), (Some(&1), Some(&1000)));
    assert!(in_arrival_order < 50, "shuffled, not arrival order ({in_arrival_order} fixed points)");

    // After closing, no new enqueue.
    at(T0 + 10_000);
    let (st, _, v) = call(&public, enqueue_req()).await;
    assert_eq!((st, v["error"].as_str()), (403, Some("queue_closed")));
}

#[tokio::test]
async fn prequeue_on_memory_store() {
    suite(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn prequeue_on_redis() {
    let redis = common::Redis::start();
    suite(Arc::new(RedisStore::single(&redis.url(), 0).unwrap())).await;
}
