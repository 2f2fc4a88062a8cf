//! The waiting-room page and its static assets (CSS, page script, proof-of-work solver).
//!
//! Assets are compiled in and served under content-hashed names
//! (`{prefix}/__anteroom/assets/app.<hash>.js`) with `immutable` caching; the page itself is
//! `no-store`, so a deploy changes what visitors load at once.

use std::cell::OnceCell;

use sha2::{Digest, Sha256};
use worker::Response;

use crate::{Config, EdgeError, EdgeResult};

struct Asset {
    /// Content-hashed file name.
    name: String,
    content_type: &'static str,
    body: &'static str,
}

thread_local! {
    static ASSETS: OnceCell<Vec<Asset>> = const { OnceCell::new() };
}

const SOURCES: [(&str, &str, &str, &str); 3] = [
    ("app", "js", "text/javascript; charset=utf-8", include_str!("../assets/app.js")),
    ("pow", "js", "text/javascript; charset=utf-8", include_str!("../assets/pow.js")),
    ("style", "css", "text/css; charset=utf-8", include_str!("../assets/style.css")),
];
const ROOM: &str = include_str!("../assets/room.html");

fn build() -> Vec<Asset> {
    SOURCES
        .iter()
        .map(|&(stem, ext, content_type, body)| {
            let hash = Sha256::digest(body.as_bytes());
            let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
            Asset { name: format!("{stem}.{hex}.{ext}"), content_type, body }
        })
        .collect()
}

/// Hashes the assets once per isolate (called from `#[event(start)]`).
pub fn init() {
    ASSETS.with(|a| {
        a.get_or_init(build);
    });
}

fn hashed_name(stem: &str) -> String {
    ASSETS.with(|a| {
        a.get_or_init(build)
            .iter()
            .find(|x| x.name.split('.').next() == Some(stem))
            .map(|x| x.name.clone())
            .unwrap_or_default()
    })
}

/// `GET {prefix}/__anteroom/assets/{name}`.
pub fn asset(name: &str) -> EdgeResult {
    let found = ASSETS.with(|a| {
        a.get_or_init(build).iter().find(|x| x.name == name).map(|x| (x.content_type, x.body))
    });
    let Some((content_type, body)) = found else {
        return Err(EdgeError::client(404, "not_found", "no such asset"));
    };
    Ok(Response::builder()
        .with_header("content-type", content_type)?
        .with_header("cache-control", "public, max-age=31536000, immutable")?
        .with_header("x-content-type-options", "nosniff")?
        .fixed(body.as_bytes().to_vec()))
}

/// Escapes text for an HTML attribute or element.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A same-origin path or `/`: never an open redirect.
pub fn safe_return(p: &str) -> &str {
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.len() <= 2048
        && !p.chars().any(char::is_control);
    if ok { p } else { "/" }
}

/// Adaptive polling: `(ahead below, interval ms)`, first match wins. Far back a visitor is
/// asked rarely (nothing changes for them for minutes), near the front often.
pub const POLL_TABLE: [(u64, u64); 5] =
    [(51, 2_000), (501, 5_000), (2_001, 10_000), (10_000, 20_000), (u64::MAX, 30_000)];
/// Interval when the answer does not know the visitor (`serving_pos`, `waiting_num`).
pub const POLL_UNKNOWN_MS: u64 = 5_000;
/// Jitter either side of the interval, percent.
pub const POLL_JITTER_PCT: u64 = 20;

/// The interval before the next status poll, without jitter.
pub fn poll_base_ms(ahead: Option<u64>) -> u64 {
    let Some(ahead) = ahead else { return POLL_UNKNOWN_MS };
    POLL_TABLE.iter().find(|&&(below, _)| ahead < below).map_or(POLL_UNKNOWN_MS, |&(_, ms)| ms)
}

/// `next_poll_ms` of a status answer: [`poll_base_ms`] moved by up to ±[`POLL_JITTER_PCT`]
/// by `seed` (uniform over `u32`), so visitors who joined together do not poll together.
pub fn next_poll_ms(ahead: Option<u64>, seed: u32) -> u64 {
    let base = poll_base_ms(ahead);
    let spread = base * POLL_JITTER_PCT / 100;
    base - spread + u64::from(seed) * 2 * spread / u64::from(u32::MAX)
}

/// A jitter seed stable for one visitor: the first bytes of the hash of their request_id.
pub fn visitor_seed(request_id: &str) -> u32 {
    let h = Sha256::digest(request_id.as_bytes());
    u32::from_le_bytes([h[0], h[1], h[2], h[3]])
}

/// Languages of the default page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

/// The page's language from `Accept-Language`: the highest-weighted of English and Chinese,
/// English when neither is asked for.
pub fn lang(accept_language: &str) -> Lang {
    let mut best = (0u32, Lang::En);
    for item in accept_language.split(',') {
        let mut parts = item.trim().split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        // Weights in thousandths, compared as integers.
        let w = (q.clamp(0.0, 1.0) * 1000.0).round() as u32;
        let l = if tag.starts_with("zh") {
            Lang::Zh
        } else if tag.starts_with("en") {
            Lang::En
        } else {
            continue;
        };
        if w > best.0 {
            best = (w, l);
        }
    }
    best.1
}

/// The page's strings: `(key, English, Chinese)`. The page script receives the chosen
/// column as JSON in `data-strings`.
const STRINGS: [(&str, &str, &str); 22] = [
    ("title", "You are in the queue", "您正在排队"),
    ("holding", "holding your place…", "正在为您保留位置…"),
    ("joining", "Joining the queue…", "正在加入队列…"),
    ("checking", "checking your browser", "正在检查您的浏览器"),
    ("solving", "checking your browser: {n}%", "正在检查您的浏览器：{n}%"),
    ("position", "Your place in line", "您的排队号"),
    ("ahead", "People ahead of you", "您前面的人数"),
    ("ahead_detail", "{n} ahead of you", "前面还有 {n} 人"),
    ("eta", "Estimated wait", "预计等待时间"),
    ("eta_unknown", "estimating…", "正在估算…"),
    ("progress", "Progress since you joined", "加入后的进度"),
    ("updated", "updated {n} s ago", "{n} 秒前更新"),
    ("turn_title", "It's your turn!", "轮到您了！"),
    ("turn_detail", "opening the site…", "正在打开网站…"),
    ("go", "Go to the site now", "立即进入网站"),
    ("expired_title", "Your place has expired", "您的排队位置已过期"),
    (
        "expired_detail",
        "You did not come back in time, so your place was given up. You can join the line again.",
        "您未能及时返回，位置已被释放。您可以重新排队。",
    ),
    ("rejoin", "Join the line again", "重新排队"),
    ("reconnecting", "Reconnecting…", "正在重新连接…"),
    ("min", "min", "分钟"),
    ("sec", "s", "秒"),
    (
        "noscript",
        "This waiting room needs JavaScript to give you a place in line (your browser solves a small puzzle first). Please enable JavaScript; this page reloads itself every 30 seconds.",
        "此等候室需要 JavaScript 才能为您分配排队位置（浏览器需先完成一个小计算）。请启用 JavaScript；本页每 30 秒自动刷新。",
    ),
];

fn text(lang: Lang, key: &str) -> &'static str {
    STRINGS.iter().find(|s| s.0 == key).map_or("", |s| if lang == Lang::Zh { s.2 } else { s.1 })
}

fn strings_json(lang: Lang) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        STRINGS.iter().map(|s| (s.0.to_string(), text(lang, s.0).into())).collect();
    serde_json::Value::Object(map).to_string()
}

fn render(
    cfg: &Config,
    queue: &str,
    return_to: &str,
    title: &str,
    message: &str,
    script: bool,
    lang: Lang,
) -> String {
    let assets = format!("{}/__anteroom/assets/", cfg.prefix);
    let script = if script {
        format!(r#"<script src="{}{}" defer></script>"#, esc(&assets), esc(&hashed_name("app")))
    } else {
        String::new()
    };
    ROOM.replace("{{css}}", &esc(&format!("{assets}{}", hashed_name("style"))))
        .replace("{{pow}}", &esc(&format!("{assets}{}", hashed_name("pow"))))
        .replace("{{queue}}", &esc(queue))
        .replace("{{prefix}}", &esc(&cfg.prefix))
        .replace("{{return_to}}", &esc(safe_return(return_to)))
        .replace("{{lang}}", if lang == Lang::Zh { "zh" } else { "en" })
        .replace("{{strings}}", &esc(&strings_json(lang)))
        .replace("{{s_position}}", &esc(text(lang, "position")))
        .replace("{{s_ahead}}", &esc(text(lang, "ahead")))
        .replace("{{s_eta}}", &esc(text(lang, "eta")))
        .replace("{{s_progress}}", &esc(text(lang, "progress")))
        .replace("{{s_noscript}}", &esc(text(lang, "noscript")))
        .replace("{{title}}", &esc(title))
        .replace("{{message}}", &esc(message))
        .replace("{{script}}", &script)
}

fn html(status: u16, body: String) -> EdgeResult {
    Ok(Response::builder()
        .with_status(status)
        .with_header("content-type", "text/html; charset=utf-8")?
        .with_header("cache-control", "no-store")?
        .with_header("x-content-type-options", "nosniff")?
        .with_header("referrer-policy", "same-origin")?
        .fixed(body.into_bytes()))
}

/// The waiting room for `queue` in `lang`, returning to `return_to` once admitted.
pub fn room_in(cfg: &Config, queue: &str, return_to: &str, status: u16, lang: Lang) -> EdgeResult {
    let (title, message) = (text(lang, "title"), text(lang, "holding"));
    html(status, render(cfg, queue, return_to, title, message, true, lang))
}

/// A page without the queue script (closed queue, waiting room not ready).
pub fn notice(cfg: &Config, title: &str, message: &str, status: u16) -> EdgeResult {
    html(status, render(cfg, "", "/", title, message, false, Lang::En))
}

/// `GET {prefix}/__anteroom/room?queue_id=&return_to=`: the page at a fixed address.
pub fn room_page(req: &worker::Request, cfg: &Config) -> EdgeResult {
    let url = crate::ReqUrl::of(req);
    let get = |k: &str| url.param(k);
    let queue = get("queue_id").filter(|q| crate::store::valid_slug(q));
    let Some(queue) = queue else {
        return Err(EdgeError::client(400, "invalid_parameter", "queue_id is not a valid queue"));
    };
    let return_to = get("return_to").unwrap_or_else(|| "/".into());
    let accept = req.headers().get("accept-language").ok().flatten().unwrap_or_default();
    room_in(cfg, &queue, &return_to, 200, lang(&accept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_interval_follows_the_table_within_its_jitter() {
        for (ahead, base) in [
            (0, 2_000),
            (50, 2_000),
            (51, 5_000),
            (500, 5_000),
            (2_000, 10_000),
            (9_999, 20_000),
            (10_000, 30_000),
            (1_000_000, 30_000),
        ] {
            assert_eq!(poll_base_ms(Some(ahead)), base);
            assert_eq!(next_poll_ms(Some(ahead), 0), base * 8 / 10);
            assert_eq!(next_poll_ms(Some(ahead), u32::MAX), base * 12 / 10);
        }
        assert_eq!(poll_base_ms(None), POLL_UNKNOWN_MS);
    }

    #[test]
    fn a_million_waiting_visitors_poll_about_33_7k_times_a_second() {
        let rate: f64 = (1..=1_000_000u64).map(|a| 1000.0 / poll_base_ms(Some(a)) as f64).sum();
        assert!((rate - 33_665.0).abs() < 1.0, "{rate}");
    }

    #[test]
    fn the_language_follows_accept_language() {
        assert_eq!(lang("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(lang("en-US,en;q=0.9,zh;q=0.8"), Lang::En);
        assert_eq!(lang("fr, zh-TW;q=0.5"), Lang::Zh);
        assert_eq!(lang(""), Lang::En);
    }
}
