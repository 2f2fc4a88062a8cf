//! The waiting-room page and its static assets (CSS, page script, proof-of-work solver).
//!
//! Assets are compiled in and served under content-hashed names
//! (`{prefix}/__anteroom/assets/app.<hash>.js`) with `immutable` caching; the page itself is
//! `no-store`, so a deploy changes what visitors load at once.

use sha2::{Digest, Sha256};
use shared::eta::EtaBand;
use shared::sync::EdgeState;
use worker::Response;

use shared::error::ErrorCode;

use crate::forms::safe_return;
use crate::http::{EdgeError, EdgeResult};
use crate::visit::Visit;

#[derive(Debug)]
struct Asset {
    /// Content-hashed file name.
    name: String,
    content_type: &'static str,
    body: &'static str,
}

const SOURCES: [(&str, &str, &str, &str); 3] = [
    ("app", "js", "text/javascript; charset=utf-8", include_str!("../assets/app.js")),
    ("pow", "js", "text/javascript; charset=utf-8", include_str!("../assets/pow.js")),
    ("style", "css", "text/css; charset=utf-8", include_str!("../assets/style.css")),
];
const ROOM: &str = include_str!("../assets/room.html");

/// The page's assets, hashed once per isolate.
#[derive(Debug)]
pub struct Assets(Vec<Asset>);

impl Assets {
    /// Hashes the compiled-in sources.
    pub fn new() -> Self {
        Assets(
            SOURCES
                .iter()
                .map(|&(stem, ext, content_type, body)| {
                    let hash = Sha256::digest(body.as_bytes());
                    let hex = shared::hex::encode(&hash[..6]);
                    Asset { name: format!("{stem}.{hex}.{ext}"), content_type, body }
                })
                .collect(),
        )
    }

    fn hashed_name(&self, stem: &str) -> &str {
        self.0.iter().find(|x| x.name.split('.').next() == Some(stem)).map_or("", |x| &x.name)
    }

    /// `{prefix}/__anteroom/assets/{name}`: the asset under its hashed name, cached for good.
    pub fn serve(&self, name: &str) -> EdgeResult {
        let Some(a) = self.0.iter().find(|x| x.name == name) else {
            return Err(EdgeError::with(ErrorCode::NotFound, "no such asset"));
        };
        Ok(Response::builder()
            .with_header("content-type", a.content_type)?
            .with_header("cache-control", "public, max-age=31536000, immutable")?
            .with_header("x-content-type-options", "nosniff")?
            .fixed(a.body.as_bytes().to_vec()))
    }
}

impl Default for Assets {
    fn default() -> Self {
        Assets::new()
    }
}

/// What pages are rendered with: the route prefix and the assets.
#[derive(Debug)]
pub struct Pages {
    /// Route prefix, without a trailing `/`.
    pub prefix: String,
    /// The hashed assets.
    pub assets: Assets,
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
const STRINGS: [(&str, &str, &str); 32] = [
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
    ("about", "about {n}", "约 {n}"),
    ("now", "now", "现在"),
    ("progress", "Progress since you joined", "加入后的进度"),
    ("updated", "updated {n} s ago", "{n} 秒前更新"),
    ("turn_title", "It's your turn!", "轮到您了！"),
    ("turn_detail", "opening the site…", "正在打开网站…"),
    ("claim_within", "Continue within {n} to keep your place", "请在 {n} 内进入，以保留您的位置"),
    ("turn_notice", "Your place is ready: continue to the site", "您的位置已就绪：请进入网站"),
    ("go", "Go to the site now", "立即进入网站"),
    ("expired_title", "Your place has expired", "您的排队位置已过期"),
    (
        "expired_detail",
        "You did not come back in time, so your place was given up. You can join the line again.",
        "您未能及时返回，位置已被释放。您可以重新排队。",
    ),
    ("rejoin", "Join the line again", "重新排队"),
    ("join", "Join the line", "加入排队"),
    ("reconnecting", "Reconnecting…", "正在重新连接…"),
    ("min", "min", "分钟"),
    ("sec", "s", "秒"),
    ("nojs_refresh", "This page updates itself every {n} s.", "本页每 {n} 秒自动刷新。"),
    ("notify", "Notify me when it's my turn", "轮到我时通知我"),
    ("sound", "Play a sound when it's my turn", "轮到我时播放提示音"),
    ("nojs_refused", "This waiting room needs JavaScript", "此等候室需要 JavaScript"),
    ("closed", "This waiting room is closed", "此等候室已关闭"),
    (
        "noscript",
        "This waiting room needs JavaScript to give you a place in line (your browser solves a small puzzle first). Please enable JavaScript; this page reloads itself every 30 seconds.",
        "此等候室需要 JavaScript 才能为您分配排队位置（浏览器需先完成一个小计算）。请启用 JavaScript；本页每 30 秒自动刷新。",
    ),
];

/// A string of the page in `lang`.
pub fn text(lang: Lang, key: &str) -> &'static str {
    STRINGS.iter().find(|s| s.0 == key).map_or("", |s| if lang == Lang::Zh { s.2 } else { s.1 })
}

fn strings_json(lang: Lang) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        STRINGS.iter().map(|s| (s.0.to_string(), text(lang, s.0).into())).collect();
    serde_json::Value::Object(map).to_string()
}

/// A wait in words: seconds under a minute, else rounded minutes.
fn duration(lang: Lang, secs: f64) -> String {
    if secs < 60.0 {
        format!("{} {}", secs.round().max(1.0), text(lang, "sec"))
    } else {
        format!("{} {}", (secs / 60.0).round(), text(lang, "min"))
    }
}

/// An ETA band in words, as the page script writes it (`AnteroomRules.etaText` in
/// `assets/app.js`; both checked against `shared/test-vectors/page-rules.json`): "now" when
/// nobody is ahead, a range, or "about <expected>" when the range is too wide to say anything
/// (`shared::eta::too_wide`).
pub fn eta_text(lang: Lang, ahead: u64, eta: Option<&EtaBand>) -> String {
    match eta {
        _ if ahead == 0 => text(lang, "now").to_owned(),
        None => text(lang, "eta_unknown").to_owned(),
        Some(e) if shared::eta::too_wide(e) => {
            text(lang, "about").replace("{n}", &duration(lang, e.expected_secs))
        }
        Some(e) => {
            let high = e.high_secs.unwrap_or(e.expected_secs);
            format!("{} – {}", duration(lang, e.low_secs), duration(lang, high))
        }
    }
}

/// Seconds between reloads of a page without JavaScript: the poll interval, at least 5 s.
fn refresh_secs(visit: &Visit) -> u64 {
    match visit {
        Visit::Waiting(p) => (p.next_poll_ms / 1000).clamp(5, 30),
        Visit::Ready(_) | Visit::New | Visit::Pending(_) => 30,
        Visit::Expired => 300,
    }
}

/// What the waiting room knows when it renders a page.
pub struct Room<'a> {
    pub queue: &'a str,
    /// The same-site path to return to once admitted.
    pub return_to: &'a str,
    pub lang: Lang,
    /// The queue's synced state, when there is one (template, PoW setting, numbers).
    pub state: Option<&'a EdgeState>,
    pub visit: Visit,
    /// Unix seconds now.
    pub now_secs: u64,
}

/// A hidden form field.
fn hidden(name: &str, value: &str) -> String {
    format!(r#"<input type="hidden" name="{}" value="{}">"#, esc(name), esc(value))
}

/// A one-button form posting `queue_id` and `return_to` to `{prefix}/__anteroom/{action}`.
fn button_form(prefix: &str, r: &Room, action: &str, label: &str) -> String {
    format!(
        r#"<form method="post" action="{}/__anteroom/{action}">{}{}<p><button type="submit">{}</button></p></form>"#,
        esc(prefix),
        hidden("queue_id", r.queue),
        hidden("return_to", safe_return(r.return_to)),
        esc(label)
    )
}

/// Whether a browser without JavaScript may join `state`'s queue (no work asked, or the
/// operator waives it for them).
pub fn joins_without_js(state: &EdgeState) -> bool {
    state.queue.pow_difficulty == 0 || state.queue.allow_no_js
}

/// The `{{nojs}}` block: what a visitor without JavaScript can do in their state.
fn nojs_block(prefix: &str, r: &Room) -> String {
    let lang = r.lang;
    let may_join = r.state.is_some_and(joins_without_js);
    match &r.visit {
        Visit::New | Visit::Expired if may_join => {
            let label = if matches!(r.visit, Visit::Expired) { "rejoin" } else { "join" };
            button_form(prefix, r, "join", text(lang, label))
        }
        Visit::New | Visit::Expired => {
            format!(r#"<p class="notice">{}</p>"#, esc(text(lang, "noscript")))
        }
        Visit::Ready(_) => button_form(prefix, r, "claim", text(lang, "go")),
        Visit::Waiting(_) | Visit::Pending(_) => format!(
            r#"<p class="muted">{}</p>"#,
            esc(&text(lang, "nojs_refresh").replace("{n}", &refresh_secs(&r.visit).to_string()))
        ),
    }
}

fn render(
    pages: &Pages,
    r: &Room,
    title: &str,
    message: &str,
    script: bool,
    template: &str,
) -> String {
    let lang = r.lang;
    let assets = format!("{}/__anteroom/assets/", pages.prefix);
    let hashed = |stem| pages.assets.hashed_name(stem);
    let script = if script {
        format!(r#"<script src="{}{}" defer></script>"#, esc(&assets), esc(hashed("app")))
    } else {
        String::new()
    };
    let place = r.visit.place();
    let num = |n: Option<u64>| n.map_or_else(|| "–".to_owned(), |n| n.to_string());
    let (title, message) = match (&r.visit, place) {
        (Visit::Waiting(p), _) => (
            text(lang, "title").to_owned(),
            text(lang, "ahead_detail").replace("{n}", &p.ahead.to_string()),
        ),
        (Visit::Ready(p), _) => {
            let detail = match p.claim_by {
                Some(by) => text(lang, "claim_within")
                    .replace("{n}", &duration(lang, by.saturating_sub(r.now_secs) as f64)),
                None => text(lang, "turn_detail").to_owned(),
            };
            (text(lang, "turn_title").to_owned(), detail)
        }
        (Visit::Expired, _) => {
            (text(lang, "expired_title").to_owned(), text(lang, "expired_detail").to_owned())
        }
        _ => (title.to_owned(), message.to_owned()),
    };
    let shown = r.state.map(|s| &s.presentation);
    let name = shown.and_then(|p| p.display_name.as_deref());
    let logo = shown.and_then(|p| p.logo_text.as_deref());
    let what = shared::presentation::what(logo, name);
    let lang_code = if lang == Lang::Zh { "zh" } else { "en" };
    let notice =
        shared::presentation::notice_text(shown.and_then(|p| p.notice.as_ref()), lang_code);
    let hidden_if = |empty: bool| if empty { "hidden".to_owned() } else { String::new() };
    let escaped: Vec<(&str, String)> = vec![
        ("lang", lang_code.to_owned()),
        ("doc_title", shared::presentation::page_title(&title, &what)),
        ("title", title),
        ("message", message),
        ("css", format!("{assets}{}", hashed("style"))),
        ("pow", format!("{assets}{}", hashed("pow"))),
        ("queue", r.queue.to_owned()),
        ("prefix", pages.prefix.clone()),
        ("return_to", safe_return(r.return_to).to_owned()),
        ("strings", strings_json(lang)),
        ("state", r.visit.name().to_owned()),
        ("ticket", r.visit.ticket().unwrap_or("").to_owned()),
        ("position", num(place.map(|p| p.position))),
        ("ahead", num(place.map(|p| p.ahead))),
        ("eta", place.map_or_else(|| "–".to_owned(), |p| eta_text(lang, p.ahead, p.eta.as_ref()))),
        ("claim_by", place.and_then(|p| p.claim_by).map(|c| c.to_string()).unwrap_or_default()),
        ("refresh", refresh_secs(&r.visit).to_string()),
        ("serving_pos", num(r.state.map(|s| s.serving_pos))),
        ("waiting_num", num(r.state.map(|s| s.waiting_num))),
        ("s_position", text(lang, "position").to_owned()),
        ("s_ahead", text(lang, "ahead").to_owned()),
        ("s_eta", text(lang, "eta").to_owned()),
        ("s_progress", text(lang, "progress").to_owned()),
        ("s_noscript", text(lang, "noscript").to_owned()),
        ("s_notify", text(lang, "notify").to_owned()),
        ("s_sound", text(lang, "sound").to_owned()),
        ("display_name", name.unwrap_or("").to_owned()),
        ("logo_text", logo.unwrap_or("").to_owned()),
        ("notice", notice.to_owned()),
    ];
    let escaped: Vec<(&str, String)> = escaped.into_iter().map(|(k, v)| (k, esc(&v))).collect();
    let nojs = if script.is_empty() { String::new() } else { nojs_block(&pages.prefix, r) };
    let raw: [(&str, String); 5] = [
        ("script", script),
        ("place_hidden", hidden_if(place.is_none())),
        ("nojs", nojs),
        ("brand_hidden", hidden_if(what.is_empty())),
        ("notice_hidden", hidden_if(notice.is_empty())),
    ];
    shared::template::render(template, |name| {
        escaped.iter().chain(raw.iter()).find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    })
}

/// Content-Security-Policy of the default page: its own script, style and proof-of-work
/// worker, nothing inline, nothing from elsewhere, and never inside another site's frame (a
/// framed waiting room could be overlaid to make a visitor click "claim" for someone else).
pub const CSP_DEFAULT: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; media-src 'self' data:; connect-src 'self'; worker-src 'self'; \
    form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// Content-Security-Policy of an operator's template: what it loads is the operator's
/// choice, but it is never framed either.
pub const CSP_TEMPLATE: &str = "frame-ancestors 'none'";

fn html(status: u16, body: String, csp: &str) -> EdgeResult {
    Ok(Response::builder()
        .with_status(status)
        .with_header("content-type", "text/html; charset=utf-8")?
        .with_header("cache-control", "no-store")?
        .with_header("x-content-type-options", "nosniff")?
        .with_header("referrer-policy", "same-origin")?
        .with_header("content-security-policy", csp)?
        .with_header("x-frame-options", "DENY")?
        .fixed(body.into_bytes()))
}

impl Pages {
    /// The waiting room for `r`, answered with `status`.
    pub fn room(&self, r: &Room, status: u16) -> EdgeResult {
        let (title, message) = (text(r.lang, "title"), text(r.lang, "holding"));
        let (template, csp) = match r.state.and_then(|s| s.template.as_deref()) {
            Some(t) => (t, CSP_TEMPLATE),
            None => (ROOM, CSP_DEFAULT),
        };
        html(status, render(self, r, title, message, true, template), csp)
    }

    /// A page without the queue script (closed queue, waiting room not ready, refused join);
    /// always the default template.
    pub fn notice(&self, title: &str, message: &str, status: u16, lang: Lang) -> EdgeResult {
        let r =
            Room { queue: "", return_to: "/", lang, state: None, visit: Visit::New, now_secs: 0 };
        html(status, render(self, &r, title, message, false, ROOM), CSP_DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visit::Place;

    #[test]
    fn every_template_variable_has_a_value_and_values_are_escaped() {
        let pages = Pages { prefix: "/aq".into(), assets: Assets::new() };
        let place = Place {
            request_id: "tick<et>".into(),
            position: 7,
            ahead: 0,
            eta: None,
            claim_by: Some(1_000_090),
            next_poll_ms: 2_000,
        };
        let state: EdgeState = serde_json::from_value(serde_json::json!({
            "format": shared::sync::FORMAT, "version": 1, "published_at_ms": 1, "issuer": "i",
            "queue": {"id": 5, "queue_id": "concert"}, "serving_pos": 7, "assigned": 9,
            "waiting_num": 2, "active_num": 1, "jwks": {"keys": []},
            "presentation": {"display_name": "The Night <Orchestra>", "logo_text": "R&T",
                "notice": {"en": "Doors at 8 \"sharp\"", "zh": ""}},
        }))
        .expect("a state");
        let r = Room {
            queue: "concert",
            return_to: "/tickets?a=1&b=2",
            lang: Lang::Zh,
            state: Some(&state),
            visit: Visit::Ready(place),
            now_secs: 1_000_000,
        };
        let template: String =
            shared::template::VARIABLES.iter().map(|(n, _)| format!("[{n}={{{{{n}}}}}]")).collect();
        assert_eq!(shared::template::check(&template), Ok(()));
        let page = render(&pages, &r, "t", "m", true, &template);
        for (name, _) in shared::template::VARIABLES {
            let empty = format!("[{name}=]");
            // Only the `*_hidden` switches are empty when there is everything to show.
            assert_eq!(page.contains(&empty), name.ends_with("_hidden"), "{name} in {page}");
        }
        assert!(page.contains("[ticket=tick&lt;et&gt;]"), "{page}");
        assert!(page.contains("[return_to=/tickets?a=1&amp;b=2]"), "{page}");
        assert!(page.contains("[claim_by=1000090]"), "{page}");
        assert!(page.contains("[message=请在 2 分钟 内进入，以保留您的位置]"), "{page}");
        assert!(page.contains("[display_name=The Night &lt;Orchestra&gt;]"), "{page}");
        assert!(page.contains("[logo_text=R&amp;T]"), "{page}");
        // No Chinese text: the English one, escaped.
        assert!(page.contains("[notice=Doors at 8 &quot;sharp&quot;]"), "{page}");
        assert!(
            page.contains("[doc_title=轮到您了！ · R&amp;T: The Night &lt;Orchestra&gt;]"),
            "{page}"
        );
        // Without a state (or without the fields) the switches hide the brand and message.
        let bare = Room { state: None, lang: Lang::En, ..r };
        let page = render(&pages, &bare, "t", "m", true, &template);
        assert!(page.contains("[brand_hidden=hidden][notice=][notice_hidden=hidden]"), "{page}");
        assert!(page.contains("[message=Continue within 2 min to keep your place]"), "{page}");
        assert!(page.contains(r#"action="/aq/__anteroom/claim""#), "{page}");
    }

    /// The rules the page script shares with this file, from one table: its ETA texts and the
    /// same-origin check (`forms::safe_return`). `ANTEROOM_WRITE_VECTORS=1` rewrites the
    /// table from this implementation; the JS test reads it too.
    #[test]
    fn the_page_rules_match_their_vectors() {
        const PATH: &str =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/test-vectors/page-rules.json");
        let b = |low, expected, high| EtaBand {
            low_secs: low,
            expected_secs: expected,
            high_secs: high,
        };
        let etas = [
            (0, Some(b(0.0, 0.0, Some(0.0)))),
            (0, Some(b(5.0, 10.0, Some(20.0)))),
            (3, None),
            (3, Some(b(30.0, 60.0, Some(150.0)))),
            (3, Some(b(0.2, 90.0, Some(400_000.0)))),
            (3, Some(b(0.2, 50.0, None))),
            (3, Some(b(0.4, 0.6, Some(1.4)))),
            (900, Some(b(59.4, 61.0, Some(119.0)))),
            (900, Some(b(600.0, 3599.0, Some(7200.0)))),
        ];
        let returns = [
            "/",
            "/shop?x=1",
            "//evil.example",
            "/\\evil",
            "https://evil.example/",
            "",
            "shop",
            "/a\u{7}b",
            "/caf\u{e9}",
            "/a\u{85}b",
        ];
        let long = format!("/{}", "a".repeat(2047));
        let too_long = format!("/{}", "a".repeat(2048));
        let mut cases: Vec<serde_json::Value> = Vec::new();
        for lang in [Lang::En, Lang::Zh] {
            for (ahead, e) in &etas {
                cases.push(serde_json::json!({
                    "lang": if lang == Lang::En { "en" } else { "zh" },
                    "ahead": ahead, "eta": e, "text": eta_text(lang, *ahead, e.as_ref()),
                }));
            }
        }
        let safe: Vec<serde_json::Value> = returns
            .iter()
            .map(|s| s.to_string())
            .chain([long, too_long])
            .map(|p| serde_json::json!({"path": p, "safe": crate::forms::safe_return(&p)}))
            .collect();
        let strings: serde_json::Value = serde_json::json!({
            "en": serde_json::from_str::<serde_json::Value>(&strings_json(Lang::En)).expect("strings are JSON"),
            "zh": serde_json::from_str::<serde_json::Value>(&strings_json(Lang::Zh)).expect("strings are JSON"),
        });
        let presentation: Vec<serde_json::Value> = [
            (Some("Riverside Tickets"), Some("The Night Orchestra")),
            (None, Some("The Night Orchestra")),
            (Some("Riverside <Tickets>"), None),
            (Some(""), Some("")),
            (None, None),
        ]
        .iter()
        .map(|&(logo, name)| {
            let what = shared::presentation::what(logo, name);
            let title = shared::presentation::page_title("You are in the queue", &what);
            serde_json::json!({"logo_text": logo, "display_name": name, "what": what, "title": title})
        })
        .collect();
        let notice = |en: &str, zh: &str| shared::wire::Notice { en: en.into(), zh: zh.into() };
        let notices: Vec<serde_json::Value> = [
            Some(notice("Doors open at 8", "八点开门")),
            Some(notice("Doors open at 8", "")),
            Some(notice("", "八点开门")),
            None,
        ]
        .iter()
        .flat_map(|n| {
            ["en", "zh"].map(|lang| {
                let text = shared::presentation::notice_text(n.as_ref(), lang);
                serde_json::json!({"notice": n, "lang": lang, "text": text})
            })
        })
        .collect();
        let table = serde_json::json!({
            "strings": strings, "eta": cases, "safe_return": safe,
            "presentation": presentation, "notice": notices,
        });
        let text = serde_json::to_string_pretty(&table).expect("table serialises") + "\n";
        if std::env::var_os("ANTEROOM_WRITE_VECTORS").is_some() {
            std::fs::write(PATH, &text).expect("vectors written");
        }
        let committed = std::fs::read_to_string(PATH).unwrap_or_default();
        assert_eq!(committed, text, "{PATH} is stale: rerun with ANTEROOM_WRITE_VECTORS=1");
    }

    #[test]
    fn the_language_follows_accept_language() {
        assert_eq!(lang("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(lang("en-US,en;q=0.9,zh;q=0.8"), Lang::En);
        assert_eq!(lang("fr, zh-TW;q=0.5"), Lang::Zh);
        assert_eq!(lang(""), Lang::En);
    }
}
