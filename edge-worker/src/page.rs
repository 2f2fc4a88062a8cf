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

fn render(
    cfg: &Config,
    queue: &str,
    return_to: &str,
    title: &str,
    message: &str,
    script: bool,
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

/// The waiting room for `queue`, returning to `return_to` once admitted.
pub fn room(cfg: &Config, queue: &str, return_to: &str, status: u16) -> EdgeResult {
    html(status, render(cfg, queue, return_to, "You are in the queue", "holding your place…", true))
}

/// A page without the queue script (closed queue, waiting room not ready).
pub fn notice(cfg: &Config, title: &str, message: &str, status: u16) -> EdgeResult {
    html(status, render(cfg, "", "/", title, message, false))
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
    room(cfg, &queue, &return_to, 200)
}
