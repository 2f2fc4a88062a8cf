//! Anteroom's edge worker: the Cloudflare Worker in front of the protected origin.
//!
//! A thin shell over `shared`: it routes, reads and writes KV, and calls `fetch`. Status polls,
//! ticket and token checks and proof-of-work are answered here from the state the coordinator
//! publishes (`store`), so almost nothing reaches the coordinator or the origin.
//!
//! Routes, under the `PREFIX` var (default `/anteroom`; empty gives the seed's exact paths):
//! `POST /assign_queue_pos`, `GET /queue_pos/{q}/{r}`, `GET /serving_pos/{q}`,
//! `GET /waiting_num/{q}`, `POST /generate_token` (`api`), `GET /pow/challenge`,
//! `POST /__anteroom/sync` (`store`), `GET /__anteroom/room` and `/__anteroom/assets/*`
//! (`page`), `POST /__anteroom/join` and `/__anteroom/claim` (the forms of the page without
//! JavaScript, `gate`). Every other path is a protected path (`gate`).

mod api;
mod gate;
mod page;
mod store;
mod webcrypto;

use shared::wire::ErrorBody;
use worker::{Context, Env, Method, Request, Response, event};

/// Default route prefix when the `PREFIX` var is absent.
const DEFAULT_PREFIX: &str = "/anteroom";

/// What went wrong while answering. Client errors carry a safe message; internal errors are
/// logged and answered with a generic 500 whose body never shows their text.
#[derive(Debug)]
pub(crate) enum EdgeError {
    /// A 4xx with a stable code and a message safe to show.
    Client { status: u16, code: &'static str, message: String },
    /// A dependency (coordinator, synced state) is missing for now: 503 + `Retry-After`.
    Unavailable { code: &'static str, message: &'static str, retry_after: u32 },
    /// A bug or platform failure; the text goes to the log only.
    Internal(String),
}

impl EdgeError {
    pub(crate) fn client(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        EdgeError::Client { status, code, message: message.into() }
    }

    fn into_response(self) -> Response {
        let (status, body, retry) = match self {
            EdgeError::Client { status, code, message } => {
                (status, ErrorBody { error: code.into(), message }, None)
            }
            EdgeError::Unavailable { code, message, retry_after } => {
                (503, ErrorBody { error: code.into(), message: message.into() }, Some(retry_after))
            }
            EdgeError::Internal(cause) => {
                worker::console_error!("internal error: {cause}");
                let body = ErrorBody {
                    error: "internal_error".into(),
                    message: "the waiting room could not answer this request".into(),
                };
                (500, body, None)
            }
        };
        let mut resp = json_response(status, &body);
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

pub(crate) type EdgeResult<T = Response> = Result<T, EdgeError>;

/// A JSON answer with `no-store`; never fails (falls back to an empty 500).
pub(crate) fn json_response(status: u16, body: &impl serde::Serialize) -> Response {
    let text = serde_json::to_string(body).unwrap_or_default();
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

/// The request URL, split without a URL parser: `url::Url` would link the IDNA tables
/// (about 100 KB of Wasm) for nothing, since workerd hands over a serialized WHATWG URL.
pub(crate) struct ReqUrl {
    /// Whether the scheme is `https`.
    pub secure: bool,
    /// Path and query (`/a/b?c=d`), no fragment.
    pub path_and_query: String,
}

impl ReqUrl {
    pub(crate) fn of(req: &Request) -> Self {
        let url = req.inner().url();
        let secure = url.starts_with("https:");
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let path = url[after_scheme..].find('/').map_or("/", |i| &url[after_scheme + i..]);
        let path = path.split('#').next().unwrap_or("/");
        ReqUrl { secure, path_and_query: path.to_owned() }
    }

    /// The query string, without `?`.
    pub(crate) fn query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, q)| q)
    }

    /// The first value of query parameter `name`.
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        let q = self.query()?;
        worker::url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// Reads a request body of at most `limit` bytes: a declared `Content-Length` over it is a 413
/// before anything is read, and a body sent without one (chunked) is cut off with a 413 as soon
/// as it passes the limit, instead of being read whole first.
pub(crate) async fn read_body(req: &mut Request, limit: usize) -> EdgeResult<Vec<u8>> {
    use futures_util::StreamExt as _;
    let too_large = || EdgeError::client(413, "payload_too_large", "request body is too large");
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

/// Unix milliseconds now.
pub(crate) fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// Deployment settings read from vars and secrets (cheap to read per request).
pub(crate) struct Config {
    /// Route prefix, without a trailing `/`; may be empty.
    pub prefix: String,
}

impl Config {
    fn from_env(env: &Env) -> Self {
        // Not `var`: an empty PREFIX is meaningful (the contract's exact paths).
        let prefix =
            env.var("PREFIX").map_or_else(|_| DEFAULT_PREFIX.to_owned(), |v| v.to_string());
        Config { prefix: prefix.trim_end_matches('/').to_owned() }
    }
}

/// A var or secret, `None` when absent or empty.
pub(crate) fn var(env: &Env, name: &str) -> Option<String> {
    let v =
        env.var(name).map(|v| v.to_string()).or_else(|_| env.secret(name).map(|s| s.to_string()));
    v.ok().filter(|s| !s.trim().is_empty())
}

/// The 32-byte `EDGE_KEY` secret (64 hex characters).
pub(crate) fn edge_key(env: &Env) -> EdgeResult<[u8; 32]> {
    let text =
        var(env, "EDGE_KEY").ok_or_else(|| EdgeError::Internal("EDGE_KEY is not set".into()))?;
    let text = text.trim();
    let mut key = [0u8; 32];
    if text.len() != 64 {
        return Err(EdgeError::Internal("EDGE_KEY must be 64 hex characters".into()));
    }
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .map_err(|_| EdgeError::Internal("EDGE_KEY must be 64 hex characters".into()))?;
    }
    Ok(key)
}

/// One-time setup when the isolate loads the module.
#[event(start)]
fn start() {
    page::init();
}

thread_local! {
    /// The deployment settings, read once per isolate (vars do not change within one).
    static CONFIG: std::cell::RefCell<Option<std::rc::Rc<Config>>> =
        const { std::cell::RefCell::new(None) };
}

/// Entry point for every request the worker's route covers.
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let cfg = CONFIG.with_borrow_mut(|c| {
        c.get_or_insert_with(|| std::rc::Rc::new(Config::from_env(&env))).clone()
    });
    Ok(match route(req, &env, &cfg).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    })
}

async fn route(req: Request, env: &Env, cfg: &Config) -> EdgeResult {
    let path = req.path();
    let Some(rest) = path.strip_prefix(cfg.prefix.as_str()).filter(|r| r.starts_with('/')) else {
        return gate::protected(req, env, cfg).await;
    };
    let method = req.method();
    let segments: Vec<&str> = rest[1..].split('/').collect();
    let allow = |want: Method| -> EdgeResult<()> {
        if method == want || (want == Method::Get && method == Method::Head) {
            Ok(())
        } else {
            Err(EdgeError::client(405, "method_not_allowed", format!("use {want}")))
        }
    };
    match segments.as_slice() {
        ["assign_queue_pos"] => {
            allow(Method::Post)?;
            api::assign_queue_pos(req, env).await
        }
        ["generate_token"] => {
            allow(Method::Post)?;
            api::generate_token(req, env).await
        }
        ["queue_pos", q, r] => {
            allow(Method::Get)?;
            api::queue_pos(env, q, r).await
        }
        ["serving_pos", q] => {
            allow(Method::Get)?;
            api::serving_pos(env, q).await
        }
        ["waiting_num", q] => {
            allow(Method::Get)?;
            api::waiting_num(env, q).await
        }
        ["pow", "challenge"] => {
            allow(Method::Get)?;
            api::challenge(&req, env).await
        }
        ["__anteroom", "sync"] => {
            allow(Method::Post)?;
            store::sync(req, env).await
        }
        ["__anteroom", "room"] => {
            allow(Method::Get)?;
            page::room_page(&req, env, cfg).await
        }
        ["__anteroom", "join"] => {
            allow(Method::Post)?;
            gate::join(req, env, cfg).await
        }
        ["__anteroom", "claim"] => {
            allow(Method::Post)?;
            gate::claim(req, env, cfg).await
        }
        ["__anteroom", "assets", name] => {
            allow(Method::Get)?;
            page::asset(name)
        }
        // With an empty prefix every other path belongs to the protected site.
        _ if cfg.prefix.is_empty() => gate::protected(req, env, cfg).await,
        _ => Err(EdgeError::client(404, "not_found", "no such waiting-room route")),
    }
}
