//! Server-rendered HTML: one layout with a small inline stylesheet, and the shop's pages.
//!
//! Every value that comes from a request or a token is escaped. Elements browser tests
//! look for carry `data-testid`.

use chrono::DateTime;

/// Price of one ticket, euro cents.
pub const PRICE_CENTS: u64 = 4_500;
/// Most tickets per purchase.
pub const MAX_QUANTITY: u64 = 4;

const STYLE: &str = r#"
:root{color-scheme:light;--fg:#1b1f24;--muted:#4a5058;--bg:#fff;--card:#f3f5f7;--line:#c9ced4;--accent:#0b57d0;--accent-fg:#fff;--ok:#0d652d}
*{box-sizing:border-box}
body{margin:0;font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{border-bottom:1px solid var(--line);padding:.75rem 1rem}
header p{margin:0;font-weight:700}
main{max-width:40rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;line-height:1.25;margin:.5rem 0 1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:1rem;margin:1rem 0}
.muted{color:var(--muted)}
.big{font-size:1.25rem}
.ok{color:var(--ok)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dt{font-weight:600}dd{margin:0}
label{display:block;font-weight:600;margin-bottom:.25rem}
select{font:inherit;min-height:2.75rem;padding:.25rem .5rem;border:1px solid var(--muted);border-radius:.375rem;background:var(--bg);color:var(--fg)}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1rem;align-items:center}
.button,button{display:inline-flex;align-items:center;justify-content:center;min-height:2.75rem;padding:.5rem 1.25rem;font:inherit;font-weight:600;border-radius:.375rem;border:2px solid var(--accent);background:var(--accent);color:var(--accent-fg);text-decoration:none;cursor:pointer}
.secondary{background:var(--bg);color:var(--fg);border-color:var(--muted)}
a{color:var(--accent)}
:focus-visible{outline:3px solid #e37400;outline-offset:2px}
form{margin:0}
@media (max-width:30rem){.actions>*{flex:1 1 100%}.actions form button{width:100%}}
"#;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
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

/// A whole page around `main` (already escaped HTML).
pub fn layout(title: &str, main: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · Riverside Tickets</title><style>{STYLE}</style></head>\
<body><header><p>Riverside Tickets</p></header><main>{main}</main></body></html>\n",
        title = escape(title),
    )
}

fn euros(cents: u64) -> String {
    format!("€{}.{:02}", cents / 100, cents % 100)
}

/// `2026-11-22T05:12:00Z` and `05:12 UTC` for a unix time.
fn times(unix: i64) -> (String, String) {
    match DateTime::from_timestamp(unix, 0) {
        Some(t) => (t.format("%Y-%m-%dT%H:%M:%SZ").to_string(), t.format("%H:%M UTC").to_string()),
        None => (String::new(), "unknown".into()),
    }
}

/// What the pages show of a verified visitor.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// Their place in line (`qpos`).
    pub position: u64,
    /// When their token expires, unix seconds.
    pub expires_at: i64,
    /// Now, unix seconds.
    pub now: i64,
}

fn session_card(s: Session) -> String {
    let (iso, clock) = times(s.expires_at);
    let minutes = ((s.expires_at - s.now).max(0) + 59) / 60;
    let plural = if minutes == 1 { "" } else { "s" };
    format!(
        "<section class=\"card\" aria-labelledby=\"visit\"><h2 id=\"visit\" class=\"big\">Your visit</h2><dl>\
<dt>Place in line</dt><dd data-testid=\"position\">#{pos}</dd>\
<dt>Session ends</dt><dd><time data-testid=\"session-expiry\" datetime=\"{iso}\">{clock}</time> \
<span class=\"muted\">(about {minutes} minute{plural})</span></dd></dl></section>",
        pos = s.position,
    )
}

const LEAVE: &str = "<form method=\"post\" action=\"/leave\"><button type=\"submit\" class=\"secondary\" \
data-testid=\"leave-button\">Leave and give my place to the next person</button></form>";

/// `/`: the product page.
pub fn product(s: Session) -> String {
    let main = format!(
        "<h1>Concert tickets</h1>\
<p class=\"big\">The Night Orchestra, live at Riverside Hall</p>\
<p class=\"muted\">Saturday 12 December 2026, doors 19:00. Standing, general admission. \
{price} per ticket, up to {MAX_QUANTITY} per order.</p>\
<p class=\"ok\" role=\"status\">You made it through the waiting room. It's your turn to buy.</p>\
{card}\
<div class=\"actions\"><a class=\"button\" href=\"/checkout\" data-testid=\"buy-link\">Buy tickets</a>{LEAVE}</div>",
        price = euros(PRICE_CENTS),
        card = session_card(s),
    );
    layout("Concert tickets", &main)
}

/// `GET /checkout`: the purchase form.
pub fn checkout(s: Session) -> String {
    let options: String = (1..=MAX_QUANTITY)
        .map(|n| {
            let sel = if n == 1 { " selected" } else { "" };
            format!("<option value=\"{n}\"{sel}>{n} ({})</option>", euros(n * PRICE_CENTS))
        })
        .collect();
    let main = format!(
        "<h1>Checkout</h1>\
<p>The Night Orchestra, Riverside Hall, Saturday 12 December 2026.</p>\
{card}\
<form method=\"post\" action=\"/checkout\" class=\"card\">\
<label for=\"quantity\">Number of tickets</label>\
<select id=\"quantity\" name=\"quantity\" data-testid=\"quantity\">{options}</select>\
<p class=\"muted\">This is a demo: no payment is taken.</p>\
<div class=\"actions\"><button type=\"submit\" data-testid=\"checkout-button\">Complete purchase</button></div>\
</form>\
<div class=\"actions\">{LEAVE}</div>",
        card = session_card(s),
    );
    layout("Checkout", &main)
}

/// After a purchase.
pub fn thank_you(quantity: u64, order: &str) -> String {
    let plural = if quantity == 1 { "" } else { "s" };
    let main = format!(
        "<h1 data-testid=\"thank-you\">Thank you for your purchase</h1>\
<p class=\"big\">{quantity} ticket{plural} for The Night Orchestra, {total}.</p>\
<p>Order reference: <code data-testid=\"order-ref\">{order}</code></p>\
<p class=\"muted\">Your visit is complete and your place has gone to the next person in line. \
To buy more, join the line again.</p>",
        total = euros(quantity * PRICE_CENTS),
        order = escape(order),
    );
    layout("Thank you", &main)
}

/// After leaving.
pub fn left() -> String {
    let main = "<h1 data-testid=\"left-message\">You left the shop</h1>\
<p>Your place has gone to the next person in line. Nothing was bought.</p>\
<p class=\"muted\">You can join the line again at any time.</p>";
    layout("You left", main)
}

/// Why a visitor is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token, or one that does not verify.
    NoAccess,
    /// A valid token whose session this shop has already ended.
    SessionOver,
}

/// 401: go through the waiting room.
pub fn refused(why: Refusal, join_url: Option<&str>) -> String {
    let join = match join_url {
        Some(u) => format!(
            "<div class=\"actions\"><a class=\"button\" href=\"{}\" data-testid=\"join-link\">Join the line</a></div>",
            escape(u)
        ),
        None => String::new(),
    };
    let main = match why {
        Refusal::NoAccess => format!(
            "<h1 data-testid=\"refused\">Please go through the waiting room</h1>\
<p>This shop only serves visitors admitted by its waiting room. Your visit has no valid pass \
here: it is missing, has expired, or is not for this shop.</p>\
<p class=\"muted\">Open the shop's public address to take your place in line; \
you will be brought here when it is your turn.</p>{join}"
        ),
        Refusal::SessionOver => format!(
            "<h1 data-testid=\"refused\">Your visit has ended</h1>\
<p>You already completed or left this visit. To buy again, join the line again.</p>{join}"
        ),
    };
    layout("Waiting room required", &main)
}

/// Any other error page: a title and one safe sentence.
pub fn error(title: &str, message: &str) -> String {
    let main = format!(
        "<h1 data-testid=\"error\">{}</h1><p>{}</p><p><a href=\"/\">Back to the shop</a></p>",
        escape(title),
        escape(message)
    );
    layout(title, &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let p = thank_you(2, "<script>");
        assert!(p.contains("&lt;script&gt;") && !p.contains("<script>"));
        assert!(p.contains("€90.00"));
    }

    #[test]
    fn pages_carry_test_ids() {
        let s = Session { position: 42, expires_at: 1_790_000_300, now: 1_790_000_000 };
        let p = product(s);
        for id in ["position", "session-expiry", "buy-link", "leave-button"] {
            assert!(p.contains(&format!("data-testid=\"{id}\"")), "{id}");
        }
        assert!(p.contains(">#42<"));
        assert!(p.contains("(about 5 minutes)"));
        let c = checkout(s);
        assert!(
            c.contains("data-testid=\"checkout-button\"") && c.contains("<label for=\"quantity\">")
        );
        assert!(left().contains("data-testid=\"left-message\""));
        assert!(
            refused(Refusal::NoAccess, Some("https://x/\"")).contains("href=\"https://x/&quot;\"")
        );
    }
}
