//! Console sessions: an operator signs in to the console with an admin key and gets a
//! session id in an `HttpOnly`, `SameSite=Strict` cookie; the id then stands for the key on
//! the same private routes the bearer key opens (no route of its own, no back door).
//!
//! - The id is 256 random bits, sent only in the cookie. The store keeps its SHA-256 (a
//!   record per session: the key's name and SHA-256, the expiry), never the id, so a copy
//!   of Redis signs nobody in. Every process reloads the records each second, and looks
//!   again at once (at most ten times a second) on an id it does not know, so a session
//!   made through one process works on the next request to another.
//! - A session lives as long as its key: each request checks that the key's digest still
//!   names an admin key of the same name, so revoking a named key (or changing the
//!   bootstrap key) ends its sessions. Signing out removes the record in every process
//!   within a second. Expired records are removed at each sign-in; at most
//!   [`MAX_SESSIONS`] live at once.
//! - CSRF: every change (any method but GET and HEAD) made with a session must carry
//!   `X-CSRF-Token`, an HMAC of the session id that only the session's page learns (from
//!   `GET /console/session`), and, when the browser sends `Origin`, come from the listener's
//!   own origin. `SameSite=Strict` already keeps the cookie off other sites' requests; the
//!   token also covers a browser that ignores it.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::access::Role;
use crate::store::{RecordKind, Store, StoreResult};

/// The session cookie's name.
pub const COOKIE: &str = "anteroom_console";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Live sessions at most (a sign-in beyond it is refused until some expire or sign out).
pub const MAX_SESSIONS: usize = 1000;
/// Fewest milliseconds between two reloads caused by an unknown id.
const MISS_RELOAD: Duration = Duration::from_millis(100);
const CSRF_LABEL: &[u8] = b"anteroom-console-csrf-v1";

/// A session as stored: never the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    /// The name of the key signed in with.
    pub key: String,
    /// SHA-256 of that key, hex: the session ends when it no longer names an admin key.
    pub key_sha256: String,
    /// When it was made, unix ms.
    pub created_at_ms: u64,
    /// When it ends, unix ms.
    pub expires_at_ms: u64,
}

/// The sessions this process knows, by the SHA-256 of their id.
#[derive(Debug, Default)]
pub struct Sessions {
    live: RwLock<HashMap<[u8; 32], StoredSession>>,
    /// When an unknown id last made this process reload.
    miss_reload_at: Mutex<Option<Instant>>,
}

/// Why a sign-in made no session.
#[derive(Debug)]
pub enum NotMade {
    /// [`MAX_SESSIONS`] are live.
    Full,
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Reloads every session from the store.
    pub async fn reload(&self, store: &dyn Store) -> StoreResult<()> {
        let mut live = HashMap::new();
        for json in store.records(RecordKind::ConsoleSession).await? {
            let Ok(s) = serde_json::from_str::<Record>(&json) else { continue };
            if let Some(d) = shared::hex::decode32(&s.id_sha256) {
                live.insert(d, s.session);
            }
        }
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = live;
        Ok(())
    }

    /// Makes a session for `session` (key, digest, times): removes expired records first;
    /// returns the new id.
    pub async fn create(
        &self,
        store: &dyn Store,
        session: StoredSession,
        now_ms: u64,
    ) -> StoreResult<Result<String, NotMade>> {
        let mut live = 0;
        for json in store.records(RecordKind::ConsoleSession).await? {
            match serde_json::from_str::<Record>(&json) {
                Ok(r) if r.session.expires_at_ms > now_ms => live += 1,
                Ok(r) => {
                    store.remove_record(RecordKind::ConsoleSession, r.id_sha256).await?;
                }
                Err(_) => {}
            }
        }
        if live >= MAX_SESSIONS {
            return Ok(Err(NotMade::Full));
        }
        let id = shared::b64::encode(crate::keys::random32());
        let rec = Record { id_sha256: shared::hex::encode(digest(&id)), session };
        let json = serde_json::to_string(&rec)
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        // 256 random bits do not collide; a `false` here would mean a broken random source.
        if !store.add_record(RecordKind::ConsoleSession, rec.id_sha256.clone(), json).await? {
            return Err(crate::store::StoreError::Corrupt("session id collision".into()));
        }
        self.live.write().unwrap_or_else(|p| p.into_inner()).insert(digest(&id), rec.session);
        Ok(Ok(id))
    }

    /// The live session of `id` at `now_ms`, if any. An id this process does not know makes
    /// it reload (at most every [`MISS_RELOAD`]): the session may be newer than its copy.
    pub async fn find(&self, store: &dyn Store, id: &str, now_ms: u64) -> Option<StoredSession> {
        let d = digest(id);
        let known = |s: &Self| s.live.read().unwrap_or_else(|p| p.into_inner()).get(&d).cloned();
        let found = match known(self) {
            Some(s) => Some(s),
            None => {
                let due = {
                    let mut at = self.miss_reload_at.lock().unwrap_or_else(|p| p.into_inner());
                    let due = at.is_none_or(|t| t.elapsed() >= MISS_RELOAD);
                    if due {
                        *at = Some(Instant::now());
                    }
                    due
                };
                if due && self.reload(store).await.is_ok() { known(self) } else { None }
            }
        };
        found.filter(|s| s.expires_at_ms > now_ms)
    }

    /// Ends the session of `id` everywhere (within a second in other processes).
    pub async fn end(&self, store: &dyn Store, id: &str) -> StoreResult<bool> {
        let d = digest(id);
        self.live.write().unwrap_or_else(|p| p.into_inner()).remove(&d);
        store.remove_record(RecordKind::ConsoleSession, shared::hex::encode(d)).await
    }
}

/// A session as the store holds it: the SHA-256 of its id (the record's name, repeated so a
/// reload can index it) and the session.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    id_sha256: String,
    #[serde(flatten)]
    session: StoredSession,
}

/// The key a session stands for: its key while that key is still an admin key of the same
/// name (revoking a named key, or changing the bootstrap key, ends its sessions).
pub fn key_of(keys: &crate::access::Keys, s: &StoredSession) -> Option<(String, Role)> {
    shared::hex::decode32(&s.key_sha256)
        .and_then(|d| keys.identify_digest(&d))
        .filter(|(name, role)| *name == s.key && role.is_admin())
}

/// The CSRF token of session `id`: HMAC-SHA256 keyed by the id, hex, first 16 bytes. Only
/// who holds the id can compute it; the page learns it from `GET /console/session`.
pub fn csrf(id: &str) -> String {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(id.as_bytes()).expect("hmac takes any key length");
    m.update(CSRF_LABEL);
    shared::hex::encode(&m.finalize().into_bytes()[..16])
}

/// Whether `token` is the CSRF token of session `id` (constant time).
pub fn csrf_ok(id: &str, token: &str) -> bool {
    bool::from(csrf(id).as_bytes().ct_eq(token.as_bytes()))
}

/// The session id in a `Cookie` header, if there is one.
pub fn from_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that holds session `id` for `max_age` seconds.
pub fn set_cookie(id: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::store::memory::MemoryStore;

    fn session(expires_at_ms: u64) -> StoredSession {
        StoredSession {
            key: "alice".into(),
            key_sha256: "00".repeat(32),
            created_at_ms: 0,
            expires_at_ms,
        }
    }

    #[test]
    fn sessions_are_found_by_id_across_processes_until_they_end_or_expire() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let store = MemoryStore::new();
            let (here, there) = (Sessions::default(), Sessions::default());
            let id = here.create(&store, session(10_000), 0).await.unwrap().unwrap();
            assert_eq!(here.find(&store, &id, 1).await.unwrap().key, "alice");
            // Another process finds it at once: an unknown id makes it look.
            assert_eq!(there.find(&store, &id, 1).await.unwrap().key, "alice");
            assert!(here.find(&store, &id, 10_000).await.is_none(), "expired");
            assert!(here.find(&store, "forged", 1).await.is_none());
            let json = store.records(RecordKind::ConsoleSession).await.unwrap().join("");
            assert!(!json.contains(&id), "the store never holds the id");
            assert!(here.end(&store, &id).await.unwrap());
            there.reload(&store).await.unwrap();
            assert!(there.find(&store, &id, 1).await.is_none(), "signed out everywhere");
            // Expired records go at the next sign-in.
            here.create(&store, session(5), 0).await.unwrap().unwrap();
            here.create(&store, session(50), 10).await.unwrap().unwrap();
            assert_eq!(store.records(RecordKind::ConsoleSession).await.unwrap().len(), 1);
        });
    }

    #[test]
    fn csrf_tokens_and_cookies() {
        let t = csrf("id-1");
        assert_eq!(t.len(), 32);
        assert!(csrf_ok("id-1", &t) && !csrf_ok("id-2", &t) && !csrf_ok("id-1", ""));
        assert_eq!(from_cookie("a=1; anteroom_console=xyz; b=2"), Some("xyz"));
        assert_eq!(from_cookie("anteroom_console_x=1; anteroom_console="), None);
        assert_eq!(
            set_cookie("xyz", 60, true),
            "anteroom_console=xyz; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(clear_cookie(false).contains("anteroom_console=; Path=/; Max-Age=0; HttpOnly"));
    }
}
