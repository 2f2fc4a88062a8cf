//! Talking to the coordinator: the calls the edge cannot answer itself (`assign_queue_pos`,
//! `generate_token` at one's turn, the no-JS forms) are forwarded with the visitor's IP in the
//! MAC'd client header, and the answer is relayed as it came.

use shared::error::ErrorCode;
use shared::sync::CLIENT_HEADER;
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
