//! The text policy end to end: hostile values from an
//! import file are refused with the field named, and whatever is accepted
//! cannot forge a WHOIS line or exceed its limit in WHOIS or RDAP, nor
//! smuggle markup or a forbidden character into the dashboard.

use std::process::Command;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};
use serde_json::{json, Value};
use zonekeeper::app::App;
use zonekeeper::clock::ManualClock;
use zonekeeper::config::Config;
use zonekeeper::import::{self, ImportError};
use zonekeeper::store::RedbStore;
use zonekeeper::text;
use zonekeeper::whois::query::Query;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

#[derive(Debug)]
struct Fields {
    reg_name: String,
    url: String,
    reg_email: String,
    org: String,
    name: String,
    street: Vec<String>,
    city: String,
    email: String,
    phone: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            reg_name: "Registrar LLC".into(),
            url: "https://www.reg.ru".into(),
            reg_email: "abuse@reg.ru".into(),
            org: "ACME LLC".into(),
            name: "Ivan Petrov".into(),
            street: vec!["Tverskaya 1".into()],
            city: "Moscow".into(),
            email: "ivan@example.ru".into(),
            phone: "+7.4951234567".into(),
        }
    }
}

fn file(f: &Fields) -> String {
    json!({
        "registrars": [{"handle": "R-P", "name": f.reg_name, "url": f.url, "email": f.reg_email}],
        "contacts": [{"handle": "C-P", "kind": "org", "name": f.name, "org": f.org,
                      "email": f.email, "phone": f.phone,
                      "address": {"street": f.street, "city": f.city, "postal_code": "125009",
                                  "country": "RU"},
                      "disclose": ["name", "org", "email", "phone", "address"]}],
        "domains": [{"name": "probe.ru", "registrar": "R-P", "registrant": "C-P",
                     "admin": "C-P", "tech": "C-P", "created": "2025-03-01T10:00:00Z",
                     "paid_till": "2027-03-01T10:00:00Z"}]
    })
    .to_string()
}

fn parse(s: &str) -> Result<zonekeeper::store::ImportBatch, ImportError> {
    let cfg = Config::default();
    import::parse(s.as_bytes(), "t.json", &cfg, &cfg.zones().unwrap(), now())
}

fn refused(f: &Fields) -> String {
    match parse(&file(f)) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

/// Each case the issue names is refused, and the message names the field.
#[test]
fn issue_cases_are_refused_naming_the_field() {
    let forged = "ACME\u{2028}state:         REGISTERED, DELEGATED, VERIFIED\u{2029}paid-till:     2099-01-01T00:00:00Z";
    let m = refused(&Fields {
        org: forged.into(),
        ..Fields::default()
    });
    assert!(m.contains("contacts[0].org") && m.contains("U+2028"), "{m}");
    let m = refused(&Fields {
        name: "Ivan \u{202e}vorteP".into(),
        ..Fields::default()
    });
    assert!(
        m.contains("contacts[0].name") && m.contains("U+202E"),
        "{m}"
    );
    let m = refused(&Fields {
        street: vec!["x".to_string(); 200_000],
        ..Fields::default()
    });
    assert!(
        m.contains("contacts[0].address.street") && m.contains("200000 entries"),
        "{m}"
    );
    assert!(m.len() < 1000, "one error for the list, not one per line");
    let m = refused(&Fields {
        url: "javascript:alert(document.cookie)".into(),
        ..Fields::default()
    });
    assert!(
        m.contains("registrars[0].url") && m.contains("scheme 'javascript'"),
        "{m}"
    );
    let m = refused(&Fields {
        street: vec!["a".repeat(256)],
        ..Fields::default()
    });
    assert!(m.contains("address.street[0]") && m.contains("256"), "{m}");
    let m = refused(&Fields {
        email: "not-an-address".into(),
        ..Fields::default()
    });
    assert!(m.contains("contacts[0].email"), "{m}");
    let m = refused(&Fields {
        phone: "call me\u{1b}[2J".into(),
        ..Fields::default()
    });
    assert!(
        m.contains("contacts[0].phone") && !m.contains('\u{1b}'),
        "{m}"
    );
    // The defaults themselves pass.
    parse(&file(&Fields::default())).unwrap();
}

/// Terminal escapes and line breaks in an import file never reach the
/// operator's terminal raw: the real binary's error report escapes them.
#[test]
fn import_errors_do_not_echo_terminal_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("evil.json");
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\nforged line\u{2028}";
    let body = json!({
        "registrars": [{"handle": "R-P", "name": "R", evil: 1}],
        "contacts": [{"handle": "C-P", "kind": "org", "org": evil}],
        "domains": [{"name": format!("{evil}.ru"), "registrar": "R-P", "registrant": "C-P",
                     "created": "2025-03-01T10:00:00Z"},
                    {"name": "ok.ru", "registrar": evil, "registrant": "C-P",
                     "created": "2025-03-01T10:00:00Z"}]
    });
    std::fs::write(&p, body.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg("config/zonekeeper.toml")
        .arg("import")
        .arg(&p)
        .arg("--db")
        .arg(dir.path().join("z.redb"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad record"), "{err}");
    for c in err.chars() {
        assert!(
            c == '\n' || !text::is_forbidden(c),
            "raw {:?} in the report:\n{err}",
            c
        );
    }
    assert!(!err.lines().any(|l| l.starts_with("forged line")), "{err}");
    // Four records are reported, each on its own line.
    assert!(err.contains("registrars[0]") && err.contains("contacts[0].org"));
    assert!(err.contains("domains[0].name") && err.contains("domains[1].registrar"));
}

/// Leading and trailing whitespace carries no meaning and is not stored: a
/// street line " a" once shifted WHOIS's value column (found by the
/// property below in CI).
#[test]
fn free_text_is_stored_trimmed() {
    let b = parse(&file(&Fields {
        reg_name: "  Registrar LLC\t".into(),
        street: vec![" a".into(), "b ".into()],
        org: " ACME LLC ".into(),
        ..Fields::default()
    }))
    .unwrap();
    assert_eq!(b.registrars[0].name, "Registrar LLC");
    let c = &b.contacts[0];
    assert_eq!(c.org.as_deref(), Some("ACME LLC"));
    assert_eq!(c.address.as_ref().unwrap().street, ["a", "b"]);
}

// ---- property: import → WHOIS / RDAP / dashboard ----------------------------------

fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        2 => prop::sample::select(vec![
            '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}', '\u{202e}',
            '\u{2066}', '\u{200b}', '\u{200d}', '\u{feff}', '\u{1b}', '\u{9b}', '\u{0}',
            '\u{e0001}', '%', ':', ' ', '\t', '<', '>', '&', '"', '\'',
        ]),
        4 => prop::sample::select(vec!['a', 'Z', 'я', 'Ё', '1', ' ', '.', ',', '-', '☃']),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        // Plain values, so the accepted path is exercised too.
        8 => "[A-Za-zА-Яа-я0-9][A-Za-zА-Яа-я0-9 .,<>&\"'-]{0,40}",
        1 => prop::collection::vec(hostile_char(), 0..300).prop_map(|v| v.into_iter().collect()),
    ]
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        (value(), value(), value(), value()),
        (
            prop::collection::vec(value(), 0..5),
            value(),
            value(),
            value(),
        ),
        0u8..4,
    )
        .prop_map(
            |((reg_name, url, org, name), (street, city, email, phone), keep)| {
                let d = Fields::default();
                // Keep some fields valid so a case is not always refused on the
                // first fuzzed field.
                Fields {
                    reg_name,
                    url: if keep & 1 == 0 {
                        format!("https://r.example/{}", url.replace(' ', "-"))
                    } else {
                        url
                    },
                    reg_email: d.reg_email,
                    org,
                    name,
                    street,
                    city,
                    email: if keep & 2 == 0 { d.email } else { email },
                    phone: if keep & 2 == 0 { d.phone } else { phone },
                }
            },
        )
}

const WHOIS_KEYS: &[&str] = &[
    "domain",
    "nserver",
    "state",
    "person",
    "org",
    "address",
    "phone",
    "e-mail",
    "registrar",
    "admin-contact",
    "www",
    "created",
    "paid-till",
    "free-date",
    "source",
];

fn check_whois(answer: &str) -> Result<(), TestCaseError> {
    let mut states = 0;
    let mut addresses = 0;
    for line in answer.lines() {
        prop_assert!(
            !line.chars().any(text::is_forbidden),
            "forbidden char in line {:?}",
            line
        );
        if line.is_empty() || line.starts_with("% ") || line.starts_with("Last updated on ") {
            continue;
        }
        let (key, value) = line
            .split_once(": ")
            .ok_or_else(|| TestCaseError::fail(format!("not a key line: {line:?}")))?;
        prop_assert!(WHOIS_KEYS.contains(&key), "unknown key in {:?}", line);
        prop_assert_eq!(key.len() + 2 + value.len() - value.trim_start().len(), 15);
        if key == "state" {
            states += 1;
        }
        if key == "address" {
            addresses += 1;
        }
        // An escaped value may grow (\u{2028} is 8 characters for one),
        // but the stored value is within its limit, so 8 × 255 bounds it.
        prop_assert!(value.chars().count() <= 8 * text::MAX_TEXT, "{}", line);
    }
    prop_assert!(states <= 1, "{} state lines:\n{}", states, answer);
    prop_assert!(addresses <= text::MAX_STREET_LINES + 1, "{}", answer);
    Ok(())
}

fn check_rdap(v: &Value) -> Result<(), TestCaseError> {
    match v {
        Value::String(s) => {
            prop_assert!(!s.chars().any(text::is_forbidden), "{:?}", s);
            prop_assert!(s.chars().count() <= 2 * text::MAX_URL, "{:?}", s);
        }
        Value::Array(a) => {
            for x in a {
                check_rdap(x)?;
            }
        }
        Value::Object(m) => {
            for x in m.values() {
                check_rdap(x)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The dashboard's domain page escapes every outside value: a value with
/// markup characters never appears raw, and no forbidden character is
/// printed at all.
fn check_dashboard(html: &str, f: &Fields) -> Result<bool, TestCaseError> {
    // The page's own line breaks are the only control characters in it.
    let bad = html.chars().find(|&c| c != '\n' && text::is_forbidden(c));
    prop_assert!(bad.is_none(), "forbidden char {:?} in the page", bad);
    // Every `&` in the page's markup (its own scripts aside) starts an
    // entity: an outside `&` was escaped.
    let mut markup_only = String::new();
    let mut rest = html;
    while let Some(i) = rest.find("<script") {
        markup_only.push_str(&rest[..i]);
        rest = rest[i..].split_once("</script>").map_or("", |(_, r)| r);
    }
    markup_only.push_str(rest);
    for (i, _) in markup_only.match_indices('&') {
        let rest = &markup_only[i..];
        prop_assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;"]
                .iter()
                .any(|e| rest.starts_with(e)),
            "a bare & at {:?}",
            &rest[..rest.len().min(20)]
        );
    }
    // Values with markup characters are shown, and shown escaped (a raw
    // substring check would match the page's own markup for short values).
    let escaped = |v: &str| {
        v.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    let mut markup = false;
    for v in [&f.reg_name, &f.org] {
        let v = v.trim();
        if v.contains(['<', '>', '"', '\'', '&']) {
            prop_assert!(html.contains(&escaped(v)), "{:?} not shown escaped", v);
            markup = true;
        }
    }
    Ok(markup)
}

fn dashboard_page(rt: &tokio::runtime::Runtime, app: &App) -> String {
    use tower::ServiceExt;
    rt.block_on(async {
        let req = axum::http::Request::get("/domains/probe.ru")
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = zonekeeper::dashboard::router(app.clone())
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    })
}

#[test]
fn accepted_values_cannot_forge_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.store.path = dir.path().join("p.redb");
    let store = Arc::new(RedbStore::open(&cfg.store.path).unwrap());
    let app = App::new(
        cfg.clone(),
        store.clone(),
        Arc::new(ManualClock::new(now())),
    )
    .unwrap();
    let cases = if std::env::var_os("CI").is_some() {
        1500
    } else {
        400
    };
    let mut runner = TestRunner::new(PtConfig {
        cases,
        ..PtConfig::default()
    });
    let accepted = std::cell::Cell::new(0u32);
    let with_markup = std::cell::Cell::new(0u32);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runner
        .run(&fields(), |f| {
            let input = file(&f);
            let batch = match parse(&input) {
                Ok(b) => b,
                Err(e) => {
                    let m = e.to_string();
                    for c in m.chars() {
                        prop_assert!(c == '\n' || !text::is_forbidden(c), "{:?}", m);
                    }
                    return Ok(());
                }
            };
            accepted.set(accepted.get() + 1);
            import::apply(&*store, &batch, &cfg, now()).unwrap();
            for q in [
                Query::Domain("probe.ru".into()),
                Query::Registrar("R-P".into()),
            ] {
                let (_, answer) = zonekeeper::whois::answer(&app, &q);
                check_whois(&answer)?;
            }
            let bundle = app.store().bundle("probe.ru").unwrap().unwrap();
            let d = zonekeeper::public::domain(&bundle, now(), &cfg.lifecycle).unwrap();
            let ctx = zonekeeper::rdap::view::Ctx {
                base: "https://rdap.example/rdap/".into(),
                now: now(),
                db_updated: now(),
            };
            let (obj, red) = zonekeeper::rdap::view::domain(&ctx, &d, "$");
            check_rdap(&serde_json::to_value(&obj).unwrap())?;
            check_rdap(&serde_json::to_value(&red).unwrap())?;
            if check_dashboard(&dashboard_page(&rt, &app), &f)? {
                with_markup.set(with_markup.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    assert!(
        accepted.get() > cases / 20,
        "only {} of {cases} cases were accepted",
        accepted.get()
    );
    assert!(
        with_markup.get() > cases / 50,
        "only {} accepted cases had markup characters",
        with_markup.get()
    );
}
