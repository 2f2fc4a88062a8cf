//! The post-sale report, computed from what the store keeps per queue (no IO here): the
//! minute samples (the queue's counters at the start of each minute, `store::MinuteSample`),
//! a live sample of now, and the two wait histograms claims add to.
//!
//! - Per minute: the differences of consecutive samples (arrivals, admissions, claims,
//!   sessions by outcome) and the line and sessions at the minute's end.
//! - Waits (joining to served, joining to claiming), of visitors who claimed: recorded
//!   exactly at each claim (the ticket carries the entry time) into log buckets: 1 s wide to
//!   10 s, then 10% wide; a percentile is its bucket's upper end.
//! - ETA honesty, by cohorts: the visitors who joined between two samples are spread evenly
//!   over that interval; each was shown the band `shared::eta::eta` gives for the rate
//!   estimate of the interval's start and its distance to the serving position then
//!   (interpolated); it was admitted when the serving position reached it (interpolated
//!   between the samples around that moment). At most [`COHORT_POINTS`] visitors of a cohort
//!   are evaluated, each standing for its share of the cohort. Its resolution is the minute:
//!   a statement about bands of minutes, not seconds.

use shared::wire::{EtaHonesty, Peaks, Report, ReportMinute, ReportTotals, WaitPercentiles};

use crate::store::{MinuteSample, WAIT_BUCKETS, WaitCounts};

/// Visitors of one cohort whose band is evaluated.
pub const COHORT_POINTS: u64 = 200;

/// The histogram bucket of a wait of `secs` seconds.
pub fn wait_bucket(secs: u64) -> u8 {
    if secs < 10 {
        return secs as u8;
    }
    let b = 10.0 + ((secs as f64 / 10.0).ln() / 1.1f64.ln()).floor();
    b.min((WAIT_BUCKETS - 1) as f64) as u8
}

/// The largest wait a bucket holds (its upper end), seconds.
pub fn bucket_top(b: usize) -> f64 {
    if b < 10 { b as f64 } else { 10.0 * 1.1f64.powi(b as i32 - 9) }
}

/// p50, p90 and p99 of a histogram.
pub fn percentiles(counts: &[u64]) -> WaitPercentiles {
    let count: u64 = counts.iter().sum();
    let at = |p: f64| -> Option<f64> {
        let rank = ((p * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        counts
            .iter()
            .position(|&n| {
                seen += n;
                seen >= rank
            })
            .filter(|_| count > 0)
            .map(bucket_top)
    };
    WaitPercentiles { count, p50: at(0.5), p90: at(0.9), p99: at(0.99) }
}

/// A sample with the time it describes (unix seconds).
pub type Point = (u64, MinuteSample);

fn admitted(s: &MinuteSample) -> u64 {
    s.serving.min(s.assigned)
}

/// One row per interval between consecutive points.
pub fn rows(points: &[Point]) -> Vec<ReportMinute> {
    points
        .windows(2)
        .map(|w| {
            let ((t0, a), (t1, b)) = (w[0], w[1]);
            ReportMinute {
                start: t0,
                secs: t1.saturating_sub(t0),
                arrivals: b.assigned.saturating_sub(a.assigned),
                admitted: admitted(&b).saturating_sub(admitted(&a)),
                claimed: b.claimed.saturating_sub(a.claimed),
                completed: b.completed.saturating_sub(a.completed),
                abandoned: b.abandoned.saturating_sub(a.abandoned),
                expired: b.expired.saturating_sub(a.expired),
                waiting: b.waiting,
                active: b.active,
                admission_rate: b.estimate.rate,
            }
        })
        .collect()
}

/// Busiest minutes.
pub fn peaks(rows: &[ReportMinute]) -> Peaks {
    let mut p = Peaks {
        arrivals_per_sec: 0.0,
        arrivals_at: None,
        admitted_per_sec: 0.0,
        admitted_at: None,
        waiting: 0,
        waiting_at: None,
    };
    for r in rows.iter().filter(|r| r.secs > 0) {
        let (a, d) = (r.arrivals as f64 / r.secs as f64, r.admitted as f64 / r.secs as f64);
        if a > p.arrivals_per_sec {
            (p.arrivals_per_sec, p.arrivals_at) = (a, Some(r.start));
        }
        if d > p.admitted_per_sec {
            (p.admitted_per_sec, p.admitted_at) = (d, Some(r.start));
        }
        if r.waiting > p.waiting {
            (p.waiting, p.waiting_at) = (r.waiting, Some(r.start));
        }
    }
    p
}

/// Linear interpolation of `f` between two points at time `t`.
fn lerp(a: &Point, b: &Point, t: f64, f: impl Fn(&MinuteSample) -> u64) -> f64 {
    let (t0, t1) = (a.0 as f64, b.0 as f64);
    let share = if t1 > t0 { ((t - t0) / (t1 - t0)).clamp(0.0, 1.0) } else { 1.0 };
    f(&a.1) as f64 + share * (f(&b.1) as f64 - f(&a.1) as f64)
}

/// When the serving position reached `p`, interpolated; `None` if it has not. A binary
/// search: the serving position never goes back, so the samples are sorted by it (a linear
/// scan made a two-day report, 2,880 samples by 200 visitors per cohort, about 1.7 billion
/// steps).
fn served_at(points: &[Point], p: u64) -> Option<f64> {
    let k = points.partition_point(|(_, s)| s.serving < p);
    if k == points.len() {
        return None;
    }
    if k == 0 {
        return Some(points[0].0 as f64);
    }
    let (a, b) = (&points[k - 1], &points[k]);
    let (s0, s1) = (a.1.serving as f64, b.1.serving as f64);
    let share = if s1 > s0 { (p as f64 - s0) / (s1 - s0) } else { 1.0 };
    Some(a.0 as f64 + share.clamp(0.0, 1.0) * (b.0 as f64 - a.0 as f64))
}

/// Tallies of the ETA check, weighted.
#[derive(Default)]
struct Tally {
    within: f64,
    early: f64,
    late: f64,
    no_band: f64,
}

/// Checks the cohort that joined between `points[i]` and `points[i + 1]`.
fn cohort(points: &[Point], i: usize, t: &mut Tally) {
    let (a, b) = (&points[i], &points[i + 1]);
    let n = b.1.assigned.saturating_sub(a.1.assigned);
    let k = n.min(COHORT_POINTS);
    if k == 0 {
        return;
    }
    let weight = n as f64 / k as f64;
    for j in 0..k {
        let p = a.1.assigned + 1 + j * n / k;
        let offset = (p - a.1.assigned) as f64 - 0.5;
        let joined = a.0 as f64 + (b.0 - a.0) as f64 * offset / n as f64;
        let Some(served) = served_at(points, p) else { continue };
        let serving_then = lerp(a, b, joined, |s| s.serving).floor() as u64;
        let ahead = p.saturating_sub(serving_then);
        let Some(band) = shared::eta::eta(&a.1.estimate, ahead) else {
            t.no_band += weight;
            continue;
        };
        let wait = (served - joined).max(0.0);
        if wait < band.low_secs {
            t.early += weight;
        } else if band.high_secs.is_some_and(|h| wait > h) {
            t.late += weight;
        } else {
            t.within += weight;
        }
    }
}

/// ETA honesty over every cohort (see the module docs).
pub fn honesty(points: &[Point]) -> EtaHonesty {
    let mut t = Tally::default();
    for i in 0..points.len().saturating_sub(1) {
        cohort(points, i, &mut t);
    }
    let counted = t.within + t.early + t.late;
    let share = |x: f64| (counted > 0.0).then(|| x / counted);
    EtaHonesty {
        counted: counted.round() as u64,
        no_band: t.no_band.round() as u64,
        within: share(t.within),
        early: share(t.early),
        late: share(t.late),
    }
}

/// The report of `queue_id` from its stored samples and `now`'s live one.
pub fn build(
    queue_id: &str,
    stored: &[MinuteSample],
    now: u64,
    live: MinuteSample,
    waits: &WaitCounts,
) -> Report {
    let mut points: Vec<Point> = stored.iter().map(|s| (s.minute * 60, *s)).collect();
    if points.last().is_none_or(|(t, _)| *t < now) {
        points.push((now, live));
    }
    let minutes = rows(&points);
    let admitted_now = admitted(&live);
    Report {
        queue_id: queue_id.to_string(),
        generated_at: now,
        totals: ReportTotals {
            arrivals: live.assigned,
            admitted: admitted_now,
            claimed: live.claimed,
            completed: live.completed,
            abandoned: live.abandoned,
            expired: live.expired,
            active: live.active,
            never_claimed: live.unclaimed_expired,
            never_claimed_share: if admitted_now == 0 {
                0.0
            } else {
                live.unclaimed_expired as f64 / admitted_now as f64
            },
            waiting: live.waiting,
        },
        peaks: peaks(&minutes),
        minutes,
        wait_to_served: percentiles(&waits.served),
        wait_to_claim: percentiles(&waits.claimed),
        eta_honesty: honesty(&points),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use shared::eta::RateEstimate;

    #[test]
    fn buckets_are_exact_to_ten_seconds_then_ten_percent_wide() {
        for (secs, bucket) in [(0, 0), (9, 9), (10, 10), (12, 11), (100, 34)] {
            assert_eq!(wait_bucket(secs), bucket, "{secs} s");
        }
        for secs in [0u64, 5, 10, 37, 600, 3600, 86_400] {
            let top = bucket_top(usize::from(wait_bucket(secs)));
            assert!(
                secs as f64 <= top && top <= (secs as f64 * 1.1).max(secs as f64 + 1.0),
                "{secs} -> {top}"
            );
        }
        let mut h = vec![0; WAIT_BUCKETS];
        h[3] = 50;
        h[usize::from(wait_bucket(120))] = 49;
        h[usize::from(wait_bucket(600))] = 1;
        let p = percentiles(&h);
        assert_eq!((p.count, p.p50), (100, Some(3.0)));
        assert!(p.p90.unwrap() >= 120.0 && p.p90.unwrap() < 132.0);
        assert!(p.p99.unwrap() >= 120.0 && p.p99.unwrap() < 132.0, "rank 99 is the 99th visitor");
        assert_eq!(percentiles(&[0; 4]).p50, None);
    }

    fn sample(minute: u64, assigned: u64, serving: u64, rate: f64) -> Point {
        let estimate = RateEstimate { rate, var: 0.0, observed_ms: 600_000 };
        (minute * 60, MinuteSample { minute, assigned, serving, estimate, ..Default::default() })
    }

    #[test]
    fn honesty_counts_cohorts_admitted_within_early_and_late() {
        // 60 wait; 60 more join in minute 0 while 1/s is admitted: each is shown about 61 s
        // ± 10%, and the line moves at exactly that rate: within.
        let steady = [sample(0, 60, 0, 1.0), sample(1, 120, 60, 1.0), sample(2, 120, 120, 1.0)];
        let h = honesty(&steady);
        assert_eq!((h.counted, h.no_band), (60, 0));
        assert!(h.within.unwrap() > 0.95, "{h:?}");
        // The same bands, but the line stops for ten minutes: late.
        let stalled = [
            sample(0, 60, 0, 1.0),
            sample(1, 120, 60, 1.0),
            sample(11, 120, 60, 0.0),
            sample(12, 120, 120, 0.0),
        ];
        let h = honesty(&stalled);
        assert!(h.late.unwrap() > 0.95, "{h:?}");
        // Admitted all at once right after joining: early.
        let burst = [sample(0, 0, 0, 0.1), sample(1, 60, 60, 0.1)];
        assert!(honesty(&burst).early.unwrap() > 0.5, "{:?}", honesty(&burst));
        // No estimate: no band shown; not yet served: not counted.
        let manual = [sample(0, 0, 0, 0.0), sample(1, 10, 5, 0.0)];
        assert_eq!(
            honesty(&manual),
            EtaHonesty { counted: 0, no_band: 5, within: None, early: None, late: None }
        );
    }

    #[test]
    fn a_two_day_report_judges_every_cohort() {
        // 2,880 minutes at 10 arrivals and 10 admissions a second, 600 always waiting: every
        // visitor is shown about 60 s and waits 60 s.
        let points: Vec<Point> =
            (0..2880u64).map(|m| sample(m, 600 + 600 * m, 600 * m, 10.0)).collect();
        let h = honesty(&points);
        assert_eq!(h.counted, 600 * 2878, "every cohort but the last, not yet served");
        assert!(h.within.unwrap() > 0.95, "{h:?}");
        assert_eq!(served_at(&points, 600 * 2880), None);
        assert_eq!(served_at(&points, 600 * 2879), Some(2879.0 * 60.0));
        assert_eq!(served_at(&points, 300), Some(30.0), "interpolated");
    }

    #[test]
    fn rows_are_differences_and_totals_come_from_now() {
        let stored = [sample(10, 0, 0, 0.0).1, sample(11, 30, 10, 0.0).1];
        let live = MinuteSample {
            minute: 11,
            assigned: 40,
            serving: 40,
            unclaimed_expired: 4,
            ..Default::default()
        };
        let r = build(
            "q",
            &stored,
            11 * 60 + 30,
            live,
            &WaitCounts { served: vec![0; WAIT_BUCKETS], claimed: vec![0; WAIT_BUCKETS] },
        );
        let arrivals: Vec<u64> = r.minutes.iter().map(|m| m.arrivals).collect();
        assert_eq!(arrivals, [30, 10]);
        assert_eq!(r.minutes[1].secs, 30);
        assert_eq!(
            (r.totals.arrivals, r.totals.admitted, r.totals.never_claimed_share),
            (40, 40, 0.1)
        );
        assert_eq!((r.peaks.arrivals_per_sec, r.peaks.arrivals_at), (0.5, Some(600)));
        assert_eq!(r.peaks.admitted_per_sec, 1.0, "30 admitted in the last 30 s");
    }
}
