//! A distribution of durations held as a mixture of uniform intervals: the simulation puts
//! each run of positions served by one tick in as one interval (their arrival times are
//! spread evenly over a second), which keeps percentiles exact without a value per visitor.

use serde::Serialize;

/// A weighted mixture of uniform intervals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spread {
    /// `(weight, low, high)`.
    parts: Vec<(f64, f64, f64)>,
    /// Sum of the weights.
    total: f64,
    /// Sum of weight times the interval's middle.
    moment: f64,
}

/// A distribution's summary, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    /// How many it holds.
    pub count: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// Adds `weight` spread evenly over `[low, high]`.
    pub fn add(&mut self, weight: f64, low: f64, high: f64) {
        if weight <= 0.0 {
            return;
        }
        let (low, high) = (low.min(high), low.max(high));
        self.parts.push((weight, low, high));
        self.total += weight;
        self.moment += weight * (low + high) / 2.0;
    }

    /// Total weight.
    pub fn total(&self) -> f64 {
        self.total
    }

    /// Weighted mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total > 0.0 { self.moment / self.total } else { 0.0 }
    }

    /// Largest value held.
    pub fn max(&self) -> f64 {
        self.parts.iter().map(|p| p.2).fold(0.0, f64::max)
    }

    /// Weight at or below `x`.
    fn cdf(&self, x: f64) -> f64 {
        self.parts
            .iter()
            .map(|&(w, lo, hi)| {
                if x >= hi {
                    w
                } else if x < lo {
                    0.0
                } else {
                    w * (x - lo) / (hi - lo)
                }
            })
            .sum()
    }

    /// The value below which a share `q` of the weight lies (bisection to a millisecond).
    pub fn quantile(&self, q: f64) -> f64 {
        let target = q.clamp(0.0, 1.0) * self.total;
        let (mut lo, mut hi) = (0.0f64.min(self.min()), self.max());
        while hi - lo > 1e-3 {
            let mid = (lo + hi) / 2.0;
            if self.cdf(mid) >= target { hi = mid } else { lo = mid }
        }
        hi
    }

    fn min(&self) -> f64 {
        self.parts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min)
    }

    /// Count, mean and the usual percentiles.
    pub fn summary(&self) -> Summary {
        Summary {
            count: self.total,
            mean: self.mean(),
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
            max: self.max(),
        }
    }

    /// Weight per bin of `width` from 0, `bins` bins (the last takes everything beyond).
    pub fn histogram(&self, width: f64, bins: usize) -> Vec<f64> {
        let mut out = vec![0.0; bins.max(1)];
        let last = out.len() - 1;
        for &(w, lo, hi) in &self.parts {
            let first = ((lo / width) as usize).min(last);
            let end = ((hi / width) as usize).min(last);
            for (b, slot) in out.iter_mut().enumerate().take(end + 1).skip(first) {
                let (a, z) = (
                    b as f64 * width,
                    if b == last { f64::INFINITY } else { (b + 1) as f64 * width },
                );
                let inside =
                    if hi > lo { (hi.min(z) - lo.max(a)).max(0.0) / (hi - lo) } else { 1.0 };
                *slot += w * inside;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uniform_interval_has_its_textbook_percentiles() {
        let mut s = Spread::default();
        s.add(100.0, 0.0, 10.0);
        let m = s.summary();
        assert!((m.p50 - 5.0).abs() < 2e-3 && (m.p90 - 9.0).abs() < 2e-3, "{m:?}");
        assert!((m.mean - 5.0).abs() < 1e-9 && m.max == 10.0 && m.count == 100.0);
        let h = s.histogram(2.5, 4);
        assert!(h.iter().all(|&b| (b - 25.0).abs() < 1e-9), "{h:?}");
    }

    #[test]
    fn points_and_intervals_mix() {
        let mut s = Spread::default();
        s.add(1.0, 2.0, 2.0);
        s.add(3.0, 4.0, 8.0);
        assert!((s.quantile(0.25) - 2.0).abs() < 2e-3, "{}", s.quantile(0.25));
        assert!((s.quantile(0.625) - 6.0).abs() < 2e-3);
        assert!((s.mean() - (2.0 + 18.0) / 4.0).abs() < 1e-9);
    }
}
