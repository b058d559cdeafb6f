//! Validating records as the file is read, into a sink.

use std::collections::HashSet;

use serde::de::DeserializeSeed;
use serde_json::value::RawValue;

use crate::config::Config;
use crate::lifecycle;
use crate::model::{Contact, Domain, Hold, Registrar, Reseller, Timestamp, Webhook};
use crate::names::{DomainName, Zones};
use crate::registry::input::{handle_must, valid_handle, validate_nameservers};
use crate::store::ImportBatch;
use crate::text;

use super::error::{ImportError, RecordErrors};
use super::records::{
    check_ref, check_text, check_with, ContactJson, DomainIn, Errors, RegistrarIn, ResellerIn,
};
use super::sections::{FileSeed, Section};

/// Parse and validate an import file's bytes into a batch.
///
/// Records are validated one at a time as the file is read (nothing holds
/// the list of raw records), errors are kept up to [`super::MAX_REPORTED_ERRORS`]
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
pub(super) trait Sink {
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

pub(super) fn run_parser<'de, R: serde_json::de::Read<'de>, S: Sink>(
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
pub(super) struct Parser<'a, S> {
    pub(super) cfg: &'a Config,
    pub(super) zones: &'a Zones,
    pub(super) now: Timestamp,
    pub(super) sink: S,
    /// The first failure to spool a record (the file is refused).
    pub(super) spool_error: Option<std::io::Error>,
    pub(super) e: Errors,
    pub(super) seen_registrars: HashSet<String>,
    /// Reseller handles in lower case (handles match in any case).
    pub(super) seen_resellers: HashSet<String>,
    pub(super) seen_contacts: HashSet<String>,
    pub(super) seen_domains: HashSet<DomainName>,
}

impl<S: Sink> Parser<'_, S> {
    /// Record `i` of `section` as `T`, or `None` with the parse error
    /// noted against it.
    fn record<T: serde::de::DeserializeOwned>(
        &mut self,
        section: &'static str,
        i: usize,
        raw: &RawValue,
    ) -> Option<T> {
        self.e.section = section;
        self.e.index = i;
        match serde_json::from_str(raw.get()) {
            Ok(v) => Some(v),
            Err(err) => {
                self.e.push("-", err.to_string());
                None
            }
        }
    }
    /// Hand a valid record to the sink (once nothing is wrong so far).
    pub(super) fn keep(&mut self, put: impl FnOnce(&mut S) -> std::io::Result<()>) {
        if self.e.total > 0 || self.spool_error.is_some() {
            return;
        }
        if let Err(e) = put(&mut self.sink) {
            self.spool_error = Some(e);
        }
    }
    pub(super) fn registrar(&mut self, i: usize, r: &RawValue) {
        let Some(r) = self.record::<RegistrarIn>("registrars", i, r) else {
            return;
        };
        let seen = &mut self.seen_registrars;
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

    pub(super) fn reseller(&mut self, i: usize, r: &RawValue) {
        let Some(r) = self.record::<ResellerIn>("resellers", i, r) else {
            return;
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

    pub(super) fn contact(&mut self, i: usize, c: &RawValue) {
        let Some(c) = self.record::<ContactJson>("contacts", i, c) else {
            return;
        };
        let seen = &mut self.seen_contacts;
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

    pub(super) fn domain(&mut self, i: usize, d: &RawValue) {
        let Some(d) = self.record::<DomainIn>("domains", i, d) else {
            return;
        };
        let seen = &mut self.seen_domains;
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
