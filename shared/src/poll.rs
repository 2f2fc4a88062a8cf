//! The poll policy: how long a waiting visitor's page waits before asking for its place again.
//!
//! The edge names the interval in every status answer (`next_poll_ms`) and the page sleeps
//! exactly that long; the planner (`anteroom plan`) sums the same intervals over a predicted
//! line to predict the edge's poll load. Pure: the jitter seed comes in as an argument.

/// Adaptive polling: `(ahead below, interval ms)`, first match wins. Far back a visitor is
/// asked rarely (nothing changes for them for minutes), near the front often.
pub const POLL_TABLE: [(u64, u64); 5] =
    [(51, 2_000), (501, 5_000), (2_001, 10_000), (10_000, 20_000), (u64::MAX, 30_000)];
/// Interval when the answer does not know the visitor (`serving_pos`, `waiting_num`).
pub const POLL_UNKNOWN_MS: u64 = 5_000;
/// Jitter either side of the interval, percent.
pub const POLL_JITTER_PCT: u64 = 20;
/// Browsers run a hidden tab's timers about once a minute, so a hidden page may learn of its
/// turn up to this plus the longest poll late.
pub const HIDDEN_TAB_TIMER_SECS: u64 = 60;

/// The interval before the next status poll, without jitter.
pub fn poll_base_ms(ahead: Option<u64>) -> u64 {
    let Some(ahead) = ahead else { return POLL_UNKNOWN_MS };
    POLL_TABLE.iter().find(|&&(below, _)| ahead < below).map_or(POLL_UNKNOWN_MS, |&(_, ms)| ms)
}

/// `next_poll_ms` of a status answer: [`poll_base_ms`] moved by up to ±[`POLL_JITTER_PCT`]
/// by `seed` (uniform over `u32`), so visitors who joined together do not poll together.
pub fn next_poll_ms(ahead: Option<u64>, seed: u32) -> u64 {
    let base = poll_base_ms(ahead);
    let spread = base * POLL_JITTER_PCT / 100;
    base - spread + u64::from(seed) * 2 * spread / u64::from(u32::MAX)
}

/// A jitter seed stable for one visitor: their request_id hashed with FNV-1a (64-bit, folded
/// to 32). Only spreads polls out, so it needs no cryptographic hash: a ticket ends in 21
/// characters of MAC, uniform enough by themselves, and a SHA-256 here was the most costly
/// step of a `queue_pos` at the edge after the ticket's own MAC (Wasm has no SHA instructions).
pub fn visitor_seed(request_id: &str) -> u32 {
    let h = request_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    // Folding keeps the well-mixed high half in play.
    (h ^ (h >> 32)) as u32
}

/// The shortest position expiry that leaves a hidden tab room for five late discoveries of
/// its turn (each a throttled timer plus the longest jittered poll), seconds.
pub fn min_position_expiry_secs() -> u64 {
    let longest_ms = POLL_TABLE.iter().map(|&(_, ms)| ms).max().unwrap_or(POLL_UNKNOWN_MS);
    let longest_secs = (longest_ms * (100 + POLL_JITTER_PCT)).div_ceil(100_000);
    5 * (HIDDEN_TAB_TIMER_SECS + longest_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_interval_follows_the_table_within_its_jitter() {
        for (ahead, base) in [
            (0, 2_000),
            (50, 2_000),
            (51, 5_000),
            (500, 5_000),
            (2_000, 10_000),
            (9_999, 20_000),
            (10_000, 30_000),
            (1_000_000, 30_000),
        ] {
            assert_eq!(poll_base_ms(Some(ahead)), base);
            assert_eq!(next_poll_ms(Some(ahead), 0), base * 8 / 10);
            assert_eq!(next_poll_ms(Some(ahead), u32::MAX), base * 12 / 10);
        }
        assert_eq!(poll_base_ms(None), POLL_UNKNOWN_MS);
    }

    /// Seeds of real-looking tickets spread over the whole range: each tenth of `u32` gets
    /// its share of 20,000 tickets within 10%.
    #[test]
    fn visitor_seeds_spread_evenly() {
        let key = crate::ticket::TicketKey::new(1, [7; 32]);
        let mut tenths = [0u32; 10];
        for position in 1..=20_000u64 {
            let t = crate::ticket::Ticket {
                key_id: 1,
                kind: crate::ticket::TicketKind::Fifo,
                queue: 42,
                position,
                entered_at: 1_700_000_000,
            };
            let seed = visitor_seed(&t.seal(&key));
            tenths[(u64::from(seed) * 10 / (u64::from(u32::MAX) + 1)) as usize] += 1;
        }
        assert!(tenths.iter().all(|&n| (1_800..=2_200).contains(&n)), "{tenths:?}");
    }

    #[test]
    fn a_million_waiting_visitors_poll_about_33_7k_times_a_second() {
        let rate: f64 = (1..=1_000_000u64).map(|a| 1000.0 / poll_base_ms(Some(a)) as f64).sum();
        assert!((rate - 33_665.0).abs() < 1.0, "{rate}");
    }

    #[test]
    fn the_default_position_expiry_survives_hidden_tabs() {
        assert_eq!(min_position_expiry_secs(), 5 * (60 + 36));
        let expiry = u64::from(crate::wire::QueueConfig::with_defaults("q").position_expiry_second);
        assert!(expiry >= min_position_expiry_secs(), "{expiry}");
    }
}
