//! Estimated wait: a running estimate of a queue's admission rate and its spread, the ETA
//! band computed from it, and when a band is too wide to show as a range.
//!
//! The coordinator feeds [`RateEstimate::update`] with each tick's admissions and publishes
//! the estimate (status responses, the state synced to the edges); the edge and the page
//! call [`eta`] with a visitor's distance to the serving position, without another request.
//! The method and its honesty measurement are in `docs/admission.md`.

use serde::{Deserialize, Serialize};

/// Time constant of the moving averages, seconds: long enough to average out a health
/// controller's sawtooth, short enough to follow a pause or a change of strategy.
pub const TAU_SECS: f64 = 30.0;
/// Observation time before any ETA is given, seconds.
pub const MIN_OBSERVED_SECS: f64 = 5.0;
/// Width of the band in standard deviations of the admission count.
pub const Z: f64 = 2.0;
/// How far the rate may drift during a wait without breaking the band, as a share.
pub const DRIFT: f64 = 0.10;

/// Running estimate of a queue's admission rate; stored with the queue and synced to the
/// edges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateEstimate {
    /// Exponentially weighted mean of admissions per second, $\hat\mu$.
    pub rate: f64,
    /// Exponentially weighted variance of the admissions in one second, $\hat\sigma^2$:
    /// the spread of the count, which sets the width of the band.
    pub var: f64,
    /// Time observed so far, milliseconds (saturating): a young estimate is less certain.
    pub observed_ms: u64,
}

/// A wait estimate, seconds from now.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EtaBand {
    /// Earliest likely admission.
    pub low_secs: f64,
    /// Admission if the rate stays at its estimate.
    pub expected_secs: f64,
    /// Latest likely admission; `None` when the rate is too uncertain to bound it.
    pub high_secs: Option<f64>,
}

impl RateEstimate {
    /// Accounts for one tick: `admitted` visitors in `dt_ms` milliseconds.
    ///
    /// The weight of the new sample is $w = \max(1 - e^{-\Delta t/\tau},\ \Delta t / (T +
    /// \Delta t))$ where $T$ is the time observed so far: a plain average while young, an
    /// exponential average after.
    pub fn update(&mut self, admitted: u64, dt_ms: u64) {
        if dt_ms == 0 {
            return;
        }
        let dt = dt_ms as f64 / 1000.0;
        let observed = self.observed_ms as f64 / 1000.0;
        let x = admitted as f64 / dt;
        let w = (1.0 - (-dt / TAU_SECS).exp()).max(dt / (observed + dt));
        let d = x - self.rate;
        self.rate += w * d;
        // A sample over `dt` seconds has variance σ²/dt; `d² · dt` estimates σ².
        self.var = (1.0 - w) * (self.var + w * d * d * dt);
        if !self.rate.is_finite() || !self.var.is_finite() {
            *self = RateEstimate::default();
            return;
        }
        self.observed_ms = self.observed_ms.saturating_add(dt_ms);
    }
}

/// The ETA band of a visitor with `ahead` positions between the serving position and
/// theirs; `None` before the estimate has [`MIN_OBSERVED_SECS`] of data or while nobody is
/// being admitted.
pub fn eta(est: &RateEstimate, ahead: u64) -> Option<EtaBand> {
    if ahead == 0 {
        // Served: no wait, whatever the estimate.
        return Some(EtaBand { low_secs: 0.0, expected_secs: 0.0, high_secs: Some(0.0) });
    }
    let observed = est.observed_ms as f64 / 1000.0;
    if observed < MIN_OBSERVED_SECS || est.rate.is_nan() || est.rate <= 1e-9 {
        return None;
    }
    let n = ahead as f64;
    let mu = est.rate;
    let sd = est.var.max(0.0).sqrt();
    // Standard error of the mean rate, from the data the average rests on.
    let se = (est.var.max(0.0) / observed.min(2.0 * TAU_SECS)).sqrt();
    let fast = (mu + Z * se) * (1.0 + DRIFT);
    let slow = (mu - Z * se) * (1.0 - DRIFT);
    // The count admitted by time T is about μT ± Zσ√T; solve for the T at which it reaches n.
    let low = {
        let u = (-Z * sd + (Z * Z * sd * sd + 4.0 * fast * n).sqrt()) / (2.0 * fast);
        u * u
    };
    let high = (slow > 0.0).then(|| {
        let u = (Z * sd + (Z * Z * sd * sd + 4.0 * slow * n).sqrt()) / (2.0 * slow);
        u * u
    });
    Some(EtaBand { low_secs: low, expected_secs: n / mu, high_secs: high })
}

/// A band whose high bound is more than this many times the expected wait says little
/// ("1 s – 6693 min" was seen with bursty admissions): pages show "about <expected>" instead.
pub const WIDE_BAND: f64 = 3.0;

/// Whether `band` is too wide to be worth showing as a range (see [`WIDE_BAND`]).
pub fn too_wide(band: &EtaBand) -> bool {
    band.high_secs.is_none_or(|h| h > WIDE_BAND * band.expected_secs.max(1.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::admission::HealthPolicy;
    use crate::admission::sim::{KneeOrigin, knee_run};
    use proptest::prelude::*;

    /// splitmix64: a tiny deterministic generator for the simulations.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in [0, 1).
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Poisson by Knuth's method (fine for the small means used here).
        fn poisson(&mut self, mean: f64) -> u64 {
            let limit = (-mean).exp();
            let mut k = 0;
            let mut p = self.unit();
            while p > limit {
                k += 1;
                p *= self.unit();
            }
            k
        }
    }

    #[test]
    fn splitmix_matches_its_reference_output() {
        // First outputs for seed 0 (reference implementation by Vigna).
        let mut g = SplitMix(0);
        assert_eq!(g.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next(), 0x6E78_9E6A_A1B9_65F4);
    }

    fn steady(rate: u64, secs: u64) -> RateEstimate {
        let mut est = RateEstimate::default();
        for _ in 0..secs {
            est.update(rate, 1000);
        }
        est
    }

    #[test]
    fn a_steady_rate_is_estimated_exactly_with_no_spread() {
        let est = steady(20, 100);
        assert!((est.rate - 20.0).abs() < 1e-9);
        assert!(est.var.abs() < 1e-9);
        assert_eq!(est.observed_ms, 100_000);
        let band = eta(&est, 200).unwrap();
        assert!((band.expected_secs - 10.0).abs() < 1e-9);
        // Only the drift margin remains: 200 / (20 · 1.1) and 200 / (20 · 0.9).
        assert!((band.low_secs - 200.0 / 22.0).abs() < 1e-9, "{band:?}");
        assert!((band.high_secs.unwrap() - 200.0 / 18.0).abs() < 1e-9, "{band:?}");
    }

    #[test]
    fn half_a_visitor_per_second() {
        let mut est = RateEstimate::default();
        for i in 0..120 {
            est.update(i % 2, 1000);
        }
        assert!((est.rate - 0.5).abs() < 0.05, "{est:?}");
        // Each second's count is 0 or 1: variance 0.25.
        assert!((est.var - 0.25).abs() < 0.05, "{est:?}");
        let band = eta(&est, 10).unwrap();
        assert!(band.low_secs < 20.0 && band.high_secs.unwrap() > 20.0, "{band:?}");
    }

    #[test]
    fn the_estimate_follows_a_change_within_a_few_time_constants() {
        let mut est = steady(100, 200);
        for _ in 0..(3 * TAU_SECS as u64) {
            est.update(10, 1000);
        }
        assert!((est.rate - 10.0).abs() < 0.05 * 90.0, "{est:?}");
        let mut paused = est;
        for _ in 0..300 {
            paused.update(0, 1000);
        }
        assert!(paused.rate < 0.01, "{paused:?}");
    }

    #[test]
    fn uneven_ticks_give_the_same_estimate() {
        let a = steady(10, 60);
        let mut b = RateEstimate::default();
        for _ in 0..30 {
            b.update(5, 500);
            b.update(15, 1500);
        }
        assert!((a.rate - b.rate).abs() < 0.5, "{a:?} {b:?}");
    }

    #[test]
    fn no_eta_while_young_or_stopped() {
        assert_eq!(eta(&RateEstimate::default(), 10), None);
        assert_eq!(eta(&steady(10, 4), 10), None);
        assert!(eta(&steady(10, 5), 10).is_some());
        assert_eq!(eta(&steady(0, 100), 10), None);
        let zero = eta(&steady(10, 60), 0).unwrap();
        assert_eq!((zero.low_secs, zero.expected_secs, zero.high_secs), (0.0, 0.0, Some(0.0)));
        // A rate too uncertain to bound from below leaves the band open.
        let noisy = RateEstimate { rate: 1.0, var: 100.0, observed_ms: 60_000 };
        assert_eq!(eta(&noisy, 10).unwrap().high_secs, None);
    }

    #[test]
    fn the_band_orders_its_bounds_and_widens_with_spread() {
        for (rate, var, ahead) in
            [(10.0, 0.0, 100), (10.0, 10.0, 100), (10.0, 10.0, 5), (200.0, 900.0, 10_000)]
        {
            let est = RateEstimate { rate, var, observed_ms: 60_000 };
            let b = eta(&est, ahead).unwrap();
            assert!(
                b.low_secs <= b.expected_secs && b.expected_secs <= b.high_secs.unwrap(),
                "{b:?}"
            );
        }
        let calm = eta(&RateEstimate { rate: 10.0, var: 1.0, observed_ms: 60_000 }, 100).unwrap();
        let noisy = eta(&RateEstimate { rate: 10.0, var: 25.0, observed_ms: 60_000 }, 100).unwrap();
        assert!(noisy.low_secs < calm.low_secs && noisy.high_secs > calm.high_secs);
    }

    fn band(low: f64, expected: f64, high: Option<f64>) -> EtaBand {
        EtaBand { low_secs: low, expected_secs: expected, high_secs: high }
    }

    #[test]
    fn a_served_visitor_waits_nothing_and_wide_bands_are_flagged() {
        let est = RateEstimate { rate: 0.5, var: 0.5, observed_ms: 60_000 };
        assert_eq!(
            eta(&est, 0),
            Some(EtaBand { low_secs: 0.0, expected_secs: 0.0, high_secs: Some(0.0) })
        );
        assert_eq!(eta(&RateEstimate::default(), 0).map(|b| b.expected_secs), Some(0.0));
        assert!(!too_wide(&band(10.0, 20.0, Some(40.0))));
        assert!(too_wide(&band(10.0, 20.0, Some(61.0))));
        assert!(too_wide(&band(10.0, 20.0, None)));
        assert!(!too_wide(&band(0.0, 0.0, Some(0.0))));
    }

    proptest! {
        #[test]
        fn estimates_stay_finite_and_non_negative(
            ticks in proptest::collection::vec((0u64..100_000, 0u64..10_000), 1..100),
            ahead in 0u64..1_000_000,
        ) {
            let mut est = RateEstimate::default();
            for (admitted, dt) in ticks {
                est.update(admitted, dt);
                prop_assert!(est.rate.is_finite() && est.rate >= 0.0);
                prop_assert!(est.var.is_finite() && est.var >= 0.0);
            }
            if let Some(b) = eta(&est, ahead) {
                prop_assert!(b.low_secs >= 0.0 && b.low_secs <= b.expected_secs + 1e-9);
                prop_assert!(b.high_secs.is_none_or(|h| h + 1e-9 >= b.expected_secs));
            }
        }
    }

    // ---- honesty -----------------------------------------------------------------------

    /// Outcome of an honesty run.
    #[derive(Debug)]
    struct Honesty {
        visitors: usize,
        in_band: usize,
        too_early: usize,
        too_late: usize,
        /// Mean of (high − low) / expected over the first bands shown.
        mean_width: f64,
    }

    impl Honesty {
        fn share(&self) -> f64 {
            self.in_band as f64 / self.visitors as f64
        }
    }

    /// Replays a queue second by second: `admitted[t]` visitors are admitted at second
    /// `t`, `arrivals[t]` join at second `t` behind `initial` visitors already waiting.
    /// Each visitor's page polls every second; the first band it gets is compared with the
    /// time it was admitted.
    fn honesty(admitted: &[u64], arrivals: &[u64], initial: u64) -> Honesty {
        struct Visitor {
            pos: u64,
            shown: Option<(u64, EtaBand)>,
        }
        let mut est = RateEstimate::default();
        let mut serving = 0u64;
        let mut assigned = initial;
        let mut waiting: std::collections::VecDeque<Visitor> =
            (1..=initial).map(|pos| Visitor { pos, shown: None }).collect();
        let mut out =
            Honesty { visitors: 0, in_band: 0, too_early: 0, too_late: 0, mean_width: 0.0 };
        for (t, &a) in admitted.iter().enumerate() {
            let t = t as u64;
            // The tick: serving advances (never past the line) and the estimate learns.
            let a = a.min(assigned - serving);
            serving += a;
            est.update(a, 1000);
            while waiting.front().is_some_and(|v| v.pos <= serving) {
                let Some(v) = waiting.pop_front() else { break };
                let Some((at, band)) = v.shown else { continue };
                let wait = (t - at) as f64;
                out.visitors += 1;
                out.mean_width += (band.high_secs.unwrap_or(f64::INFINITY) - band.low_secs)
                    / band.expected_secs.max(1.0);
                if wait < band.low_secs {
                    out.too_early += 1;
                } else if band.high_secs.is_some_and(|h| wait > h) {
                    out.too_late += 1;
                } else {
                    out.in_band += 1;
                }
            }
            for _ in 0..arrivals.get(t as usize).copied().unwrap_or(0) {
                assigned += 1;
                waiting.push_back(Visitor { pos: assigned, shown: None });
            }
            // Pages poll: a visitor without a band gets their first one if there is one.
            for v in waiting.iter_mut().filter(|v| v.shown.is_none()) {
                if let Some(b) = eta(&est, v.pos - serving) {
                    v.shown = Some((t, b));
                }
            }
        }
        out.mean_width /= out.visitors.max(1) as f64;
        assert!(waiting.is_empty(), "{} visitors never admitted", waiting.len());
        out
    }

    fn report(name: &str, h: &Honesty) {
        println!(
            "{name}: {} of {} visitors ({:.1}%) admitted within the first band shown; {} early, {} late; mean band width {:.0}% of the expected wait",
            h.in_band,
            h.visitors,
            100.0 * h.share(),
            h.too_early,
            h.too_late,
            100.0 * h.mean_width
        );
    }

    #[test]
    fn honesty_with_a_noisy_drifting_rate() {
        let mut g = SplitMix(0x5eed);
        let secs = 1500;
        // Poisson admissions around 20/s, drifting ±15% over 15 minutes, with a 3-second
        // stall now and then (2% of seconds).
        let mut stall = 0;
        let admitted: Vec<u64> = (0..secs)
            .map(|t| {
                if stall == 0 && g.unit() < 0.02 {
                    stall = 3;
                }
                if stall > 0 {
                    stall -= 1;
                    return 0;
                }
                let mean =
                    20.0 * (1.0 + 0.15 * (2.0 * std::f64::consts::PI * t as f64 / 900.0).sin());
                g.poisson(mean)
            })
            .collect();
        let arrivals: Vec<u64> = (0..600).map(|_| g.poisson(15.0)).collect();
        let h = honesty(&admitted, &arrivals, 4000);
        report("noisy drifting rate", &h);
        assert!(h.visitors > 10_000, "{h:?}");
        assert!(h.share() >= 0.90, "{h:?}");
    }

    #[test]
    fn honesty_behind_the_health_law() {
        let mut g = SplitMix(42);
        // The origin's knee wanders around 100/s (a smoothed random walk, ±20%).
        let mut level = 0.0f64;
        let knees: Vec<f64> = (0..=1200)
            .map(|_| {
                level = (0.98 * level + 0.04 * (g.unit() - 0.5)).clamp(-0.2, 0.2);
                100.0 * (1.0 + level)
            })
            .collect();
        let policy = HealthPolicy { initial_rate: Some(20.0), ..HealthPolicy::new(1000.0, 100.0) };
        let origin = KneeOrigin { knee: 100.0, base_latency_ms: 50.0, steepness: 50.0 };
        let trace = knee_run(&policy, origin, &|t| knees[t as usize], 1200, 60);
        // The replay starts after the law's first climb from its initial rate: during that
        // climb the rate only rises, and visitors are admitted earlier than any estimate of
        // the past predicts (measured separately below).
        let admitted: Vec<u64> = trace.iter().skip(60).map(|p| p.admitted).collect();
        let arrivals: Vec<u64> = (0..600).map(|_| g.poisson(80.0 / 4.0) * 4).collect();
        let h = honesty(&admitted, &arrivals, 20_000);
        report("health law against a wandering knee", &h);
        assert!(h.visitors > 50_000, "{h:?}");
        assert!(h.share() >= 0.90, "{h:?}");
        // The same line from the very start, climb included: reported, not a promise.
        let all: Vec<u64> = trace.iter().map(|p| p.admitted).collect();
        let ramp = honesty(&all, &arrivals, 20_000);
        report("the same, bands shown during the first climb included", &ramp);
        assert_eq!(ramp.too_late, 0, "the climb only makes visitors early: {ramp:?}");
    }
}
