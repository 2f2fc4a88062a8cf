//! The MACs of the coordinator-edge channel (sync requests, client headers, freshness
//! pulls): HMAC-SHA256 under `EDGE_KEY` over labelled parts, base64url, with a timestamp
//! window. The messages themselves are described where they are built (the sync and pull
//! modules).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Accepted clock difference between sender and receiver, either way.
pub const WINDOW_MS: u64 = 30_000;

/// Why a sync request or client header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncError {
    /// Missing part, not a number, not base64.
    Malformed,
    /// The timestamp is outside the accepted window.
    Stale,
    /// The MAC does not match.
    BadSignature,
}

impl core::fmt::Display for SyncError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SyncError::Malformed => "signed request is malformed",
            SyncError::Stale => "signed request timestamp is outside the accepted window",
            SyncError::BadSignature => "signed request failed its integrity check",
        })
    }
}

impl std::error::Error for SyncError {}

/// The MAC of `parts`, concatenated.
pub(crate) fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("hmac takes any key length");
    for p in parts {
        m.update(p);
    }
    m
}

/// Compares `m` with the base64url `sig` in constant time.
fn check(m: Hmac<Sha256>, sig: &str) -> Result<(), SyncError> {
    let sig = crate::b64::decode(sig).ok_or(SyncError::Malformed)?;
    m.verify_slice(&sig).map_err(|_| SyncError::BadSignature)
}

/// Whether `ts_ms` is within [`WINDOW_MS`] of `now_ms`.
fn fresh(ts_ms: u64, now_ms: u64) -> Result<(), SyncError> {
    if ts_ms.abs_diff(now_ms) > WINDOW_MS {
        return Err(SyncError::Stale);
    }
    Ok(())
}

/// Checks a labelled MAC: `ts_ms` within [`WINDOW_MS`] of `now_ms`, then `sig` over `parts`
/// (constant-time).
pub(crate) fn verify(
    key: &[u8; 32],
    ts_ms: u64,
    now_ms: u64,
    sig: &str,
    parts: &[&[u8]],
) -> Result<(), SyncError> {
    fresh(ts_ms, now_ms)?;
    check(hmac(key, parts), sig)
}
