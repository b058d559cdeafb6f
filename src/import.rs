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
use crate::names::{self, Zones};
use crate::store::{ImportBatch, ImportSummary, RecordError, Store, StoreError};

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
        .map(|e| format!("  {e}"))
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
    #[serde(default)]
    ds: Vec<crate::ds::DsIn>,
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
            reason: reason.into(),
        });
    }
}

fn valid_handle(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Non-empty, bounded, no control characters (they would corrupt WHOIS lines).
fn check_text(e: &mut Errors, field: &str, v: &Option<String>, max: usize) {
    if let Some(s) = v {
        if s.trim().is_empty() {
            e.push(field, "is empty; omit it or use null");
        } else if s.len() > max {
            e.push(field, format!("is longer than {max} bytes"));
        } else if s.chars().any(char::is_control) {
            e.push(field, "contains control characters");
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
                    format!("'{a}' is not an IPv4 or IPv6 address"),
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
        check_text(&mut e, "name", &Some(r.name.clone()), 255);
        check_text(&mut e, "url", &r.url, 255);
        check_text(&mut e, "email", &r.email, 255);
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
            ("email", &c.email),
            ("phone", &c.phone),
            ("tax_id", &c.tax_id),
            ("passport", &c.passport),
        ] {
            check_text(&mut e, f, v, 255);
        }
        if let Some(b) = &c.birth_date {
            if chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").is_err() {
                e.push("birth_date", format!("'{b}' is not a date (YYYY-MM-DD)"));
            }
        }
        let address = c.address.map(|a| {
            for (j, s) in a.street.iter().enumerate() {
                check_text(
                    &mut e,
                    &format!("address.street[{j}]"),
                    &Some(s.clone()),
                    255,
                );
            }
            check_text(&mut e, "address.city", &a.city, 255);
            check_text(&mut e, "address.region", &a.region, 255);
            check_text(&mut e, "address.postal_code", &a.postal_code, 32);
            if let Some(cc) = &a.country {
                if cc.len() != 2 || !cc.chars().all(|c| c.is_ascii_alphabetic()) {
                    e.push(
                        "address.country",
                        format!("'{cc}' is not an ISO 3166 two-letter code"),
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
        check_text(&mut e, "auth_info", &d.auth_info, 255);
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
        let ds = match crate::ds::validate_set(&d.ds, !d.nameservers.is_empty()) {
            Ok(ds) => ds,
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
            ds,
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

/// Apply a validated batch: all or nothing.
pub fn apply(
    store: &dyn Store,
    batch: &ImportBatch,
    cfg: &Config,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    Ok(store.import(batch, now, Config::chrono(cfg.delegation.test_window))?)
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
