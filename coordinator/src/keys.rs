//! The key ring: ticket MAC keys and Ed25519 signing keys, loaded from config or from the
//! store (generated once on first start, so every process and every restart agree).

use ed25519_compact::PublicKey;
use rand::RngCore as _;
use shared::ticket::{TicketKey, parse_keys};
use shared::token::SigningKey;
use shared::wire::Jwks;

use crate::store::{StoredSecrets, StoredSigningKey};

/// Loaded keys.
#[derive(Debug, Clone)]
pub struct Keyring {
    /// First one signs new tickets; all are accepted.
    ticket: Vec<TicketKey>,
    /// First one signs new tokens; each stays published until its `retire_after`.
    signing: Vec<(SigningKey, u64)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hex characters.
pub fn parse_seed(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("signing key must be 64 hex characters".into());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
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
        signing: vec![StoredSigningKey { seed_hex: hex(&random32()), retire_after: 0 }],
        ticket_keys: format!("1:{}", hex(&random32())),
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
        let signing = match signing_override {
            Some(seed) => vec![(SigningKey::from_seed(parse_seed(seed)?), 0)],
            None => stored
                .signing
                .iter()
                .map(|k| Ok((SigningKey::from_seed(parse_seed(&k.seed_hex)?), k.retire_after)))
                .collect::<Result<Vec<_>, String>>()?,
        };
        if signing.is_empty() {
            return Err("no signing key".into());
        }
        Ok(Keyring { ticket, signing })
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

    /// The key that signs new tokens.
    pub fn signer(&self) -> &SigningKey {
        &self.signing[0].0
    }

    /// The public key for a `kid`, if it is still published at `now`.
    pub fn public(&self, kid: &str, now: u64) -> Option<PublicKey> {
        self.signing
            .iter()
            .find(|(k, retire)| k.kid() == kid && (*retire == 0 || *retire > now))
            .map(|(k, _)| k.public())
    }

    /// The JWKS: the current key and every retired key whose tokens may still be live.
    pub fn jwks(&self, now: u64) -> Jwks {
        Jwks {
            keys: self
                .signing
                .iter()
                .filter(|(_, retire)| *retire == 0 || *retire > now)
                .map(|(k, _)| k.jwk())
                .collect(),
        }
    }
}

/// Rotates the signing key in `stored`: a new current key, the old current one published
/// until `retire_after`, keys past their retirement dropped.
pub fn rotate(stored: &StoredSecrets, now: u64, retire_after: u64) -> StoredSecrets {
    let mut signing = vec![StoredSigningKey { seed_hex: hex(&random32()), retire_after: 0 }];
    for k in &stored.signing {
        let retire = if k.retire_after == 0 { retire_after } else { k.retire_after };
        if retire > now {
            signing.push(StoredSigningKey { seed_hex: k.seed_hex.clone(), retire_after: retire });
        }
    }
    StoredSecrets { signing, ticket_keys: stored.ticket_keys.clone() }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn rotation_keeps_old_key_until_retired() {
        let s0 = fresh_secrets();
        let k0 = Keyring::build(&s0, None, None).unwrap();
        let old_kid = k0.signer().kid().to_string();
        let s1 = rotate(&s0, 1000, 1300);
        let k1 = Keyring::build(&s1, None, None).unwrap();
        assert_ne!(k1.signer().kid(), old_kid);
        assert_eq!(k1.jwks(1299).keys.len(), 2);
        assert!(k1.public(&old_kid, 1299).is_some());
        assert!(k1.public(&old_kid, 1300).is_none());
        assert_eq!(k1.jwks(1300).keys.len(), 1);
        let s2 = rotate(&s1, 1400, 1700);
        assert_eq!(s2.signing.len(), 2, "the key retired at 1300 is dropped");
    }

    #[test]
    fn config_overrides_and_bad_keys() {
        let s = fresh_secrets();
        let seed = "11".repeat(32);
        let k = Keyring::build(&s, Some(&format!("3:{}", "22".repeat(32))), Some(&seed)).unwrap();
        assert_eq!(k.ticket_signer().id, 3);
        assert_eq!(k.signer().kid(), SigningKey::from_seed([0x11; 32]).kid());
        assert!(Keyring::build(&s, Some("nope"), None).is_err());
        assert!(Keyring::build(&s, None, Some("abc")).is_err());
    }
}
