//! Property tests of the HTTP layer: arbitrary bodies, content types and paths sent to every
//! public and private route never get a 5xx (and every error is the JSON error body), so no
//! input can make the coordinator panic or answer with its internals.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use coordinator::Limits;
use coordinator::store::memory::MemoryStore;
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt as _;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(10_000);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

struct Rig {
    rt: tokio::runtime::Runtime,
    public: Router,
    admin: Router,
    ticket: String,
}

fn rig() -> Rig {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (public, admin, ticket) = rt.block_on(async {
        let (state, _) = common::state_with(Arc::new(MemoryStore::new()), 1_800_000_000).await;
        let public = coordinator::public_app(state.clone(), Limits::default());
        let admin = coordinator::admin_app(state, Limits::default());
        let req = Request::post("/api/queue")
            .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"queue_id": "q", "pow_difficulty": 2}).to_string()))
            .unwrap();
        assert_eq!(admin.clone().oneshot(req).await.unwrap().status(), 200);
        let req = Request::post("/api/queue")
            .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"queue_id": "free"}).to_string()))
            .unwrap();
        assert_eq!(admin.clone().oneshot(req).await.unwrap().status(), 200);
        let req = Request::post("/assign_queue_pos")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("queue_id=free"))
            .unwrap();
        let resp = public.clone().oneshot(req).await.unwrap();
        let body: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        (public, admin, body["request_id"].as_str().unwrap().to_string())
    });
    Rig { rt, public, admin, ticket }
}

impl Rig {
    /// Sends one request; panics (failing the property) on a 5xx or a non-JSON error.
    fn check(&self, router: &Router, req: Request<Body>) -> Result<(), TestCaseError> {
        let (status, bytes) = self.rt.block_on(async {
            let resp = router.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            (status, resp.into_body().collect().await.unwrap().to_bytes())
        });
        prop_assert!(!status.is_server_error(), "{status}: {}", String::from_utf8_lossy(&bytes));
        if status.is_client_error() {
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|_| TestCaseError::fail(format!("{status} without a JSON body")))?;
            prop_assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
        }
        Ok(())
    }
}

fn form_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("q".to_string()),
        Just("free".to_string()),
        "[a-z0-9%&=+_-]{0,40}",
        ".{0,40}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn public_forms_and_paths(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        queue_id in form_field(),
        challenge in form_field(),
        counter in form_field(),
        mangle in any::<usize>(),
        path in "[a-zA-Z0-9%._/-]{0,60}",
        ctype in prop_oneof![Just("application/x-www-form-urlencoded"), Just("text/plain"), Just("application/json")],
    ) {
        thread_local!(static RIG: Rig = rig());
        RIG.with(|r| {
            let fields = format!("queue_id={queue_id}&pow_challenge={challenge}&pow_counter={counter}&no_js=1");
            let mut rid = r.ticket.clone().into_bytes();
            let i = mangle % rid.len();
            rid[i] = b"AQ_-z"[mangle % 5];
            let rid = String::from_utf8(rid).unwrap();
            for (uri, b) in [
                ("/assign_queue_pos", fields.into_bytes()),
                ("/assign_queue_pos", body.clone()),
                ("/generate_token", format!("queue_id=free&request_id={rid}").into_bytes()),
                ("/generate_token", body.clone()),
            ] {
                let req = Request::post(uri).header(header::CONTENT_TYPE, ctype).body(Body::from(b)).unwrap();
                r.check(&r.public, req)?;
            }
            for uri in [format!("/queue_pos/free/{rid}"), format!("/serving_pos/{queue_id}"), format!("/{path}")] {
                if let Ok(req) = Request::get(uri.as_str()).body(Body::empty()) {
                    r.check(&r.public, req)?;
                }
            }
            Ok::<(), TestCaseError>(())
        })?;
    }

    #[test]
    fn private_bodies(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        json_body in prop_oneof![
            Just(json!({"queue_id": "x"})),
            Just(json!({"queue_id": "y", "paths": ["/a"], "admission": {"policy": {"strategy": "capacity", "max_active": 0}}})),
            Just(json!({"id": 1, "mode": "nope"})),
            Just(json!({"queue_id": "z", "position_expiry_second": -1})),
            Just(json!({"queue_id": "w", "template": "{{nope}}"})),
        ],
        field in form_field(),
    ) {
        thread_local!(static RIG: Rig = rig());
        RIG.with(|r| {
            for (method, uri, ctype, b) in [
                ("POST", "/api/queue", "application/json", body.clone()),
                ("PUT", "/api/queue", "application/json", body.clone()),
                ("POST", "/api/queue", "application/json", json_body.to_string().into_bytes()),
                ("POST", "/api/queue/increment_serving_position", "application/x-www-form-urlencoded", format!("queue_id=free&increment_by={field}").into_bytes()),
                ("POST", "/api/queue/update_token_status", "application/x-www-form-urlencoded", format!("queue_id=free&request_id={field}&status={field}").into_bytes()),
                ("POST", "/api/queue/free/health", "application/json", body.clone()),
                ("POST", "/api/webhooks", "application/json", body.clone()),
                ("POST", "/api/admin_keys", "application/json", body.clone()),
                ("POST", "/api/queue/free/pause", "application/json", body.clone()),
            ] {
                let req = Request::builder()
                    .method(method)
                    .uri(uri)
                    .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
                    .header(header::CONTENT_TYPE, ctype)
                    .body(Body::from(b))
                    .unwrap();
                r.check(&r.admin, req)?;
            }
            for uri in [format!("/api/audit?since={field}&limit={field}"), format!("/api/queue/free/report?format={field}")] {
                let req = Request::get(uri.as_str())
                    .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
                    .body(Body::empty());
                if let Ok(req) = req {
                    r.check(&r.admin, req)?;
                }
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}
