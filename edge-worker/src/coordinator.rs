//! Talking to the coordinator: the calls the edge cannot answer itself (`assign_queue_pos`,
//! `generate_token` at one's turn, the no-JS forms) are forwarded with the visitor's IP in the
//! MAC'd client header, and the answer is relayed as it came; and the freshness pulls of
//! synced state (`shared::pull`), MAC'd both ways.

use shared::error::ErrorCode;
use shared::pull::{PULL_HEADER, PULL_TIMEOUT_MS};
use shared::sync::{CLIENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{AbortSignal, Fetch, Headers, Method, Request, RequestInit, Response};

use crate::http::{EdgeError, EdgeResult, now_ms};

/// How long the edge waits for the coordinator, milliseconds.
const COORDINATOR_TIMEOUT_MS: u32 = 10_000;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = AbortSignal, js_name = timeout)]
    fn abort_signal_timeout(ms: u32) -> worker::web_sys::AbortSignal;
}

/// Where the coordinator is and the key vouching for the edge.
#[derive(Debug, Clone)]
pub struct Coordinator {
    /// `COORDINATOR_URL`.
    pub url: Option<String>,
    /// `EDGE_KEY`.
    pub key: Option<[u8; 32]>,
}

/// Why a pull brought nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullError {
    /// The coordinator lost this queue's data (503 `queue_lost`).
    Lost,
    /// Unreachable, timed out, refused, or an answer that failed its check.
    Failed(String),
}

/// The coordinator's answer: status, JSON body, `Retry-After`.
#[derive(Debug)]
pub struct Relayed {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry: Option<String>,
}

impl Relayed {
    /// The answer passed on to the visitor as it came.
    pub fn response(&self) -> EdgeResult<Response> {
        crate::http::relayed(self.status, self.body.clone(), self.retry.clone())
    }
}

impl Coordinator {
    /// POSTs `body` (a form) to the coordinator's public endpoint `path`, vouching for `ip`.
    pub async fn forward(&self, path: &str, body: Vec<u8>, ip: &str) -> EdgeResult<Relayed> {
        let unavailable = || EdgeError::new(ErrorCode::CoordinatorUnavailable);
        let base = self
            .url
            .as_deref()
            .ok_or_else(|| EdgeError::Internal("COORDINATOR_URL is not set".into()))?;
        let key = self.key.ok_or_else(|| EdgeError::Internal("EDGE_KEY is not set".into()))?;
        let headers = Headers::new();
        headers.set("content-type", "application/x-www-form-urlencoded")?;
        headers.set(CLIENT_HEADER, &shared::sync::sign_client(&key, ip, now_ms()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(worker::js_sys::Uint8Array::from(body.as_slice()).into()));
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let req = Request::new_with_init(&url, &init)?;
        let signal = AbortSignal::from(abort_signal_timeout(COORDINATOR_TIMEOUT_MS));
        let mut resp = match Fetch::Request(req).send_with_signal(&signal).await {
            Ok(resp) if resp.status_code() >= 500 && resp.status_code() != 503 => {
                worker::console_error!("coordinator {path} answered {}", resp.status_code());
                return Err(unavailable());
            }
            Ok(resp) => resp,
            Err(e) => {
                worker::console_error!("coordinator {path} unreachable: {e}");
                return Err(unavailable());
            }
        };
        let status = resp.status_code();
        let retry = resp.headers().get("retry-after")?;
        let body = resp.bytes().await?;
        Ok(Relayed { status, body, retry })
    }
}

impl Coordinator {
    /// Whether this edge can pull: a coordinator address and the key.
    pub fn can_pull(&self) -> bool {
        self.url.is_some() && self.key.is_some()
    }

    /// `GET {COORDINATOR_URL}{path}` of a freshness pull: the answer's body once its MAC and
    /// timestamp check out. Waits at most `PULL_TIMEOUT_MS`.
    pub async fn pull(&self, path: &str) -> Result<Vec<u8>, PullError> {
        let failed = |why: String| PullError::Failed(why);
        let (Some(base), Some(key)) = (self.url.as_deref(), self.key) else {
            return Err(failed("no COORDINATOR_URL or EDGE_KEY".into()));
        };
        let headers = Headers::new();
        let sign = headers.set(PULL_HEADER, &shared::pull::sign_request(&key, path, now_ms()));
        sign.map_err(|e| failed(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get).with_headers(headers);
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let req = Request::new_with_init(&url, &init).map_err(|e| failed(e.to_string()))?;
        let signal = AbortSignal::from(abort_signal_timeout(PULL_TIMEOUT_MS));
        let mut resp = Fetch::Request(req)
            .send_with_signal(&signal)
            .await
            .map_err(|e| failed(format!("unreachable: {e}")))?;
        let status = resp.status_code();
        let ts = resp.headers().get(TIMESTAMP_HEADER).ok().flatten();
        let sig = resp.headers().get(SIGNATURE_HEADER).ok().flatten();
        let body = resp.bytes().await.map_err(|e| failed(e.to_string()))?;
        if status != 200 {
            let lost = status == 503
                && serde_json::from_slice::<shared::wire::ErrorBody>(&body)
                    .is_ok_and(|b| b.error == ErrorCode::QueueLost.code());
            return Err(if lost { PullError::Lost } else { failed(format!("answered {status}")) });
        }
        let ts: u64 =
            ts.and_then(|t| t.parse().ok()).ok_or_else(|| failed("no timestamp".into()))?;
        let sig = sig.ok_or_else(|| failed("no signature".into()))?;
        shared::pull::verify_answer(&key, path, ts, &body, &sig, now_ms())
            .map_err(|e| failed(e.to_string()))?;
        Ok(body)
    }
}
