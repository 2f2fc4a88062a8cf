//! Waiting-room page templates: `{{name}}` placeholders, the list of names a template may use
//! (the coordinator refuses others when an operator uploads a template) and a one-pass renderer
//! (a value is never scanned for placeholders again, so text from a visitor or an operator
//! cannot inject one).

/// Longest template an operator may set, bytes.
pub const MAX_TEMPLATE_BYTES: usize = 32 * 1024;

/// Every variable a template may use, with what the edge puts there. Values are HTML-escaped
/// unless marked raw. The page script finds its elements by the `anteroom-*` ids of the
/// default template; a template that keeps `{{script}}` must keep those ids.
pub const VARIABLES: [(&str, &str); 34] = [
    ("lang", "page language, `en` or `zh` (from Accept-Language)"),
    ("title", "headline for the visitor's state (in the queue, your turn, expired)"),
    ("message", "one sentence under the headline (people ahead, deadline to claim)"),
    ("css", "URL of the default stylesheet"),
    ("pow", "URL of the proof-of-work solver (read by the page script)"),
    ("script", "raw: the `<script>` tag of the page script; empty on pages without it"),
    ("queue", "the queue's slug"),
    ("prefix", "the worker's route prefix"),
    ("return_to", "the same-site path the visitor asked for and returns to once admitted"),
    ("strings", "the page script's strings in the page language, JSON"),
    ("state", "`new`, `pending`, `waiting`, `ready` or `expired`"),
    ("ticket", "the visitor's ticket (`request_id`) from their cookie, or empty"),
    ("position", "the visitor's place in line, or `–`"),
    ("ahead", "people ahead of the visitor, or `–`"),
    ("eta", "estimated wait band (e.g. `2 min – 4 min`), or `–`"),
    ("claim_by", "unix seconds by which an admitted visitor must claim the place, or empty"),
    ("refresh", "seconds until a page without JavaScript reloads itself"),
    ("place_hidden", "raw: `hidden` while there is no place to show, else empty"),
    ("nojs", "raw: what a visitor without JavaScript can do now (join, claim or rejoin form)"),
    ("s_position", "label: place in line"),
    ("s_ahead", "label: people ahead"),
    ("s_eta", "label: estimated wait"),
    ("s_progress", "label: progress since joining"),
    ("s_noscript", "text shown to visitors without JavaScript when they cannot join"),
    ("s_notify", "label: notify me when it is my turn"),
    ("s_sound", "label: play a sound when it is my turn"),
    ("serving_pos", "the queue's serving position"),
    ("waiting_num", "visitors waiting in the queue"),
    ("display_name", "what the visitor waits for (the queue's `display_name`), or empty"),
    ("logo_text", "the site's name as a text logo (the queue's `logo_text`), or empty"),
    ("brand_hidden", "raw: `hidden` when the queue has neither a display name nor a logo text"),
    ("notice", "the operator's message in the page language (or the other one), or empty"),
    ("notice_hidden", "raw: `hidden` when there is no message, else empty"),
    ("doc_title", "the page title with what the visitor waits for (`Riverside Tickets: ...`)"),
];

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// Larger than [`MAX_TEMPLATE_BYTES`].
    TooLarge,
    /// `{{` without a matching `}}`.
    Unclosed,
    /// A placeholder not in [`VARIABLES`].
    Unknown(String),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::TooLarge => {
                write!(f, "template is larger than {MAX_TEMPLATE_BYTES} bytes")
            }
            TemplateError::Unclosed => write!(f, "template has a {{{{ without }}}}"),
            TemplateError::Unknown(n) => write!(f, "template uses unknown variable {{{{{n}}}}}"),
        }
    }
}

impl std::error::Error for TemplateError {}

/// Splits `t` into literal text and placeholder names, in order.
fn parts(t: &str) -> impl Iterator<Item = Result<Part<'_>, TemplateError>> {
    let mut rest = t;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find("{{") {
            Some(0) => {
                let Some(end) = rest.find("}}") else {
                    rest = "";
                    return Some(Err(TemplateError::Unclosed));
                };
                let name = rest[2..end].trim();
                rest = &rest[end + 2..];
                Some(Ok(Part::Var(name)))
            }
            Some(i) => {
                let (lit, tail) = rest.split_at(i);
                rest = tail;
                Some(Ok(Part::Text(lit)))
            }
            None => {
                let lit = rest;
                rest = "";
                Some(Ok(Part::Text(lit)))
            }
        }
    })
}

enum Part<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Checks an operator's template: size, closed placeholders, known names only.
pub fn check(t: &str) -> Result<(), TemplateError> {
    if t.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError::TooLarge);
    }
    for part in parts(t) {
        if let Part::Var(name) = part?
            && !VARIABLES.iter().any(|(v, _)| *v == name)
        {
            return Err(TemplateError::Unknown(name.chars().take(40).collect()));
        }
    }
    Ok(())
}

/// Renders `t`, replacing each placeholder by `value(name)` (already escaped by the caller);
/// an unknown or unclosed placeholder renders as nothing. One pass: values are not rescanned.
pub fn render<'v>(t: &str, value: impl Fn(&str) -> Option<&'v str>) -> String {
    let mut out = String::with_capacity(t.len() + 1024);
    for part in parts(t) {
        match part {
            Ok(Part::Text(s)) => out.push_str(s),
            Ok(Part::Var(name)) => out.push_str(value(name).unwrap_or("")),
            Err(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(name: &str) -> Option<&'static str> {
        match name {
            "title" => Some("Hi {{position}}"),
            "position" => Some("7"),
            _ => None,
        }
    }

    #[test]
    fn placeholders_are_replaced_once_and_values_are_not_rescanned() {
        assert_eq!(
            render("<h1>{{title}}</h1><b>{{ position }}</b>", values),
            "<h1>Hi {{position}}</h1><b>7</b>"
        );
        assert_eq!(render("no vars", values), "no vars");
        assert_eq!(render("{{ahead}}|", values), "|");
        assert_eq!(render("a {{title", values), "a ");
    }

    #[test]
    fn check_refuses_unknown_unclosed_and_oversized_templates() {
        assert_eq!(check("<p>{{position}} {{ahead}} {{script}}</p>"), Ok(()));
        assert_eq!(check("<p>{{postion}}</p>"), Err(TemplateError::Unknown("postion".into())));
        assert_eq!(check("<p>{{position</p>"), Err(TemplateError::Unclosed));
        assert_eq!(check(&"x".repeat(MAX_TEMPLATE_BYTES + 1)), Err(TemplateError::TooLarge));
        assert_eq!(check(&"x".repeat(MAX_TEMPLATE_BYTES)), Ok(()));
    }

    #[test]
    fn the_variable_names_are_unique() {
        for (i, (a, _)) in VARIABLES.iter().enumerate() {
            assert!(VARIABLES[i + 1..].iter().all(|(b, _)| a != b), "{a} twice");
        }
    }
}
