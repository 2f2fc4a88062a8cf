//! Who is calling the private API. Four kinds of bearer key: the bootstrap admin key from
//! configuration, named admin keys (added and revoked through the API without a restart,
//! stored in the registry as SHA-256 digests only and reloaded by every process each second),
//! the origin key (its routes only) and the metrics key (`/metrics` only).
//!
//! Handlers get a [`Caller`]: audit entries and events name the key, never its value. A
//! bearer is compared by its digest: the bootstrap, origin and metrics digests in constant
//! time, named keys by a map lookup of the digest (timing then says something about a
//! digest nobody can invert, not about a key).

use std::collections::HashMap;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::store::{RecordKind, Store, StoreResult};

/// The name of the configured admin key.
pub const BOOTSTRAP: &str = "bootstrap";
/// The name of the origin key.
pub const ORIGIN: &str = "origin";
/// The name of the metrics key.
pub const METRICS: &str = "metrics";
/// Names a named key cannot take.
const RESERVED: [&str; 4] = [BOOTSTRAP, ORIGIN, METRICS, "controller"];

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The configured admin key: everything, and adding or revoking named keys.
    Bootstrap,
    /// A named admin key: every operator action but managing keys.
    Admin,
    /// The origin key: end and extend sessions, report health.
    Origin,
    /// The metrics key: read `/metrics`.
    Metrics,
}

impl Role {
    /// An operator's key (bootstrap or named).
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Bootstrap | Role::Admin)
    }
}

/// The caller of a private route, as the auth middleware found it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's name.
    pub key: String,
    /// What it may do.
    pub role: Role,
    /// The peer address the private listener saw (empty without a socket, in tests).
    pub from: String,
}

/// A named key as stored: its digest, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Its name.
    pub name: String,
    /// SHA-256 of the key, hex.
    pub sha256: String,
    /// When it was added, unix ms.
    pub created_at: u64,
    /// The key that added it.
    pub created_by: String,
}

/// SHA-256 of a bearer.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A fresh named key: `ak_` and 64 hex digits (256 random bits).
pub fn fresh_key() -> String {
    format!("ak_{}", shared::hex::encode(crate::keys::random32()))
}

/// Whether `name` may name a new key.
pub fn valid_name(name: &str) -> bool {
    shared::valid_slug(name) && !RESERVED.contains(&name)
}

/// The keys this process accepts.
#[derive(Debug)]
pub struct Keys {
    bootstrap: [u8; 32],
    origin: Option<[u8; 32]>,
    metrics: Option<[u8; 32]>,
    /// Named keys: digest → name, as last loaded from the store.
    named: RwLock<HashMap<[u8; 32], String>>,
}

impl Keys {
    /// The configured keys; named ones arrive with [`Keys::reload`].
    pub fn new(admin: &str, origin: Option<&str>, metrics: Option<&str>) -> Self {
        Keys {
            bootstrap: digest(admin),
            origin: origin.map(digest),
            metrics: metrics.map(digest),
            named: RwLock::default(),
        }
    }

    /// The name and role of a bearer, if it is a key.
    pub fn identify(&self, bearer: &str) -> Option<(String, Role)> {
        if bearer.is_empty() {
            return None;
        }
        self.identify_digest(&digest(bearer))
    }

    /// The name and role of the key whose SHA-256 is `d`, if it is one (a console session
    /// holds its key's digest, so it ends when the key does).
    pub fn identify_digest(&self, d: &[u8; 32]) -> Option<(String, Role)> {
        let eq = |k: &[u8; 32]| bool::from(k.ct_eq(d));
        if eq(&self.bootstrap) {
            return Some((BOOTSTRAP.into(), Role::Bootstrap));
        }
        if self.origin.as_ref().is_some_and(eq) {
            return Some((ORIGIN.into(), Role::Origin));
        }
        if self.metrics.as_ref().is_some_and(eq) {
            return Some((METRICS.into(), Role::Metrics));
        }
        let named = match self.named.read() {
            Ok(g) => g.get(d).cloned(),
            Err(p) => p.into_inner().get(d).cloned(),
        };
        named.map(|name| (name, Role::Admin))
    }

    /// Reloads the named keys from the store (every second, and after a change here): a
    /// key revoked by any process stops working here within a second.
    pub async fn reload(&self, store: &dyn Store) -> StoreResult<()> {
        let mut named = HashMap::new();
        for json in store.records(RecordKind::AdminKey).await? {
            let Ok(k) = serde_json::from_str::<StoredKey>(&json) else { continue };
            if let Some(d) = shared::hex::decode32(&k.sha256) {
                named.insert(d, k.name);
            }
        }
        match self.named.write() {
            Ok(mut g) => *g = named,
            Err(p) => *p.into_inner() = named,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn keys_are_told_apart_by_role_and_named_keys_follow_the_store() {
        let keys = Keys::new("admin-key-0123456789", Some("origin-key-0123456789"), None);
        assert_eq!(keys.identify("admin-key-0123456789").unwrap().1, Role::Bootstrap);
        assert_eq!(
            keys.identify("origin-key-0123456789").unwrap(),
            ("origin".into(), Role::Origin)
        );
        assert_eq!(keys.identify(""), None);
        assert_eq!(keys.identify("admin-key-012345678"), None);
        let store = crate::store::memory::MemoryStore::new();
        let key = fresh_key();
        let rec = StoredKey {
            name: "alice".into(),
            sha256: shared::hex::encode(digest(&key)),
            created_at: 1,
            created_by: BOOTSTRAP.into(),
        };
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let json = serde_json::to_string(&rec).unwrap();
            assert!(store.add_record(RecordKind::AdminKey, "alice".into(), json).await.unwrap());
            keys.reload(&store).await.unwrap();
            assert_eq!(keys.identify(&key), Some(("alice".into(), Role::Admin)));
            store.remove_record(RecordKind::AdminKey, "alice".into()).await.unwrap();
            keys.reload(&store).await.unwrap();
        });
        assert_eq!(keys.identify(&key), None, "revoked");
        assert!(valid_name("ops-1") && !valid_name("bootstrap") && !valid_name("Ops"));
    }
}
