//! What a visitor sends and keeps: urlencoded forms, Anteroom's cookies (ticket and token),
//! the tokens and ticket a request presents, the visitor's address, and same-site checks and
//! redirects for the waiting room's forms.

use shared::error::ErrorCode;
use worker::{Request, Response};

use crate::http::{EdgeError, EdgeResult};

/// Largest form body accepted (`assign_queue_pos`, `generate_token`, the no-JS forms).
pub const MAX_FORM: usize = 4096;

/// How long the ticket cookie lives, seconds: longer than any line; the place itself ends by
/// position expiry or when its token is issued (the cookie is then cleared).
const TICKET_COOKIE_SECS: u64 = 86_400;

/// Reads a small urlencoded form; 413 beyond [`MAX_FORM`], 415 for another content type.
pub async fn read_form(req: &mut Request) -> EdgeResult<(Vec<u8>, Vec<(String, String)>)> {
    let ct = req.headers().get("content-type")?.unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(EdgeError::with(
            ErrorCode::UnsupportedMediaType,
            "use application/x-www-form-urlencoded",
        ));
    }
    let body = crate::http::read_body(req, MAX_FORM).await?;
    let fields = worker::url::form_urlencoded::parse(&body).into_owned().collect();
    Ok((body, fields))
}

/// The first value of form field `name`.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The visitor's IP as Cloudflare reports it (never spoofable at a Cloudflare PoP).
pub fn client_ip(req: &Request) -> String {
    req.headers().get("cf-connecting-ip").ok().flatten().unwrap_or_default()
}

/// The `Set-Cookie` value for a queue's token. `__Host-` and `Secure` only over https (a
/// browser refuses both on a plain-http dev host).
pub fn token_cookie(queue_id: &str, token: &str, max_age: u64, secure: bool) -> String {
    if secure {
        format!(
            "__Host-anteroom-{queue_id}={token}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax"
        )
    } else {
        format!("anteroom-{queue_id}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax")
    }
}

/// The `Set-Cookie` value keeping a visitor's ticket for `queue_id`. The name has a `.`, which
/// no slug has, so it never collides with a token cookie (`anteroom-{slug}`).
pub fn ticket_cookie(queue_id: &str, request_id: &str, secure: bool) -> String {
    ticket_cookie_with(queue_id, request_id, TICKET_COOKIE_SECS, secure)
}

/// The `Set-Cookie` value removing the ticket cookie.
pub fn clear_ticket_cookie(queue_id: &str, secure: bool) -> String {
    ticket_cookie_with(queue_id, "", 0, secure)
}

fn ticket_cookie_with(queue_id: &str, value: &str, max_age: u64, secure: bool) -> String {
    if secure {
        format!(
            "__Host-anteroom-ticket.{queue_id}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax"
        )
    } else {
        format!(
            "anteroom-ticket.{queue_id}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
        )
    }
}

/// Values of the cookies named `base` or `__Host-{base}`.
fn cookies(req: &Request, base: &str) -> Vec<String> {
    let Some(header) = req.headers().get("cookie").ok().flatten() else { return Vec::new() };
    let host_name = format!("__Host-{base}");
    header
        .split(';')
        .filter_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == host_name || name == base).then(|| value.to_owned())
        })
        .collect()
}

/// The tokens a visitor presents for `queue_id`, each with whether it came in
/// `Authorization: Bearer` (tried first) or a cookie. All are tried, so a site's own bearer
/// tokens do not hide our cookie.
pub fn presented_tokens(req: &Request, queue_id: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    if let Some(auth) = req.headers().get("authorization").ok().flatten()
        && let Some(t) = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer "))
    {
        out.push((t.trim().to_owned(), true));
    }
    out.extend(cookies(req, &format!("anteroom-{queue_id}")).into_iter().map(|c| (c, false)));
    out
}

/// The ticket a visitor presents for `queue_id`: the `X-Anteroom-Ticket` header (apps), else
/// the ticket cookie.
pub fn presented_ticket(req: &Request, queue_id: &str) -> Option<String> {
    let header = req.headers().get("x-anteroom-ticket").ok().flatten();
    header
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| cookies(req, &format!("anteroom-ticket.{queue_id}")).into_iter().next())
}

/// Anteroom's own request headers, never forwarded to the origin.
pub const OWN_HEADERS: [&str; 4] =
    ["x-anteroom-ticket", "x-anteroom-client", "x-anteroom-timestamp", "x-anteroom-signature"];

/// The `Cookie` header without Anteroom's cookies, except the token cookie of
/// `keep_token_of`; `None` when nothing is left.
pub fn origin_cookies(header: &str, keep_token_of: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|c| {
            let name = c.split('=').next().unwrap_or("");
            let bare = name.strip_prefix("__Host-").unwrap_or(name);
            match bare.strip_prefix("anteroom-") {
                None => true,
                Some(rest) => keep_token_of == Some(rest),
            }
        })
        .filter(|c| !c.is_empty())
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Whether a form post comes from a page of this site: its `Origin`, when sent, is ours.
/// Stops another site from making a visitor's browser join or claim.
pub fn same_origin(req: &Request) -> bool {
    let Some(origin) = req.headers().get("origin").ok().flatten() else { return true };
    let url = req.inner().url();
    origin != "null" && url.strip_prefix(origin.as_str()).is_some_and(|rest| rest.starts_with('/'))
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

/// `303 See Other` to a same-site path, setting `cookies`.
pub fn see_other(location: &str, cookies: &[String]) -> EdgeResult {
    let mut resp = Response::builder()
        .with_status(303)
        .with_header("location", safe_return(location))?
        .with_header("cache-control", "no-store")?
        .empty();
    for c in cookies {
        resp.headers_mut().append("set-cookie", c)?;
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anteroom_cookies_stay_at_the_edge_unless_the_token_is_forwarded() {
        let h = "a=1; anteroom-ticket.shop=T; __Host-anteroom-shop=J; anteroom-other=K; b=2";
        assert_eq!(origin_cookies(h, None).as_deref(), Some("a=1; b=2"));
        assert_eq!(
            origin_cookies(h, Some("shop")).as_deref(),
            Some("a=1; __Host-anteroom-shop=J; b=2")
        );
        assert_eq!(origin_cookies("anteroom-shop=J", None), None);
        assert_eq!(
            origin_cookies("xanteroom-shop=J; anteroom=1", None).as_deref(),
            Some("xanteroom-shop=J; anteroom=1")
        );
    }
}
