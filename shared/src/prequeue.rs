//! The pre-queue draw: a committed seed and a keyed permutation that puts everyone who
//! arrived before opening in a random order anyone can recompute.
//!
//! Before the pre-queue opens the coordinator publishes [`commitment`] of a fresh 32-byte
//! seed. At opening, with the final pre-queue count `n` known, it reveals the seed; the
//! arrival with index `i` (1-based) gets place [`drawn_place`]`(seed, queue_id, n, i)`, and
//! visitors arriving after the opening get [`place_after_opening`]. Because `n` is part of
//! the key, nobody (the operator included) can aim a ticket at a chosen place by choosing
//! the seed in advance: each further arrival reshuffles everything.
//!
//! The permutation is a balanced Feistel network over the smallest even number of bits that
//! covers `[0, n)`, with cycle-walking, so one place costs a few SHA-256 calls and the edge
//! computes it without materialising the permutation. The exact construction is specified
//! in `docs/admission.md`; `shared/test-vectors/prequeue.json` pins it for other
//! implementations.

use sha2::{Digest, Sha256};

/// Domain-separation prefix of the permutation key.
const DOMAIN: &[u8] = b"anteroom/prequeue/v1";
/// Feistel rounds.
const ROUNDS: u8 = 8;

/// SHA-256 of the seed, lower-case hex: published before the pre-queue opens.
pub fn commitment(seed: &[u8; 32]) -> String {
    crate::hex::encode(Sha256::digest(seed))
}

/// Whether `commitment` (hex, any case) is the SHA-256 of `seed`.
pub fn verify_commitment(seed: &[u8; 32], commitment: &str) -> bool {
    crate::hex::decode(commitment).is_some_and(|c| c.as_slice() == Sha256::digest(seed).as_slice())
}

/// Parses a seed from its 64-character hex form (any case).
pub fn seed_from_hex(text: &str) -> Option<[u8; 32]> {
    crate::hex::decode32(text)
}

/// The seed's 64-character lower-case hex form, as revealed at opening.
pub fn seed_to_hex(seed: &[u8; 32]) -> String {
    crate::hex::encode(seed)
}

/// The place (1-based) of pre-queue arrival `arrival_index` (1-based) among `n` arrivals;
/// `None` unless `1 <= arrival_index <= n`. A bijection on `[1, n]` for every key.
pub fn drawn_place(seed: &[u8; 32], queue_id: u32, n: u64, arrival_index: u64) -> Option<u64> {
    if arrival_index == 0 || arrival_index > n {
        return None;
    }
    let f = Feistel::new(seed, queue_id, n);
    let mut x = arrival_index - 1;
    loop {
        x = f.encrypt(x);
        if x < n {
            return Some(x + 1);
        }
    }
}

/// The inverse of [`drawn_place`]: which arrival got `place`; `None` unless
/// `1 <= place <= n`.
pub fn arrival_at_place(seed: &[u8; 32], queue_id: u32, n: u64, place: u64) -> Option<u64> {
    if place == 0 || place > n {
        return None;
    }
    let f = Feistel::new(seed, queue_id, n);
    let mut x = place - 1;
    loop {
        x = f.decrypt(x);
        if x < n {
            return Some(x + 1);
        }
    }
}

/// The place of the `fifo_index`-th visitor (1-based) to arrive after the opening, behind
/// the `n_prequeue` drawn places.
pub fn place_after_opening(n_prequeue: u64, fifo_index: u64) -> u64 {
    n_prequeue.saturating_add(fifo_index)
}

/// A balanced Feistel permutation of `[0, 2^(2·half))`.
struct Feistel {
    /// SHA-256 of the domain prefix, seed, queue id and count: the round-function key.
    key: [u8; 32],
    /// Bits in each half.
    half: u32,
    /// `2^half - 1`.
    mask: u64,
}

impl Feistel {
    fn new(seed: &[u8; 32], queue_id: u32, n: u64) -> Feistel {
        let key = Sha256::new()
            .chain_update(DOMAIN)
            .chain_update(seed)
            .chain_update(queue_id.to_be_bytes())
            .chain_update(n.to_be_bytes())
            .finalize()
            .into();
        // Bits needed for the largest index n - 1, at least 2, rounded up to even.
        let bits = (u64::BITS - n.saturating_sub(1).leading_zeros()).max(2);
        let half = bits.div_ceil(2);
        Feistel { key, half, mask: (1u64 << half) - 1 }
    }

    /// Round function: the first 8 bytes of SHA-256(key ‖ round ‖ value), big-endian,
    /// masked to a half.
    fn round(&self, round: u8, value: u64) -> u64 {
        let digest = Sha256::new()
            .chain_update(self.key)
            .chain_update([round])
            .chain_update(value.to_be_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) & self.mask
    }

    fn encrypt(&self, x: u64) -> u64 {
        let (mut left, mut right) = (x >> self.half, x & self.mask);
        for round in 0..ROUNDS {
            (left, right) = (right, left ^ self.round(round, right));
        }
        (left << self.half) | right
    }

    fn decrypt(&self, x: u64) -> u64 {
        let (mut left, mut right) = (x >> self.half, x & self.mask);
        for round in (0..ROUNDS).rev() {
            (left, right) = (right ^ self.round(round, left), left);
        }
        (left << self.half) | right
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use proptest::prelude::*;

    /// The test vectors shared with other implementations
    /// (`shared/test-vectors/prequeue.json`, produced by the Python in `docs/admission.md`).
    const VECTORS: &str = include_str!("../test-vectors/prequeue.json");

    #[derive(serde::Deserialize)]
    struct Vector {
        seed_hex: String,
        commitment: String,
        queue_id: u32,
        n: u64,
        first_places: Vec<u64>,
    }

    const SEED: [u8; 32] = [7; 32];

    fn permutation(seed: &[u8; 32], queue_id: u32, n: u64) -> Vec<u64> {
        (1..=n).map(|i| drawn_place(seed, queue_id, n, i).unwrap()).collect()
    }

    fn assert_bijection(seed: &[u8; 32], queue_id: u32, n: u64) {
        let places = permutation(seed, queue_id, n);
        let mut seen = vec![false; n as usize + 1];
        for (i, &p) in places.iter().enumerate() {
            assert!((1..=n).contains(&p), "n {n}: place {p}");
            assert!(!seen[p as usize], "n {n}: place {p} drawn twice");
            seen[p as usize] = true;
            assert_eq!(arrival_at_place(seed, queue_id, n, p), Some(i as u64 + 1));
        }
    }

    #[test]
    fn the_draw_is_a_bijection_for_many_sizes() {
        for n in (1..=70).chain([127, 128, 129, 1000, 1009, 1024, 4096, 4099]) {
            assert_bijection(&SEED, 3, n);
        }
    }

    #[test]
    fn out_of_range_indices_have_no_place() {
        for (n, i) in [(0, 0), (0, 1), (5, 0), (5, 6), (u64::MAX, 0)] {
            assert_eq!(drawn_place(&SEED, 1, n, i), None, "n {n} i {i}");
            assert_eq!(arrival_at_place(&SEED, 1, n, i), None, "n {n} i {i}");
        }
        assert_eq!(drawn_place(&SEED, 1, 1, 1), Some(1));
    }

    #[test]
    fn huge_counts_work_and_invert() {
        for n in [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 40) + 3] {
            for i in [1, 2, n / 2, n - 1, n] {
                let p = drawn_place(&SEED, 9, n, i).unwrap();
                assert!((1..=n).contains(&p));
                assert_eq!(arrival_at_place(&SEED, 9, n, p), Some(i));
            }
        }
    }

    #[test]
    fn a_thousand_prequeue_tickets_recompute_identically_and_precede_fifo() {
        let n = 1000;
        let first = permutation(&SEED, 42, n);
        // Anyone with the revealed seed gets the same order.
        let seed = seed_from_hex(&seed_to_hex(&SEED)).unwrap();
        assert_eq!(permutation(&seed, 42, n), first);
        assert_bijection(&SEED, 42, n);
        // It is shuffled: few arrivals keep their index.
        let fixed_points = first.iter().enumerate().filter(|(i, p)| **p == *i as u64 + 1).count();
        assert!(fixed_points < 10, "{fixed_points} fixed points");
        // Everyone arriving after the opening comes after all of them, in order.
        let fifo: Vec<u64> = (1..=5).map(|k| place_after_opening(n, k)).collect();
        assert_eq!(fifo, [1001, 1002, 1003, 1004, 1005]);
        assert!(first.iter().all(|&p| p <= n));
    }

    #[test]
    fn changing_the_seed_the_count_or_the_queue_changes_the_order() {
        let base = permutation(&SEED, 42, 1000);
        let mut other_seed = SEED;
        other_seed[31] ^= 1;
        assert_ne!(permutation(&other_seed, 42, 1000), base);
        assert_ne!(permutation(&SEED, 43, 1000), base);
        // One more arrival reshuffles everyone, not just the newcomer.
        let more = permutation(&SEED, 42, 1001);
        let same = base.iter().zip(&more).filter(|(a, b)| a == b).count();
        assert!(same < 10, "{same} arrivals kept their place");
    }

    #[test]
    fn places_are_spread_evenly() {
        // Over many seeds, arrival 1 lands in each tenth of 100 places about equally often.
        let mut buckets = [0u32; 10];
        for s in 0..2000u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&s.to_be_bytes());
            let p = drawn_place(&seed, 1, 100, 1).unwrap();
            buckets[((p - 1) / 10) as usize] += 1;
        }
        assert!(buckets.iter().all(|&b| (140..=260).contains(&b)), "{buckets:?}");
    }

    #[test]
    fn commitments() {
        // SHA-256 of 32 zero bytes.
        let zero = [0u8; 32];
        let c = commitment(&zero);
        assert_eq!(c, "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
        assert!(verify_commitment(&zero, &c));
        assert!(verify_commitment(&zero, &c.to_uppercase()));
        assert!(!verify_commitment(&SEED, &c));
        for bad in ["", "66", &c[..63], &format!("{c}00"), &c.replace('6', "g")] {
            assert!(!verify_commitment(&zero, bad), "{bad}");
        }
        assert_eq!(seed_from_hex(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(seed_from_hex(&"ab".repeat(31)), None);
        assert_eq!(seed_from_hex(&"zz".repeat(32)), None);
        assert_eq!(seed_from_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn vectors() {
        let vectors: Vec<Vector> = serde_json::from_str(VECTORS).unwrap();
        assert!(vectors.len() >= 8);
        for v in vectors {
            let seed = seed_from_hex(&v.seed_hex).unwrap();
            assert_eq!(commitment(&seed), v.commitment);
            let got: Vec<u64> = (1..=v.n.min(20))
                .map(|i| drawn_place(&seed, v.queue_id, v.n, i).unwrap())
                .collect();
            assert_eq!(got, v.first_places, "n {} queue {}", v.n, v.queue_id);
        }
    }

    proptest! {
        #[test]
        fn a_bijection_for_random_keys(seed in any::<[u8; 32]>(), queue in any::<u32>(), n in 1u64..600) {
            let mut seen = vec![false; n as usize + 1];
            for i in 1..=n {
                let p = drawn_place(&seed, queue, n, i).unwrap();
                prop_assert!(!seen[p as usize]);
                seen[p as usize] = true;
            }
        }

        #[test]
        fn inverse_for_random_large_counts(seed in any::<[u8; 32]>(), n in 1u64.., i in 1u64..) {
            let i = (i - 1) % n + 1;
            let p = drawn_place(&seed, 5, n, i).unwrap();
            prop_assert_eq!(arrival_at_place(&seed, 5, n, p), Some(i));
        }
    }
}
