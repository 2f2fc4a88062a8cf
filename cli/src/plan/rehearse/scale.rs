//! A profile made small enough for one machine: the crowd scaled by `scale` (rates,
//! concurrencies, the bots' cores, so the line too) and time run `speedup` times faster
//! (durations and sessions divided, rates multiplied). Waits divide by `speedup`; the product's
//! own settings (tick, poll intervals, position expiry) stay as they are, and the plan of the
//! scaled profile is the prediction the rehearsal is compared with.

use super::super::profile::{Profile, SessionLength};

/// `requests` (per second) with the crowd scaled and time compressed: each new second holds
/// the requests of `speedup` old seconds, times `scale`.
pub fn requests(requests: &[f64], scale: f64, speedup: f64) -> Vec<f64> {
    let old_len = requests.len() as f64;
    let n = (old_len / speedup).ceil().max(1.0) as usize;
    // Integral of the per-second curve from 0 to x.
    let integral = |x: f64| {
        let x = x.clamp(0.0, old_len);
        let whole = x.floor() as usize;
        let head: f64 = requests[..whole].iter().sum();
        head + requests.get(whole).map_or(0.0, |r| r * (x - whole as f64))
    };
    (0..n)
        .map(|t| scale * (integral((t + 1) as f64 * speedup) - integral(t as f64 * speedup)))
        .collect()
}

/// The profile with its stages, sessions and bots scaled alike.
pub fn profile(p: &Profile, scale: f64, speedup: f64, name: &str) -> Profile {
    let mut s = p.clone();
    s.name = name.to_string();
    s.visitors.session = match p.visitors.session {
        SessionLength::Fixed { secs } => SessionLength::Fixed { secs: secs / speedup },
        SessionLength::Exponential { mean_secs } => {
            SessionLength::Exponential { mean_secs: mean_secs / speedup }
        }
        SessionLength::Lognormal { median_secs, p90_secs } => SessionLength::Lognormal {
            median_secs: median_secs / speedup,
            p90_secs: p90_secs / speedup,
        },
    };
    for st in &mut s.downstream {
        st.rate_per_sec = st.rate_per_sec.map(|r| r * scale * speedup);
        st.concurrency = st.concurrency.map(|c| c * scale);
        st.hold_secs = st.hold_secs.map(|h| h / speedup);
    }
    s.pow.bot_cores = p.pow.bot_cores.map(|c| c * scale * speedup);
    s.queue.paths.clear();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_keeps_the_crowd_times_the_scale() {
        let r = vec![10.0; 900];
        let s = requests(&r, 0.5, 120.0);
        assert_eq!(s.len(), 8);
        assert!(s[..7].iter().all(|&x| (x - 600.0).abs() < 1e-9), "{s:?}");
        assert!((s[7] - 300.0).abs() < 1e-9);
        assert!((s.iter().sum::<f64>() - 0.5 * 9000.0).abs() < 1e-6);
        let slow = requests(&[4.0, 8.0], 1.0, 0.5);
        assert_eq!(slow, vec![2.0, 2.0, 4.0, 4.0]);
    }
}
