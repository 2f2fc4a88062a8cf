//! Wire types: every JSON and form body that crosses the network, in one place.
//!
//! Field names follow the API contract (`docs/api.md`). Fields marked *extension* are additions
//! listed in the README's extension table; clients written against the contract ignore them.

use serde::{Deserialize, Serialize};

/// Body of every 4xx/5xx answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `invalid_parameter`.
    pub error: String,
    /// A human-readable explanation, safe to show.
    pub message: String,
}

/// Form of `POST /assign_queue_pos` and `POST /generate_token` (`request_id` only for the latter).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueForm {
    /// The queue slug.
    #[serde(default)]
    pub queue_id: Option<String>,
    /// The visitor's ticket.
    #[serde(default)]
    pub request_id: Option<String>,
    /// *Extension*: proof-of-work challenge (enqueue, when the queue asks for it).
    #[serde(default)]
    pub pow_challenge: Option<String>,
    /// *Extension*: proof-of-work solution counter, decimal.
    #[serde(default)]
    pub pow_counter: Option<String>,
    /// *Extension*: `1` when a browser without JavaScript joins (the edge's no-JS form);
    /// the proof-of-work is then skipped if the queue's `allow_no_js` says so.
    #[serde(default)]
    pub no_js: Option<String>,
}

/// Answer of `POST /assign_queue_pos`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignResponse {
    /// The signed ticket.
    pub request_id: String,
    /// *Extension*: the place, already stored when this answer is sent (`null` for a
    /// pre-queue ticket, whose place is drawn at opening).
    pub position: Option<u64>,
}

/// Answer of `GET /queue_pos/{queue_id}/{request_id}` and `GET /serving_pos/{queue_id}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionResponse {
    /// The position.
    pub position: u64,
    /// *Extension* (`queue_pos`): places between the serving position and this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u64>,
    /// *Extension* (`queue_pos`): estimated wait with its band, once the queue's admission
    /// rate has been measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<crate::eta::EtaBand>,
    /// *Extension*: measured admission rate, visitors per second (automatic admission).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission_rate: Option<f64>,
    /// *Extension* (edge): the synced state's version; pages drop older answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// *Extension* (edge): when to ask again, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_ms: Option<u64>,
    /// *Extension* (`queue_pos`): what the visitor waits for and the operator's message,
    /// each field present only when set.
    #[serde(flatten)]
    pub shown: Presentation,
}

/// Answer of `GET /waiting_num/{queue_id}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingNumResponse {
    /// Visitors assigned a place, not holding a token, not expired.
    pub waiting_num: u64,
    /// *Extension* (edge): the synced state's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// *Extension* (edge): when to ask again, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_ms: Option<u64>,
}

/// A visitor's place as the edge answers it (`queue_pos` at the edge, and the JSON answer of
/// a protected path): every field is present, `null` when unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceFields {
    /// The place.
    pub position: u64,
    /// Places between the serving position and this one.
    pub ahead: u64,
    /// Estimated wait, once the admission rate is measured.
    pub eta: Option<crate::eta::EtaBand>,
    /// The last unix second a served place can be claimed (position expiry).
    pub claim_by: Option<u64>,
    /// Seconds left to claim.
    pub claim_in_secs: Option<u64>,
}

/// `GET {prefix}/queue_pos/{queue_id}/{request_id}` at the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgePosition {
    /// The place.
    #[serde(flatten)]
    pub place: PlaceFields,
    /// The synced state's version.
    pub version: u64,
    /// When to ask again, milliseconds (by how far back the place is, jittered).
    pub next_poll_ms: u64,
    /// What the visitor waits for and the operator's message (each only when set), so a
    /// page that polls shows a change within the edge's freshness bound.
    #[serde(flatten)]
    pub shown: Presentation,
}

/// `GET {prefix}/pow/challenge?queue_id=`: a proof-of-work challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// The challenge (`shared::pow`).
    pub challenge: String,
    /// Leading zero bits asked.
    pub difficulty: u8,
    /// Unix seconds after which it is refused.
    pub expires_at: u32,
    /// The queue it is for.
    pub queue_id: String,
    /// Always `sha256-leading-zero-bits`.
    pub algorithm: String,
}

/// The JSON answer of a protected path to a visitor without a token (`Accept:
/// application/json`): everything the waiting-room page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedAnswer {
    /// Always `queued`.
    pub error: String,
    /// What to do.
    pub message: String,
    /// The queue guarding the path.
    pub queue_id: String,
    /// `new`, `pending`, `waiting`, `ready` or `expired`.
    pub state: String,
    /// The waiting-room page's address.
    pub room: String,
    /// Where to enqueue.
    pub join: String,
    /// Serving position.
    pub serving_pos: u64,
    /// Visitors waiting.
    pub waiting_num: u64,
    /// The synced state's version.
    pub version: u64,
    /// When to ask again, milliseconds.
    pub next_poll_ms: u64,
    /// The presented ticket's place, when it has one.
    #[serde(flatten)]
    pub place: Option<PlaceFields>,
    /// What the visitor waits for and the operator's message, each only when set.
    #[serde(flatten)]
    pub shown: Presentation,
}

/// Answer `200` of `POST /generate_token`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The signed JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// Answer `202` of `POST /generate_token` (*extension*: the contract gives no body).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StillQueued {
    /// The visitor's position.
    pub position: u64,
    /// The current serving position.
    pub serving_pos: u64,
    /// Suggested wait before asking again, milliseconds.
    pub retry_after_ms: u64,
    /// *Extension* (edge): the same, as status answers name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_ms: Option<u64>,
    /// *Extension* (edge): the synced state's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// A queue as stored and returned by the private API: one schema for every setting.
///
/// The first five fields are the contract's; the rest are extensions with defaults, so a
/// client that sends only the contract's fields gets a working queue.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Server-assigned, never changes, never reused. Always serialized first (the Redis
    /// store fills it in place).
    pub id: u32,
    /// Unique slug, `[a-z0-9_-]{1,32}`; cannot change.
    pub queue_id: String,
    /// Life of an access token from issue, seconds.
    pub token_validity_second: u32,
    /// Whether unclaimed places expire.
    pub enable_queue_position_expiry: bool,
    /// How long a place stays claimable once the serving position has passed it, seconds.
    pub position_expiry_second: u32,
    /// *Extension*: what the edge does on this queue's protected paths.
    #[serde(default)]
    pub mode: QueueMode,
    /// *Extension*: path prefixes the edge protects with this queue.
    #[serde(default)]
    pub paths: Vec<String>,
    /// *Extension*: path prefixes or `*.ext` patterns the edge passes straight through.
    #[serde(default)]
    pub bypass: Vec<String>,
    /// *Extension*: whether `paths` and `bypass` compare case-sensitively; default false,
    /// the safe side (an origin that routes `/Checkout` to `/checkout` stays protected).
    #[serde(default)]
    pub case_sensitive: bool,
    /// *Extension*: proof-of-work difficulty (leading zero bits) for enqueueing; 0 = off.
    #[serde(default)]
    pub pow_difficulty: u8,
    /// *Extension*: with no synced state, the edge lets visitors through (`true`) or holds
    /// them in the waiting room (`false`).
    #[serde(default)]
    pub fail_open: bool,
    /// *Extension*: status of the edge's waiting-room answer: 200, 202 or 429.
    #[serde(default = "default_waiting_status")]
    pub waiting_status: u16,
    /// *Extension*: automatic admission; `None` = manual (operator increments by hand).
    #[serde(default)]
    pub admission: Option<crate::admission::AdmissionConfig>,
    /// *Extension*: when the pre-queue opens (unix seconds): arrivals from then until
    /// `opens_at` are put in a random order at `opens_at`. Before it, enqueue is a 503.
    #[serde(default)]
    pub prequeue_opens_at: Option<u64>,
    /// *Extension*: when the queue opens (unix seconds); without a pre-queue, enqueue is a
    /// 503 before it.
    #[serde(default)]
    pub opens_at: Option<u64>,
    /// *Extension*: after this (unix seconds), new enqueues are refused.
    #[serde(default)]
    pub closes_at: Option<u64>,
    /// *Extension*: longest a session may last when the origin extends it
    /// (`extend_session`), seconds from issue; 0 = sessions cannot be extended.
    #[serde(default)]
    pub session_max_second: u32,
    /// *Extension*: visitors without JavaScript may join without the proof-of-work (which
    /// needs a script). Anyone can claim to have no JavaScript, so this makes a place free
    /// of work for bots too: leave it off for sales that draw bots.
    #[serde(default)]
    pub allow_no_js: bool,
    /// *Extension*: the operator's waiting-room page (HTML with the `{{name}}` variables of
    /// `shared::template::VARIABLES`, at most 32 KiB); `None` = the default page.
    #[serde(default)]
    pub template: Option<String>,
    /// *Extension*: admitted visitors' access tokens reach the origin (cookie or
    /// `Authorization`), for an origin that verifies them itself against the JWKS; default
    /// false: the edge strips them with every other Anteroom cookie and header.
    #[serde(default)]
    pub forward_token: bool,
    /// *Extension*, server-set: when the queue was created, unix ms. The edge prefers the
    /// newer of two queues with one slug (a delete and re-create it has not heard of yet).
    #[serde(default)]
    pub created_at: u64,
    /// *Extension*: what the visitor waits for, plain text (`The Night Orchestra`); the
    /// default page says it, so a visitor knows which line they are in.
    #[serde(default)]
    pub display_name: Option<String>,
    /// *Extension*: the site's name shown as a text logo above it (`Riverside Tickets`):
    /// no image, so the page loads nothing from elsewhere.
    #[serde(default)]
    pub logo_text: Option<String>,
    /// *Extension*: the operator's message to the people waiting, plain text in the page's
    /// two languages; `None` = no message.
    #[serde(default)]
    pub notice: Option<Notice>,
}

fn default_waiting_status() -> u16 {
    200
}

/// Seconds of serving history kept beyond a queue's expiry window.
pub const HISTORY_MARGIN_SECS: u64 = 120;

impl QueueConfig {
    /// The position-expiry window, seconds, if places expire.
    pub fn expiry(&self) -> Option<u64> {
        self.enable_queue_position_expiry
            .then(|| crate::place::expiry_window(self.position_expiry_second))
    }

    /// History the store must keep for this queue: its expiry window plus a margin.
    pub fn keep_secs(&self) -> u64 {
        crate::place::expiry_window(self.position_expiry_second) + HISTORY_MARGIN_SECS
    }

    /// A queue with every setting at its default (id 0 until stored).
    pub fn with_defaults(queue_id: impl Into<String>) -> Self {
        QueueConfig {
            id: 0,
            queue_id: queue_id.into(),
            token_validity_second: 300,
            enable_queue_position_expiry: false,
            position_expiry_second: 900,
            mode: Default::default(),
            paths: Vec::new(),
            bypass: Vec::new(),
            case_sensitive: false,
            pow_difficulty: 0,
            fail_open: false,
            waiting_status: default_waiting_status(),
            admission: None,
            prequeue_opens_at: None,
            opens_at: None,
            closes_at: None,
            session_max_second: 0,
            allow_no_js: false,
            template: None,
            forward_token: false,
            created_at: 0,
            display_name: None,
            logo_text: None,
            notice: None,
        }
    }

    /// What the waiting room shows of this queue besides the numbers.
    pub fn presentation(&self) -> Presentation {
        Presentation {
            display_name: self.display_name.clone(),
            logo_text: self.logo_text.clone(),
            notice: self.notice.clone(),
        }
    }
}

/// An operator's message to the people waiting, plain text (no markup: the page escapes it)
/// in English and Chinese. One of the two may be empty: the page then shows the other.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// English text.
    #[serde(default)]
    pub en: String,
    /// Chinese text.
    #[serde(default)]
    pub zh: String,
}

/// What the waiting room shows besides the numbers: carried to the edge in each queue's
/// state and in the answers a page polls. Every field is left out of JSON when unset.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presentation {
    /// What the visitor waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The site's name as a text logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_text: Option<String>,
    /// The operator's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Notice>,
}

impl Presentation {
    /// Nothing set.
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.logo_text.is_none() && self.notice.is_none()
    }
}

/// Body of `POST /api/queue` (create) and `PUT /api/queue` (update, with `id`). Every field
/// but `queue_id` (create) and `id` (update) is optional; a PUT changes only what it names.
///
/// Unknown fields are refused so a typo is an error instead of a silently ignored setting.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueInput {
    /// Required on PUT; refused on POST.
    #[serde(default)]
    pub id: Option<u32>,
    /// Required on POST; on PUT it may be given but must equal the stored one.
    #[serde(default)]
    pub queue_id: Option<String>,
    /// Default 300.
    #[serde(default)]
    pub token_validity_second: Option<u32>,
    /// Default false.
    #[serde(default)]
    pub enable_queue_position_expiry: Option<bool>,
    /// Default 900.
    #[serde(default)]
    pub position_expiry_second: Option<u32>,
    /// Default `queue`.
    #[serde(default)]
    pub mode: Option<QueueMode>,
    /// Default none (the edge protects nothing with this queue).
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// Default none.
    #[serde(default)]
    pub bypass: Option<Vec<String>>,
    /// Default false.
    #[serde(default)]
    pub case_sensitive: Option<bool>,
    /// Default 0 (off).
    #[serde(default)]
    pub pow_difficulty: Option<u8>,
    /// Default false (fail closed).
    #[serde(default)]
    pub fail_open: Option<bool>,
    /// Default 200.
    #[serde(default)]
    pub waiting_status: Option<u16>,
    /// Default manual. `null` switches back to manual.
    #[serde(default, with = "double_option")]
    pub admission: Option<Option<crate::admission::AdmissionConfig>>,
    /// Default none. `null` clears it.
    #[serde(default, with = "double_option")]
    pub prequeue_opens_at: Option<Option<u64>>,
    /// Default none. `null` clears it.
    #[serde(default, with = "double_option")]
    pub opens_at: Option<Option<u64>>,
    /// Default none. `null` clears it.
    #[serde(default, with = "double_option")]
    pub closes_at: Option<Option<u64>>,
    /// Default 0 (no extension).
    #[serde(default)]
    pub session_max_second: Option<u32>,
    /// Default false.
    #[serde(default)]
    pub allow_no_js: Option<bool>,
    /// Default none (the built-in page). `null` goes back to it.
    #[serde(default, with = "double_option")]
    pub template: Option<Option<String>>,
    /// Default false.
    #[serde(default)]
    pub forward_token: Option<bool>,
    /// Default none. `null` clears it.
    #[serde(default, with = "double_option")]
    pub display_name: Option<Option<String>>,
    /// Default none. `null` clears it.
    #[serde(default, with = "double_option")]
    pub logo_text: Option<Option<String>>,
    /// Default none. `null` clears it (one call takes the message down).
    #[serde(default, with = "double_option")]
    pub notice: Option<Option<Notice>>,
}

/// Form of `POST /api/queue/extend_session`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendForm {
    /// The queue slug.
    #[serde(default)]
    pub queue_id: Option<String>,
    /// The visitor's ticket.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Seconds to add to the session's expiry (capped by the queue's `session_max_second`).
    #[serde(default)]
    pub extend_by: Option<String>,
}

/// `GET /prequeue/{queue_id}`: the public record of a queue's pre-queue draw. The
/// commitment is public before the pre-queue opens; the seed once the draw is done, so
/// anyone can recompute every place with `shared::prequeue::drawn_place`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrequeueInfo {
    /// Numeric queue id (part of the permutation key).
    pub id: u32,
    /// SHA-256 of the seed, hex.
    pub commitment: String,
    /// When the pre-queue opens, unix seconds.
    pub prequeue_opens_at: Option<u64>,
    /// When the draw happens, unix seconds.
    pub opens_at: Option<u64>,
    /// After the draw: places taken before it (pre-queue places are `base + drawn place`).
    pub base: Option<u64>,
    /// After the draw: the number of pre-queue arrivals.
    pub count: Option<u64>,
    /// After the draw: the seed, hex.
    pub seed: Option<String>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// Form of `POST /api/queue/increment_serving_position`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementForm {
    /// The queue slug.
    #[serde(default)]
    pub queue_id: Option<String>,
    /// How far to advance, at least 1.
    #[serde(default)]
    pub increment_by: Option<String>,
}

/// Answer of `POST /api/queue/increment_serving_position`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingPosResponse {
    /// The serving position after the increment.
    pub serving_pos: u64,
}

/// Form of `POST /api/queue/update_token_status`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenStatusForm {
    /// The queue slug.
    #[serde(default)]
    pub queue_id: Option<String>,
    /// The visitor's ticket.
    #[serde(default)]
    pub request_id: Option<String>,
    /// `1` COMPLETED, `2` ABANDONED.
    #[serde(default)]
    pub status: Option<String>,
}

/// Answer of `GET /api/queue/{queue_id}/active_token_num`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveNumResponse {
    /// Sessions issued, not completed or abandoned, not expired.
    pub active_num: u64,
}

/// Body of `POST /api/queue/{queue_id}/health`: the origin's telemetry.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthReport {
    /// Latency percentile the origin measures (p95 recommended), milliseconds.
    pub latency_ms: f64,
    /// Share of failed requests, 0..=1.
    pub error_rate: f64,
    /// Work in progress at the origin, if known.
    #[serde(default)]
    pub in_flight: Option<u64>,
}

/// `GET /api/queue/{queue_id}/status`: what an operator sees of a running queue.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// The queue's settings.
    pub queue: QueueConfig,
    /// Serving position.
    pub serving_pos: u64,
    /// Positions handed out.
    pub assigned: u64,
    /// Visitors waiting.
    pub waiting_num: u64,
    /// Live sessions.
    pub active_num: u64,
    /// Measured admission rate, visitors per second.
    pub admission_rate: f64,
    /// Its standard deviation.
    pub admission_rate_sd: f64,
    /// The wait of the last position in line.
    pub eta_last_position: Option<crate::eta::EtaBand>,
    /// The controller's last decision.
    pub last_decision: Option<crate::admission::TickDecision>,
    /// The origin's last health report.
    pub last_health: Option<crate::admission::HealthReading>,
    /// The health law's current rate.
    pub health_rate: Option<f64>,
}

/// Faults a coordinator process found since it started (`GET /api/health`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// Queues that vanished from the registry without an operator deleting them.
    pub queues_lost: u64,
    /// Times the key ring was missing from the store and was written back from memory.
    pub keys_restored: u64,
    /// Times a queue counter was found below what the process had seen, and raised.
    pub counters_raised: u64,
}

/// A queue the coordinator knew that vanished from the store without being deleted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostQueue {
    /// Its id.
    pub id: u32,
    /// Its slug.
    pub queue_id: String,
}

/// `GET /api/health`: the coordinator process's view of faults.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthView {
    /// `redis`, `redis-cluster` or `memory`.
    pub store: String,
    /// Whether the store answered a PING just now.
    pub store_up: bool,
    /// Faults found since this process started.
    pub faults: FaultCounts,
    /// Queues held because the store lost them: their slugs answer 503 `queue_lost` until
    /// an operator re-creates or deletes them.
    pub lost_queues: Vec<LostQueue>,
}

/// How a queue treats its protected paths.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueMode {
    /// Visitors need a token.
    #[default]
    Queue,
    /// Everyone passes (the queue is configured but not enforcing).
    Passthrough,
    /// Nobody passes; the edge shows a closed page.
    Closed,
}

/// Body of `POST /api/admin_keys`: a new named admin key (bootstrap key only).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminKeyInput {
    /// The key's name, `[a-z0-9_-]{1,32}`: what audit entries and events name it by.
    pub name: Option<String>,
}

/// Answer of `POST /api/admin_keys`: the only time the key itself is shown.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAdminKey {
    /// The key's name.
    pub name: String,
    /// The bearer key; only its SHA-256 is stored.
    pub key: String,
}

/// A named admin key as listed (`GET /api/admin_keys`): never the key.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminKeyView {
    /// The key's name.
    pub name: String,
    /// When it was added, unix ms.
    pub created_at: u64,
    /// The name of the key that added it.
    pub created_by: String,
}

/// One field an operator's change touched, with its value before and after (`null` when it
/// did not exist). A queue's `template` is shown by its SHA-256 and size, not its text.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field, dotted for nested ones (`admission.paused`).
    pub field: String,
    /// Its value before.
    pub before: serde_json::Value,
    /// Its value after.
    pub after: serde_json::Value,
}

/// One audit entry: a change made through the private API.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Stream id `ms-seq`, increasing; pass it as `since` to get the entries after it.
    #[serde(default)]
    pub id: String,
    /// When, unix ms.
    pub at_ms: u64,
    /// The name of the key that made the change (`bootstrap` for the configured key).
    pub key: String,
    /// What was done: `queue.create`, `queue.update`, `queue.delete`, `queue.pause`,
    /// `queue.resume`, `queue.drain`, `queue.open`, `serving.increment`, `session.status`,
    /// `keys.rotate`, `admin_key.add`, `admin_key.revoke`, `webhook.add`, `webhook.remove`,
    /// `console.sign_in`, `console.sign_out`.
    pub action: String,
    /// The queue's slug, when the change was to a queue.
    pub queue_id: Option<String>,
    /// The queue's numeric id.
    pub queue: Option<u32>,
    /// The fields changed.
    pub changes: Vec<FieldChange>,
    /// The caller's address as the private listener saw it.
    pub from: String,
}

/// `GET /api/audit`: a page of entries, oldest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Pass as `since` for the next page; `null` when the end was reached.
    pub next: Option<String>,
}

/// Body of `POST /api/webhooks`: an endpoint that receives events.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// `http://` or `https://` URL the events are POSTed to.
    pub url: Option<String>,
    /// Event types to send (`token_generated`, `session_updated`,
    /// `serving_position_advanced`, `queue_metrics`); empty or absent: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Queue slugs to send events of; empty or absent: all.
    #[serde(default)]
    pub queues: Vec<String>,
}

/// A webhook endpoint (`GET /api/webhooks`); the secret only in the answer that created it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    /// Its id.
    pub id: String,
    /// Where events go.
    pub url: String,
    /// Event types sent; empty: all.
    pub events: Vec<String>,
    /// Queues whose events are sent; empty: all.
    pub queues: Vec<String>,
    /// When it was added, unix ms.
    pub created_at: u64,
    /// The Standard Webhooks signing secret, `whsec_<base64>`: in the creation answer only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// An event POSTed to webhook endpoints, signed per the Standard Webhooks spec. The type
/// names and the fields of `data` that AWS Virtual Waiting Room's events also have carry its
/// names (`event_id` is the queue's slug there, `request_id`, `status`), so its consumers
/// move over.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// When it happened, RFC 3339.
    pub timestamp: String,
    /// Type and data.
    #[serde(flatten)]
    pub event: EventData,
}

/// The event's `type` and its `data`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum EventData {
    /// A visitor claimed a token: a new session.
    TokenGenerated(SessionEvent),
    /// A session ended: `completed`, `abandoned` (by the origin or an operator) or `expired`.
    SessionUpdated(SessionEvent),
    /// The serving position moved.
    ServingPositionAdvanced(ServingEvent),
    /// Once a minute per queue: the minute's figures.
    QueueMetrics(MetricsEvent),
}

/// `data` of `token_generated` and `session_updated`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// The queue's slug (AWS: the waiting room's event id).
    pub event_id: String,
    /// The queue's slug.
    pub queue_id: String,
    /// The visitor's ticket; `null` for an expiry (the coordinator keeps no tickets).
    pub request_id: Option<String>,
    /// The session id (the token's `jti`).
    pub jti: String,
    /// The visitor's place.
    pub position: u64,
    /// `session_updated`: `completed`, `abandoned` or `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `token_generated`: when the token expires, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// `session_updated` by a call: the name of the key that ended it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// `data` of `serving_position_advanced`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingEvent {
    /// The queue's slug (AWS: event id).
    pub event_id: String,
    /// The queue's slug.
    pub queue_id: String,
    /// The serving position before.
    pub previous: u64,
    /// The serving position now (AWS: `serving_num`).
    pub serving_num: u64,
    /// `controller` or the name of the key that advanced it.
    pub by: String,
}

/// `data` of `queue_metrics`: the last minute's figures (the deltas) and the queue's state
/// at its end, with the totals AWS's `waiting_room_metrics` carries under its names.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsEvent {
    /// The queue's slug (AWS: event id).
    pub event_id: String,
    /// The queue's slug.
    pub queue_id: String,
    /// Start of the minute, unix seconds.
    pub minute_start: u64,
    /// Length of the interval, seconds (60 unless a minute was skipped).
    pub secs: u64,
    /// Visitors waiting at its end.
    pub waiting: u64,
    /// Live sessions at its end.
    pub active: u64,
    /// Places handed out in it.
    pub arrivals: u64,
    /// Places admitted in it.
    pub admitted: u64,
    /// Sessions completed in it.
    pub completed: u64,
    /// Sessions abandoned in it.
    pub abandoned: u64,
    /// Sessions expired in it.
    pub expired: u64,
    /// Total places handed out (AWS: `queue_counter`).
    pub queue_counter: u64,
    /// Serving position (AWS: `serving_number`).
    pub serving_number: u64,
    /// Tokens ever issued (AWS: `total_num_tokens`).
    pub total_num_tokens: u64,
    /// Sessions ever completed (AWS: `completed_sessions`).
    pub completed_sessions: u64,
    /// Sessions ever abandoned (AWS: `abandoned_sessions`).
    pub abandoned_sessions: u64,
    /// Live sessions, as `active` (AWS: `num_active_tokens`).
    pub num_active_tokens: u64,
}

/// `GET /api/queue/{queue_id}/report`: the post-sale report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The queue's slug.
    pub queue_id: String,
    /// When the report was made, unix seconds.
    pub generated_at: u64,
    /// Totals since the queue was created.
    pub totals: ReportTotals,
    /// One row per stored minute (oldest first), the last one up to now.
    pub minutes: Vec<ReportMinute>,
    /// From joining to being served, of visitors who claimed.
    pub wait_to_served: WaitPercentiles,
    /// From joining to claiming.
    pub wait_to_claim: WaitPercentiles,
    /// Whether admissions fell within the ETA band shown at joining.
    pub eta_honesty: EtaHonesty,
    /// The busiest minutes.
    pub peaks: Peaks,
}

/// Totals of a report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReportTotals {
    /// Places handed out.
    pub arrivals: u64,
    /// Places the serving position passed.
    pub admitted: u64,
    /// Tokens claimed.
    pub claimed: u64,
    /// Sessions completed.
    pub completed: u64,
    /// Sessions abandoned.
    pub abandoned: u64,
    /// Sessions expired.
    pub expired: u64,
    /// Sessions live now.
    pub active: u64,
    /// Served places that expired without a claim.
    pub never_claimed: u64,
    /// `never_claimed / admitted` (0 when nobody was admitted).
    pub never_claimed_share: f64,
    /// Visitors waiting now.
    pub waiting: u64,
}

/// One minute of a report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReportMinute {
    /// Start, unix seconds.
    pub start: u64,
    /// Length, seconds (60, less for the current minute, more where minutes were skipped).
    pub secs: u64,
    /// Places handed out.
    pub arrivals: u64,
    /// Places admitted.
    pub admitted: u64,
    /// Tokens claimed.
    pub claimed: u64,
    /// Sessions completed.
    pub completed: u64,
    /// Sessions abandoned.
    pub abandoned: u64,
    /// Sessions expired.
    pub expired: u64,
    /// Line length at its end.
    pub waiting: u64,
    /// Live sessions at its end.
    pub active: u64,
    /// Measured admission rate at its end, per second.
    pub admission_rate: f64,
}

/// Wait percentiles, seconds: each the upper bound of its histogram bucket (buckets are 1 s
/// wide up to 10 s, then 10% wide), so the true value is at most this and above 91% of it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WaitPercentiles {
    /// Visitors counted.
    pub count: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// ETA honesty: of admitted visitors who were shown a band when they joined, the shares
/// admitted within it, before it and after it (`docs/observability.md#the-report`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EtaHonesty {
    /// Admitted visitors who were shown a band.
    pub counted: u64,
    /// Admitted visitors shown no band (no rate measured yet, manual admission).
    pub no_band: u64,
    /// Share admitted within the band.
    pub within: Option<f64>,
    /// Share admitted earlier than its low end.
    pub early: Option<f64>,
    /// Share admitted later than its high end.
    pub late: Option<f64>,
}

/// The busiest minutes of a report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    /// Highest arrivals per second over a minute.
    pub arrivals_per_sec: f64,
    /// Its minute's start, unix seconds.
    pub arrivals_at: Option<u64>,
    /// Highest admissions per second over a minute.
    pub admitted_per_sec: f64,
    /// Its minute's start.
    pub admitted_at: Option<u64>,
    /// Longest line at a minute's end.
    pub waiting: u64,
    /// Its minute's start.
    pub waiting_at: Option<u64>,
}

/// Body of `POST /console/session`: sign in to the console with an operator key.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSignIn {
    /// An admin key (the bootstrap key or a named one).
    pub key: Option<String>,
}

/// A console session as its holder sees it (`POST`/`GET /console/session`); the session id
/// itself travels only in its `HttpOnly` cookie.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSession {
    /// The name of the key signed in with: what audit entries name.
    pub key: String,
    /// Whether it is the bootstrap key (which alone manages named keys).
    pub bootstrap: bool,
    /// To send as `X-CSRF-Token` with every change made with the session.
    pub csrf: String,
    /// When the session ends, unix ms.
    pub expires_at_ms: u64,
}

/// Where a queue stands, for the operator.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Taking visitors and admitting them.
    Open,
    /// Not open yet (`opens_at` ahead, no pre-queue open).
    Scheduled,
    /// Taking arrivals for the draw at `opens_at`.
    Prequeue,
    /// Taking visitors, admitting nobody.
    Paused,
    /// No new places or sessions; running sessions finish.
    Draining,
    /// Mode `closed`, or past `closes_at`.
    Closed,
    /// Mode `passthrough`: everyone passes the edge.
    Passthrough,
    /// The store lost the queue; held until an operator re-creates or deletes it.
    Lost,
}

/// Something an operator should look at.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// `origin_unhealthy`, `origin_silent`, `publisher_stale`, `line_stuck`, `queue_lost`,
    /// `store_down` or `redis_errors`.
    pub code: String,
    /// What is off, with its numbers.
    pub message: String,
}

/// The origin's last health report, with its age.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OriginHealth {
    /// Latency the origin measured, milliseconds.
    pub latency_ms: f64,
    /// Share of failed requests.
    pub error_rate: f64,
    /// Work in progress at the origin, if reported.
    pub in_flight: Option<u64>,
    /// Seconds since the report arrived.
    pub age_secs: f64,
}

/// One queue on the operator's overview (`GET /api/overview`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueSummary {
    /// Numeric id.
    pub id: u32,
    /// Slug.
    pub queue_id: String,
    /// Display name, if set.
    pub display_name: Option<String>,
    /// Where it stands.
    pub state: QueueState,
    /// `manual`, `fixed_rate`, `capacity` or `health`.
    pub strategy: String,
    /// Serving position.
    pub serving_pos: u64,
    /// Positions handed out.
    pub assigned: u64,
    /// Visitors waiting.
    pub waiting: u64,
    /// Live sessions.
    pub active: u64,
    /// The session cap, if the policy has one.
    pub max_active: Option<u64>,
    /// Measured admission rate, per second.
    pub admission_rate: f64,
    /// The policy's target rate, per second (fixed rate; the health law's current rate).
    pub target_rate: Option<f64>,
    /// Places handed out per minute, over the last minute or two.
    pub arrivals_per_min: f64,
    /// The wait of the last place in line, when a rate is measured.
    pub eta_back: Option<crate::eta::EtaBand>,
    /// The origin's last health report.
    pub origin: Option<OriginHealth>,
    /// Seconds since the queue was last published to the edge (`null`: never, or no
    /// publisher configured).
    pub published_age_secs: Option<f64>,
    /// Seconds since the serving position last moved (since creation if it never did).
    pub serving_moved_age_secs: u64,
    /// What is off.
    pub warnings: Vec<Warning>,
}

/// `GET /api/overview`: every queue and the process's view of the store.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// When it was read, unix ms.
    pub generated_at_ms: u64,
    /// `redis`, `redis-cluster` or `memory`.
    pub store: String,
    /// Whether the store answered just now.
    pub store_up: bool,
    /// Whether this coordinator publishes to the edge.
    pub publishing: bool,
    /// Redis commands that failed since this process started (`null` with metrics off).
    pub redis_errors: Option<u64>,
    /// Warnings not about one queue (store down, Redis errors in the last minute).
    pub warnings: Vec<Warning>,
    /// Every queue, by slug.
    pub queues: Vec<QueueSummary>,
}

/// `GET /api/queue/{queue_id}/live`: what the console's queue page draws and acts on.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueLive {
    /// The queue's settings.
    pub queue: QueueConfig,
    /// Its summary, as on the overview.
    pub summary: QueueSummary,
    /// The minutes of the last hour (from the stored samples), the last one up to now.
    pub minutes: Vec<ReportMinute>,
}

/// `GET /api/queue_defaults`: what a new queue gets, and the bounds the API checks (the
/// console's create form shows both; the API's 400 messages stay the word on validity).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueDefaults {
    /// Every setting at its default (id 0, empty slug).
    pub queue: QueueConfig,
    /// Largest `token_validity_second`.
    pub max_token_validity_second: u32,
    /// Smallest and largest `position_expiry_second`.
    pub min_position_expiry_second: u32,
    /// Largest `position_expiry_second`.
    pub max_position_expiry_second: u32,
    /// Largest `pow_difficulty`.
    pub max_pow_difficulty: u8,
    /// Longest `display_name`, characters.
    pub max_display_name: usize,
    /// Longest `logo_text`, characters.
    pub max_logo_text: usize,
    /// Longest `notice` text per language, characters.
    pub max_notice: usize,
}
