//! The OpenAPI documents match the routers, both ways. Every operation a listener's
//! `/openapi.json` names is served (not the "no such endpoint" 404, not a 405); on every
//! documented path, every method it does not name is a 405; and no route reaches a router
//! except through `utoipa_axum::routes!`, which adds it to the document in the same step (the
//! sources of the coordinator are read for any other way of adding one). Together: the
//! routers serve exactly the documented routes.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use coordinator::Limits;
use coordinator::store::memory::MemoryStore;
use serde_json::Value;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

async fn doc(router: &Router, key: Option<&str>) -> Value {
    let mut req = Request::get("/openapi.json");
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    let (status, _, v) = common::call(router, req.body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// `/a/{x}/b` with every parameter filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

async fn status(router: &Router, method: &str, uri: &str) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
        .body(Body::empty())
        .unwrap();
    let (st, _, v) = common::call(router, req).await;
    (st, v)
}

/// Checks one listener's document against its router; returns the operations seen.
async fn matches(router: &Router, doc: &Value) -> usize {
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let uri = concrete(path);
        for m in METHODS {
            let documented = item.get(m.to_lowercase()).is_some();
            let (st, v) = status(router, m, &uri).await;
            if documented {
                seen += 1;
                assert_ne!(st, 405, "{m} {path} is documented but not served");
                let missing = st == 404 && v["message"] == "no such endpoint";
                assert!(!missing, "{m} {path} is documented but not served");
            } else {
                assert_eq!(st, 405, "{m} {path} is served but not documented ({v})");
            }
        }
    }
    seen
}

#[tokio::test]
async fn each_listener_serves_exactly_what_its_document_names() {
    let (state, _) = common::state_with(Arc::new(MemoryStore::new()), 1_800_000_000).await;
    let public = coordinator::public_app(state.clone(), Limits::default());
    let admin = coordinator::admin_app(state, Limits::default());
    let public_doc = doc(&public, None).await;
    let private_doc = doc(&admin, Some(common::ADMIN_KEY)).await;
    assert_eq!(public_doc["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
    assert_eq!(matches(&public, &public_doc).await, 12);
    for edge in ["/edge/state/{queue_id}", "/edge/index"] {
        assert!(public_doc["paths"][edge].get("get").is_some(), "{edge} (the edge's pulls)");
    }
    assert_eq!(matches(&admin, &private_doc).await, 37);
    // The private document says every call needs a bearer key, and is itself behind one.
    assert_eq!(private_doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let (st, _) = status(&public, "GET", "/api/queues").await;
    assert_eq!(st, 404, "no private route on the public listener");
    let req = Request::get("/openapi.json").body(Body::empty()).unwrap();
    assert_eq!(common::call(&admin, req).await.0, 401);
    // Schemas come from the wire types themselves.
    let schemas = &private_doc["components"]["schemas"];
    for name in ["QueueConfig", "QueueInput", "AuditPage", "Report", "WebhookView", "ErrorBody"] {
        assert!(schemas.get(name).is_some(), "{name} missing");
    }
    assert!(schemas["QueueConfig"]["properties"].get("position_expiry_second").is_some());
}

/// `method uri` with `key` as the bearer (none: no header).
async fn with_key(router: &Router, method: &str, uri: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    let (st, headers, v) = common::call(router, req.body(Body::empty()).unwrap()).await;
    if st == 401 {
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(v["error"], "unauthorized", "{v}");
    }
    (st, v)
}

/// Every operation of the private document, taken from the document itself (so a new route
/// is checked without being listed here), refuses a call without a key, with a wrong one and
/// with a key of the wrong kind, and lets its own kinds through.
#[tokio::test]
async fn every_private_operation_needs_a_key_of_its_kind() {
    const METRICS_KEY: &str = "test-metrics-key-0123456789";
    let cfg = common::config_with(None, &["--edge-only", "false", "--metrics-key", METRICS_KEY]);
    let store = Arc::new(MemoryStore::new());
    let (state, _) = common::state_with_config(store, 1_800_000_000, &cfg).await;
    let admin = coordinator::admin_app(state, Limits::default());
    let doc = doc(&admin, Some(common::ADMIN_KEY)).await;
    let req = Request::post("/api/admin_keys")
        .header(header::AUTHORIZATION, format!("Bearer {}", common::ADMIN_KEY))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name":"ops"}"#))
        .unwrap();
    let (st, _, v) = common::call(&admin, req).await;
    assert_eq!(st, 201, "{v}");
    let named = v["key"].as_str().unwrap().to_string();
    let origin_ops = [
        "POST /api/queue/update_token_status",
        "POST /api/queue/extend_session",
        "POST /api/queue/{queue_id}/health",
    ];
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if ["/healthz", "/readyz"].contains(&path.as_str()) {
            continue; // probes, open by design
        }
        if path.starts_with("/console") {
            // The console's page and assets are open by design; its session routes take the
            // key in the body or the session cookie, never a bearer (tests/console.rs).
            continue;
        }
        for m in METHODS.iter().filter(|m| item.get(m.to_lowercase()).is_some()) {
            let op = format!("{m} {path}");
            let uri = concrete(path);
            let keys = [
                (None, false),
                (Some("wrong-key-0123456789"), false),
                (Some(common::ORIGIN_KEY), origin_ops.contains(&op.as_str())),
                (Some(METRICS_KEY), path == "/metrics"),
                (Some(named.as_str()), !path.starts_with("/api/admin_keys")),
                (Some(common::ADMIN_KEY), true),
            ];
            for (key, allowed) in keys {
                let (st, v) = with_key(&admin, m, &uri, key).await;
                assert_eq!(st != 401, allowed, "{op} with {key:?}: {st} {v}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 30, "every private operation but the two probes and the console's");
}

#[test]
fn routes_are_added_only_through_the_documenting_macro() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.clone()];
    let mut checked = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for bad in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            assert!(!text.contains(bad), "{} adds a route outside routes!: {bad}", p.display());
        }
        let plain =
            text.matches("Router::new()").count() - text.matches("OpenApiRouter::new()").count();
        assert_eq!(plain, 0, "{} builds a router without its document", p.display());
        checked += 1;
    }
    assert!(checked > 20);
}
