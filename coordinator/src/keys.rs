//! The key ring: ticket MAC keys and Ed25519 signing keys, loaded from config or from the
//! store (generated once on first start, so every process and every restart agree).

use ed25519_compact::PublicKey;
use rand::RngCore as _;
use shared::ticket::{TicketKey, parse_keys};
use shared::token::Jwks;
use shared::token::SigningKey;

use crate::store::{StoredSecrets, StoredSigningKey};

/// One loaded signing key.
#[derive(Debug, Clone)]
struct Signing {
    key: SigningKey,
    /// Unix seconds after which it leaves the JWKS (0 = never planned).
    retire_after: u64,
    /// Unix seconds from which it signs.
    active_from: u64,
}

/// Loaded keys.
#[derive(Debug, Clone)]
pub struct Keyring {
    /// First one signs new tickets; all are accepted.
    ticket: Vec<TicketKey>,
    /// Newest first; the newest active one signs, each stays published until its
    /// `retire_after`.
    signing: Vec<Signing>,
    /// The stored form this ring was built from (`None` when the signing key comes from
    /// config), so a process can write it back if the store loses it.
    stored: Option<StoredSecrets>,
}

/// Parses 64 hex characters (surrounding spaces allowed).
pub fn parse_seed(text: &str) -> Result<[u8; 32], String> {
    shared::hex::decode32(text.trim()).ok_or_else(|| "signing key must be 64 hex characters".into())
}

/// 32 random bytes from the OS.
pub fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b
}

/// Secrets for a first start: one random signing seed and one random ticket key (id 1).
pub fn fresh_secrets() -> StoredSecrets {
    StoredSecrets {
        signing: vec![StoredSigningKey {
            seed_hex: shared::hex::encode(random32()),
            retire_after: 0,
            active_from: 0,
        }],
        ticket_keys: format!("1:{}", shared::hex::encode(random32())),
    }
}

impl Keyring {
    /// Builds the ring from stored secrets, with config values taking precedence.
    pub fn build(
        stored: &StoredSecrets,
        ticket_override: Option<&str>,
        signing_override: Option<&str>,
    ) -> Result<Self, String> {
        let ticket = parse_keys(ticket_override.unwrap_or(&stored.ticket_keys))?;
        let mut signing = match signing_override {
            Some(seed) => vec![Signing {
                key: SigningKey::from_seed(parse_seed(seed)?),
                retire_after: 0,
                active_from: 0,
            }],
            None => stored
                .signing
                .iter()
                .map(|k| {
                    Ok(Signing {
                        key: SigningKey::from_seed(parse_seed(&k.seed_hex)?),
                        retire_after: k.retire_after,
                        active_from: k.active_from,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?,
        };
        if signing.is_empty() {
            return Err("no signing key".into());
        }
        signing.sort_by_key(|k| std::cmp::Reverse(k.active_from));
        let stored = signing_override.is_none().then(|| stored.clone());
        Ok(Keyring { ticket, signing, stored })
    }

    /// The stored form of this ring, when it came from the store.
    pub fn stored(&self) -> Option<&StoredSecrets> {
        self.stored.as_ref()
    }

    /// The same ring with `other`'s ticket keys (rotation changes only signing keys).
    pub fn with_ticket_keys_of(mut self, other: &Keyring) -> Self {
        self.ticket = other.ticket.clone();
        self
    }

    /// The key that signs new tickets.
    pub fn ticket_signer(&self) -> &TicketKey {
        &self.ticket[0]
    }

    /// The ticket key with this id, if loaded.
    pub fn ticket_key(&self, id: u8) -> Option<&TicketKey> {
        self.ticket.iter().find(|k| k.id == id)
    }

    /// The key that signs new tokens at `now`: the newest one whose time has come (a new
    /// key is published first and signs only from its `active_from`).
    pub fn signer(&self, now: u64) -> &SigningKey {
        let k = self.signing.iter().find(|k| k.active_from <= now).unwrap_or(&self.signing[0]);
        &k.key
    }

    /// The public key for a `kid`, if it is still published at `now`.
    pub fn public(&self, kid: &str, now: u64) -> Option<PublicKey> {
        self.signing
            .iter()
            .find(|k| k.key.kid() == kid && (k.retire_after == 0 || k.retire_after > now))
            .map(|k| k.key.public())
    }

    /// The JWKS: the signing key, a key about to sign, and every retired key whose tokens
    /// may still be live.
    pub fn jwks(&self, now: u64) -> Jwks {
        Jwks {
            keys: self
                .signing
                .iter()
                .filter(|k| k.retire_after == 0 || k.retire_after > now)
                .map(|k| k.key.jwk())
                .collect(),
        }
    }
}

/// Rotates the signing key in `stored`: a new key that signs from `active_from` (published
/// at once), the key signing until then published until `retire_after`, keys past their
/// retirement dropped.
pub fn rotate(
    stored: &StoredSecrets,
    now: u64,
    active_from: u64,
    retire_after: u64,
) -> StoredSecrets {
    let mut signing = vec![StoredSigningKey {
        seed_hex: shared::hex::encode(random32()),
        retire_after: 0,
        active_from,
    }];
    for k in &stored.signing {
        let retire = if k.retire_after == 0 { retire_after } else { k.retire_after };
        if retire > now {
            signing.push(StoredSigningKey { retire_after: retire, ..k.clone() });
        }
    }
    StoredSecrets { signing, ticket_keys: stored.ticket_keys.clone() }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn rotation_publishes_first_signs_later_and_keeps_the_old_key_until_retired() {
        let s0 = fresh_secrets();
        let k0 = Keyring::build(&s0, None, None).unwrap();
        let old_kid = k0.signer(1000).kid().to_string();
        let s1 = rotate(&s0, 1000, 1010, 1300);
        let k1 = Keyring::build(&s1, None, None).unwrap();
        assert_eq!(k1.jwks(1000).keys.len(), 2, "the new key is published before it signs");
        assert_eq!(k1.signer(1009).kid(), old_kid, "the old key signs until the new one's time");
        assert_ne!(k1.signer(1010).kid(), old_kid);
        assert_eq!(k1.jwks(1299).keys.len(), 2);
        assert!(k1.public(&old_kid, 1299).is_some());
        assert!(k1.public(&old_kid, 1300).is_none());
        assert_eq!(k1.jwks(1300).keys.len(), 1);
        let s2 = rotate(&s1, 1400, 1410, 1700);
        assert_eq!(s2.signing.len(), 2, "the key retired at 1300 is dropped");
    }

    #[test]
    fn config_overrides_and_bad_keys() {
        let s = fresh_secrets();
        let seed = "11".repeat(32);
        let k = Keyring::build(&s, Some(&format!("3:{}", "22".repeat(32))), Some(&seed)).unwrap();
        assert_eq!(k.ticket_signer().id, 3);
        assert_eq!(k.signer(0).kid(), SigningKey::from_seed([0x11; 32]).kid());
        assert!(k.stored().is_none(), "a signing key from config is not the store's to restore");
        assert!(Keyring::build(&s, None, None).unwrap().stored().is_some());
        assert!(Keyring::build(&s, Some("nope"), None).is_err());
        assert!(Keyring::build(&s, None, Some("abc")).is_err());
    }
}
