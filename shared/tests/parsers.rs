//! Property tests over every parser the edge and the coordinator run on input a visitor or an
//! attacker controls: tickets, access tokens, proof-of-work challenges, sync batches and the
//! signed headers, request paths, position sets, the pause arithmetic. For each: arbitrary
//! input never panics, and a valid value with any one character changed is never accepted.
//!
//! The number of cases per property is `PROPTEST_CASES` (default here 10,000); the issue's
//! note reports the counts and time of the CI run.
#![allow(clippy::unwrap_used, reason = "tests")]

use proptest::prelude::*;
use shared::path::CanonicalPath;
use shared::ticket::{Ticket, TicketKey, TicketKind};
use shared::token::{AccessClaims, SigningKey};

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(10_000);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// `text` with the character at `at` (modulo its length) replaced by another one of `alphabet`.
fn mutate(text: &str, at: usize, pick: usize, alphabet: &[u8]) -> String {
    let mut b = text.as_bytes().to_vec();
    let i = at % b.len();
    let mut c = alphabet[pick % alphabet.len()];
    if c == b[i] {
        c = alphabet[(pick + 1) % alphabet.len()];
    }
    b[i] = c;
    String::from_utf8(b).unwrap()
}

static KEY: std::sync::LazyLock<TicketKey> =
    std::sync::LazyLock::new(|| TicketKey::new(3, [0x5a; 32]));
const EDGE_KEY: [u8; 32] = [0x42; 32];

fn ticket_strategy() -> impl Strategy<Value = Ticket> {
    (any::<bool>(), any::<u32>(), any::<u64>(), any::<u32>()).prop_map(
        |(pre, queue, position, at)| Ticket {
            key_id: KEY.id,
            kind: if pre { TicketKind::PreQueue } else { TicketKind::Fifo },
            queue,
            position,
            entered_at: at,
        },
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn tickets(t in ticket_strategy(), junk in ".{0,64}", at in any::<usize>(), pick in any::<usize>()) {
        let _ = Ticket::open(&junk, |_| Some(&KEY));
        let sealed = t.seal(&KEY);
        prop_assert_eq!(Ticket::open(&sealed, |_| Some(&KEY)).unwrap(), t);
        let forged = mutate(&sealed, at, pick, B64);
        prop_assert!(Ticket::open(&forged, |_| Some(&KEY)).is_err(), "{} accepted", forged);
    }

    #[test]
    fn access_tokens(
        position in 1u64..1_000_000,
        junk in ".{0,300}",
        at in any::<usize>(),
        pick in any::<usize>(),
    ) {
        let key = SigningKey::from_seed([7; 32]);
        let public = key.public();
        let now = 1_800_000_000i64;
        let claims = AccessClaims {
            iss: "anteroom".into(),
            aud: "sale".into(),
            sub: "rid".into(),
            qpos: position,
            jti: format!("9.{position}"),
        };
        let token = key.issue(&claims, now, now + 300);
        let verify = |t: &str| shared::token::verify(t, |_| Some(public), "anteroom", "sale", now);
        prop_assert!(verify(&token).is_ok());
        let _ = verify(&junk);
        let forged = mutate(&token, at, pick, B64);
        prop_assert!(verify(&forged).is_err(), "{} accepted", forged);
    }

    #[test]
    fn proof_of_work_challenges(
        queue in any::<u32>(),
        nonce in any::<[u8; 16]>(),
        junk in ".{0,80}",
        at in any::<usize>(),
        pick in any::<usize>(),
    ) {
        let ch = shared::pow::issue(&EDGE_KEY, queue, nonce, 2_000_000_000, 3, "203.0.113.1");
        prop_assert!(shared::pow::open(&EDGE_KEY, &ch).is_ok());
        let _ = shared::pow::open(&EDGE_KEY, &junk);
        let _ = shared::pow::verify_solution(&EDGE_KEY, &junk, 0, queue, "x", 0);
        let forged = mutate(&ch, at, pick, B64);
        prop_assert!(shared::pow::open(&EDGE_KEY, &forged).is_err(), "{} accepted", forged);
    }

    #[test]
    fn sync_batches_and_signed_headers(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        ts in 1_700_000_000_000u64..1_900_000_000_000,
        ip in "[0-9a-f.:]{0,39}",
        at in any::<usize>(),
        pick in any::<usize>(),
        flip in any::<usize>(),
    ) {
        let _ = serde_json::from_slice::<shared::sync::SyncBatch>(&body);
        let sig = shared::sync::sign_sync(&EDGE_KEY, ts, &body);
        prop_assert!(shared::sync::verify_sync(&EDGE_KEY, ts, &body, &sig, ts).is_ok());
        let forged_sig = mutate(&sig, at, pick, B64);
        prop_assert!(shared::sync::verify_sync(&EDGE_KEY, ts, &body, &forged_sig, ts).is_err());
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip % body.len()] ^= 1 | (pick as u8);
            prop_assert!(shared::sync::verify_sync(&EDGE_KEY, ts, &changed, &sig, ts).is_err());
        }
        prop_assert!(shared::sync::verify_sync(&EDGE_KEY, ts + 1, &body, &sig, ts).is_err());
        let header = shared::sync::sign_client(&EDGE_KEY, &ip, ts);
        prop_assert_eq!(shared::sync::verify_client(&EDGE_KEY, &header, ts).unwrap(), ip);
        let forged = mutate(&header, at, pick, b"0123456789abcdef.:|-_ABCXYZ");
        prop_assert!(shared::sync::verify_client(&EDGE_KEY, &forged, ts).is_err(), "{} accepted", forged);
        let _ = shared::sync::verify_client(&EDGE_KEY, &String::from_utf8_lossy(&body), ts);
    }

    #[test]
    fn request_paths(raw in "(/|\\\\)[a-zA-Z0-9./%;~\\\\_-]{0,40}", junk in ".{0,64}") {
        let _ = CanonicalPath::parse(&junk);
        if let Ok(c) = CanonicalPath::parse(&raw) {
            // The canonical form is its own canonical form: matching is stable.
            let again = CanonicalPath::parse(&c.as_string()).unwrap();
            prop_assert_eq!(again.as_string(), c.as_string());
            let p = shared::path::Patterns::new(&[c.as_string()], &[], true);
            prop_assert!(p.covers(&c).is_some(), "a path covers itself: {}", raw);
        }
    }

    #[test]
    fn position_sets(junk in ".{0,64}") {
        if let Ok(s) = shared::positions::PositionSet::decode(&junk) {
            prop_assert_eq!(s.encode(), junk);
        }
    }

    #[test]
    fn expiry_deadlines_and_their_inverse(
        start in 0u64..10_000,
        window in 1u64..2_000,
        raw in proptest::collection::vec((0u64..12_000, 1u64..300), 0..12),
        now in 0u64..15_000,
    ) {
        let pauses = raw.iter().fold(Vec::new(), |p, &(a, len)| shared::place::add_pause(&p, a, a + len, 64));
        let d = shared::place::deadline(start, window, &pauses);
        prop_assert!(d >= start + window, "pauses only lengthen the window");
        let t0 = shared::place::expired_before(now, window, &pauses);
        // 0 when even a start at 0 has not expired (saturated): nothing has.
        prop_assert!(t0 == 0 || shared::place::deadline(t0, window, &pauses) <= now);
        prop_assert!(shared::place::deadline(t0 + 1, window, &pauses) > now);
    }
}
