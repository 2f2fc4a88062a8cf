//! One error vocabulary for the coordinator and the edge: every `error` code either can
//! answer, with its HTTP status and a default message. The same input gets the same status and
//! code whichever side answers it (`miniflare-tests/contract.test.mjs` sends the same bad
//! inputs to both and compares).
//!
//! A message may be more specific than the default (which parameter is wrong, and how), but
//! never carries internal detail: internal errors always answer the default message.

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: a missing or malformed parameter.
    InvalidParameter,
    /// 400: `queue_id` names no queue.
    UnknownQueue,
    /// 400: a `request_id` that fails its MAC, does not decode, or belongs to another queue.
    InvalidRequestId,
    /// 400 (edge): a path that cannot be read one way only.
    InvalidPath,
    /// 401: a private call without the right key, or a sync request failing its MAC.
    Unauthorized,
    /// 403: the queue asks a proof-of-work and none came.
    PowRequired,
    /// 403: a proof-of-work that does not verify (MAC, queue, client, counter).
    PowInvalid,
    /// 403: a proof-of-work challenge past its expiry.
    PowExpired,
    /// 403: a proof-of-work solution already used.
    PowReplayed,
    /// 403: the queue is closed (mode, or past `closes_at`).
    QueueClosed,
    /// 403: the queue is draining: no new places, no new sessions.
    QueueDraining,
    /// 403: a forged or stale edge client header.
    BadClientHeader,
    /// 403: edge-only mode and the call did not come through the edge.
    EdgeRequired,
    /// 403 (edge): a non-GET request on a protected path without a valid token.
    TokenRequired,
    /// 403 (edge): a waiting-room form posted from another site.
    CrossSite,
    /// 403: a change made with a console session without its CSRF token.
    CsrfFailed,
    /// 404: no such route or asset.
    NotFound,
    /// 404: the place is not decided yet (pre-queue before the draw) or not committed.
    NotReady,
    /// 404: the queue has no pre-queue.
    NoPrequeue,
    /// 404: no queue with this id (private API).
    QueueNotFound,
    /// 405: wrong method for the route.
    MethodNotAllowed,
    /// 409: `queue_id` already in use.
    DuplicateQueueId,
    /// 409: `queue_id` cannot change.
    ImmutableQueueId,
    /// 409: the signing key comes from configuration.
    KeysFromConfig,
    /// 409: the queue's sessions cannot be extended.
    ExtensionDisabled,
    /// 409: a named record (an admin key) with this name exists.
    NameTaken,
    /// 409: pause, resume and drain need automatic admission.
    AdmissionManual,
    /// 410: the place expired.
    Expired,
    /// 410: the session ended.
    SessionEnded,
    /// 410: the ticket's queue was deleted.
    QueueReplaced,
    /// 413: body over the limit.
    PayloadTooLarge,
    /// 415: wrong content type.
    UnsupportedMediaType,
    /// 500: a bug or a platform failure (logged, never echoed).
    Internal,
    /// 502 (edge): the origin could not be reached.
    BadGateway,
    /// 503: storage or the service is temporarily unavailable.
    Unavailable,
    /// 503: the queue is not open yet.
    NotOpen,
    /// 503: admissions are paused.
    Paused,
    /// 503: the store lost this queue; held until an operator acts.
    QueueLost,
    /// 503 (edge): no synced state for a known queue yet.
    NotSynced,
    /// 503 (edge): the coordinator cannot be reached.
    CoordinatorUnavailable,
    /// 503 (edge): KV refused a write.
    KvWriteFailed,
}

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: [ErrorCode; 41] = [
        ErrorCode::InvalidParameter,
        ErrorCode::UnknownQueue,
        ErrorCode::InvalidRequestId,
        ErrorCode::InvalidPath,
        ErrorCode::Unauthorized,
        ErrorCode::PowRequired,
        ErrorCode::PowInvalid,
        ErrorCode::PowExpired,
        ErrorCode::PowReplayed,
        ErrorCode::QueueClosed,
        ErrorCode::QueueDraining,
        ErrorCode::BadClientHeader,
        ErrorCode::EdgeRequired,
        ErrorCode::TokenRequired,
        ErrorCode::CrossSite,
        ErrorCode::CsrfFailed,
        ErrorCode::NotFound,
        ErrorCode::NotReady,
        ErrorCode::NoPrequeue,
        ErrorCode::QueueNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::DuplicateQueueId,
        ErrorCode::ImmutableQueueId,
        ErrorCode::KeysFromConfig,
        ErrorCode::ExtensionDisabled,
        ErrorCode::NameTaken,
        ErrorCode::AdmissionManual,
        ErrorCode::Expired,
        ErrorCode::SessionEnded,
        ErrorCode::QueueReplaced,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Internal,
        ErrorCode::BadGateway,
        ErrorCode::Unavailable,
        ErrorCode::NotOpen,
        ErrorCode::Paused,
        ErrorCode::QueueLost,
        ErrorCode::NotSynced,
        ErrorCode::CoordinatorUnavailable,
        ErrorCode::KvWriteFailed,
    ];

    /// `(code, status, default message)`.
    const fn parts(self) -> (&'static str, u16, &'static str) {
        use ErrorCode as E;
        match self {
            E::InvalidParameter => ("invalid_parameter", 400, "a parameter is missing or invalid"),
            E::UnknownQueue => ("unknown_queue", 400, "queue_id is not a known queue"),
            E::InvalidRequestId => ("invalid_request_id", 400, "request_id is not valid"),
            E::InvalidPath => (
                "invalid_path",
                400,
                "the path cannot be read unambiguously (encoded separators, bad escapes)",
            ),
            E::Unauthorized => ("unauthorized", 401, "missing or wrong credentials"),
            E::PowRequired => ("pow_required", 403, "a proof-of-work solution is required"),
            E::PowInvalid => ("pow_invalid", 403, "proof-of-work solution is not valid"),
            E::PowExpired => ("pow_expired", 403, "pow_challenge has expired"),
            E::PowReplayed => ("pow_replayed", 403, "proof-of-work challenge was already used"),
            E::QueueClosed => ("queue_closed", 403, "the queue is closed"),
            E::QueueDraining => ("queue_draining", 403, "the queue admits no new visitors"),
            E::BadClientHeader => ("bad_client_header", 403, "client header failed its check"),
            E::EdgeRequired => (
                "edge_required",
                403,
                "this endpoint answers only requests that come through the waiting room's edge",
            ),
            E::TokenRequired => ("token_required", 403, "a valid access token is required"),
            E::CrossSite => ("cross_site", 403, "this form must be sent from the waiting room"),
            E::CsrfFailed => (
                "csrf_failed",
                403,
                "a change made with a console session needs its csrf token, from the console",
            ),
            E::NotFound => ("not_found", 404, "no such endpoint"),
            E::NotReady => ("not_ready", 404, "place is not decided yet"),
            E::NoPrequeue => ("no_prequeue", 404, "this queue has no pre-queue"),
            E::QueueNotFound => ("queue_not_found", 404, "no queue with this id"),
            E::MethodNotAllowed => {
                ("method_not_allowed", 405, "method not allowed for this endpoint")
            }
            E::DuplicateQueueId => ("duplicate_queue_id", 409, "queue_id is already in use"),
            E::ImmutableQueueId => ("immutable_queue_id", 409, "queue_id cannot change"),
            E::KeysFromConfig => {
                ("keys_from_config", 409, "signing key is set by configuration; rotate it there")
            }
            E::ExtensionDisabled => {
                ("extension_disabled", 409, "sessions of this queue cannot be extended")
            }
            E::NameTaken => ("name_taken", 409, "the name is already in use"),
            E::AdmissionManual => (
                "admission_manual",
                409,
                "the queue has manual admission: pause, resume and drain need a strategy",
            ),
            E::Expired => ("expired", 410, "request_id has expired"),
            E::SessionEnded => ("session_ended", 410, "session has ended"),
            E::QueueReplaced => {
                ("queue_replaced", 410, "request_id belongs to a queue that was deleted")
            }
            E::PayloadTooLarge => ("payload_too_large", 413, "request body is too large"),
            E::UnsupportedMediaType => ("unsupported_media_type", 415, "wrong content type"),
            E::Internal => ("internal", 500, "the request could not be answered"),
            E::BadGateway => ("bad_gateway", 502, "the site could not be reached"),
            E::Unavailable => ("unavailable", 503, "storage is temporarily unavailable"),
            E::NotOpen => ("not_open", 503, "queue is not open yet"),
            E::Paused => ("paused", 503, "admissions are paused; try again shortly"),
            E::QueueLost => {
                ("queue_lost", 503, "this queue is unavailable; the operator has been alerted")
            }
            E::NotSynced => ("not_synced", 503, "the waiting room has no state for this queue yet"),
            E::CoordinatorUnavailable => (
                "coordinator_unavailable",
                503,
                "the waiting room cannot take this request right now; retry shortly",
            ),
            E::KvWriteFailed => {
                ("kv_write_failed", 503, "the state could not be stored; retry shortly")
            }
        }
    }

    /// The `error` field.
    pub const fn code(self) -> &'static str {
        self.parts().0
    }

    /// The HTTP status.
    pub const fn status(self) -> u16 {
        self.parts().1
    }

    /// The default message (lower case, no trailing period).
    pub const fn message(self) -> &'static str {
        self.parts().2
    }

    /// The code named `code`, if any.
    pub fn from_code(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|e| e.code() == code)
    }

    /// The body of an answer with this code and `message`.
    pub fn body(self, message: impl Into<String>) -> crate::wire::ErrorBody {
        crate::wire::ErrorBody { error: self.code().into(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let mut seen = std::collections::HashSet::new();
        for e in ErrorCode::ALL {
            assert!(seen.insert(e.code()), "{} twice", e.code());
            assert!((400..600).contains(&e.status()), "{e:?}");
            assert_eq!(ErrorCode::from_code(e.code()), Some(e));
            let m = e.message();
            assert!(!m.ends_with('.') && m.chars().next().is_some_and(char::is_lowercase), "{m}");
        }
    }
}
