//! Inline SVG charts for the HTML report (no script, no external asset): lines over time and
//! a histogram, with round-number axes.

use std::fmt::Write as _;

use super::units::{count, nice_step, time_step};

const W: f64 = 760.0;
const H: f64 = 300.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 46.0;

/// One line of a chart.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// Legend text.
    pub name: &'a str,
    /// Stroke colour.
    pub color: &'a str,
    /// One value per x.
    pub ys: &'a [f64],
    /// Drawn dashed (limits).
    pub dashed: bool,
}

/// Escapes text for XML and HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An x-axis value in seconds as a time: `45 s`, `2 min`, `2:30 min`, `1:20 h`.
fn time_label(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02} h", s / 3600, (s % 3600) / 60)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else if s >= 60 {
        format!("{}:{:02} min", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// The frame: title, axes with ticks and labels for `[0, x_max]` × `[0, y_max]`; returns the
/// SVG opened and the two scales.
fn frame(
    title: &str,
    x_max: f64,
    y_max: f64,
) -> (String, impl Fn(f64) -> f64, impl Fn(f64) -> f64) {
    let (x_max, y_max) = (x_max.max(1e-9), y_max.max(1e-9));
    let sx = move |x: f64| LEFT + x / x_max * (W - LEFT - RIGHT);
    let sy = move |y: f64| H - BOTTOM - y / y_max * (H - TOP - BOTTOM);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><text x="{LEFT}" y="20" class="title">{t}</text>"#,
        t = esc(title)
    );
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#444"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" stroke="#444"/>"##,
        b = H - BOTTOM,
        r = W - RIGHT
    );
    let step = nice_step(y_max / 5.0);
    let mut y = 0.0;
    while y <= y_max * 1.0001 {
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{p:.1}" x2="{r}" y2="{p:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{v}</text>"##,
            p = sy(y),
            r = W - RIGHT,
            tx = LEFT - 6.0,
            ty = sy(y) + 4.0,
            v = count(y)
        );
        y += step;
    }
    let step = time_step(x_max / 8.0);
    let mut x = 0.0;
    while x <= x_max * 1.0001 {
        let _ = write!(
            s,
            r#"<text x="{p:.1}" y="{ty}" text-anchor="middle">{v}</text>"#,
            p = sx(x),
            ty = H - BOTTOM + 18.0,
            v = time_label(x)
        );
        x += step;
    }
    (s, sx, sy)
}

/// A chart of lines over time (`xs` in seconds).
pub fn lines(title: &str, xs: &[f64], lines: &[Line<'_>]) -> String {
    let x_max = xs.last().copied().unwrap_or(1.0);
    let y_max = lines.iter().flat_map(|l| l.ys.iter().copied()).fold(0.0, f64::max) * 1.05;
    let (mut s, sx, sy) = frame(title, x_max, y_max);
    for (i, l) in lines.iter().enumerate() {
        let pts: Vec<String> =
            xs.iter().zip(l.ys).map(|(&x, &y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
        let dash = if l.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2"{dash} points="{p}"/>"#,
            c = l.color,
            p = pts.join(" ")
        );
        let lx = LEFT + 10.0 + 200.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="{y}" width="14" height="4" fill="{c}"/><text x="{tx}" y="{ty}">{n}</text>"#,
            y = H - 12.0,
            c = l.color,
            tx = lx + 18.0,
            ty = H - 7.0,
            n = esc(l.name)
        );
    }
    s + "</svg>"
}

/// A histogram of `counts` in bins of `bin` seconds, with labelled markers.
pub fn histogram(title: &str, bin: f64, counts: &[f64], markers: &[(&str, f64)]) -> String {
    let x_max = bin * counts.len().max(1) as f64;
    let y_max = counts.iter().copied().fold(0.0, f64::max) * 1.1;
    let (mut s, sx, sy) = frame(title, x_max, y_max);
    for (i, &c) in counts.iter().enumerate() {
        let (x0, x1) = (sx(i as f64 * bin), sx((i + 1) as f64 * bin));
        let _ = write!(
            s,
            r##"<rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="#7aa6d8"/>"##,
            y = sy(c),
            w = (x1 - x0 - 1.0).max(0.5),
            h = sy(0.0) - sy(c)
        );
    }
    for (i, &(name, x)) in markers.iter().enumerate() {
        let px = sx(x.min(x_max));
        let _ = write!(
            s,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{b}" stroke="#c0392b" stroke-dasharray="4 3"/><text x="{tx:.1}" y="{ty}" fill="#c0392b">{n}</text>"##,
            b = H - BOTTOM,
            tx = px + 3.0,
            ty = TOP + 12.0 + 14.0 * i as f64,
            n = esc(name)
        );
    }
    s + "</svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_closed_svg_with_escaped_text() {
        let svg = lines(
            "a <b>",
            &[0.0, 60.0, 120.0],
            &[Line { name: "x&y", color: "#000", ys: &[0.0, 5.0, 2.0], dashed: true }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt;") && svg.contains("x&amp;y") && !svg.contains("<b>"));
        assert!(svg.contains("stroke-dasharray"));
        let h = histogram("waits", 10.0, &[1.0, 3.0], &[("p50", 12.0)]);
        assert!(svg.contains(">1 min<") && svg.contains(">2 min<"), "{svg}");
        let labels: Vec<String> = [45.0, 150.0, 4800.0].map(time_label).into();
        assert_eq!(labels, ["45 s", "2:30 min", "1:20 h"]);
        assert_eq!(h.matches("<rect").count(), 2);
        assert!(h.contains(">p50<"));
    }
}
