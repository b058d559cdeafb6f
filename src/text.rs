//! The one text policy for every field that comes from outside (import,
//! registrar API, config, DNS data shown to people), and the escaping that
//! outputs (WHOIS, CLI messages, logs) apply as a second line of defence.
//!
//! Refused everywhere: Unicode general categories Cc (controls, including
//! terminal escapes), Cf (format characters: bidi overrides such as U+202E,
//! zero-width joiners, BOM), Zl and Zp (U+2028 / U+2029, which Python's
//! `splitlines()` and JavaScript's `/m` regexes treat as line breaks, so a
//! value holding one could forge a WHOIS line). Each field also has a length
//! limit in characters, and some a format (e-mail, phone, URL).

use std::borrow::Cow;

use icu_properties::props::GeneralCategory;
use icu_properties::CodePointMapData;

/// Longest free-text value (names, organisations, city, region), in characters.
pub const MAX_TEXT: usize = 255;
/// Longest postal code.
pub const MAX_POSTAL_CODE: usize = 32;
/// Most street lines of an address (EPP, RFC 5733 §2.4: up to three).
pub const MAX_STREET_LINES: usize = 3;
/// Longest e-mail address (RFC 5321 §4.5.3.1.3 path limit less the brackets).
pub const MAX_EMAIL: usize = 254;
/// Longest URL.
pub const MAX_URL: usize = 255;
/// Longest phone number in EPP form (`+CCC.` + 14 digits, RFC 5733 §2.5).
pub const MAX_PHONE: usize = 17;

/// Why a value was refused; the text names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} is empty; omit it or use null")]
    Empty { field: String },
    #[error("{field} is {len} characters long; the limit is {max}")]
    TooLong {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("{field} has {count} entries; the limit is {max}")]
    TooMany {
        field: String,
        count: usize,
        max: usize,
    },
    #[error("{field} contains {} ({}), which is not allowed in text (control, format, line or paragraph separator character)", escape_char(*.ch), category_name(*.ch))]
    Forbidden { field: String, ch: char },
    #[error("{field} is not a valid {what}: {reason}")]
    Format {
        field: String,
        what: &'static str,
        reason: String,
    },
}

/// True for the characters no text field may hold: general categories Cc,
/// Cf, Zl, Zp.
pub fn is_forbidden(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

fn category_name(c: char) -> &'static str {
    match CodePointMapData::<GeneralCategory>::new().get(c) {
        GeneralCategory::Control => "Cc, control",
        GeneralCategory::Format => "Cf, format",
        GeneralCategory::LineSeparator => "Zl, line separator",
        GeneralCategory::ParagraphSeparator => "Zp, paragraph separator",
        _ => "other",
    }
}

/// `U+XXXX` for messages: the character itself may be invisible or harmful.
fn escape_char(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// One line of free text: non-blank, at most `max` characters, no forbidden
/// character.
pub fn check_line(field: &str, value: &str, max: usize) -> Result<(), TextError> {
    if let Some(ch) = value.chars().find(|c| is_forbidden(*c)) {
        return Err(TextError::Forbidden {
            field: field.to_string(),
            ch,
        });
    }
    if value.trim().is_empty() {
        return Err(TextError::Empty {
            field: field.to_string(),
        });
    }
    let len = value.chars().count();
    if len > max {
        return Err(TextError::TooLong {
            field: field.to_string(),
            len,
            max,
        });
    }
    Ok(())
}

/// At most `max` entries in a list field.
pub fn check_count(field: &str, count: usize, max: usize) -> Result<(), TextError> {
    if count > max {
        return Err(TextError::TooMany {
            field: field.to_string(),
            count,
            max,
        });
    }
    Ok(())
}

fn format_err(field: &str, what: &'static str, reason: impl Into<String>) -> TextError {
    TextError::Format {
        field: field.to_string(),
        what,
        reason: reason.into(),
    }
}

/// An e-mail address: `local@domain`, no spaces, the domain a host name.
pub fn check_email(field: &str, value: &str) -> Result<(), TextError> {
    check_line(field, value, MAX_EMAIL)?;
    let what = "e-mail address";
    let (local, domain) = value
        .rsplit_once('@')
        .ok_or_else(|| format_err(field, what, "no '@'"))?;
    if local.is_empty() || local.contains('@') {
        return Err(format_err(
            field,
            what,
            "needs exactly one '@' after a local part",
        ));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(format_err(field, what, "contains white space"));
    }
    crate::names::parse_host(domain)
        .map_err(|e| format_err(field, what, format!("domain part: {e}")))?;
    Ok(())
}

/// A phone number in the EPP form `+CC.NUMBER` (RFC 5733 §2.5), with an
/// optional `x` extension.
pub fn check_phone(field: &str, value: &str) -> Result<(), TextError> {
    check_line(field, value, MAX_PHONE + 8)?;
    let what = "phone number";
    let (main, ext) = match value.split_once('x') {
        Some((m, e)) => (m, Some(e)),
        None => (value, None),
    };
    let rest = main.strip_prefix('+').ok_or_else(|| {
        format_err(
            field,
            what,
            "must start with '+' and a country code, e.g. +7.4951234567",
        )
    })?;
    let (cc, num) = rest
        .split_once('.')
        .ok_or_else(|| format_err(field, what, "must be +CC.NUMBER, e.g. +7.4951234567"))?;
    let digits = |s: &str, lo: usize, hi: usize| {
        (lo..=hi).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(cc, 1, 3) || !digits(num, 1, 14) || main.len() > MAX_PHONE {
        return Err(format_err(
            field,
            what,
            "must be +CC.NUMBER with a 1–3 digit country code and up to 14 digits (RFC 5733)",
        ));
    }
    if let Some(e) = ext {
        if !digits(e, 1, 7) {
            return Err(format_err(
                field,
                what,
                "the extension after 'x' must be 1–7 digits",
            ));
        }
    }
    Ok(())
}

/// A URL people will follow from WHOIS and RDAP: `http` or `https` with a
/// host, nothing else (`javascript:`, `data:`, `file:` …).
pub fn check_url(field: &str, value: &str) -> Result<(), TextError> {
    check_line(field, value, MAX_URL)?;
    let what = "URL";
    if value.chars().any(char::is_whitespace) {
        return Err(format_err(field, what, "contains white space"));
    }
    let u = url::Url::parse(value).map_err(|e| format_err(field, what, e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format_err(
            field,
            what,
            format!("scheme '{}' is not allowed; use http or https", u.scheme()),
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format_err(field, what, "has no host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format_err(
            field,
            what,
            "must not carry a user name or password",
        ));
    }
    Ok(())
}

/// Escape every forbidden character as `\u{XXXX}`: for values printed to
/// WHOIS, terminals and logs, which must stay one line each whatever got
/// stored.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_keeping(s, false)
}

/// Like [`escape`], but line feeds stay: for multi-line messages whose
/// lines were each escaped already (the CLI's import report).
pub fn escape_keeping_newlines(s: &str) -> Cow<'_, str> {
    escape_keeping(s, true)
}

fn escape_keeping(s: &str, keep_lf: bool) -> Cow<'_, str> {
    let bad = |c: char| is_forbidden(c) && !(keep_lf && c == '\n');
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A `tracing` writer that escapes forbidden characters in each log record
/// except the line feed that ends it, so a value that reached a log (a
/// hostile query, a name from a DNS reply) cannot forge log lines or send
/// escape sequences to an operator's terminal. Escapes are `\uXXXX` (UTF-16,
/// as JSON writes them), so JSON log lines stay valid JSON.
pub struct LogWriter<W> {
    inner: W,
    /// Let ESC through: the formatter's own colour codes when it writes to
    /// a terminal (it escapes ESC inside values itself).
    keep_esc: bool,
}

impl<W> LogWriter<W> {
    pub fn new(inner: W, keep_esc: bool) -> Self {
        Self { inner, keep_esc }
    }
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: std::io::Write> std::io::Write for LogWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (&*text, ""),
        };
        let bad = |c: char| is_forbidden(c) && !(self.keep_esc && c == '\u{1b}');
        if !body.chars().any(bad) {
            self.inner.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = String::with_capacity(buf.len() + 16);
        for c in body.chars() {
            if bad(c) {
                for u in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{:04x}", u));
                }
            } else {
                out.push(c);
            }
        }
        out.push_str(end);
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forbidden_categories() {
        for c in [
            '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}', '\u{2029}', '\u{202e}',
            '\u{200b}', '\u{200d}', '\u{feff}', '\u{2066}', '\u{61c}',
        ] {
            assert!(is_forbidden(c), "{c:?}");
        }
        for c in ['a', ' ', 'ё', 'Я', '€', '☃', '\u{a0}'] {
            assert!(!is_forbidden(c), "{c:?}");
        }
    }

    #[test]
    fn lines_name_the_field_and_rule() {
        let e = check_line("org", "ACME\u{2028}state: DELEGATED", MAX_TEXT).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("org") && m.contains("U+2028") && m.contains("Zl"),
            "{m}"
        );
        let m = check_line("org", "abc\u{202e}cba", MAX_TEXT)
            .unwrap_err()
            .to_string();
        assert!(m.contains("U+202E") && m.contains("Cf"), "{m}");
        let m = check_line("name", &"я".repeat(256), MAX_TEXT)
            .unwrap_err()
            .to_string();
        assert!(m.contains("256 characters") && m.contains("255"), "{m}");
        // Characters, not bytes: 255 Cyrillic letters are fine.
        check_line("name", &"я".repeat(255), MAX_TEXT).unwrap();
        assert!(matches!(
            check_line("x", "  ", 9),
            Err(TextError::Empty { .. })
        ));
    }

    #[test]
    fn urls() {
        for ok in [
            "https://www.reg.ru",
            "http://r.example/path?q=1",
            "HTTPS://X.EXAMPLE",
        ] {
            check_url("url", ok).unwrap();
        }
        for (bad, why) in [
            ("javascript:alert(1)", "scheme 'javascript'"),
            ("data:text/html,x", "scheme 'data'"),
            ("file:///etc/passwd", "scheme 'file'"),
            ("ftp://x.example", "scheme 'ftp'"),
            ("www.reg.ru", "URL"),
            ("https://user:pw@x.example", "password"),
            ("https://x.example/\u{2028}", "U+2028"),
            ("https://x.example/a b", "white space"),
        ] {
            let m = check_url("url", bad).unwrap_err().to_string();
            assert!(m.contains(why) && m.starts_with("url"), "{bad}: {m}");
        }
    }

    #[test]
    fn emails_and_phones() {
        check_email("email", "abuse@reg.ru").unwrap();
        check_email("email", "ivan@пример.рф").unwrap();
        for bad in [
            "abuse",
            "@reg.ru",
            "a@b@c.ru",
            "a b@reg.ru",
            "a@localhost",
            "a@",
        ] {
            assert!(check_email("email", bad).is_err(), "{bad}");
        }
        for ok in ["+7.4951234567", "+1.5555550100x123", "+380.441234567"] {
            check_phone("phone", ok).unwrap();
        }
        for bad in [
            "84951234567",
            "+7 495 123",
            "+7.",
            "+1234.5",
            "+7.123456789012345",
            "+7.1x",
        ] {
            assert!(check_phone("phone", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("plain C:\\path"), "plain C:\\path");
        assert_eq!(escape("a\nb"), "a\\u{000a}b");
        assert_eq!(escape("a\u{2028}b\\"), "a\\u{2028}b\\");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{001b}[31mred");
        assert_eq!(escape_keeping_newlines("a\nb\u{1b}"), "a\nb\\u{001b}");
    }

    #[test]
    fn log_writer_keeps_one_line_per_record() {
        use std::io::Write;
        let mut w = LogWriter::new(Vec::new(), false);
        w.write_all("query \"x\nstate: DELEGATED\" \x1b[2J \u{2028}\n".as_bytes())
            .unwrap();
        let out = String::from_utf8(w.into_inner()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.ends_with('\n') && !out.contains('\u{1b}'), "{out}");
        assert!(out.contains("\\u000a") && out.contains("\\u2028"), "{out}");
        // JSON log lines stay valid JSON.
        let mut w = LogWriter::new(Vec::new(), false);
        w.write_all("{\"q\":\"a\u{2028}\u{e0001}\"}\n".as_bytes())
            .unwrap();
        let out = String::from_utf8(w.into_inner()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["q"], "a\u{2028}\u{e0001}");
    }

    proptest! {
        #[test]
        fn escaped_text_has_no_forbidden_char(s in any::<String>()) {
            let e = escape(&s);
            prop_assert!(!e.chars().any(is_forbidden));
            if check_line("f", &s, usize::MAX).is_ok() {
                prop_assert_eq!(e.as_ref(), s.as_str());
            }
        }
    }
}
