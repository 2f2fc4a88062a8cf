//! What the waiting room says besides the numbers: the queue's display name, its text logo
//! and the operator's message to the people waiting. The limits the private API checks, and
//! the two rules the default page (Rust, `edge-worker/src/page.rs`) and its script
//! (`AnteroomRules` in `edge-worker/assets/app.js`) must agree on: how the name and the logo
//! read as one line ([`what`], [`page_title`]) and which language of a message a page shows
//! ([`notice_text`]). Both sides are checked against `shared/test-vectors/page-rules.json`.
//!
//! All three are plain text: the page escapes them, and control characters and the Unicode
//! controls that reorder text (bidi overrides and isolates) are refused, so a message cannot
//! break the layout or make one text read as another.

use crate::wire::Notice;

/// Longest display name, characters (Unicode scalar values).
pub const MAX_DISPLAY_NAME: usize = 80;
/// Longest text logo, characters.
pub const MAX_LOGO_TEXT: usize = 40;
/// Longest message per language, characters: about three lines on a 360 px phone.
pub const MAX_NOTICE: usize = 280;

/// Why a text was refused; the message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError(pub String);

impl core::fmt::Display for TextError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TextError {}

/// Whether `c` may not appear in shown text: C0 and C1 controls (line breaks included: one
/// paragraph each), and the bidi embeddings, overrides and isolates.
fn refused(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Checks one text: not blank (`null` clears a field), at most `max` characters, no refused
/// character. `empty_ok` for one language of a message.
fn check(field: &str, text: &str, max: usize, empty_ok: bool) -> Result<(), TextError> {
    if text.trim().is_empty() && !(empty_ok && text.is_empty()) {
        return Err(TextError(format!("{field} is blank; send null to clear it")));
    }
    if text.chars().count() > max {
        return Err(TextError(format!("{field} is longer than {max} characters")));
    }
    if text.chars().any(refused) {
        return Err(TextError(format!(
            "{field} contains a control character (line breaks and bidi controls included); \
             it is plain text on one line"
        )));
    }
    Ok(())
}

/// Checks a queue's display name.
pub fn check_display_name(name: &str) -> Result<(), TextError> {
    check("display_name", name, MAX_DISPLAY_NAME, false)
}

/// Checks a queue's text logo.
pub fn check_logo_text(logo: &str) -> Result<(), TextError> {
    check("logo_text", logo, MAX_LOGO_TEXT, false)
}

/// Checks a message: each language as a text (either may be empty), not both empty.
pub fn check_notice(n: &Notice) -> Result<(), TextError> {
    if n.en.is_empty() && n.zh.is_empty() {
        return Err(TextError("notice needs en or zh text; send null to clear it".into()));
    }
    check("notice.en", &n.en, MAX_NOTICE, true)?;
    check("notice.zh", &n.zh, MAX_NOTICE, true)
}

/// What the visitor waits for, as one line: `Riverside Tickets: The Night Orchestra`, or
/// whichever of the two is set; empty when neither is.
pub fn what(logo_text: Option<&str>, display_name: Option<&str>) -> String {
    match (logo_text.filter(|s| !s.is_empty()), display_name.filter(|s| !s.is_empty())) {
        (Some(l), Some(n)) => format!("{l}: {n}"),
        (Some(s), None) | (None, Some(s)) => s.to_owned(),
        (None, None) => String::new(),
    }
}

/// The page's title: the state's headline, then what the visitor waits for when known
/// (`You are in the queue · Riverside Tickets: The Night Orchestra`).
pub fn page_title(headline: &str, what: &str) -> String {
    if what.is_empty() { headline.to_owned() } else { format!("{headline} · {what}") }
}

/// The message in the page's language (`zh` or anything else for English), or the other
/// language when that one is empty; empty without a message.
pub fn notice_text<'a>(notice: Option<&'a Notice>, lang: &str) -> &'a str {
    let Some(n) = notice else { return "" };
    let (first, second) = if lang == "zh" { (&n.zh, &n.en) } else { (&n.en, &n.zh) };
    if first.is_empty() { second } else { first }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(en: &str, zh: &str) -> Notice {
        Notice { en: en.into(), zh: zh.into() }
    }

    #[test]
    fn texts_are_plain_one_line_and_bounded() {
        let ok = |r: Result<(), TextError>| r.is_ok();
        assert!(ok(check_display_name("The Night Orchestra")));
        assert!(ok(check_display_name("夜之管弦乐团 <b>&</b>")), "markup is text: escaped");
        assert!(ok(check_display_name(&"é".repeat(MAX_DISPLAY_NAME))), "characters, not bytes");
        assert!(!ok(check_display_name(&"a".repeat(MAX_DISPLAY_NAME + 1))));
        assert!(!ok(check_display_name("")));
        assert!(!ok(check_display_name("   ")));
        for bad in ["a\nb", "a\rb", "a\tb", "a\u{0}b", "a\u{85}b", "a\u{202e}b", "a\u{2067}b"] {
            let e = check_logo_text(bad).expect_err(bad);
            assert!(e.0.starts_with("logo_text contains a control character"), "{e}");
        }
        assert!(ok(check_logo_text(&"x".repeat(MAX_LOGO_TEXT))));
        assert!(!ok(check_logo_text(&"x".repeat(MAX_LOGO_TEXT + 1))));
        assert!(ok(check_notice(&notice("Doors open at 8", ""))));
        assert!(ok(check_notice(&notice("", "八点开门"))));
        assert!(!ok(check_notice(&notice("", ""))));
        assert!(!ok(check_notice(&notice(" ", "八点开门"))), "blank is not empty");
        let long = check_notice(&notice("ok", &"长".repeat(MAX_NOTICE + 1))).expect_err("long");
        assert_eq!(long.0, "notice.zh is longer than 280 characters");
    }

    #[test]
    fn the_name_line_and_the_message_language() {
        assert_eq!(
            what(Some("Riverside Tickets"), Some("The Night Orchestra")),
            "Riverside Tickets: The Night Orchestra"
        );
        assert_eq!(what(None, Some("The Night Orchestra")), "The Night Orchestra");
        assert_eq!(what(Some("Riverside Tickets"), Some("")), "Riverside Tickets");
        assert_eq!(what(None, None), "");
        assert_eq!(page_title("Your turn", "Riverside Tickets"), "Your turn · Riverside Tickets");
        assert_eq!(page_title("Your turn", ""), "Your turn");
        let n = notice("Doors at 8", "八点开门");
        assert_eq!(notice_text(Some(&n), "zh"), "八点开门");
        assert_eq!(notice_text(Some(&n), "en"), "Doors at 8");
        assert_eq!(notice_text(Some(&notice("Doors at 8", "")), "zh"), "Doors at 8");
        assert_eq!(notice_text(Some(&notice("", "八点开门")), "en"), "八点开门");
        assert_eq!(notice_text(None, "en"), "");
    }
}
