//! What the operator commands print: the flags every one of them takes (where the private
//! API is, `--json`), aligned tables, numbers with separators, rates, durations, times, and
//! the progress bar and sparkline of `watch`.

use serde::Serialize;

use crate::admin::{Admin, AdminArgs};

/// The flags of every operator command.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Print JSON (the API's own answer) instead of text for people.
    #[arg(long)]
    pub json: bool,
}

impl Common {
    /// The private API's client.
    pub fn admin(&self) -> anyhow::Result<Admin> {
        Admin::new(&self.admin)
    }

    /// Prints `value` as JSON with `--json`, else the text `human` makes.
    pub fn print<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            let text = human(value);
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
        Ok(())
    }
}

/// A whole number with thousands separators: `12,345`.
pub fn n(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate per second: one decimal under 10, whole above.
pub fn per_sec(v: f64) -> String {
    if v >= 10.0 { format!("{}/s", n(v.round() as u64)) } else { format!("{:.1}/s", v.max(0.0)) }
}

/// A duration in seconds, as people read it.
pub fn secs(v: f64) -> String {
    match v {
        v if v < 1.0 => "under 1 s".into(),
        v if v < 120.0 => format!("{} s", v.round()),
        v if v < 7200.0 => format!("{} min", (v / 60.0).round()),
        v => format!("{:.1} h", v / 3600.0),
    }
}

/// Unix milliseconds as `2026-12-03 14:05:09Z`.
pub fn utc(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
}

/// Rows under headers, each column as wide as its widest cell, two spaces apart; the last
/// column is not padded. Numbers (cells starting with a digit) are right-aligned.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = width.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            let numeric = c.chars().next().is_some_and(|ch| ch.is_ascii_digit());
            if i == last && !numeric {
                out.push_str(c);
            } else if numeric {
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(pad));
            }
            if i != last {
                out.push_str("  ");
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A bar of `width` cells, `share` (0..=1) of them full.
pub fn bar(share: f64, width: usize) -> String {
    let full = ((share.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(full), "░".repeat(width - full))
}

/// A sparkline of `values`, the largest at the top block.
pub fn sparkline(values: &[f64]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().cloned().fold(0.0, f64::max);
    values
        .iter()
        .map(|v| {
            if max <= 0.0 {
                BLOCKS[0]
            } else {
                BLOCKS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_times_and_shapes() {
        assert_eq!(
            (n(0), n(999), n(1_000), n(1_234_567)),
            ("0".into(), "999".into(), "1,000".into(), "1,234,567".into())
        );
        assert_eq!((per_sec(4.25), per_sec(42.4)), ("4.2/s".to_string(), "42/s".to_string()));
        assert_eq!(
            (secs(0.2), secs(59.6), secs(600.0), secs(9000.0)),
            ("under 1 s".into(), "60 s".into(), "10 min".into(), "2.5 h".into())
        );
        assert_eq!(utc(1_796_306_709_000), "2026-12-03 14:05:09Z");
        assert_eq!(bar(0.5, 10), "█████░░░░░");
        assert_eq!(bar(2.0, 4), "████");
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 4.0]), "▁▃▅█");
        assert_eq!(sparkline(&[0.0, 0.0]), "▁▁");
        let t = table(
            &["QUEUE", "WAITING", "STATE"],
            &[
                vec!["demo".into(), "12".into(), "open".into()],
                vec!["a-longer-one".into(), "1,234".into(), "paused".into()],
            ],
        );
        assert_eq!(
            t,
            "QUEUE         WAITING  STATE\ndemo               12  open\na-longer-one    1,234  paused\n"
        );
    }
}
