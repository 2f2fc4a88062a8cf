//! The freshness pull: how an edge PoP asks the coordinator for a queue's state directly,
//! instead of waiting for Workers KV to carry it there, and the bounds that follow.
//!
//! KV is eventually consistent: a value written at one location can take a minute or more to
//! be read at another. So each PoP pulls `GET /edge/state/{queue_id}` and `GET /edge/index`
//! from the coordinator, keeps the answer in the PoP's cache (the Cache API, shared by its
//! isolates) for [`FRESH_MS`], and reads KV only when the coordinator cannot be reached. Every
//! coordinator process answers pulls from a per-process cache of at most
//! [`COORDINATOR_CACHE_MS`], so the coordinator sees about one pull per queue per PoP per
//! [`FRESH_MS`] whatever the number of visitors.
//!
//! Both directions are MAC'd under the one `EDGE_KEY` (HMAC-SHA256, base64url, labels of
//! their own so neither can be replayed as the other or as a sync request):
//!
//! | use | header | message |
//! |---|---|---|
//! | request | [`PULL_HEADER`] = `<ts>\|<mac>` | `"anteroom-pull-v1\n"` ‖ path ‖ `"\n"` ‖ ts |
//! | answer | `x-anteroom-timestamp`, `x-anteroom-signature` (as a sync request) | `"anteroom-pulled-v1\n"` ‖ path ‖ `"\n"` ‖ ts ‖ `"\n"` ‖ body |
//!
//! Timestamps are decimal unix ms within `WINDOW_MS` of the receiver's clock.

use hmac::Mac;

use crate::mac::{SyncError, hmac};

/// Header of a pull request: `<unix ms>|<mac>`.
pub const PULL_HEADER: &str = "x-anteroom-pull";
/// Header on every edge answer computed from synced state: how old that state is, ms.
pub const AGE_HEADER: &str = "x-anteroom-age-ms";
/// Path of a queue's state, followed by the slug.
pub const STATE_PATH: &str = "/edge/state/";
/// Path of the queue index.
pub const INDEX_PATH: &str = "/edge/index";

/// How long a PoP serves a pulled answer before pulling again, ms (the Cache API TTL).
pub const FRESH_MS: u64 = 1_000;
/// How long a coordinator process answers pulls from one snapshot, ms.
pub const COORDINATOR_CACHE_MS: u64 = 250;
/// Room for the pull's round trip and the gap between polls, ms.
pub const SLACK_MS: u64 = 500;
/// Bound on how old the state behind an edge answer is while the coordinator is reachable:
/// [`FRESH_MS`] + [`COORDINATOR_CACHE_MS`] + [`SLACK_MS`]. Measured by the multi-PoP test.
pub const STALENESS_BOUND_MS: u64 = FRESH_MS + COORDINATOR_CACHE_MS + SLACK_MS;
/// Seconds added to every position-expiry window: a place's expiry clock starts this long
/// after the serving position passes it, so no place expires before every PoP could have
/// shown it served ([`STALENESS_BOUND_MS`] rounded up).
pub const EXPIRY_GRACE_SECS: u64 = STALENESS_BOUND_MS.div_ceil(1000);
/// Smallest `position_expiry_second`: a served visitor's page learns it within
/// [`STALENESS_BOUND_MS`] plus one poll near the front (2 s + 20% jitter) and then needs a
/// round trip or two to claim; a shorter window would expire places of visitors who did
/// everything right.
pub const MIN_POSITION_EXPIRY_SECS: u32 = 10;
/// How long an edge waits for a pull before answering from what it has, ms.
pub const PULL_TIMEOUT_MS: u32 = 1_500;

// Checked at compile time: the bound fits the 2 s target and the expiry grace covers it.
const _: () = assert!(STALENESS_BOUND_MS <= 2_000);
const _: () = assert!(EXPIRY_GRACE_SECS * 1000 >= STALENESS_BOUND_MS);

const REQUEST_LABEL: &[u8] = b"anteroom-pull-v1\n";
const ANSWER_LABEL: &[u8] = b"anteroom-pulled-v1\n";

/// The [`PULL_HEADER`] value for a pull of `path` sent at `ts_ms`.
pub fn sign_request(key: &[u8; 32], path: &str, ts_ms: u64) -> String {
    let ts = ts_ms.to_string();
    let tag = hmac(key, &[REQUEST_LABEL, path.as_bytes(), b"\n", ts.as_bytes()]).finalize();
    format!("{ts}|{}", crate::b64::encode(tag.into_bytes()))
}

/// Checks a [`PULL_HEADER`] value for a pull of `path`.
pub fn verify_request(
    key: &[u8; 32],
    path: &str,
    header: &str,
    now_ms: u64,
) -> Result<(), SyncError> {
    let (ts, sig) = header.split_once('|').ok_or(SyncError::Malformed)?;
    let ts_ms: u64 = ts.parse().map_err(|_| SyncError::Malformed)?;
    crate::mac::verify(
        key,
        ts_ms,
        now_ms,
        sig,
        &[REQUEST_LABEL, path.as_bytes(), b"\n", ts.as_bytes()],
    )
}

/// The signature of the answer `body` to a pull of `path`, stamped `ts_ms`.
pub fn sign_answer(key: &[u8; 32], path: &str, ts_ms: u64, body: &[u8]) -> String {
    let ts = ts_ms.to_string();
    let parts: [&[u8]; 6] = [ANSWER_LABEL, path.as_bytes(), b"\n", ts.as_bytes(), b"\n", body];
    crate::b64::encode(hmac(key, &parts).finalize().into_bytes())
}

/// Checks the answer to a pull of `path`.
pub fn verify_answer(
    key: &[u8; 32],
    path: &str,
    ts_ms: u64,
    body: &[u8],
    sig: &str,
    now_ms: u64,
) -> Result<(), SyncError> {
    let ts = ts_ms.to_string();
    let parts: [&[u8]; 6] = [ANSWER_LABEL, path.as_bytes(), b"\n", ts.as_bytes(), b"\n", body];
    crate::mac::verify(key, ts_ms, now_ms, sig, &parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn requests_are_bound_to_their_path_time_and_key() {
        let h = sign_request(&KEY, "/edge/state/shop", NOW);
        assert_eq!(verify_request(&KEY, "/edge/state/shop", &h, NOW + 1000), Ok(()));
        assert_eq!(
            verify_request(&KEY, "/edge/state/other", &h, NOW),
            Err(SyncError::BadSignature)
        );
        assert_eq!(
            verify_request(&[8; 32], "/edge/state/shop", &h, NOW),
            Err(SyncError::BadSignature)
        );
        let late = NOW + crate::mac::WINDOW_MS + 1;
        assert_eq!(verify_request(&KEY, "/edge/state/shop", &h, late), Err(SyncError::Stale));
        for bad in ["", "123", "x|y", "|abc"] {
            assert!(verify_request(&KEY, "/edge/index", bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_are_bound_to_path_body_and_time_and_differ_from_sync_macs() {
        let body = br#"{"queues":[]}"#;
        let sig = sign_answer(&KEY, INDEX_PATH, NOW, body);
        assert_eq!(verify_answer(&KEY, INDEX_PATH, NOW, body, &sig, NOW), Ok(()));
        assert!(verify_answer(&KEY, "/edge/state/x", NOW, body, &sig, NOW).is_err());
        assert!(verify_answer(&KEY, INDEX_PATH, NOW + 1, body, &sig, NOW).is_err());
        assert!(verify_answer(&KEY, INDEX_PATH, NOW, b"{}", &sig, NOW).is_err());
        // A sync request's MAC over the same body does not pass as an answer.
        let sync = crate::sync::sign_sync(&KEY, NOW, body);
        assert!(verify_answer(&KEY, INDEX_PATH, NOW, body, &sync, NOW).is_err());
    }
}
