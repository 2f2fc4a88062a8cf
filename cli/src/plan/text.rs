//! A plan as text for people: the queue configuration, the line and the waits, the load at
//! the busiest second and the limits, closest first (and the one-line descriptions of the
//! strategy and proof-of-work the HTML report shares).

use std::fmt::Write as _;

use shared::admission::AdmissionPolicy;

use super::recommend::Recommendation;
use super::rehearse::Rehearsal;
use super::report::PlanReport;
use super::units::{bytes, count, pct, secs};

/// The strategy in one line.
pub fn strategy(r: &Recommendation) -> String {
    let stage = r.tightest();
    let under = format!("under \"{}\" at {}/s", stage.name, count(stage.visitors_per_sec));
    match &r.policy {
        AdmissionPolicy::FixedRate { rate_per_sec, max_active, .. } => {
            let cap = max_active.map(|m| format!(", at most {} sessions", count(f64::from(m))));
            format!(
                "fixed rate {} visitors/s{} ({under}), burst 0",
                count(*rate_per_sec),
                cap.unwrap_or_default()
            )
        }
        AdmissionPolicy::Capacity { max_active } => {
            format!(
                "capacity: at most {} sessions at once ({under})",
                count(f64::from(*max_active))
            )
        }
        other => format!("{other:?}"),
    }
}

/// Proof-of-work in one line.
pub fn pow(r: &Recommendation) -> String {
    let p = &r.pow;
    if p.difficulty == 0 {
        return "off".into();
    }
    let cap = p.bot_places_cap.map(|c| format!("; the bots' cores pay for at most {}/s", count(c)));
    let needed = p.needed.map(|(d, secs)| {
        format!("; holding the bots to their share would take difficulty {d}, a {secs:.0} s median solve")
    });
    format!(
        "difficulty {}: a visitor's median solve {:.1} s (p90 {:.1} s), a bot core {:.2} s per place{}{}",
        p.difficulty,
        p.human_median_secs,
        p.human_p90_secs,
        p.bot_core_secs_per_place,
        cap.unwrap_or_default(),
        needed.unwrap_or_default()
    )
}

/// The whole summary.
pub fn summary(r: &PlanReport, rehearsal: Option<&Rehearsal>) -> String {
    let mut s = String::new();
    let rec = &r.recommendation;
    let o = &r.outcome;
    let _ = writeln!(s, "Plan for {}: {}", r.profile.name, r.profile.title);
    let _ = writeln!(s, "\nQueue (POST /api/queue; --apply creates it):\n  {}", rec.queue);
    let _ = writeln!(s, "  admission: {}", strategy(rec));
    let _ = writeln!(
        s,
        "  places expire {} after their turn, sessions (tokens) last {}",
        secs(f64::from(rec.position_expiry_secs)),
        secs(f64::from(rec.token_validity_secs))
    );
    let _ = writeln!(s, "  proof-of-work: {}", pow(rec));
    let _ = writeln!(
        s,
        "\nThe line ({} places, {} of them bots):",
        count(o.places),
        count(o.bot_places)
    );
    let _ = writeln!(
        s,
        "  longest {} positions at {}; empty at {}",
        count(o.line_peak),
        secs(o.line_peak_at_secs as f64),
        o.empty_at_secs.map_or("never within the horizon".into(), |t| secs(t as f64))
    );
    let w = &o.waits;
    let _ = writeln!(
        s,
        "  time to be served: p50 {}, p90 {}, p99 {}, the last {}",
        secs(w.p50),
        secs(w.p90),
        secs(w.p99),
        secs(w.max)
    );
    if let Some(e) = o.eta_at_peak {
        let high = e.high_secs.map_or("open".into(), secs);
        let waited = o
            .back_of_line_waited_secs
            .map_or(String::new(), |w| format!("; that visitor waited {}", secs(w)));
        let _ = writeln!(
            s,
            "  ETA shown at the back of the line at the peak: {} to {} (expected {}){waited}",
            secs(e.low_secs),
            high,
            secs(e.expected_secs)
        );
    }
    let _ = writeln!(
        s,
        "  a page learns of its turn {} after it (median; p90 {})",
        secs(o.learn.p50),
        secs(o.learn.p90)
    );
    loads(&mut s, r);
    if let Some(h) = rehearsal {
        s.push('\n');
        s.push_str(&h.table());
    }
    s
}

fn loads(s: &mut String, r: &PlanReport) {
    let l = &r.loads;
    let e = &l.edge;
    let _ = writeln!(s, "\nLoad over the busiest ten seconds:");
    let _ = writeln!(
        s,
        "  edge: {} req/s at {} (pages {}, challenges {}, enqueues {}, polls {}, claims {}); the profile states {} req/s",
        count(e.total),
        secs(l.edge_peak_at_secs as f64),
        count(e.pages),
        count(e.challenges),
        count(e.enqueues),
        count(e.polls),
        count(e.claims),
        count(l.stated_rps)
    );
    let c = &l.coordinator;
    let _ = writeln!(
        s,
        "  coordinator: {} enqueues/s, {} claims/s, {:.2} cores -> {} processes",
        count(c.enqueues_per_sec),
        count(c.claims_per_sec),
        c.cores,
        c.processes
    );
    let d = &l.redis;
    let _ = writeln!(
        s,
        "  Redis: {} calls/s, {} of its core, {} at most",
        count(d.calls_per_sec),
        pct(d.core_share),
        bytes(d.memory_bytes)
    );
    let y = &l.sync;
    let _ = writeln!(
        s,
        "  sync and KV: {} writes over the sale ({}/day while it changes, {}/day idle), {} KV reads/day per busy isolate",
        count(y.writes_over_sale),
        count(y.writes_per_day_busy),
        count(y.writes_per_day_idle),
        count(y.reads_per_day_per_isolate)
    );
    for g in &l.regions {
        let rtt =
            g.rtt_ms.map_or(String::new(), |ms| format!(", +{ms:.0} ms per enqueue and claim"));
        let _ = writeln!(
            s,
            "  {}: {} edge req/s, {} enqueues/s{rtt}",
            g.name,
            count(g.edge_rps),
            count(g.enqueues_per_sec)
        );
    }
    let _ = writeln!(s, "\nLimits, closest first:");
    for u in &l.limits {
        let _ = writeln!(s, "  {:>5}  {} ({})", pct(u.peak), u.part, u.basis);
    }
    if let Some(first) = l.limits.first() {
        let _ = writeln!(s, "Binds first: {}", first.part);
    }
}
