//! Access-token checks on protected paths: claims in Wasm (`shared::token::check_claims`:
//! EdDSA pinned, `kid` from the synced JWKS, `iss`, `aud`, `exp`/`nbf`), the signature by the
//! runtime's WebCrypto (Wasm as fallback), the session not revoked. Checked tokens are kept in
//! the isolate ([`TokenCache`]); the revocation set is consulted before the cache says yes.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::store::Loaded;
use crate::webcrypto::Crypto;

/// Most checked tokens an isolate remembers; the cache is emptied when full.
const TOKEN_CACHE_MAX: usize = 4096;
/// How long a forged token is refused from the cache, seconds.
const FORGED_SECS: i64 = 60;

/// What an isolate remembers of a token it checked.
#[derive(Debug)]
enum CachedToken {
    /// It verified: what is needed to accept it again without the signature check.
    Good { aud: String, jti: String, kid: String, exp: i64 },
    /// Its signature failed: refused without another check until `until` (unix seconds), so
    /// one forged token sent over and over costs one signature check a minute, not one each.
    Forged { until: i64 },
}

/// Tokens this isolate checked, by their whole text (a hit compares it in full, so no token
/// is ever taken for another; at most 4,096 tokens of at most `MAX_TOKEN_LEN` bytes, 8 MiB at
/// worst, 1.2 MiB for real tokens of about 300 bytes). Keyed by a SHA-256 of the text until
/// 2026-12-03: hashing about 300 bytes in Wasm cost more than the map's own hash and the
/// comparison.
#[derive(Debug, Default)]
pub struct TokenCache(RefCell<HashMap<Box<str>, CachedToken>>);

impl TokenCache {
    fn remember(&self, token: &str, c: CachedToken) {
        let mut m = self.0.borrow_mut();
        if m.len() >= TOKEN_CACHE_MAX {
            m.clear();
        }
        m.insert(token.into(), c);
    }

    /// Whether `token` admits to `s`'s queue now.
    pub async fn admits(&self, crypto: &Crypto, s: &Loaded, token: &str, now_secs: i64) -> bool {
        let queue_id = s.state.queue.queue_id.as_str();
        let hit = self.0.borrow().get(token).and_then(|c| match c {
            CachedToken::Good { aud, jti, kid, exp } => Some(
                aud == queue_id
                    && now_secs < exp + shared::token::LEEWAY_SECS
                    && !s.revoked(jti)
                    && s.keys.contains_key(kid),
            ),
            CachedToken::Forged { until } => (now_secs < *until).then_some(false),
        });
        if let Some(ok) = hit {
            return ok;
        }
        let checked = shared::token::check_claims(
            token,
            |kid| s.keys.get(kid).copied(),
            &s.state.issuer,
            queue_id,
            now_secs,
        );
        let Ok(unverified) = checked else { return false };
        let by_runtime = crypto
            .ed25519_verify(
                unverified.public_key(),
                unverified.signature(),
                unverified.signed_data(),
            )
            .await;
        let verified = match by_runtime {
            Some(ok) => unverified.accept(ok),
            None => unverified.verify_signature(),
        };
        let v = match verified {
            Ok(v) => v,
            Err(shared::token::TokenError::BadSignature) => {
                self.remember(token, CachedToken::Forged { until: now_secs + FORGED_SECS });
                return false;
            }
            Err(_) => return false,
        };
        if s.revoked(&v.claims.jti) {
            return false;
        }
        let good =
            CachedToken::Good { aud: v.claims.aud, jti: v.claims.jti, kid: v.kid, exp: v.exp };
        self.remember(token, good);
        true
    }
}
