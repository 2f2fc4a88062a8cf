//! `anteroom watch QUEUE`: a live view in the terminal, redrawn every second from
//! `GET /api/queue/{queue_id}/live`: the line, the rate and the ETA of its back, a progress
//! bar of the places served, a sparkline of arrivals per minute, edge freshness, origin health
//! and warnings. On a terminal it redraws in place; piped, it prints one frame per refresh;
//! with `--json`, one `QueueLive` per line. Ctrl-C, or `--count`, stops it. A coordinator
//! that does not answer is shown and retried; a queue that does not exist ends it (exit 4).

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use shared::wire::QueueLive;

use crate::failure::Usage;
use crate::out::{Common, bar, n, per_sec, secs, sparkline, utc};

/// `anteroom watch`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  anteroom watch concert\n  anteroom watch concert --interval 5\n  anteroom watch concert --json --count 60 > minute.jsonl"
)]
pub struct Args {
    /// The queue's slug.
    pub queue: String,
    /// Seconds between refreshes (at least 0.5).
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Stop after this many refreshes (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
    #[command(flatten)]
    pub common: Common,
}

/// Width of the bar and the sparkline, cells.
const WIDTH: usize = 30;

/// One frame of the view.
pub fn frame(l: &QueueLive, now_ms: u64) -> String {
    let s = &l.summary;
    let what =
        shared::presentation::what(l.queue.logo_text.as_deref(), l.queue.display_name.as_deref());
    let mut out = format!(
        "anteroom watch · {}{}    {}\n",
        s.queue_id,
        if what.is_empty() { String::new() } else { format!(" — {what}") },
        utc(now_ms)
    );
    let state = format!("{:?}", s.state).to_lowercase();
    out.push_str(&format!("state     {state} ({})\n", s.strategy.replace('_', " ")));
    out.push_str(&format!(
        "waiting   {:<12} ETA back of line {}\n",
        n(s.waiting),
        s.eta_back.as_ref().map_or_else(|| "–".into(), |e| secs(e.expected_secs))
    ));
    let target = s.target_rate.map_or_else(String::new, |t| format!(" (target {})", per_sec(t)));
    let active =
        s.max_active.map_or_else(|| n(s.active), |m| format!("{} / {}", n(s.active), n(m)));
    out.push_str(&format!(
        "rate      {:<12} active {active}\n",
        format!("{}{target}", per_sec(s.admission_rate))
    ));
    let share = if s.assigned == 0 {
        0.0
    } else {
        s.serving_pos.min(s.assigned) as f64 / s.assigned as f64
    };
    out.push_str(&format!(
        "served    {} {:>3.0}%  {} of {} handed out\n",
        bar(share, WIDTH),
        share * 100.0,
        n(s.serving_pos.min(s.assigned)),
        n(s.assigned)
    ));
    let per_min: Vec<f64> = l
        .minutes
        .iter()
        .filter(|m| m.secs >= 10)
        .map(|m| m.arrivals as f64 * 60.0 / m.secs as f64)
        .collect();
    let recent = &per_min[per_min.len().saturating_sub(WIDTH)..];
    let peak = recent.iter().cloned().fold(0.0, f64::max);
    out.push_str(&format!(
        "arrivals  {:<width$} {}/min now, peak {}/min (per minute, last {} min)\n",
        sparkline(recent),
        n(s.arrivals_per_min.round() as u64),
        n(peak.round() as u64),
        recent.len(),
        width = WIDTH
    ));
    let edge = s
        .published_age_secs
        .map_or_else(|| "not published".into(), |a| format!("published {} ago", secs(a)));
    let origin = s.origin.as_ref().map_or_else(
        || "no health reports".into(),
        |o| format!("{:.0} ms, {:.1}% errors", o.latency_ms, o.error_rate * 100.0),
    );
    out.push_str(&format!("edge      {edge} · origin {origin}\n"));
    if s.warnings.is_empty() {
        out.push_str("warnings  none\n");
    }
    for w in &s.warnings {
        out.push_str(&format!("warning   {}\n", w.message));
    }
    out
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Watches until Ctrl-C or `--count` refreshes.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if !(args.interval >= 0.5 && args.interval.is_finite()) {
        return Err(Usage("--interval must be at least 0.5 seconds".into()).into());
    }
    let admin = args.common.admin()?;
    let tty = std::io::stdout().is_terminal() && !args.common.json;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(args.interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shown = 0u64;
    let mut stdout = std::io::stdout();
    if tty {
        // Hide the cursor while redrawing.
        write!(stdout, "\x1b[?25l")?;
    }
    let result = async {
        while args.count.is_none_or(|c| shown < c) {
            tokio::select! {
                _ = tick.tick() => {}
                _ = tokio::signal::ctrl_c() => break,
            }
            let text = match admin.live(&args.queue).await {
                Ok(l) if args.common.json => serde_json::to_string(&l)? + "\n",
                Ok(l) => frame(&l, now_ms()),
                Err(e) if crate::exit::code(&e) == crate::exit::UNAVAILABLE => {
                    if args.common.json {
                        shown += 1;
                        continue;
                    }
                    format!(
                        "anteroom watch · {}    {}\nnot answering: {e:#}\n",
                        args.queue,
                        utc(now_ms())
                    )
                }
                Err(e) => return Err(e),
            };
            if tty {
                write!(stdout, "\x1b[H\x1b[2J{text}")?;
            } else if args.common.json {
                write!(stdout, "{text}")?;
            } else {
                writeln!(stdout, "{text}")?;
            }
            stdout.flush()?;
            shown += 1;
        }
        anyhow::Ok(())
    }
    .await;
    if tty {
        write!(stdout, "\x1b[?25h")?;
        stdout.flush()?;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::wire::{QueueConfig, QueueState, QueueSummary, ReportMinute, Warning};

    #[test]
    fn a_frame_says_the_numbers_the_bar_and_the_sparkline() {
        let queue = QueueConfig {
            display_name: Some("The Night Orchestra".into()),
            logo_text: Some("Riverside Tickets".into()),
            ..QueueConfig::with_defaults("demo")
        };
        let summary = QueueSummary {
            id: 7,
            queue_id: "demo".into(),
            display_name: queue.display_name.clone(),
            state: QueueState::Open,
            strategy: "fixed_rate".into(),
            serving_pos: 250,
            assigned: 1_000,
            waiting: 740,
            active: 12,
            max_active: Some(50),
            admission_rate: 4.9,
            target_rate: Some(5.0),
            arrivals_per_min: 310.0,
            eta_back: Some(shared::eta::EtaBand {
                low_secs: 100.0,
                expected_secs: 150.0,
                high_secs: Some(200.0),
            }),
            origin: None,
            published_age_secs: Some(1.0),
            serving_moved_age_secs: 0,
            warnings: vec![Warning {
                code: "origin_silent".into(),
                message: "no health report".into(),
            }],
        };
        let minute = |arrivals| ReportMinute {
            start: 0,
            secs: 60,
            arrivals,
            admitted: 0,
            claimed: 0,
            completed: 0,
            abandoned: 0,
            expired: 0,
            waiting: 0,
            active: 0,
            admission_rate: 0.0,
        };
        let l = QueueLive { queue, summary, minutes: vec![minute(0), minute(100), minute(300)] };
        let f = frame(&l, 1_796_306_709_000);
        let lines: Vec<&str> = f.lines().collect();
        assert_eq!(
            lines[0],
            "anteroom watch · demo — Riverside Tickets: The Night Orchestra    2026-12-03 14:05:09Z"
        );
        assert_eq!(lines[1], "state     open (fixed rate)");
        assert_eq!(lines[2], "waiting   740          ETA back of line 3 min");
        assert_eq!(lines[3], "rate      4.9/s (target 5.0/s) active 12 / 50");
        assert_eq!(
            lines[4],
            format!("served    {}  25%  250 of 1,000 handed out", "█".repeat(8) + &"░".repeat(22))
        );
        assert!(lines[5].starts_with("arrivals  ▁▃█ "), "{}", lines[5]);
        assert!(
            lines[5].ends_with("310/min now, peak 300/min (per minute, last 3 min)"),
            "{}",
            lines[5]
        );
        assert_eq!(lines[6], "edge      published 1 s ago · origin no health reports");
        assert_eq!(lines[7], "warning   no health report");
    }
}
