//! The publisher against a receiver that checks every request as the edge does (MAC and
//! timestamp window): versions only rise, one writer per queue across two processes, at
//! most one write per queue per second, changes published promptly, deletions announced.
//! (The real worker receiving these batches is tested in `miniflare-tests/`.)
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{ADMIN_KEY, EDGE_KEY, EDGE_KEY_BYTES, Redis};
use serde_json::json;
use shared::sync::{SIGNATURE_HEADER, SyncBatch, TIMESTAMP_HEADER};

type Log = Arc<Mutex<Vec<(Instant, SyncBatch)>>>;

async fn receiver() -> (String, Log, Arc<Mutex<u32>>) {
    let log: Log = Arc::default();
    let refused = Arc::new(Mutex::new(0u32));
    let (l, r) = (log.clone(), refused.clone());
    let app = axum::Router::new().route(
        "/anteroom/__anteroom/sync",
        post(move |headers: HeaderMap, body: Bytes| {
            let (log, refused) = (l.clone(), r.clone());
            async move {
                let ts: u64 = headers[TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
                let sig = headers[SIGNATURE_HEADER].to_str().unwrap();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as u64;
                if shared::sync::verify_sync(&EDGE_KEY_BYTES, ts, &body, sig, now).is_err() {
                    *refused.lock().unwrap() += 1;
                    return StatusCode::UNAUTHORIZED;
                }
                let batch: SyncBatch = serde_json::from_slice(&body).unwrap();
                log.lock().unwrap().push((Instant::now(), batch));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/anteroom/__anteroom/sync"), log, refused)
}

/// (arrival, version, serving) of every state of `slug` received so far.
fn states_of(log: &Log, slug: &str) -> Vec<(Instant, u64, u64)> {
    log.lock()
        .unwrap()
        .iter()
        .flat_map(|(at, b)| {
            b.states
                .iter()
                .filter(|s| s.queue.queue_id == slug)
                .map(move |s| (*at, s.version, s.serving_pos))
        })
        .collect()
}

async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_is_single_writer_rate_limited_and_prompt() {
    let redis = Redis::start();
    let (url, log, refused) = receiver().await;
    let env = [
        ("ANTEROOM_REDIS_URL", redis.url()),
        ("ANTEROOM_EDGE_KEY", EDGE_KEY.to_string()),
        ("ANTEROOM_EDGE_SYNC_URL", url),
        ("ANTEROOM_PUBLISH_INTERVAL_MS", "2000".to_string()),
    ];
    let a = common::process(&env);
    let b = common::process(&env);
    let c = reqwest::Client::new();
    let created: serde_json::Value = c
        .post(format!("http://{}/api/queue", a.admin))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"queue_id": "gig", "paths": ["/tickets"], "pow_difficulty": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    wait_until("first publish", 10, || !states_of(&log, "gig").is_empty()).await;
    let first = states_of(&log, "gig")[0];
    let s0 = &log
        .lock()
        .unwrap()
        .iter()
        .find_map(|(_, b)| b.states.iter().find(|s| s.queue.queue_id == "gig").cloned())
        .unwrap();
    assert_eq!(s0.queue.paths, vec!["/tickets".to_string()]);
    assert_eq!((s0.queue.pow_difficulty, s0.queue.id), (4, created["id"].as_u64().unwrap() as u32));
    assert!(!s0.jwks.keys.is_empty(), "the JWKS travels with the state");

    // A serving change through process b shows up promptly (≤ 1 s write gap + poll).
    let changed_at = Instant::now();
    let r = c
        .post(format!("http://{}/api/queue/increment_serving_position", b.admin))
        .bearer_auth(ADMIN_KEY)
        .form(&[("queue_id", "gig"), ("increment_by", "7")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_until("serving change published", 5, || states_of(&log, "gig").iter().any(|s| s.2 == 7))
        .await;
    let seen = states_of(&log, "gig").iter().find(|s| s.2 == 7).unwrap().0;
    assert!(
        seen.duration_since(changed_at) <= Duration::from_millis(1600),
        "published after {:?}",
        seen.duration_since(changed_at)
    );
    assert!(seen.duration_since(first.0) >= Duration::from_millis(900));

    // Idle queues are republished every interval; check the whole history after a few.
    wait_until("republishes", 12, || states_of(&log, "gig").len() >= 5).await;
    let all = states_of(&log, "gig");
    for w in all.windows(2) {
        assert!(w[1].1 > w[0].1, "versions only rise: {} then {}", w[0].1, w[1].1);
        let gap = w[1].0.duration_since(w[0].0);
        assert!(
            gap >= Duration::from_millis(900),
            "two writes {gap:?} apart: one writer, one write a second"
        );
        assert!(gap <= Duration::from_millis(2600), "republished within the interval: {gap:?}");
    }
    assert_eq!(*refused.lock().unwrap(), 0);

    // Deleting the queue is announced.
    let id = created["id"].as_u64().unwrap();
    let r = c
        .delete(format!("http://{}/api/queue/{id}", a.admin))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_until("removal announced", 5, || {
        let id = id as u32;
        log.lock()
            .unwrap()
            .iter()
            .any(|(_, b)| b.removed.iter().any(|r| r.queue_id == "gig" && r.id == id))
    })
    .await;
    a.stop();
    b.stop();
}

/// After the store loses everything, the publisher never tells the edge a queue was removed:
/// it republishes the last state it sent, marked lost; only an operator's delete, naming the
/// queue's id, is announced (and repeated, so one dropped batch does not lose it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_loss_is_announced_as_lost_never_as_removed() {
    let redis = Redis::start();
    let (url, log, _) = receiver().await;
    let env = [
        ("ANTEROOM_REDIS_URL", redis.url()),
        ("ANTEROOM_EDGE_KEY", EDGE_KEY.to_string()),
        ("ANTEROOM_EDGE_SYNC_URL", url),
        ("ANTEROOM_PUBLISH_INTERVAL_MS", "1000".to_string()),
    ];
    let p = common::process(&env);
    let c = reqwest::Client::new();
    let created: serde_json::Value = c
        .post(format!("http://{}/api/queue", p.admin))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"queue_id": "kept", "paths": ["/k"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_u64().unwrap() as u32;
    wait_until("first publish", 10, || !states_of(&log, "kept").is_empty()).await;
    let before = states_of(&log, "kept").last().unwrap().1;

    assert!(common::redis_raw(redis.port, "FLUSHALL").unwrap().starts_with("+OK"));
    let lost_version = |log: &Log| {
        log.lock().unwrap().iter().find_map(|(_, b)| {
            b.states.iter().find(|s| s.queue.queue_id == "kept" && s.lost).map(|s| s.version)
        })
    };
    wait_until("the lost state published", 10, || lost_version(&log).is_some()).await;
    assert!(lost_version(&log).unwrap() > before, "a newer version than the last good state");
    wait_until("republished", 10, || {
        log.lock().unwrap().iter().filter(|(_, b)| b.states.iter().any(|s| s.lost)).count() >= 2
    })
    .await;
    assert!(
        log.lock().unwrap().iter().all(|(_, b)| b.removed.is_empty()),
        "the store forgetting a queue is never a removal"
    );

    let r = c
        .delete(format!("http://{}/api/queue/{id}", p.admin))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let removals = |log: &Log| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(_, b)| b.removed.iter().any(|r| r.queue_id == "kept" && r.id == id))
            .count()
    };
    wait_until("removal announced", 5, || removals(&log) >= 1).await;
    // Repeated in later batches (a lost notice is sent again), here with another queue's state.
    c.post(format!("http://{}/api/queue", p.admin))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"queue_id": "other"}))
        .send()
        .await
        .unwrap();
    wait_until("removal repeated", 5, || removals(&log) >= 2).await;
    p.stop();
}
