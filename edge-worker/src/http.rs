//! What every edge module answers with: the error type (a code of the shared vocabulary,
//! `shared::error`), JSON and relayed responses, the request URL split, bounded body reads,
//! and the clock. Below every other module; imports none of them.

use std::borrow::Cow;

use shared::error::ErrorCode;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{Request, Response, js_sys, web_sys};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);

    /// A `Headers`, as far as the status polls' answers call it.
    type PollHeaders;

    /// `headers.set(name, value)` with a name made once per isolate and a number for the value,
    /// which `set` turns into its decimal text: no text crosses from Wasm, and text from Wasm
    /// costs a view of Wasm memory and a `TextDecoder` call each (BENCHMARKS.md, "At the edge").
    #[wasm_bindgen(method, catch, js_name = set)]
    fn set_number(
        this: &PollHeaders,
        name: &js_sys::JsString,
        value: f64,
    ) -> Result<(), wasm_bindgen::JsValue>;
}

/// Fills `buf` from the runtime's cryptographic random source.
pub fn random_bytes(buf: &mut [u8]) {
    get_random_values(buf);
}

/// `Retry-After` of a 503 unless a code says otherwise, seconds.
pub const RETRY_SECS: u32 = 5;

/// What went wrong while answering.
#[derive(Debug)]
pub enum EdgeError {
    /// A refusal with a code of the shared vocabulary and a message safe to show; 503s carry
    /// a `Retry-After`.
    Refused { code: ErrorCode, message: Cow<'static, str>, retry_after: Option<u32> },
    /// A bug or platform failure; the text goes to the log only, the answer is the generic
    /// `internal` one.
    Internal(String),
}

impl EdgeError {
    /// A refusal with the code's default message.
    pub fn new(code: ErrorCode) -> Self {
        EdgeError::with(code, code.message())
    }

    /// A refusal with a more specific message.
    pub fn with(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        let retry_after = (code.status() == 503).then_some(RETRY_SECS);
        EdgeError::Refused { code, message: message.into(), retry_after }
    }

    /// The same refusal asking the client to come back after `secs`.
    pub fn retry_after(self, secs: u32) -> Self {
        match self {
            EdgeError::Refused { code, message, .. } => {
                EdgeError::Refused { code, message, retry_after: Some(secs) }
            }
            other => other,
        }
    }

    /// The answer: JSON `{error, message}` with the code's status.
    pub fn into_response(self) -> Response {
        let (code, message, retry) = match self {
            EdgeError::Refused { code, message, retry_after } => (code, message, retry_after),
            EdgeError::Internal(cause) => {
                worker::console_error!("internal error: {cause}");
                (ErrorCode::Internal, Cow::Borrowed(ErrorCode::Internal.message()), None)
            }
        };
        let mut resp = json_response(code.status(), &code.body(message));
        if let Some(secs) = retry {
            let _ = resp.headers_mut().set("retry-after", &secs.to_string());
        }
        resp
    }
}

impl From<worker::Error> for EdgeError {
    fn from(e: worker::Error) -> Self {
        EdgeError::Internal(e.to_string())
    }
}

impl From<worker::KvError> for EdgeError {
    fn from(e: worker::KvError) -> Self {
        EdgeError::Internal(format!("kv: {e}"))
    }
}

/// Result of an edge step.
pub type EdgeResult<T = Response> = Result<T, EdgeError>;

/// A 400 `invalid_parameter`.
pub fn bad(message: &'static str) -> EdgeError {
    EdgeError::with(ErrorCode::InvalidParameter, message)
}

/// A JSON answer with `no-store`; never fails (falls back to an empty 500).
pub fn json_response(status: u16, body: &impl serde::Serialize) -> Response {
    json_text(status, serde_json::to_string(body).unwrap_or_default())
}

/// JSON text as an answer with `no-store`.
fn json_text(status: u16, text: String) -> Response {
    let resp = Response::builder()
        .with_status(status)
        .with_header("content-type", "application/json")
        .and_then(|b| b.with_header("cache-control", "no-store"))
        .and_then(|b| b.with_header("x-content-type-options", "nosniff"));
    match resp {
        Ok(b) => b.fixed(text.into_bytes()),
        Err(_) => Response::builder().with_status(500).empty(),
    }
}

/// A JSON answer computed from synced state, not yet a response: the router turns it into a
/// `worker::Response`, the status polls' path (`lib.rs`) straight into a `web_sys::Response`
/// with the fewest calls into JavaScript.
#[derive(Debug)]
pub struct Answer {
    status: u16,
    body: String,
    /// How old the state behind it is, ms (`x-anteroom-age-ms`).
    age_ms: u64,
}

/// The init of every `200` JSON answer, built once per isolate: status 200, a `Headers` with
/// the fixed headers, and the age header's name as a JavaScript string. `new Response` copies
/// the headers, so each answer only sets its age on the shared object first (an isolate runs
/// one piece of code at a time).
struct JsonOk {
    init: web_sys::ResponseInit,
    headers: PollHeaders,
    age_name: js_sys::JsString,
}

thread_local! {
    static JSON_OK: Option<JsonOk> = json_init(200).ok().map(|(init, headers)| JsonOk {
        init,
        headers: headers.unchecked_into(),
        age_name: js_sys::JsString::from(shared::pull::AGE_HEADER),
    });
}

fn json_init(
    status: u16,
) -> Result<(web_sys::ResponseInit, web_sys::Headers), wasm_bindgen::JsValue> {
    let h = web_sys::Headers::new()?;
    h.set("content-type", "application/json")?;
    h.set("cache-control", "no-store")?;
    h.set("x-content-type-options", "nosniff")?;
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(&h);
    Ok((init, h))
}

impl Answer {
    /// `body` as JSON with `status`, made from state `age_ms` old.
    pub fn json(status: u16, body: &impl serde::Serialize, age_ms: u64) -> Self {
        Answer { status, body: serde_json::to_string(body).unwrap_or_default(), age_ms }
    }

    /// As a `worker::Response` (the router's type).
    pub fn into_response(self) -> EdgeResult {
        let mut resp = json_text(self.status, self.body);
        resp.headers_mut().set(shared::pull::AGE_HEADER, &self.age_ms.to_string())?;
        Ok(resp)
    }

    /// As a `web_sys::Response`: for a `200`, two calls into JavaScript (the age on the
    /// isolate's template, then `new Response`) and the body the only text that crosses;
    /// other statuses build their init.
    pub fn into_web(self) -> Result<web_sys::Response, wasm_bindgen::JsValue> {
        let body = Some(self.body.as_str());
        if self.status == 200 {
            let ok = JSON_OK.with(|t| {
                t.as_ref().map(|ok| {
                    // Exact: an age is far below 2^53 ms.
                    ok.headers.set_number(&ok.age_name, self.age_ms as f64)?;
                    web_sys::Response::new_with_opt_str_and_init(body, &ok.init)
                })
            });
            if let Some(resp) = ok {
                return resp;
            }
        }
        let (init, headers) = json_init(self.status)?;
        headers.set(shared::pull::AGE_HEADER, &self.age_ms.to_string())?;
        web_sys::Response::new_with_opt_str_and_init(body, &init)
    }
}

/// A JSON body passed on as it came (the coordinator's answer), with `no-store`.
pub fn relayed(status: u16, body: Vec<u8>, retry: Option<String>) -> EdgeResult {
    let mut b = Response::builder()
        .with_status(status)
        .with_header("content-type", "application/json")?
        .with_header("cache-control", "no-store")?;
    if let Some(r) = retry {
        b = b.with_header("retry-after", &r)?;
    }
    Ok(b.fixed(body))
}

/// The request URL, split without a URL parser: `url::Url` would link the IDNA tables
/// (about 100 KB of Wasm) for nothing, since workerd hands over a serialized WHATWG URL.
pub struct ReqUrl {
    /// Whether the scheme is `https`.
    pub secure: bool,
    /// Path and query (`/a/b?c=d`), no fragment.
    pub path_and_query: String,
}

impl ReqUrl {
    /// The URL of `req`.
    pub fn of(req: &Request) -> Self {
        let url = req.inner().url();
        let secure = url.starts_with("https:");
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let path = url[after_scheme..].find('/').map_or("/", |i| &url[after_scheme + i..]);
        let path = path.split('#').next().unwrap_or("/");
        ReqUrl { secure, path_and_query: path.to_owned() }
    }

    /// `scheme://host[:port]` of the request, by string (the `url` crate's parser and its
    /// IDNA tables would add to the bundle for nothing).
    pub fn origin(url: &str) -> &str {
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let end = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
        &url[..end]
    }

    /// The path of `url` (no query, no fragment), as `worker::Request::path` gives it.
    pub fn path(url: &str) -> &str {
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let path = url[after_scheme..].find('/').map_or("/", |i| &url[after_scheme + i..]);
        path.split(['?', '#']).next().unwrap_or("/")
    }

    /// The query string, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, q)| q)
    }

    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        let q = self.query()?;
        worker::url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// Reads a request body of at most `limit` bytes: a declared `Content-Length` over it is a 413
/// before anything is read, and a body sent without one (chunked) is cut off with a 413 as soon
/// as it passes the limit, instead of being read whole first.
pub async fn read_body(req: &mut Request, limit: usize) -> EdgeResult<Vec<u8>> {
    use futures_util::StreamExt as _;
    let too_large = || EdgeError::new(ErrorCode::PayloadTooLarge);
    let declared = req.headers().get("content-length")?.and_then(|l| l.trim().parse::<u64>().ok());
    if declared.is_some_and(|l| l > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let mut stream = req.stream()?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Unix milliseconds now: `Date.now()`, one call into JavaScript. (`worker::Date::now()`
/// makes a `Date` object, reads it and drops it: four crossings of the Wasm boundary and an
/// allocation, and a `queue_pos` asks the time three times.)
pub fn now_ms() -> u64 {
    // Milliseconds since 1970 are far below 2^53: the conversion is exact.
    worker::js_sys::Date::now() as u64
}

/// Whether the client asked for JSON rather than a page.
pub fn wants_json(req: &Request) -> bool {
    let accept =
        req.headers().get("accept").ok().flatten().unwrap_or_default().to_ascii_lowercase();
    accept.contains("application/json") && !accept.contains("text/html")
}
