//! Declaring nameservers and DS, and asking for a retest.

use crate::delegation;
use crate::lifecycle::Operation;
use crate::model::{DelegationRecord, Domain, Timestamp};
use crate::store::Txn;

use super::actor::Actor;
use super::error::{self, RegistryError, Result};
use super::input::{self, DomainUpdate, NameserverIn};
use super::rule::Rule;
use super::service::{On, Registry, Touched};

impl<'a> Registry<'a> {
    /// Declare the NS set (validated here); a changed set starts testing
    /// (a delegated domain stays delegated on its old set meanwhile).
    pub fn declare_nameservers(
        &self,
        actor: &Actor,
        name: &str,
        ns: &[NameserverIn],
    ) -> Result<(Domain, DelegationRecord)> {
        let u = DomainUpdate {
            ns_set: Some(ns.to_vec()),
            ..Default::default()
        };
        self.update_domain(actor, name, &u)
    }

    /// The NS declaration rule on `d` (every edge's, and a host object's
    /// change): validate the set, replace it; no NS set, no DS set.
    pub(super) fn set_nameservers(
        &self,
        d: &mut Domain,
        ns: &[NameserverIn],
    ) -> Result<DeclaredBefore> {
        let ns = validate_ns(d.name.as_str(), ns, self.config.delegation.min_nameservers)?;
        self.glue_ok_ns(&ns)?;
        let old_ns = std::mem::replace(&mut d.nameservers, ns);
        let old_ds = d.ds.clone();
        if d.nameservers.is_empty() {
            // No delegation at all: a DS set has nothing to sign.
            d.ds.clear();
        }
        Ok((old_ns, old_ds))
    }

    /// Declare (or, empty, remove) the DS set, checked by the registry with
    /// the rule `create` uses ([`input::ds_records`], inside
    /// [`Self::update_domain`]): tested like an NS change (a delegated
    /// domain keeps its published DS until the new set passes; removing
    /// it goes unsigned at once). `source` (`registrar API`, `CDS`) is
    /// named in the history.
    pub fn declare_ds(
        &self,
        actor: &Actor,
        name: &str,
        ds: Vec<input::DsIn>,
        source: &str,
    ) -> Result<(Domain, DelegationRecord)> {
        let u = DomainUpdate {
            ds_set: Some(ds),
            ds_source: Some(source.to_string()),
            ..Default::default()
        };
        self.update_domain(actor, name, &u)
    }

    /// Change a domain's declared delegation with `change` (which returns
    /// the previous NS and DS sets) and run the state machine's declaration
    /// rule, inside a transaction the caller commits (a host object's
    /// change); `note` (what caused the change) leads the history event's
    /// text.
    pub(super) fn redeclare_in(
        &self,
        txn: &mut dyn Txn,
        actor: &Actor,
        on: On<'_>,
        note: Option<String>,
        now: Timestamp,
        change: impl FnOnce(&mut Domain) -> Result<DeclaredBefore>,
    ) -> Result<((Domain, DelegationRecord), Touched)> {
        let window = self.window();
        let name = on.name;
        self.modify_in(
            txn,
            actor,
            on,
            Some(Operation::Nameservers),
            now,
            |txn, d, _, now| {
                let old = txn.delegation(name)?;
                let (old_ns, old_ds) = change(d)?;
                self.check_host_glue(&*txn, &old_ns, &d.nameservers)?;
                match delegation::on_declared(
                    old.as_ref(),
                    (&old_ns, &old_ds),
                    (&d.nameservers, &d.ds),
                    now,
                    window,
                ) {
                    Some((rec, mut ev)) => {
                        if let Some(n) = &note {
                            ev.reason = format!("{n}; {}", ev.reason);
                        }
                        txn.put_delegation(name, &rec)?;
                        txn.append_event(name, &ev, &actor.label(), &[d.registrar.as_str()])?;
                        Ok((String::new(), (d.clone(), rec)))
                    }
                    None => {
                        // Same sets (perhaps reordered): the state stays.
                        let rec = old.unwrap_or_else(|| DelegationRecord::undelegated(now));
                        Ok((String::new(), (d.clone(), rec)))
                    }
                }
            },
        )
    }

    /// Restart testing after `test_failed` (or during testing).
    pub fn retest(&self, actor: &Actor, name: &str) -> Result<(Domain, DelegationRecord)> {
        let window = self.window();
        self.modify(actor, name, Some(Operation::Retest), |txn, d, _, now| {
            let old = txn
                .delegation(name)?
                .unwrap_or_else(|| DelegationRecord::undelegated(now));
            let (rec, ev) = delegation::on_retest(&old, now, window)
                .map_err(|e| RegistryError::refused(Rule::State, e.to_string()))?;
            txn.put_delegation(name, &rec)?;
            txn.append_event(name, &ev, &actor.label(), &[d.registrar.as_str()])?;
            Ok((String::new(), (d.clone(), rec)))
        })
    }
}

impl Registry<'_> {
    fn refuse_glue(&self, section: &'static str, errs: Vec<(String, String)>) -> Result<()> {
        if errs.is_empty() {
            return Ok(());
        }
        Err(error::fields(section, errs))
    }

    /// The glue rule over a declared NS set.
    pub(super) fn glue_ok_ns(&self, ns: &[crate::model::Nameserver]) -> Result<()> {
        self.refuse_glue(
            "domain",
            input::check_glue(ns, input::loopback_glue_allowed(self.config)),
        )
    }

    /// The glue rule over a host object's addresses given under `field`.
    pub(super) fn glue_ok(&self, field: &str, ips: &[std::net::IpAddr]) -> Result<()> {
        let allow = input::loopback_glue_allowed(self.config);
        let errs = ips
            .iter()
            .enumerate()
            .filter_map(|(k, ip)| {
                input::glue_refusal(*ip, allow)
                    .map(|why| (format!("{field}[{k}]"), format!("{ip} {why}")))
            })
            .collect();
        self.refuse_glue("host", errs)
    }
}

/// The NS and DS sets a domain declared before a change.
pub(super) type DeclaredBefore = (Vec<crate::model::Nameserver>, Vec<crate::model::DsRecord>);

/// [`input::validate_nameservers`] as a registry error.
pub(super) fn validate_ns(
    name: &str,
    ns: &[NameserverIn],
    min: usize,
) -> Result<Vec<crate::model::Nameserver>> {
    input::validate_nameservers(name, ns, min).map_err(|v| error::fields("domain", v))
}
