//! The coordinator's public keys (JWKS), cached, and access-token verification against them.
//!
//! A token whose `kid` is not in the cache triggers one refetch, at most once per
//! `min_refetch` however many such tokens arrive (forged `kid`s cannot make the shop hammer
//! the coordinator); concurrent callers share the fetch in flight.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use ed25519_compact::PublicKey;
use shared::token::{TokenError, Verified};

/// Longest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Cached {
    keys: HashMap<String, PublicKey>,
    /// Bumped on every successful fetch, so a caller can tell whether keys changed since it
    /// looked.
    generation: u64,
}

/// The JWKS cache of one coordinator.
#[derive(Debug)]
pub struct KeyCache {
    client: reqwest::Client,
    url: String,
    /// Least time between two fetches caused by unknown key ids.
    min_refetch: Duration,
    cached: RwLock<Cached>,
    /// When the last fetch started; held across the fetch so callers queue behind it.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl KeyCache {
    /// A cache of `{coordinator_public}/.well-known/jwks.json`, empty until the first fetch.
    pub fn new(client: reqwest::Client, coordinator_public: &str, min_refetch: Duration) -> Self {
        KeyCache {
            client,
            url: format!("{}/.well-known/jwks.json", coordinator_public.trim_end_matches('/')),
            min_refetch,
            cached: RwLock::new(Cached::default()),
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    /// Verifies `token` for the shop's queue; refetches the JWKS once if its key is unknown.
    pub async fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> Result<Verified, TokenError> {
        let (first, seen) = self.verify_cached(token, issuer, audience, now);
        match first {
            Err(TokenError::UnknownKey) if self.refresh_after(seen).await => {
                self.verify_cached(token, issuer, audience, now).0
            }
            other => other,
        }
    }

    fn verify_cached(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> (Result<Verified, TokenError>, u64) {
        let c = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        let r = shared::token::verify(token, |kid| c.keys.get(kid).copied(), issuer, audience, now);
        (r, c.generation)
    }

    /// Makes sure keys newer than generation `seen` are loaded if allowed: true if the cache
    /// changed since (by this call or a concurrent one).
    async fn refresh_after(&self, seen: u64) -> bool {
        let mut last = self.last_fetch.lock().await;
        if self.generation() != seen {
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return false;
        }
        *last = Some(Instant::now());
        self.fetch().await
    }

    /// Fetches the JWKS now, whatever the rate limit (start-up and periodic refresh).
    pub async fn refresh(&self) -> bool {
        let mut last = self.last_fetch.lock().await;
        *last = Some(Instant::now());
        self.fetch().await
    }

    fn generation(&self) -> u64 {
        self.cached.read().unwrap_or_else(PoisonError::into_inner).generation
    }

    /// Number of keys cached.
    pub fn len(&self) -> usize {
        self.cached.read().unwrap_or_else(PoisonError::into_inner).keys.len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn fetch(&self) -> bool {
        match self.download().await {
            Ok(keys) => {
                let mut c = self.cached.write().unwrap_or_else(PoisonError::into_inner);
                tracing::debug!(keys = keys.len(), "jwks loaded");
                c.keys = keys;
                c.generation += 1;
                true
            }
            Err(e) => {
                tracing::warn!(url = %self.url, cause = %e, "jwks fetch failed");
                false
            }
        }
    }

    async fn download(&self) -> anyhow::Result<HashMap<String, PublicKey>> {
        let resp = self.client.get(&self.url).send().await?.error_for_status()?;
        if resp.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
            anyhow::bail!("jwks document too large");
        }
        let bytes = resp.bytes().await?;
        if bytes.len() > MAX_JWKS_BYTES {
            anyhow::bail!("jwks document too large");
        }
        let jwks: shared::token::Jwks = serde_json::from_slice(&bytes)?;
        Ok(jwks
            .keys
            .iter()
            .filter_map(|k| Some((k.kid.clone(), shared::token::public_key_from_jwk(k)?)))
            .collect())
    }
}
