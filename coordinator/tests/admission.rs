//! The admission controller in the coordinator, on tokio's paused clock: each strategy,
//! pause and drain, the session cap under concurrent claims, a health-driven run against a
//! fake origin with a latency knee, and two processes on one Redis advancing as one.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use coordinator::state::{AppState, Clock};
use coordinator::store::memory::MemoryStore;
use coordinator::{Limits, control};
use serde_json::{Value, json};

const T0: u64 = 1_800_000_000;

struct Rig {
    state: AppState,
    public: Router,
    admin: Router,
}

async fn call(router: &Router, req: Request<Body>) -> (u16, Value) {
    let (status, _, body) = common::call(router, req).await;
    (status, body)
}

fn form(uri: &str, body: String) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn admin_json(method: &str, uri: &str, body: Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
        .body(Body::from(body.to_string()))
        .unwrap()
}

impl Rig {
    async fn new(admission: Value, extra: Value) -> Self {
        let clock = Clock::Tokio { base_ms: T0 * 1000, start: tokio::time::Instant::now() };
        let state = coordinator::start(&common::config(None), Arc::new(MemoryStore::new()), clock)
            .await
            .unwrap();
        let public = coordinator::public_app(state.clone(), Limits::default());
        let admin = coordinator::admin_app(state.clone(), Limits::default());
        let mut body =
            json!({"queue_id": "q", "admission": admission, "token_validity_second": 30});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (st, v) = call(&admin, admin_json("POST", "/api/queue", body)).await;
        assert_eq!(st, 200, "{v}");
        Rig { state, public, admin }
    }

    async fn enqueue(&self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            let (st, v) = call(&self.public, form("/assign_queue_pos", "queue_id=q".into())).await;
            assert_eq!(st, 200);
            out.push(v["request_id"].as_str().unwrap().to_string());
        }
        out
    }

    /// One second passes, then one controller tick.
    async fn tick(&self) -> u64 {
        tokio::time::advance(Duration::from_secs(1)).await;
        let q = self.state.queue_by_slug("q").await.unwrap();
        control::tick_queue(&self.state, &q, "test").await.unwrap();
        self.serving().await
    }

    async fn serving(&self) -> u64 {
        let (_, v) =
            call(&self.public, Request::get("/serving_pos/q").body(Body::empty()).unwrap()).await;
        v["position"].as_u64().unwrap()
    }

    async fn token(&self, rid: &str) -> u16 {
        call(&self.public, form("/generate_token", format!("queue_id=q&request_id={rid}"))).await.0
    }

    async fn end(&self, rid: &str) {
        let req = Request::post("/api/queue/update_token_status")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
            .body(Body::from(format!("queue_id=q&request_id={rid}&status=1")))
            .unwrap();
        assert_eq!(call(&self.admin, req).await.0, 200);
    }

    async fn set_admission(&self, admission: Value) {
        let id = self.state.queue_by_slug("q").await.unwrap().id;
        let (st, v) = call(
            &self.admin,
            admin_json("PUT", "/api/queue", json!({"id": id, "admission": admission})),
        )
        .await;
        assert_eq!(st, 200, "{v}");
    }

    async fn active(&self) -> u64 {
        let req = admin_json("GET", "/api/queue/q/active_token_num", Value::Null);
        call(&self.admin, req).await.1["active_num"].as_u64().unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn fixed_rate_admits_its_rate_and_pause_and_drain_stop_it() {
    let policy = json!({"policy": {"strategy": "fixed_rate", "rate_per_sec": 5.0, "burst": 0}});
    let rig = Rig::new(policy.clone(), json!({})).await;
    rig.enqueue(200).await;
    let mut prev = 0;
    for _ in 0..20 {
        let s = rig.tick().await;
        assert!(s >= prev, "serving never decreases");
        prev = s;
    }
    assert!((95..=100).contains(&prev), "5/s for 20 s (first tick has no elapsed time): {prev}");

    let mut paused = policy.clone();
    paused["paused"] = json!(true);
    rig.set_admission(paused).await;
    for _ in 0..5 {
        assert_eq!(rig.tick().await, prev, "paused: nobody admitted");
    }
    rig.set_admission(policy.clone()).await;
    for _ in 0..4 {
        rig.tick().await;
    }
    assert!(rig.serving().await > prev, "resumed");
    let mut draining = policy;
    draining["draining"] = json!(true);
    rig.set_admission(draining).await;
    let at = rig.serving().await;
    for _ in 0..5 {
        assert_eq!(rig.tick().await, at, "draining: nobody new admitted");
    }

    // The measured rate is published with the status answers.
    let (_, v) =
        call(&rig.public, Request::get("/serving_pos/q").body(Body::empty()).unwrap()).await;
    let _ = v;
    let (st, status) =
        call(&rig.admin, admin_json("GET", "/api/queue/q/status", Value::Null)).await;
    assert_eq!(st, 200);
    assert_eq!(status["last_decision"]["limited_by"], "draining");
    assert!(status["admission_rate"].as_f64().unwrap() >= 0.0);
}

#[tokio::test(start_paused = true)]
async fn capacity_keeps_sessions_under_the_cap_and_frees_slots() {
    let long_expiry = json!({"enable_queue_position_expiry": true, "position_expiry_second": 3600});
    let rig =
        Rig::new(json!({"policy": {"strategy": "capacity", "max_active": 3}}), long_expiry).await;
    let rids = rig.enqueue(10).await;
    assert_eq!(rig.tick().await, 3, "capacity admits up to the cap at once");
    assert_eq!(rig.tick().await, 3, "admitted but unclaimed places hold their slot");
    for rid in &rids[..3] {
        assert_eq!(rig.token(rid).await, 200);
    }
    assert_eq!(rig.active().await, 3);
    assert_eq!(rig.tick().await, 3);
    rig.end(&rids[0]).await;
    assert_eq!(rig.tick().await, 4, "a completed session lets the next visitor in");
    assert_eq!(rig.token(&rids[3]).await, 200);
    // Sessions that time out free their slots too (validity 30 s).
    for _ in 0..31 {
        rig.tick().await;
    }
    assert_eq!(rig.active().await, 0);
    assert_eq!(rig.serving().await, 7);

    // The cap holds when many due visitors claim at the same moment.
    let admin = rig.admin.clone();
    let req = Request::post("/api/queue/increment_serving_position")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
        .body(Body::from("queue_id=q&increment_by=3"))
        .unwrap();
    assert_eq!(call(&admin, req).await.0, 200);
    let claims = rids[4..].iter().map(|rid| rig.token(rid));
    let codes = futures::future::join_all(claims).await;
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 3, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 202), "{codes:?}");
    assert_eq!(rig.active().await, 3);
}

#[tokio::test(start_paused = true)]
async fn unclaimed_places_cannot_freeze_a_capped_sale() {
    // Without position expiry a served place nobody claims would hold its slot for ever:
    // such a queue is refused, saying why.
    let capacity = json!({"policy": {"strategy": "capacity", "max_active": 3}});
    let clock = Clock::Tokio { base_ms: T0 * 1000, start: tokio::time::Instant::now() };
    let state = coordinator::start(&common::config(None), Arc::new(MemoryStore::new()), clock)
        .await
        .unwrap();
    let admin = coordinator::admin_app(state, Limits::default());
    for (extra, name) in [
        (json!({}), "capacity"),
        (
            json!({"admission": {"policy": {"strategy": "fixed_rate", "rate_per_sec": 1.0, "burst": 0, "max_active": 3}}}),
            "fixed_rate",
        ),
    ] {
        let mut body = json!({"queue_id": "frozen", "admission": capacity});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (st, v) = call(&admin, admin_json("POST", "/api/queue", body)).await;
        assert_eq!(st, 400, "{name}: {v}");
        assert!(v["message"].as_str().unwrap().contains("enable_queue_position_expiry"), "{v}");
    }

    // With it, three bots that are served and never claim hold the three slots only for the
    // expiry window; then the line moves on and a human gets in.
    let rig = Rig::new(
        capacity,
        json!({"enable_queue_position_expiry": true, "position_expiry_second": 60}),
    )
    .await;
    let bots = rig.enqueue(3).await;
    let human = rig.enqueue(1).await.remove(0);
    assert_eq!(rig.tick().await, 3, "the bots are served");
    // The window is 60 s plus the edge's freshness grace.
    for _ in 0..58 + shared::pull::EXPIRY_GRACE_SECS {
        assert_eq!(rig.tick().await, 3, "their unclaimed places hold the slots meanwhile");
    }
    let mut serving = 3;
    for _ in 0..3 {
        serving = rig.tick().await;
    }
    assert_eq!(serving, 4, "the bots' places expired: the human is served");
    assert_eq!(rig.token(&human).await, 200);
    for bot in &bots {
        assert_eq!(rig.token(bot).await, 410, "an expired place cannot claim any more");
    }
}

/// A fake origin: fine up to `knee` admissions per second, then latency climbs steeply.
fn origin_latency(rate: f64, knee: f64) -> f64 {
    if rate <= knee { 80.0 } else { 80.0 + (rate - knee) * 60.0 }
}

#[tokio::test(start_paused = true)]
async fn health_strategy_converges_below_the_knee_and_recovers() {
    const KNEE: f64 = 40.0;
    const MAX_ACTIVE: u64 = 400;
    let policy = json!({"policy": {"strategy": "health", "max_rate": 200.0, "target_latency_ms": 250.0, "max_active": MAX_ACTIVE}});
    let expiry = json!({"enable_queue_position_expiry": true, "position_expiry_second": 600});
    let rig = Rig::new(policy, expiry).await;
    let mut tickets: VecDeque<String> = VecDeque::new();
    let mut sessions: VecDeque<(u64, String)> = VecDeque::new();
    let mut trace: Vec<(u64, u64)> = Vec::new(); // (second, admitted that second)
    let mut serving = 0u64;
    let mut knee = KNEE;
    for t in 1..=180u64 {
        if t == 91 {
            knee = KNEE * 2.0; // the origin recovers and grows
        }
        // Keep a line of visitors waiting.
        while tickets.len() < 400 {
            tickets.extend(rig.enqueue(100).await);
        }
        // The origin reports its latency at the rate it sees.
        let rate = trace.last().map_or(0.0, |x| x.1 as f64);
        let report = json!({"latency_ms": origin_latency(rate, knee), "error_rate": 0.0});
        let (st, _) = call(&rig.admin, admin_json("POST", "/api/queue/q/health", report)).await;
        assert_eq!(st, 204);
        let now = rig.tick().await;
        let admitted = now - serving;
        serving = now;
        trace.push((t, admitted));
        // Admitted visitors claim at once; each session lasts 5 s.
        for _ in 0..admitted {
            let rid = tickets.pop_front().unwrap();
            assert_eq!(rig.token(&rid).await, 200);
            sessions.push_back((t + 5, rid));
        }
        while sessions.front().is_some_and(|(end, _)| *end <= t) {
            let (_, rid) = sessions.pop_front().unwrap();
            rig.end(&rid).await;
        }
        assert!(rig.active().await <= MAX_ACTIVE, "session cap");
    }
    let mean = |end: u64| {
        trace.iter().filter(|(t, _)| *t > end - 10 && *t <= end).map(|x| x.1 as f64).sum::<f64>()
            / 10.0
    };
    println!("rate trace (second, admitted): {trace:?}");
    println!(
        "10 s means: at 60 s {:.1}/s, at 90 s {:.1}/s, at 180 s {:.1}/s",
        mean(60),
        mean(90),
        mean(180)
    );
    for end in [60, 70, 80, 90] {
        let m = mean(end);
        assert!((0.8 * KNEE..=KNEE).contains(&m), "10 s mean at {end} s is {m}, knee {KNEE}");
    }
    let m = mean(180);
    assert!(m > KNEE && m <= 2.0 * KNEE, "recovered after the origin did: {m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_advance_the_serving_position_as_one() {
    let redis = common::Redis::start();
    let env = [("ANTEROOM_REDIS_URL", redis.url())];
    let a = common::process(&env);
    let b = common::process(&env);
    let c = reqwest::Client::new();
    let r = c
        .post(format!("http://{}/api/queue", a.admin))
        .bearer_auth(common::ADMIN_KEY)
        .json(&json!({"queue_id": "duo", "admission": {"policy": {"strategy": "fixed_rate", "rate_per_sec": 10.0, "burst": 0}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let enqueue = |target: std::net::SocketAddr| {
        let c = c.clone();
        async move {
            for _ in 0..150 {
                let r = c
                    .post(format!("http://{target}/assign_queue_pos"))
                    .form(&[("queue_id", "duo")])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    };
    futures::join!(enqueue(a.public), enqueue(b.public));
    let serving = |target: std::net::SocketAddr| {
        let c = c.clone();
        async move {
            let v: Value = c
                .get(format!("http://{target}/serving_pos/duo"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["position"].as_u64().unwrap()
        }
    };
    // Measure the advance over at least four seconds once it is moving.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while serving(a.public).await == 0 {
        assert!(std::time::Instant::now() < deadline, "controller never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s1, t1) = (serving(b.public).await, std::time::Instant::now());
    let mut s2 = s1;
    while t1.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s2 = serving(a.public).await;
    }
    let rate = (s2 - s1) as f64 / t1.elapsed().as_secs_f64();
    println!("two processes, fixed 10/s: measured {rate:.2}/s");
    assert!((7.0..=13.0).contains(&rate), "one controller's worth, not two: {rate}/s");
    a.stop();
    b.stop();
}

/// A served visitor's expiry clock stands still while claims cannot succeed through no fault
/// of theirs: while the operator pauses admissions (claims answer 503), and while the session
/// cap is full (claims answer 202).
#[tokio::test(start_paused = true)]
async fn the_expiry_clock_stands_still_while_paused_or_the_cap_is_full() {
    let rate = json!({"policy": {"strategy": "fixed_rate", "rate_per_sec": 1.0, "burst": 0}});
    let expiry = json!({"enable_queue_position_expiry": true, "position_expiry_second": 30});
    let rig = Rig::new(rate.clone(), expiry).await;
    let rids = rig.enqueue(3).await;
    while rig.serving().await < 1 {
        rig.tick().await;
    }
    let mut paused = rate.clone();
    paused["paused"] = json!(true);
    rig.set_admission(paused).await;
    for _ in 0..60 {
        rig.tick().await;
        assert_eq!(rig.token(&rids[0]).await, 503, "claims wait while paused");
    }
    rig.set_admission(rate).await;
    assert_eq!(rig.token(&rids[0]).await, 200, "60 s paused did not use up a 30 s window");

    // The session cap: one slot, held; the next served visitor waits for it past the window.
    rig.set_admission(json!({"policy": {"strategy": "capacity", "max_active": 1}})).await;
    let id = rig.state.queue_by_slug("q").await.unwrap().id;
    let (st, _) = call(
        &rig.admin,
        admin_json("PUT", "/api/queue", json!({"id": id, "token_validity_second": 3600})),
    )
    .await;
    assert_eq!(st, 200);
    let more = rig.enqueue(2).await;
    let admin_form = |by: u64| {
        Request::post("/api/queue/increment_serving_position")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
            .body(Body::from(format!("queue_id=q&increment_by={by}")))
            .unwrap()
    };
    rig.end(&rids[0]).await;
    let target = 5;
    let now = rig.serving().await;
    if now < target {
        assert_eq!(call(&rig.admin, admin_form(target - now)).await.0, 200);
    }
    assert_eq!(rig.token(&more[0]).await, 200, "takes the one slot");
    for _ in 0..45 {
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(rig.token(&more[1]).await, 202, "the cap is full: wait");
    }
    rig.end(&more[0]).await;
    assert_eq!(rig.token(&more[1]).await, 200, "45 s waiting for the cap did not expire it");
}
