//! Prints the ticket and token test vectors in `shared/test-vectors/` (how they were made).
//!
//! `cargo run -p anteroom-shared --example make_vectors -- tickets|tokens`

use shared::ticket::{Ticket, TicketKey, TicketKind};
use shared::token::{AccessClaims, SigningKey};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let mut out = Vec::new();
    if which == "tickets" {
        let cases = [
            (1u8, [0x11u8; 32], false, 1u32, 1u64, 1_790_000_000u32),
            (1, [0x11; 32], false, 1, 2, 1_790_000_001),
            (2, [0xa5; 32], true, 77, 999_999, 1_790_000_123),
            (255, [0x00; 32], false, u32::MAX, u64::MAX, u32::MAX),
        ];
        for (key_id, secret, prequeue, queue, position, entered_at) in cases {
            let key = TicketKey::new(key_id, secret);
            let kind = if prequeue { TicketKind::PreQueue } else { TicketKind::Fifo };
            let t = Ticket { key_id, kind, queue, position, entered_at };
            out.push(serde_json::json!({
                "key_id": key_id, "key_hex": hex(&secret), "prequeue": prequeue, "queue": queue,
                "position": position, "entered_at": entered_at, "ticket": t.seal(&key),
            }));
        }
    } else {
        let seed = [0x5au8; 32];
        let k = SigningKey::from_seed(seed);
        let claims = AccessClaims {
            iss: "anteroom".into(),
            aud: "concert".into(),
            sub: "AQEAAAAAAQAAAAAAAAABaqxvgI2PK5BnT0SFv8hK5ad1pKY".into(),
            qpos: 1,
            jti: "1.1".into(),
        };
        let iat = 1_790_000_000;
        let token = k.issue(&claims, iat, iat + 300);
        for (now, aud, valid) in [
            (iat + 1, "concert", true),
            (iat + 299, "concert", true),
            (iat + 400, "concert", false),
            (iat + 1, "other", false),
            (iat - 60, "concert", false),
        ] {
            out.push(serde_json::json!({
                "seed_hex": hex(&seed), "kid": k.kid(), "public_x": k.jwk().x, "token": token,
                "now": now, "aud": aud, "iss": "anteroom", "valid": valid,
            }));
        }
    }
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
