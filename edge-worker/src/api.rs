//! The routes under the prefix: the public queue API (status answered from synced state,
//! enqueue and token claims forwarded to the coordinator only when the edge cannot answer),
//! the proof-of-work challenge, the sync endpoint the coordinator publishes to, and the
//! waiting-room page and its assets at fixed addresses.

use shared::error::ErrorCode;
use shared::pow::{self, PowError};
use shared::sync::{SIGNATURE_HEADER, SyncBatch, TIMESTAMP_HEADER, TicketStanding};
use shared::wire::{
    AssignResponse, ChallengeResponse, EdgePosition, PositionResponse, QueueMode, StillQueued,
    TokenResponse, WaitingNumResponse,
};
use worker::Request;

use crate::context::Ctx;
use crate::forms::{self, field};
use crate::http::{Answer, EdgeError, EdgeResult, ReqUrl, bad, json_response, now_ms};
use crate::page::Room;
use crate::store::Loaded;
use crate::visit::{Visit, next_poll_ms, open_ticket, visit, visit_of, visitor_seed};

/// Life of a proof-of-work challenge, seconds.
const CHALLENGE_SECS: u32 = 120;
/// Largest sync body accepted.
const MAX_SYNC_BODY: usize = 4 << 20;

/// `GET {prefix}/queue_pos/{queue_id}/{request_id}`, answered from the ticket and the queue's
/// synced state `s`.
pub fn queue_pos(ctx: &Ctx, s: &Loaded, request_id: &str) -> EdgeResult<Answer> {
    let ticket = open_ticket(ctx.ticket_keys()?, request_id)?;
    let now = now_ms() / 1000;
    match visit(&s.state, &ticket, request_id, now)? {
        Visit::New | Visit::Pending(_) => Err(EdgeError::new(ErrorCode::NotReady)),
        Visit::Expired => Err(EdgeError::new(ErrorCode::Expired)),
        Visit::Waiting(p) | Visit::Ready(p) => {
            let body = EdgePosition {
                place: p.fields(now),
                version: s.state.version,
                next_poll_ms: p.next_poll_ms,
                shown: s.state.presentation.clone(),
            };
            Ok(Answer::json(200, &body, s.age_ms()))
        }
    }
}

/// `GET {prefix}/serving_pos/{queue_id}`, from the queue's synced state `s`.
pub fn serving_pos(ctx: &Ctx, s: &Loaded) -> Answer {
    let body = PositionResponse {
        position: s.state.serving_pos,
        ahead: None,
        eta: None,
        admission_rate: None,
        version: Some(s.state.version),
        next_poll_ms: Some(next_poll_ms(None, ctx.jitter.next())),
        shown: Default::default(),
    };
    Answer::json(200, &body, s.age_ms())
}

/// `GET {prefix}/waiting_num/{queue_id}`, from the queue's synced state `s`.
pub fn waiting_num(ctx: &Ctx, s: &Loaded) -> Answer {
    let body = WaitingNumResponse {
        waiting_num: s.state.waiting_num,
        version: Some(s.state.version),
        next_poll_ms: Some(next_poll_ms(None, ctx.jitter.next())),
    };
    Answer::json(200, &body, s.age_ms())
}

/// `GET {prefix}/pow/challenge?queue_id=`: a fresh stateless challenge.
pub async fn challenge(ctx: &Ctx, req: &Request) -> EdgeResult {
    let queue_id = ReqUrl::of(req).param("queue_id").ok_or_else(|| bad("queue_id is required"))?;
    let s = ctx.synced.queue_state(&queue_id).await?;
    if s.state.queue.mode == QueueMode::Closed {
        return Err(EdgeError::new(ErrorCode::QueueClosed));
    }
    let key = ctx.edge_key()?;
    let mut nonce = [0u8; 16];
    crate::http::random_bytes(&mut nonce);
    let expires_at =
        u32::try_from(now_ms() / 1000).unwrap_or(u32::MAX).saturating_add(CHALLENGE_SECS);
    let difficulty = s.state.queue.pow_difficulty.min(pow::MAX_DIFFICULTY);
    let ip = forms::client_ip(req);
    let challenge = pow::issue(&key, s.state.queue.id, nonce, expires_at, difficulty, &ip);
    let body = ChallengeResponse {
        challenge,
        difficulty,
        expires_at,
        queue_id,
        algorithm: "sha256-leading-zero-bits".into(),
    };
    Ok(json_response(200, &body))
}

/// Checks an enqueue's proof-of-work at the edge, with the coordinator's codes.
fn check_pow(ctx: &Ctx, fields: &[(String, String)], queue: u32, ip: &str) -> EdgeResult<()> {
    let (Some(challenge), Some(counter)) =
        (field(fields, "pow_challenge"), field(fields, "pow_counter"))
    else {
        return Err(EdgeError::new(ErrorCode::PowRequired));
    };
    let counter: u64 = counter
        .trim()
        .parse()
        .map_err(|_| EdgeError::with(ErrorCode::PowInvalid, "pow_counter is not a number"))?;
    let key = ctx.edge_key()?;
    pow::verify_solution(&key, challenge, counter, queue, ip, now_ms() / 1000).map_err(
        |e| match e {
            PowError::Expired => EdgeError::new(ErrorCode::PowExpired),
            e => EdgeError::with(ErrorCode::PowInvalid, e.to_string()),
        },
    )?;
    Ok(())
}

/// `POST {prefix}/assign_queue_pos`: proof-of-work checked here, then forwarded.
pub async fn assign_queue_pos(ctx: &Ctx, mut req: Request) -> EdgeResult {
    let (body, fields) = forms::read_form(&mut req).await?;
    let queue_id = field(&fields, "queue_id").ok_or_else(|| bad("queue_id is required"))?;
    let s = ctx.synced.queue_state(queue_id).await?;
    let ip = forms::client_ip(&req);
    let q = &s.state.queue;
    if q.mode == QueueMode::Closed {
        return Err(EdgeError::new(ErrorCode::QueueClosed));
    }
    if q.pow_difficulty > 0 {
        check_pow(ctx, &fields, q.id, &ip)?;
    }
    let answer = ctx.coordinator.forward("/assign_queue_pos", body, &ip).await?;
    let mut out = answer.response()?;
    // The ticket also goes into a cookie, so the waiting room on a protected path can show the
    // place server-side (first paint, pages without JavaScript, apps keeping cookies).
    if answer.status == 200
        && let Ok(a) = serde_json::from_slice::<AssignResponse>(&answer.body)
    {
        let cookie = forms::ticket_cookie(queue_id, &a.request_id, ReqUrl::of(&req).secure);
        out.headers_mut().append("set-cookie", &cookie)?;
    }
    Ok(out)
}

/// `POST {prefix}/generate_token`: 202 at the edge while the place is not served yet; else
/// forwarded, and the token is also set as the queue's cookie.
pub async fn generate_token(ctx: &Ctx, mut req: Request) -> EdgeResult {
    let secure = ReqUrl::of(&req).secure;
    let (body, fields) = forms::read_form(&mut req).await?;
    let queue_id = field(&fields, "queue_id").ok_or_else(|| bad("queue_id is required"))?;
    let request_id = field(&fields, "request_id").ok_or_else(|| bad("request_id is required"))?;
    let s = ctx.synced.queue_state(queue_id).await?;
    let ticket = open_ticket(ctx.ticket_keys()?, request_id)?;
    match s.state.standing(&ticket, now_ms() / 1000) {
        TicketStanding::Foreign => {
            return Err(EdgeError::with(
                ErrorCode::InvalidRequestId,
                "request_id belongs to another queue",
            ));
        }
        TicketStanding::Expired => return Err(EdgeError::new(ErrorCode::Expired)),
        TicketStanding::Waiting => {
            let place = s.state.place_of(&ticket).unwrap_or(ticket.position);
            let ahead = place.saturating_sub(s.state.serving_pos);
            let poll = next_poll_ms(Some(ahead), visitor_seed(request_id));
            let body = StillQueued {
                position: place,
                serving_pos: s.state.serving_pos,
                retry_after_ms: poll,
                next_poll_ms: Some(poll),
                version: Some(s.state.version),
            };
            return s.stamp(json_response(202, &body));
        }
        // Not decided (pre-queue) and ready: the coordinator knows best.
        TicketStanding::NotDecided | TicketStanding::Ready => {}
    }
    let answer = ctx.coordinator.forward("/generate_token", body, &forms::client_ip(&req)).await?;
    let mut out = answer.response()?;
    if answer.status == 200
        && let Ok(token) = serde_json::from_slice::<TokenResponse>(&answer.body)
    {
        let cookie = forms::token_cookie(queue_id, &token.access_token, token.expires_in, secure);
        out.headers_mut().append("set-cookie", &cookie)?;
        // The place is used up: its ticket cookie goes.
        out.headers_mut().append("set-cookie", &forms::clear_ticket_cookie(queue_id, secure))?;
    }
    Ok(out)
}

/// `POST {prefix}/__anteroom/sync`: the coordinator's publish, MAC'd over timestamp and body.
pub async fn sync(ctx: &Ctx, mut req: Request) -> EdgeResult {
    let key = ctx.edge_key()?;
    let headers = req.headers();
    let ts: u64 = headers
        .get(TIMESTAMP_HEADER)?
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| EdgeError::with(ErrorCode::Unauthorized, "missing or bad timestamp"))?;
    let sig = headers
        .get(SIGNATURE_HEADER)?
        .ok_or_else(|| EdgeError::with(ErrorCode::Unauthorized, "missing signature"))?;
    let body = crate::http::read_body(&mut req, MAX_SYNC_BODY).await?;
    shared::sync::verify_sync(&key, ts, &body, &sig, now_ms())
        .map_err(|e| EdgeError::with(ErrorCode::Unauthorized, e.to_string()))?;
    let batch: SyncBatch =
        serde_json::from_slice(&body).map_err(|_| bad("sync body is not a valid batch"))?;
    Ok(json_response(200, &ctx.synced.apply(&batch).await?))
}

/// `GET {prefix}/__anteroom/room?queue_id=&return_to=`: the page at a fixed address.
pub async fn room_page(ctx: &Ctx, req: &Request) -> EdgeResult {
    let url = ReqUrl::of(req);
    let Some(queue) = url.param("queue_id").filter(|q| shared::valid_slug(q)) else {
        return Err(EdgeError::new(ErrorCode::UnknownQueue));
    };
    let return_to = url.param("return_to").unwrap_or_else(|| "/".into());
    let accept = req.headers().get("accept-language").ok().flatten().unwrap_or_default();
    let loaded = ctx.synced.state(&queue).await?;
    let visit = match &loaded {
        Some(l) => visit_of(req, ctx.ticket_keys()?, l),
        None => Visit::New,
    };
    let r = Room {
        queue: &queue,
        return_to: &return_to,
        lang: crate::page::lang(&accept),
        state: loaded.as_deref().map(|l| &l.state),
        visit,
        now_secs: now_ms() / 1000,
    };
    crate::gate::room_response(ctx, &r, 200, url.secure)
}
