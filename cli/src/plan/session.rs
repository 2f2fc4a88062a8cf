//! Session lengths as the simulation uses them: the distribution of the profile cut into
//! equally likely points, each no longer than the token's validity (an expired token ends
//! the session).

use super::profile::SessionLength;

/// How many equally likely lengths stand for the distribution: enough for percentiles to
/// the 99th, few enough that scheduling a cohort's session ends stays cheap.
pub const POINTS: usize = 100;

impl SessionLength {
    /// The length at cumulative probability `u` in (0, 1), seconds.
    pub fn quantile(&self, u: f64) -> f64 {
        match *self {
            SessionLength::Fixed { secs } => secs,
            SessionLength::Exponential { mean_secs } => -mean_secs * (1.0 - u).ln(),
            SessionLength::Lognormal { median_secs, p90_secs } => {
                let sigma = (p90_secs / median_secs).ln() / normal_quantile(0.9);
                median_secs * (sigma * normal_quantile(u)).exp()
            }
        }
    }

    /// [`POINTS`] equally likely lengths (the middles of equal slices of probability), each at
    /// most `cap` seconds.
    pub fn points(&self, cap: f64) -> Vec<f64> {
        (0..POINTS).map(|i| self.quantile((i as f64 + 0.5) / POINTS as f64).min(cap)).collect()
    }
}

/// The standard normal distribution's quantile (Acklam's rational approximation, relative
/// error below 1.2e-9), for `p` in (0, 1).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] =
        [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_quantile_matches_known_values() {
        for (p, z) in
            [(0.5, 0.0), (0.9, 1.2815515655), (0.975, 1.9599639845), (0.01, -2.3263478740)]
        {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "{p}: {}", normal_quantile(p));
        }
    }

    #[test]
    fn points_keep_the_median_and_p90_and_respect_the_cap() {
        let s = SessionLength::Lognormal { median_secs: 120.0, p90_secs: 300.0 };
        assert!((s.quantile(0.5) - 120.0).abs() < 1e-6);
        assert!((s.quantile(0.9) - 300.0).abs() < 1e-6);
        let pts = s.points(400.0);
        assert_eq!(pts.len(), POINTS);
        assert!(pts.windows(2).all(|w| w[0] <= w[1]) && pts[POINTS - 1] == 400.0);
        let e = SessionLength::Exponential { mean_secs: 60.0 }.points(f64::MAX);
        let mean = e.iter().sum::<f64>() / POINTS as f64;
        assert!((mean - 60.0).abs() < 3.0, "{mean}");
    }
}
