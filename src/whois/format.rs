//! WHOIS answer text: pure functions of the public projection and the time.
//! Nothing here sees a stored record; only `crate::public` types and the
//! (public) host record reach it.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::model::{ContactKind, Timestamp};
use crate::public::{PublicContact, PublicDomain, PublicRegistrar};
use crate::store::HostRecord;

/// Values start in this column: `admin-contact:` plus one space, as in the
/// sample in docs/whois.md.
const KEY_WIDTH: usize = 15;

pub const NOT_FOUND: &str = "No entries found for the selected source(s).";
pub const RATE_LIMITED: &str = "% You have exceeded allowed connection rate.\n";
pub const OVERLOAD: &str = "% Server is busy; too many connections. Try again later.\n";
pub const TIMEOUT: &str = "% Error: no query line received in time.\n";

/// An error line for a refused query.
pub fn error_line(msg: &str) -> String {
    format!("% Error: {}\n", clean(msg))
}

/// RFC 3339 in UTC with whole seconds, as the .RU registry prints it.
pub fn rfc3339(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Stored text went through the text policy (`crate::text`) on the way
/// in; a line break, separator or format character in a value would still
/// let it forge answer lines, so every value is escaped on the way out too.
fn clean(s: &str) -> Cow<'_, str> {
    crate::text::escape(s)
}

fn kv(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(
        out,
        "{:<w$}{}",
        format!("{key}:"),
        clean(value),
        w = KEY_WIDTH
    );
}

fn header(out: &mut String, source: &str) {
    let _ = writeln!(
        out,
        "% {} WHOIS service. Terms of use: the data is provided for lookups of",
        clean(source)
    );
    out.push_str(
        "% individual registrations only; bulk or automated collection is not allowed.\n\n",
    );
}

/// What precedes the last update time on an answer's last line (the
/// answer cache finds it there to keep it current).
pub const UPDATED_PREFIX: &str = "\nLast updated on ";

fn footer(out: &mut String, source: &str, last_update: Timestamp) {
    kv(out, "source", source);
    let _ = writeln!(out, "{UPDATED_PREFIX}{}", rfc3339(last_update));
}

/// The `state:` tokens of a domain (see the module docs of `crate::whois`):
/// the one status model's WHOIS words.
pub fn state_tokens(d: &PublicDomain) -> Vec<&'static str> {
    d.status.whois()
}

fn contact(out: &mut String, c: &PublicContact) {
    match c.kind {
        ContactKind::Person => {
            kv(out, "person", &c.display_name);
            if let Some(o) = &c.org {
                kv(out, "org", o);
            }
        }
        ContactKind::Org => kv(out, "org", &c.display_name),
    }
    if let Some(a) = &c.address {
        for s in &a.street {
            kv(out, "address", s);
        }
        let place: Vec<&str> = [&a.postal_code, &a.city, &a.region, &a.country]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !place.is_empty() {
            kv(out, "address", &place.join(", "));
        }
    }
    if let Some(p) = &c.phone {
        kv(out, "phone", p);
    }
    if let Some(e) = &c.email {
        kv(out, "e-mail", e);
    }
}

/// The answer for a registered domain.
pub fn domain_answer(d: &PublicDomain, source: &str, last_update: Timestamp) -> String {
    let mut out = String::with_capacity(768);
    header(&mut out, source);
    kv(&mut out, "domain", &d.name.to_ascii_uppercase());
    for ns in &d.nameservers {
        let mut line = format!("{}.", ns.name);
        for (i, a) in ns.addresses.iter().enumerate() {
            line.push_str(if i == 0 { " " } else { ", " });
            let _ = write!(line, "{a}");
        }
        kv(&mut out, "nserver", &line);
    }
    // Only signed delegations get DS lines: unsigned answers stay as they were.
    for ds in &d.ds {
        kv(&mut out, "ds", &ds.to_string());
    }
    kv(&mut out, "state", &state_tokens(d).join(", "));
    if let Some(c) = &d.registrant {
        contact(&mut out, c);
    }
    if let Some(r) = &d.registrar {
        kv(&mut out, "registrar", &r.handle);
        if let Some(u) = &r.url {
            kv(&mut out, "admin-contact", u);
        }
    }
    if let Some(r) = &d.reseller {
        kv(&mut out, "reseller", r);
    }
    kv(&mut out, "created", &rfc3339(d.created));
    kv(&mut out, "paid-till", &rfc3339(d.paid_till));
    kv(
        &mut out,
        "free-date",
        &d.free_date.format("%Y-%m-%d").to_string(),
    );
    // Time the registry itself did not probe a down server (not charged).
    for u in &d.unmeasured {
        kv(
            &mut out,
            "remarks",
            &format!(
                "{}: {} s unmeasured (registry not probing) in the downtime period from {}",
                u.server,
                u.secs,
                rfc3339(u.period_start)
            ),
        );
    }
    footer(&mut out, source, last_update);
    out
}

/// The answer for `nameserver NAME`.
pub fn host_answer(h: &HostRecord, source: &str, last_update: Timestamp) -> String {
    let mut out = String::with_capacity(384);
    header(&mut out, source);
    kv(&mut out, "nserver", &format!("{}.", h.name));
    for a in &h.addresses {
        kv(&mut out, "ip-address", &a.to_string());
    }
    kv(&mut out, "domains", &h.domains.to_string());
    footer(&mut out, source, last_update);
    out
}

/// The answer for `registrar HANDLE`.
pub fn registrar_answer(r: &PublicRegistrar, source: &str, last_update: Timestamp) -> String {
    let mut out = String::with_capacity(384);
    header(&mut out, source);
    kv(&mut out, "registrar", &r.handle);
    kv(&mut out, "org", &r.name);
    if let Some(u) = &r.url {
        kv(&mut out, "www", u);
    }
    if let Some(e) = &r.email {
        kv(&mut out, "e-mail", e);
    }
    footer(&mut out, source, last_update);
    out
}

/// The answer for a name that is not registered (or whose registration is
/// cancelled).
pub fn not_found_answer(source: &str, last_update: Timestamp) -> String {
    let mut out = String::with_capacity(256);
    header(&mut out, source);
    let _ = write!(
        out,
        "{NOT_FOUND}\n\nLast updated on {}\n",
        rfc3339(last_update)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DelegationState;
    use crate::public::PublicNameserver;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn sample() -> PublicDomain {
        let t = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap();
        PublicDomain {
            name: "example.ru".into(),
            unicode_name: "example.ru".into(),
            registrar: Some(PublicRegistrar {
                handle: "REGRU-RU".into(),
                name: "Registrar".into(),
                url: Some("https://www.reg.ru".into()),
                email: None,
            }),
            registrant: Some(PublicContact {
                handle: None,
                kind: ContactKind::Person,
                display_name: "Private Person".into(),
                name: None,
                org: None,
                email: None,
                phone: None,
                address: None,
                withheld: vec![],
            }),
            admin: None,
            tech: None,
            nameservers: vec![
                PublicNameserver {
                    name: "ns1.example.ru".into(),
                    unicode_name: "ns1.example.ru".into(),
                    addresses: vec!["192.0.2.1".parse().unwrap()],
                },
                PublicNameserver {
                    name: "ns2.example.net".into(),
                    unicode_name: "ns2.example.net".into(),
                    addresses: vec![],
                },
            ],
            ds: vec![],
            created: t(2025, 3, 1),
            paid_till: t(2026, 3, 1),
            free_date: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
            updated: t(2025, 3, 1),
            delegation: DelegationState::Delegated,
            violation_since: None,
            change_pending: false,
            delegated: true,
            expired: false,
            hold: false,
            verification_pending: false,
            transfer_locked_until: None,
            dispute: false,
            registrant_locked: false,
            transfer_pending: false,
            closing: false,
            reseller: None,
            status: crate::status::DomainStatus {
                conditions: [crate::status::Condition::InZone].into(),
                client: Default::default(),
                deletion_at: None,
            },
            unmeasured: vec![],
        }
    }

    #[test]
    fn unmeasured_time_is_a_remark_line() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let mut d = sample();
        d.unmeasured = vec![crate::public::PublicUnmeasured {
            server: "ns2.example.net".into(),
            period_start: Utc.with_ymd_and_hms(2026, 11, 21, 21, 0, 0).unwrap(),
            secs: 3000,
        }];
        let text = domain_answer(&d, "TCI", now);
        assert!(
            text.contains("free-date:     2026-03-31\nremarks:       ns2.example.net: 3000 s unmeasured (registry not probing) in the downtime period from 2026-11-21T21:00:00Z\nsource:"),
            "{text}"
        );
    }

    #[test]
    fn spec_sample_layout() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let text = domain_answer(&sample(), "TCI", now);
        let body = text.split_once("\n\n").unwrap().1;
        assert_eq!(
            body,
            "domain:        EXAMPLE.RU
nserver:       ns1.example.ru. 192.0.2.1
nserver:       ns2.example.net.
state:         REGISTERED, DELEGATED, VERIFIED
person:        Private Person
registrar:     REGRU-RU
admin-contact: https://www.reg.ru
created:       2025-03-01T10:00:00Z
paid-till:     2026-03-01T10:00:00Z
free-date:     2026-03-31
source:        TCI

Last updated on 2026-11-22T12:00:00Z
"
        );
    }

    #[test]
    fn states_and_cleaning() {
        let mut d = sample();
        use crate::status::Condition as C;
        d.status.conditions = [C::Testing, C::Hold, C::VerificationPending].into();
        assert_eq!(
            state_tokens(&d).join(", "),
            "REGISTERED, NOT DELEGATED, UNVERIFIED, HOLD, TESTING"
        );
        let mut o = String::new();
        kv(&mut o, "org", "evil\nstate: FAKE");
        assert_eq!(o, "org:           evil\\u{000a}state: FAKE\n");
        let mut o = String::new();
        kv(
            &mut o,
            "org",
            "evil\u{2028}state: DELEGATED\u{2029}x\u{202e}y",
        );
        assert_eq!(
            o,
            "org:           evil\\u{2028}state: DELEGATED\\u{2029}x\\u{202e}y\n"
        );
    }
}
