//! Test harness: the workspace's test kit (`testkit`: real `redis-server` processes, single and
//! cluster, coordinator processes) plus coordinators started in-process with test settings.
#![allow(dead_code, clippy::unwrap_used, reason = "shared by several test binaries")]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

use coordinator::state::{AppState, Clock};
use coordinator::store::Store;
#[allow(unused_imports, reason = "each test binary uses a part")]
pub use testkit::{Cluster, Redis, TempDir, free_port, http_get_status, wait_for};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
pub const ORIGIN_KEY: &str = "test-origin-key-0123456789";
/// The edge key of test coordinators, and its bytes.
pub const EDGE_KEY: &str = "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";
pub const EDGE_KEY_BYTES: [u8; 32] = [0xa5; 32];

/// Sends one inline command to a Redis port and returns the raw reply.
pub fn redis_raw(port: u16, cmd: &str) -> Option<String> {
    testkit::redis_raw(port, cmd).ok()
}

/// A coordinator config for tests.
pub fn config(redis_url: Option<String>) -> coordinator::Config {
    config_with(redis_url, &["--edge-only", "false"])
}

/// A coordinator config for tests, with more flags.
pub fn config_with(redis_url: Option<String>, extra: &[&str]) -> coordinator::Config {
    use clap::Parser as _;
    let mut args = vec![
        "coordinator".to_string(),
        "--admin-key".into(),
        ADMIN_KEY.into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--admin-listen".into(),
        "127.0.0.1:0".into(),
        "--edge-key".into(),
        EDGE_KEY.into(),
        "--origin-key".into(),
        ORIGIN_KEY.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    if let Some(u) = redis_url {
        args.push("--redis-url".into());
        args.push(u);
    }
    coordinator::Config::try_parse_from(args).unwrap()
}

/// State over a given store, with a manual clock (milliseconds) starting at `t0` seconds.
/// Public calls need no edge header (the tests call as the edge would).
pub async fn state_with(
    store: Arc<dyn Store>,
    t0: u64,
) -> (AppState, Arc<std::sync::atomic::AtomicU64>) {
    state_with_config(store, t0, &config(None)).await
}

/// State over a given store and config, with a manual clock starting at `t0` seconds.
pub async fn state_with_config(
    store: Arc<dyn Store>,
    t0: u64,
    cfg: &coordinator::Config,
) -> (AppState, Arc<std::sync::atomic::AtomicU64>) {
    let clock = Arc::new(std::sync::atomic::AtomicU64::new(t0 * 1000));
    let state = coordinator::start(cfg, store, Clock::Manual(clock.clone())).await.unwrap();
    (state, clock)
}

/// A coordinator running as its own process (the real binary), killed on drop.
pub type Process = testkit::Coordinator;

/// Starts the coordinator binary with the test admin key and `envs`.
pub fn process(envs: &[(&str, String)]) -> Process {
    let mut all = vec![("ANTEROOM_ADMIN_KEY", ADMIN_KEY.to_string())];
    all.extend(envs.iter().cloned());
    testkit::Coordinator::start(std::path::Path::new(env!("CARGO_BIN_EXE_coordinator")), &all)
}

/// Sends `req` to `router` (no socket): status, headers, the JSON body (`null` if none).
pub async fn call(router: &Router, req: Request<Body>) -> (u16, HeaderMap, Value) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// An HTTP client for tests against real processes.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap()
}

/// Creates a queue through a process's private API; panics unless it answers 200.
pub async fn create_queue(c: &reqwest::Client, admin: SocketAddr, body: Value) -> Value {
    let r = c
        .post(format!("http://{admin}/api/queue"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
