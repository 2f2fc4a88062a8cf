//! The coordinator-to-edge channel: the state the coordinator publishes, how the request is
//! authenticated, and the MAC'd client-IP header the edge sends back on forwarded calls.
//!
//! All three MACs are HMAC-SHA256 under the one shared `EDGE_KEY`, each with its own
//! domain-separation label, base64url without padding:
//!
//! | use | message |
//! |---|---|
//! | sync request | `"anteroom-sync-v1\n"` ‖ timestamp (decimal unix ms) ‖ `"\n"` ‖ body |
//! | client header | `"anteroom-client-v1\n"` ‖ ip ‖ `"\n"` ‖ timestamp (decimal unix ms) |
//! | proof-of-work | see [`crate::pow`] |
//!
//! A sync request is `POST {prefix}/__anteroom/sync` with the JSON [`SyncBatch`] as body and
//! the headers [`TIMESTAMP_HEADER`] and [`SIGNATURE_HEADER`]. Forwarded `assign_queue_pos` and
//! `generate_token` calls carry [`CLIENT_HEADER`] = `<ip>|<unix ms>|<mac>`. Both timestamps
//! must be within [`WINDOW_MS`] of the receiver's clock.

use hmac::Mac;
use serde::{Deserialize, Serialize};

use crate::mac::hmac;
pub use crate::mac::{SyncError, WINDOW_MS};
use crate::ticket::{Ticket, TicketKind};
use crate::token::Jwks;
use crate::wire::QueueMode;

/// Current [`EdgeState`] format (2: `revoked` is a [`crate::positions::PositionSet`]).
pub const FORMAT: u8 = 2;
/// Header carrying the sync request's timestamp, decimal unix milliseconds.
pub const TIMESTAMP_HEADER: &str = "x-anteroom-timestamp";
/// Header carrying the sync request's MAC.
pub const SIGNATURE_HEADER: &str = "x-anteroom-signature";
/// Header carrying the visitor's IP from the edge to the coordinator.
pub const CLIENT_HEADER: &str = "x-anteroom-client";

/// How much older than a state a ticket beyond its `assigned` must be to count as lost: room
/// for the time between the coordinator reading its counters and stamping the state.
pub const LOST_AFTER_SECS: u64 = 5;

const SYNC_LABEL: &[u8] = b"anteroom-sync-v1\n";
const CLIENT_LABEL: &[u8] = b"anteroom-client-v1\n";

/// What the coordinator sends to the edge in one sync request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncBatch {
    /// Current state of each published queue.
    #[serde(default)]
    pub states: Vec<EdgeState>,
    /// Queues an operator deleted (tombstones of the last hour, repeated in every batch):
    /// the edge forgets a queue only when told so for its very id. A queue missing from
    /// `states` is never taken as removed.
    #[serde(default)]
    pub removed: Vec<Removal>,
}

/// An operator's deletion of one queue, as announced to the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    /// The slug.
    pub queue_id: String,
    /// The deleted queue's id: a queue re-created under the slug has another.
    pub id: u32,
}

/// What the edge knows about one queue; written to KV under `state/<queue_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeState {
    /// Layout version of this struct, [`FORMAT`]; the edge ignores formats it does not know.
    pub format: u8,
    /// Strictly increasing per queue: the edge never replaces a state with an older one, and
    /// every status answer carries it so pages drop out-of-order answers.
    pub version: u64,
    /// When the coordinator built this state, unix ms (staleness, and the ticket-loss check).
    pub published_at_ms: u64,
    /// The `iss` of access tokens.
    pub issuer: String,
    /// The queue's configuration.
    pub queue: EdgeQueue,
    /// Current serving position: tickets at or below it may claim a token.
    pub serving_pos: u64,
    /// Positions handed out so far (the committed counter).
    pub assigned: u64,
    /// The `waiting_num` answer.
    pub waiting_num: u64,
    /// The `active_token_num` answer.
    pub active_num: u64,
    /// Recent `(serving position, unix secs it was reached)` pairs, oldest first, so the edge
    /// can tell when a place expired.
    #[serde(default)]
    pub serving_history: Vec<(u64, u64)>,
    /// Public keys that sign access tokens.
    pub jwks: Jwks,
    /// Positions of sessions that ended (completed, abandoned) whose tokens have not expired
    /// yet, all of them: a session `jti` is `<queue id>.<position>`.
    #[serde(default)]
    pub revoked: crate::positions::PositionSet,
    /// The pre-queue draw, once done: a pre-queue ticket's place is
    /// `base + prequeue::drawn_place(seed, queue.id, count, index)`.
    #[serde(default)]
    pub draw: Option<Draw>,
    /// Measured admission rate and spread (automatic admission), for ETAs at the edge and on
    /// the page.
    #[serde(default)]
    pub admission: Option<crate::eta::RateEstimate>,
    /// The operator's waiting-room page, when the queue has one (`crate::template`).
    #[serde(default)]
    pub template: Option<String>,
    /// What the page says besides the numbers: display name, text logo, the operator's
    /// message. Here and not in [`EdgeQueue`]: the index carries every queue's `EdgeQueue`
    /// and is read for every protected path, this only for the queue's own page and polls.
    #[serde(default, skip_serializing_if = "crate::wire::Presentation::is_empty")]
    pub presentation: crate::wire::Presentation,
    /// Recent seconds during which the queue's expiry clock stood still, `[from, to)` unix
    /// seconds (`crate::place`).
    #[serde(default)]
    pub pauses: Vec<(u64, u64)>,
    /// The coordinator lost this queue's data (its store forgot it without an operator
    /// deleting it): this is the last state it had. The edge keeps honouring tokens and holds
    /// new visitors, or lets everyone through when the queue is `fail_open`.
    #[serde(default)]
    pub lost: bool,
}

/// The edge's queue index (KV `index`): the config of every synced queue, for mapping paths
/// to queues. Rewritten only when a config changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeIndex {
    /// The configs of the latest applied states.
    #[serde(default)]
    pub queues: Vec<EdgeQueue>,
    /// When the coordinator built it, unix ms, for a pulled index (an edge never replaces a
    /// pulled index with an older one); 0 in the KV copy the edge writes itself.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: u64,
}

/// The worker's answer to a sync request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncAnswer {
    /// States written (newer than what KV held).
    #[serde(default)]
    pub applied: Vec<Applied>,
    /// States not written: KV already held this version or a newer one.
    #[serde(default)]
    pub ignored: Vec<Applied>,
    /// Queues forgotten.
    #[serde(default)]
    pub removed: Vec<Removal>,
}

/// One queue's state in a [`SyncAnswer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The queue slug.
    pub queue_id: String,
    /// The state's version.
    pub version: u64,
}

/// A queue's pre-queue draw, revealed at opening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    /// Places handed out before the draw.
    pub base: u64,
    /// Pre-queue arrivals.
    pub count: u64,
    /// The seed, hex (its commitment was published before the pre-queue opened).
    pub seed: String,
}

/// The queue configuration the edge needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeQueue {
    /// Server-assigned numeric id (in tickets and challenges).
    pub id: u32,
    /// The slug (token audience, KV key, cookie name).
    pub queue_id: String,
    /// What the edge does on protected paths.
    #[serde(default)]
    pub mode: QueueMode,
    /// Path prefixes this queue protects, matched on whole segments of the canonical path
    /// (`crate::path`; `/` protects all).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Path prefixes or `*.ext` patterns passed straight through (webhooks, health checks).
    #[serde(default)]
    pub bypass: Vec<String>,
    /// Whether paths compare case-sensitively (default false: `/Shop` is `/shop`).
    #[serde(default)]
    pub case_sensitive: bool,
    /// Leading zero bits asked of `assign_queue_pos` callers; 0 = off.
    #[serde(default)]
    pub pow_difficulty: u8,
    /// With no synced state, let visitors through (`true`) or hold them (`false`).
    #[serde(default)]
    pub fail_open: bool,
    /// Status of the waiting-room answer on protected paths: 200, 202 or 429.
    #[serde(default = "default_waiting_status")]
    pub waiting_status: u16,
    /// Life of an access token, seconds.
    #[serde(default)]
    pub token_validity_second: u32,
    /// Whether unclaimed places expire.
    #[serde(default)]
    pub enable_queue_position_expiry: bool,
    /// How long a place stays claimable after the serving position passes it, seconds.
    #[serde(default)]
    pub position_expiry_second: u32,
    /// Visitors without JavaScript may join without the proof-of-work.
    #[serde(default)]
    pub allow_no_js: bool,
    /// The admitting token reaches the origin (its cookie, or `Authorization`), for origins
    /// that verify it themselves; otherwise the edge keeps it to itself.
    #[serde(default)]
    pub forward_token: bool,
    /// When the queue was created, unix ms: of two queues with one slug, the newer wins.
    #[serde(default)]
    pub created_at: u64,
    /// Set by the edge in its own index: when an operator's removal of this queue arrived,
    /// unix ms. The queue's paths are then held closed for `REMOVAL_HOLD_MS` (a delete and
    /// re-create leaves no moment unprotected) before they are released; 0 = live.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub removed_at: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// How long the edge holds a removed queue's paths closed, milliseconds.
pub const REMOVAL_HOLD_MS: u64 = 60_000;

fn default_waiting_status() -> u16 {
    200
}

/// The edge's view of a queue's settings.
impl From<&crate::wire::QueueConfig> for EdgeQueue {
    fn from(q: &crate::wire::QueueConfig) -> Self {
        EdgeQueue {
            id: q.id,
            queue_id: q.queue_id.clone(),
            mode: q.mode,
            paths: q.paths.clone(),
            bypass: q.bypass.clone(),
            case_sensitive: q.case_sensitive,
            pow_difficulty: q.pow_difficulty,
            fail_open: q.fail_open,
            waiting_status: q.waiting_status,
            token_validity_second: q.token_validity_second,
            enable_queue_position_expiry: q.enable_queue_position_expiry,
            position_expiry_second: q.position_expiry_second,
            allow_no_js: q.allow_no_js,
            forward_token: q.forward_token,
            created_at: q.created_at,
            removed_at: 0,
        }
    }
}

impl EdgeQueue {
    /// The index entry of a deleted queue (`removed_at` unix ms): it names the queue by id so
    /// an edge holds that queue's paths closed, and nothing else.
    pub fn removed(id: u32, queue_id: String, removed_at: u64) -> Self {
        let defaults =
            crate::wire::QueueConfig { id, ..crate::wire::QueueConfig::with_defaults(queue_id) };
        EdgeQueue {
            mode: QueueMode::Closed,
            removed_at: removed_at.max(1),
            ..EdgeQueue::from(&defaults)
        }
    }

    /// This queue's `paths` and `bypass`, prepared for matching canonical paths.
    pub fn patterns(&self) -> crate::path::Patterns {
        crate::path::Patterns::new(&self.paths, &self.bypass, self.case_sensitive)
    }
}

/// The [`SIGNATURE_HEADER`] value for a sync request body sent at `ts_ms`.
pub fn sign_sync(key: &[u8; 32], ts_ms: u64, body: &[u8]) -> String {
    let ts = ts_ms.to_string();
    let tag = hmac(key, &[SYNC_LABEL, ts.as_bytes(), b"\n", body]).finalize().into_bytes();
    crate::b64::encode(tag)
}

/// Checks a sync request: timestamp within [`WINDOW_MS`] of `now_ms`, then the MAC
/// (constant-time).
pub fn verify_sync(
    key: &[u8; 32],
    ts_ms: u64,
    body: &[u8],
    sig: &str,
    now_ms: u64,
) -> Result<(), SyncError> {
    let ts = ts_ms.to_string();
    crate::mac::verify(key, ts_ms, now_ms, sig, &[SYNC_LABEL, ts.as_bytes(), b"\n", body])
}

/// The whole [`CLIENT_HEADER`] value: `<ip>|<ts_ms>|<mac>`.
pub fn sign_client(key: &[u8; 32], ip: &str, ts_ms: u64) -> String {
    let ts = ts_ms.to_string();
    let tag = hmac(key, &[CLIENT_LABEL, ip.as_bytes(), b"\n", ts.as_bytes()]).finalize();
    format!("{ip}|{ts}|{}", crate::b64::encode(tag.into_bytes()))
}

/// Checks a [`CLIENT_HEADER`] value and returns the client IP it vouches for.
pub fn verify_client(key: &[u8; 32], header: &str, now_ms: u64) -> Result<String, SyncError> {
    let mut parts = header.rsplitn(3, '|');
    let (Some(sig), Some(ts), Some(ip)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SyncError::Malformed);
    };
    let ts_ms: u64 = ts.parse().map_err(|_| SyncError::Malformed)?;
    crate::mac::verify(
        key,
        ts_ms,
        now_ms,
        sig,
        &[CLIENT_LABEL, ip.as_bytes(), b"\n", ts.as_bytes()],
    )?;
    Ok(ip.to_owned())
}

/// Where a ticket stands according to a synced state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketStanding {
    /// A ticket of another queue (or another incarnation of this slug).
    Foreign,
    /// A pre-queue ticket, or a place the storage does not have: `404`.
    NotDecided,
    /// Still behind the serving position.
    Waiting,
    /// At or before the serving position: may claim a token.
    Ready,
    /// The place expired: `410`.
    Expired,
}

/// What decides where a ticket stands: one queue's counters and serving history as read at
/// one moment. The edge takes it from a synced [`EdgeState`], the coordinator from its status
/// cache, so both answer a ticket the same way.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// Numeric queue id.
    pub queue: u32,
    /// Serving position.
    pub serving_pos: u64,
    /// Positions handed out (the committed counter).
    pub assigned: u64,
    /// When these facts were read, unix ms.
    pub as_of_ms: u64,
    /// Recent `(serving position, unix secs it was reached)`, oldest first.
    pub serving_history: &'a [(u64, u64)],
    /// The pre-queue draw, once done.
    pub draw: Option<&'a Draw>,
    /// The position-expiry window, seconds, when places expire.
    pub expiry_secs: Option<u64>,
    /// When the expiry clock stood still (`crate::place`).
    pub pauses: &'a [(u64, u64)],
}

impl Line<'_> {
    /// Where `ticket` stands at `now_secs`.
    ///
    /// A valid ticket beyond `assigned` is normally just newer than these facts (the
    /// coordinator answers only after storing the place); it counts as lost only when it was
    /// issued more than [`LOST_AFTER_SECS`] before they were read and they still do not
    /// include it (storage lost the write, e.g. a failover).
    ///
    /// Position expiry needs the time the serving position passed the ticket, taken from
    /// `serving_history`. When the history does not reach back that far, the place counts as
    /// expired only if even the oldest entry is more than the window old (the coordinator,
    /// which knows exactly, has the last word on `generate_token`).
    pub fn standing(&self, ticket: &Ticket, now_secs: u64) -> TicketStanding {
        if ticket.queue != self.queue {
            return TicketStanding::Foreign;
        }
        let Some(place) = self.place_of(ticket) else {
            return TicketStanding::NotDecided;
        };
        let ticket = &Ticket { kind: TicketKind::Fifo, position: place, ..*ticket };
        if ticket.position > self.assigned
            && u64::from(ticket.entered_at) + LOST_AFTER_SECS < self.as_of_ms / 1000
        {
            return TicketStanding::NotDecided;
        }
        if ticket.position > self.serving_pos {
            return TicketStanding::Waiting;
        }
        let passed_at = self.passed_at(ticket);
        let expired = crate::place::expired(
            u64::from(ticket.entered_at),
            passed_at,
            now_secs,
            self.expiry_secs,
            self.pauses,
        );
        if expired { TicketStanding::Expired } else { TicketStanding::Ready }
    }

    /// When the serving position passed `ticket`'s place (which it holds), as far as the
    /// history tells: the first entry at or beyond it, else the oldest entry known.
    fn passed_at(&self, ticket: &Ticket) -> Option<u64> {
        self.serving_history
            .iter()
            .find(|(pos, _)| *pos >= ticket.position)
            .or(self.serving_history.first())
            .map(|&(_, at)| at)
    }

    /// The first second at which a served place has expired (`None` without position
    /// expiry, or while the history does not say when the place was passed). `ticket` holds
    /// its place. The same rule as [`crate::place::expired`].
    fn claim_deadline(&self, ticket: &Ticket) -> Option<u64> {
        let window = self.expiry_secs?;
        let start = self.passed_at(ticket)?.max(u64::from(ticket.entered_at));
        Some(crate::place::deadline(start, window, self.pauses))
    }

    /// For a ticket whose standing is [`TicketStanding::Ready`]: the last unix second at
    /// which a claim is still accepted (the page shows it on the turn screen).
    pub fn claim_by(&self, ticket: &Ticket) -> Option<u64> {
        let place = self.place_of(ticket)?;
        let t = Ticket { kind: TicketKind::Fifo, position: place, ..*ticket };
        self.claim_deadline(&t).map(|d| d.saturating_sub(1))
    }

    /// The place a ticket holds: its position, or for a pre-queue ticket its drawn place once
    /// the draw is known (`None` before).
    pub fn place_of(&self, ticket: &Ticket) -> Option<u64> {
        match ticket.kind {
            TicketKind::Fifo => Some(ticket.position),
            TicketKind::PreQueue => {
                let d = self.draw?;
                let seed = crate::prequeue::seed_from_hex(&d.seed)?;
                crate::prequeue::drawn_place(&seed, self.queue, d.count, ticket.position)
                    .map(|p| d.base + p)
            }
        }
    }
}

impl EdgeState {
    /// The facts of this state that decide where a ticket stands.
    pub fn line(&self) -> Line<'_> {
        Line {
            queue: self.queue.id,
            serving_pos: self.serving_pos,
            assigned: self.assigned,
            as_of_ms: self.published_at_ms,
            serving_history: &self.serving_history,
            draw: self.draw.as_ref(),
            expiry_secs: self
                .queue
                .enable_queue_position_expiry
                .then(|| crate::place::expiry_window(self.queue.position_expiry_second)),
            pauses: &self.pauses,
        }
    }

    /// Where `ticket` stands at `now_secs` ([`Line::standing`]).
    pub fn standing(&self, ticket: &Ticket, now_secs: u64) -> TicketStanding {
        self.line().standing(ticket, now_secs)
    }

    /// [`Line::claim_by`].
    pub fn claim_by(&self, ticket: &Ticket) -> Option<u64> {
        self.line().claim_by(ticket)
    }

    /// [`Line::place_of`].
    pub fn place_of(&self, ticket: &Ticket) -> Option<u64> {
        self.line().place_of(ticket)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const KEY: [u8; 32] = [0x33; 32];
    const NOW: u64 = 1_790_000_000_000;

    /// Shared with the JS tests (`miniflare-tests/`), which sign sync batches themselves.
    const VECTORS: &str = include_str!("../test-vectors/sync.json");

    #[derive(Deserialize)]
    struct Vector {
        key_hex: String,
        kind: String,
        ts_ms: u64,
        ip: Option<String>,
        body: Option<String>,
        value: String,
    }

    #[test]
    fn vectors() {
        let vectors: Vec<Vector> = serde_json::from_str(VECTORS).unwrap();
        assert!(
            vectors.iter().any(|v| v.kind == "sync") && vectors.iter().any(|v| v.kind == "client")
        );
        for v in vectors {
            let key: [u8; 32] = (0..32)
                .map(|i| u8::from_str_radix(&v.key_hex[2 * i..2 * i + 2], 16).unwrap())
                .collect::<Vec<_>>()
                .try_into()
                .unwrap();
            if v.kind == "sync" {
                let body = v.body.unwrap();
                assert_eq!(sign_sync(&key, v.ts_ms, body.as_bytes()), v.value);
                assert_eq!(verify_sync(&key, v.ts_ms, body.as_bytes(), &v.value, v.ts_ms), Ok(()));
            } else {
                let ip = v.ip.unwrap();
                assert_eq!(sign_client(&key, &ip, v.ts_ms), v.value);
                assert_eq!(verify_client(&key, &v.value, v.ts_ms), Ok(ip));
            }
        }
    }

    #[test]
    fn sync_signatures() {
        let body = br#"{"states":[],"removed":[]}"#;
        let sig = sign_sync(&KEY, NOW, body);
        assert_eq!(verify_sync(&KEY, NOW, body, &sig, NOW + WINDOW_MS), Ok(()));
        assert_eq!(verify_sync(&KEY, NOW, body, &sig, NOW - WINDOW_MS), Ok(()));
        assert_eq!(verify_sync(&KEY, NOW, body, &sig, NOW + WINDOW_MS + 1), Err(SyncError::Stale));
        assert_eq!(verify_sync(&KEY, NOW, body, &sig, NOW - WINDOW_MS - 1), Err(SyncError::Stale));
        assert_eq!(verify_sync(&KEY, NOW + 1, body, &sig, NOW), Err(SyncError::BadSignature));
        assert_eq!(verify_sync(&KEY, NOW, b"{}", &sig, NOW), Err(SyncError::BadSignature));
        assert_eq!(verify_sync(&[0; 32], NOW, body, &sig, NOW), Err(SyncError::BadSignature));
        assert_eq!(verify_sync(&KEY, NOW, body, "***", NOW), Err(SyncError::Malformed));
        assert_eq!(verify_sync(&KEY, NOW, body, "", NOW), Err(SyncError::BadSignature));
    }

    #[test]
    fn client_headers() {
        for ip in ["203.0.113.9", "2001:db8::1", ""] {
            let h = sign_client(&KEY, ip, NOW);
            assert_eq!(verify_client(&KEY, &h, NOW + 5), Ok(ip.to_owned()));
            assert_eq!(verify_client(&KEY, &h, NOW + WINDOW_MS + 1), Err(SyncError::Stale));
            assert_eq!(verify_client(&[1; 32], &h, NOW), Err(SyncError::BadSignature));
        }
        let h = sign_client(&KEY, "203.0.113.9", NOW);
        let forged = h.replacen("203.0.113.9", "203.0.113.10", 1);
        assert_eq!(verify_client(&KEY, &forged, NOW), Err(SyncError::BadSignature));
        for bad in ["", "1.2.3.4", "1.2.3.4|x|y", "1.2.3.4|1|***"] {
            assert!(verify_client(&KEY, bad, 1).is_err(), "{bad:?}");
        }
    }

    fn queue() -> EdgeQueue {
        serde_json::from_value(serde_json::json!({"id": 5, "queue_id": "concert"})).unwrap()
    }

    fn state() -> EdgeState {
        EdgeState {
            format: FORMAT,
            version: 1,
            published_at_ms: 1_790_000_100_000,
            issuer: "anteroom".into(),
            queue: EdgeQueue {
                enable_queue_position_expiry: true,
                position_expiry_second: 60,
                ..queue()
            },
            serving_pos: 10,
            assigned: 20,
            waiting_num: 15,
            active_num: 5,
            serving_history: vec![(5, 1_790_000_000), (10, 1_790_000_050)],
            jwks: Jwks::default(),
            revoked: Default::default(),
            draw: None,
            admission: None,
            template: None,
            presentation: Default::default(),
            pauses: vec![],
            lost: false,
        }
    }

    #[test]
    fn prequeue_tickets_take_their_drawn_place_once_the_draw_is_synced() {
        let mut s = state();
        let pre = Ticket { kind: TicketKind::PreQueue, ..ticket(3, 1_790_000_000) };
        assert_eq!(s.place_of(&pre), None);
        assert_eq!(s.standing(&pre, 1_790_000_100), TicketStanding::NotDecided);
        let seed = [7u8; 32];
        s.draw = Some(Draw { base: 2, count: 5, seed: crate::prequeue::seed_to_hex(&seed) });
        let place = 2 + crate::prequeue::drawn_place(&seed, 5, 5, 3).unwrap();
        assert_eq!(s.place_of(&pre), Some(place));
        let places: std::collections::HashSet<u64> =
            (1..=5).map(|i| s.place_of(&Ticket { position: i, ..pre }).unwrap()).collect();
        assert_eq!(places, (3..=7).collect(), "a permutation of the places after the base");
        s.serving_pos = 7;
        assert_eq!(s.standing(&pre, 1_790_000_059), TicketStanding::Ready);
    }

    fn ticket(position: u64, entered_at: u32) -> Ticket {
        Ticket { key_id: 1, kind: TicketKind::Fifo, queue: 5, position, entered_at }
    }

    #[test]
    fn config_defaults_let_new_fields_be_added() {
        let q = queue();
        assert_eq!(q.mode, QueueMode::Queue);
        assert_eq!(q.waiting_status, 200);
        assert!(q.paths.is_empty() && !q.fail_open && q.pow_difficulty == 0);
        let s: EdgeQueue =
            serde_json::from_str(r#"{"id":1,"queue_id":"a","mode":"closed","future":1}"#).unwrap();
        assert_eq!(s.mode, QueueMode::Closed);
        let round: EdgeState =
            serde_json::from_str(&serde_json::to_string(&state()).unwrap()).unwrap();
        assert_eq!(round, state());
    }

    #[test]
    fn standings() {
        let s = state();
        let now = 1_790_000_100;
        let check = |t: Ticket, now: u64, want: TicketStanding| {
            assert_eq!(s.standing(&t, now), want, "{t:?} at {now}");
        };
        check(Ticket { queue: 6, ..ticket(1, 1_790_000_000) }, now, TicketStanding::Foreign);
        check(
            Ticket { kind: TicketKind::PreQueue, ..ticket(1, 1_790_000_000) },
            now,
            TicketStanding::NotDecided,
        );
        check(ticket(15, 1_790_000_090), now, TicketStanding::Waiting);
        // Beyond `assigned`: newer than the state, or lost if issued well before it.
        check(ticket(21, 1_790_000_100), now, TicketStanding::Waiting);
        check(ticket(21, 1_790_000_050), now, TicketStanding::NotDecided);
        check(ticket(21, 1_790_000_095), now, TicketStanding::Waiting);
        check(ticket(21, 1_790_000_094), now, TicketStanding::NotDecided);
        // Passed at ...050 (position 10 reached then): expired 60 s (plus the freshness
        // grace) later, as the coordinator's `place::expired` decides a claim.
        let g = crate::pull::EXPIRY_GRACE_SECS;
        check(ticket(8, 1_790_000_000), 1_790_000_109 + g, TicketStanding::Ready);
        check(ticket(8, 1_790_000_000), 1_790_000_110 + g, TicketStanding::Expired);
        // Passed at ...000; entered later, so the clock starts at entry.
        check(ticket(3, 1_790_000_020), 1_790_000_079 + g, TicketStanding::Ready);
        check(ticket(3, 1_790_000_020), 1_790_000_080 + g, TicketStanding::Expired);
        // The turn screen's deadline is the last second a claim is still accepted.
        assert_eq!(s.claim_by(&ticket(8, 1_790_000_000)), Some(1_790_000_109 + g));
        assert_eq!(s.claim_by(&ticket(3, 1_790_000_020)), Some(1_790_000_079 + g));
        let no_expiry = EdgeState {
            queue: EdgeQueue { enable_queue_position_expiry: false, ..s.queue.clone() },
            ..s.clone()
        };
        assert_eq!(no_expiry.standing(&ticket(3, 1), u64::MAX / 2), TicketStanding::Ready);
        assert_eq!(no_expiry.claim_by(&ticket(3, 1)), None);
    }
}
