//! Protected paths: a valid access token is proxied to the origin; everyone else gets the
//! waiting room (HTML for browsers, JSON for apps, 403 for non-GET requests).
//!
//! Tokens are verified locally against the synced JWKS (algorithm pinned, `aud` = the queue
//! covering the path, `iss`, `exp`, `nbf`). Verified tokens are cached in the isolate until they
//! expire; the synced revocation list is checked before that cache.

use std::cell::RefCell;
use std::collections::HashMap;

use sha2::{Digest, Sha256};
use shared::path::{CanonicalPath, Cover, Patterns};
use shared::sync::EdgeQueue;
use shared::wire::QueueMode;
use shared::wire::{AssignResponse, ErrorBody, TokenResponse};
use wasm_bindgen::JsCast;
use worker::{Env, Method, Request, Response};

use crate::page::{Lang, Room, Visit, text};
use crate::store::{self, Loaded};
use crate::{Config, EdgeError, EdgeResult, json_response, now_ms};

/// Most verified tokens an isolate remembers; the cache is emptied when full.
const TOKEN_CACHE_MAX: usize = 4096;

/// What an isolate remembers of a token it checked.
enum CachedToken {
    /// It verified: what is needed to accept it again without the signature check.
    Good { aud: String, jti: String, kid: String, exp: i64 },
    /// Its signature failed: refused without another check until `until` (unix seconds), so
    /// one forged token sent over and over costs one signature check a minute, not one each.
    Forged { until: i64 },
}

/// How long a forged token is refused from the cache, seconds.
const FORGED_SECS: i64 = 60;

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

/// How long the ticket cookie lives, seconds: longer than any line; the place itself ends by
/// position expiry or when its token is issued (the cookie is then cleared).
const TICKET_COOKIE_SECS: u64 = 86_400;

/// The `Set-Cookie` value keeping a visitor's ticket for `queue_id`. The name has a `.`, which
/// no slug has, so it never collides with a token cookie (`anteroom-{slug}`).
pub fn ticket_cookie(queue_id: &str, request_id: &str, secure: bool) -> String {
    ticket_cookie_with(queue_id, request_id, TICKET_COOKIE_SECS, secure)
}

/// The `Set-Cookie` value removing the ticket cookie.
pub fn clear_ticket_cookie(queue_id: &str, secure: bool) -> String {
    ticket_cookie_with(queue_id, "", 0, secure)
}

fn ticket_cookie_with(queue_id: &str, value: &str, max_age: u64, secure: bool) -> String {
    if secure {
        format!(
            "__Host-anteroom-ticket.{queue_id}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax"
        )
    } else {
        format!(
            "anteroom-ticket.{queue_id}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
        )
    }
}

/// Values of the cookies named `base` or `__Host-{base}`.
fn cookies(req: &Request, base: &str) -> Vec<String> {
    let Some(header) = req.headers().get("cookie").ok().flatten() else { return Vec::new() };
    let host_name = format!("__Host-{base}");
    header
        .split(';')
        .filter_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == host_name || name == base).then(|| value.to_owned())
        })
        .collect()
}

/// The tokens a visitor presents for `queue_id`, each with whether it came in
/// `Authorization: Bearer` (tried first) or a cookie. All are tried, so a site's own bearer
/// tokens do not hide our cookie.
fn presented_tokens(req: &Request, queue_id: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    if let Some(auth) = req.headers().get("authorization").ok().flatten()
        && let Some(t) = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer "))
    {
        out.push((t.trim().to_owned(), true));
    }
    out.extend(cookies(req, &format!("anteroom-{queue_id}")).into_iter().map(|c| (c, false)));
    out
}

/// The ticket a visitor presents for `queue_id`: the `X-Anteroom-Ticket` header (apps), else
/// the ticket cookie.
fn presented_ticket(req: &Request, queue_id: &str) -> Option<String> {
    let header = req.headers().get("x-anteroom-ticket").ok().flatten();
    header
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| cookies(req, &format!("anteroom-ticket.{queue_id}")).into_iter().next())
}

/// Where the visitor stands in `l`'s queue by the ticket they present; a forged, foreign or
/// absent ticket is a new visitor.
pub fn visit_of(req: &Request, env: &Env, l: &Loaded) -> EdgeResult<Visit> {
    let Some(text) = presented_ticket(req, &l.state.queue.queue_id) else {
        return Ok(Visit::New);
    };
    match crate::api::open_ticket(env, &text) {
        Ok(t) => Ok(crate::api::visit(&l.state, &t, &text, now_ms() / 1000).unwrap_or(Visit::New)),
        Err(EdgeError::Client { .. }) => Ok(Visit::New),
        Err(e) => Err(e),
    }
}

/// The waiting-room page for `r`; an expired place also loses its ticket cookie.
pub fn room_response(cfg: &Config, r: &Room, status: u16, secure: bool) -> EdgeResult {
    let mut resp = crate::page::room(cfg, r, status)?;
    if matches!(r.visit, Visit::Expired) {
        resp.headers_mut().append("set-cookie", &clear_ticket_cookie(r.queue, secure))?;
    }
    Ok(resp)
}

fn lang_of(req: &Request) -> Lang {
    crate::page::lang(&req.headers().get("accept-language").ok().flatten().unwrap_or_default())
}

/// Whether `token` admits to `s`'s queue now. A token seen before is looked up in the
/// isolate's cache; a new one has its claims checked in Wasm and its signature by the
/// runtime's WebCrypto (falling back to Wasm where the runtime has no Ed25519).
async fn admits(s: &Loaded, token: &str, now_secs: i64) -> bool {
    let queue_id = s.state.queue.queue_id.as_str();
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let hit = TOKENS.with_borrow(|m| {
        m.get(&digest).and_then(|c| match c {
            CachedToken::Good { aud, jti, kid, exp } => Some(
                aud == queue_id
                    && now_secs < exp + shared::token::LEEWAY_SECS
                    && !s.revoked(jti)
                    && s.keys.contains_key(kid),
            ),
            CachedToken::Forged { until } => (now_secs < *until).then_some(false),
        })
    });
    if let Some(ok) = hit {
        return ok;
    }
    let checked = shared::token::check_claims(
        token,
        |kid| s.keys.get(kid).copied(),
        &s.state.issuer,
        queue_id,
        now_secs,
    );
    let Ok(unverified) = checked else { return false };
    let by_runtime = crate::webcrypto::ed25519_verify(
        unverified.public_key(),
        unverified.signature(),
        unverified.signed_data(),
    )
    .await;
    let verified = match by_runtime {
        Some(ok) => unverified.accept(ok),
        None => unverified.verify_signature(),
    };
    let remember = |c: CachedToken| {
        TOKENS.with_borrow_mut(|m| {
            if m.len() >= TOKEN_CACHE_MAX {
                m.clear();
            }
            m.insert(digest, c);
        })
    };
    let v = match verified {
        Ok(v) => v,
        Err(shared::token::TokenError::BadSignature) => {
            remember(CachedToken::Forged { until: now_secs + FORGED_SECS });
            return false;
        }
        Err(_) => return false,
    };
    if s.revoked(&v.claims.jti) {
        return false;
    }
    remember(CachedToken::Good { aud: v.claims.aud, jti: v.claims.jti, kid: v.kid, exp: v.exp });
    true
}

/// What of Anteroom's own a proxied request keeps. Always dropped: the `x-anteroom-*`
/// headers and every `anteroom-*` cookie (tickets, other queues' tokens); the admitting token
/// (its cookie, or `Authorization` when it came that way) reaches the origin only where the
/// queue is `forward_token` (an origin that verifies tokens itself, as the demo shop does).
#[derive(Debug, Clone, Copy, Default)]
struct Keep<'a> {
    /// Keep the token cookie of this queue.
    token_cookie_of: Option<&'a str>,
    /// Drop `Authorization` (it carried the admitting token and the queue keeps it private).
    drop_authorization: bool,
}

/// Anteroom's own request headers, never forwarded.
const OWN_HEADERS: [&str; 4] =
    ["x-anteroom-ticket", "x-anteroom-client", "x-anteroom-timestamp", "x-anteroom-signature"];

/// The `Cookie` header without Anteroom's cookies, except the kept token cookie; `None` when
/// nothing is left.
fn origin_cookies(header: &str, keep_token_of: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|c| {
            let name = c.split('=').next().unwrap_or("");
            let bare = name.strip_prefix("__Host-").unwrap_or(name);
            match bare.strip_prefix("anteroom-") {
                None => true,
                Some(rest) => keep_token_of == Some(rest),
            }
        })
        .filter(|c| !c.is_empty())
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Sends the request on to the origin (`ORIGIN_URL`, else the request's own URL, which at a
/// Cloudflare route is the origin), streaming both bodies, redirects passed back untouched,
/// without Anteroom's own headers and cookies beyond what `keep` says.
async fn proxy(req: Request, env: &Env, keep: Keep<'_>) -> EdgeResult {
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
    let headers = fwd.headers();
    let js = |e| EdgeError::Internal(format!("origin request headers: {e:?}"));
    for name in OWN_HEADERS {
        headers.delete(name).map_err(js)?;
    }
    if keep.drop_authorization {
        headers.delete("authorization").map_err(js)?;
    }
    if let Some(cookie) = headers.get("cookie").map_err(js)?
        && cookie.contains("anteroom-")
    {
        match origin_cookies(&cookie, keep.token_cookie_of) {
            Some(c) => headers.set("cookie", &c).map_err(js)?,
            None => headers.delete("cookie").map_err(js)?,
        }
    }
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

/// The queue whose `paths` cover `path` most specifically, with how it covered it.
fn queue_for<'a>(
    queues: &'a [(EdgeQueue, Patterns)],
    path: &CanonicalPath,
) -> Option<(&'a EdgeQueue, &'a Patterns, Cover)> {
    queues.iter().filter_map(|(q, p)| Some((q, p, p.covers(path)?))).max_by_key(|(_, _, c)| c.depth)
}

/// A protected path.
pub async fn protected(req: Request, env: &Env, cfg: &Config) -> EdgeResult {
    let Ok(path) = CanonicalPath::parse(&req.path()) else {
        return Err(EdgeError::client(
            400,
            "invalid_path",
            "the path cannot be read unambiguously (encoded separators, bad escapes)",
        ));
    };
    let Some(index) = store::index(env).await? else {
        // Nothing synced at all: which paths are protected is unknown.
        return if crate::var(env, "UNSYNCED_FAIL_OPEN").as_deref() == Some("true") {
            proxy(req, env, Keep::default()).await
        } else {
            unavailable(&req, cfg)
        };
    };
    let Some((queue, patterns, cover)) = queue_for(&index.matchers, &path) else {
        return proxy(req, env, Keep::default()).await;
    };
    if patterns.bypassed(&path, cover) {
        return proxy(req, env, Keep::default()).await;
    }
    match queue.mode {
        QueueMode::Passthrough => return proxy(req, env, Keep::default()).await,
        QueueMode::Closed => return closed(&req, cfg, queue),
        QueueMode::Queue => {}
    }
    let Some(s) = store::state(env, &queue.queue_id).await? else {
        return if queue.fail_open {
            proxy(req, env, Keep::default()).await
        } else {
            unavailable(&req, cfg)
        };
    };
    // The coordinator lost this queue: held as if nothing were synced, except that visitors
    // already admitted keep their sessions.
    if s.state.lost && queue.fail_open {
        return proxy(req, env, Keep::default()).await;
    }
    let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    for (token, by_authorization) in presented_tokens(&req, &queue.queue_id) {
        if admits(&s, &token, now).await {
            let forward = queue.forward_token;
            let keep = Keep {
                token_cookie_of: forward.then_some(queue.queue_id.as_str()),
                drop_authorization: by_authorization && !forward,
            };
            return proxy(req, env, keep).await;
        }
    }
    if s.state.lost {
        return unavailable(&req, cfg);
    }
    let method = req.method();
    if method != Method::Get && method != Method::Head {
        return Err(EdgeError::client(403, "token_required", "a valid access token is required"));
    }
    let status = match s.state.queue.waiting_status {
        s @ (200 | 202 | 429) => s,
        _ => 200,
    };
    let visit = visit_of(&req, env, &s)?;
    let now = now_ms() / 1000;
    let url = crate::ReqUrl::of(&req);
    let secure = url.secure;
    if wants_json(&req) {
        // The page's fields, for apps: the place when a ticket comes with the request
        // (`X-Anteroom-Ticket` or the cookie), else where to join.
        let mut body = serde_json::json!({
            "error": "queued", "message": "wait in the queue for an access token",
            "queue_id": queue.queue_id, "state": visit.name(),
            "room": format!("{}/__anteroom/room?queue_id={}", cfg.prefix, queue.queue_id),
            "join": format!("{}/assign_queue_pos", cfg.prefix),
            "serving_pos": s.state.serving_pos, "waiting_num": s.state.waiting_num,
            "version": s.state.version,
            "next_poll_ms": crate::page::next_poll_ms(None, crate::api::random_seed()),
        });
        if let (Visit::Waiting(p) | Visit::Ready(p), Some(o)) = (&visit, body.as_object_mut())
            && let serde_json::Value::Object(fields) =
                crate::api::place_json(p, s.state.version, now)
        {
            o.extend(fields);
        }
        let mut resp = json_response(status, &body);
        if matches!(visit, Visit::Expired) {
            resp.headers_mut()
                .append("set-cookie", &clear_ticket_cookie(&queue.queue_id, secure))?;
        }
        return Ok(resp);
    }
    let r = Room {
        queue: &queue.queue_id,
        return_to: &url.path_and_query,
        lang: lang_of(&req),
        state: Some(&s.state),
        visit,
        now_secs: now,
    };
    room_response(cfg, &r, status, secure)
}

/// Whether a form post comes from a page of this site: its `Origin`, when sent, is ours.
/// Stops another site from making a visitor's browser join or claim (a join would replace
/// a held place if the held one were not kept, see [`join`]).
fn same_origin(req: &Request) -> bool {
    let Some(origin) = req.headers().get("origin").ok().flatten() else { return true };
    let url = req.inner().url();
    origin != "null" && url.strip_prefix(origin.as_str()).is_some_and(|rest| rest.starts_with('/'))
}

/// `303 See Other` to a same-site path, setting `cookies`.
fn see_other(location: &str, cookies: &[String]) -> EdgeResult {
    let mut resp = Response::builder()
        .with_status(303)
        .with_header("location", crate::page::safe_return(location))?
        .with_header("cache-control", "no-store")?
        .empty();
    for c in cookies {
        resp.headers_mut().append("set-cookie", c)?;
    }
    Ok(resp)
}

/// The coordinator's refusal shown as a page (its messages are written for visitors).
fn refusal_page(
    cfg: &Config,
    lang: Lang,
    status: u16,
    body: &[u8],
    retry: Option<String>,
) -> EdgeResult {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| "the waiting room cannot take this request right now".into());
    let mut resp = crate::page::notice(cfg, text(lang, "title"), &message, status, lang)?;
    if let Some(r) = retry {
        resp.headers_mut().set("retry-after", &r)?;
    }
    Ok(resp)
}

/// The `queue_id` and `return_to` fields of a waiting-room form.
async fn room_form(req: &mut Request) -> EdgeResult<(String, String)> {
    let (_, fields) = crate::api::read_form(req).await?;
    let queue_id = crate::api::field(&fields, "queue_id")
        .ok_or_else(|| crate::api::bad("queue_id is required"))?
        .to_owned();
    let return_to =
        crate::page::safe_return(crate::api::field(&fields, "return_to").unwrap_or("/"));
    Ok((queue_id, return_to.to_owned()))
}

/// A form posted by the waiting room (join or claim): checked to come from this site, read,
/// with the queue's synced state.
struct RoomPost {
    lang: Lang,
    secure: bool,
    queue_id: String,
    return_to: String,
    state: std::rc::Rc<Loaded>,
}

impl RoomPost {
    async fn read(req: &mut Request, env: &Env) -> EdgeResult<Self> {
        if !same_origin(req) {
            return Err(EdgeError::client(
                403,
                "cross_site",
                "this form must be sent from the waiting room",
            ));
        }
        let lang = lang_of(req);
        let secure = crate::ReqUrl::of(req).secure;
        let (queue_id, return_to) = room_form(req).await?;
        let state = crate::api::queue_state(env, &queue_id).await?;
        Ok(RoomPost { lang, secure, queue_id, return_to, state })
    }
}

/// `POST {prefix}/__anteroom/join` (form `queue_id`, `return_to`): a browser without
/// JavaScript joins the line, where the queue asks no proof-of-work or waives it for them.
/// The ticket goes into the cookie and the visitor back to the page they wanted, which then
/// shows their place.
pub async fn join(mut req: Request, env: &Env, cfg: &Config) -> EdgeResult {
    let RoomPost { lang, secure, queue_id, return_to, state: s } =
        RoomPost::read(&mut req, env).await?;
    if s.state.queue.mode == QueueMode::Closed {
        return closed(&req, cfg, &s.state.queue);
    }
    if !crate::page::joins_without_js(&s.state) {
        let (title, message) = (text(lang, "nojs_refused"), text(lang, "noscript"));
        return crate::page::notice(cfg, title, message, 403, lang);
    }
    // A held place is kept: submitting twice (or a stale form) never trades it for a later one.
    if matches!(visit_of(&req, env, &s)?, Visit::Pending(_) | Visit::Waiting(_) | Visit::Ready(_)) {
        return see_other(&return_to, &[]);
    }
    let body = worker::url::form_urlencoded::Serializer::new(String::new())
        .append_pair("queue_id", &queue_id)
        .append_pair("no_js", "1")
        .finish();
    let ip = crate::api::client_ip(&req);
    let resp = crate::api::forward(env, "/assign_queue_pos", body.into_bytes(), &ip).await?;
    let (status, body, retry) = crate::api::relay(resp).await?;
    match serde_json::from_slice::<AssignResponse>(&body) {
        Ok(a) if status == 200 => {
            see_other(&return_to, &[ticket_cookie(&queue_id, &a.request_id, secure)])
        }
        _ => refusal_page(cfg, lang, status, &body, retry),
    }
}

/// `POST {prefix}/__anteroom/claim` (form `queue_id`, `return_to`): a browser without
/// JavaScript whose turn it is takes its token (cookie) and goes on to the page it wanted.
pub async fn claim(mut req: Request, env: &Env, cfg: &Config) -> EdgeResult {
    let RoomPost { lang, secure, queue_id, return_to, state: s } =
        RoomPost::read(&mut req, env).await?;
    let request_id = match visit_of(&req, env, &s)? {
        Visit::Ready(p) => p.request_id,
        Visit::Pending(t) => t,
        // Not served yet, expired or no ticket: the page says which.
        Visit::New | Visit::Waiting(_) | Visit::Expired => return see_other(&return_to, &[]),
    };
    let body = worker::url::form_urlencoded::Serializer::new(String::new())
        .append_pair("queue_id", &queue_id)
        .append_pair("request_id", &request_id)
        .finish();
    let ip = crate::api::client_ip(&req);
    let resp = crate::api::forward(env, "/generate_token", body.into_bytes(), &ip).await?;
    let (status, body, retry) = crate::api::relay(resp).await?;
    match serde_json::from_slice::<TokenResponse>(&body) {
        Ok(t) if status == 200 => see_other(
            &return_to,
            &[
                token_cookie(&queue_id, &t.access_token, t.expires_in, secure),
                clear_ticket_cookie(&queue_id, secure),
            ],
        ),
        // Not yet (the edge's state ran ahead) or expired meanwhile: the page shows it.
        _ if status == 202 || status == 410 => see_other(&return_to, &[]),
        _ => refusal_page(cfg, lang, status, &body, retry),
    }
}

fn unavailable(req: &Request, cfg: &Config) -> EdgeResult {
    let message = "the waiting room is starting; try again in a few seconds";
    if wants_json(req) || (req.method() != Method::Get && req.method() != Method::Head) {
        return Err(EdgeError::Unavailable { code: "not_synced", message, retry_after: 5 });
    }
    let mut resp = crate::page::notice(cfg, "Please wait", message, 503, Lang::En)?;
    resp.headers_mut().set("retry-after", "5")?;
    Ok(resp)
}

fn closed(req: &Request, cfg: &Config, queue: &EdgeQueue) -> EdgeResult {
    if wants_json(req) || (req.method() != Method::Get && req.method() != Method::Head) {
        return Err(EdgeError::client(
            403,
            "queue_closed",
            format!("queue {} is closed", queue.queue_id),
        ));
    }
    let lang = lang_of(req);
    crate::page::notice(cfg, text(lang, "closed"), "", 403, lang)
}

#[cfg(test)]
mod tests {
    use super::origin_cookies;

    #[test]
    fn anteroom_cookies_stay_at_the_edge_unless_the_token_is_forwarded() {
        let h = "a=1; anteroom-ticket.shop=T; __Host-anteroom-shop=J; anteroom-other=K; b=2";
        assert_eq!(origin_cookies(h, None).as_deref(), Some("a=1; b=2"));
        assert_eq!(
            origin_cookies(h, Some("shop")).as_deref(),
            Some("a=1; __Host-anteroom-shop=J; b=2")
        );
        assert_eq!(origin_cookies("anteroom-shop=J", None), None);
        assert_eq!(
            origin_cookies("xanteroom-shop=J; anteroom=1", None).as_deref(),
            Some("xanteroom-shop=J; anteroom=1")
        );
    }
}
