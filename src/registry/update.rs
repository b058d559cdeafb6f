//! One change to one domain, applied inside the registry's write
//! transaction ([`DomainUpdate`]), and the ownership rules every such
//! change obeys (docs/api.md "Ownership").
//!
//! Every edge builds a [`DomainUpdate`] (the REST API one part at a time,
//! EPP `domain:update` all its `add`/`rem`/`chg` parts at once) and the
//! registry reads the domain, applies the parts and writes it in one
//! transaction: two registrars' sessions adding nameservers at the same
//! moment both keep their add, and a refused part writes nothing.

use super::actor::Actor;
use super::error::{invalid, RegistryError, Result};
use super::host;
use super::input;
use super::input::update::DsChange;
use super::input::{DomainUpdate, DsIn};
use super::rule::Rule;
use super::service::{On, Registry, Touched};
use crate::delegation;
use crate::lifecycle::{self, Operation};
use crate::model::{DelegationRecord, Domain, Nameserver, PendingRegistrant, Timestamp};
use crate::names::{self, HostName};
use crate::store::{RecordError, Txn};

/// The same host name, as a registrar may write it (any case, a final dot).
fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

fn as_input(n: &Nameserver) -> input::NameserverIn {
    input::NameserverIn {
        name: n.name.as_str().to_string(),
        addresses: n.addresses.iter().map(|a| a.to_string()).collect(),
    }
}

impl Registry<'_> {
    /// Apply `u` to `name` in one transaction (the sponsor's, or the
    /// operator's). Returns the domain and its delegation record after.
    pub fn update_domain(
        &self,
        actor: &Actor,
        name: &str,
        u: &DomainUpdate,
    ) -> Result<(Domain, DelegationRecord)> {
        if u.is_empty() {
            return Err(invalid("update", "the update changes nothing"));
        }
        if let Some(a) = &u.auth_code {
            super::authcode::check_auth_code(a, self.lc().auth_code_min_length)?;
        }
        // Malformed DS records are refused before anything is read.
        let ds_in = u.ds_checked()?;
        let now = self.now();
        let mut txn = self.store.begin()?;
        let (out, touched) = self.update_in(txn.as_mut(), actor, name, u, &ds_in, now)?;
        txn.commit(now)?;
        self.notify(&[touched]);
        Ok(out)
    }

    fn update_in(
        &self,
        txn: &mut dyn Txn,
        actor: &Actor,
        name: &str,
        u: &DomainUpdate,
        ds_in: &DsChange,
        now: Timestamp,
    ) -> Result<((Domain, DelegationRecord), Touched)> {
        let window = self.window();
        self.modify_in(
            txn,
            actor,
            On::sponsor(name),
            None,
            now,
            |txn, d, st, now| {
                let (ns_change, ds_change) = (u.ns_change(), u.ds_change());
                for (on, op) in [
                    (ns_change || ds_change, Operation::Nameservers),
                    (
                        u.admin.is_some() || u.tech.is_some(),
                        Operation::UpdateContacts,
                    ),
                    (u.registrant.is_some(), Operation::ChangeRegistrant),
                    (u.auth_code.is_some(), Operation::ResetAuthCode),
                ] {
                    if on {
                        lifecycle::permits(st, op)?;
                    }
                }
                let mut notes: Vec<String> = Vec::new();
                if let Some(c) = &u.client_statuses {
                    let note = super::client_status::apply(actor, d, st, c)?;
                    notes.extend(Some(note).filter(|n| !n.is_empty()));
                }
                if u.admin.is_some() || u.tech.is_some() {
                    for (field, v) in [("admin", &u.admin), ("tech", &u.tech)] {
                        if let Some(Some(h)) = v {
                            self.usable_contact(txn, &d.registrar, field, h, now)?;
                        }
                    }
                    if let Some(a) = &u.admin {
                        d.admin = a.clone();
                    }
                    if let Some(t) = &u.tech {
                        d.tech = t.clone();
                    }
                    notes.push("contacts updated".into());
                }
                if let Some(to) = &u.registrant {
                    self.usable_contact(txn, &d.registrar, "registrant", to, now)?;
                    if &d.registrant == to {
                        return Err(invalid("registrant", "is already the registrant"));
                    }
                    d.registration.pending_registrant = Some(PendingRegistrant {
                        to: to.clone(),
                        requested: now,
                        accepted: None,
                        deadline: now + self.dur(self.lc().registrant_change_timeout),
                    });
                    notes.push(format!(
                        "registrant change to {to} requested by the registrant"
                    ));
                }
                if let Some(a) = &u.auth_code {
                    self.put_auth_code(d, a, now);
                    notes.push("auth code set".into());
                }
                let old = txn.delegation(name)?;
                let mut rec = old
                    .clone()
                    .unwrap_or_else(|| DelegationRecord::undelegated(now));
                if ns_change || ds_change {
                    let (old_ns, old_ds) = (d.nameservers.clone(), d.ds.clone());
                    if ns_change {
                        let mut set = match &u.ns_set {
                            Some(s) => {
                                // A declaration by name links to nothing.
                                d.registration.host_links.clear();
                                s.clone()
                            }
                            None => d.nameservers.iter().map(as_input).collect(),
                        };
                        set.retain(|x| !u.ns_rem.iter().any(|r| same_host(r, &x.name)));
                        d.registration
                            .host_links
                            .retain(|l| !u.ns_rem.iter().any(|r| same_host(r, l.as_str())));
                        set.extend(u.ns_add.iter().cloned());
                        for raw in &u.ns_add_hosts {
                            let h = self.linkable_host(&*txn, raw)?;
                            set.push(host::host_entry(d.name.as_str(), &h));
                            d.registration.host_links.push(h.name);
                        }
                        self.set_nameservers(d, &set)?;
                        let ns = d.nameservers.clone();
                        let links = &mut d.registration.host_links;
                        links.retain(|l| ns.iter().any(|n| &n.name == l));
                        links.sort_unstable();
                        links.dedup();
                    }
                    if ds_change {
                        let mut ds = ds_in.set.clone().unwrap_or_else(|| d.ds.clone());
                        if ds_in.rem_all {
                            ds.clear();
                        }
                        ds.retain(|x| !ds_in.rem.contains(x));
                        for x in &ds_in.add {
                            if !ds.contains(x) {
                                ds.push(x.clone());
                            }
                        }
                        if !ds.is_empty() && d.nameservers.is_empty() {
                            return Err(invalid(
                                "ds",
                                "a DS set needs nameservers: declare them first",
                            ));
                        }
                        // The combined set obeys the set rules (size, duplicates).
                        let list: Vec<DsIn> = ds.iter().map(DsIn::from).collect();
                        d.ds = input::ds_records(&list, true)?;
                    }
                    self.check_host_glue(&*txn, &old_ns, &d.nameservers)?;
                    let note = match (&u.ds_source, ds_change) {
                        (Some(s), true) => Some(format!("DS set changed via {s}")),
                        _ => None,
                    };
                    if let Some((r, mut ev)) = delegation::on_declared(
                        old.as_ref(),
                        (&old_ns, &old_ds),
                        (&d.nameservers, &d.ds),
                        now,
                        window,
                    ) {
                        if let Some(n) = &note {
                            ev.reason = format!("{n}; {}", ev.reason);
                        }
                        txn.put_delegation(name, &r)?;
                        txn.append_event(name, &ev, &actor.label(), &[d.registrar.as_str()])?;
                        rec = r;
                    }
                }
                Ok((notes.join("; "), (d.clone(), rec)))
            },
        )
    }

    /// A host object a domain may link (EPP `hostObj`): it must exist.
    pub(super) fn linkable_host(
        &self,
        txn: &dyn Txn,
        raw: &str,
    ) -> Result<crate::model::HostObject> {
        let name: HostName = names::parse_host(raw).map_err(|e| {
            RegistryError::Invalid(vec![RecordError {
                section: "host",
                index: 0,
                field: "name".into(),
                reason: e.to_string(),
            }])
        })?;
        txn.host_object(name.as_str())?
            .ok_or_else(|| RegistryError::refused(Rule::NoHost, format!("no such host: {name}")))
    }

    /// The contact rule (docs/api.md "Ownership"): a domain sponsored by
    /// `registrar` may name contact `h` only if `registrar` sponsors it. A
    /// contact without a sponsor (imported without one, or stored before
    /// contacts had one) belongs to the registrar of the live domains
    /// naming it; if none does, the first registrar to name it becomes its
    /// sponsor (written in this transaction).
    pub(super) fn usable_contact(
        &self,
        txn: &mut dyn Txn,
        registrar: &str,
        field: &str,
        h: &str,
        now: Timestamp,
    ) -> Result<()> {
        let Some(mut c) = txn.contact(h)? else {
            return Err(invalid(field, format!("unknown contact '{h}'")));
        };
        let refused = || {
            RegistryError::refused(
                Rule::ContactSponsor,
                format!(
                    "contact {h} is not sponsored by {registrar}: a domain names only contacts of its own registrar"
                ),
            )
        };
        match c.sponsor.as_deref() {
            Some(s) if s == registrar => Ok(()),
            Some(_) => Err(refused()),
            None => {
                let (names, _) = self.store.domains_by_contact(h, None, 1000)?;
                for n in names {
                    if let Some(d) = txn.domain(&n)? {
                        if d.registrar != registrar && self.status(&d, now).exists() {
                            return Err(refused());
                        }
                    }
                }
                c.sponsor = Some(registrar.to_string());
                txn.put_contact(&c)?;
                Ok(())
            }
        }
    }

    /// The reseller rule (docs/api.md "Ownership"): a reseller (handle in
    /// any case) belongs to one registrar, its stored object's; a registrar
    /// may not tag its domain with another registrar's reseller (an
    /// operator's `reseller move` would then hand the domain over). A
    /// handle not yet known becomes a reseller of `registrar`. Returns the
    /// reseller's handle as stored (the one spelling its domains carry).
    pub(super) fn claim_reseller(
        &self,
        txn: &mut dyn Txn,
        registrar: &str,
        r: &str,
        now: Timestamp,
    ) -> Result<String> {
        let refused = || {
            RegistryError::refused(
                Rule::ResellerSponsor,
                format!("reseller {r} belongs to another registrar"),
            )
        };
        if let Some(obj) = txn.reseller(r)? {
            return if obj.registrar == registrar {
                Ok(obj.handle)
            } else {
                Err(refused())
            };
        }
        // A store from before reseller objects: the registrar of the live
        // domains naming it (any spelling) owns it; record that now.
        let (handle, owners) = self.reseller_users(r, now)?;
        if owners.iter().any(|o| o != registrar) {
            return Err(refused());
        }
        let handle = handle.unwrap_or_else(|| r.to_string());
        txn.put_reseller(&crate::model::Reseller {
            handle: handle.clone(),
            name: handle.clone(),
            registrar: registrar.to_string(),
        })?;
        Ok(handle)
    }

    /// The live domains naming reseller `r` in any spelling: the spelling
    /// found (if any) and the registrars of those domains.
    pub(super) fn reseller_users(
        &self,
        r: &str,
        now: Timestamp,
    ) -> Result<(Option<String>, Vec<String>)> {
        let mut spelling = None;
        let mut owners: Vec<String> = Vec::new();
        for n in self.reseller_domains(r, None)? {
            let Some(d) = self.store.domain(&n)? else {
                continue;
            };
            if !self.status(&d, now).exists() {
                continue;
            }
            if spelling.is_none() {
                spelling = d.registration.reseller.clone();
            }
            if !owners.contains(&d.registrar) {
                owners.push(d.registrar.clone());
            }
        }
        Ok((spelling, owners))
    }

    /// Names of the domains carrying reseller `r` in its stored spelling
    /// `known` or any of the usual spellings of `r` (records written before
    /// handles were matched in any case may differ).
    pub(super) fn reseller_domains(&self, r: &str, known: Option<&str>) -> Result<Vec<String>> {
        let mut forms: Vec<String> = known.map(str::to_string).into_iter().collect();
        for f in [
            r.to_string(),
            r.to_ascii_uppercase(),
            r.to_ascii_lowercase(),
        ] {
            if !forms.contains(&f) {
                forms.push(f);
            }
        }
        let mut out = std::collections::BTreeSet::new();
        for f in forms {
            let (names, _) = self.store.domains_by_reseller(&f, None, usize::MAX)?;
            out.extend(names);
        }
        Ok(out.into_iter().collect())
    }
}
