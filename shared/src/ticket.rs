//! Signed queue tickets: the `request_id` a visitor holds while waiting.
//!
//! A ticket carries the visitor's place, so the coordinator and the edge answer `queue_pos`
//! by checking a MAC instead of storing a row per visitor.
//!
//! Byte layout of version 1 (all integers big-endian), 35 bytes, sent as 47 characters of
//! unpadded URL-safe base64:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version, `1` |
//! | 1 | 1 | key id: which MAC key signed it (rotation) |
//! | 2 | 1 | flags: bit 0 set = pre-queue ticket (position is the arrival index before the draw) |
//! | 3 | 4 | queue id: the server-assigned numeric id, never reused |
//! | 7 | 8 | position |
//! | 15 | 4 | entry time, unix seconds |
//! | 19 | 16 | HMAC-SHA256(key, bytes 0..19), first 16 bytes |

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Current ticket format version.
pub const VERSION: u8 = 1;
/// Length of the signed part.
const BODY_LEN: usize = 19;
/// Length of the truncated MAC.
const MAC_LEN: usize = 16;
/// Length of a whole ticket in bytes.
pub const TICKET_LEN: usize = BODY_LEN + MAC_LEN;
/// Length of a ticket's text form.
pub const TICKET_TEXT_LEN: usize = 47;

const FLAG_PREQUEUE: u8 = 0b0000_0001;

/// Whether a ticket holds a decided FIFO place or a pre-queue arrival index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketKind {
    /// A place in FIFO order.
    Fifo,
    /// An arrival during the pre-queue; its place is decided by the draw at opening.
    PreQueue,
}

/// The decoded contents of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Which MAC key signed this ticket.
    pub key_id: u8,
    /// FIFO place or pre-queue arrival index.
    pub kind: TicketKind,
    /// Server-assigned numeric queue id; a re-created queue gets a new one.
    pub queue: u32,
    /// Position in the queue (or arrival index for a pre-queue ticket), starting at 1.
    pub position: u64,
    /// When the place was stored, unix seconds.
    pub entered_at: u32,
}

/// Why a ticket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketError {
    /// Not base64, or the wrong length.
    Malformed,
    /// A version this code does not know.
    UnknownVersion,
    /// Signed with a key id that is not (or no longer) loaded.
    UnknownKey,
    /// The MAC does not match: tampered or forged.
    BadMac,
}

impl core::fmt::Display for TicketError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TicketError::Malformed => "request_id is malformed",
            TicketError::UnknownVersion => "request_id has an unknown version",
            TicketError::UnknownKey => "request_id was signed with an unknown key",
            TicketError::BadMac => "request_id failed its integrity check",
        })
    }
}

impl std::error::Error for TicketError {}

/// A 256-bit MAC key with its one-byte id, and the HMAC state keyed with it (the two key-pad
/// blocks hashed once, so a ticket costs two SHA-256 blocks instead of four: a `queue_pos` at
/// the edge opens one per poll, in Wasm, which has no SHA instructions).
#[derive(Clone)]
pub struct TicketKey {
    /// Written into every ticket it signs.
    pub id: u8,
    secret: [u8; 32],
    keyed: Hmac<Sha256>,
}

impl TicketKey {
    /// The key `secret`, named `id` in the tickets it signs.
    pub fn new(id: u8, secret: [u8; 32]) -> Self {
        let keyed =
            <Hmac<Sha256> as Mac>::new_from_slice(&secret).expect("hmac takes any key length");
        TicketKey { id, secret, keyed }
    }

    /// The secret itself.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut m = self.keyed.clone();
        m.update(body);
        m
    }
}

impl core::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TicketKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Parses a key list `"<id>:<64 hex chars>[,<id>:<hex>...]"`; the first key signs new
/// tickets, the others are still accepted (rotation). Used for `ANTEROOM_TICKET_KEYS` on the
/// coordinator and the `TICKET_KEYS` secret on the edge.
pub fn parse_keys(text: &str) -> Result<Vec<TicketKey>, &'static str> {
    let mut keys: Vec<TicketKey> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, hex) = part.split_once(':').ok_or("ticket key must look like <id>:<64 hex>")?;
        let id: u8 = id.trim().parse().map_err(|_| "ticket key id must be 0..=255")?;
        let secret =
            crate::hex::decode32(hex.trim()).ok_or("ticket key must be 64 hex characters")?;
        if keys.iter().any(|k| k.id == id) {
            return Err("ticket key ids must be unique");
        }
        keys.push(TicketKey::new(id, secret));
    }
    if keys.is_empty() {
        return Err("no ticket key given");
    }
    Ok(keys)
}

impl Ticket {
    fn body(&self, key_id: u8) -> [u8; BODY_LEN] {
        let mut b = [0u8; BODY_LEN];
        b[0] = VERSION;
        b[1] = key_id;
        b[2] = match self.kind {
            TicketKind::Fifo => 0,
            TicketKind::PreQueue => FLAG_PREQUEUE,
        };
        b[3..7].copy_from_slice(&self.queue.to_be_bytes());
        b[7..15].copy_from_slice(&self.position.to_be_bytes());
        b[15..19].copy_from_slice(&self.entered_at.to_be_bytes());
        b
    }

    /// Signs the ticket with `key` (its id replaces `self.key_id`) and returns the text form.
    pub fn seal(&self, key: &TicketKey) -> String {
        let body = self.body(key.id);
        let tag = key.mac(&body).finalize().into_bytes();
        let mut out = [0u8; TICKET_LEN];
        out[..BODY_LEN].copy_from_slice(&body);
        out[BODY_LEN..].copy_from_slice(&tag[..MAC_LEN]);
        crate::b64::encode(out)
    }

    /// Checks a ticket's text form and returns its contents. `key_for` maps a key id to the
    /// loaded key; the comparison of MACs is constant-time.
    pub fn open<'k>(
        text: &str,
        key_for: impl FnOnce(u8) -> Option<&'k TicketKey>,
    ) -> Result<Ticket, TicketError> {
        if text.len() != TICKET_TEXT_LEN {
            return Err(TicketError::Malformed);
        }
        let raw = crate::b64::decode(text).ok_or(TicketError::Malformed)?;
        if raw.len() != TICKET_LEN {
            return Err(TicketError::Malformed);
        }
        if raw[0] != VERSION {
            return Err(TicketError::UnknownVersion);
        }
        let key = key_for(raw[1]).ok_or(TicketError::UnknownKey)?;
        key.mac(&raw[..BODY_LEN])
            .verify_truncated_left(&raw[BODY_LEN..])
            .map_err(|_| TicketError::BadMac)?;
        let kind =
            if raw[2] & FLAG_PREQUEUE != 0 { TicketKind::PreQueue } else { TicketKind::Fifo };
        let u32_at = |i: usize| u32::from_be_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let mut pos = [0u8; 8];
        pos.copy_from_slice(&raw[7..15]);
        Ok(Ticket {
            key_id: raw[1],
            kind,
            queue: u32_at(3),
            position: u64::from_be_bytes(pos),
            entered_at: u32_at(15),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// The test vectors shared with the JS tests (`shared/test-vectors/tickets.json`).
    const VECTORS: &str = include_str!("../test-vectors/tickets.json");

    #[derive(serde::Deserialize)]
    struct Vector {
        key_id: u8,
        key_hex: String,
        prequeue: bool,
        queue: u32,
        position: u64,
        entered_at: u32,
        ticket: String,
    }

    fn hex(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn vectors_round_trip() {
        let vectors: Vec<Vector> = serde_json::from_str(VECTORS).unwrap();
        assert!(vectors.len() >= 3);
        for v in vectors {
            let key = TicketKey::new(v.key_id, hex(&v.key_hex));
            let t = Ticket {
                key_id: v.key_id,
                kind: if v.prequeue { TicketKind::PreQueue } else { TicketKind::Fifo },
                queue: v.queue,
                position: v.position,
                entered_at: v.entered_at,
            };
            assert_eq!(t.seal(&key), v.ticket, "sealing {t:?}");
            assert_eq!(Ticket::open(&v.ticket, |id| (id == key.id).then_some(&key)), Ok(t));
        }
    }

    fn sample() -> (TicketKey, String) {
        let key = TicketKey::new(7, [0x42; 32]);
        let t = Ticket {
            key_id: 7,
            kind: TicketKind::Fifo,
            queue: 3,
            position: 12345,
            entered_at: 1_790_000_000,
        };
        let text = t.seal(&key);
        (key, text)
    }

    #[test]
    fn key_lists() {
        let hex = "ab".repeat(32);
        let keys = parse_keys(&format!("2:{hex}, 1:{}", "01".repeat(32))).unwrap();
        assert_eq!(keys.iter().map(|k| k.id).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(keys[0].secret(), &[0xab; 32]);
        for bad in ["", "1", "1:abc", &format!("300:{hex}"), &format!("1:{hex},1:{hex}")] {
            assert!(parse_keys(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let (key, text) = sample();
        let raw = crate::b64::decode(&text).unwrap();
        for byte in 0..raw.len() {
            for bit in 0..8 {
                let mut r = raw.clone();
                r[byte] ^= 1 << bit;
                let forged = crate::b64::encode(&r);
                assert!(
                    Ticket::open(&forged, |id| (id == key.id).then_some(&key)).is_err(),
                    "byte {byte} bit {bit} accepted"
                );
            }
        }
    }

    #[test]
    fn malformed_and_foreign_tickets() {
        let (key, text) = sample();
        let check = |s: &str, want: TicketError| {
            assert_eq!(Ticket::open(s, |id| (id == key.id).then_some(&key)), Err(want), "{s:?}");
        };
        check("", TicketError::Malformed);
        check("not-a-ticket", TicketError::Malformed);
        check(&"!".repeat(TICKET_TEXT_LEN), TicketError::Malformed);
        check(&format!("{text}A"), TicketError::Malformed);
        let other = TicketKey::new(7, [0x43; 32]);
        let foreign = Ticket::open(&text, |_| Some(&key)).unwrap().seal(&other);
        check(&foreign, TicketError::BadMac);
        let unknown = TicketKey::new(9, [0x42; 32]);
        check(
            &Ticket::open(&text, |_| Some(&key)).unwrap().seal(&unknown),
            TicketError::UnknownKey,
        );
    }
}
