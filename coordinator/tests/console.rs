//! The console through the private router (no socket): the page and its assets, sign-in with
//! an operator key for a session cookie, the cookie opening the same private routes as the
//! key (and no more), CSRF on every change, sign-out, a revoked key ending its sessions; the
//! overview and live answers the console draws. On the memory store and on a real Redis.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, header};
use coordinator::Limits;
use coordinator::store::Store;
use coordinator::store::memory::MemoryStore;
use coordinator::store::redis::RedisStore;
use serde_json::{Value, json};

const T0: u64 = 1_800_000_000;

struct Console {
    admin: Router,
    public: Router,
}

/// A request to the private router: `cookie` and `csrf` as a browser would send them.
struct Call<'a> {
    method: &'a str,
    uri: &'a str,
    body: Option<Value>,
    cookie: Option<&'a str>,
    csrf: Option<&'a str>,
    origin: Option<&'a str>,
}

fn call<'a>(method: &'a str, uri: &'a str) -> Call<'a> {
    Call { method, uri, body: None, cookie: None, csrf: None, origin: None }
}

impl Console {
    async fn send(&self, c: Call<'_>) -> (u16, HeaderMap, Value) {
        let mut b =
            Request::builder().method(c.method).uri(c.uri).header(header::HOST, "ops.local");
        if let Some(k) = c.cookie {
            b = b.header(header::COOKIE, format!("other=1; anteroom_console={k}"));
        }
        if let Some(t) = c.csrf {
            b = b.header("x-csrf-token", t);
        }
        if let Some(o) = c.origin {
            b = b.header(header::ORIGIN, o);
        }
        let body = match c.body {
            Some(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        common::call(&self.admin, b.body(body).unwrap()).await
    }

    /// Signs in with `key`: the session id (from the cookie) and the CSRF token.
    async fn sign_in(&self, key: &str) -> (String, String) {
        let (st, h, v) = self
            .send(Call {
                body: Some(json!({"key": key})),
                origin: Some("http://ops.local"),
                ..call("POST", "/console/session")
            })
            .await;
        assert_eq!(st, 200, "{v}");
        let cookie = h[header::SET_COOKIE].to_str().unwrap().to_string();
        assert!(cookie.ends_with("; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict"), "{cookie}");
        let id = cookie.split(';').next().unwrap().strip_prefix("anteroom_console=").unwrap();
        assert!(!v.to_string().contains(id), "the id travels only in the cookie");
        (id.to_string(), v["csrf"].as_str().unwrap().to_string())
    }
}

async fn console_suite(store: Arc<dyn Store>) {
    let (state, clock) = common::state_with(store, T0).await;
    let c = Console {
        admin: coordinator::admin_app(state.clone(), Limits::default()),
        public: coordinator::public_app(state.clone(), Limits::default()),
    };

    // The page: no key needed, its own script and style under hashed names, a strict CSP.
    let req = Request::get("/console").body(Body::empty()).unwrap();
    let resp = tower::ServiceExt::oneshot(c.admin.clone(), req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = String::from_utf8(
        http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes().to_vec(),
    )
    .unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "nothing from elsewhere");
    let js = html.split("src=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert!(js.starts_with("/console/assets/console.") && js.ends_with(".js"), "{js}");
    let req = Request::get(&js).body(Body::empty()).unwrap();
    let resp = tower::ServiceExt::oneshot(c.admin.clone(), req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
    assert_eq!(c.send(call("GET", "/console/assets/console.000000000000.js")).await.0, 404);

    // Wrong keys, the origin key and a bad body are refused; nothing is set.
    for key in ["wrong-key-wrong-key", common::ORIGIN_KEY, ""] {
        let (st, h, v) = c
            .send(Call { body: Some(json!({"key": key})), ..call("POST", "/console/session") })
            .await;
        assert_eq!((st, v["error"].as_str()), (401, Some("unauthorized")), "{key}");
        assert!(h.get(header::SET_COOKIE).is_none());
    }
    let (st, _, v) = c
        .send(Call { body: Some(json!({"key": "k", "x": 1})), ..call("POST", "/console/session") })
        .await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_parameter")));
    // Another site cannot sign a browser in.
    let (st, _, v) = c
        .send(Call {
            body: Some(json!({"key": common::ADMIN_KEY})),
            origin: Some("https://evil.example"),
            ..call("POST", "/console/session")
        })
        .await;
    assert_eq!((st, v["error"].as_str()), (403, Some("csrf_failed")));

    let (id, csrf) = c.sign_in(common::ADMIN_KEY).await;
    let (st, _, v) = c.send(Call { cookie: Some(&id), ..call("GET", "/console/session") }).await;
    assert_eq!(st, 200);
    assert_eq!((v["key"].as_str(), v["bootstrap"].as_bool()), (Some("bootstrap"), Some(true)));
    assert_eq!(v["csrf"].as_str(), Some(csrf.as_str()));
    assert_eq!(v["expires_at_ms"].as_u64(), Some((T0 + 43_200) * 1000));

    // The cookie opens the private routes a key opens: reads without the token...
    let (st, _, v) = c.send(Call { cookie: Some(&id), ..call("GET", "/api/queues") }).await;
    assert_eq!((st, v), (200, json!([])));
    // ...changes only with it, and only from the console's own origin.
    let spec = json!({"queue_id": "riverside", "display_name": "The Night Orchestra",
        "enable_queue_position_expiry": true, "position_expiry_second": 60,
        "admission": {"policy": {"strategy": "capacity", "max_active": 2}}});
    for (csrf_sent, origin) in [
        (None, None),
        (Some("0".repeat(32)), None),
        (Some(csrf.clone()), Some("https://evil.example")),
    ] {
        let (st, _, v) = c
            .send(Call {
                body: Some(spec.clone()),
                cookie: Some(&id),
                csrf: csrf_sent.as_deref(),
                origin,
                ..call("POST", "/api/queue")
            })
            .await;
        assert_eq!(
            (st, v["error"].as_str()),
            (403, Some("csrf_failed")),
            "{csrf_sent:?} {origin:?}"
        );
    }
    let (st, _, v) = c.send(Call { cookie: Some(&id), ..call("GET", "/api/queues") }).await;
    assert_eq!((st, v), (200, json!([])), "nothing was created");
    let (st, _, q) = c
        .send(Call {
            body: Some(spec.clone()),
            cookie: Some(&id),
            csrf: Some(&csrf),
            origin: Some("http://ops.local"),
            ..call("POST", "/api/queue")
        })
        .await;
    assert_eq!(st, 200, "{q}");
    // A forged cookie is nobody; the token of another session does not pass either.
    let (st, _, _) = c.send(Call { cookie: Some("forged"), ..call("GET", "/api/queues") }).await;
    assert_eq!(st, 401);

    // A named key's session: changes are audited under its name; revoking the key ends it.
    let (st, _, named) = c
        .send(Call {
            body: Some(json!({"name": "ops-alice"})),
            cookie: Some(&id),
            csrf: Some(&csrf),
            ..call("POST", "/api/admin_keys")
        })
        .await;
    assert_eq!(st, 201, "{named}");
    let (alice, alice_csrf) = c.sign_in(named["key"].as_str().unwrap()).await;
    assert_ne!(alice_csrf, csrf);
    let (st, _, v) = c
        .send(Call {
            cookie: Some(&alice),
            csrf: Some(&csrf),
            ..call("POST", "/api/queue/riverside/pause")
        })
        .await;
    assert_eq!((st, v["error"].as_str()), (403, Some("csrf_failed")), "another session's token");
    let (st, _, v) = c
        .send(Call {
            cookie: Some(&alice),
            csrf: Some(&alice_csrf),
            ..call("POST", "/api/queue/riverside/pause")
        })
        .await;
    assert_eq!((st, v["admission"]["paused"].as_bool()), (200, Some(true)));
    // A named key's session cannot manage keys, as the key cannot.
    let (st, _, _) = c.send(Call { cookie: Some(&alice), ..call("GET", "/api/admin_keys") }).await;
    assert_eq!(st, 401);
    let (st, _, page) =
        c.send(Call { cookie: Some(&alice), ..call("GET", "/api/audit?queue=riverside") }).await;
    assert_eq!(st, 200);
    let entries = page["entries"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["key"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("queue.create", "bootstrap"), ("queue.pause", "ops-alice")]);
    let (st, _, _) = c
        .send(Call {
            cookie: Some(&id),
            csrf: Some(&csrf),
            ..call("DELETE", "/api/admin_keys/ops-alice")
        })
        .await;
    assert_eq!(st, 204);
    let (st, _, _) = c.send(Call { cookie: Some(&alice), ..call("GET", "/api/queues") }).await;
    assert_eq!(st, 401, "the key is revoked: so is its session");

    // What the console draws.
    let (st, _, o) = c.send(Call { cookie: Some(&id), ..call("GET", "/api/overview") }).await;
    assert_eq!(st, 200, "{o}");
    assert_eq!((o["store_up"].as_bool(), o["publishing"].as_bool()), (Some(true), Some(false)));
    let q0 = &o["queues"][0];
    assert_eq!(
        (q0["queue_id"].as_str(), q0["state"].as_str(), q0["max_active"].as_u64()),
        (Some("riverside"), Some("paused"), Some(2))
    );
    assert_eq!(q0["display_name"], "The Night Orchestra");
    // The minute's sample, as the upkeep loop stores it; 30 s later, three arrivals.
    coordinator::sampling::tick(&state, &mut coordinator::sampling::Sampler::default()).await;
    clock.fetch_add(30_000, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..3 {
        let r = common::call(
            &c.public,
            Request::post("/assign_queue_pos")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("queue_id=riverside"))
                .unwrap(),
        )
        .await;
        assert_eq!(r.0, 200);
    }
    let (st, _, live) =
        c.send(Call { cookie: Some(&id), ..call("GET", "/api/queue/riverside/live") }).await;
    assert_eq!(st, 200, "{live}");
    assert_eq!(live["summary"]["waiting"], 3);
    assert_eq!(live["queue"]["id"], q["id"]);
    let last = live["minutes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["arrivals"], &last["secs"], &last["waiting"]),
        (&json!(3), &json!(30), &json!(3))
    );
    assert_eq!(live["summary"]["arrivals_per_min"], 6.0, "3 in 30 s");
    let (st, _, d) = c.send(Call { cookie: Some(&id), ..call("GET", "/api/queue_defaults") }).await;
    assert_eq!((st, &d["queue"]["token_validity_second"]), (200, &json!(300)));
    assert_eq!(d["max_pow_difficulty"], shared::pow::MAX_DIFFICULTY);

    // Signing out: needs the token; the cookie is cleared and the session is gone.
    let (st, _, _) = c.send(Call { cookie: Some(&id), ..call("DELETE", "/console/session") }).await;
    assert_eq!(st, 403);
    let (st, h, _) = c
        .send(Call { cookie: Some(&id), csrf: Some(&csrf), ..call("DELETE", "/console/session") })
        .await;
    assert_eq!(st, 204);
    assert!(
        h[header::SET_COOKIE].to_str().unwrap().starts_with("anteroom_console=; Path=/; Max-Age=0")
    );
    let (st, _, _) = c.send(Call { cookie: Some(&id), ..call("GET", "/api/queues") }).await;
    assert_eq!(st, 401);
    let (st, _, _) = c.send(Call { cookie: Some(&id), ..call("GET", "/console/session") }).await;
    assert_eq!(st, 401);
    // Sign-in and sign-out are in the audit log too, by name, never with a key or an id.
    let (_, _, page) = c.send(Call { body: None, ..call("GET", "/api/audit?limit=1000") }).await;
    assert_eq!(page["error"], "unauthorized");
    let bearer = Request::get("/api/audit?limit=1000")
        .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
        .body(Body::empty())
        .unwrap();
    let (_, _, page) = common::call(&c.admin, bearer).await;
    let text = page.to_string();
    assert!(!text.contains(&id) && !text.contains(common::ADMIN_KEY));
    let console: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str().filter(|a| a.starts_with("console.")))
        .collect();
    assert_eq!(console, ["console.sign_in", "console.sign_in", "console.sign_out"]);
}

#[tokio::test]
async fn console_on_memory_store() {
    console_suite(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn console_on_redis() {
    let redis = common::Redis::start();
    console_suite(Arc::new(RedisStore::single(&redis.url(), 0).unwrap())).await;
}
