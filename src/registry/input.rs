//! Rules for declared data shared by every edge (import, the registrar
//! API, the control socket, EPP): handles, contacts and nameserver sets.
//! An edge builds the typed input from its own format; the registry
//! validates it (the registry does not trust an edge).

use std::collections::HashSet;
use std::net::IpAddr;

use serde::Deserialize;

use crate::model::{Contact, ContactKind, DiscloseField, Nameserver, PostalAddress};
use crate::names;
use crate::text;

/// Most addresses per nameserver.
pub const MAX_ADDRESSES_PER_NS: usize = 16;
/// Most nameservers per domain.
pub const MAX_NAMESERVERS: usize = 13;

/// A nameserver as declared by import and the registrar API.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NameserverIn {
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// The handle rule, said once: what [`valid_handle`] accepts.
pub const HANDLE_RULE: &str = "1–64 letters, digits, '-' or '_'";

/// The refusal of a handle field that breaks [`HANDLE_RULE`].
pub fn handle_must() -> String {
    format!("must be {HANDLE_RULE}")
}

/// The refusal of a reference `h` that is not a handle (quoted escaped, so
/// nothing but handle characters reaches a message unescaped).
pub fn not_a_handle(h: &str) -> String {
    format!("'{}' is not a handle ({HANDLE_RULE})", text::escape(h))
}

/// A registrar, contact or reseller handle.
pub fn valid_handle(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parse one nameserver's addresses (a declared NS or a host object):
/// each an IPv4 or IPv6 address in its one form (`::ffff:192.0.2.1` is
/// 192.0.2.1, so it cannot pass for a second, distinct address), none
/// twice, at most [`MAX_ADDRESSES_PER_NS`]. Returns the addresses with
/// their index in `raw`, and the errors as (`addresses[k]` or
/// `addresses`, reason).
#[allow(clippy::type_complexity)]
pub fn parse_addresses(raw: &[String]) -> (Vec<(usize, IpAddr)>, Vec<(String, String)>) {
    let mut errs = Vec::new();
    let mut out: Vec<(usize, IpAddr)> = Vec::new();
    for (k, a) in raw.iter().enumerate() {
        match a.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if out.iter().any(|(_, x)| *x == ip) => {
                errs.push((format!("addresses[{k}]"), format!("{ip} is listed twice")))
            }
            Ok(ip) => out.push((k, ip)),
            Err(_) => errs.push((
                format!("addresses[{k}]"),
                format!("'{}' is not an IPv4 or IPv6 address", text::escape(a)),
            )),
        }
    }
    if out.len() > MAX_ADDRESSES_PER_NS {
        errs.push((
            "addresses".into(),
            format!("more than {MAX_ADDRESSES_PER_NS} addresses"),
        ));
    }
    (out, errs)
}

/// Validate a declared NS set for `domain` (shared by import and the API).
pub fn validate_nameservers(
    domain: &str,
    ns: &[NameserverIn],
    min: usize,
) -> Result<Vec<Nameserver>, Vec<(String, String)>> {
    let mut errs: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    if ns.len() == 1 || (!ns.is_empty() && ns.len() < min) {
        errs.push((
            "nameservers".into(),
            format!(
                "{} nameserver(s) declared; at least {min} are required (or none, to stay undelegated)",
                ns.len()
            ),
        ));
    }
    if ns.len() > MAX_NAMESERVERS {
        errs.push((
            "nameservers".into(),
            format!("more than {MAX_NAMESERVERS} nameservers"),
        ));
    }
    let mut names = HashSet::new();
    let mut all_addrs: HashSet<IpAddr> = HashSet::new();
    for (j, n) in ns.iter().enumerate() {
        let f = |s: &str| format!("nameservers[{j}].{s}");
        let host = match names::parse_host(&n.name) {
            Ok(h) => h,
            Err(e) => {
                errs.push((f("name"), e.to_string()));
                continue;
            }
        };
        if !names.insert(host.clone()) {
            errs.push((f("name"), format!("'{host}' is declared twice")));
        }
        let in_bailiwick = host.is_at_or_below(domain);
        let (parsed, bad) = parse_addresses(&n.addresses);
        errs.extend(bad.into_iter().map(|(field, why)| (f(&field), why)));
        let mut addrs = Vec::new();
        for (k, ip) in parsed {
            if !all_addrs.insert(ip) {
                errs.push((
                    f(&format!("addresses[{k}]")),
                    format!("{ip} is already used by another nameserver; each server needs distinct addresses"),
                ));
            } else {
                addrs.push(ip);
            }
        }
        if in_bailiwick && n.addresses.is_empty() {
            errs.push((
                f("addresses"),
                format!("'{host}' is inside {domain}, so glue addresses are required"),
            ));
        }
        if !in_bailiwick && !n.addresses.is_empty() {
            errs.push((
                f("addresses"),
                format!("'{host}' is outside {domain}; glue addresses are only accepted for names inside the domain"),
            ));
        }
        out.push(Nameserver {
            name: host,
            addresses: addrs,
        });
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// Whether loopback glue is accepted: only where the prober may reach
/// loopback (`probe.allow_loopback_targets`, the demo; or
/// `probe.allow_private_targets`, which includes it).
pub fn loopback_glue_allowed(cfg: &crate::config::Config) -> bool {
    cfg.probe.allow_loopback_targets || cfg.probe.allow_private_targets
}

/// The one rule for a glue address (declared NS addresses, host objects;
/// every edge): why `ip` can never be a nameserver's address, or `None`.
/// Unspecified, loopback (unless `allow_loopback`), multicast, broadcast,
/// link-local and reserved addresses would publish a delegation that
/// points nowhere, or at the resolver's own host.
pub fn glue_refusal(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_unspecified() || o[0] == 0 {
                Some(GLUE_REASONS[0])
            } else if v4.is_broadcast() {
                Some(GLUE_REASONS[1])
            } else if v4.is_loopback() && !allow_loopback {
                Some(GLUE_REASONS[2])
            } else if v4.is_multicast() {
                Some(GLUE_REASONS[3])
            } else if v4.is_link_local() {
                Some(GLUE_REASONS[4])
            } else if o[0] >= 240 {
                Some(GLUE_REASONS[5])
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_unspecified() {
                Some(GLUE_REASONS[6])
            } else if v6.is_loopback() && !allow_loopback {
                Some(GLUE_REASONS[7])
            } else if v6.is_multicast() {
                Some(GLUE_REASONS[8])
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some(GLUE_REASONS[9])
            } else {
                None
            }
        }
    }
}

/// Whether a refusal's reason is [`glue_refusal`]'s (EPP answers 2005).
pub fn is_glue_reason(reason: &str) -> bool {
    GLUE_REASONS.iter().any(|w| reason.ends_with(w))
}

const GLUE_REASONS: &[&str] = &[
    "is unspecified (0.0.0.0/8), not a host's address",
    "is the broadcast address",
    "is a loopback address",
    "is a multicast address (224.0.0.0/4)",
    "is a link-local address (169.254.0.0/16)",
    "is in the reserved range 240.0.0.0/4",
    "is the unspecified address ::",
    "is the loopback address ::1",
    "is a multicast address (ff00::/8)",
    "is a link-local address (fe80::/10)",
];

/// [`glue_refusal`] over a validated NS set: (`nameservers[j].addresses[k]`,
/// reason) for each refused address.
pub fn check_glue(ns: &[Nameserver], allow_loopback: bool) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    for (j, n) in ns.iter().enumerate() {
        for (k, ip) in n.addresses.iter().enumerate() {
            if let Some(why) = glue_refusal(*ip, allow_loopback) {
                errs.push((
                    format!("nameservers[{j}].addresses[{k}]"),
                    format!("{ip} {why}"),
                ));
            }
        }
    }
    errs
}

impl super::Registry<'_> {
    fn refuse_glue(&self, section: &'static str, errs: Vec<(String, String)>) -> super::Result<()> {
        if errs.is_empty() {
            return Ok(());
        }
        Err(super::RegistryError::Invalid(
            errs.into_iter()
                .map(|(field, reason)| crate::store::RecordError {
                    section,
                    index: 0,
                    field,
                    reason,
                })
                .collect(),
        ))
    }

    /// The glue rule over a declared NS set.
    pub(super) fn glue_ok_ns(&self, ns: &[Nameserver]) -> super::Result<()> {
        self.refuse_glue("domain", check_glue(ns, loopback_glue_allowed(self.config)))
    }

    /// The glue rule over a host object's addresses given under `field`.
    pub(super) fn glue_ok(&self, field: &str, ips: &[IpAddr]) -> super::Result<()> {
        let allow = loopback_glue_allowed(self.config);
        let errs = ips
            .iter()
            .enumerate()
            .filter_map(|(k, ip)| {
                glue_refusal(*ip, allow).map(|why| (format!("{field}[{k}]"), format!("{ip} {why}")))
            })
            .collect();
        self.refuse_glue("host", errs)
    }
}

/// A postal address as an edge declares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressIn {
    pub street: Vec<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// A contact as an edge declares it (import, EPP `contact:create` and
/// `contact:update`); [`ContactIn::validate`] is the one contact rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactIn {
    pub handle: String,
    pub kind: ContactKind,
    pub name: Option<String>,
    pub org: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<AddressIn>,
    pub tax_id: Option<String>,
    pub birth_date: Option<String>,
    pub passport: Option<String>,
    pub disclose: Vec<DiscloseField>,
    /// The sponsoring registrar where the edge names it (import); the
    /// registry sets it for a registrar's own contact.
    pub registrar: Option<String>,
}

impl From<Contact> for ContactIn {
    fn from(c: Contact) -> Self {
        Self::from(&c)
    }
}

impl From<&Contact> for ContactIn {
    /// A stored contact as input again (a change over the stored record).
    fn from(c: &Contact) -> Self {
        ContactIn {
            handle: c.handle.clone(),
            kind: c.kind,
            name: c.name.clone(),
            org: c.org.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            address: c.address.as_ref().map(|a| AddressIn {
                street: a.street.clone(),
                city: a.city.clone(),
                region: a.region.clone(),
                postal_code: a.postal_code.clone(),
                country: a.country.clone(),
            }),
            tax_id: c.tax_id.clone(),
            birth_date: c.birth_date.clone(),
            passport: c.passport.clone(),
            disclose: c.disclose.clone(),
            registrar: c.sponsor.clone(),
        }
    }
}

/// Free text is stored without leading or trailing whitespace: it carries
/// no meaning, and a leading space would shift WHOIS's value column.
fn trim_str(s: String) -> String {
    match s.trim() {
        t if t.len() == s.len() => s,
        t => t.to_string(),
    }
}

fn trim(s: Option<String>) -> Option<String> {
    s.map(trim_str)
}

impl ContactIn {
    /// [`ContactIn::validate`] with its refusals as the registry's
    /// `Invalid` (section `contact`; reasons escaped, as they may quote
    /// the input).
    pub fn checked(self) -> super::Result<Contact> {
        self.validate().map_err(|v| {
            super::RegistryError::Invalid(
                v.into_iter()
                    .map(|(field, reason)| crate::store::RecordError {
                        section: "contact",
                        index: 0,
                        field,
                        reason: text::escape(&reason).into_owned(),
                    })
                    .collect(),
            )
        })
    }

    /// The contact rule (handle, kind, the text policy, dates, country):
    /// the contact to store, or every refusal as (field, reason).
    pub fn validate(self) -> Result<Contact, Vec<(String, String)>> {
        let mut e: Vec<(String, String)> = Vec::new();
        let mut push = |f: &str, r: String| e.push((f.to_string(), r));
        if !valid_handle(&self.handle) {
            push("handle", handle_must());
        }
        let (name, org) = (trim(self.name), trim(self.org));
        let (tax_id, passport) = (trim(self.tax_id), trim(self.passport));
        match self.kind {
            ContactKind::Person if name.is_none() => push("name", "a person needs a name".into()),
            ContactKind::Org if org.is_none() => push("org", "an organisation needs org".into()),
            _ => {}
        }
        let check_text = |push: &mut dyn FnMut(&str, String), f: &str, v: &Option<String>, max| {
            if let Some(s) = v {
                if let Err(err) = text::check_line(f, s, max) {
                    push(f, err.to_string());
                }
            }
        };
        for (f, v) in [
            ("name", &name),
            ("org", &org),
            ("tax_id", &tax_id),
            ("passport", &passport),
        ] {
            check_text(&mut push, f, v, text::MAX_TEXT);
        }
        type Rule = fn(&str, &str) -> Result<(), text::TextError>;
        for (f, v, rule) in [
            ("email", &self.email, text::check_email as Rule),
            ("phone", &self.phone, text::check_phone as Rule),
        ] {
            if let Some(s) = v {
                if let Err(err) = rule(f, s) {
                    push(f, err.to_string());
                }
            }
        }
        if let Some(b) = &self.birth_date {
            if chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").is_err() {
                push("birth_date", format!("'{b}' is not a date (YYYY-MM-DD)"));
            }
        }
        let address = self.address.map(|a| {
            let street: Vec<String> = a.street.into_iter().map(trim_str).collect();
            if let Err(err) =
                text::check_count("address.street", street.len(), text::MAX_STREET_LINES)
            {
                push("address.street", err.to_string());
            } else {
                for (j, s) in street.iter().enumerate() {
                    let f = format!("address.street[{j}]");
                    if let Err(err) = text::check_line(&f, s, text::MAX_TEXT) {
                        push(&f, err.to_string());
                    }
                }
            }
            let (city, region, postal_code) = (trim(a.city), trim(a.region), trim(a.postal_code));
            check_text(&mut push, "address.city", &city, text::MAX_TEXT);
            check_text(&mut push, "address.region", &region, text::MAX_TEXT);
            check_text(
                &mut push,
                "address.postal_code",
                &postal_code,
                text::MAX_POSTAL_CODE,
            );
            if let Some(cc) = &a.country {
                if cc.len() != 2 || !cc.chars().all(|c| c.is_ascii_alphabetic()) {
                    push(
                        "address.country",
                        format!("'{}' is not an ISO 3166 two-letter code", text::escape(cc)),
                    );
                }
            }
            PostalAddress {
                street,
                city,
                region,
                postal_code,
                country: a.country.map(|c| c.to_ascii_uppercase()),
            }
        });
        let mut disclose = self.disclose;
        disclose.sort();
        disclose.dedup();
        if !e.is_empty() {
            return Err(e);
        }
        Ok(Contact {
            handle: self.handle,
            kind: self.kind,
            name,
            org,
            email: self.email,
            phone: self.phone,
            address,
            tax_id,
            birth_date: self.birth_date,
            passport,
            disclose,
            sponsor: self.registrar,
            created: None,
        })
    }
}

/// Webhook events counted for the pending figure at most (a count, not
/// a scan): the delivery task and the registrar API both show it.
pub const PENDING_COUNT_MAX: usize = 10_000;

/// The shortest webhook secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// Validate a webhook: an `https://` URL (`http://` only to a loopback
/// address: tests, the demo), no credentials in it, and a secret of
/// [`MIN_SECRET_LEN`] to 256 printable ASCII characters. `Err((field,
/// reason))`.
pub fn webhook(url: &str, secret: &str) -> Result<crate::model::Webhook, (&'static str, String)> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| ("webhook.url", format!("not a URL: {e}")))?;
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or(("webhook.url", "must name a host".to_string()))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err((
            "webhook.url",
            "must not carry credentials (the secret signs instead)".into(),
        ));
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if is_loopback_host(host) => {}
        Some("http") => {
            return Err((
                "webhook.url",
                "must be https:// (http:// only to a loopback address)".into(),
            ))
        }
        _ => {
            return Err((
                "webhook.url",
                "must be an https:// URL (http:// only to a loopback address)".into(),
            ))
        }
    }
    if secret.len() < MIN_SECRET_LEN
        || secret.len() > 256
        || !secret.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err((
            "webhook.secret",
            format!("must be {MIN_SECRET_LEN}–256 printable ASCII characters"),
        ));
    }
    Ok(crate::model::Webhook {
        url: url.to_string(),
        secret: secret.to_string(),
    })
}

/// `host` (from a URI: IPv6 in brackets) is a loopback address literal or
/// `localhost`.
fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

#[cfg(test)]
mod glue_tests {
    use super::glue_refusal;

    #[test]
    fn unusable_glue_is_refused() {
        for bad in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "169.254.169.254",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "ff02::1",
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:0.0.0.0",
        ] {
            assert!(glue_refusal(bad.parse().unwrap(), false).is_some(), "{bad}");
        }
        for good in ["192.0.2.1", "8.8.8.8", "2001:db8::1", "10.0.0.1"] {
            assert!(
                glue_refusal(good.parse().unwrap(), false).is_none(),
                "{good}"
            );
        }
        // Loopback only where the prober may reach it.
        assert!(glue_refusal("127.0.53.1".parse().unwrap(), true).is_none());
        assert!(glue_refusal("::1".parse().unwrap(), true).is_none());
        assert!(glue_refusal("0.0.0.0".parse().unwrap(), true).is_some());
    }
}

#[cfg(test)]
mod contact_tests {
    use super::*;

    fn person(h: &str) -> ContactIn {
        ContactIn {
            handle: h.into(),
            kind: ContactKind::Person,
            name: Some("  Ivan Petrov ".into()),
            org: None,
            email: Some("ivan@example.net".into()),
            phone: None,
            address: Some(AddressIn {
                street: vec![" Tverskaya 1".into()],
                city: Some("Moscow ".into()),
                country: Some("ru".into()),
                ..Default::default()
            }),
            tax_id: None,
            birth_date: None,
            passport: None,
            disclose: vec![
                DiscloseField::Email,
                DiscloseField::Name,
                DiscloseField::Email,
            ],
            registrar: None,
        }
    }

    #[test]
    fn a_contact_is_tidied_on_the_way_in() {
        let c = person("C-1").validate().unwrap();
        assert_eq!(c.name.as_deref(), Some("Ivan Petrov"));
        let a = c.address.unwrap();
        assert_eq!(a.street, vec!["Tverskaya 1"]);
        assert_eq!(a.city.as_deref(), Some("Moscow"));
        assert_eq!(a.country.as_deref(), Some("RU"));
        assert_eq!(c.disclose, vec![DiscloseField::Name, DiscloseField::Email]);
    }

    #[test]
    fn every_refusal_names_its_field() {
        let mut c = person("bad handle");
        c.name = None;
        c.email = Some("not an address".into());
        c.birth_date = Some("1990-13-01".into());
        if let Some(a) = c.address.as_mut() {
            a.country = Some("RUS".into());
        }
        let errs = c.validate().unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["handle", "name", "email", "birth_date", "address.country"]
        );
        assert_eq!(errs[0].1, format!("must be {HANDLE_RULE}"));
        let mut org = person("O");
        org.kind = ContactKind::Org;
        assert_eq!(org.validate().unwrap_err()[0].0, "org");
    }
}
