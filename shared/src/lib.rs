//! Anteroom's pure core: everything the coordinator and the edge must agree on, with no IO.
//!
//! This crate never touches the network, the clock or a random source on its own: callers
//! pass in the current time and any randomness. It builds natively and for
//! `wasm32-unknown-unknown`, so the edge worker and the coordinator run the same code.

pub mod admission;
pub mod eta;
pub mod path;
pub mod place;
pub mod positions;
pub mod pow;
pub mod prequeue;
pub mod sync;
pub mod template;
pub mod ticket;
pub mod token;
pub mod wire;

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
