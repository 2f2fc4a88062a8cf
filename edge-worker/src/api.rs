//! The public queue API at the edge: status answered from synced state, enqueue and token
//! claims forwarded to the coordinator only when the edge cannot answer itself.

use shared::pow::{self, PowError};
use shared::sync::EdgeState;
use shared::sync::{CLIENT_HEADER, TicketStanding};
use shared::ticket::{Ticket, TicketKey};
use shared::wire::{AssignResponse, TokenResponse};
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{AbortSignal, Env, Fetch, Headers, Method, Request, RequestInit, Response};

use crate::page::{Place, Visit};
use crate::store::{self, Loaded};
use crate::{EdgeError, EdgeResult, json_response, now_ms};

/// Largest form body accepted on `assign_queue_pos` and `generate_token`.
const MAX_FORM: usize = 4096;
/// Life of a proof-of-work challenge, seconds.
const CHALLENGE_SECS: u32 = 120;
/// How long the edge waits for the coordinator, milliseconds.
const COORDINATOR_TIMEOUT_MS: u32 = 10_000;
/// `Retry-After` when the coordinator is unreachable or state is not synced yet, seconds.
const RETRY_SECS: u32 = 5;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);

    #[wasm_bindgen(js_namespace = AbortSignal, js_name = timeout)]
    fn abort_signal_timeout(ms: u32) -> worker::web_sys::AbortSignal;
}

thread_local! {
    /// State of the jitter generator (xorshift32), seeded once per isolate from the worker's
    /// random source: a `crypto.getRandomValues` call per poll cost a JavaScript round trip
    /// for a number that only spreads polls out. 0 = not seeded yet.
    static JITTER: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// `TICKET_KEYS`, parsed once per isolate (the env does not change within one).
    static TICKET_KEYS_PARSED: std::cell::RefCell<Option<std::rc::Rc<Vec<TicketKey>>>> =
        const { std::cell::RefCell::new(None) };
}

/// A jitter seed for answers that name no visitor (not for anything secret).
pub(crate) fn random_seed() -> u32 {
    JITTER.with(|j| {
        let mut x = j.get();
        while x == 0 {
            let mut b = [0u8; 4];
            get_random_values(&mut b);
            x = u32::from_le_bytes(b);
        }
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        j.set(x);
        x
    })
}

pub(crate) fn bad(message: &str) -> EdgeError {
    EdgeError::client(400, "invalid_parameter", message)
}

/// The visitor's IP as Cloudflare reports it (never spoofable at a Cloudflare PoP).
pub fn client_ip(req: &Request) -> String {
    req.headers().get("cf-connecting-ip").ok().flatten().unwrap_or_default()
}

/// State of a queue named by a public request: 400 unknown, 503 known but not synced.
pub(crate) async fn queue_state(env: &Env, queue_id: &str) -> EdgeResult<std::rc::Rc<Loaded>> {
    // Only slugs the index knows are looked up: a made-up slug costs no KV read and no entry
    // in the isolate's state cache (which would otherwise grow with every slug tried).
    let known =
        store::valid_slug(queue_id) && store::index(env).await?.is_some_and(|i| i.knows(queue_id));
    if !known {
        return Err(bad("queue_id is not a valid queue"));
    }
    if let Some(s) = store::state(env, queue_id).await? {
        if s.state.lost {
            return Err(EdgeError::Unavailable {
                code: "queue_lost",
                message: "this queue is unavailable; the operator has been alerted",
                retry_after: RETRY_SECS,
            });
        }
        return Ok(s);
    }
    Err(EdgeError::Unavailable {
        code: "not_synced",
        message: "the waiting room has no state for this queue yet",
        retry_after: RETRY_SECS,
    })
}

fn ticket_keys(env: &Env) -> EdgeResult<std::rc::Rc<Vec<TicketKey>>> {
    if let Some(keys) = TICKET_KEYS_PARSED.with_borrow(Clone::clone) {
        return Ok(keys);
    }
    let text = crate::var(env, "TICKET_KEYS")
        .ok_or_else(|| EdgeError::Internal("TICKET_KEYS is not set".into()))?;
    let keys = std::rc::Rc::new(
        shared::ticket::parse_keys(&text)
            .map_err(|e| EdgeError::Internal(format!("TICKET_KEYS: {e}")))?,
    );
    TICKET_KEYS_PARSED.with_borrow_mut(|k| *k = Some(keys.clone()));
    Ok(keys)
}

pub(crate) fn open_ticket(env: &Env, text: &str) -> EdgeResult<Ticket> {
    let keys = ticket_keys(env)?;
    Ticket::open(text, |id| keys.iter().find(|k| k.id == id)).map_err(|e| bad(&e.to_string()))
}

fn with_version(mut body: serde_json::Value, version: u64) -> serde_json::Value {
    if let Some(o) = body.as_object_mut() {
        o.insert("version".into(), version.into());
    }
    body
}

/// Where the holder of `request_id` stands in `s`'s queue at `now_secs`; `Err` for a
/// ticket that is not theirs to show (bad seal, another queue).
pub(crate) fn visit(
    s: &EdgeState,
    ticket: &Ticket,
    request_id: &str,
    now_secs: u64,
) -> Result<Visit, EdgeError> {
    let place = |ready: bool| {
        let position = s.place_of(ticket).unwrap_or(ticket.position);
        let ahead = position.saturating_sub(s.serving_pos);
        Place {
            request_id: request_id.to_owned(),
            position,
            ahead,
            eta: s.admission.as_ref().and_then(|e| shared::eta::eta(e, ahead)),
            claim_by: if ready { s.claim_by(ticket) } else { None },
            next_poll_ms: crate::page::next_poll_ms(
                Some(ahead),
                crate::page::visitor_seed(request_id),
            ),
        }
    };
    Ok(match s.standing(ticket, now_secs) {
        TicketStanding::Foreign => return Err(bad("request_id does not belong to this queue")),
        TicketStanding::NotDecided => Visit::Pending(request_id.to_owned()),
        TicketStanding::Expired => Visit::Expired,
        TicketStanding::Waiting => Visit::Waiting(place(false)),
        TicketStanding::Ready => Visit::Ready(place(true)),
    })
}

/// The status fields of a place (queue_pos, and JSON answers on protected paths).
pub(crate) fn place_json(p: &Place, version: u64, now_secs: u64) -> serde_json::Value {
    serde_json::json!({
        "position": p.position, "ahead": p.ahead, "eta": p.eta, "version": version,
        "next_poll_ms": p.next_poll_ms, "claim_by": p.claim_by,
        "claim_in_secs": p.claim_by.map(|c| c.saturating_sub(now_secs)),
    })
}

/// `GET {prefix}/queue_pos/{queue_id}/{request_id}`, answered from the ticket and synced state.
pub async fn queue_pos(env: &Env, queue_id: &str, request_id: &str) -> EdgeResult {
    let s = queue_state(env, queue_id).await?;
    let ticket = open_ticket(env, request_id)?;
    let now = now_ms() / 1000;
    match visit(&s.state, &ticket, request_id, now)? {
        Visit::New | Visit::Pending(_) => {
            Err(EdgeError::client(404, "not_found", "request_id has no place yet"))
        }
        Visit::Expired => Err(EdgeError::client(410, "expired", "request_id has expired")),
        Visit::Waiting(p) | Visit::Ready(p) => {
            Ok(json_response(200, &place_json(&p, s.state.version, now)))
        }
    }
}

/// `GET {prefix}/serving_pos/{queue_id}`.
pub async fn serving_pos(env: &Env, queue_id: &str) -> EdgeResult {
    let s = queue_state(env, queue_id).await?;
    let body = serde_json::json!({
        "position": s.state.serving_pos, "version": s.state.version,
        "next_poll_ms": crate::page::next_poll_ms(None, random_seed()),
    });
    Ok(json_response(200, &body))
}

/// `GET {prefix}/waiting_num/{queue_id}`.
pub async fn waiting_num(env: &Env, queue_id: &str) -> EdgeResult {
    let s = queue_state(env, queue_id).await?;
    let body = serde_json::json!({
        "waiting_num": s.state.waiting_num, "version": s.state.version,
        "next_poll_ms": crate::page::next_poll_ms(None, random_seed()),
    });
    Ok(json_response(200, &body))
}

/// `GET {prefix}/pow/challenge?queue_id=`: a fresh stateless challenge.
pub async fn challenge(req: &Request, env: &Env) -> EdgeResult {
    let queue_id =
        crate::ReqUrl::of(req).param("queue_id").ok_or_else(|| bad("queue_id is required"))?;
    let s = queue_state(env, &queue_id).await?;
    if s.state.queue.mode == shared::wire::QueueMode::Closed {
        return Err(EdgeError::client(403, "queue_closed", "this queue is closed"));
    }
    let key = crate::edge_key(env)?;
    let mut nonce = [0u8; 16];
    get_random_values(&mut nonce);
    let expires_at =
        u32::try_from(now_ms() / 1000).unwrap_or(u32::MAX).saturating_add(CHALLENGE_SECS);
    let difficulty = s.state.queue.pow_difficulty.min(pow::MAX_DIFFICULTY);
    let ch = pow::issue(&key, s.state.queue.id, nonce, expires_at, difficulty, &client_ip(req));
    Ok(json_response(
        200,
        &serde_json::json!({
            "challenge": ch, "difficulty": difficulty, "expires_at": expires_at,
            "queue_id": queue_id, "algorithm": "sha256-leading-zero-bits",
        }),
    ))
}

/// Reads a small urlencoded form; 413 beyond [`MAX_FORM`], 415 for another content type.
pub(crate) async fn read_form(req: &mut Request) -> EdgeResult<(Vec<u8>, Vec<(String, String)>)> {
    let ct = req.headers().get("content-type")?.unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(EdgeError::client(
            415,
            "unsupported_media_type",
            "use application/x-www-form-urlencoded",
        ));
    }
    let body = crate::read_body(req, MAX_FORM).await?;
    let fields = worker::url::form_urlencoded::parse(&body).into_owned().collect();
    Ok((body, fields))
}

pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Calls the coordinator's public endpoint `path` with `body`, vouching for the client IP.
pub(crate) async fn forward(
    env: &Env,
    path: &str,
    body: Vec<u8>,
    ip: &str,
) -> EdgeResult<Response> {
    let unavailable = EdgeError::Unavailable {
        code: "coordinator_unavailable",
        message: "the waiting room cannot take this request right now; retry shortly",
        retry_after: RETRY_SECS,
    };
    let base = crate::var(env, "COORDINATOR_URL")
        .ok_or_else(|| EdgeError::Internal("COORDINATOR_URL is not set".into()))?;
    let key = crate::edge_key(env)?;
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
    match Fetch::Request(req).send_with_signal(&signal).await {
        Ok(resp) if resp.status_code() >= 500 && resp.status_code() != 503 => {
            worker::console_error!("coordinator {path} answered {}", resp.status_code());
            Err(unavailable)
        }
        Ok(resp) => Ok(resp),
        Err(e) => {
            worker::console_error!("coordinator {path} unreachable: {e}");
            Err(unavailable)
        }
    }
}

/// Copies the coordinator's answer (status, JSON body, `Retry-After`) into an edge response.
pub(crate) async fn relay(mut resp: Response) -> EdgeResult<(u16, Vec<u8>, Option<String>)> {
    let status = resp.status_code();
    let retry = resp.headers().get("retry-after")?;
    let body = resp.bytes().await?;
    Ok((status, body, retry))
}

pub(crate) fn relayed(status: u16, body: Vec<u8>, retry: Option<String>) -> EdgeResult {
    let mut b = Response::builder()
        .with_status(status)
        .with_header("content-type", "application/json")?
        .with_header("cache-control", "no-store")?;
    if let Some(r) = retry {
        b = b.with_header("retry-after", &r)?;
    }
    Ok(b.fixed(body))
}

/// `POST {prefix}/assign_queue_pos`: proof-of-work checked here, then forwarded.
pub async fn assign_queue_pos(mut req: Request, env: &Env) -> EdgeResult {
    let (body, fields) = read_form(&mut req).await?;
    let queue_id = field(&fields, "queue_id").ok_or_else(|| bad("queue_id is required"))?;
    let s = queue_state(env, queue_id).await?;
    let ip = client_ip(&req);
    let q = &s.state.queue;
    if q.mode == shared::wire::QueueMode::Closed {
        return Err(EdgeError::client(403, "queue_closed", "this queue is closed"));
    }
    if q.pow_difficulty > 0 {
        let forbidden = |m: String| EdgeError::client(403, "pow_failed", m);
        let challenge = field(&fields, "pow_challenge").ok_or_else(|| {
            forbidden("proof-of-work is required: pow_challenge is missing".into())
        })?;
        let counter: u64 = field(&fields, "pow_counter")
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| forbidden("proof-of-work is required: pow_counter is missing".into()))?;
        let key = crate::edge_key(env)?;
        pow::verify_solution(&key, challenge, counter, q.id, &ip, now_ms() / 1000)
            .map_err(|e: PowError| forbidden(e.to_string()))?;
    }
    let resp = forward(env, "/assign_queue_pos", body, &ip).await?;
    let (status, body, retry) = relay(resp).await?;
    // The ticket also goes into a cookie, so the waiting room on a protected path can show the
    // place server-side (first paint, pages without JavaScript, apps keeping cookies).
    let cookie = (status == 200)
        .then(|| serde_json::from_slice::<AssignResponse>(&body).ok())
        .flatten()
        .map(|a| {
            crate::gate::ticket_cookie(queue_id, &a.request_id, crate::ReqUrl::of(&req).secure)
        });
    let mut out = relayed(status, body, retry)?;
    if let Some(cookie) = cookie {
        out.headers_mut().append("set-cookie", &cookie)?;
    }
    Ok(out)
}

/// `POST {prefix}/generate_token`: 202 at the edge while the place is not served yet; else
/// forwarded, and the token is also set as the queue's cookie.
pub async fn generate_token(mut req: Request, env: &Env) -> EdgeResult {
    let secure = crate::ReqUrl::of(&req).secure;
    let (body, fields) = read_form(&mut req).await?;
    let queue_id = field(&fields, "queue_id").ok_or_else(|| bad("queue_id is required"))?;
    let request_id = field(&fields, "request_id").ok_or_else(|| bad("request_id is required"))?;
    let s = queue_state(env, queue_id).await?;
    let ticket = open_ticket(env, request_id)?;
    match s.state.standing(&ticket, now_ms() / 1000) {
        TicketStanding::Foreign => return Err(bad("request_id does not belong to this queue")),
        TicketStanding::Expired => {
            return Err(EdgeError::client(410, "expired", "request_id has expired"));
        }
        TicketStanding::Waiting => {
            let place = s.state.place_of(&ticket).unwrap_or(ticket.position);
            let ahead = place.saturating_sub(s.state.serving_pos);
            let poll =
                crate::page::next_poll_ms(Some(ahead), crate::page::visitor_seed(request_id));
            let body = serde_json::json!({
                "position": place,
                "serving_pos": s.state.serving_pos,
                "retry_after_ms": poll,
                "next_poll_ms": poll,
            });
            return Ok(json_response(202, &with_version(body, s.state.version)));
        }
        // Not decided (pre-queue) and ready: the coordinator knows best.
        TicketStanding::NotDecided | TicketStanding::Ready => {}
    }
    let resp = forward(env, "/generate_token", body, &client_ip(&req)).await?;
    let (status, body, retry) = relay(resp).await?;
    let mut out = relayed(status, body.clone(), retry)?;
    if status == 200
        && let Ok(token) = serde_json::from_slice::<TokenResponse>(&body)
    {
        let cookie =
            crate::gate::token_cookie(queue_id, &token.access_token, token.expires_in, secure);
        out.headers_mut().append("set-cookie", &cookie)?;
        // The place is used up: its ticket cookie goes.
        out.headers_mut()
            .append("set-cookie", &crate::gate::clear_ticket_cookie(queue_id, secure))?;
    }
    Ok(out)
}
