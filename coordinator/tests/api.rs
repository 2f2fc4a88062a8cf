//! The whole HTTP API through the routers (no socket), on the memory store and on a real
//! Redis: every status code of the contract and the error answers for bad input.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use coordinator::Limits;
use coordinator::state::AppState;
use coordinator::store::Store;
use coordinator::store::memory::MemoryStore;
use coordinator::store::redis::RedisStore;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use shared::ticket::{Ticket, TicketKind};
use tower::ServiceExt as _;

const T0: u64 = 1_800_000_000;

struct Api {
    state: AppState,
    public: Router,
    admin: Router,
    clock: Arc<AtomicU64>,
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
}

impl Api {
    async fn new(store: Arc<dyn Store>) -> Self {
        let (state, clock) = common::state_with(store, T0).await;
        let public = coordinator::public_app(state.clone(), Limits::default());
        let admin = coordinator::admin_app(state.clone(), Limits::default());
        Api { state, public, admin, clock }
    }

    fn advance(&self, secs: u64) {
        self.clock.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    async fn send(router: &Router, req: Request<Body>) -> Resp {
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        if status.is_client_error() || status.is_server_error() {
            assert!(json["error"].is_string() && json["message"].is_string(), "error body: {json}");
        }
        Resp { status, headers, json }
    }

    async fn get(&self, uri: &str) -> Resp {
        Self::send(&self.public, Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn form(&self, uri: &str, body: &str) -> Resp {
        let req = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_string()))
            .unwrap();
        Self::send(&self.public, req).await
    }

    async fn admin_req(
        &self,
        method: &str,
        uri: &str,
        ctype: Option<&str>,
        body: &str,
        key: Option<&str>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(c) = ctype {
            b = b.header(header::CONTENT_TYPE, c);
        }
        if let Some(k) = key {
            b = b.header(header::AUTHORIZATION, format!("Bearer {k}"));
        }
        Self::send(&self.admin, b.body(Body::from(body.to_string())).unwrap()).await
    }

    async fn admin_json(&self, method: &str, uri: &str, body: Value) -> Resp {
        self.admin_req(
            method,
            uri,
            Some("application/json"),
            &body.to_string(),
            Some(common::ADMIN_KEY),
        )
        .await
    }

    async fn admin_form(&self, uri: &str, body: &str) -> Resp {
        self.admin_req(
            "POST",
            uri,
            Some("application/x-www-form-urlencoded"),
            body,
            Some(common::ADMIN_KEY),
        )
        .await
    }

    async fn enqueue(&self, q: &str) -> String {
        let r = self.form("/assign_queue_pos", &format!("queue_id={q}")).await;
        assert_eq!(r.status, 200, "{}", r.json);
        r.json["request_id"].as_str().unwrap().to_string()
    }

    async fn serve(&self, q: &str, by: u64) -> u64 {
        let r = self
            .admin_form(
                "/api/queue/increment_serving_position",
                &format!("queue_id={q}&increment_by={by}"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        r.json["serving_pos"].as_u64().unwrap()
    }

    async fn token(&self, q: &str, rid: &str) -> Resp {
        self.form("/generate_token", &format!("queue_id={q}&request_id={rid}")).await
    }
}

async fn private_api(api: &Api) {
    // Authentication on every private route.
    for (m, uri) in [
        ("POST", "/api/queue"),
        ("GET", "/api/queue/1"),
        ("DELETE", "/api/queue/1"),
        ("GET", "/api/queue/x/active_token_num"),
        ("POST", "/api/queue/increment_serving_position"),
        ("POST", "/api/queue/update_token_status"),
        ("POST", "/api/keys/rotate"),
    ] {
        for key in [None, Some("wrong-key-wrong-key")] {
            let r = api.admin_req(m, uri, Some("application/json"), "{}", key).await;
            assert_eq!(r.status, 401, "{m} {uri} {key:?}");
            assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
        }
    }
    let r = api.admin_json("POST", "/api/queue", json!({"queue_id": "concert", "token_validity_second": 120, "enable_queue_position_expiry": true, "position_expiry_second": 60})).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let id = r.json["id"].as_u64().unwrap();
    let contract = [
        "id",
        "queue_id",
        "token_validity_second",
        "enable_queue_position_expiry",
        "position_expiry_second",
    ];
    let picked: serde_json::Map<String, Value> =
        contract.iter().map(|k| (k.to_string(), r.json[*k].clone())).collect();
    assert_eq!(
        Value::Object(picked),
        json!({"id": id, "queue_id": "concert", "token_validity_second": 120, "enable_queue_position_expiry": true, "position_expiry_second": 60})
    );
    assert_eq!(
        (
            r.json["mode"].as_str(),
            r.json["pow_difficulty"].as_u64(),
            r.json["waiting_status"].as_u64()
        ),
        (Some("queue"), Some(0), Some(200)),
        "extension defaults"
    );

    let r = api.admin_json("POST", "/api/queue", json!({"queue_id": "concert"})).await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate_queue_id"))
    );
    for bad in [
        json!({}),
        json!({"queue_id": "Has Caps"}),
        json!({"queue_id": "x".repeat(33)}),
        json!({"queue_id": "ok", "colour": 1}),
        json!({"queue_id": "ok", "token_validity_second": 0}),
        json!({"queue_id": "ok", "token_validity_second": "ten"}),
        json!({"queue_id": "ok", "id": 7}),
        json!([1, 2]),
        // Path patterns must be in the canonical form the edge matches (shared::path).
        json!({"queue_id": "ok", "paths": ["/shop//cart"]}),
        json!({"queue_id": "ok", "paths": ["/sh%6fp"]}),
        json!({"queue_id": "ok", "paths": ["/a/../b"]}),
        json!({"queue_id": "ok", "paths": ["/a;b"]}),
        json!({"queue_id": "ok", "paths": ["*.png"]}),
        json!({"queue_id": "ok", "bypass": ["*.p/g"]}),
        json!({"queue_id": "ok", "case_sensitive": "yes"}),
    ] {
        assert_eq!(api.admin_json("POST", "/api/queue", bad.clone()).await.status, 400, "{bad}");
    }
    let r = api
        .admin_req("POST", "/api/queue", Some("text/plain"), "{}", Some(common::ADMIN_KEY))
        .await;
    assert_eq!(r.status, 415);
    let r = api
        .admin_req(
            "POST",
            "/api/queue",
            Some("application/json"),
            "{not json",
            Some(common::ADMIN_KEY),
        )
        .await;
    assert_eq!(r.status, 400);
    let huge = format!("{{\"queue_id\":\"{}\"}}", "a".repeat(coordinator::ADMIN_BODY_LIMIT));
    assert_eq!(
        api.admin_req(
            "POST",
            "/api/queue",
            Some("application/json"),
            &huge,
            Some(common::ADMIN_KEY)
        )
        .await
        .status,
        413
    );

    let r = api.admin_json("GET", &format!("/api/queue/{id}"), Value::Null).await;
    assert_eq!((r.status, r.json["queue_id"].as_str()), (StatusCode::OK, Some("concert")));
    assert_eq!(api.admin_json("GET", "/api/queue/999999", Value::Null).await.status, 404);
    assert_eq!(api.admin_json("GET", "/api/queue/abc", Value::Null).await.status, 400);

    let r =
        api.admin_json("PUT", "/api/queue", json!({"id": id, "token_validity_second": 200})).await;
    assert_eq!((r.status, r.json["token_validity_second"].as_u64()), (StatusCode::OK, Some(200)));
    assert_eq!(r.json["position_expiry_second"], 60, "unset fields keep their value");
    let r = api.admin_json("PUT", "/api/queue", json!({"id": id, "queue_id": "renamed"})).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        api.admin_json("PUT", "/api/queue", json!({"token_validity_second": 5})).await.status,
        400
    );
    assert_eq!(api.admin_json("PUT", "/api/queue", json!({"id": 999999})).await.status, 404);
    let r =
        api.admin_json("PUT", "/api/queue", json!({"id": id, "token_validity_second": 120})).await;
    assert_eq!(r.status, 200);

    for body in [
        "",
        "queue_id=concert",
        "queue_id=concert&increment_by=0",
        "queue_id=concert&increment_by=-1",
        "queue_id=concert&increment_by=x",
        "queue_id=nope&increment_by=1",
    ] {
        assert_eq!(
            api.admin_form("/api/queue/increment_serving_position", body).await.status,
            400,
            "{body}"
        );
    }
    let r = api.admin_json("GET", "/api/queue/nope/active_token_num", Value::Null).await;
    assert_eq!(r.status, 400);
}

async fn public_api(api: &Api) {
    // Enqueue: FIFO positions, stored before the answer.
    let r = api.form("/assign_queue_pos", "queue_id=concert").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["position"], 1);
    let first = r.json["request_id"].as_str().unwrap().to_string();
    let second = api.enqueue("concert").await;
    let third = api.enqueue("concert").await;
    assert_eq!(api.get(&format!("/queue_pos/concert/{first}")).await.json["position"], 1);
    let r = api.get(&format!("/queue_pos/concert/{third}")).await;
    assert_eq!((r.json["position"].as_u64(), r.json["ahead"].as_u64()), (Some(3), Some(3)));

    // Bad input on every public route.
    for body in ["", "queue_id=", "queue_id=unknown", "queue_id=%ZZ"] {
        assert_eq!(api.form("/assign_queue_pos", body).await.status, 400, "{body}");
    }
    let req = Request::post("/assign_queue_pos")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"queue_id\":\"concert\"}"))
        .unwrap();
    assert_eq!(Api::send(&api.public, req).await.status, 415);
    let req = Request::post("/assign_queue_pos").body(Body::from("queue_id=concert")).unwrap();
    assert_eq!(Api::send(&api.public, req).await.status, 415);
    let huge = format!("queue_id=concert&pad={}", "a".repeat(coordinator::PUBLIC_BODY_LIMIT));
    assert_eq!(api.form("/assign_queue_pos", &huge).await.status, 413);
    assert_eq!(api.get("/queue_pos/concert/garbage").await.status, 400);
    assert_eq!(api.get(&format!("/queue_pos/unknown/{first}")).await.status, 400);
    let mut tampered = first.clone().into_bytes();
    tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        api.get(&format!("/queue_pos/concert/{tampered}")).await.json["error"],
        "invalid_request_id"
    );
    assert_eq!(api.get("/serving_pos/unknown").await.status, 400);
    assert_eq!(api.get("/waiting_num/unknown").await.status, 400);
    assert_eq!(api.form("/generate_token", "queue_id=concert").await.status, 400);
    assert_eq!(api.form("/generate_token", "queue_id=concert&request_id=xyz").await.status, 400);
    assert_eq!(api.get("/nope").await.status, 404);
    assert_eq!(api.get("/assign_queue_pos").await.status, 405);

    // A ticket of another live queue is bad input.
    let r = api.admin_json("POST", "/api/queue", json!({"queue_id": "other"})).await;
    let other_id = r.json["id"].as_u64().unwrap();
    let foreign = api.enqueue("other").await;
    assert_eq!(api.get(&format!("/queue_pos/concert/{foreign}")).await.status, 400);

    // A valid ticket beyond the committed counter (storage lost writes): 404.
    let q = api.state.queue_by_slug("concert").await.unwrap();
    let lost = Ticket {
        key_id: 0,
        kind: TicketKind::Fifo,
        queue: q.id,
        position: 99,
        entered_at: T0 as u32,
    }
    .seal(api.state.keys().ticket_signer());
    assert_eq!(api.get(&format!("/queue_pos/concert/{lost}")).await.status, 404);
    // A pre-queue ticket before the draw: 404.
    let pre = Ticket {
        key_id: 0,
        kind: TicketKind::PreQueue,
        queue: q.id,
        position: 1,
        entered_at: T0 as u32,
    }
    .seal(api.state.keys().ticket_signer());
    assert_eq!(api.get(&format!("/queue_pos/concert/{pre}")).await.status, 404);

    // Serving and waiting.
    assert_eq!(api.get("/serving_pos/concert").await.json, json!({"position": 0}));
    assert_eq!(api.get("/waiting_num/concert").await.json, json!({"waiting_num": 3}));

    // Token: 202 while queued, then 200, the same session twice.
    let r = api.token("concert", &first).await;
    assert_eq!(r.status, 202);
    assert_eq!((r.json["position"].as_u64(), r.json["serving_pos"].as_u64()), (Some(1), Some(0)));
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(api.serve("concert", 2).await, 2);
    api.advance(5);
    let r = api.token("concert", &first).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        (r.json["token_type"].as_str(), r.json["expires_in"].as_u64()),
        (Some("Bearer"), Some(120))
    );
    let tok1 = r.json["access_token"].as_str().unwrap().to_string();
    api.advance(10);
    let r = api.token("concert", &first).await;
    assert_eq!(r.json["expires_in"], 110, "same session, same expiry");
    let tok2 = r.json["access_token"].as_str().unwrap().to_string();

    // Tokens verify offline against the JWKS, with the same jti and exp.
    let jwks: shared::token::Jwks =
        serde_json::from_value(api.get("/.well-known/jwks.json").await.json).unwrap();
    let verify = |t: &str| {
        shared::token::verify(
            t,
            |kid| {
                jwks.keys.iter().find(|k| k.kid == kid).and_then(shared::token::public_key_from_jwk)
            },
            "anteroom",
            "concert",
            (T0 + 20) as i64,
        )
        .unwrap()
    };
    let (v1, v2) = (verify(&tok1), verify(&tok2));
    assert_eq!((v1.claims.jti.clone(), v1.exp), (v2.claims.jti.clone(), v2.exp));
    assert_eq!(
        (v1.claims.qpos, v1.claims.sub.as_str(), v1.exp),
        (1, first.as_str(), (T0 + 125) as i64)
    );
    assert_eq!(api.get("/waiting_num/concert").await.json, json!({"waiting_num": 2}));
    assert_eq!(
        api.admin_json("GET", "/api/queue/concert/active_token_num", Value::Null).await.json,
        json!({"active_num": 1})
    );

    // Ending the session frees the slot; the ticket cannot claim again.
    for body in [
        format!("queue_id=concert&request_id={first}"),
        format!("queue_id=concert&request_id={first}&status=3"),
        "queue_id=concert&request_id=junk&status=1".to_string(),
        format!("queue_id=concert&request_id={second}&status=1"),
    ] {
        assert_eq!(
            api.admin_form("/api/queue/update_token_status", &body).await.status,
            400,
            "{body}"
        );
    }
    let r = api
        .admin_form(
            "/api/queue/update_token_status",
            &format!("queue_id=concert&request_id={first}&status=1"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        api.admin_json("GET", "/api/queue/concert/active_token_num", Value::Null).await.json,
        json!({"active_num": 0})
    );
    let r = api.token("concert", &first).await;
    assert_eq!((r.status, r.json["error"].as_str()), (StatusCode::GONE, Some("session_ended")));

    // Position expiry: the second place was passed at T0+5; its window is 60 s.
    api.advance(40); // T0+55
    assert_eq!(api.get(&format!("/queue_pos/concert/{second}")).await.status, 200);
    api.advance(10); // T0+65
    assert_eq!(api.get(&format!("/queue_pos/concert/{second}")).await.status, 410);
    assert_eq!(api.token("concert", &second).await.status, 410);
    assert_eq!(
        api.get(&format!("/queue_pos/concert/{third}")).await.status,
        200,
        "not yet passed: no expiry"
    );
    assert_eq!(
        api.get("/waiting_num/concert").await.json,
        json!({"waiting_num": 1}),
        "expired places are not waiting"
    );
    // The first place holds a token, so its place does not expire; its token does.
    api.advance(200);
    assert_eq!(
        api.admin_json("GET", "/api/queue/concert/active_token_num", Value::Null).await.json,
        json!({"active_num": 0})
    );

    // Deleting and re-creating a queue: old tickets are gone (410).
    let r = api.admin_json("DELETE", &format!("/api/queue/{}", q.id), Value::Null).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        api.admin_json("DELETE", &format!("/api/queue/{}", q.id), Value::Null).await.status,
        404
    );
    assert_eq!(
        api.get(&format!("/queue_pos/concert/{third}")).await.status,
        400,
        "queue unknown while deleted"
    );
    let r = api.admin_json("POST", "/api/queue", json!({"queue_id": "concert"})).await;
    assert_ne!(r.json["id"].as_u64().unwrap(), u64::from(q.id));
    let r = api.get(&format!("/queue_pos/concert/{third}")).await;
    assert_eq!((r.status, r.json["error"].as_str()), (StatusCode::GONE, Some("queue_replaced")));
    assert_eq!(api.token("concert", &third).await.status, 410);
    assert_eq!(api.enqueue("concert").await.len(), shared::ticket::TICKET_TEXT_LEN);
    let _ = other_id;
}

async fn key_rotation(api: &Api) {
    let rid = api.enqueue("other").await;
    api.serve("other", 10).await;
    let old = api.token("other", &rid).await.json["access_token"].as_str().unwrap().to_string();
    let r = api.admin_req("POST", "/api/keys/rotate", None, "", Some(common::ADMIN_KEY)).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let jwks: shared::token::Jwks =
        serde_json::from_value(api.get("/.well-known/jwks.json").await.json).unwrap();
    assert_eq!(jwks.keys.len(), 2, "old key still published while its tokens live");
    let old_kid = jwt_kid(&old);
    assert!(jwks.keys.iter().any(|k| k.kid == old_kid));
    let new_kid = jwks.keys.iter().find(|k| k.kid != old_kid).unwrap().kid.clone();
    // The new key is published first; it signs only once every process and edge knows it
    // (5 s plus two publish intervals), so no edge ever sees a token it cannot verify.
    let rid2 = api.enqueue("other").await;
    api.serve("other", 1).await;
    let early = api.token("other", &rid2).await.json["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_kid(&early), old_kid, "the old key signs until the new one's time");
    api.advance(coordinator::admin::ROTATION_LEAD_SECS + 4);
    let rid3 = api.enqueue("other").await;
    api.serve("other", 1).await;
    let new = api.token("other", &rid3).await.json["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_kid(&new), new_kid, "then new tokens use the new key");
    api.advance(400);
    let jwks: shared::token::Jwks =
        serde_json::from_value(api.get("/.well-known/jwks.json").await.json).unwrap();
    assert!(!jwks.keys.iter().any(|k| k.kid == old_kid), "retired once its tokens expired");
}

fn jwt_kid(t: &str) -> String {
    let header = shared::b64::decode(t.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_string()
}

async fn proof_of_work(api: &Api) {
    use shared::sync::sign_client;
    let r = api
        .admin_json("POST", "/api/queue", json!({"queue_id": "bots", "pow_difficulty": 8}))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let q = r.json["id"].as_u64().unwrap() as u32;
    let key = common::EDGE_KEY_BYTES;
    let ip = "198.51.100.9";
    let now = api.state.now();
    let header = sign_client(&key, ip, now * 1000);
    let enqueue = |challenge: String, counter: u64, header: Option<String>| {
        let mut b = Request::post("/assign_queue_pos")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(h) = header {
            b = b.header("x-anteroom-client", h);
        }
        b.body(Body::from(format!("queue_id=bots&pow_challenge={challenge}&pow_counter={counter}")))
            .unwrap()
    };
    let fresh = |n: u8, queue: u32, expires: u64, difficulty: u8, for_ip: &str| {
        let ch = shared::pow::issue(&key, queue, [n; 16], expires as u32, difficulty, for_ip);
        let counter = shared::pow::solve(&ch, difficulty);
        (ch, counter)
    };
    let code = |r: &Resp| r.json["error"].as_str().unwrap_or("").to_string();

    let r = api.form("/assign_queue_pos", "queue_id=bots").await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "pow_required".into()));
    let (ch, counter) = fresh(1, q, now + 60, 8, ip);
    let r = Api::send(&api.public, enqueue(ch.clone(), counter, Some(header.clone()))).await;
    assert_eq!(r.status, 200, "a valid solution is accepted: {}", r.json);
    let r = Api::send(&api.public, enqueue(ch.clone(), counter, Some(header.clone()))).await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "pow_replayed".into()));
    let (ch, counter) = fresh(2, q, now + 60, 8, ip);
    let wrong = (counter + 1..)
        .find(|c| shared::pow::verify_solution(&key, &ch, *c, q, ip, now).is_err())
        .unwrap();
    let r = Api::send(&api.public, enqueue(ch.clone(), wrong, Some(header.clone()))).await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "pow_invalid".into()));
    let r = Api::send(
        &api.public,
        enqueue(ch.clone(), counter, Some(sign_client(&key, "192.0.2.1", now * 1000))),
    )
    .await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::FORBIDDEN, "pow_invalid".into()),
        "solved for another client"
    );
    let r = Api::send(
        &api.public,
        enqueue(ch.clone(), counter, Some(sign_client(&[9; 32], ip, now * 1000))),
    )
    .await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "bad_client_header".into()));
    let (ch, counter) = fresh(3, q, now - 1, 8, ip);
    let r = Api::send(&api.public, enqueue(ch, counter, Some(header.clone()))).await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "pow_expired".into()));
    let other = api.state.queue_by_slug("other").await.unwrap().id;
    let (ch, counter) = fresh(4, other, now + 60, 8, ip);
    let r = Api::send(&api.public, enqueue(ch, counter, Some(header.clone()))).await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::FORBIDDEN, "pow_invalid".into()),
        "foreign queue"
    );
    let (ch, counter) = fresh(5, q, now + 60, 2, ip);
    let r = Api::send(&api.public, enqueue(ch, counter, Some(header.clone()))).await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "pow_invalid".into()), "too easy");
    let r = Api::send(&api.public, enqueue("garbage".into(), 1, Some(header))).await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "pow_invalid".into()));
    assert_eq!(
        api.get("/waiting_num/bots").await.json["waiting_num"],
        1,
        "only the valid solution got a place"
    );
    // A browser without JavaScript cannot solve: `no_js=1` skips the work only where the
    // operator allows it.
    let r = api.form("/assign_queue_pos", "queue_id=bots&no_js=1").await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "pow_required".into()));
    let id = q;
    let r = api.admin_json("PUT", "/api/queue", json!({"id": id, "allow_no_js": true})).await;
    assert_eq!((r.status, r.json["allow_no_js"].as_bool()), (StatusCode::OK, Some(true)));
    let r = api.form("/assign_queue_pos", "queue_id=bots&no_js=1").await;
    assert_eq!(r.status, 200, "{}", r.json);
    let r = api.form("/assign_queue_pos", "queue_id=bots").await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "pow_required".into()));
}

async fn templates(api: &Api) {
    let r = api
        .admin_json(
            "POST",
            "/api/queue",
            json!({"queue_id": "themed", "template": "<h1>{{title}}</h1><p>{{position}}</p>"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["template"], "<h1>{{title}}</h1><p>{{position}}</p>");
    let id = r.json["id"].as_u64().unwrap();
    for (bad, why) in [
        (json!("<p>{{postion}}</p>"), "unknown variable {{postion}}"),
        (json!("<p>{{position</p>"), "without"),
        (json!("x".repeat(shared::template::MAX_TEMPLATE_BYTES + 1)), "larger than"),
    ] {
        let r = api.admin_json("PUT", "/api/queue", json!({"id": id, "template": bad})).await;
        assert_eq!(
            (r.status, r.json["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_parameter"))
        );
        assert!(r.json["message"].as_str().unwrap().contains(why), "{}", r.json);
    }
    // A refused update changed nothing; `null` goes back to the built-in page.
    let r = api.admin_json("PUT", "/api/queue", json!({"id": id, "template": null})).await;
    assert_eq!((r.status, &r.json["template"]), (StatusCode::OK, &serde_json::Value::Null));
}

/// Display name, text logo and the operator's message: checked with a message naming the
/// field, stored, answered to `queue_pos`, cleared with `null` in one call.
async fn presentation(api: &Api) {
    let shown = json!({
        "display_name": "The Night Orchestra", "logo_text": "Riverside Tickets",
        "notice": {"en": "Doors open at 8", "zh": "八点开门"},
    });
    let mut spec = json!({"queue_id": "shown"});
    spec.as_object_mut().unwrap().extend(shown.as_object().unwrap().clone());
    let r = api.admin_json("POST", "/api/queue", spec).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let id = r.json["id"].as_u64().unwrap();
    for k in ["display_name", "logo_text", "notice"] {
        assert_eq!(r.json[k], shown[k], "{k}");
    }
    for (field, bad, why) in [
        ("display_name", json!(""), "display_name is blank; send null to clear it"),
        ("display_name", json!("x".repeat(81)), "display_name is longer than 80 characters"),
        ("logo_text", json!("two\nlines"), "logo_text contains a control character"),
        ("logo_text", json!("a\u{202e}b"), "logo_text contains a control character"),
        ("notice", json!({"en": "", "zh": ""}), "notice needs en or zh text"),
        ("notice", json!({"en": "ok", "zh": "\u{7}"}), "notice.zh contains a control character"),
        ("notice", json!({"en": "长".repeat(281)}), "notice.en is longer than 280 characters"),
        ("notice", json!({"en": "ok", "fr": "non"}), "unknown field"),
        ("notice", json!("just text"), "invalid type"),
    ] {
        let r = api.admin_json("PUT", "/api/queue", json!({"id": id, field: bad})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field} {bad}: {}", r.json);
        assert_eq!(r.json["error"], "invalid_parameter");
        let msg = r.json["message"].as_str().unwrap();
        assert!(msg.contains(why), "{field} {bad}: {msg}");
    }
    let rid = api.enqueue("shown").await;
    let r = api.get(&format!("/queue_pos/shown/{rid}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (&r.json["display_name"], &r.json["notice"]["zh"]),
        (&shown["display_name"], &json!("八点开门"))
    );
    // One call takes the message down; the rest stays.
    let r = api.admin_json("PUT", "/api/queue", json!({"id": id, "notice": null})).await;
    assert_eq!((r.status, &r.json["notice"]), (StatusCode::OK, &Value::Null));
    assert_eq!(r.json["logo_text"], "Riverside Tickets");
    let r = api.get(&format!("/queue_pos/shown/{rid}")).await;
    assert!(
        r.json.get("notice").is_none() && r.json["logo_text"] == "Riverside Tickets",
        "{}",
        r.json
    );
    // Every field of an unadorned queue's answer is absent, not null.
    let plain = api.enqueue("concert").await;
    let r = api.get(&format!("/queue_pos/concert/{plain}")).await;
    for k in ["display_name", "logo_text", "notice"] {
        assert!(r.json.get(k).is_none(), "{k} in {}", r.json);
    }
}

async fn suite(store: Arc<dyn Store>) {
    let api = Api::new(store).await;
    private_api(&api).await;
    public_api(&api).await;
    key_rotation(&api).await;
    proof_of_work(&api).await;
    templates(&api).await;
    presentation(&api).await;
    origin_key_and_extension(&api).await;
}

async fn origin_key_and_extension(api: &Api) {
    let rid = api.enqueue("other").await;
    api.serve("other", 1).await;
    let first = api.token("other", &rid).await;
    assert_eq!(first.status, 200);
    let origin = Some(common::ORIGIN_KEY);
    let ext = format!("queue_id=other&request_id={rid}&extend_by=60");
    let form = Some("application/x-www-form-urlencoded");
    // The origin key is refused everywhere but its two routes.
    let r = api
        .admin_req(
            "POST",
            "/api/queue/increment_serving_position",
            form,
            "queue_id=other&increment_by=1",
            origin,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(api.admin_req("GET", "/api/queue/1", None, "", origin).await.status, 401);
    let r = api.admin_req("POST", "/api/queue/extend_session", form, &ext, origin).await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (StatusCode::CONFLICT, Some("extension_disabled"))
    );
    let id = api.state.queue_by_slug("other").await.unwrap().id;
    let r = api.admin_json("PUT", "/api/queue", json!({"id": id, "session_max_second": 400})).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let r = api.admin_req("POST", "/api/queue/extend_session", form, &ext, origin).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["expires_in"], first.json["expires_in"].as_u64().unwrap() + 60);
    let r = api
        .admin_req(
            "POST",
            "/api/queue/extend_session",
            form,
            &format!("queue_id=other&request_id={rid}&extend_by=9999"),
            origin,
        )
        .await;
    assert_eq!(r.json["expires_in"], 400, "capped at session_max_second from issue");
    let jti = |t: &Value| -> String {
        let p = shared::b64::decode(t["access_token"].as_str().unwrap().split('.').nth(1).unwrap())
            .unwrap();
        serde_json::from_slice::<Value>(&p).unwrap()["jti"].as_str().unwrap().to_string()
    };
    assert_eq!(jti(&r.json), jti(&first.json), "same session");
    let r = api
        .admin_req(
            "POST",
            "/api/queue/extend_session",
            form,
            "queue_id=other&request_id=x&extend_by=0",
            origin,
        )
        .await;
    assert_eq!(r.status, 400);
    let r = api
        .admin_req(
            "POST",
            "/api/queue/update_token_status",
            form,
            &format!("queue_id=other&request_id={rid}&status=2"),
            origin,
        )
        .await;
    assert_eq!(r.status, 200, "the origin ends sessions");
    let r = api.admin_req("POST", "/api/queue/extend_session", form, &ext, origin).await;
    assert_eq!(r.status, 410, "an ended session cannot be extended");
}

#[tokio::test]
async fn api_on_memory_store() {
    suite(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn api_on_redis() {
    let redis = common::Redis::start();
    suite(Arc::new(RedisStore::single(&redis.url(), 0).unwrap())).await;
}

#[tokio::test]
async fn redis_down_is_503_and_recovers() {
    // Every write fsynced before its answer: with everysec Redis may hold a write back for up
    // to two seconds while an fsync is in progress, and the kill below then loses it.
    let mut redis = common::Redis::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let api = Api::new(Arc::new(RedisStore::single(&redis.url(), 0).unwrap())).await;
    assert_eq!(api.admin_json("POST", "/api/queue", json!({"queue_id": "q"})).await.status, 200);
    let rid = api.enqueue("q").await;
    redis.kill();
    for r in [
        api.form("/assign_queue_pos", "queue_id=q").await,
        api.get(&format!("/queue_pos/q/{rid}")).await,
        api.get("/serving_pos/q").await,
        api.admin_form("/api/queue/increment_serving_position", "queue_id=q&increment_by=1").await,
    ] {
        assert_eq!(r.status, 503, "{}", r.json);
        assert_eq!(r.headers[header::RETRY_AFTER], "2");
        assert_eq!(r.json["error"], "unavailable");
    }
    // The observability routes too, but /metrics: it still answers with this process's
    // series and says the store could not be read.
    let hook = json!({"url": "http://127.0.0.1:9/hook"});
    for (method, uri, body) in [
        ("GET", "/api/audit", Value::Null),
        ("GET", "/api/queue/q/report", Value::Null),
        ("GET", "/api/queue/q/report?format=html", Value::Null),
        ("GET", "/api/webhooks", Value::Null),
        ("POST", "/api/webhooks", hook),
        ("GET", "/api/admin_keys", Value::Null),
        ("POST", "/api/admin_keys", json!({"name": "ops"})),
        ("DELETE", "/api/admin_keys/ops", Value::Null),
        ("POST", "/api/queue/q/pause", Value::Null),
    ] {
        let r = api.admin_json(method, uri, body).await;
        assert_eq!(r.status, 503, "{method} {uri}: {}", r.json);
        assert_eq!(r.headers[header::RETRY_AFTER], "2");
        assert_eq!(r.json["error"], "unavailable");
    }
    let m = api.admin_req("GET", "/metrics", None, "", Some(common::ADMIN_KEY)).await;
    assert_eq!(m.status, 200);
    let text = m.json.as_str().unwrap();
    let up = text.lines().find_map(|l| l.strip_prefix("anteroom_store_up "));
    assert_eq!(up.map(|v| v.parse::<f64>().unwrap()), Some(0.0), "{text}");
    assert!(!text.contains("anteroom_waiting{"), "no queue figure without the store");
    assert!(text.contains("anteroom_redis_command_errors_total{"), "{text}");
    let ready = Api::send(&api.public, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(ready.status, 503);
    redis.restart();
    // The connection manager reconnects by itself; poll until it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let r = api.get(&format!("/queue_pos/q/{rid}")).await;
        if r.status == 200 {
            assert_eq!(r.json["position"], 1);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no recovery: {}", r.json);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(api.enqueue("q").await.len(), shared::ticket::TICKET_TEXT_LEN);
    assert_eq!(
        api.get(&format!("/queue_pos/q/{}", api.enqueue("q").await)).await.json["position"],
        3,
        "no position lost or reused"
    );
}
