//! End to end over real sockets with the real binary: two coordinator processes sharing one
//! Redis, and a restart that must not invalidate tickets or tokens.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;

use common::{ADMIN_KEY, Redis};
use serde_json::{Value, json};
use shared::ticket::{Ticket, parse_keys};

const TICKET_KEYS: &str = "5:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000";

use common::{client, create_queue};

async fn enqueue(c: &reqwest::Client, public: SocketAddr, q: &str) -> Value {
    let r = c
        .post(format!("http://{public}/assign_queue_pos"))
        .form(&[("queue_id", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_enqueues_over_two_processes_get_each_position_once() {
    let redis = Redis::start();
    let env =
        [("ANTEROOM_REDIS_URL", redis.url()), ("ANTEROOM_TICKET_KEYS", TICKET_KEYS.to_string())];
    let a = common::process(&env);
    let b = common::process(&env);
    let c = client();
    create_queue(&c, a.admin, json!({"queue_id": "drop"})).await;

    const TOTAL: usize = 20_000;
    const CLIENTS: usize = 64;
    let keys = parse_keys(TICKET_KEYS).unwrap();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let c = c.clone();
        let target = if i % 2 == 0 { a.public } else { b.public };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(TOTAL / CLIENTS + 1);
            for _ in 0..(TOTAL / CLIENTS + usize::from(i < TOTAL % CLIENTS)) {
                let v = enqueue(&c, target, "drop").await;
                got.push((
                    v["position"].as_u64().unwrap(),
                    v["request_id"].as_str().unwrap().to_string(),
                ));
            }
            got
        }));
    }
    let mut positions = HashSet::new();
    let mut per_client_in_order = true;
    for t in tasks {
        let got = t.await.unwrap();
        per_client_in_order &= got.windows(2).all(|w| w[0].0 < w[1].0);
        for (pos, rid) in got {
            let t = Ticket::open(&rid, |id| keys.iter().find(|k| k.id == id)).unwrap();
            assert_eq!(t.position, pos, "the ticket carries the answered position");
            assert!(positions.insert(pos), "position {pos} handed out twice");
        }
    }
    assert_eq!(positions.len(), TOTAL);
    assert_eq!(positions.iter().min(), Some(&1));
    assert_eq!(positions.iter().max(), Some(&(TOTAL as u64)), "no position skipped");
    assert!(per_client_in_order, "each client's later request gets a later position");
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_tickets_and_tokens_valid() {
    let redis = Redis::start();
    // No keys in config: generated on first start and persisted in Redis.
    let env = [("ANTEROOM_REDIS_URL", redis.url())];
    let p = common::process(&env);
    let c = client();
    create_queue(&c, p.admin, json!({"queue_id": "shop", "token_validity_second": 600})).await;
    let rid = enqueue(&c, p.public, "shop").await["request_id"].as_str().unwrap().to_string();
    let rid2 = enqueue(&c, p.public, "shop").await["request_id"].as_str().unwrap().to_string();
    let r = c
        .post(format!("http://{}/api/queue/increment_serving_position", p.admin))
        .bearer_auth(ADMIN_KEY)
        .form(&[("queue_id", "shop"), ("increment_by", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tok: Value = c
        .post(format!("http://{}/generate_token", p.public))
        .form(&[("queue_id", "shop"), ("request_id", &rid)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tok["access_token"].as_str().unwrap().to_string();
    p.stop();

    let p = common::process(&env);
    let r: Value = c
        .get(format!("http://{}/queue_pos/shop/{rid2}", p.public))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["position"], 2, "ticket from before the restart still checks");
    let jwks: shared::token::Jwks = c
        .get(format!("http://{}/.well-known/jwks.json", p.public))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    let v = shared::token::verify(
        &token,
        |kid| jwks.keys.iter().find(|k| k.kid == kid).and_then(shared::token::public_key_from_jwk),
        "anteroom",
        "shop",
        now,
    );
    let v = v.expect("token from before the restart verifies against the new JWKS");
    let again: Value = c
        .post(format!("http://{}/generate_token", p.public))
        .form(&[("queue_id", "shop"), ("request_id", &rid)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let v2 = shared::token::verify(
        again["access_token"].as_str().unwrap(),
        |kid| jwks.keys.iter().find(|k| k.kid == kid).and_then(shared::token::public_key_from_jwk),
        "anteroom",
        "shop",
        now,
    )
    .unwrap();
    assert_eq!((v.claims.jti, v.exp), (v2.claims.jti, v2.exp), "same session after restart");
    assert_eq!(enqueue(&c, p.public, "shop").await["position"], 3);
    p.stop();
}

/// One proof-of-work solution buys exactly one place, whichever process it reaches and
/// whichever admission path the queue is in (pre-queue, FIFO); a no-JS join is no way around
/// it where the queue does not waive the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_solution_buys_one_place_across_processes_in_every_path() {
    let redis = Redis::start();
    let env = [("ANTEROOM_REDIS_URL", redis.url()), ("ANTEROOM_EDGE_KEY", common::EDGE_KEY.into())];
    let a = common::process(&env);
    let b = common::process(&env);
    let c = client();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let pre = create_queue(
        &c,
        a.admin,
        json!({"queue_id": "pre", "pow_difficulty": 4, "prequeue_opens_at": now - 5, "opens_at": now + 3600}),
    )
    .await;
    let fifo = create_queue(&c, a.admin, json!({"queue_id": "fifo", "pow_difficulty": 4})).await;
    let ip = "203.0.113.5";
    let solve = |queue: &Value, n: u8| {
        let id = queue["id"].as_u64().unwrap() as u32;
        let ch = shared::pow::issue(&common::EDGE_KEY_BYTES, id, [n; 16], now as u32 + 60, 4, ip);
        let counter = shared::pow::solve(&ch, 4);
        (ch, counter.to_string())
    };
    let post = |target: SocketAddr, fields: Vec<(&'static str, String)>| {
        let c = c.clone();
        async move {
            let header = shared::sync::sign_client(&common::EDGE_KEY_BYTES, ip, now_ms());
            let r = c
                .post(format!("http://{target}/assign_queue_pos"))
                .header(shared::sync::CLIENT_HEADER, header)
                .form(&fields)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            (status, body["error"].as_str().unwrap_or("").to_string())
        }
    };
    for (queue, slug) in [(&pre, "pre"), (&fifo, "fifo")] {
        let (ch, counter) = solve(queue, 1);
        let fields =
            vec![("queue_id", slug.to_string()), ("pow_challenge", ch), ("pow_counter", counter)];
        assert_eq!(post(a.public, fields.clone()).await, (200, String::new()), "{slug}");
        for target in [b.public, a.public, b.public] {
            assert_eq!(
                post(target, fields.clone()).await,
                (403, "pow_replayed".into()),
                "{slug}: the same solution again"
            );
        }
        // Claiming to have no JavaScript does not skip the work on a queue that does not
        // waive it.
        let no_js = vec![("queue_id", slug.to_string()), ("no_js", "1".to_string())];
        assert_eq!(post(b.public, no_js).await, (403, "pow_required".into()), "{slug}");
        let (ch2, counter2) = solve(queue, 2);
        let fresh =
            vec![("queue_id", slug.to_string()), ("pow_challenge", ch2), ("pow_counter", counter2)];
        assert_eq!(post(b.public, fresh).await.0, 200, "{slug}: a fresh solution is welcome");
    }
    a.stop();
    b.stop();
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}
