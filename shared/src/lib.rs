//! Anteroom's pure core: everything the coordinator and the edge must agree on, with no IO.
//!
//! This crate never touches the network, the clock or a random source on its own: callers
//! pass in the current time and any randomness. It builds natively and for
//! `wasm32-unknown-unknown`, so the edge worker and the coordinator run the same code.

pub mod admission;
pub mod error;
pub mod eta;
pub mod mac;
pub mod path;
pub mod place;
pub mod poll;
pub mod positions;
pub mod pow;
pub mod prequeue;
pub mod presentation;
pub mod pull;
pub mod sync;
pub mod template;
pub mod ticket;
pub mod token;
pub mod wire;

/// Hex text, the one parser and writer for keys, seeds and commitments in the workspace.
pub mod hex {
    /// Lower-case hex of `bytes`.
    pub fn encode(bytes: impl AsRef<[u8]>) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let bytes = bytes.as_ref();
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        out
    }

    /// Bytes of hex text (either case); `None` on an odd length or a non-hex character.
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let digit = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
        let bytes = text.as_bytes();
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        bytes.chunks_exact(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
    }

    /// Exactly 32 bytes from 64 hex characters (keys, seeds).
    pub fn decode32(text: &str) -> Option<[u8; 32]> {
        decode(text)?.try_into().ok()
    }
}

/// Whether `s` is a queue slug, `[a-z0-9_-]{1,32}`: the one rule for every place a slug is
/// read (the private API, the edge, KV keys, cookie names).
pub fn valid_slug(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Unpadded URL-safe base64, the one text encoding used for binary values on the wire.
pub mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// Encodes bytes as unpadded URL-safe base64.
    pub fn encode(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes unpadded URL-safe base64; `None` on any invalid character or length.
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(text).ok()
    }
}
