//! Protected paths: a valid access token is proxied to the origin; everyone else gets the
//! waiting room (HTML for browsers, JSON for apps, 403 for non-GET requests).
//!
//! Tokens are verified locally against the synced JWKS (algorithm pinned, `aud` = the queue
//! covering the path, `iss`, `exp`, `nbf`). Verified tokens are cached in the isolate until they
//! expire; the synced revocation list is checked before that cache.

use std::cell::RefCell;
use std::collections::HashMap;

use sha2::{Digest, Sha256};
use shared::sync::{EdgeQueue, EdgeState, QueueMode};
use wasm_bindgen::JsCast;
use worker::{Env, Method, Request};

use crate::store::{self, Loaded};
use crate::{Config, EdgeError, EdgeResult, json_response, now_ms};

/// Most verified tokens an isolate remembers; the cache is emptied when full.
const TOKEN_CACHE_MAX: usize = 4096;

/// A token that verified: what is needed to accept it again without the signature check.
struct CachedToken {
    aud: String,
    jti: String,
    kid: String,
    exp: i64,
}

thread_local! {
    /// Keyed by SHA-256 of the token text.
    static TOKENS: RefCell<HashMap<[u8; 32], CachedToken>> = RefCell::new(HashMap::new());
}

/// The `Set-Cookie` value for a queue's token. `__Host-` and `Secure` only over https (a
/// browser refuses both on a plain-http dev host).
pub fn token_cookie(queue_id: &str, token: &str, max_age: u64, secure: bool) -> String {
    if secure {
        format!(
            "__Host-anteroom-{queue_id}={token}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax"
        )
    } else {
        format!("anteroom-{queue_id}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax")
    }
}

/// The tokens a visitor presents for `queue_id`: `Authorization: Bearer` first, then the
/// queue's cookies. All are tried, so a site's own bearer tokens do not hide our cookie.
fn presented_tokens(req: &Request, queue_id: &str) -> Vec<String> {
    let h = req.headers();
    let mut out = Vec::new();
    if let Some(auth) = h.get("authorization").ok().flatten()
        && let Some(t) = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer "))
    {
        out.push(t.trim().to_owned());
    }
    if let Some(cookies) = h.get("cookie").ok().flatten() {
        let host_name = format!("__Host-anteroom-{queue_id}");
        let dev_name = format!("anteroom-{queue_id}");
        out.extend(cookies.split(';').filter_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == host_name || name == dev_name).then(|| value.to_owned())
        }));
    }
    out
}

/// Whether `token` admits to `s`'s queue now.
fn admits(s: &Loaded, token: &str, now_secs: i64) -> bool {
    let queue_id = s.state.queue.queue_id.as_str();
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let hit = TOKENS.with_borrow(|m| {
        m.get(&digest).map(|c| {
            c.aud == queue_id
                && now_secs < c.exp + shared::token::LEEWAY_SECS
                && !s.revoked.contains(&c.jti)
                && s.keys.contains_key(&c.kid)
        })
    });
    if let Some(ok) = hit {
        return ok;
    }
    let verified = shared::token::verify(
        token,
        |kid| s.keys.get(kid).copied(),
        &s.state.issuer,
        queue_id,
        now_secs,
    );
    let Ok(v) = verified else { return false };
    if s.revoked.contains(&v.claims.jti) {
        return false;
    }
    TOKENS.with_borrow_mut(|m| {
        if m.len() >= TOKEN_CACHE_MAX {
            m.clear();
        }
        m.insert(
            digest,
            CachedToken { aud: v.claims.aud, jti: v.claims.jti, kid: v.kid, exp: v.exp },
        );
    });
    true
}

/// Sends the request on to the origin (`ORIGIN_URL`, else the request's own URL, which at a
/// Cloudflare route is the origin), streaming both bodies, redirects passed back untouched.
async fn proxy(req: Request, env: &Env) -> EdgeResult {
    let target = match crate::var(env, "ORIGIN_URL") {
        Some(origin) => {
            format!("{}{}", origin.trim_end_matches('/'), crate::ReqUrl::of(&req).path_and_query)
        }
        None => req.inner().url(),
    };
    // `new Request(url, request)`: same method, headers, body stream and redirect mode.
    let inner = req.inner();
    let init: &worker::web_sys::RequestInit = inner.unchecked_ref();
    let fwd = worker::web_sys::Request::new_with_str_and_init(&target, init)
        .map_err(|e| EdgeError::Internal(format!("building origin request: {e:?}")))?;
    match worker::Fetch::Request(fwd.into()).send().await {
        Ok(resp) => Ok(resp),
        Err(e) => {
            worker::console_error!("origin unreachable: {e}");
            Err(EdgeError::client(502, "bad_gateway", "the site could not be reached"))
        }
    }
}

fn wants_json(req: &Request) -> bool {
    let accept =
        req.headers().get("accept").ok().flatten().unwrap_or_default().to_ascii_lowercase();
    accept.contains("application/json") && !accept.contains("text/html")
}

/// The queue whose `paths` cover `path` most specifically.
fn queue_for<'a>(queues: &'a [EdgeQueue], path: &str) -> Option<&'a EdgeQueue> {
    queues
        .iter()
        .filter_map(|q| Some((EdgeState::covers(q, path)?, q)))
        .max_by_key(|(l, _)| *l)
        .map(|(_, q)| q)
}

/// A protected path.
pub async fn protected(req: Request, env: &Env, cfg: &Config) -> EdgeResult {
    let path = req.path();
    let Some(index) = store::index(env).await? else {
        // Nothing synced at all: which paths are protected is unknown.
        return if crate::var(env, "UNSYNCED_FAIL_OPEN").as_deref() == Some("true") {
            proxy(req, env).await
        } else {
            unavailable(&req, cfg)
        };
    };
    let Some(queue) = queue_for(&index.queues, &path) else { return proxy(req, env).await };
    if EdgeState::bypassed(queue, &path) {
        return proxy(req, env).await;
    }
    match queue.mode {
        QueueMode::Passthrough => return proxy(req, env).await,
        QueueMode::Closed => return closed(&req, cfg, queue),
        QueueMode::Queue => {}
    }
    let Some(s) = store::state(env, &queue.queue_id).await? else {
        return if queue.fail_open { proxy(req, env).await } else { unavailable(&req, cfg) };
    };
    let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    if presented_tokens(&req, &queue.queue_id).iter().any(|t| admits(&s, t, now)) {
        return proxy(req, env).await;
    }
    let method = req.method();
    if method != Method::Get && method != Method::Head {
        return Err(EdgeError::client(403, "token_required", "a valid access token is required"));
    }
    let status = match s.state.queue.waiting_status {
        s @ (200 | 202 | 429) => s,
        _ => 200,
    };
    if wants_json(&req) {
        let body = serde_json::json!({
            "error": "queued", "message": "wait in the queue for an access token",
            "queue_id": queue.queue_id,
            "room": format!("{}/__anteroom/room?queue_id={}", cfg.prefix, queue.queue_id),
            "serving_pos": s.state.serving_pos, "waiting_num": s.state.waiting_num,
            "version": s.state.version,
        });
        return Ok(json_response(status, &body));
    }
    let return_to = crate::ReqUrl::of(&req).path_and_query;
    let accept = req.headers().get("accept-language").ok().flatten().unwrap_or_default();
    crate::page::room_in(cfg, &queue.queue_id, &return_to, status, crate::page::lang(&accept))
}

fn unavailable(req: &Request, cfg: &Config) -> EdgeResult {
    let message = "the waiting room is starting; try again in a few seconds";
    if wants_json(req) || (req.method() != Method::Get && req.method() != Method::Head) {
        return Err(EdgeError::Unavailable { code: "not_synced", message, retry_after: 5 });
    }
    let mut resp = crate::page::notice(cfg, "Please wait", message, 503)?;
    resp.headers_mut().set("retry-after", "5")?;
    Ok(resp)
}

fn closed(req: &Request, cfg: &Config, queue: &EdgeQueue) -> EdgeResult {
    let message = "this waiting room is closed";
    if wants_json(req) || (req.method() != Method::Get && req.method() != Method::Head) {
        return Err(EdgeError::client(
            403,
            "queue_closed",
            format!("queue {} is closed", queue.queue_id),
        ));
    }
    crate::page::notice(cfg, "Closed", message, 403)
}
