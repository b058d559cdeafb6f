//! Bulk import of a registry file, all or nothing.

use std::collections::HashSet;

use crate::delegation;
use crate::model::{DelegationRecord, DelegationState, Domain, Timestamp};
use crate::store::{ImportBatch, ImportSummary, RecordError};

use super::error::{RegistryError, Result};
use super::service::{Registry, Touched};

impl<'a> Registry<'a> {
    /// Apply a validated import batch: all or nothing. An operator's hold
    /// or dispute lock is never cleared by import.
    pub fn import(&self, batch: &ImportBatch, now: Timestamp) -> Result<ImportSummary> {
        let mut errors = Vec::new();
        let mut src = crate::store::BatchSource::new(batch);
        match self.import_from(&mut src, now, &mut |e| errors.push(e))? {
            Some(s) => Ok(s),
            None => Err(RegistryError::Invalid(errors)),
        }
    }

    /// Apply validated import records, read one at a time from `src` (in
    /// write order: registrars, contacts, domains), in one transaction: all
    /// or nothing. A refused record (unknown reference, reserved name) goes
    /// to `on_error` (which may keep only the first few: memory does not
    /// grow with them) and the result is `None`: nothing was written.
    pub fn import_from(
        &self,
        src: &mut dyn crate::store::ImportSource,
        now: Timestamp,
        on_error: &mut dyn FnMut(RecordError),
    ) -> Result<Option<ImportSummary>> {
        use crate::store::ImportRecord;
        let window = self.window();
        let mut txn = self.store.begin()?;
        // Announce the bulk write before the first read: a networked
        // backend then excludes other writers once for the whole import
        // instead of locking each registrar and contact it reads (hundreds
        // of thousands of locks in one transaction exhaust PostgreSQL's
        // lock table).
        txn.prefetch(&[], &[])?;
        let mut failed = false;
        let mut summary = ImportSummary::default();
        let mut touched = Vec::new();
        let mut reg_seen: HashSet<String> = HashSet::new();
        // Contacts known to exist in this transaction (import removes none):
        // most are referred to by several domains.
        let mut contact_seen: HashSet<String> = HashSet::new();
        // A contact's sponsor, and whether this import chose it from a
        // domain (then no domain of another registrar may name it).
        let mut contact_sponsor: std::collections::HashMap<String, (Option<String>, bool)> =
            std::collections::HashMap::new();
        let mut contact_index = 0usize;
        // A reseller (key: handle in lower case): its handle as stored, its
        // registrar, and whether the file's entry (or the store) says so
        // (`false`: inferred from the file's domains naming it).
        let mut reseller_of: std::collections::HashMap<String, (String, String, bool)> =
            std::collections::HashMap::new();
        let mut reseller_index = 0usize;
        // Domains are handled in chunks, announced to the store first (a
        // networked backend reads and writes a chunk in a few statements).
        let mut chunk: Vec<(usize, Domain)> = Vec::with_capacity(IMPORT_CHUNK);
        let mut done = false;
        while !done {
            let rec = src.next_record()?;
            let d = match rec {
                Some(ImportRecord::Registrar(mut r)) => {
                    // The EPP message-queue cursor is the registry's, not the file's.
                    if let Some(old) = txn.registrar(&r.handle)? {
                        r.epp_poll_acked = old.epp_poll_acked;
                    }
                    txn.put_registrar(&r)?;
                    summary.registrars += 1;
                    continue;
                }
                Some(ImportRecord::Webhook { registrar, hook }) => {
                    txn.put_webhook(&registrar, hook.as_ref())?;
                    continue;
                }
                Some(ImportRecord::Reseller(r)) => {
                    if !reg_seen.contains(&r.registrar) {
                        if txn.registrar(&r.registrar)?.is_some() {
                            reg_seen.insert(r.registrar.clone());
                        } else {
                            failed = true;
                            on_error(RecordError {
                                section: "resellers",
                                index: reseller_index,
                                field: "registrar".into(),
                                reason: format!("unknown registrar '{}'", r.registrar),
                            });
                        }
                    }
                    reseller_index += 1;
                    // A stored reseller keeps its spelling (its domains
                    // carry it).
                    let handle = txn
                        .reseller(&r.handle)?
                        .map_or(r.handle.clone(), |o| o.handle);
                    let r = crate::model::Reseller { handle, ..r };
                    reseller_of.insert(
                        crate::model::Reseller::key(&r.handle),
                        (r.handle.clone(), r.registrar.clone(), true),
                    );
                    txn.put_reseller(&r)?;
                    continue;
                }
                Some(ImportRecord::Contact(mut c)) => {
                    // The creation time is the registry's: first stored; so
                    // is a sponsor the file does not name.
                    let old = txn.contact(&c.handle)?;
                    c.created = match &old {
                        Some(old) => old.created,
                        None => Some(now),
                    };
                    match &c.sponsor {
                        Some(r) if !reg_seen.contains(r) => {
                            if txn.registrar(r)?.is_some() {
                                reg_seen.insert(r.clone());
                            } else {
                                failed = true;
                                on_error(RecordError {
                                    section: "contacts",
                                    index: contact_index,
                                    field: "registrar".into(),
                                    reason: format!("unknown registrar '{r}'"),
                                });
                            }
                        }
                        Some(_) => {}
                        None => c.sponsor = old.and_then(|o| o.sponsor),
                    }
                    contact_index += 1;
                    if c.sponsor.is_some() {
                        contact_sponsor.insert(c.handle.clone(), (c.sponsor.clone(), false));
                    }
                    txn.put_contact(&c)?;
                    contact_seen.insert(c.handle);
                    summary.contacts += 1;
                    continue;
                }
                Some(ImportRecord::Domain { index, domain }) => Some((index, domain)),
                None => None,
            };
            match d {
                Some(d) => {
                    chunk.push(d);
                    if chunk.len() < IMPORT_CHUNK {
                        continue;
                    }
                }
                None => done = true,
            }
            let names: Vec<&str> = chunk.iter().map(|(_, d)| d.name.as_str()).collect();
            let mut contacts: Vec<&str> = chunk
                .iter()
                .flat_map(|(_, d)| {
                    [Some(&d.registrant), d.admin.as_ref(), d.tech.as_ref()]
                        .into_iter()
                        .flatten()
                        .map(String::as_str)
                })
                .collect();
            contacts.sort_unstable();
            contacts.dedup();
            txn.prefetch(&names, &contacts)?;
            for (i, mut d) in std::mem::take(&mut chunk) {
                let name = d.name.as_str();
                let mut err = |field: &str, reason: String| {
                    failed = true;
                    on_error(RecordError {
                        section: "domains",
                        index: i,
                        field: field.into(),
                        reason,
                    })
                };
                if !reg_seen.contains(&d.registrar) {
                    if txn.registrar(&d.registrar)?.is_some() {
                        reg_seen.insert(d.registrar.clone());
                    } else {
                        err("registrar", format!("unknown registrar '{}'", d.registrar));
                    }
                }
                for (field, h) in [
                    ("registrant", Some(&d.registrant)),
                    ("admin", d.admin.as_ref()),
                    ("tech", d.tech.as_ref()),
                ] {
                    if let Some(h) = h {
                        if contact_seen.contains(h) {
                            continue;
                        }
                        if txn.contact_exists(h)? {
                            contact_seen.insert(h.clone());
                        } else {
                            err(field, format!("unknown contact '{h}'"));
                        }
                    }
                }
                // A contact the file gives no registrar belongs to the
                // registrar of the file's domains naming it: one only.
                for (field, h) in [
                    ("registrant", Some(&d.registrant)),
                    ("admin", d.admin.as_ref()),
                    ("tech", d.tech.as_ref()),
                ] {
                    let Some(h) = h else { continue };
                    let known = match contact_sponsor.get(h) {
                        Some(x) => x.clone(),
                        None => {
                            let s = txn.contact(h)?.and_then(|c| c.sponsor);
                            let x = (s, false);
                            contact_sponsor.insert(h.clone(), x.clone());
                            x
                        }
                    };
                    match known {
                        (None, _) => {
                            if let Some(mut c) = txn.contact(h)? {
                                c.sponsor = Some(d.registrar.clone());
                                txn.put_contact(&c)?;
                                contact_sponsor
                                    .insert(h.clone(), (Some(d.registrar.clone()), true));
                            }
                        }
                        (Some(r), true) if r != d.registrar => err(
                            field,
                            format!(
                                "contact {h} is named by domains of {r} and {}: give the contact a \"registrar\"",
                                d.registrar
                            ),
                        ),
                        _ => {}
                    }
                }
                // A domain's reseller belongs to its registrar: the file's
                // entry or the stored reseller says which, else the file's
                // domains naming it (all of one registrar).
                if let Some(r) = d.registration.reseller.clone() {
                    let key = crate::model::Reseller::key(&r);
                    let known = match reseller_of.get(&key) {
                        Some(x) => Some(x.clone()),
                        None => txn.reseller(&r)?.map(|o| (o.handle, o.registrar, true)),
                    };
                    match known {
                        Some((_, owner, true)) if owner != d.registrar => err(
                            "reseller",
                            format!(
                                "reseller {r} belongs to {owner}, not to the domain's registrar {}",
                                d.registrar
                            ),
                        ),
                        Some((_, owner, false)) if owner != d.registrar => err(
                            "reseller",
                            format!(
                                "reseller {r} is given to domains of {owner} and {}: a reseller belongs to one registrar (give it a \"resellers\" entry)",
                                d.registrar
                            ),
                        ),
                        Some((handle, owner, from_entry)) => {
                            reseller_of.insert(key, (handle.clone(), owner, from_entry));
                            d.registration.reseller = Some(handle);
                        }
                        None => {
                            // (A refused file's transaction is dropped.)
                            txn.put_reseller(&crate::model::Reseller {
                                handle: r.clone(),
                                name: r.clone(),
                                registrar: d.registrar.clone(),
                            })?;
                            reseller_of.insert(key, (r, d.registrar.clone(), false));
                        }
                    }
                }
                if self.reserved.contains(name) {
                    err("name", format!("{name} is a reserved name"));
                }
                if failed {
                    // Keep checking references, but stop writing: the
                    // transaction is dropped (aborted) below.
                    continue;
                }
                let old: Option<Domain> = txn.domain(name)?;
                let mut new = d.clone();
                let mut hold_event = None;
                if let Some(o) = &old {
                    // Registry workflow state is the registry's: import sets
                    // only the reseller.
                    let reseller = new.registration.reseller.take();
                    let file_expires = new.registration.auth_info_expires;
                    new.registration = o.registration.clone();
                    new.registration.reseller = reseller;
                    match (&new.hold, &o.hold) {
                        // A hold that stays keeps its original start and reason.
                        (Some(_), Some(oh)) => new.hold = Some(oh.clone()),
                        // An operator's hold is never cleared by import.
                        (None, Some(oh)) if o.registration.hold_by_operator => {
                            new.hold = Some(oh.clone())
                        }
                        (None, Some(_)) => hold_event = Some("hold released by import"),
                        (Some(_), None) => hold_event = Some("hold: set by import"),
                        (None, None) => {}
                    }
                    // A new code (or one an older import left without an
                    // expiry) expires as the file says, else a lifetime on.
                    if new.auth_info != o.auth_info
                        || (new.auth_info.is_some() && o.registration.auth_info_expires.is_none())
                    {
                        new.registration.auth_info_expires = new.auth_info.as_ref().and(
                            file_expires.or(Some(now + self.dur(self.lc().auth_code_lifetime))),
                        );
                    }
                    new.updated = o.updated;
                    if *o == new {
                        summary.unchanged += 1;
                        summary.domains += 1;
                        continue;
                    }
                } else if new.hold.is_some() {
                    hold_event = Some("hold: set by import");
                }
                new.updated = now;
                txn.put_domain(&new)?;
                let old_rec: Option<DelegationRecord> = txn.delegation(name)?;
                if let Some((rec, ev)) = delegation::on_declared(
                    old_rec.as_ref(),
                    old.as_ref()
                        .map_or((&[][..], &[][..]), |o| (&o.nameservers, &o.ds)),
                    (&new.nameservers, &new.ds),
                    now,
                    window,
                ) {
                    if old_rec.is_some() || !new.nameservers.is_empty() {
                        txn.append_event(name, &ev, "import", &[new.registrar.as_str()])?;
                    }
                    if rec.state == DelegationState::Testing {
                        summary.tests_started += 1;
                    }
                    txn.put_delegation(name, &rec)?;
                }
                if let Some(h) = hold_event {
                    self.event(txn.as_mut(), &new, now, "import", h, &[])?;
                }
                touched.push(Touched {
                    name: name.to_string(),
                    zone: true,
                });
                summary.domains += 1;
            }
        }
        if failed {
            return Ok(None);
        }
        txn.commit(now)?;
        self.notify(&touched);
        Ok(Some(summary))
    }
}

/// Domains an import announces to the store at a time ([`crate::store::Txn::prefetch`]).
const IMPORT_CHUNK: usize = 1000;
