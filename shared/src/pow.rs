//! Proof-of-work challenges that put a price on a place in the queue.
//!
//! The edge hands out a stateless challenge; the visitor's browser finds a counter; the edge
//! checks the solution before forwarding `assign_queue_pos`, and the coordinator checks it
//! again and refuses a nonce it has already seen (its replay set). Nothing is stored when a
//! challenge is issued: the MAC proves the edge made it.
//!
//! # Challenge layout, version 1
//!
//! All integers big-endian; 46 bytes, sent as 62 characters of unpadded URL-safe base64.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version, `1` |
//! | 1 | 4 | queue: the server-assigned numeric queue id |
//! | 5 | 16 | nonce: random, unique per challenge (the coordinator's replay key) |
//! | 21 | 4 | expiry, unix seconds: refused when `now > expiry` |
//! | 25 | 1 | difficulty: required leading zero bits |
//! | 26 | 8 | client: first 8 bytes of SHA-256 of the client IP as text |
//! | 34 | 12 | MAC: first 12 bytes of HMAC-SHA256(EDGE_KEY, `"anteroom-pow-v1\n"` ‖ bytes 0..34) |
//!
//! # Solution
//!
//! The *challenge bytes* are all 46 decoded bytes above, MAC included. A solution is a
//! counter `c` (u64, sent in decimal as the form field `pow_counter`) such that
//! `SHA-256(challenge bytes ‖ c as 8 bytes big-endian)` has at least `difficulty` leading
//! zero bits, counting from the most significant bit of the first digest byte.
//!
//! The hashed message is 54 bytes, so it fits one SHA-256 block (at most 55 bytes): every
//! attempt costs exactly one compression, in the browser and in the verifier. That is why the
//! MAC is truncated to 96 bits and the expiry is 32 bits (good until 2106).
//!
//! Difficulty 0 means proof-of-work is off for the queue: the edge does not ask for it.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Current challenge format version.
pub const VERSION: u8 = 1;
/// Length of the MAC'd part.
const BODY_LEN: usize = 34;
/// Length of the truncated MAC.
const MAC_LEN: usize = 12;
/// Length of the challenge bytes.
pub const CHALLENGE_LEN: usize = BODY_LEN + MAC_LEN;
/// Length of a challenge's text form.
pub const CHALLENGE_TEXT_LEN: usize = 62;
/// Highest difficulty a challenge may carry, operator setting or automatic raise alike.
///
/// Measured in Chromium 156 with 4x CPU throttling (`miniflare-tests/browser.test.mjs`): about
/// 400,000 attempts/s, so the median solve (ln 2 * 2^d attempts) is about 1.8 s at 20 and
/// 3.6 s at 21. The issue's bound is a median of 3 s; 20 is the last difficulty under it.
pub const MAX_DIFFICULTY: u8 = 20;
/// Domain-separation label of the challenge MAC.
const LABEL: &[u8] = b"anteroom-pow-v1\n";

/// The decoded, authenticated contents of a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    /// Numeric queue id the challenge was issued for.
    pub queue: u32,
    /// Random and unique per challenge: the replay key.
    pub nonce: [u8; 16],
    /// Last second (unix) in which a solution is accepted.
    pub expires_at: u32,
    /// Required leading zero bits.
    pub difficulty: u8,
    /// First 8 bytes of SHA-256 of the client IP it was issued to.
    pub client: [u8; 8],
}

/// Why a solution was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowError {
    /// Not base64 or the wrong length.
    Malformed,
    /// A version this code does not know.
    UnknownVersion,
    /// The MAC does not match: not issued by this deployment, or tampered.
    BadMac,
    /// Past its expiry.
    Expired,
    /// Issued for another queue.
    WrongQueue,
    /// Issued to another client IP.
    WrongClient,
    /// The counter does not give enough leading zero bits.
    WrongSolution,
}

impl core::fmt::Display for PowError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PowError::Malformed => "proof-of-work challenge is malformed",
            PowError::UnknownVersion => "proof-of-work challenge has an unknown version",
            PowError::BadMac => "proof-of-work challenge failed its integrity check",
            PowError::Expired => "proof-of-work challenge has expired",
            PowError::WrongQueue => "proof-of-work challenge is for another queue",
            PowError::WrongClient => "proof-of-work challenge was issued to another client",
            PowError::WrongSolution => "proof-of-work solution is wrong",
        })
    }
}

impl std::error::Error for PowError {}

fn mac(key: &[u8; 32], body: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("hmac takes any key length");
    m.update(LABEL);
    m.update(body);
    m
}

/// First 8 bytes of SHA-256 of the client IP's text form.
pub fn client_hash(client_ip: &str) -> [u8; 8] {
    let d = Sha256::digest(client_ip.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// Issues a challenge: the text form of the layout in the module docs. `difficulty` is
/// capped at [`MAX_DIFFICULTY`].
pub fn issue(
    key: &[u8; 32],
    queue: u32,
    nonce: [u8; 16],
    expires_at: u32,
    difficulty: u8,
    client_ip: &str,
) -> String {
    let mut raw = [0u8; CHALLENGE_LEN];
    raw[0] = VERSION;
    raw[1..5].copy_from_slice(&queue.to_be_bytes());
    raw[5..21].copy_from_slice(&nonce);
    raw[21..25].copy_from_slice(&expires_at.to_be_bytes());
    raw[25] = difficulty.min(MAX_DIFFICULTY);
    raw[26..34].copy_from_slice(&client_hash(client_ip));
    let tag = mac(key, &raw[..BODY_LEN]).finalize().into_bytes();
    raw[BODY_LEN..].copy_from_slice(&tag[..MAC_LEN]);
    crate::b64::encode(raw)
}

/// Decodes a challenge and checks its MAC; nothing else (no expiry, queue or client check).
pub fn open(key: &[u8; 32], challenge: &str) -> Result<Challenge, PowError> {
    let raw = decode(challenge)?;
    mac(key, &raw[..BODY_LEN])
        .verify_truncated_left(&raw[BODY_LEN..])
        .map_err(|_| PowError::BadMac)?;
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&raw[5..21]);
    let mut client = [0u8; 8];
    client.copy_from_slice(&raw[26..34]);
    Ok(Challenge {
        queue: u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]),
        nonce,
        expires_at: u32::from_be_bytes([raw[21], raw[22], raw[23], raw[24]]),
        difficulty: raw[25],
        client,
    })
}

fn decode(challenge: &str) -> Result<[u8; CHALLENGE_LEN], PowError> {
    if challenge.len() != CHALLENGE_TEXT_LEN {
        return Err(PowError::Malformed);
    }
    let bytes = crate::b64::decode(challenge).ok_or(PowError::Malformed)?;
    let raw: [u8; CHALLENGE_LEN] = bytes.try_into().map_err(|_| PowError::Malformed)?;
    if raw[0] != VERSION {
        return Err(PowError::UnknownVersion);
    }
    Ok(raw)
}

/// Number of leading zero bits of `SHA-256(challenge bytes ‖ counter)`.
fn zero_bits(raw: &[u8; CHALLENGE_LEN], counter: u64) -> u32 {
    let mut h = Sha256::new();
    h.update(raw);
    h.update(counter.to_be_bytes());
    let d = h.finalize();
    let mut bits = 0;
    for b in d {
        if b == 0 {
            bits += 8;
        } else {
            bits += b.leading_zeros();
            break;
        }
    }
    bits
}

/// Checks a solution: MAC, expiry (`now_secs > expiry` is expired), queue, client IP and the
/// counter. Returns the nonce, which the coordinator keeps until the expiry to refuse replays.
pub fn verify_solution(
    key: &[u8; 32],
    challenge: &str,
    counter: u64,
    queue: u32,
    client_ip: &str,
    now_secs: u64,
) -> Result<[u8; 16], PowError> {
    let c = open(key, challenge)?;
    if now_secs > u64::from(c.expires_at) {
        return Err(PowError::Expired);
    }
    if c.queue != queue {
        return Err(PowError::WrongQueue);
    }
    if c.client != client_hash(client_ip) {
        return Err(PowError::WrongClient);
    }
    let raw = decode(challenge)?;
    if zero_bits(&raw, counter) < u32::from(c.difficulty) {
        return Err(PowError::WrongSolution);
    }
    Ok(c.nonce)
}

/// Finds the smallest counter solving `challenge` at `difficulty` leading zero bits (for
/// tests and benchmarks; browsers run the JS solver). Returns `u64::MAX` for a challenge that
/// does not decode.
pub fn solve(challenge: &str, difficulty: u8) -> u64 {
    let Ok(raw) = decode(challenge) else { return u64::MAX };
    let need = u32::from(difficulty);
    (0..u64::MAX).find(|&c| zero_bits(&raw, c) >= need).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// Shared with the JS solver tests (`miniflare-tests/pow.test.mjs`).
    const VECTORS: &str = include_str!("../test-vectors/pow.json");

    const KEY: [u8; 32] = [0x24; 32];
    const NOW: u64 = 1_790_000_000;
    const IP: &str = "203.0.113.7";

    fn sample(difficulty: u8) -> (String, u64) {
        let ch = issue(&KEY, 9, [0xab; 16], (NOW + 60) as u32, difficulty, IP);
        let counter = solve(&ch, difficulty);
        (ch, counter)
    }

    #[derive(serde::Deserialize)]
    struct Vector {
        key_hex: String,
        queue: u32,
        nonce_hex: String,
        expires_at: u32,
        difficulty: u8,
        client_ip: String,
        challenge: String,
        challenge_bytes_hex: String,
        counter: u64,
        digest_hex: String,
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn vectors() {
        let vectors: Vec<Vector> = serde_json::from_str(VECTORS).unwrap();
        assert!(vectors.len() >= 3);
        for v in vectors {
            let key: [u8; 32] = unhex(&v.key_hex).try_into().unwrap();
            let nonce: [u8; 16] = unhex(&v.nonce_hex).try_into().unwrap();
            let ch = issue(&key, v.queue, nonce, v.expires_at, v.difficulty, &v.client_ip);
            assert_eq!(ch, v.challenge);
            assert_eq!(hex(&crate::b64::decode(&ch).unwrap()), v.challenge_bytes_hex);
            // The vector's counter is the smallest solution, which is what both solvers find.
            assert_eq!(solve(&ch, v.difficulty), v.counter);
            let mut h = Sha256::new();
            h.update(unhex(&v.challenge_bytes_hex));
            h.update(v.counter.to_be_bytes());
            assert_eq!(hex(&h.finalize()), v.digest_hex);
            let now = u64::from(v.expires_at);
            let got = verify_solution(&key, &ch, v.counter, v.queue, &v.client_ip, now);
            assert_eq!(got, Ok(nonce));
        }
    }

    #[test]
    fn accepted_solution_returns_the_nonce() {
        let (ch, counter) = sample(12);
        assert_eq!(verify_solution(&KEY, &ch, counter, 9, IP, NOW), Ok([0xab; 16]));
        assert_eq!(CHALLENGE_TEXT_LEN, ch.len());
    }

    #[test]
    fn refusals() {
        let (ch, counter) = sample(12);
        let check = |ch: &str, counter: u64, queue: u32, ip: &str, now: u64, want: PowError| {
            assert_eq!(verify_solution(&KEY, ch, counter, queue, ip, now), Err(want), "{ch}");
        };
        // The smallest solution's predecessors all fail at this difficulty.
        if counter > 0 {
            check(&ch, counter - 1, 9, IP, NOW, PowError::WrongSolution);
        }
        check(&ch, counter, 9, IP, NOW + 61, PowError::Expired);
        check(&ch, counter, 10, IP, NOW, PowError::WrongQueue);
        check(&ch, counter, 9, "203.0.113.8", NOW, PowError::WrongClient);
        check("", counter, 9, IP, NOW, PowError::Malformed);
        check(&format!("{ch}A"), counter, 9, IP, NOW, PowError::Malformed);
        check(&"!".repeat(CHALLENGE_TEXT_LEN), counter, 9, IP, NOW, PowError::Malformed);
        let other = issue(&[0x25; 32], 9, [0xab; 16], (NOW + 60) as u32, 12, IP);
        check(&other, solve(&other, 12), 9, IP, NOW, PowError::BadMac);
        // Expiry is inclusive: the last second still counts.
        assert!(verify_solution(&KEY, &ch, counter, 9, IP, NOW + 60).is_ok());
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let (ch, counter) = sample(4);
        let raw = crate::b64::decode(&ch).unwrap();
        for byte in 0..raw.len() {
            for bit in 0..8 {
                let mut r = raw.clone();
                r[byte] ^= 1 << bit;
                let forged = crate::b64::encode(&r);
                assert!(
                    verify_solution(&KEY, &forged, counter, 9, IP, NOW).is_err(),
                    "byte {byte} bit {bit} accepted"
                );
            }
        }
    }

    #[test]
    fn difficulty_zero_accepts_any_counter_and_difficulty_is_capped() {
        let ch = issue(&KEY, 1, [1; 16], (NOW + 5) as u32, 0, IP);
        for c in [0, 1, u64::MAX] {
            assert!(verify_solution(&KEY, &ch, c, 1, IP, NOW).is_ok());
        }
        let ch = issue(&KEY, 1, [1; 16], (NOW + 5) as u32, 255, IP);
        assert_eq!(open(&KEY, &ch).unwrap().difficulty, MAX_DIFFICULTY);
    }

    #[test]
    fn difficulty_is_counted_in_bits() {
        // With 10 bits required, a counter giving exactly 9 must fail and one giving 10 pass.
        let ch = issue(&KEY, 1, [2; 16], (NOW + 5) as u32, 10, IP);
        let raw = decode(&ch).unwrap();
        let nine = (0..).find(|&c| zero_bits(&raw, c) == 9).unwrap();
        let ten = (0..).find(|&c| zero_bits(&raw, c) >= 10).unwrap();
        assert_eq!(verify_solution(&KEY, &ch, nine, 1, IP, NOW), Err(PowError::WrongSolution));
        assert!(verify_solution(&KEY, &ch, ten, 1, IP, NOW).is_ok());
    }
}
