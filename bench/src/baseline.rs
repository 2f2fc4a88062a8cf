//! Baseline servers measured next to the coordinator: bare axum returning a constant, and
//! axum doing one Redis script call (EVALSHA of an INCR script) per request.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The script of the one-call baseline.
pub const INCR_SCRIPT: &str = "return redis.call('INCR', KEYS[1])";

/// A constant JSON body about the size of the coordinator's answers.
const CONSTANT: &str =
    r#"{"request_id":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","position":1}"#;

async fn constant() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], CONSTANT)
}

async fn healthz() -> &'static str {
    "ok"
}

/// Serves the bare-axum baseline: every path answers the constant.
pub async fn serve_axum(listen: SocketAddr) -> anyhow::Result<()> {
    let app = Router::new().route("/healthz", get(healthz)).fallback(constant);
    let l = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(l, app).await?;
    Ok(())
}

/// State of the one-call baseline.
#[derive(Clone)]
struct OneCall {
    conn: ConnectionManager,
    script: std::sync::Arc<redis::Script>,
}

async fn one_call(State(s): State<OneCall>) -> axum::response::Response {
    let mut c = s.conn.clone();
    match s.script.key("bench:onecall").invoke_async::<i64>(&mut c).await {
        Ok(n) => ([(header::CONTENT_TYPE, "application/json")], format!(r#"{{"position":{n}}}"#))
            .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Serves the one-Redis-call baseline: every path runs EVALSHA of [`INCR_SCRIPT`] once, over
/// one multiplexed connection (as the coordinator's store does).
pub async fn serve_redis(listen: SocketAddr, redis_url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url)?;
    let conn = ConnectionManager::new_with_config(client, ConnectionManagerConfig::new()).await?;
    let state = OneCall { conn, script: std::sync::Arc::new(redis::Script::new(INCR_SCRIPT)) };
    let app = Router::new().route("/healthz", get(healthz)).fallback(one_call).with_state(state);
    let l = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(l, app).await?;
    Ok(())
}
