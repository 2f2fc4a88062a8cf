//! The coordinator's own gate: edge-only mode refuses public
//! calls that did not come through the edge, and a closed, draining, paused or not yet open
//! queue refuses enqueues and claims here, not only at the edge.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use coordinator::Limits;
use coordinator::store::memory::MemoryStore;
use serde_json::{Value, json};

const T0: u64 = 1_800_000_000;

struct Stack {
    public: Router,
    admin: Router,
    clock: Arc<AtomicU64>,
}

use common::call;

impl Stack {
    async fn new(extra: &[&str]) -> Self {
        let cfg = common::config_with(None, extra);
        let (state, clock) =
            common::state_with_config(Arc::new(MemoryStore::new()), T0, &cfg).await;
        Stack {
            public: coordinator::public_app(state.clone(), Limits::default()),
            admin: coordinator::admin_app(state, Limits::default()),
            clock,
        }
    }

    fn client_header(&self, ip: &str) -> String {
        shared::sync::sign_client(&common::EDGE_KEY_BYTES, ip, self.clock.load(Ordering::SeqCst))
    }

    async fn admin(&self, method: &str, uri: &str, body: Value) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (st, _, v) = call(&self.admin, req).await;
        (st, v)
    }

    async fn serve(&self, q: &str, by: u64) {
        let req = Request::post("/api/queue/increment_serving_position")
            .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("queue_id={q}&increment_by={by}")))
            .unwrap();
        assert_eq!(call(&self.admin, req).await.0, 200);
    }

    async fn public(
        &self,
        method: &str,
        uri: &str,
        form: &str,
        edge: Option<&str>,
    ) -> (u16, axum::http::HeaderMap, Value) {
        let mut b = Request::builder().method(method).uri(uri);
        if method == "POST" {
            b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        if let Some(h) = edge {
            b = b.header(shared::sync::CLIENT_HEADER, h);
        }
        call(&self.public, b.body(Body::from(form.to_string())).unwrap()).await
    }
}

#[tokio::test]
async fn edge_only_mode_refuses_calls_that_skip_the_edge() {
    // On by default whenever an edge key is configured (the test config has one).
    let s = Stack::new(&[]).await;
    let (st, q) = s.admin("POST", "/api/queue", json!({"queue_id": "sale"})).await;
    assert_eq!(st, 200, "{q}");
    let edge = s.client_header("198.51.100.7");
    let (st, _, v) = s.public("POST", "/assign_queue_pos", "queue_id=sale", Some(&edge)).await;
    assert_eq!(st, 200, "{v}");
    let rid = v["request_id"].as_str().unwrap().to_string();

    let direct = [
        ("POST", "/assign_queue_pos".to_string(), "queue_id=sale".to_string()),
        ("POST", "/generate_token".to_string(), format!("queue_id=sale&request_id={rid}")),
        ("GET", format!("/queue_pos/sale/{rid}"), String::new()),
        ("GET", "/serving_pos/sale".to_string(), String::new()),
        ("GET", "/waiting_num/sale".to_string(), String::new()),
    ];
    let forged = edge.replace("198.51.100.7", "198.51.100.8");
    for (m, uri, form) in &direct {
        let (st, _, v) = s.public(m, uri, form, None).await;
        assert_eq!((st, v["error"].as_str()), (403, Some("edge_required")), "{m} {uri}");
        let (st, _, v) = s.public(m, uri, form, Some(&forged)).await;
        assert_eq!((st, v["error"].as_str()), (403, Some("bad_client_header")), "{m} {uri}");
        let (st, _, v) = s.public(m, uri, form, Some(&edge)).await;
        assert!(st == 200 || st == 202, "{m} {uri} through the edge: {st} {v}");
    }
    // Public on purpose: what origins and auditors read.
    for uri in ["/.well-known/jwks.json", "/healthz", "/readyz"] {
        assert_eq!(s.public("GET", uri, "", None).await.0, 200, "{uri}");
    }
    assert_eq!(s.public("GET", "/prequeue/sale", "", None).await.0, 404, "no pre-queue, not 403");
    // A stale header (outside the 30 s window) is refused too.
    s.clock.fetch_add(31_000, Ordering::SeqCst);
    let (st, _, _) = s.public("GET", "/serving_pos/sale", "", Some(&edge)).await;
    assert_eq!(st, 403);
}

#[tokio::test]
async fn edge_only_can_be_switched_off_and_needs_an_edge_key() {
    let s = Stack::new(&["--edge-only", "false"]).await;
    s.admin("POST", "/api/queue", json!({"queue_id": "open"})).await;
    assert_eq!(s.public("POST", "/assign_queue_pos", "queue_id=open", None).await.0, 200);
    use clap::Parser as _;
    let cfg = coordinator::Config::try_parse_from([
        "coordinator",
        "--admin-key",
        common::ADMIN_KEY,
        "--edge-only",
        "true",
    ])
    .unwrap();
    assert!(cfg.validate().is_err(), "edge-only without an edge key cannot work");
}

#[tokio::test]
async fn closed_draining_paused_and_unopened_queues_refuse_at_the_coordinator() {
    let s = Stack::new(&["--edge-only", "false"]).await;
    let (_, q) = s.admin("POST", "/api/queue", json!({"queue_id": "gig"})).await;
    let id = q["id"].as_u64().unwrap();
    let enqueue = || s.public("POST", "/assign_queue_pos", "queue_id=gig", None);
    let (_, _, v) = enqueue().await;
    let rid = v["request_id"].as_str().unwrap().to_string();
    s.serve("gig", 1).await;
    let claim_form = format!("queue_id=gig&request_id={rid}");
    let claim = || s.public("POST", "/generate_token", &claim_form, None);
    let s = &s;
    let set = |body: Value| async move {
        let (st, v) = s.admin("PUT", "/api/queue", body).await;
        assert_eq!(st, 200, "{v}");
    };

    set(json!({"id": id, "mode": "closed"})).await;
    assert_eq!(enqueue().await.2["error"], "queue_closed");
    let (st, _, v) = claim().await;
    assert_eq!((st, v["error"].as_str()), (403, Some("queue_closed")));

    set(json!({"id": id, "mode": "queue", "admission": {"policy": {"strategy": "manual"}, "paused": true}})).await;
    assert_eq!(enqueue().await.0, 200, "joining the line during a pause keeps arrival order");
    let (st, h, v) = claim().await;
    assert_eq!((st, v["error"].as_str()), (503, Some("paused")));
    assert!(h.contains_key(header::RETRY_AFTER));

    set(json!({"id": id, "admission": {"policy": {"strategy": "manual"}, "draining": true}})).await;
    assert_eq!(enqueue().await.2["error"], "queue_draining");
    assert_eq!(claim().await.2["error"], "queue_draining");

    set(json!({"id": id, "admission": null, "opens_at": T0 + 60})).await;
    let (st, h, v) = claim().await;
    assert_eq!((st, v["error"].as_str()), (503, Some("not_open")));
    assert_eq!(h[header::RETRY_AFTER], "60");
    assert_eq!(enqueue().await.2["error"], "not_open");

    set(json!({"id": id, "opens_at": null})).await;
    assert_eq!(claim().await.0, 200, "open again: the served place claims");
}

/// Made-up slugs cost at most ten registry reads a second, not one each (the registry holds
/// every queue's config and template): counted with Redis's own command statistics.
#[tokio::test]
async fn unknown_slugs_are_answered_from_a_negative_cache() {
    let redis = common::Redis::start();
    let store = Arc::new(coordinator::store::redis::RedisStore::single(&redis.url(), 0).unwrap());
    let cfg = common::config_with(Some(redis.url()), &["--edge-only", "false"]);
    let (state, _) = common::state_with_config(store, T0, &cfg).await;
    let public = coordinator::public_app(state, Limits::default());
    let hvals = || {
        let info = common::redis_raw(redis.port, "INFO commandstats").unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_hvals:calls="))
            .and_then(|v| v.split(',').next())
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    let before = hvals();
    let started = std::time::Instant::now();
    for i in 0..500 {
        let req = Request::get(format!("/serving_pos/made-up-{i}")).body(Body::empty()).unwrap();
        assert_eq!(call(&public, req).await.0, 400);
    }
    let secs = started.elapsed().as_secs_f64();
    let reads = hvals() - before;
    assert!(
        (reads as f64) <= 10.0 * secs + 2.0,
        "{reads} registry reads for 500 unknown slugs in {secs:.2} s"
    );
}

/// Polls that miss the status cache together share one read of the store: a thousand
/// visitors arriving as the cache expires must not become a thousand Redis reads (they did:
/// the status bench at 1,024 clients spent 6 µs of Redis CPU per poll). A change made here
/// is still seen by the next poll, even with a read in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_polls_that_miss_together_share_one_store_read() {
    let redis = common::Redis::start();
    let store = Arc::new(coordinator::store::redis::RedisStore::single(&redis.url(), 0).unwrap());
    let cfg = common::config_with(Some(redis.url()), &["--edge-only", "false"]);
    let (state, clock) = common::state_with_config(store, T0, &cfg).await;
    let public = coordinator::public_app(state.clone(), Limits::default());
    let stack = Stack { public, admin: coordinator::admin_app(state, Limits::default()), clock };
    let (st, _) = stack.admin("POST", "/api/queue", json!({"queue_id": "herd"})).await;
    assert_eq!(st, 200);
    let commands = || {
        let info = common::redis_raw(redis.port, "INFO commandstats").unwrap();
        info.lines()
            .filter_map(|l| l.split_once(":calls="))
            .filter(|(name, _)| !name.ends_with("_info"))
            .map(|(_, v)| v.split(',').next().unwrap().parse::<u64>().unwrap())
            .sum::<u64>()
    };
    for round in 1..=3u64 {
        // Past the cache's lifetime: every poll of this round misses it.
        stack.clock.fetch_add(1_000, Ordering::SeqCst);
        let before = commands();
        let polls: Vec<_> = (0..400)
            .map(|_| {
                let public = stack.public.clone();
                tokio::spawn(async move {
                    let req = Request::get("/serving_pos/herd").body(Body::empty()).unwrap();
                    call(&public, req).await
                })
            })
            .collect();
        for p in polls {
            let (st, _, v) = p.await.unwrap();
            assert_eq!(st, 200);
            assert_eq!(v["position"], round - 1);
        }
        // One read is a handful of commands (counters, pauses, history); 400 reads would be
        // over a thousand.
        let used = commands() - before;
        assert!(
            used <= 40,
            "round {round}: {used} Redis commands for 400 polls that missed together"
        );
        stack.serve("herd", 1).await;
    }
    // A change made here is seen at once, not after the cache's lifetime.
    let req = Request::get("/serving_pos/herd").body(Body::empty()).unwrap();
    assert_eq!(call(&stack.public, req).await.2["position"], 3);
}
