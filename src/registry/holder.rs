//! What the holder asks through its registrar: renewal, contacts, registrant change, early cancellation, verification.

use crate::lifecycle::{self, Operation};
use crate::model::{Closing, Domain, Timestamp};
use crate::store::StoreError;

use super::actor::Actor;
use super::error::{RegistryError, Result};
use super::input::DomainUpdate;
use super::rule::Rule;
use super::service::Registry;

impl<'a> Registry<'a> {
    /// Extend the registration by one period; in the grace period this
    /// restores the domain.
    pub fn renew(&self, actor: &Actor, name: &str) -> Result<Domain> {
        self.modify(actor, name, Some(Operation::Renew), |_, d, st, _| {
            let new = lifecycle::renewed_paid_till(d, &self.config.lifecycle)
                .ok_or_else(|| RegistryError::Store(StoreError::Backend("date overflow".into())))?;
            d.paid_till = new;
            let how = if st.expired {
                " (restored from grace)"
            } else {
                ""
            };
            Ok((
                format!("renewed until {}{how}", new.to_rfc3339()),
                d.clone(),
            ))
        })
    }

    /// Replace the admin and/or tech contact (`Some(None)` removes one).
    pub fn update_contacts(
        &self,
        actor: &Actor,
        name: &str,
        admin: Option<Option<String>>,
        tech: Option<Option<String>>,
    ) -> Result<Domain> {
        let u = DomainUpdate {
            admin,
            tech,
            ..Default::default()
        };
        Ok(self.update_domain(actor, name, &u)?.0)
    }

    /// Outgoing registrant's request to hand the domain to contact `to`
    /// (a contact of the domain's sponsor).
    pub fn registrant_change_request(&self, actor: &Actor, name: &str, to: &str) -> Result<Domain> {
        let u = DomainUpdate {
            registrant: Some(to.to_string()),
            ..Default::default()
        };
        Ok(self.update_domain(actor, name, &u)?.0)
    }

    /// Incoming registrant's acceptance; the registry completes the change
    /// (validity unchanged).
    pub fn registrant_change_accept(&self, actor: &Actor, name: &str) -> Result<Domain> {
        self.modify(
            actor,
            name,
            Some(Operation::ChangeRegistrant),
            |_, d, _, now| {
                let Some(mut p) = d.registration.pending_registrant.take() else {
                    return Err(RegistryError::refused(
                        Rule::NoRequest,
                        "no registrant change is pending",
                    ));
                };
                p.accepted = Some(now);
                let from = std::mem::replace(&mut d.registrant, p.to.clone());
                d.registration.registrant_since = Some(now);
                Ok((
                    format!(
                        "registrant changed {from} -> {} (both sides consented)",
                        p.to
                    ),
                    d.clone(),
                ))
            },
        )
    }

    /// Withdraw a pending registrant change request.
    pub fn registrant_change_cancel(&self, actor: &Actor, name: &str) -> Result<Domain> {
        self.modify(actor, name, None, |_, d, _, _| {
            if d.registration.pending_registrant.take().is_none() {
                return Err(RegistryError::refused(
                    Rule::NoRequest,
                    "no registrant change is pending",
                ));
            }
            Ok(("registrant change request withdrawn".into(), d.clone()))
        })
    }

    /// Early cancellation at the registrant's request: now, or at the end
    /// of the paid period. Revocable until it takes effect.
    pub fn close(&self, actor: &Actor, name: &str, at_end: bool) -> Result<Timestamp> {
        self.modify(actor, name, Some(Operation::Close), |txn, d, _, now| {
            if matches!(actor, Actor::Registrar(_)) {
                self.check_subordinate_hosts(name, now)?;
            }
            let at = if at_end { d.paid_till.max(now) } else { now };
            d.registration.closing = Some(Closing { at, claimant: None });
            if !at_end {
                self.drop_subordinate_hosts(txn, name)?;
            }
            let reason = if at_end {
                format!("close at the end of the paid period ({})", at.to_rfc3339())
            } else {
                "closed at the registrant's request; the name is free".into()
            };
            Ok((reason, at))
        })
    }

    /// Revoke a scheduled close that has not taken effect.
    pub fn revoke_close(&self, actor: &Actor, name: &str) -> Result<Domain> {
        self.modify(actor, name, None, |_, d, _, _| {
            if d.registration.closing.take().is_none() {
                return Err(RegistryError::refused(
                    Rule::NoRequest,
                    "no close is scheduled",
                ));
            }
            Ok(("scheduled close revoked".into(), d.clone()))
        })
    }

    /// The registrant is asked to verify its data: by the operator, or by
    /// the sponsoring registrar (docs/api.md); the same 14/60-day
    /// consequences either way. A registrar cannot ask again while a
    /// request is pending: that would restart the clock of an unanswered
    /// one (the operator may).
    pub fn verification_request(&self, actor: &Actor, name: &str) -> Result<()> {
        let by_registrar = *actor != Actor::Operator;
        self.modify(actor, name, None, |_, d, _, now| {
            if by_registrar && d.verification_requested.is_some() {
                return Err(RegistryError::refused(
                    Rule::RequestPending,
                    "a verification request is already pending; it cannot be restarted",
                ));
            }
            d.verification_requested = Some(now);
            Ok(("verification requested".into(), ()))
        })
    }

    /// The registrant answered (through its registrar or the operator):
    /// the sanctions lift.
    pub fn verification_answer(&self, actor: &Actor, name: &str) -> Result<()> {
        self.modify(actor, name, None, |_, d, _, _| {
            if d.verification_requested.take().is_none() {
                return Err(RegistryError::refused(
                    Rule::NoRequest,
                    "no verification request is pending",
                ));
            }
            Ok(("verification answered".into(), ()))
        })
    }
}
