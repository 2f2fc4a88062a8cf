//! Wire types: every JSON and form body that crosses the network, in one place.
//!
//! Field names follow the API contract (`seeds/002`). Fields marked *extension* are additions
//! listed in the README's extension table; clients written against the contract ignore them.

use serde::{Deserialize, Serialize};

/// Body of every 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `invalid_parameter`.
    pub error: String,
    /// A human-readable explanation, safe to show.
    pub message: String,
}

/// Form of `POST /assign_queue_pos` and `POST /generate_token` (`request_id` only for the latter).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueForm {
    /// The queue slug.
    #[serde(default)]
    pub queue_id: Option<String>,
    /// The visitor's ticket.
    #[serde(default)]
    pub request_id: Option<String>,
}

/// Answer of `POST /assign_queue_pos`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignResponse {
    /// The signed ticket.
    pub request_id: String,
    /// *Extension*: the place, already stored when this answer is sent (`null` for a
    /// pre-queue ticket, whose place is drawn at opening).
    pub position: Option<u64>,
}

/// Answer of `GET /queue_pos/{queue_id}/{request_id}` and `GET /serving_pos/{queue_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionResponse {
    /// The position.
    pub position: u64,
}

/// Answer of `GET /waiting_num/{queue_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingNumResponse {
    /// Visitors assigned a place, not holding a token, not expired.
    pub waiting_num: u64,
}

/// Answer `200` of `POST /generate_token`.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StillQueued {
    /// The visitor's position.
    pub position: u64,
    /// The current serving position.
    pub serving_pos: u64,
    /// Suggested wait before asking again, milliseconds.
    pub retry_after_ms: u64,
}

/// A queue as stored and returned by the private API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Server-assigned, never changes, never reused.
    pub id: u32,
    /// Unique slug, `[a-z0-9_-]{1,32}`; cannot change.
    pub queue_id: String,
    /// Life of an access token from issue, seconds.
    pub token_validity_second: u32,
    /// Whether unclaimed places expire.
    pub enable_queue_position_expiry: bool,
    /// How long a place stays claimable once the serving position has passed it, seconds.
    pub position_expiry_second: u32,
}

/// Body of `POST /api/queue` (create) and `PUT /api/queue` (update, with `id`).
///
/// Unknown fields are refused so a typo is an error instead of a silently ignored setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Form of `POST /api/queue/increment_serving_position`.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingPosResponse {
    /// The serving position after the increment.
    pub serving_pos: u64,
}

/// Form of `POST /api/queue/update_token_status`.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveNumResponse {
    /// Sessions issued, not completed or abandoned, not expired.
    pub active_num: u64,
}

/// One public key of the JWKS (RFC 8037 OKP key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id, as in token headers.
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

impl Jwk {
    /// The JWK of an Ed25519 public key.
    pub fn ed25519(kid: &str, public: &[u8]) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: crate::b64::encode(public),
            kid: kid.into(),
            alg: crate::token::ALG.into(),
            use_: "sig".into(),
        }
    }
}

/// `GET /.well-known/jwks.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// Current and recently retired public keys.
    pub keys: Vec<Jwk>,
}
