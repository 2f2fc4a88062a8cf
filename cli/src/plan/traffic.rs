//! From a profile to the arrivals the simulation needs, second by second: requests per
//! second from the curve, new visitors among them, humans and bots, and the bots' places once
//! proof-of-work has priced them.

use std::path::Path;

use anyhow::{Context as _, bail, ensure};

use super::profile::{Curve, MAX_SECS, Profile};

/// Requests per second of a curve, one value per whole second from the start.
pub fn requests(curve: &Curve) -> anyhow::Result<Vec<f64>> {
    match *curve {
        Curve::Spike { peak_rps, duration_secs } => {
            Ok(piecewise(duration_secs, |t| if t < duration_secs { peak_rps } else { 0.0 }))
        }
        Curve::Ramp { peak_rps, ramp_secs, hold_secs, down_secs } => {
            let top = ramp_secs + hold_secs;
            Ok(piecewise(top + down_secs, |t| {
                if t < ramp_secs {
                    peak_rps * t / ramp_secs
                } else if t < top {
                    peak_rps
                } else {
                    peak_rps * (1.0 - (t - top) / down_secs.max(f64::MIN_POSITIVE)).max(0.0)
                }
            }))
        }
        Curve::Csv { ref path } => read_csv(path),
    }
}

/// Samples `f` at the middle of each second of `[0, secs)`, the last (partial) second
/// weighted by the part of it inside.
fn piecewise(secs: f64, f: impl Fn(f64) -> f64) -> Vec<f64> {
    let n = secs.ceil() as usize;
    (0..n)
        .map(|s| {
            let inside = (secs - s as f64).min(1.0);
            f(s as f64 + inside / 2.0) * inside
        })
        .collect()
}

/// Reads requests per second from a CSV file: one value per line, or `second,value`; an
/// optional header line; blank lines and `#` comments skipped.
fn read_csv(path: &Path) -> anyhow::Result<Vec<f64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let field = line.rsplit(',').next().unwrap_or(line).trim();
        match field.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => out.push(v),
            Ok(_) => bail!("{}:{}: requests per second must be at least 0", path.display(), i + 1),
            Err(_) if out.is_empty() && i == 0 => continue,
            Err(_) => bail!("{}:{}: {field:?} is not a number", path.display(), i + 1),
        }
    }
    ensure!(!out.is_empty(), "{}: no arrivals in the file", path.display());
    ensure!(out.len() as f64 <= MAX_SECS, "{}: more than a week of seconds", path.display());
    Ok(out)
}

/// Who arrives in one second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Second {
    /// Requests the profile states.
    pub requests: f64,
    /// Human new visitors.
    pub humans: f64,
    /// Bots that try for a place.
    pub bots: f64,
    /// Bots that get one: proof-of-work limits how many solutions their cores find.
    pub bot_places: f64,
}

impl Second {
    /// Places handed out: every human and the bots that paid.
    pub fn places(&self) -> f64 {
        self.humans + self.bot_places
    }
}

/// The profile's arrivals, second by second; `bot_cap` is the most places per second the
/// bots' cores can pay for (`None`: no limit).
pub fn arrivals(p: &Profile, requests: &[f64], bot_cap: Option<f64>) -> Vec<Second> {
    let t = &p.traffic;
    requests
        .iter()
        .map(|&r| {
            let new = r * t.new_visitor_share;
            let bots = new * t.bot_share;
            let bot_places = bot_cap.map_or(bots, |cap| bots.min(cap));
            Second { requests: r, humans: new - bots, bots, bot_places }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn curves_sample_the_middle_of_each_second() {
        let spike = requests(&Curve::Spike { peak_rps: 10.0, duration_secs: 2.5 }).unwrap();
        assert_eq!(spike, vec![10.0, 10.0, 5.0]);
        let ramp = Curve::Ramp { peak_rps: 4.0, ramp_secs: 2.0, hold_secs: 1.0, down_secs: 2.0 };
        assert_eq!(requests(&ramp).unwrap(), vec![1.0, 3.0, 4.0, 3.0, 1.0]);
    }

    #[test]
    fn csv_files_take_values_or_pairs_and_refuse_garbage() {
        let dir = std::env::temp_dir().join(format!("anteroom-plan-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.csv");
        std::fs::write(&good, "second,rps\n0,5\n# pause\n\n1,7.5\n").unwrap();
        let curve = Curve::Csv { path: good };
        assert_eq!(requests(&curve).unwrap(), vec![5.0, 7.5]);
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "5\nlots\n").unwrap();
        let err = requests(&Curve::Csv { path: bad }).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.ends_with(":2: \"lots\" is not a number")),
            "{err:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
