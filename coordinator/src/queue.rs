//! The queue domain, below the HTTP layers (`api`, `admin`) and above the store: what a
//! ticket holds, whether a queue takes new places or claims now, the pre-queue draw and
//! seed, and the access token of a session.

use std::borrow::Cow;

use shared::error::ErrorCode;
use shared::ticket::{Ticket, TicketKind};
use shared::token::AccessClaims;
use shared::wire::{QueueConfig, QueueMode, TokenResponse};

use crate::state::AppState;
use crate::store::{Session, StoreError};

/// Why the domain refused: a code of the shared vocabulary with a message safe to show, a
/// queue not open yet (seconds until it opens), or a store failure.
#[derive(Debug)]
pub enum QueueError {
    /// Refused with this code.
    Refused(ErrorCode, Cow<'static, str>),
    /// The queue opens in this many seconds.
    NotOpen(u64),
    /// The store failed.
    Store(StoreError),
}

impl QueueError {
    /// A refusal with the code's default message.
    pub fn new(code: ErrorCode) -> Self {
        QueueError::Refused(code, Cow::Borrowed(code.message()))
    }

    /// A refusal with a more specific message.
    pub fn with(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        QueueError::Refused(code, message.into())
    }
}

impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        QueueError::Store(e)
    }
}

/// Result of a domain step.
pub type QueueResult<T> = Result<T, QueueError>;

/// Session id of a place: stable, so claiming twice names the same session.
pub fn jti(queue: u32, position: u64) -> String {
    format!("{queue}.{position}")
}

/// Checks a ticket against a queue. A ticket for another live queue is bad input (400); one
/// for a queue that was deleted (its id is no longer live) is gone (410).
pub fn open_ticket(state: &AppState, q: &QueueConfig, request_id: &str) -> QueueResult<Ticket> {
    let keys = state.keys();
    let t = Ticket::open(request_id, |id| keys.ticket_key(id))
        .map_err(|e| QueueError::with(ErrorCode::InvalidRequestId, e.to_string()))?;
    if t.queue != q.id {
        return Err(if state.queue_by_id_cached(t.queue).is_some() {
            QueueError::with(ErrorCode::InvalidRequestId, "request_id belongs to another queue")
        } else {
            QueueError::with(
                ErrorCode::QueueReplaced,
                "request_id belongs to a queue that was deleted",
            )
        });
    }
    Ok(t)
}

/// Draws the pre-queue once the queue has opened (idempotent, any process may do it).
pub async fn ensure_drawn(state: &AppState, q: &QueueConfig) -> QueueResult<(u64, u64)> {
    let drawn = state.store().draw(q.id).await?;
    state.forget_status(q.id, None);
    Ok(drawn)
}

/// The seed of a queue's pre-queue draw, created on first use (its commitment is public).
pub async fn prequeue_seed(state: &AppState, q: &QueueConfig) -> QueueResult<[u8; 32]> {
    let fresh = shared::prequeue::seed_to_hex(&crate::keys::random32());
    let hex = state.store().init_meta(q.id, "seed", fresh).await?;
    shared::prequeue::seed_from_hex(&hex)
        .ok_or_else(|| QueueError::Store(StoreError::Corrupt("pre-queue seed".into())))
}

/// The place a ticket holds: its position for a FIFO ticket, its drawn place for a
/// pre-queue ticket once the draw is done (`None` before).
pub async fn place_of(state: &AppState, q: &QueueConfig, t: &Ticket) -> QueueResult<Option<u64>> {
    if t.kind == TicketKind::Fifo {
        return Ok(Some(t.position));
    }
    let Some((base, n)) = state.store().drawn(q.id).await? else { return Ok(None) };
    let seed = prequeue_seed(state, q).await?;
    Ok(shared::prequeue::drawn_place(&seed, q.id, n, t.position).map(|p| base + p))
}

/// Refuses a new place in a queue that takes none now: closed by mode or by `closes_at`,
/// draining (the sale is over), or not open yet.
pub fn check_enqueue_open(q: &QueueConfig, now: u64) -> QueueResult<()> {
    if q.mode == QueueMode::Closed || q.closes_at.is_some_and(|c| now >= c) {
        return Err(QueueError::with(
            ErrorCode::QueueClosed,
            "the queue is closed to new visitors",
        ));
    }
    if q.admission.as_ref().is_some_and(|a| a.draining) {
        return Err(QueueError::with(ErrorCode::QueueDraining, "the queue admits no new visitors"));
    }
    let opens_first = q.prequeue_opens_at.or(q.opens_at);
    if let Some(at) = opens_first.filter(|at| now < *at) {
        return Err(QueueError::NotOpen(at - now));
    }
    Ok(())
}

/// Refuses a claim while the queue lets nobody in: closed by mode, draining, paused (the
/// operator's brake: 503, ask again), or not open yet.
pub fn check_claim_open(q: &QueueConfig, now: u64) -> QueueResult<()> {
    if q.mode == QueueMode::Closed {
        return Err(QueueError::with(ErrorCode::QueueClosed, "the queue is closed"));
    }
    match &q.admission {
        Some(a) if a.draining => {
            return Err(QueueError::with(
                ErrorCode::QueueDraining,
                "the queue admits no new visitors",
            ));
        }
        Some(a) if a.paused => return Err(QueueError::new(ErrorCode::Paused)),
        _ => {}
    }
    if let Some(at) = q.prequeue_opens_at.or(q.opens_at).filter(|at| now < *at) {
        return Err(QueueError::NotOpen(at - now));
    }
    Ok(())
}

/// Signs the access token of a session.
pub fn token_response(
    state: &AppState,
    q: &QueueConfig,
    request_id: &str,
    place: u64,
    session: Session,
    now: u64,
) -> TokenResponse {
    let claims = AccessClaims {
        iss: state.settings().issuer.clone(),
        aud: q.queue_id.clone(),
        sub: request_id.to_string(),
        qpos: place,
        jti: jti(q.id, place),
    };
    let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let access_token =
        state.keys().signer(now).issue(&claims, to_i64(session.iat), to_i64(session.exp));
    TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: session.exp.saturating_sub(now),
    }
}
