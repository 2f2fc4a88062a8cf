//! A compact, exact set of queue positions: how the revoked sessions of a queue travel to the
//! edge (a session's `jti` is `<queue id>.<position>`, so a revoked session is a position).
//!
//! The set is kept as sorted, disjoint runs of consecutive positions and sent as one base64url
//! string of LEB128 varints: for each run, the distance from the end of the previous run (from
//! 0 for the first) and the run's length minus one. Ended sessions come in position order with
//! few gaps (most buyers finish or leave), so a run covers many of them; the worst case,
//! every other position, costs about 2 bytes per position before base64. Measured in the tests
//! below: 100,000 revocations with one in ten sessions still live take 29.6 KB; 100,000 at every
//! other position take 267 KB (base64 text). There are no false positives: a revoked session is refused, a
//! live one never is.

/// Positions as sorted, disjoint, non-adjacent inclusive runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PositionSet {
    runs: Vec<(u64, u64)>,
}

/// Why an encoded set was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPositionSet;

impl core::fmt::Display for BadPositionSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("position set does not decode")
    }
}

impl std::error::Error for BadPositionSet {}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            // Refuse overlong encodings and bits beyond 64, so every set has one encoding.
            let last_ok = shift == 0 || b != 0;
            let fits = shift < 63 || b <= 1;
            return (last_ok && fits).then_some(v);
        }
    }
    None
}

impl PositionSet {
    /// The set of `positions` (any order, duplicates allowed).
    pub fn from_positions(mut positions: Vec<u64>) -> Self {
        positions.sort_unstable();
        positions.dedup();
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for p in positions {
            match runs.last_mut() {
                Some(r) if r.1.checked_add(1) == Some(p) => r.1 = p,
                _ => runs.push((p, p)),
            }
        }
        PositionSet { runs }
    }

    /// Whether `p` is in the set.
    pub fn contains(&self, p: u64) -> bool {
        let i = self.runs.partition_point(|r| r.1 < p);
        self.runs.get(i).is_some_and(|r| r.0 <= p)
    }

    /// Number of positions in the set.
    pub fn len(&self) -> u64 {
        self.runs.iter().map(|r| r.1 - r.0 + 1).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The text form (empty for the empty set).
    pub fn encode(&self) -> String {
        let mut out = Vec::with_capacity(self.runs.len() * 3);
        let mut prev_end: Option<u64> = None;
        for &(start, end) in &self.runs {
            let gap = match prev_end {
                None => start,
                Some(e) => start - e - 2, // runs are never adjacent: start ≥ e + 2
            };
            put_varint(&mut out, gap);
            put_varint(&mut out, end - start);
            prev_end = Some(end);
        }
        crate::b64::encode(out)
    }

    /// Parses the text form; refuses anything [`PositionSet::encode`] would not write.
    pub fn decode(text: &str) -> Result<Self, BadPositionSet> {
        let bytes = crate::b64::decode(text).ok_or(BadPositionSet)?;
        let mut runs = Vec::new();
        let mut at = 0;
        let mut prev_end: Option<u64> = None;
        while at < bytes.len() {
            let gap = take_varint(&bytes, &mut at).ok_or(BadPositionSet)?;
            let len = take_varint(&bytes, &mut at).ok_or(BadPositionSet)?;
            let start = match prev_end {
                None => gap,
                Some(e) => {
                    e.checked_add(2).and_then(|s| s.checked_add(gap)).ok_or(BadPositionSet)?
                }
            };
            let end = start.checked_add(len).ok_or(BadPositionSet)?;
            runs.push((start, end));
            prev_end = Some(end);
        }
        Ok(PositionSet { runs })
    }
}

impl serde::Serialize for PositionSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> serde::Deserialize<'de> for PositionSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        PositionSet::decode(&text).map_err(serde::de::Error::custom)
    }
}

/// The position a session `jti` (`<queue id>.<position>`) names, if it is one of `queue`'s.
pub fn position_of_jti(jti: &str, queue: u32) -> Option<u64> {
    let (q, p) = jti.split_once('.')?;
    (q.parse::<u32>().ok()? == queue).then_some(())?;
    p.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use proptest::prelude::*;

    /// Shared with `miniflare-tests/` (helpers.mjs encodes sets independently).
    const VECTORS: &str = include_str!("../test-vectors/positions.json");

    #[derive(serde::Deserialize)]
    struct Vector {
        positions: Vec<u64>,
        encoded: String,
    }

    #[test]
    fn vectors() {
        let v: Vec<Vector> = serde_json::from_str(VECTORS).unwrap();
        assert!(v.len() >= 4);
        for v in v {
            let set = PositionSet::from_positions(v.positions.clone());
            assert_eq!(set.encode(), v.encoded, "{:?}", v.positions);
            assert_eq!(PositionSet::decode(&v.encoded).unwrap(), set);
        }
    }

    #[test]
    fn membership_and_runs() {
        let s = PositionSet::from_positions(vec![5, 3, 4, 9, 9, 10, 20]);
        assert_eq!(s.runs, vec![(3, 5), (9, 10), (20, 20)]);
        for p in [3, 4, 5, 9, 10, 20] {
            assert!(s.contains(p), "{p}");
        }
        for p in [0, 1, 2, 6, 8, 11, 19, 21, u64::MAX] {
            assert!(!s.contains(p), "{p}");
        }
        assert_eq!(s.len(), 6);
        assert!(PositionSet::default().encode().is_empty());
        assert_eq!(PositionSet::decode("").unwrap(), PositionSet::default());
        let edge = PositionSet::from_positions(vec![0, u64::MAX - 1, u64::MAX]);
        assert_eq!(PositionSet::decode(&edge.encode()).unwrap(), edge);
    }

    #[test]
    fn bad_encodings_are_refused() {
        for bad in ["!!", "gA", "gICAgICAgICAgAE", "AA", "AIA"] {
            assert_eq!(PositionSet::decode(bad), Err(BadPositionSet), "{bad}");
        }
    }

    #[test]
    fn jti_positions() {
        assert_eq!(position_of_jti("7.42", 7), Some(42));
        assert_eq!(position_of_jti("7.42", 8), None);
        for bad in ["", "7", "x.1", "7.x", "7.-1", ".1"] {
            assert_eq!(position_of_jti(bad, 7), None, "{bad}");
        }
    }

    /// The sizes quoted in the module docs.
    #[test]
    fn size_of_a_hundred_thousand_revocations() {
        let mostly_ended: Vec<u64> = (1..=111_112).filter(|p| p % 10 != 0).take(100_000).collect();
        let alternate: Vec<u64> = (0..100_000u64).map(|i| 1_000_000 + 2 * i).collect();
        let sparse = PositionSet::from_positions(alternate).encode().len();
        let dense = PositionSet::from_positions(mostly_ended).encode().len();
        assert!(dense <= 30_000, "dense {dense} sparse {sparse}");
        assert!(sparse <= 267_000, "{sparse}");
    }

    proptest! {
        #[test]
        fn round_trip_and_membership(mut ps in proptest::collection::vec(0u64..5_000, 0..300), probe in 0u64..5_100) {
            let set = PositionSet::from_positions(ps.clone());
            let back = PositionSet::decode(&set.encode()).unwrap();
            prop_assert_eq!(&back, &set);
            ps.sort_unstable();
            prop_assert_eq!(set.contains(probe), ps.binary_search(&probe).is_ok());
        }

        #[test]
        fn mutated_encodings_never_panic_and_decode_canonically(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = crate::b64::encode(&bytes);
            if let Ok(set) = PositionSet::decode(&text) {
                prop_assert_eq!(set.encode(), text, "one encoding per set");
            }
        }
    }
}
