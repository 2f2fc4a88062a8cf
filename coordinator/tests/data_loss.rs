//! A store that forgets, with the real binary on a real Redis: `FLUSHALL` holds every queue
//! as lost (never "deleted", never "open") and writes the key ring back from memory; counters
//! set back (as a restart losing the last second of its AOF would) are raised past every
//! position already handed out, so no position is issued twice; the serving position never
//! goes back.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Process, Redis, redis_raw};
use serde_json::{Value, json};

struct Client {
    c: reqwest::Client,
    p: (SocketAddr, SocketAddr),
}

impl Client {
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r =
            self.c.request(method, format!("http://{}{path}", self.p.1)).bearer_auth(ADMIN_KEY);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or(Value::Null))
    }

    async fn public_get(&self, path: &str) -> (u16, Value) {
        let r = self.c.get(format!("http://{}{path}", self.p.0)).send().await.unwrap();
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or(Value::Null))
    }

    async fn enqueue(&self, q: &str) -> (u16, Value) {
        let r = self
            .c
            .post(format!("http://{}/assign_queue_pos", self.p.0))
            .form(&[("queue_id", q)])
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or(Value::Null))
    }

    async fn serve(&self, q: &str, by: u64) -> u64 {
        let r = self
            .c
            .post(format!("http://{}/api/queue/increment_serving_position", self.p.1))
            .bearer_auth(ADMIN_KEY)
            .form(&[("queue_id", q), ("increment_by", &by.to_string())])
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["serving_pos"].as_u64().unwrap()
    }

    async fn health(&self) -> Value {
        self.admin(reqwest::Method::GET, "/api/health", None).await.1
    }
}

async fn wait_for(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn start(redis: &Redis) -> Process {
    common::process(&[("ANTEROOM_REDIS_URL", redis.url()), ("ANTEROOM_EDGE_ONLY", "false".into())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_holds_queues_as_lost_and_restores_the_key_ring() {
    let redis = Redis::start();
    let p = start(&redis);
    let c = Client { c: reqwest::Client::new(), p: (p.public, p.admin) };
    let (_, a) = c.admin(reqwest::Method::POST, "/api/queue", Some(json!({"queue_id": "a"}))).await;
    let (_, b) = c.admin(reqwest::Method::POST, "/api/queue", Some(json!({"queue_id": "b"}))).await;
    let (st, t) = c.enqueue("a").await;
    assert_eq!(st, 200);
    let rid = t["request_id"].as_str().unwrap().to_string();
    let jwks_before = c.public_get("/.well-known/jwks.json").await.1;

    assert!(redis_raw(redis.port, "FLUSHALL").unwrap().starts_with("+OK"));
    wait_for("both queues held as lost", async || {
        c.health().await["lost_queues"].as_array().is_some_and(|l| l.len() == 2)
    })
    .await;
    let h = c.health().await;
    assert_eq!(h["faults"]["queues_lost"], 2);
    assert_eq!(h["store_up"], true);
    // Held, not unknown and not open: 503 with Retry-After on every public route.
    let (st, v) = c.enqueue("a").await;
    assert_eq!((st, v["error"].as_str()), (503, Some("queue_lost")));
    assert_eq!(c.public_get(&format!("/queue_pos/a/{rid}")).await.0, 503);
    assert_eq!(c.public_get("/serving_pos/b").await.0, 503);
    assert_eq!(c.public_get("/serving_pos/never-was").await.0, 400);
    // The key ring was written back from memory, not re-generated: same keys.
    wait_for("key ring restored", async || c.health().await["faults"]["keys_restored"] == 1).await;
    assert_eq!(c.public_get("/.well-known/jwks.json").await.1, jwks_before);
    let stored = redis_raw(redis.port, "EXISTS anteroom:{registry}:secrets").unwrap();
    assert!(stored.starts_with(":1"), "{stored}");

    // The operator re-creates a: a new id, served again; b is deleted for good.
    let (st, a2) =
        c.admin(reqwest::Method::POST, "/api/queue", Some(json!({"queue_id": "a"}))).await;
    assert_eq!(st, 200);
    assert_ne!(a2["id"], a["id"]);
    let (st, _) = c.admin(reqwest::Method::DELETE, &format!("/api/queue/{}", b["id"]), None).await;
    assert_eq!(st, 200, "a lost queue can be deleted");
    wait_for("nothing held any more", async || {
        c.health().await["lost_queues"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    assert_eq!(c.enqueue("a").await.0, 200);
    let (st, v) = c.public_get(&format!("/queue_pos/a/{rid}")).await;
    assert_eq!((st, v["error"].as_str()), (410, Some("queue_replaced")), "old tickets: gone");
    let tombs = redis_raw(redis.port, "HKEYS anteroom:{registry}:tombs").unwrap();
    assert!(tombs.contains(&b["id"].to_string()), "{tombs}");
    p.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_set_back_are_raised_past_every_position_handed_out() {
    let redis = Redis::start();
    let p1 = start(&redis);
    let p2 = start(&redis);
    let c1 = Client { c: reqwest::Client::new(), p: (p1.public, p1.admin) };
    let c2 = Client { c: reqwest::Client::new(), p: (p2.public, p2.admin) };
    let (_, q) =
        c1.admin(reqwest::Method::POST, "/api/queue", Some(json!({"queue_id": "q"}))).await;
    let id = q["id"].as_u64().unwrap();
    let mut positions = Vec::new();
    for i in 0..20 {
        let c = if i % 2 == 0 { &c1 } else { &c2 };
        positions.push(c.enqueue("q").await.1["position"].as_u64().unwrap());
    }
    assert_eq!(c1.serve("q", 8).await, 8);
    assert_eq!(c1.public_get("/serving_pos/q").await.1["position"], 8);
    // What a Redis restart losing its last second would leave: both counters back.
    redis_raw(redis.port, &format!("SET aq:{{q{id}}}:ctr 12")).unwrap();
    redis_raw(redis.port, &format!("SET aq:{{q{id}}}:srv 3")).unwrap();
    // The next enqueue, on either process, gets a position above every one handed out.
    let (st, v) = c2.enqueue("q").await;
    assert_eq!(st, 200);
    let next = v["position"].as_u64().unwrap();
    assert!(next > 20 + recovery_gap(), "{next}: raised past the floor and its gap");
    assert!(!positions.contains(&next));
    // The serving position is never answered lower, and is written back by the upkeep loop.
    assert!(c1.public_get("/serving_pos/q").await.1["position"].as_u64().unwrap() >= 8);
    wait_for("serving raised in the store", async || {
        redis_raw(redis.port, &format!("GET aq:{{q{id}}}:srv"))
            .is_some_and(|v| v.contains("\r\n8\r\n"))
    })
    .await;
    let h1 = c1.health().await;
    let h2 = c2.health().await;
    let raised = h1["faults"]["counters_raised"].as_u64().unwrap()
        + h2["faults"]["counters_raised"].as_u64().unwrap();
    assert!(raised >= 1, "{h1} {h2}");
    p1.stop();
    p2.stop();
}

fn recovery_gap() -> u64 {
    coordinator::recovery::MIN_GAP - 1
}
