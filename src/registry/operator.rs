//! The operator's acts: hold, dispute lock, court cancellation, reseller move.

use chrono::Duration;
use serde::Serialize;

use crate::model::{Closing, Hold, Timestamp};

use super::actor::Actor;
use super::error::{invalid, RegistryError, Result};
use super::rule::Rule;
use super::service::{Registry, Touched};

impl<'a> Registry<'a> {
    pub(super) fn operator_only(actor: &Actor, what: &str) -> Result<()> {
        if *actor != Actor::Operator {
            return Err(RegistryError::NotAllowed(format!(
                "only a registry operator may {what}"
            )));
        }
        Ok(())
    }

    /// Put a domain on hold: out of the zone, every change refused, never
    /// ended by time.
    pub fn hold(&self, actor: &Actor, name: &str, reason: &str) -> Result<()> {
        Self::operator_only(actor, "hold a domain")?;
        self.modify(actor, name, None, |_, d, _, now| {
            if d.hold.is_none() {
                d.hold = Some(Hold {
                    since: now,
                    reason: reason.to_string(),
                });
            }
            d.registration.hold_by_operator = true;
            Ok((format!("hold: {reason}"), ()))
        })
    }

    pub fn release(&self, actor: &Actor, name: &str) -> Result<()> {
        Self::operator_only(actor, "release a hold")?;
        self.modify(actor, name, None, |_, d, _, _| {
            d.hold = None;
            d.registration.hold_by_operator = false;
            Ok(("hold released".into(), ()))
        })
    }

    /// Dispute lock: the status quo is frozen (docs/lifecycle.md "Dispute
    /// lock"): every change by a registrar is refused, the domain stays
    /// delegated on its published set and does not expire. Requests in
    /// flight would change the status quo: they end with the lock's start.
    pub fn dispute_lock(&self, actor: &Actor, name: &str, reason: &str) -> Result<()> {
        Self::operator_only(actor, "lock a domain for a dispute")?;
        self.modify(actor, name, None, |txn, d, _, now| {
            // Locking again only restates the reason: the lock's start stays.
            let since = d.registration.dispute.as_ref().map_or(now, |h| h.since);
            d.registration.dispute = Some(Hold {
                since,
                reason: reason.to_string(),
            });
            let mut ended = Vec::new();
            if let Some(p) = d.registration.pending_registrant.take() {
                ended.push(format!("registrant change to {} cancelled", p.to));
            }
            if d.registration.closing.take().is_some() {
                ended.push("scheduled close cancelled".to_string());
            }
            if let Some(p) = d.registration.pending_transfer.take() {
                // The gaining registrar hears of it in its own feed.
                // The operator's note stays out of the feed.
                let why = format!("registrar change to {}: cancelled by a dispute lock", p.to);
                self.event(txn, d, now, &actor.label(), &why, &[p.to.as_str()])?;
            }
            let mut text = format!("dispute lock: {reason}");
            if !ended.is_empty() {
                text = format!("{text}; {}", ended.join("; "));
            }
            Ok((text, ()))
        })
    }

    /// Lift a dispute lock, recording the court's (or dispute body's)
    /// `outcome`. The time under the lock is not lost: `paid_till` becomes
    /// at least the unlock plus `lifecycle.grace_period`.
    pub fn dispute_unlock(&self, actor: &Actor, name: &str, outcome: &str) -> Result<Timestamp> {
        Self::operator_only(actor, "lift a dispute lock")?;
        let outcome = outcome.trim();
        if outcome.is_empty() {
            return Err(invalid("outcome", "give the outcome of the dispute"));
        }
        self.modify(actor, name, None, |_, d, _, now| {
            let Some(lock) = d.registration.dispute.take() else {
                return Err(RegistryError::refused(
                    Rule::NoLock,
                    "the domain has no dispute lock",
                ));
            };
            let floor = now + self.dur(self.lc().grace_period);
            let mut text = "dispute lock lifted".to_string();
            // An open verification request resumes where the lock stopped
            // it: its deadlines move by the time the lock lasted.
            if let Some(asked) = d.verification_requested {
                let frozen = now - lock.since.max(asked);
                if frozen > Duration::zero() {
                    d.verification_requested = Some(asked + frozen);
                    text.push_str("; verification deadlines moved by the lock's duration");
                }
            }
            if d.paid_till < floor {
                d.paid_till = floor;
                text.push_str(&format!("; paid until {}", floor.to_rfc3339()));
            }
            // Last: the public projection cuts the outcome off.
            text.push_str(&format!("; outcome: {outcome}"));
            Ok((text, d.paid_till))
        })
    }

    /// A court decision cancels the registration; the name is reserved for
    /// `claimant` (a contact handle) for `lifecycle.court_reservation`.
    pub fn court_cancel(&self, actor: &Actor, name: &str, claimant: &str) -> Result<Timestamp> {
        Self::operator_only(actor, "cancel a domain by court decision")?;
        self.modify(actor, name, None, |txn, d, _, now| {
            if txn.contact(claimant)?.is_none() {
                return Err(invalid("claimant", format!("unknown contact '{claimant}'")));
            }
            d.hold = None;
            d.registration.dispute = None;
            d.registration.pending_transfer = None;
            d.registration.closing = Some(Closing {
                at: now,
                claimant: Some(claimant.to_string()),
            });
            self.drop_subordinate_hosts(txn, name)?;
            let until = now + self.dur(self.lc().court_reservation);
            // The claimant is a person's handle: it goes in no feed.
            Ok((
                format!(
                    "cancelled by court decision; reserved for the claimant until {}",
                    until.to_rfc3339()
                ),
                until,
            ))
        })
    }

    /// Move every domain of `reseller` (handle in any case) to registrar
    /// `to` in one transaction (docs/cli.md "reseller move"). Held or
    /// dispute-locked domains are moved too: the registry's decision, not
    /// a transfer. Per moved domain: its pending registrar change is
    /// cancelled (an event to both the losing and the gaining registrar),
    /// its auth code cleared, and the transfer lock starts; the
    /// registrant-change and close locks do not (the holder did not choose
    /// the move). The reseller then belongs to `to`.
    pub fn move_reseller(&self, actor: &Actor, reseller: &str, to: &str) -> Result<ResellerMove> {
        Self::operator_only(actor, "move a reseller's domains")?;
        let now = self.now();
        let mut txn = self.store.begin()?;
        if txn.registrar(to)?.is_none() {
            return Err(invalid("to", format!("unknown registrar '{to}'")));
        }
        let obj = txn.reseller(reseller)?;
        let names = self.reseller_domains(reseller, obj.as_ref().map(|o| o.handle.as_str()))?;
        let key = crate::model::Reseller::key(reseller);
        let mut handle = obj.as_ref().map(|o| o.handle.clone());
        let mut moved = Vec::new();
        let mut touched = Vec::new();
        for n in names {
            let Some(mut d) = txn.domain(&n)? else {
                continue;
            };
            let Some(r) = d.registration.reseller.clone() else {
                continue;
            };
            if crate::model::Reseller::key(&r) != key {
                continue;
            }
            handle.get_or_insert(r);
            if d.registrar == to || !self.status(&d, now).exists() {
                continue;
            }
            let from = std::mem::replace(&mut d.registrar, to.to_string());
            // The registry's move: the transfer lock starts
            // (`registry_moved`), the registrant-change lock does not
            // (`transferred` stays the last registrar change chosen by the
            // holder).
            d.registration.registry_moved = Some(now);
            let cancelled = d.registration.pending_transfer.take();
            // The old registrar's code does not travel (it could pull the
            // domain back with it).
            d.auth_info = None;
            d.registration.auth_info_expires = None;
            d.updated = now;
            txn.put_domain(&d)?;
            txn.put_auth_failures(&n, None)?;
            if let Some(p) = &cancelled {
                self.event(
                    txn.as_mut(),
                    &d,
                    now,
                    &actor.label(),
                    &format!(
                        "registrar change {from} -> {} cancelled: the registry moved the domain",
                        p.to
                    ),
                    &[from.as_str(), p.to.as_str()],
                )?;
            }
            let reason = format!(
                "reseller {} moved by the registry: {from} -> {to}",
                handle.as_deref().unwrap_or(reseller)
            );
            self.event(
                txn.as_mut(),
                &d,
                now,
                &actor.label(),
                &reason,
                &[from.as_str()],
            )?;
            let st = self.status(&d, now);
            let mut locks_kept = Vec::new();
            if d.hold.is_some() {
                locks_kept.push("hold".to_string());
            }
            if st.dispute {
                locks_kept.push("dispute-lock".to_string());
            }
            if let Some(u) = st.registrant_locked_until {
                locks_kept.push(format!("registrant-lock until {}", u.to_rfc3339()));
            }
            if let Some(c) = st.closing_at {
                locks_kept.push(format!("closing at {}", c.to_rfc3339()));
            }
            moved.push(MovedDomain {
                name: n.clone(),
                from,
                transfer_locked_until: st.transfer_locked_until,
                transfer_cancelled: cancelled.map(|p| p.to),
                locks_kept,
            });
            touched.push(Touched {
                name: n,
                zone: false,
            });
        }
        let Some(handle) = handle else {
            return Err(RegistryError::refused(
                Rule::NoReseller,
                format!("no reseller '{reseller}'"),
            ));
        };
        // The reseller now sells for `to`.
        txn.put_reseller(&crate::model::Reseller {
            name: obj.map_or_else(|| handle.clone(), |o| o.name),
            handle: handle.clone(),
            registrar: to.to_string(),
        })?;
        txn.commit(now)?;
        self.notify(&touched);
        Ok(ResellerMove {
            reseller: handle,
            to: to.to_string(),
            domains: moved,
        })
    }
}

/// What `reseller move` did (docs/cli.md "reseller move").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResellerMove {
    /// The reseller's handle as stored.
    pub reseller: String,
    pub to: String,
    pub domains: Vec<MovedDomain>,
}

/// One domain a reseller move handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MovedDomain {
    pub name: String,
    /// The losing registrar.
    pub from: String,
    /// The transfer lock the move started.
    pub transfer_locked_until: Option<Timestamp>,
    /// The gaining registrar of a pending registrar change the move
    /// cancelled.
    pub transfer_cancelled: Option<String>,
    /// Locks the domain had and keeps (hold, dispute lock, registrant
    /// lock, closing).
    pub locks_kept: Vec<String>,
}
