//! HTML building blocks: escaping, the page frame, formatting of times and
//! durations. Everything that comes from the store or the network goes
//! through [`esc`].

use std::fmt::Write as _;

use chrono::SecondsFormat;

use crate::model::{DelegationState, Severity, Timestamp};

/// Seconds between automatic reloads.
pub const REFRESH_SECS: u32 = 30;

/// Escape text for HTML element content and quoted attribute values. The
/// text policy's forbidden characters (controls, bidi and other format
/// characters, line/paragraph separators) become U+FFFD, so a stored value
/// that slipped past the input policy still cannot reorder or hide text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c != '\n' && c != '\t' && crate::text::is_forbidden(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode a domain name for a URL path segment. Stored names are
/// A-labels (LDH), so this is a guard, not a transformation.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

pub fn time(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `<time>` element: readable text, machine-readable attribute.
pub fn time_el(t: Timestamp) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        t.to_rfc3339_opts(SecondsFormat::Secs, true),
        time(t)
    )
}

pub fn opt_time(t: Option<Timestamp>) -> String {
    t.map(time_el).unwrap_or_else(|| "—".into())
}

/// A duration in its two largest units: `3d 4h`, `2h 5m`, `45s`.
pub fn duration(secs: i64) -> String {
    if secs < 0 {
        return format!("−{}", duration(-secs));
    }
    let (d, h, m, s) = (
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s > 0 => format!("{m}m {s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

pub fn state_badge(s: DelegationState) -> String {
    format!(
        "<span class=\"badge st-{0}\">{1}</span>",
        s.as_str(),
        s.as_str().replace('_', " ")
    )
}

pub fn severity_badge(s: Severity) -> String {
    format!("<span class=\"sev sev-{0}\">{0}</span>", s.as_str())
}

const CSS: &str = r#"
:root{--fg:#1a1a1a;--muted:#4a4a4a;--bg:#fff;--line:#c8c8c8;--head:#f2f4f7;--link:#0b4fa8;
--ok:#1b5e20;--okbg:#e3f1e4;--bad:#a3151b;--badbg:#fbe4e5;--warn:#6b4500;--warnbg:#fdf0d5;--idle:#3d3d3d;--idlebg:#ececec}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--fg);background:var(--bg)}
header{background:#14325c;color:#fff;padding:.8rem 1.5rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center;justify-content:space-between}
header a{color:#fff}
header h1{font-size:1.25rem;margin:0}
header form{display:flex;gap:.4rem;align-items:center}
header input[type=search]{padding:.3rem .5rem;border:1px solid #8aa0c0;border-radius:3px;min-width:16rem}
header button{padding:.3rem .8rem;border:1px solid #fff;background:#fff;color:#14325c;border-radius:3px;cursor:pointer}
main{padding:1rem 1.5rem 3rem;max-width:1400px}
h2{font-size:1.15rem;margin:1.6rem 0 .6rem;border-bottom:2px solid var(--line);padding-bottom:.2rem}
h3{font-size:1rem;margin:1rem 0 .4rem}
a{color:var(--link)}
a:focus,button:focus,input:focus{outline:3px solid #f5a623;outline-offset:2px}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}
th,td{border:1px solid var(--line);padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:var(--head)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:.2rem 0;color:var(--muted)}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:.6rem 0}
.card{border:1px solid var(--line);border-radius:6px;padding:.6rem .9rem;min-width:9.5rem}
.card .n{font-size:1.7rem;font-weight:700;font-variant-numeric:tabular-nums}
.card .l{color:var(--muted)}
.badge,.sev{display:inline-block;padding:0 .45rem;border-radius:3px;font-size:.85rem;font-weight:600;white-space:nowrap}
.st-delegated{background:var(--okbg);color:var(--ok)}
.st-testing{background:var(--warnbg);color:var(--warn)}
.st-test_failed,.st-suspended{background:var(--badbg);color:var(--bad)}
.st-undelegated{background:var(--idlebg);color:var(--idle)}
.sev-error{background:var(--badbg);color:var(--bad)}
.sev-warning{background:var(--warnbg);color:var(--warn)}
.sev-notice{background:var(--idlebg);color:var(--idle)}
.pass{color:var(--ok);font-weight:600}
.fail{color:var(--bad);font-weight:600}
.warn{color:var(--warn);font-weight:600}
.banner{padding:.5rem .8rem;border-radius:4px;background:var(--warnbg)}
.bar{display:inline-block;height:.7rem;background:#e0e0e0;border-radius:2px;width:8rem;vertical-align:middle;overflow:hidden}
.bar span{display:block;height:100%;background:#14325c}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:.4rem 0 1rem}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
.muted{color:var(--muted)}
.note{color:var(--muted);font-size:.9rem}
footer{color:var(--muted);font-size:.85rem;padding:0 1.5rem 2rem}
svg text{font:12px system-ui,sans-serif;fill:#1a1a1a}
ul.findings{margin:0;padding-left:1.1rem}
.skip{position:absolute;left:-9999px;top:0;background:#fff;color:#14325c;padding:.4rem .8rem}
.skip:focus{left:.5rem;z-index:10}
"#;

/// A whole page. `body` is trusted HTML built from escaped parts.
pub fn page(title: &str, now: Timestamp, nonce: &str, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 6000);
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{title} — zonekeeper</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
<a class=\"skip\" href=\"#main\">Skip to content</a>\n\
<header><h1><a href=\"/\">zonekeeper</a> · delegation dashboard</h1>\n\
<form action=\"/domain\" method=\"get\" role=\"search\">\
<label for=\"q\">Domain</label>\
<input type=\"search\" id=\"q\" name=\"name\" placeholder=\"example.ru\" required>\
<button type=\"submit\">Show</button></form>\n\
<label><input type=\"checkbox\" id=\"autorefresh\" checked> Refresh every {REFRESH_SECS}&nbsp;s</label>\n\
</header>\n<main id=\"main\">\n{body}\n</main>\n\
<footer>Generated {now}. Data refreshes automatically; untick the box to pause.</footer>\n\
<script nonce=\"{nonce}\">setInterval(function(){{var c=document.getElementById('autorefresh');\
if(c&&c.checked){{location.reload();}}}},{ms});</script>\n</body>\n</html>\n",
        title = esc(title),
        now = time_el(now),
        ms = REFRESH_SECS * 1000,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            esc("<script>alert('x')</script>&\"\u{7}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\u{FFFD}"
        );
        assert_eq!(
            esc("a\u{202e}b\u{2028}c\u{200b}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        assert_eq!(
            path_segment("xn--e1afmkfd.xn--p1ai"),
            "xn--e1afmkfd.xn--p1ai"
        );
        assert_eq!(path_segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(125), "2m 5s");
        assert_eq!(duration(3600 * 2 + 300), "2h 5m");
        assert_eq!(duration(86400 * 3 + 3600 * 4 + 59), "3d 4h");
        assert_eq!(duration(-60), "−1m");
        assert_eq!(duration(7200), "2h");
        assert_eq!(duration(4 * 86400 + 59), "4d");
    }
}
