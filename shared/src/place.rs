//! Place arithmetic shared by the coordinator and the edge: expiry and the waiting count.

/// Whether an unclaimed place has expired.
///
/// The expiry clock starts when the serving position passes the place, or at entry if that
/// was later (a visitor who arrives after their place is already due gets the full window).
/// `expiry_secs = None` means places never expire.
pub fn expired(
    entered_at: u64,
    passed_at: Option<u64>,
    now: u64,
    expiry_secs: Option<u64>,
) -> bool {
    match (expiry_secs, passed_at) {
        (Some(window), Some(passed)) => now >= entered_at.max(passed).saturating_add(window),
        _ => false,
    }
}

/// Visitors waiting: assigned, not holding a token, not expired.
///
/// Every unclaimed place up to `expired_upto` has expired (both its entry and its passing
/// lie beyond the expiry window), and `claimed_upto` of those places did claim a token.
pub fn waiting(assigned: u64, claimed_total: u64, expired_upto: u64, claimed_upto: u64) -> u64 {
    let unclaimed = assigned.saturating_sub(claimed_total);
    let expired_unclaimed = expired_upto.min(assigned).saturating_sub(claimed_upto);
    unclaimed.saturating_sub(expired_unclaimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_table() {
        // (entered, passed, now, window, expired)
        let table = [
            (100, None, 10_000, Some(60), false),
            (100, Some(200), 259, Some(60), false),
            (100, Some(200), 260, Some(60), true),
            (300, Some(200), 359, Some(60), false),
            (300, Some(200), 360, Some(60), true),
            (100, Some(200), 1_000_000, None, false),
        ];
        for (entered, passed, now, window, want) in table {
            assert_eq!(expired(entered, passed, now, window), want, "{entered} {passed:?} {now}");
        }
    }

    #[test]
    fn waiting_table() {
        // (assigned, claimed_total, expired_upto, claimed_upto, waiting)
        let table = [
            (0, 0, 0, 0, 0),
            (10, 0, 0, 0, 10),
            (10, 3, 0, 0, 7),
            (10, 3, 5, 2, 4),
            (10, 10, 10, 10, 0),
            (10, 0, 20, 0, 0),
        ];
        for (a, c, e, cu, want) in table {
            assert_eq!(waiting(a, c, e, cu), want, "{a} {c} {e} {cu}");
        }
    }
}
