//! Number, duration and size formats, and round axis steps, shared by the text summary, the
//! HTML report, its charts and the rehearsal's table.

/// `1,234,567` (rounded to a whole number); one decimal below ten.
pub fn count(x: f64) -> String {
    if x.abs() < 10.0 && x.fract().abs() > 1e-9 {
        return format!("{x:.1}");
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if x < -0.5 { format!("-{out}") } else { out }
}

/// A duration: `42 s`, `12 min 05 s`, `3 h 02 min`.
pub fn secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// A share as a percentage.
pub fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// Bytes in a unit people read.
pub fn bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} KB", b / 1e3)
    }
}

/// A round step (1, 2 or 5 times a power of ten) at least `x`.
pub fn nice_step(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|&s| s >= x).unwrap_or(10.0 * p)
}

/// Round steps of time, seconds: what a clock face or a calendar would mark.
const TIME_STEPS: [f64; 19] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
    7200.0, 10_800.0, 21_600.0, 43_200.0, 86_400.0,
];

/// A round step of time at least `secs` (whole days beyond a day).
pub fn time_step(secs: f64) -> f64 {
    if !(secs.is_finite() && secs > 0.0) {
        return 1.0;
    }
    TIME_STEPS.iter().copied().find(|&s| s >= secs).unwrap_or((secs / 86_400.0).ceil() * 86_400.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(count(1234567.4), "1,234,567");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(2.25), "2.2");
        assert_eq!(secs(42.4), "42 s");
        assert_eq!(secs(725.0), "12 min 05 s");
        assert_eq!(secs(10_920.0), "3 h 02 min");
        assert_eq!(bytes(2_100_000.0), "2.1 MB");
        assert_eq!([nice_step(0.3), nice_step(7.0), nice_step(120.0)], [0.5, 10.0, 200.0]);
        assert_eq!([time_step(0.4), time_step(502.0), time_step(4000.0)], [1.0, 600.0, 7200.0]);
        assert_eq!(time_step(3.5 * 86_400.0), 4.0 * 86_400.0);
    }
}
