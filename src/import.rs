//! Import of registry data (docs/import.md): parse, validate every record, then
//! write the whole file in one transaction or nothing at all.
//!
//! Each record is parsed on its own (from a raw JSON slice) so a type error
//! in record 5,123 is reported with its index and field instead of failing
//! the whole file with a byte offset.

use std::collections::HashSet;
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::Config;
use crate::lifecycle;
use crate::model::{
    Contact, ContactKind, DiscloseField, Domain, Hold, Registrar, Reseller, Timestamp, Webhook,
};
use crate::names::{self, ConfusableMode, ConfusableSet, DomainName, Zones};
use crate::registry::input::{
    handle_must, not_a_handle, valid_handle, validate_nameservers, AddressIn, ContactIn,
    NameserverIn,
};
use crate::store::{
    BatchSource, ImportBatch, ImportRecord, ImportSource, ImportSummary, RecordError, Store,
    StoreError,
};
use crate::text;

/// Imports that write at least this many domains compact the store
/// afterwards: a bulk load leaves many half-empty pages behind.
pub const COMPACT_AFTER_DOMAINS: usize = 10_000;

/// Page cache (MiB) of the embedded store while `zonekeeper import` runs,
/// whatever `store.cache_mib` (the serving cache) says: the cache is most
/// of an import's RSS (1M domains: peak ~700 MiB with 512), and a large
/// import's index writes land all over their tables, so a smaller one
/// costs time (1M: apply ~1.7x slower at 256).
pub const IMPORT_CACHE_MIB: usize = 512;

/// Most record errors listed in one report.
pub const MAX_REPORTED_ERRORS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not valid import JSON: {message}")]
    Json { path: String, message: String },
    #[error("{} bad record(s); nothing was imported:\n{}", .0.total, format_errors(.0))]
    Records(RecordErrors),
    #[error(transparent)]
    Store(StoreError),
}

/// The bad records of an import: the first few, and how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordErrors {
    /// At most [`MAX_REPORTED_ERRORS`], in file order.
    pub list: Vec<RecordError>,
    /// All bad records found (errors past the list are counted only).
    pub total: usize,
}

impl std::ops::Deref for RecordErrors {
    type Target = [RecordError];
    fn deref(&self) -> &[RecordError] {
        &self.list
    }
}

fn format_errors(errs: &RecordErrors) -> String {
    let mut s: Vec<String> = errs
        .list
        .iter()
        .take(MAX_REPORTED_ERRORS)
        .map(|e| format!("  {}", text::escape(&e.to_string())))
        .collect();
    let shown = s.len();
    if errs.total > shown {
        s.push(format!("  … and {} more", errs.total - shown));
    }
    s.join("\n")
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(v) => ImportError::Records(RecordErrors {
                total: v.len(),
                list: v.into_iter().take(MAX_REPORTED_ERRORS).collect(),
            }),
            other => ImportError::Store(other),
        }
    }
}

/// The sections of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Registrars,
    Resellers,
    Contacts,
    Domains,
}

const SECTIONS: &[&str] = &["registrars", "resellers", "contacts", "domains"];

/// Reads the top-level object and hands each record of each section, as
/// raw JSON, to the callback as soon as it is read.
struct FileSeed<'f, F>(&'f mut F);

impl<'de, F: FnMut(Section, usize, &RawValue)> DeserializeSeed<'de> for FileSeed<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Section, usize, &RawValue)> Visitor<'de> for FileSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with registrars, contacts and domains")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = [false; 4];
        while let Some(key) = map.next_key::<String>()? {
            let (section, i) = match key.as_str() {
                "registrars" => (Section::Registrars, 0),
                "resellers" => (Section::Resellers, 1),
                "contacts" => (Section::Contacts, 2),
                "domains" => (Section::Domains, 3),
                other => return Err(A::Error::unknown_field(other, SECTIONS)),
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(A::Error::duplicate_field(SECTIONS[i]));
            }
            map.next_value_seed(SectionSeed {
                section,
                f: &mut *self.0,
            })?;
        }
        Ok(())
    }
}

struct SectionSeed<'f, F> {
    section: Section,
    f: &'f mut F,
}

impl<'de, F: FnMut(Section, usize, &RawValue)> DeserializeSeed<'de> for SectionSeed<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Section, usize, &RawValue)> Visitor<'de> for SectionSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        // Owned: a record read from a stream cannot borrow from it.
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            (self.f)(self.section, i, &raw);
            i += 1;
        }
        Ok(())
    }
}

/// Free text is stored without leading or trailing whitespace: it carries
/// no meaning, and a leading space would shift WHOIS's value column.
mod tidy {
    use serde::{Deserialize, Deserializer};

    fn trim(s: String) -> String {
        let t = s.trim();
        if t.len() == s.len() {
            s
        } else {
            t.to_string()
        }
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        String::deserialize(d).map(trim)
    }

    pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Option::<String>::deserialize(d).map(|o| o.map(trim))
    }

    /// A field that is present (`Some`), possibly `null` (`Some(None)`).
    pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }

    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Vec::<String>::deserialize(d).map(|v| v.into_iter().map(trim).collect())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrarIn {
    handle: String,
    #[serde(deserialize_with = "tidy::string")]
    name: String,
    url: Option<String>,
    email: Option<String>,
    api_token_sha256: Option<String>,
    #[serde(default)]
    epp_cert_sha256: Vec<String>,
    epp_password_hash: Option<String>,
    /// Absent: left as stored; `null`: removed.
    #[serde(default, deserialize_with = "tidy::present")]
    webhook: Option<Option<WebhookIn>>,
}

/// A reseller and the registrar it belongs to (docs/import.md
/// "Resellers").
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResellerIn {
    handle: String,
    #[serde(deserialize_with = "tidy::string")]
    name: String,
    registrar: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookIn {
    url: String,
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressJson {
    #[serde(default, deserialize_with = "tidy::list")]
    street: Vec<String>,
    #[serde(default, deserialize_with = "tidy::opt")]
    city: Option<String>,
    #[serde(default, deserialize_with = "tidy::opt")]
    region: Option<String>,
    #[serde(default, deserialize_with = "tidy::opt")]
    postal_code: Option<String>,
    country: Option<String>,
}

/// A contact's JSON form, turned into the registry's
/// [`crate::registry::input::ContactIn`] (which holds the contact rule).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactJson {
    handle: String,
    kind: ContactKind,
    #[serde(default, deserialize_with = "tidy::opt")]
    name: Option<String>,
    #[serde(default, deserialize_with = "tidy::opt")]
    org: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    address: Option<AddressJson>,
    #[serde(default, deserialize_with = "tidy::opt")]
    tax_id: Option<String>,
    birth_date: Option<String>,
    #[serde(default, deserialize_with = "tidy::opt")]
    passport: Option<String>,
    #[serde(default)]
    disclose: Vec<DiscloseField>,
    /// The sponsoring registrar (docs/import.md "Ownership"); without it,
    /// the registrar of the file's domains that name the contact.
    #[serde(default)]
    registrar: Option<String>,
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
    /// When the code stops being accepted; without it,
    /// `lifecycle.auth_code_lifetime` after the import.
    auth_info_expires: Option<Timestamp>,
    #[serde(default)]
    hold: bool,
    verification_requested: Option<Timestamp>,
    transferred: Option<Timestamp>,
    reseller: Option<String>,
    #[serde(default)]
    ds: Vec<crate::registry::input::DsIn>,
}

struct Errors {
    /// The first [`MAX_REPORTED_ERRORS`].
    list: Vec<RecordError>,
    /// All of them.
    total: usize,
    section: &'static str,
    index: usize,
}

impl Errors {
    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.total += 1;
        if self.list.len() >= MAX_REPORTED_ERRORS {
            return;
        }
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

impl ContactJson {
    fn input(self) -> ContactIn {
        ContactIn {
            handle: self.handle,
            kind: self.kind,
            name: self.name,
            org: self.org,
            email: self.email,
            phone: self.phone,
            address: self.address.map(|a| AddressIn {
                street: a.street,
                city: a.city,
                region: a.region,
                postal_code: a.postal_code,
                country: a.country,
            }),
            tax_id: self.tax_id,
            birth_date: self.birth_date,
            passport: self.passport,
            disclose: self.disclose,
            registrar: self.registrar,
        }
    }
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
            e.push(field, not_a_handle(h));
        }
    }
}

/// Parse and validate an import file's bytes into a batch.
///
/// Records are validated one at a time as the file is read (nothing holds
/// the list of raw records), errors are kept up to [`MAX_REPORTED_ERRORS`]
/// and only counted beyond, and once one record is bad the good ones are no
/// longer kept (nothing will be imported): memory does not grow with the
/// number of bad records.
pub fn parse(
    bytes: &[u8],
    path: &str,
    cfg: &Config,
    zones: &Zones,
    now: Timestamp,
) -> Result<ImportBatch, ImportError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    run_parser(&mut de, ImportBatch::default(), path, cfg, zones, now)
}

/// Where a parser puts the records it validated.
trait Sink {
    fn registrar(&mut self, r: Registrar) -> std::io::Result<()>;
    fn webhook(&mut self, registrar: String, hook: Option<Webhook>) {
        self.webhooks().push((registrar, hook));
    }
    fn webhooks(&mut self) -> &mut Vec<(String, Option<Webhook>)>;
    /// Resellers are few: kept in memory by every sink.
    fn resellers(&mut self) -> &mut Vec<Reseller>;
    fn contact(&mut self, c: Contact) -> std::io::Result<()>;
    fn domain(&mut self, d: Domain) -> std::io::Result<()>;
}

impl Sink for ImportBatch {
    fn webhooks(&mut self) -> &mut Vec<(String, Option<Webhook>)> {
        &mut self.webhooks
    }
    fn resellers(&mut self) -> &mut Vec<Reseller> {
        &mut self.resellers
    }
    fn registrar(&mut self, r: Registrar) -> std::io::Result<()> {
        self.registrars.push(r);
        Ok(())
    }
    fn contact(&mut self, c: Contact) -> std::io::Result<()> {
        self.contacts.push(c);
        Ok(())
    }
    fn domain(&mut self, d: Domain) -> std::io::Result<()> {
        self.domains.push(d);
        Ok(())
    }
}

fn run_parser<'de, R: serde_json::de::Read<'de>, S: Sink>(
    de: &mut serde_json::Deserializer<R>,
    sink: S,
    path: &str,
    cfg: &Config,
    zones: &Zones,
    now: Timestamp,
) -> Result<S, ImportError> {
    let mut p = Parser {
        cfg,
        zones,
        now,
        sink,
        spool_error: None,
        e: Errors {
            list: Vec::new(),
            total: 0,
            section: "registrars",
            index: 0,
        },
        seen_registrars: HashSet::new(),
        seen_resellers: HashSet::new(),
        seen_contacts: HashSet::new(),
        seen_domains: HashSet::new(),
    };
    let json_err = |e: serde_json::Error| ImportError::Json {
        path: path.to_string(),
        message: text::escape(&e.to_string()).into_owned(),
    };
    FileSeed(
        &mut |section: Section, i: usize, raw: &RawValue| match section {
            Section::Registrars => p.registrar(i, raw),
            Section::Resellers => p.reseller(i, raw),
            Section::Contacts => p.contact(i, raw),
            Section::Domains => p.domain(i, raw),
        },
    )
    .deserialize(&mut *de)
    .map_err(json_err)?;
    de.end().map_err(json_err)?;
    if let Some(source) = p.spool_error {
        return Err(ImportError::Read {
            path: "the import's temporary spool file".into(),
            source,
        });
    }
    if p.e.total == 0 {
        Ok(p.sink)
    } else {
        Err(ImportError::Records(RecordErrors {
            list: p.e.list,
            total: p.e.total,
        }))
    }
}

/// The state of one [`parse`]: what is validated so far.
struct Parser<'a, S> {
    cfg: &'a Config,
    zones: &'a Zones,
    now: Timestamp,
    sink: S,
    /// The first failure to spool a record (the file is refused).
    spool_error: Option<std::io::Error>,
    e: Errors,
    seen_registrars: HashSet<String>,
    /// Reseller handles in lower case (handles match in any case).
    seen_resellers: HashSet<String>,
    seen_contacts: HashSet<String>,
    seen_domains: HashSet<DomainName>,
}

impl<S: Sink> Parser<'_, S> {
    /// Hand a valid record to the sink (once nothing is wrong so far).
    fn keep(&mut self, put: impl FnOnce(&mut S) -> std::io::Result<()>) {
        if self.e.total > 0 || self.spool_error.is_some() {
            return;
        }
        if let Err(e) = put(&mut self.sink) {
            self.spool_error = Some(e);
        }
    }
    fn registrar(&mut self, i: usize, r: &RawValue) {
        self.e.section = "registrars";
        self.e.index = i;
        let seen = &mut self.seen_registrars;
        let r: RegistrarIn = match serde_json::from_str(r.get()) {
            Ok(r) => r,
            Err(err) => {
                self.e.push("-", err.to_string());
                return;
            }
        };
        if !valid_handle(&r.handle) {
            self.e.push("handle", handle_must());
        } else if !seen.insert(r.handle.clone()) {
            self.e.push(
                "handle",
                format!("'{}' appears twice in this file", r.handle),
            );
        }
        check_text(&mut self.e, "name", &Some(r.name.clone()), text::MAX_TEXT);
        check_with(&mut self.e, "url", &r.url, text::check_url);
        check_with(&mut self.e, "email", &r.email, text::check_email);
        let token = match r.api_token_sha256 {
            Some(t) if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) => {
                Some(t.to_ascii_lowercase())
            }
            Some(_) => {
                self.e
                    .push("api_token_sha256", "must be 64 hex digits (SHA-256)");
                None
            }
            None => None,
        };
        let mut certs = Vec::new();
        for c in &r.epp_cert_sha256 {
            if c.len() == 64 && c.chars().all(|c| c.is_ascii_hexdigit()) {
                certs.push(c.to_ascii_lowercase());
            } else {
                self.e
                    .push("epp_cert_sha256", "must be 64 hex digits (SHA-256)");
            }
        }
        if let Some(h) = &r.epp_password_hash {
            let ok = argon2::PasswordHash::new(h).is_ok_and(|p| p.algorithm.as_str() == "argon2id");
            if !ok {
                self.e.push(
                    "epp_password_hash",
                    "must be an argon2id PHC string ($argon2id$v=19$...)",
                );
            }
        }
        let hook = match &r.webhook {
            Some(Some(w)) => match crate::registry::input::webhook(&w.url, &w.secret) {
                Ok(h) => Some(Some(h)),
                Err((field, reason)) => {
                    self.e.push(field, reason);
                    None
                }
            },
            Some(None) => Some(None),
            None => None,
        };
        if self.e.total > 0 {
            return;
        }
        if let Some(hook) = hook {
            let handle = r.handle.clone();
            self.keep(|s| {
                s.webhook(handle, hook);
                Ok(())
            });
        }
        self.keep(|s| {
            s.registrar(Registrar {
                handle: r.handle,
                name: r.name,
                url: r.url,
                email: r.email,
                api_token_sha256: token,
                epp_cert_sha256: certs,
                epp_password_hash: r.epp_password_hash,
                epp_poll_acked: 0,
            })
        });
    }

    fn reseller(&mut self, i: usize, r: &RawValue) {
        self.e.section = "resellers";
        self.e.index = i;
        let r: ResellerIn = match serde_json::from_str(r.get()) {
            Ok(r) => r,
            Err(err) => {
                self.e.push("-", err.to_string());
                return;
            }
        };
        if !valid_handle(&r.handle) {
            self.e.push("handle", handle_must());
        } else if !self.seen_resellers.insert(Reseller::key(&r.handle)) {
            self.e.push(
                "handle",
                format!(
                    "'{}' appears twice in this file (handles match in any case)",
                    r.handle
                ),
            );
        }
        check_text(&mut self.e, "name", &Some(r.name.clone()), text::MAX_TEXT);
        check_ref(&mut self.e, "registrar", Some(&r.registrar));
        if self.e.total > 0 {
            return;
        }
        self.keep(|s| {
            s.resellers().push(Reseller {
                handle: r.handle,
                name: r.name,
                registrar: r.registrar,
            });
            Ok(())
        });
    }

    fn contact(&mut self, i: usize, c: &RawValue) {
        self.e.section = "contacts";
        self.e.index = i;
        let seen = &mut self.seen_contacts;
        let c: ContactJson = match serde_json::from_str(c.get()) {
            Ok(c) => c,
            Err(err) => {
                self.e.push("-", err.to_string());
                return;
            }
        };
        if valid_handle(&c.handle) && !seen.insert(c.handle.clone()) {
            self.e.push(
                "handle",
                format!("'{}' appears twice in this file", c.handle),
            );
        }
        // The contact rule is the registry's (the same EPP's contacts meet).
        match c.input().validate() {
            Ok(c) => self.keep(|s| s.contact(c)),
            Err(v) => {
                for (field, reason) in v {
                    self.e.push(field, reason);
                }
            }
        }
    }

    fn domain(&mut self, i: usize, d: &RawValue) {
        self.e.section = "domains";
        self.e.index = i;
        let seen = &mut self.seen_domains;
        let d: DomainIn = match serde_json::from_str(d.get()) {
            Ok(d) => d,
            Err(err) => {
                self.e.push("-", err.to_string());
                return;
            }
        };
        let name = match self.zones.parse_domain(&d.name) {
            Ok(n) => n,
            Err(err) => {
                self.e.push("name", err.to_string());
                return;
            }
        };
        if !seen.insert(name.clone()) {
            self.e
                .push("name", format!("'{name}' appears twice in this file"));
        }
        let paid_till = match d.paid_till {
            Some(p) => p,
            None => {
                lifecycle::initial_paid_till(d.created, &self.cfg.lifecycle).unwrap_or(d.created)
            }
        };
        if paid_till <= d.created {
            self.e.push("paid_till", "must be after created");
        }
        if d.created > self.now {
            self.e.push("created", "is in the future");
        }
        check_text(&mut self.e, "auth_info", &d.auth_info, text::MAX_TEXT);
        check_ref(&mut self.e, "registrar", Some(&d.registrar));
        check_ref(&mut self.e, "registrant", Some(&d.registrant));
        check_ref(&mut self.e, "admin", d.admin.as_deref());
        check_ref(&mut self.e, "tech", d.tech.as_deref());
        if let Some(r) = &d.reseller {
            check_ref(&mut self.e, "reseller", Some(r));
        }
        let nameservers = match validate_nameservers(
            name.as_str(),
            &d.nameservers,
            self.cfg.delegation.min_nameservers,
        ) {
            Ok(ns) => {
                let allow = crate::registry::input::loopback_glue_allowed(self.cfg);
                for (f, r) in crate::registry::input::check_glue(&ns, allow) {
                    self.e.push(f, r);
                }
                ns
            }
            Err(errs) => {
                for (f, r) in errs {
                    self.e.push(f, r);
                }
                Vec::new()
            }
        };
        let ds = match crate::registry::input::validate_set(&d.ds, !d.nameservers.is_empty()) {
            Ok(ds) => ds,
            Err(errs) => {
                for (f, r) in errs {
                    self.e.push(f, r);
                }
                Vec::new()
            }
        };
        if self.e.total > 0 {
            return;
        }
        let now = self.now;
        // An imported code expires like one set by its registrar.
        let auth_expires = d.auth_info.as_ref().map(|_| {
            d.auth_info_expires
                .unwrap_or(now + Config::chrono(self.cfg.lifecycle.auth_code_lifetime))
        });
        self.keep(|s| {
            s.domain(Domain {
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
                registration: crate::model::Registration {
                    reseller: d.reseller,
                    auth_info_expires: auth_expires,
                    ..Default::default()
                },
                ds,
            })
        });
    }
}

/// Records spooled to an unnamed temporary file (postcard, back to back),
/// with where each one starts: the validated file is written out once and
/// read back once, and memory holds only the offsets.
struct Spill {
    file: std::fs::File,
    buf: Vec<u8>,
    /// Start of each record; the last entry is the end of the last record.
    offsets: Vec<u64>,
}

/// Bytes buffered before a spill writes them out.
const SPILL_BUF: usize = 1 << 20;

impl Spill {
    fn new() -> std::io::Result<Spill> {
        Ok(Spill {
            file: tempfile::tempfile()?,
            buf: Vec::with_capacity(SPILL_BUF),
            offsets: vec![0],
        })
    }

    fn push<T: serde::Serialize>(&mut self, v: &T) -> std::io::Result<()> {
        use std::io::Write;
        let bytes = postcard::to_allocvec(v).map_err(std::io::Error::other)?;
        self.buf.extend_from_slice(&bytes);
        let end = self.offsets.last().copied().unwrap_or(0) + bytes.len() as u64;
        self.offsets.push(end);
        if self.buf.len() >= SPILL_BUF {
            self.file.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        self.file.write_all(&self.buf)?;
        self.buf = Vec::new();
        self.offsets.shrink_to_fit();
        self.file.flush()
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn get<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<T, StoreError> {
        use std::os::unix::fs::FileExt;
        let (start, end) = (self.offsets[i], self.offsets[i + 1]);
        let mut bytes = vec![0u8; (end - start) as usize];
        let spool = |e: String| StoreError::Backend(format!("import spool file: {e}"));
        self.file
            .read_exact_at(&mut bytes, start)
            .map_err(|e| spool(e.to_string()))?;
        postcard::from_bytes(&bytes).map_err(|e| spool(e.to_string()))
    }
}

/// A validated import file, spooled to disk: memory holds the registrars,
/// the domain names and offsets, not the records, so an import of a million
/// domains runs in bounded memory. Read back in write order
/// ([`ImportSource`]), any number of times.
pub struct Spooled {
    registrars: Vec<Registrar>,
    webhooks: Vec<(String, Option<Webhook>)>,
    resellers: Vec<Reseller>,
    contacts: Spill,
    domains: Spill,
    /// The domains' names, in file order.
    names: Vec<DomainName>,
}

impl Spooled {
    fn new() -> std::io::Result<Spooled> {
        Ok(Spooled {
            registrars: Vec::new(),
            webhooks: Vec::new(),
            resellers: Vec::new(),
            contacts: Spill::new()?,
            domains: Spill::new()?,
            names: Vec::new(),
        })
    }

    /// How many domains the file holds.
    pub fn domains(&self) -> usize {
        self.names.len()
    }

    /// The records in write order (registrars, contacts, domains by name).
    pub fn source(&self) -> impl ImportSource + '_ {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_unstable_by(|a, b| self.names[*a as usize].cmp(&self.names[*b as usize]));
        SpoolSource {
            spooled: self,
            pos: 0,
            order,
        }
    }
}

impl Sink for Spooled {
    fn webhooks(&mut self) -> &mut Vec<(String, Option<Webhook>)> {
        &mut self.webhooks
    }
    fn resellers(&mut self) -> &mut Vec<Reseller> {
        &mut self.resellers
    }
    fn registrar(&mut self, r: Registrar) -> std::io::Result<()> {
        self.registrars.push(r);
        Ok(())
    }
    fn contact(&mut self, c: Contact) -> std::io::Result<()> {
        self.contacts.push(&c)
    }
    fn domain(&mut self, d: Domain) -> std::io::Result<()> {
        self.domains.push(&d)?;
        self.names.push(d.name);
        Ok(())
    }
}

struct SpoolSource<'a> {
    spooled: &'a Spooled,
    pos: usize,
    order: Vec<u32>,
}

impl ImportSource for SpoolSource<'_> {
    fn next_record(&mut self) -> Result<Option<ImportRecord>, StoreError> {
        let s = self.spooled;
        let (w, c) = (s.webhooks.len(), s.contacts.len());
        let rs = s.resellers.len();
        let r = s.registrars.len() + w;
        let p = self.pos;
        self.pos += 1;
        Ok(if p < r - w {
            Some(ImportRecord::Registrar(s.registrars[p].clone()))
        } else if p < r {
            let (h, hook) = &s.webhooks[p - (r - w)];
            Some(ImportRecord::Webhook {
                registrar: h.clone(),
                hook: hook.clone(),
            })
        } else if p < r + rs {
            Some(ImportRecord::Reseller(s.resellers[p - r].clone()))
        } else if p - rs < r + c {
            let p = p - rs;
            Some(ImportRecord::Contact(s.contacts.get(p - r)?))
        } else {
            match self.order.get(p - rs - r - c) {
                Some(&i) => Some(ImportRecord::Domain {
                    index: i as usize,
                    domain: s.domains.get(i as usize)?,
                }),
                None => None,
            }
        })
    }
}

/// Read and validate an import file (no store needed) into memory. For
/// large files, [`spool_file`] holds less.
pub fn read_file(path: &Path, cfg: &Config, now: Timestamp) -> Result<ImportBatch, ImportError> {
    stream_file(path, ImportBatch::default(), cfg, now)
}

/// Read and validate an import file (no store needed) as a stream: the
/// file is never held whole, and the valid records go to a spool file.
pub fn spool_file(path: &Path, cfg: &Config, now: Timestamp) -> Result<Spooled, ImportError> {
    let spool_err = |source| ImportError::Read {
        path: "the import's temporary spool file".into(),
        source,
    };
    let mut spool = stream_file(path, Spooled::new().map_err(spool_err)?, cfg, now)?;
    spool
        .contacts
        .finish()
        .and_then(|()| spool.domains.finish())
        .map_err(spool_err)?;
    Ok(spool)
}

fn stream_file<S: Sink>(
    path: &Path,
    sink: S,
    cfg: &Config,
    now: Timestamp,
) -> Result<S, ImportError> {
    let p = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ImportError::Read {
        path: p.clone(),
        source,
    })?;
    let zones = cfg.zones().map_err(|e| ImportError::Json {
        path: p.clone(),
        message: e.to_string(),
    })?;
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    run_parser(&mut de, sink, &p, cfg, &zones, now)
}

/// Apply a validated batch through the registry service: all or nothing.
/// New names are first checked against the registered ones of their zone
/// for look-alikes (the zone policy's confusable rule): refused, or listed
/// in the summary's `flagged`.
pub fn apply(
    store: &dyn Store,
    batch: &ImportBatch,
    cfg: &Config,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    let names: Vec<&DomainName> = batch.domains.iter().map(|d| &d.name).collect();
    apply_from(store, &names, &mut BatchSource::new(batch), cfg, now)
}

/// [`apply`] for a spooled file ([`spool_file`]).
pub fn apply_spooled(
    store: &dyn Store,
    spooled: &Spooled,
    cfg: &Config,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    let names: Vec<&DomainName> = spooled.names.iter().collect();
    apply_from(store, &names, &mut spooled.source(), cfg, now)
}

/// `names`: the domains' names in file order (for the confusable rule).
fn apply_from(
    store: &dyn Store,
    names: &[&DomainName],
    src: &mut dyn ImportSource,
    cfg: &Config,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    let zones = cfg.zones().map_err(|e| ImportError::Json {
        path: "config".into(),
        message: e.to_string(),
    })?;
    let flagged = check_confusables(store, names, &zones)?;
    let reg = crate::registry::Registry::offline(store, cfg).map_err(|e| ImportError::Json {
        path: "config".into(),
        message: e.to_string(),
    })?;
    let mut errors = RecordErrors {
        list: Vec::new(),
        total: 0,
    };
    let result = reg.import_from(src, now, &mut |e| {
        errors.total += 1;
        if errors.list.len() < MAX_REPORTED_ERRORS {
            errors.list.push(e);
        }
    });
    let mut summary = match result {
        Ok(Some(s)) => s,
        Ok(None) => return Err(ImportError::Records(errors)),
        Err(crate::registry::RegistryError::Invalid(v)) => {
            return Err(ImportError::Records(RecordErrors {
                total: v.len(),
                list: v.into_iter().take(MAX_REPORTED_ERRORS).collect(),
            }))
        }
        Err(crate::registry::RegistryError::Store(s)) => return Err(ImportError::Store(s)),
        Err(other) => return Err(ImportError::Store(StoreError::Backend(other.to_string()))),
    };
    summary.flagged = flagged;
    Ok(summary)
}

/// The confusable rule for the batch's new names: errors for the refused,
/// messages for the flagged.
fn check_confusables(
    store: &dyn Store,
    names: &[&DomainName],
    zones: &Zones,
) -> Result<Vec<String>, ImportError> {
    let (refused, flagged) = look_alikes(store, zones, names)?;
    if refused.is_empty() {
        return Ok(flagged);
    }
    let total = refused.len();
    Err(ImportError::Records(RecordErrors {
        list: refused
            .into_iter()
            .take(MAX_REPORTED_ERRORS)
            .map(|(i, e)| RecordError {
                section: "domains",
                index: i,
                field: "name".into(),
                reason: e.to_string(),
            })
            .collect(),
        total,
    }))
}

/// Names screened per store call by [`look_alikes`].
const SCREEN_CHUNK: usize = 1000;

/// Refusals (`(index in names, why)`) and flag messages of the zone
/// policies' confusable rule for names about to be registered: each new
/// one (not yet in the store) is compared with the registered names of its
/// zone (the store's look-alike index) and with the new names before it.
#[allow(clippy::type_complexity)]
pub fn look_alikes(
    store: &dyn Store,
    zones: &Zones,
    names: &[&DomainName],
) -> Result<(Vec<(usize, names::NameError)>, Vec<String>), StoreError> {
    let mut refused = Vec::new();
    let mut flagged = Vec::new();
    let mut batch = ConfusableSet::new();
    // Only names of zones whose rule is on, screened a chunk at a time.
    let watched: Vec<(usize, ConfusableMode, String)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            names::confusable_mode(zones, n).map(|m| (i, m, names::skeleton_index_key(n)))
        })
        .collect();
    for chunk in watched.chunks(SCREEN_CHUNK) {
        let q: Vec<(&str, &str)> = chunk
            .iter()
            .map(|(i, _, k)| (names[*i].as_str(), k.as_str()))
            .collect();
        let answers = store.screen_names(&q)?;
        for ((i, mode, _), (registered, found)) in chunk.iter().zip(answers) {
            if registered {
                continue;
            }
            let name = names[*i];
            let existing = match found {
                Some(e) => Some(e),
                None => batch
                    .check_and_add(zones, name)
                    .map(|hit| hit.earlier.as_str().to_string()),
            };
            let Some(existing) = existing else { continue };
            let err = names::confusable_error(name, &existing);
            match mode {
                ConfusableMode::Refuse => refused.push((*i, err)),
                _ => flagged.push(err.to_string()),
            }
        }
    }
    Ok((refused, flagged))
}

/// Read, validate and apply an import file.
pub fn import_file(
    store: &dyn Store,
    path: &Path,
    cfg: &Config,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    let spooled = spool_file(path, cfg, now)?;
    apply_spooled(store, &spooled, cfg, now)
}
