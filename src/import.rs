//! Import of registry data (SPEC §4): parse, validate every record, then
//! write the whole file in one transaction or nothing at all.
//!
//! Each record is parsed on its own (from a raw JSON slice) so a type error
//! in record 5,123 is reported with its index and field instead of failing
//! the whole file with a byte offset.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::Config;
use crate::lifecycle;
use crate::model::{
    Contact, ContactKind, DiscloseField, Domain, Hold, Nameserver, PostalAddress, Registrar,
    Timestamp,
};
use crate::names::{self, ConfusableMode, ConfusableSet, DomainName, Zones};
use crate::store::{ImportBatch, ImportSummary, RecordError, Store, StoreError};
use crate::text;

/// Imports that write at least this many domains compact the store
/// afterwards: a bulk load leaves many half-empty pages behind.
pub const COMPACT_AFTER_DOMAINS: usize = 10_000;

/// Most record errors listed in one report.
pub const MAX_REPORTED_ERRORS: usize = 100;
/// Most addresses per nameserver.
pub const MAX_ADDRESSES_PER_NS: usize = 16;
/// Most nameservers per domain.
pub const MAX_NAMESERVERS: usize = 13;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not valid import JSON: {message}")]
    Json { path: String, message: String },
    #[error("{} bad record(s); nothing was imported:\n{}", .0.len(), format_errors(.0))]
    Records(Vec<RecordError>),
    #[error(transparent)]
    Store(StoreError),
}

fn format_errors(errs: &[RecordError]) -> String {
    let mut s: Vec<String> = errs
        .iter()
        .take(MAX_REPORTED_ERRORS)
        .map(|e| format!("  {}", text::escape(&e.to_string())))
        .collect();
    if errs.len() > MAX_REPORTED_ERRORS {
        s.push(format!("  … and {} more", errs.len() - MAX_REPORTED_ERRORS));
    }
    s.join("\n")
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(v) => ImportError::Records(v),
            other => ImportError::Store(other),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile<'a> {
    #[serde(default, borrow)]
    registrars: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    contacts: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    domains: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrarIn {
    handle: String,
    name: String,
    url: Option<String>,
    email: Option<String>,
    api_token_sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressIn {
    #[serde(default)]
    street: Vec<String>,
    city: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactIn {
    handle: String,
    kind: ContactKind,
    name: Option<String>,
    org: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    address: Option<AddressIn>,
    tax_id: Option<String>,
    birth_date: Option<String>,
    passport: Option<String>,
    #[serde(default)]
    disclose: Vec<DiscloseField>,
}

/// A nameserver as declared by import and the registrar API.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NameserverIn {
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainIn {
    name: String,
    registrar: String,
    registrant: String,
    admin: Option<String>,
    tech: Option<String>,
    created: Timestamp,
    paid_till: Option<Timestamp>,
    #[serde(default)]
    nameservers: Vec<NameserverIn>,
    auth_info: Option<String>,
    #[serde(default)]
    hold: bool,
    verification_requested: Option<Timestamp>,
    transferred: Option<Timestamp>,
}

struct Errors {
    list: Vec<RecordError>,
    section: &'static str,
    index: usize,
}

impl Errors {
    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.list.push(RecordError {
            section: self.section,
            index: self.index,
            field: field.into(),
            // Reasons may quote the input (serde's messages do): escaped,
            // so a report cannot forge lines or drive the operator's terminal.
            reason: text::escape(&reason.into()).into_owned(),
        });
    }
}

fn valid_handle(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// One outside text field under the text policy (`crate::text`).
fn check_text(e: &mut Errors, field: &str, v: &Option<String>, max: usize) {
    if let Some(s) = v {
        if let Err(err) = text::check_line(field, s, max) {
            e.push(field, err.to_string());
        }
    }
}

fn check_with(
    e: &mut Errors,
    field: &str,
    v: &Option<String>,
    rule: fn(&str, &str) -> Result<(), text::TextError>,
) {
    if let Some(s) = v {
        if let Err(err) = rule(field, s) {
            e.push(field, err.to_string());
        }
    }
}

/// A reference to a registrar or contact: a handle, so nothing but handle
/// characters reaches an error message or the store.
fn check_ref(e: &mut Errors, field: &str, v: Option<&str>) {
    if let Some(h) = v {
        if !valid_handle(h) {
            e.push(
                field,
                format!(
                    "'{}' is not a handle (1–64 letters, digits, '-' or '_')",
                    text::escape(h)
                ),
            );
        }
    }
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
        let mut addrs = Vec::new();
        for (k, a) in n.addresses.iter().enumerate() {
            match a.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    if addrs.contains(&ip) {
                        errs.push((
                            f(&format!("addresses[{k}]")),
                            format!("{ip} is listed twice"),
                        ));
                    } else if !all_addrs.insert(ip) {
                        errs.push((
                            f(&format!("addresses[{k}]")),
                            format!("{ip} is already used by another nameserver; each server needs distinct addresses"),
                        ));
                    } else {
                        addrs.push(ip);
                    }
                }
                Err(_) => errs.push((
                    f(&format!("addresses[{k}]")),
                    format!("'{}' is not an IPv4 or IPv6 address", text::escape(a)),
                )),
            }
        }
        if addrs.len() > MAX_ADDRESSES_PER_NS {
            errs.push((
                f("addresses"),
                format!("more than {MAX_ADDRESSES_PER_NS} addresses"),
            ));
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

/// Parse and validate an import file's bytes into a batch.
pub fn parse(
    bytes: &[u8],
    path: &str,
    cfg: &Config,
    zones: &Zones,
    now: Timestamp,
) -> Result<ImportBatch, ImportError> {
    let raw: RawFile = serde_json::from_slice(bytes).map_err(|e| ImportError::Json {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    let mut e = Errors {
        list: Vec::new(),
        section: "registrars",
        index: 0,
    };
    let mut batch = ImportBatch::default();

    let mut seen = HashSet::new();
    for (i, r) in raw.registrars.iter().enumerate() {
        e.index = i;
        let r: RegistrarIn = match serde_json::from_str(r.get()) {
            Ok(r) => r,
            Err(err) => {
                e.push("-", err.to_string());
                continue;
            }
        };
        if !valid_handle(&r.handle) {
            e.push("handle", "must be 1–64 letters, digits, '-' or '_'");
        } else if !seen.insert(r.handle.clone()) {
            e.push(
                "handle",
                format!("'{}' appears twice in this file", r.handle),
            );
        }
        check_text(&mut e, "name", &Some(r.name.clone()), text::MAX_TEXT);
        check_with(&mut e, "url", &r.url, text::check_url);
        check_with(&mut e, "email", &r.email, text::check_email);
        let token = match r.api_token_sha256 {
            Some(t) if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) => {
                Some(t.to_ascii_lowercase())
            }
            Some(_) => {
                e.push("api_token_sha256", "must be 64 hex digits (SHA-256)");
                None
            }
            None => None,
        };
        batch.registrars.push(Registrar {
            handle: r.handle,
            name: r.name,
            url: r.url,
            email: r.email,
            api_token_sha256: token,
        });
    }

    e.section = "contacts";
    let mut seen = HashSet::new();
    for (i, c) in raw.contacts.iter().enumerate() {
        e.index = i;
        let c: ContactIn = match serde_json::from_str(c.get()) {
            Ok(c) => c,
            Err(err) => {
                e.push("-", err.to_string());
                continue;
            }
        };
        if !valid_handle(&c.handle) {
            e.push("handle", "must be 1–64 letters, digits, '-' or '_'");
        } else if !seen.insert(c.handle.clone()) {
            e.push(
                "handle",
                format!("'{}' appears twice in this file", c.handle),
            );
        }
        match c.kind {
            ContactKind::Person if c.name.is_none() => e.push("name", "a person needs a name"),
            ContactKind::Org if c.org.is_none() => e.push("org", "an organisation needs org"),
            _ => {}
        }
        for (f, v) in [
            ("name", &c.name),
            ("org", &c.org),
            ("tax_id", &c.tax_id),
            ("passport", &c.passport),
        ] {
            check_text(&mut e, f, v, text::MAX_TEXT);
        }
        check_with(&mut e, "email", &c.email, text::check_email);
        check_with(&mut e, "phone", &c.phone, text::check_phone);
        if let Some(b) = &c.birth_date {
            if chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").is_err() {
                e.push("birth_date", format!("'{b}' is not a date (YYYY-MM-DD)"));
            }
        }
        let address = c.address.map(|a| {
            if let Err(err) =
                text::check_count("address.street", a.street.len(), text::MAX_STREET_LINES)
            {
                e.push("address.street", err.to_string());
            } else {
                for (j, s) in a.street.iter().enumerate() {
                    let f = format!("address.street[{j}]");
                    if let Err(err) = text::check_line(&f, s, text::MAX_TEXT) {
                        e.push(f, err.to_string());
                    }
                }
            }
            check_text(&mut e, "address.city", &a.city, text::MAX_TEXT);
            check_text(&mut e, "address.region", &a.region, text::MAX_TEXT);
            check_text(
                &mut e,
                "address.postal_code",
                &a.postal_code,
                text::MAX_POSTAL_CODE,
            );
            if let Some(cc) = &a.country {
                if cc.len() != 2 || !cc.chars().all(|c| c.is_ascii_alphabetic()) {
                    e.push(
                        "address.country",
                        format!("'{}' is not an ISO 3166 two-letter code", text::escape(cc)),
                    );
                }
            }
            PostalAddress {
                street: a.street,
                city: a.city,
                region: a.region,
                postal_code: a.postal_code,
                country: a.country.map(|c| c.to_ascii_uppercase()),
            }
        });
        let mut disclose = c.disclose;
        disclose.sort();
        disclose.dedup();
        batch.contacts.push(Contact {
            handle: c.handle,
            kind: c.kind,
            name: c.name,
            org: c.org,
            email: c.email,
            phone: c.phone,
            address,
            tax_id: c.tax_id,
            birth_date: c.birth_date,
            passport: c.passport,
            disclose,
        });
    }

    e.section = "domains";
    let mut seen = HashSet::new();
    for (i, d) in raw.domains.iter().enumerate() {
        e.index = i;
        let d: DomainIn = match serde_json::from_str(d.get()) {
            Ok(d) => d,
            Err(err) => {
                e.push("-", err.to_string());
                continue;
            }
        };
        let name = match zones.parse_domain(&d.name) {
            Ok(n) => n,
            Err(err) => {
                e.push("name", err.to_string());
                continue;
            }
        };
        if !seen.insert(name.clone()) {
            e.push("name", format!("'{name}' appears twice in this file"));
        }
        let paid_till = match d.paid_till {
            Some(p) => p,
            None => lifecycle::initial_paid_till(d.created, &cfg.lifecycle).unwrap_or(d.created),
        };
        if paid_till <= d.created {
            e.push("paid_till", "must be after created");
        }
        if d.created > now {
            e.push("created", "is in the future");
        }
        check_text(&mut e, "auth_info", &d.auth_info, text::MAX_TEXT);
        check_ref(&mut e, "registrar", Some(&d.registrar));
        check_ref(&mut e, "registrant", Some(&d.registrant));
        check_ref(&mut e, "admin", d.admin.as_deref());
        check_ref(&mut e, "tech", d.tech.as_deref());
        let nameservers = match validate_nameservers(
            name.as_str(),
            &d.nameservers,
            cfg.delegation.min_nameservers,
        ) {
            Ok(ns) => ns,
            Err(errs) => {
                for (f, r) in errs {
                    e.push(f, r);
                }
                Vec::new()
            }
        };
        batch.domains.push(Domain {
            name,
            registrar: d.registrar,
            registrant: d.registrant,
            admin: d.admin,
            tech: d.tech,
            created: d.created,
            paid_till,
            nameservers,
            auth_info: d.auth_info,
            hold: d.hold.then(|| Hold {
                since: now,
                reason: "set by import".into(),
            }),
            verification_requested: d.verification_requested,
            transferred: d.transferred,
            updated: now,
        });
    }
    if e.list.is_empty() {
        Ok(batch)
    } else {
        Err(ImportError::Records(e.list))
    }
}

/// Read and validate an import file (no store needed).
pub fn read_file(path: &Path, cfg: &Config, now: Timestamp) -> Result<ImportBatch, ImportError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: p.clone(),
        source,
    })?;
    let zones = cfg.zones().map_err(|e| ImportError::Json {
        path: p.clone(),
        message: e.to_string(),
    })?;
    parse(&bytes, &p, cfg, &zones, now)
}

/// Apply a validated batch: all or nothing. New names are first checked
/// against the registered ones of their zone for look-alikes (the zone
/// policy's confusable rule): refused, or listed in the summary's
/// `flagged`.
pub fn apply(
    store: &dyn Store,
    batch: &ImportBatch,
    cfg: &Config,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    let zones = cfg.zones().map_err(|e| ImportError::Json {
        path: "config".into(),
        message: e.to_string(),
    })?;
    let flagged = check_confusables(store, batch, &zones)?;
    let mut summary = store.import(batch, now, Config::chrono(cfg.delegation.test_window))?;
    summary.flagged = flagged;
    Ok(summary)
}

/// Names read from the store per page while collecting skeletons.
const SCAN_PAGE: usize = 10_000;

/// Every registered name, page by page.
fn for_each_registered(
    store: &dyn Store,
    f: &mut dyn FnMut(DomainName) -> bool,
) -> Result<(), StoreError> {
    let mut after: Option<String> = None;
    loop {
        let (names, more) = store.search_domains("", after.as_deref(), SCAN_PAGE)?;
        for n in names {
            if !f(DomainName::from_trusted(n)) {
                return Ok(());
            }
        }
        match more {
            Some(m) => after = Some(m),
            None => return Ok(()),
        }
    }
}

/// The confusable rule for the batch's new names: errors for the refused,
/// messages for the flagged.
fn check_confusables(
    store: &dyn Store,
    batch: &ImportBatch,
    zones: &Zones,
) -> Result<Vec<String>, ImportError> {
    let mut new = Vec::new();
    for (i, d) in batch.domains.iter().enumerate() {
        if ConfusableSet::watches(zones, &d.name) && store.domain(d.name.as_str())?.is_none() {
            new.push(i);
        }
    }
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let mut set = ConfusableSet::new();
    for_each_registered(store, &mut |n| {
        set.add_registered(zones, &n);
        true
    })?;
    let mut errors = Vec::new();
    let mut flagged = Vec::new();
    for i in new {
        let name = &batch.domains[i].name;
        let Some(hit) = set.check_and_add(zones, name) else {
            continue;
        };
        let existing = match hit.earlier {
            Some(e) => e.as_str().to_string(),
            None => {
                // Only hashes of registered names are kept: find the one.
                let key = ConfusableSet::skeleton_key(name);
                let mut found = String::from("a registered name");
                for_each_registered(store, &mut |n| {
                    if n.zone() == name.zone() && ConfusableSet::skeleton_key(&n) == key {
                        found = n.as_str().to_string();
                        return false;
                    }
                    true
                })?;
                found
            }
        };
        let err = names::confusable_error(name, &existing);
        match hit.mode {
            ConfusableMode::Refuse => errors.push(RecordError {
                section: "domains",
                index: i,
                field: "name".into(),
                reason: err.to_string(),
            }),
            _ => flagged.push(err.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(flagged)
    } else {
        Err(ImportError::Records(errors))
    }
}

/// Read, validate and apply an import file.
pub fn import_file(
    store: &dyn Store,
    path: &Path,
    cfg: &Config,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    let batch = read_file(path, cfg, now)?;
    apply(store, &batch, cfg, now)
}
