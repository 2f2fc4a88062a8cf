//! Place arithmetic shared by the coordinator and the edge: expiry and the waiting count.
//!
//! The expiry clock of a served place stands still while a claim could not succeed through
//! no fault of the visitor: the operator paused admissions (claims answer 503), the session
//! cap was full (claims answer 202), or the store was down (503). Those seconds are kept per
//! queue as *pauses*, half-open `[from, to)` unix-second intervals, sorted and disjoint.

/// A position-expiry window as enforced: the configured seconds plus
/// [`crate::pull::EXPIRY_GRACE_SECS`], so no place expires before every PoP could have shown
/// it served.
pub fn expiry_window(position_expiry_second: u32) -> u64 {
    u64::from(position_expiry_second) + crate::pull::EXPIRY_GRACE_SECS
}

/// The first second at which a place whose clock started at `start` has been claimable for
/// `window` seconds outside `pauses`.
pub fn deadline(start: u64, window: u64, pauses: &[(u64, u64)]) -> u64 {
    let (mut t, mut left) = (start, window);
    for &(from, to) in pauses.iter().filter(|(_, to)| *to > start) {
        let from = from.max(t);
        if from >= t.saturating_add(left) {
            break;
        }
        left -= from - t;
        t = to.max(t);
    }
    t.saturating_add(left)
}

/// The latest second `t0` such that a place whose clock started at or before `t0` has expired
/// at `now` (the inverse of [`deadline`]): `now - window`, moved back over the pauses (a start
/// inside a pause counts from the pause's end).
pub fn expired_before(now: u64, window: u64, pauses: &[(u64, u64)]) -> u64 {
    let (mut t, mut left) = (now, window);
    for &(from, to) in pauses.iter().rev().filter(|(from, _)| *from < now) {
        let to = to.min(t);
        if to.saturating_add(left) <= t {
            break;
        }
        left -= t - to;
        t = from.min(t);
    }
    t.saturating_sub(left)
}

/// Whether an unclaimed place has expired.
///
/// The expiry clock starts when the serving position passes the place, or at entry if that
/// was later (a visitor who arrives after their place is already due gets the full window),
/// and stands still during `pauses`. `expiry_secs = None` means places never expire.
pub fn expired(
    entered_at: u64,
    passed_at: Option<u64>,
    now: u64,
    expiry_secs: Option<u64>,
    pauses: &[(u64, u64)],
) -> bool {
    match (expiry_secs, passed_at) {
        (Some(window), Some(passed)) => now >= deadline(entered_at.max(passed), window, pauses),
        _ => false,
    }
}

/// `pauses` with `[from, to)` added, merged with what it overlaps or touches, at most `keep`
/// intervals (the oldest dropped).
pub fn add_pause(pauses: &[(u64, u64)], from: u64, to: u64, keep: usize) -> Vec<(u64, u64)> {
    let mut all: Vec<(u64, u64)> = pauses.to_vec();
    if from < to {
        all.push((from, to));
    }
    all.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(all.len());
    for (a, b) in all {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    let drop = out.len().saturating_sub(keep);
    out.drain(..drop);
    out
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
            assert_eq!(
                expired(entered, passed, now, window, &[]),
                want,
                "{entered} {passed:?} {now}"
            );
        }
    }

    #[test]
    fn pauses_stop_the_expiry_clock() {
        // Passed at 200, window 60: expired at 260 without pauses.
        let check = |pauses: &[(u64, u64)], want: u64| {
            assert_eq!(deadline(200, 60, pauses), want, "{pauses:?}");
            assert!(!expired(100, Some(200), want - 1, Some(60), pauses));
            assert!(expired(100, Some(200), want, Some(60), pauses));
            // The inverse: the latest start that has expired by `want`.
            let t0 = expired_before(want, 60, pauses);
            assert!(deadline(t0, 60, pauses) <= want, "{pauses:?}: {t0}");
            assert!(deadline(t0 + 1, 60, pauses) > want, "{pauses:?}: {t0}");
        };
        check(&[], 260);
        check(&[(100, 150)], 260); // over before the clock started
        check(&[(190, 210)], 270); // straddles the start: 10 s of it count
        check(&[(220, 230), (240, 245)], 275);
        check(&[(260, 300)], 260); // after the deadline: too late to matter
        check(&[(259, 300)], 301); // the last claimable second was paused
    }

    #[test]
    fn pauses_merge_and_stay_bounded() {
        let p = add_pause(&[], 10, 11, 8);
        let p = add_pause(&p, 11, 12, 8);
        assert_eq!(p, vec![(10, 12)], "adjacent seconds make one interval");
        let p = add_pause(&p, 20, 21, 8);
        let p = add_pause(&p, 5, 30, 8);
        assert_eq!(p, vec![(5, 30)], "an outage covering both");
        let many = (0..20).fold(Vec::new(), |p, i| add_pause(&p, i * 10, i * 10 + 1, 4));
        assert_eq!(many, vec![(160, 161), (170, 171), (180, 181), (190, 191)]);
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
