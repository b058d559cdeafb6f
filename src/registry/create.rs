//! Creating a domain: the name rules, the registrant, the first declaration.

use crate::delegation;
use crate::lifecycle::{self};
use crate::model::{Closing, DelegationRecord, Domain, HistoryEvent, Registration, Timestamp};
use crate::names::{self, DomainName};
use crate::store::{RecordError, StoreError, Txn};

use super::actor::Actor;
use super::error::{invalid, RegistryError, Result};
use super::input::{self, CreateIn};
use super::nameservers::validate_ns;
use super::rule::Rule;
use super::service::{LookAlikeIndex, Registry, Touched};
use super::{authcode, host};

impl<'a> Registry<'a> {
    /// Register a new domain for the calling registrar.
    pub fn create(&self, actor: &Actor, body: &CreateIn) -> Result<Domain> {
        let Actor::Registrar(handle) = actor else {
            return Err(RegistryError::NotAllowed(
                "domains are created by a registrar (or by import)".into(),
            ));
        };
        if body.registrar.as_ref().is_some_and(|r| r != handle) {
            return Err(invalid(
                "registrar",
                "a registrar creates domains only for itself (leave it out)",
            ));
        }
        let name = self.parse_name(&body.name)?;
        // The name rule first, outside the transaction (a reserved or taken
        // name is refused before its input is judged); again inside it.
        self.name_rule(
            &name,
            Some(&body.registrant),
            self.now(),
            &|n| self.store.domain(n),
            &|k, e| self.store.look_alike(k, e),
        )?;
        let mut ns = validate_ns(
            name.as_str(),
            &body.nameservers,
            self.config.delegation.min_nameservers,
        )?;
        self.glue_ok_ns(&ns)?;
        if let Some(a) = &body.auth_info {
            authcode::check_auth_code(a, self.lc().auth_code_min_length)?;
        }
        let has_ns = !ns.is_empty() || !body.host_objects.is_empty();
        let ds = input::ds_records(&body.ds, has_ns)?;
        if let Some(r) = &body.reseller {
            if !input::valid_handle(r) {
                return Err(invalid("reseller", input::handle_must()));
            }
        }
        let now = self.now();
        let mut txn = self.store.begin()?;
        // Read and (for a new handle) recorded in this transaction.
        let reseller = match &body.reseller {
            Some(r) => Some(self.claim_reseller(txn.as_mut(), handle, r, now)?),
            None => None,
        };
        // Host objects named by reference: read in this transaction, linked.
        let mut host_links = Vec::new();
        if !body.host_objects.is_empty() {
            let mut set = body.nameservers.clone();
            for raw in &body.host_objects {
                let h = self.linkable_host(txn.as_ref(), raw)?;
                set.push(host::host_entry(name.as_str(), &h));
                host_links.push(h.name);
            }
            ns = validate_ns(name.as_str(), &set, self.config.delegation.min_nameservers)?;
            host_links.sort_unstable();
            host_links.dedup();
        }
        let mut errs = Vec::new();
        for (field, h) in [
            ("registrant", Some(&body.registrant)),
            ("admin", body.admin.as_ref()),
            ("tech", body.tech.as_ref()),
        ] {
            if let Some(h) = h {
                if txn.contact(h)?.is_none() {
                    errs.push(RecordError {
                        section: "domain",
                        index: 0,
                        field: field.into(),
                        reason: format!("unknown contact '{h}'"),
                    });
                }
            }
        }
        if !errs.is_empty() {
            return Err(RegistryError::Invalid(errs));
        }
        for (field, h) in [
            ("registrant", Some(&body.registrant)),
            ("admin", body.admin.as_ref()),
            ("tech", body.tech.as_ref()),
        ] {
            if let Some(h) = h {
                self.usable_contact(txn.as_mut(), handle, field, h, now)?;
            }
        }
        // The name rule, read in this transaction (the same index import
        // uses): refused, or accepted and flagged in history.
        let NameRule {
            flagged,
            reserved_for_claimant,
        } = {
            let t: &dyn Txn = txn.as_ref();
            self.name_rule(
                &name,
                Some(&body.registrant),
                now,
                &|n| t.domain(n),
                &|k, e| t.look_alike(k, e),
            )?
        };
        if let Some(why) = &flagged {
            tracing::warn!(domain = %name, "created, flagged: {}", crate::text::escape(why));
        }
        // Host objects under the name belonged to its earlier registration:
        // they end with it (they never meet the name's next sponsor).
        self.drop_subordinate_hosts(txn.as_mut(), name.as_str())?;
        if self.verification_overdue(&body.registrant, now)? {
            return Err(RegistryError::refused(
                Rule::VerificationOverdue,
                format!(
                    "registrant {} has not answered a verification request in time",
                    body.registrant
                ),
            ));
        }
        let paid_till = lifecycle::initial_paid_till(now, self.lc())
            .ok_or_else(|| RegistryError::Store(StoreError::Backend("date overflow".into())))?;
        let d = Domain {
            name: name.clone(),
            registrar: handle.clone(),
            registrant: body.registrant.clone(),
            admin: body.admin.clone(),
            tech: body.tech.clone(),
            created: now,
            paid_till,
            nameservers: ns,
            auth_info: body.auth_info.clone(),
            hold: None,
            verification_requested: None,
            transferred: None,
            updated: now,
            registration: Registration {
                reseller,
                auth_info_expires: body
                    .auth_info
                    .as_ref()
                    .map(|_| now + self.dur(self.lc().auth_code_lifetime)),
                // Registered under a court reservation: the claimant holds it
                // for the registrant-change lock before passing it on.
                registrant_since: reserved_for_claimant.then_some(now),
                host_links,
                ..Registration::default()
            },
            ds,
        };
        txn.put_domain(&d)?;
        // A name freed earlier keeps an old record: this one replaces it.
        let rec = match delegation::on_declared(
            None,
            (&[], &[]),
            (&d.nameservers, &d.ds),
            now,
            self.window(),
        ) {
            Some((rec, _)) if !d.nameservers.is_empty() => rec,
            _ => DelegationRecord::undelegated(now),
        };
        txn.put_delegation(name.as_str(), &rec)?;
        let ev = HistoryEvent {
            at: now,
            from: None,
            to: rec.state,
            reason: format!(
                "registered by {handle} until {}{}{}",
                paid_till.to_rfc3339(),
                if d.nameservers.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; nameservers declared: {}",
                        d.nameservers
                            .iter()
                            .map(|n| n.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
                match &flagged {
                    Some(why) => format!("; flagged: {why}"),
                    None => String::new(),
                }
            ),
        };
        txn.append_event(name.as_str(), &ev, &actor.label(), &[handle.as_str()])?;
        txn.commit(now)?;
        self.notify(&[Touched {
            name: name.as_str().to_string(),
            zone: false,
        }]);
        Ok(d)
    }

    /// The one rule for "may `name` be registered now (by `registrant`,
    /// when known)": `create` applies it, `domain:check` and the API's
    /// availability answer with it. Refusals, in order: `reserved-name`,
    /// `confusable` (where the zone refuses look-alikes), `exists`,
    /// `court-reservation` (only the claimant may register the name while
    /// it is reserved; with no registrant known it is not available).
    /// `domain` and `find` read the store, in a transaction or not.
    pub(crate) fn name_rule(
        &self,
        name: &DomainName,
        registrant: Option<&str>,
        now: Timestamp,
        domain: &dyn Fn(&str) -> std::result::Result<Option<Domain>, StoreError>,
        find: &LookAlikeIndex<'_>,
    ) -> Result<NameRule> {
        if self.reserved.contains(name.as_str()) {
            return Err(RegistryError::refused(
                Rule::ReservedName,
                format!("{name} is a reserved name and cannot be registered"),
            ));
        }
        let mut flagged = None;
        if let Some((mode, why)) = self.look_alike(name, find)? {
            if mode == names::ConfusableMode::Refuse {
                return Err(RegistryError::refused(Rule::Confusable, why));
            }
            flagged = Some(why);
        }
        let mut reserved_for_claimant = false;
        if let Some(old) = domain(name.as_str())? {
            if self.status(&old, now).exists() {
                return Err(RegistryError::refused(
                    Rule::Exists,
                    format!("{name} is already registered"),
                ));
            }
            if let Some(Closing {
                at,
                claimant: Some(c),
            }) = &old.registration.closing
            {
                let until = *at + self.dur(self.lc().court_reservation);
                if now < until && registrant != Some(c.as_str()) {
                    return Err(RegistryError::refused(
                        Rule::CourtReservation,
                        format!(
                            "{name} is reserved for the claimant of a court decision until {}",
                            until.to_rfc3339()
                        ),
                    ));
                }
                reserved_for_claimant = now < until;
            }
        }
        Ok(NameRule {
            flagged,
            reserved_for_claimant,
        })
    }

    /// Any domain of `registrant` has a verification request past the
    /// suspension period (bounded scan).
    pub(super) fn verification_overdue(&self, registrant: &str, now: Timestamp) -> Result<bool> {
        let (names, _) = self.store.domains_by_contact(registrant, None, 1000)?;
        for n in names {
            if let Some(d) = self.store.domain(&n)? {
                if d.registrant == registrant
                    && self
                        .status(&d, now)
                        .blocks
                        .contains(&lifecycle::Block::VerificationOverdue)
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// What [`Registry::name_rule`] says of a name it lets be registered.
pub(crate) struct NameRule {
    /// A look-alike the zone accepts but flags: why.
    pub flagged: Option<String>,
    /// The registration is the court claimant's, under its reservation.
    pub reserved_for_claimant: bool,
}
