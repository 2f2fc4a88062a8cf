//! Protected paths: a valid access token of the path's queue is proxied to the origin;
//! everyone else gets the waiting room (HTML for browsers, JSON for apps, 403 for non-GET
//! requests). Also the waiting room's own forms for browsers without JavaScript (join, claim).

use shared::error::ErrorCode;
use shared::path::{CanonicalPath, Cover, Patterns};
use shared::sync::EdgeQueue;
use shared::wire::{AssignResponse, ErrorBody, QueueMode, QueuedAnswer, TokenResponse};
use wasm_bindgen::JsCast;
use worker::{Method, Request, Response};

use crate::context::Ctx;
use crate::forms::{self, clear_ticket_cookie, ticket_cookie, token_cookie};
use crate::http::{EdgeError, EdgeResult, ReqUrl, json_response, now_ms, wants_json};
use crate::page::{Lang, Room, text};
use crate::store::Loaded;
use crate::visit::{Visit, next_poll_ms, visit_of};

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

/// Sends the request on to the origin (`ORIGIN_URL`, else the request's own URL, which at a
/// Cloudflare route is the origin), streaming both bodies, redirects passed back untouched,
/// without Anteroom's own headers and cookies beyond what `keep` says.
async fn proxy(ctx: &Ctx, req: Request, keep: Keep<'_>) -> EdgeResult {
    let target = match &ctx.origin_url {
        Some(origin) => {
            format!("{}{}", origin.trim_end_matches('/'), ReqUrl::of(&req).path_and_query)
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
    for name in forms::OWN_HEADERS {
        headers.delete(name).map_err(js)?;
    }
    if keep.drop_authorization {
        headers.delete("authorization").map_err(js)?;
    }
    if let Some(cookie) = headers.get("cookie").map_err(js)?
        && cookie.contains("anteroom-")
    {
        match forms::origin_cookies(&cookie, keep.token_cookie_of) {
            Some(c) => headers.set("cookie", &c).map_err(js)?,
            None => headers.delete("cookie").map_err(js)?,
        }
    }
    match worker::Fetch::Request(fwd.into()).send().await {
        Ok(resp) => Ok(resp),
        Err(e) => {
            worker::console_error!("origin unreachable: {e}");
            Err(EdgeError::new(ErrorCode::BadGateway))
        }
    }
}

fn lang_of(req: &Request) -> Lang {
    crate::page::lang(&req.headers().get("accept-language").ok().flatten().unwrap_or_default())
}

/// The queue whose `paths` cover `path` most specifically, with how it covered it.
fn queue_for<'a>(
    queues: &'a [(EdgeQueue, Patterns)],
    path: &CanonicalPath,
) -> Option<(&'a EdgeQueue, &'a Patterns, Cover)> {
    queues.iter().filter_map(|(q, p)| Some((q, p, p.covers(path)?))).max_by_key(|(_, _, c)| c.depth)
}

/// The waiting-room page for `r`; an expired place also loses its ticket cookie.
pub fn room_response(ctx: &Ctx, r: &Room, status: u16, secure: bool) -> EdgeResult {
    let mut resp = ctx.pages.room(r, status)?;
    if matches!(r.visit, Visit::Expired) {
        resp.headers_mut().append("set-cookie", &clear_ticket_cookie(r.queue, secure))?;
    }
    Ok(resp)
}

/// A protected path.
pub async fn protected(ctx: &Ctx, req: Request) -> EdgeResult {
    let Ok(path) = CanonicalPath::parse(&req.path()) else {
        return Err(EdgeError::new(ErrorCode::InvalidPath));
    };
    let Some(index) = ctx.synced.index().await? else {
        // Nothing synced at all: which paths are protected is unknown.
        return if ctx.unsynced_fail_open {
            proxy(ctx, req, Keep::default()).await
        } else {
            unavailable(ctx, &req)
        };
    };
    let Some((queue, patterns, cover)) = queue_for(&index.matchers, &path) else {
        return proxy(ctx, req, Keep::default()).await;
    };
    if patterns.bypassed(&path, cover) {
        return proxy(ctx, req, Keep::default()).await;
    }
    match queue.mode {
        QueueMode::Passthrough => return proxy(ctx, req, Keep::default()).await,
        QueueMode::Closed => return closed(ctx, &req, queue),
        QueueMode::Queue => {}
    }
    let Some(s) = ctx.synced.state(&queue.queue_id).await? else {
        return if queue.fail_open {
            proxy(ctx, req, Keep::default()).await
        } else {
            unavailable(ctx, &req)
        };
    };
    // The coordinator lost this queue: held as if nothing were synced, except that visitors
    // already admitted keep their sessions.
    if s.state.lost && queue.fail_open {
        return proxy(ctx, req, Keep::default()).await;
    }
    let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    for (token, by_authorization) in forms::presented_tokens(&req, &queue.queue_id) {
        if ctx.tokens.admits(&ctx.crypto, &s, &token, now).await {
            let forward = queue.forward_token;
            let keep = Keep {
                token_cookie_of: forward.then_some(queue.queue_id.as_str()),
                drop_authorization: by_authorization && !forward,
            };
            return proxy(ctx, req, keep).await;
        }
    }
    if s.state.lost {
        return unavailable(ctx, &req);
    }
    let method = req.method();
    if method != Method::Get && method != Method::Head {
        return Err(EdgeError::new(ErrorCode::TokenRequired));
    }
    let status = match s.state.queue.waiting_status {
        s @ (200 | 202 | 429) => s,
        _ => 200,
    };
    let visit = visit_of(&req, ctx.ticket_keys()?, &s);
    let now = now_ms() / 1000;
    let url = ReqUrl::of(&req);
    let secure = url.secure;
    if wants_json(&req) {
        let mut resp = json_response(status, &queued_answer(ctx, &s, &visit, now));
        if matches!(visit, Visit::Expired) {
            resp.headers_mut()
                .append("set-cookie", &clear_ticket_cookie(&queue.queue_id, secure))?;
        }
        return s.stamp(resp);
    }
    let r = Room {
        queue: &queue.queue_id,
        return_to: &url.path_and_query,
        lang: lang_of(&req),
        state: Some(&s.state),
        visit,
        now_secs: now,
    };
    s.stamp(room_response(ctx, &r, status, secure)?)
}

/// The page's fields, for apps: the place when a ticket comes with the request
/// (`X-Anteroom-Ticket` or the cookie), else where to join.
fn queued_answer(ctx: &Ctx, s: &Loaded, visit: &Visit, now: u64) -> QueuedAnswer {
    let queue_id = &s.state.queue.queue_id;
    let place = visit.place();
    QueuedAnswer {
        error: "queued".into(),
        message: "wait in the queue for an access token".into(),
        queue_id: queue_id.clone(),
        state: visit.name().into(),
        room: format!("{}/__anteroom/room?queue_id={queue_id}", ctx.prefix),
        join: format!("{}/assign_queue_pos", ctx.prefix),
        serving_pos: s.state.serving_pos,
        waiting_num: s.state.waiting_num,
        version: s.state.version,
        next_poll_ms: place
            .map_or_else(|| next_poll_ms(None, ctx.jitter.next()), |p| p.next_poll_ms),
        place: place.map(|p| p.fields(now)),
        shown: s.state.presentation.clone(),
    }
}

/// The coordinator's refusal shown as a page (its messages are written for visitors).
fn refusal_page(ctx: &Ctx, lang: Lang, answer: &crate::coordinator::Relayed) -> EdgeResult {
    let message = serde_json::from_slice::<ErrorBody>(&answer.body)
        .map(|e| e.message)
        .unwrap_or_else(|_| "the waiting room cannot take this request right now".into());
    let mut resp = ctx.pages.notice(text(lang, "title"), &message, answer.status, lang)?;
    if let Some(r) = &answer.retry {
        resp.headers_mut().set("retry-after", r)?;
    }
    Ok(resp)
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
    async fn read(ctx: &Ctx, req: &mut Request) -> EdgeResult<Self> {
        if !forms::same_origin(req) {
            return Err(EdgeError::new(ErrorCode::CrossSite));
        }
        let lang = lang_of(req);
        let secure = ReqUrl::of(req).secure;
        let (_, fields) = forms::read_form(req).await?;
        let queue_id = forms::field(&fields, "queue_id")
            .ok_or_else(|| crate::http::bad("queue_id is required"))?
            .to_owned();
        let return_to =
            forms::safe_return(forms::field(&fields, "return_to").unwrap_or("/")).to_owned();
        let state = ctx.synced.queue_state(&queue_id).await?;
        Ok(RoomPost { lang, secure, queue_id, return_to, state })
    }
}

/// `POST {prefix}/__anteroom/join` (form `queue_id`, `return_to`): a browser without
/// JavaScript joins the line, where the queue asks no proof-of-work or waives it for them.
/// The ticket goes into the cookie and the visitor back to the page they wanted, which then
/// shows their place.
pub async fn join(ctx: &Ctx, mut req: Request) -> EdgeResult {
    let RoomPost { lang, secure, queue_id, return_to, state: s } =
        RoomPost::read(ctx, &mut req).await?;
    if s.state.queue.mode == QueueMode::Closed {
        return closed(ctx, &req, &s.state.queue);
    }
    if !crate::page::joins_without_js(&s.state) {
        let (title, message) = (text(lang, "nojs_refused"), text(lang, "noscript"));
        return ctx.pages.notice(title, message, 403, lang);
    }
    // A held place is kept: submitting twice (or a stale form) never trades it for a later one.
    let visit = visit_of(&req, ctx.ticket_keys()?, &s);
    if matches!(visit, Visit::Pending(_) | Visit::Waiting(_) | Visit::Ready(_)) {
        return forms::see_other(&return_to, &[]);
    }
    let body = worker::url::form_urlencoded::Serializer::new(String::new())
        .append_pair("queue_id", &queue_id)
        .append_pair("no_js", "1")
        .finish();
    let ip = forms::client_ip(&req);
    let answer = ctx.coordinator.forward("/assign_queue_pos", body.into_bytes(), &ip).await?;
    match serde_json::from_slice::<AssignResponse>(&answer.body) {
        Ok(a) if answer.status == 200 => {
            forms::see_other(&return_to, &[ticket_cookie(&queue_id, &a.request_id, secure)])
        }
        _ => refusal_page(ctx, lang, &answer),
    }
}

/// `POST {prefix}/__anteroom/claim` (form `queue_id`, `return_to`): a browser without
/// JavaScript whose turn it is takes its token (cookie) and goes on to the page it wanted.
pub async fn claim(ctx: &Ctx, mut req: Request) -> EdgeResult {
    let RoomPost { lang, secure, queue_id, return_to, state: s } =
        RoomPost::read(ctx, &mut req).await?;
    let request_id = match visit_of(&req, ctx.ticket_keys()?, &s) {
        Visit::Ready(p) => p.request_id,
        Visit::Pending(t) => t,
        // Not served yet, expired or no ticket: the page says which.
        Visit::New | Visit::Waiting(_) | Visit::Expired => {
            return forms::see_other(&return_to, &[]);
        }
    };
    let body = worker::url::form_urlencoded::Serializer::new(String::new())
        .append_pair("queue_id", &queue_id)
        .append_pair("request_id", &request_id)
        .finish();
    let ip = forms::client_ip(&req);
    let answer = ctx.coordinator.forward("/generate_token", body.into_bytes(), &ip).await?;
    match serde_json::from_slice::<TokenResponse>(&answer.body) {
        Ok(t) if answer.status == 200 => forms::see_other(
            &return_to,
            &[
                token_cookie(&queue_id, &t.access_token, t.expires_in, secure),
                clear_ticket_cookie(&queue_id, secure),
            ],
        ),
        // Not yet (the edge's state ran ahead) or expired meanwhile: the page shows it.
        _ if answer.status == 202 || answer.status == 410 => forms::see_other(&return_to, &[]),
        _ => refusal_page(ctx, lang, &answer),
    }
}

fn unavailable(ctx: &Ctx, req: &Request) -> EdgeResult {
    let message = "the waiting room is starting; try again in a few seconds";
    if wants_json(req) || (req.method() != Method::Get && req.method() != Method::Head) {
        return Err(EdgeError::with(ErrorCode::NotSynced, message));
    }
    let mut resp = ctx.pages.notice("Please wait", message, 503, Lang::En)?;
    resp.headers_mut().set("retry-after", &crate::http::RETRY_SECS.to_string())?;
    Ok(resp)
}

fn closed(ctx: &Ctx, req: &Request, queue: &EdgeQueue) -> EdgeResult<Response> {
    if wants_json(req) || (req.method() != Method::Get && req.method() != Method::Head) {
        return Err(EdgeError::with(
            ErrorCode::QueueClosed,
            format!("queue {} is closed", queue.queue_id),
        ));
    }
    let lang = lang_of(req);
    ctx.pages.notice(text(lang, "closed"), "", 403, lang)
}
