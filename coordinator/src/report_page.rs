//! The report as one self-contained HTML page (`?format=html`): tables and inline SVG
//! charts, no script, no external asset, readable in a browser and printable.

use std::fmt::Write as _;

use shared::wire::{Report, WaitPercentiles};

/// Chart size, SVG units.
const W: f64 = 640.0;
const H: f64 = 180.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn secs(v: Option<f64>) -> String {
    v.map_or("–".into(), |s| {
        if s < 120.0 { format!("{s:.0} s") } else { format!("{:.1} min", s / 60.0) }
    })
}

fn share(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{:.1}%", 100.0 * x))
}

/// A line chart of several series over the report's minutes.
fn chart(title: &str, series: &[(&str, &str, Vec<f64>)]) -> String {
    let n = series.first().map_or(0, |s| s.2.len());
    let top = series.iter().flat_map(|s| s.2.iter().copied()).fold(1.0f64, f64::max);
    let x = |i: usize| if n > 1 { 40.0 + (W - 50.0) * i as f64 / (n - 1) as f64 } else { 40.0 };
    let y = |v: f64| H - 20.0 - (H - 40.0) * v / top;
    let mut svg = format!(
        r#"<figure><figcaption>{}</figcaption><svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    let _ = write!(
        svg,
        r##"<line x1="40" y1="{b}" x2="{W}" y2="{b}" stroke="#999"/><text x="2" y="24" font-size="11">{top:.0}</text><text x="2" y="{b}" font-size="11">0</text>"##,
        b = H - 20.0
    );
    for (k, (name, color, values)) in series.iter().enumerate() {
        let pts: Vec<String> =
            values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/><text x="{}" y="12" font-size="11" fill="{color}">{}</text>"#,
            pts.join(" "),
            60 + 140 * k,
            esc(name)
        );
    }
    svg + "</svg></figure>"
}

fn waits_row(name: &str, w: &WaitPercentiles) -> String {
    format!(
        "<tr><th>{name}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        w.count,
        secs(w.p50),
        secs(w.p90),
        secs(w.p99)
    )
}

/// The page.
pub fn html(r: &Report) -> String {
    let t = &r.totals;
    let per_min = |f: fn(&shared::wire::ReportMinute) -> u64| -> Vec<f64> {
        r.minutes.iter().map(|m| f(m) as f64).collect()
    };
    let e = &r.eta_honesty;
    let mut page = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Report: {q}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:48em}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}th{{text-align:left}}figure{{margin:1em 0;break-inside:avoid}}@media print{{body{{margin:0}}}}</style></head><body>
<h1>Sale report: {q}</h1><p>Generated at {gen} (UTC).</p>
<h2>Totals</h2><table>
<tr><th>arrivals</th><td>{}</td></tr><tr><th>admitted</th><td>{}</td></tr><tr><th>claimed</th><td>{}</td></tr>
<tr><th>completed</th><td>{}</td></tr><tr><th>abandoned</th><td>{}</td></tr><tr><th>expired sessions</th><td>{}</td></tr>
<tr><th>never claimed</th><td>{} ({})</td></tr><tr><th>waiting now</th><td>{}</td></tr><tr><th>active now</th><td>{}</td></tr></table>"#,
        t.arrivals,
        t.admitted,
        t.claimed,
        t.completed,
        t.abandoned,
        t.expired,
        t.never_claimed,
        share(Some(t.never_claimed_share)),
        t.waiting,
        t.active,
        q = esc(&r.queue_id),
        gen = crate::webhooks::rfc3339(r.generated_at),
    );
    page += "<h2>Waits (visitors who claimed)</h2><table><tr><th></th><th>visitors</th><th>p50</th><th>p90</th><th>p99</th></tr>";
    page += &waits_row("joining to served", &r.wait_to_served);
    page += &waits_row("joining to claim", &r.wait_to_claim);
    let _ = write!(
        page,
        "</table><h2>ETA honesty</h2><p>Of {} admitted visitors shown a band when they joined: {} admitted within it, {} early, {} late ({} shown no band).</p>",
        e.counted,
        share(e.within),
        share(e.early),
        share(e.late),
        e.no_band
    );
    let p = &r.peaks;
    let _ = write!(
        page,
        "<h2>Peaks</h2><p>Arrivals {:.2}/s, admissions {:.2}/s (per-minute averages); longest line {}.</p>",
        p.arrivals_per_sec, p.admitted_per_sec, p.waiting
    );
    page += &chart(
        "Arrivals and admissions per minute",
        &[
            ("arrivals", "#1f77b4", per_min(|m| m.arrivals)),
            ("admitted", "#2ca02c", per_min(|m| m.admitted)),
        ],
    );
    page += &chart(
        "Line length at each minute's end",
        &[("waiting", "#d62728", per_min(|m| m.waiting))],
    );
    page + "</body></html>"
}
