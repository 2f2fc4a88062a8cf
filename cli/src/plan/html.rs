//! A plan as one self-contained HTML page: inline CSS and SVG charts, no script and no
//! external asset, so it can be mailed, committed and opened offline.

use std::fmt::Write as _;

use super::recommend::Bound;
use super::report::PlanReport;
use super::svg::{Line, esc, histogram, lines};
use super::text::{pow, strategy};
use super::units::{bytes, count, pct, secs};

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;max-width:820px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em}table{border-collapse:collapse;margin:.5em 0}\
td,th{border-bottom:1px solid #ddd;padding:.25em .7em;text-align:left;vertical-align:top}td.n{text-align:right}\
pre{background:#f5f5f5;padding:.8em;overflow-x:auto;font-size:13px}svg{width:100%;height:auto;margin:.6em 0}\
svg text{font:12px system-ui,sans-serif;fill:#333}svg .title{font-weight:600;font-size:14px}.note{color:#555}";

/// The whole page.
pub fn page(r: &PlanReport) -> String {
    let title = format!("Plan for {}", r.profile.name);
    let mut s = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n<p>{d}</p>\n",
        t = esc(&title),
        d = esc(&r.profile.title)
    );
    s.push_str(&config(r));
    s.push_str(&outcome(r));
    s.push_str(&charts(r));
    s.push_str(&loads(r));
    s.push_str(&inputs(r));
    s + "</body></html>\n"
}

fn row(s: &mut String, k: &str, v: &str) {
    let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
}

fn config(r: &PlanReport) -> String {
    let rec = &r.recommendation;
    let mut s = String::from("<h2>Queue configuration</h2><table>");
    row(&mut s, "admission", &strategy(rec));
    row(&mut s, "position expiry", &secs(f64::from(rec.position_expiry_secs)));
    row(&mut s, "token validity", &secs(f64::from(rec.token_validity_secs)));
    row(&mut s, "proof-of-work", &pow(rec));
    s.push_str("</table><p>The body of <code>POST /api/queue</code> (<code>anteroom plan --apply</code> creates it):</p><pre>");
    s.push_str(&esc(&serde_json::to_string_pretty(&rec.queue).unwrap_or_default()));
    s.push_str("</pre>\n<table><tr><th>downstream stage</th><th>limit in visitors/s</th><th>bound by</th></tr>");
    for (i, st) in rec.stages.iter().enumerate() {
        let mark = if i == rec.binding { " (tightest)" } else { "" };
        let _ = write!(
            s,
            "<tr><td>{}{mark}</td><td class=n>{}</td><td>{}</td></tr>",
            esc(&st.name),
            count(st.visitors_per_sec),
            match st.bound {
                Bound::Rate => "its rate",
                Bound::HeldConcurrency => "its concurrency over the time a unit is held",
                Bound::SessionCap => "its concurrency held for whole sessions (a session cap)",
            }
        );
    }
    s + "</table>\n"
}

fn outcome(r: &PlanReport) -> String {
    let o = &r.outcome;
    let w = &o.waits;
    let mut s = String::from("<h2>The line</h2><table>");
    row(
        &mut s,
        "places handed out",
        &format!(
            "{} ({} held by bots, {} bots priced out)",
            count(o.places),
            count(o.bot_places),
            count(o.bots_priced_out)
        ),
    );
    row(
        &mut s,
        "longest line",
        &format!("{} positions at {}", count(o.line_peak), secs(o.line_peak_at_secs as f64)),
    );
    row(
        &mut s,
        "line empty at",
        &o.empty_at_secs.map_or("not within the horizon".into(), |t| secs(t as f64)),
    );
    row(
        &mut s,
        "time to be served",
        &format!(
            "p50 {}, p90 {}, p99 {}, the last {}",
            secs(w.p50),
            secs(w.p90),
            secs(w.p99),
            secs(w.max)
        ),
    );
    if let Some(e) = o.eta_at_peak {
        let waited = o
            .back_of_line_waited_secs
            .map_or(String::new(), |w| format!("; it waited {}", secs(w)));
        row(
            &mut s,
            "ETA shown at the back at the peak",
            &format!(
                "{} to {} (expected {}){waited}",
                secs(e.low_secs),
                e.high_secs.map_or("open".into(), secs),
                secs(e.expected_secs)
            ),
        );
    }
    row(
        &mut s,
        "a page learns of its turn",
        &format!("median {} after it, p90 {}", secs(o.learn.p50), secs(o.learn.p90)),
    );
    row(
        &mut s,
        "admission while anyone waited",
        &format!("{} visitors/s", count(o.admission_rate)),
    );
    let l = &o.little;
    row(
        &mut s,
        "Little's law",
        &format!(
            "λW = {} × {} = {} against a mean line of {}",
            count(l.arrival_rate),
            secs(l.mean_wait_secs),
            count(l.arrival_rate * l.mean_wait_secs),
            count(l.mean_line)
        ),
    );
    s + "</table>\n"
}

fn charts(r: &PlanReport) -> String {
    let z = &r.series;
    let limit = vec![z.limit_per_sec; z.t_secs.len()];
    let line = lines(
        "Positions waiting",
        &z.t_secs,
        &[Line { name: "line", color: "#2e6fb7", ys: &z.line, dashed: false }],
    );
    let admissions = lines(
        "Admissions and arrivals per second against the tightest stage",
        &z.t_secs,
        &[
            Line { name: "admitted/s", color: "#2e8b57", ys: &z.admitted, dashed: false },
            Line { name: "tightest stage", color: "#c0392b", ys: &limit, dashed: true },
            Line { name: "places/s", color: "#999", ys: &z.arrivals, dashed: false },
        ],
    );
    let w = &r.outcome.waits;
    let h = &r.wait_histogram;
    let waits = histogram(
        "Time to be served (positions per bin)",
        h.bin_secs,
        &h.counts,
        &[("p50", w.p50), ("p90", w.p90), ("p99", w.p99)],
    );
    let edge = lines(
        "Edge requests per second",
        &z.t_secs,
        &[Line { name: "edge req/s", color: "#8e44ad", ys: &z.edge_rps, dashed: false }],
    );
    let note = if z.step_secs > 1 {
        format!("<p class=note>Each point is the mean over {} s.</p>", z.step_secs)
    } else {
        String::new()
    };
    format!("<h2>Charts</h2>{note}\n{line}\n{admissions}\n{waits}\n{edge}\n")
}

fn loads(r: &PlanReport) -> String {
    let l = &r.loads;
    let e = &l.edge;
    let mut s = String::from("<h2>Load on each part</h2><table>");
    row(
        &mut s,
        "edge, busiest ten seconds",
        &format!(
            "{} req/s at {}: pages {}, challenges {}, enqueues {}, polls {}, claims {} (the profile states {} req/s)",
            count(e.total),
            secs(l.edge_peak_at_secs as f64),
            count(e.pages),
            count(e.challenges),
            count(e.enqueues),
            count(e.polls),
            count(e.claims),
            count(l.stated_rps)
        ),
    );
    let c = &l.coordinator;
    row(
        &mut s,
        "coordinator",
        &format!(
            "{} enqueues/s and {} claims/s at most: {:.2} cores, run {} processes",
            count(c.enqueues_per_sec),
            count(c.claims_per_sec),
            c.cores,
            c.processes
        ),
    );
    let d = &l.redis;
    row(
        &mut s,
        "Redis",
        &format!(
            "{} calls/s, {} of its core, {} of memory at most",
            count(d.calls_per_sec),
            pct(d.core_share),
            bytes(d.memory_bytes)
        ),
    );
    let y = &l.sync;
    row(
        &mut s,
        "state sync and KV",
        &format!(
            "{} writes over the sale; {}/day while the queue changes, {}/day idle; {} KV reads/day per busy isolate",
            count(y.writes_over_sale),
            count(y.writes_per_day_busy),
            count(y.writes_per_day_idle),
            count(y.reads_per_day_per_isolate)
        ),
    );
    for g in &l.regions {
        let rtt =
            g.rtt_ms.map_or(String::new(), |ms| format!("; +{ms:.0} ms per enqueue and claim"));
        row(
            &mut s,
            &format!("region {}", g.name),
            &format!(
                "{} of visitors: {} edge req/s, {} enqueues/s{rtt}",
                pct(g.share),
                count(g.edge_rps),
                count(g.enqueues_per_sec)
            ),
        );
    }
    s.push_str("</table><h2>Limits, closest first</h2><table><tr><th>limit</th><th>at the peak</th><th>basis</th></tr>");
    for u in &l.limits {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=n>{}</td><td>{}</td></tr>",
            esc(&u.part),
            pct(u.peak),
            esc(&u.basis)
        );
    }
    s + "</table>\n"
}

fn inputs(r: &PlanReport) -> String {
    let profile = serde_json::to_string_pretty(&r.profile).unwrap_or_default();
    format!(
        "<h2>Inputs</h2><p class=note>Loads are priced with the bench's figures ({}): {:.1} µs of coordinator CPU and {:.2} µs of Redis CPU per enqueue, {:.1} and {:.1} µs per token claim, {:.3} bytes of Redis per queued visitor and {:.1} per session. Model and assumptions: <code>docs/plans/README.md</code>. Written by {}.</p><pre>{}</pre>\n",
        esc(&r.measured.measured),
        r.measured.enqueue_cpu_us,
        r.measured.enqueue_redis_us,
        r.measured.claim_cpu_us,
        r.measured.claim_redis_us,
        r.measured.bytes_per_place,
        r.measured.bytes_per_session,
        esc(&r.generated_by),
        esc(&profile)
    )
}
