//! The visitor model and the poll policy: where the holder of a ticket stands in a queue
//! (from the synced state, by `shared::sync::Line`), what that place looks like on the wire,
//! and how often they should ask again.

use std::cell::Cell;

use shared::error::ErrorCode;
use shared::eta::EtaBand;
pub use shared::poll::{next_poll_ms, visitor_seed};
use shared::sync::{EdgeState, TicketStanding};
use shared::ticket::{Ticket, TicketKey};
use shared::wire::PlaceFields;
use worker::Request;

use crate::http::{EdgeError, EdgeResult, now_ms};
use crate::store::Loaded;

/// The jitter generator (xorshift32) of answers that name no visitor, seeded once per isolate
/// from the runtime's random source: a `crypto.getRandomValues` call per poll cost a
/// JavaScript round trip for a number that only spreads polls out. Not for anything secret.
#[derive(Debug, Default)]
pub struct Jitter(Cell<u32>);

impl Jitter {
    /// The next seed.
    pub fn next(&self) -> u32 {
        let mut x = self.0.get();
        while x == 0 {
            let mut b = [0u8; 4];
            crate::http::random_bytes(&mut b);
            x = u32::from_le_bytes(b);
        }
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0.set(x);
        x
    }
}

/// A visitor's place, as the edge computes it from their ticket and the synced state.
#[derive(Debug, Clone)]
pub struct Place {
    /// The ticket (`request_id`).
    pub request_id: String,
    pub position: u64,
    pub ahead: u64,
    pub eta: Option<EtaBand>,
    /// Unix seconds by which a served place must be claimed (position expiry), if any.
    pub claim_by: Option<u64>,
    pub next_poll_ms: u64,
}

/// Where the visitor of a waiting-room page stands.
#[derive(Debug, Clone)]
pub enum Visit {
    /// No valid ticket for this queue: the page joins the line.
    New,
    /// A ticket without a place yet (pre-queue before the draw, or not synced yet).
    Pending(String),
    /// Behind the serving position.
    Waiting(Place),
    /// Served: may claim a token now.
    Ready(Place),
    /// The place expired unclaimed.
    Expired,
}

impl Visit {
    /// `state` in JSON answers and the `{{state}}` template variable.
    pub fn name(&self) -> &'static str {
        match self {
            Visit::New => "new",
            Visit::Pending(_) => "pending",
            Visit::Waiting(_) => "waiting",
            Visit::Ready(_) => "ready",
            Visit::Expired => "expired",
        }
    }

    /// The place, when the visitor has one.
    pub fn place(&self) -> Option<&Place> {
        match self {
            Visit::Waiting(p) | Visit::Ready(p) => Some(p),
            _ => None,
        }
    }

    /// The ticket, when the visitor has one.
    pub fn ticket(&self) -> Option<&str> {
        match self {
            Visit::Pending(t) => Some(t),
            Visit::Waiting(p) | Visit::Ready(p) => Some(&p.request_id),
            Visit::New | Visit::Expired => None,
        }
    }
}

/// Opens a ticket with the deployment's ticket keys; a bad one is 400 `invalid_request_id`.
pub fn open_ticket(keys: &[TicketKey], text: &str) -> EdgeResult<Ticket> {
    Ticket::open(text, |id| keys.iter().find(|k| k.id == id))
        .map_err(|e| EdgeError::with(ErrorCode::InvalidRequestId, e.to_string()))
}

/// Where the holder of `request_id` stands in `s`'s queue at `now_secs`; `Err` for a ticket
/// of another queue.
pub fn visit(s: &EdgeState, ticket: &Ticket, request_id: &str, now_secs: u64) -> EdgeResult<Visit> {
    let place = |ready: bool| {
        let position = s.place_of(ticket).unwrap_or(ticket.position);
        let ahead = position.saturating_sub(s.serving_pos);
        Place {
            request_id: request_id.to_owned(),
            position,
            ahead,
            eta: s.admission.as_ref().and_then(|e| shared::eta::eta(e, ahead)),
            claim_by: if ready { s.claim_by(ticket) } else { None },
            next_poll_ms: next_poll_ms(Some(ahead), visitor_seed(request_id)),
        }
    };
    Ok(match s.standing(ticket, now_secs) {
        TicketStanding::Foreign => {
            return Err(EdgeError::with(
                ErrorCode::InvalidRequestId,
                "request_id belongs to another queue",
            ));
        }
        TicketStanding::NotDecided => Visit::Pending(request_id.to_owned()),
        TicketStanding::Expired => Visit::Expired,
        TicketStanding::Waiting => Visit::Waiting(place(false)),
        TicketStanding::Ready => Visit::Ready(place(true)),
    })
}

/// Where the visitor stands in `l`'s queue by the ticket they present; a forged, foreign or
/// absent ticket is a new visitor.
pub fn visit_of(req: &Request, keys: &[TicketKey], l: &Loaded) -> Visit {
    let Some(text) = crate::forms::presented_ticket(req, &l.state.queue.queue_id) else {
        return Visit::New;
    };
    open_ticket(keys, &text)
        .and_then(|t| visit(&l.state, &t, &text, now_ms() / 1000))
        .unwrap_or(Visit::New)
}

impl Place {
    /// The place on the wire, at `now_secs`.
    pub fn fields(&self, now_secs: u64) -> PlaceFields {
        PlaceFields {
            position: self.position,
            ahead: self.ahead,
            eta: self.eta,
            claim_by: self.claim_by,
            claim_in_secs: self.claim_by.map(|c| c.saturating_sub(now_secs)),
        }
    }
}
