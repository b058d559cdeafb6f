//! Registrar change: the auth code, the request, the decision, the automatic approval.

use serde::Serialize;

use crate::lifecycle::{self, Operation};
use crate::model::{Domain, PendingTransfer, Timestamp};

use super::actor::Actor;
use super::error::{RegistryError, Result};
use super::rule::Rule;
use super::service::{Registry, Touched};

impl<'a> Registry<'a> {
    /// A new random auth code for the sponsoring registrar (returned once),
    /// valid for `lifecycle.auth_code_lifetime`.
    pub fn reset_auth_code(&self, actor: &Actor, name: &str) -> Result<(String, Timestamp)> {
        self.modify(
            actor,
            name,
            Some(Operation::ResetAuthCode),
            |_, d, _, now| {
                use rand::Rng;
                let code: String = rand::rng()
                    .sample_iter(rand::distr::Alphanumeric)
                    .take(20)
                    .map(char::from)
                    .collect();
                let expires = now + self.dur(self.lc().auth_code_lifetime);
                d.auth_info = Some(code.clone());
                d.registration.auth_info_expires = Some(expires);
                Ok(("auth code reset".into(), (code, expires)))
            },
        )
    }

    /// The gaining registrar asks for `name`, presenting its auth code.
    pub fn transfer_request(
        &self,
        actor: &Actor,
        name: &str,
        auth_code: &str,
    ) -> Result<TransferView> {
        let Actor::Registrar(gaining) = actor else {
            return Err(RegistryError::NotAllowed(
                "a registrar change is requested by the gaining registrar".into(),
            ));
        };
        let now = self.now();
        let mut txn = self.store.begin()?;
        let mut d = self.load(txn.as_mut(), actor, name, now, false)?;
        if &d.registrar == gaining {
            return Err(RegistryError::refused(
                Rule::AlreadySponsor,
                format!("{name} is already sponsored by {gaining}"),
            ));
        }
        lifecycle::permits(&self.status(&d, now), Operation::Transfer)?;
        if let Err(refused) = self.present_auth_code(txn.as_mut(), &d, gaining, auth_code, now)? {
            // The wrong code is counted even though nothing else changes.
            txn.commit(now)?;
            return Err(refused);
        }
        let p = PendingTransfer {
            to: gaining.clone(),
            requested: now,
            auto_approve: now + self.dur(self.lc().transfer_auto_approve),
        };
        d.registration.pending_transfer = Some(p.clone());
        d.updated = now;
        txn.put_domain(&d)?;
        let reason = format!("registrar change to {gaining} requested");
        self.event(
            txn.as_mut(),
            &d,
            now,
            &actor.label(),
            &reason,
            &[gaining.as_str()],
        )?;
        txn.commit(now)?;
        self.notify(&[Touched {
            name: name.to_string(),
            zone: false,
        }]);
        Ok(TransferView {
            domain: name.to_string(),
            from: d.registrar,
            to: p.to,
            requested: p.requested,
            auto_approve: p.auto_approve,
        })
    }

    /// End a pending registrar change: `approve` by the losing registrar
    /// (or the operator); otherwise reject (losing registrar, operator) or
    /// withdraw (gaining registrar).
    pub fn transfer_decide(&self, actor: &Actor, name: &str, approve: bool) -> Result<Domain> {
        let now = self.now();
        let mut txn = self.store.begin()?;
        let mut d = self.load(txn.as_mut(), actor, name, now, false)?;
        let Some(p) = d.registration.pending_transfer.clone() else {
            return Err(RegistryError::refused(
                Rule::NoRequest,
                format!("no registrar change of {name} is pending"),
            ));
        };
        let losing = d.registrar.clone();
        let allowed = match actor {
            Actor::Operator => true,
            Actor::Registrar(h) => h == &losing || (!approve && h == &p.to),
            Actor::Import => false,
        };
        if !allowed {
            return Err(RegistryError::Forbidden(name.to_string()));
        }
        if approve {
            self.complete_transfer(txn.as_mut(), &mut d, &p, now, &actor.label(), "approved")?;
        } else {
            d.registration.pending_transfer = None;
            let how = if actor.is_registrar(&p.to) {
                "withdrawn"
            } else {
                "rejected"
            };
            let reason = format!("registrar change to {}: {how}", p.to);
            self.event(
                txn.as_mut(),
                &d,
                now,
                &actor.label(),
                &reason,
                &[p.to.as_str()],
            )?;
        }
        d.updated = now;
        txn.put_domain(&d)?;
        txn.commit(now)?;
        self.notify(&[Touched {
            name: name.to_string(),
            zone: false,
        }]);
        Ok(d)
    }

    /// Pending registrar changes that `registrar` gains or loses (all for
    /// the operator). Due automatic approvals are completed first.
    pub fn pending_transfers(&self, actor: &Actor) -> Result<Vec<TransferView>> {
        self.sweep_transfers()?;
        let mut out = Vec::new();
        let (names, _) = self.store.pending_transfers(None, 10_000)?;
        for n in names {
            let Some(d) = self.store.domain(&n)? else {
                continue;
            };
            let Some(p) = d.registration.pending_transfer else {
                continue;
            };
            let mine = match actor {
                Actor::Registrar(h) => &d.registrar == h || &p.to == h,
                _ => true,
            };
            if mine {
                out.push(TransferView {
                    domain: n,
                    from: d.registrar,
                    to: p.to,
                    requested: p.requested,
                    auto_approve: p.auto_approve,
                });
            }
        }
        Ok(out)
    }

    /// Complete the automatic approvals that are due.
    pub(super) fn sweep_transfers(&self) -> Result<usize> {
        let now = self.now();
        let (names, _) = self.store.pending_transfers(None, 10_000)?;
        let mut done = 0;
        for n in names {
            let due = self
                .store
                .domain(&n)?
                .and_then(|d| d.registration.pending_transfer)
                .is_some_and(|p| now >= p.auto_approve);
            if !due {
                continue;
            }
            let mut txn = self.store.begin()?;
            if let Some(d) = txn.domain(&n)? {
                self.settle_in(txn.as_mut(), d, now)?;
                txn.commit(now)?;
                done += 1;
                self.notify(&[Touched {
                    name: n,
                    zone: false,
                }]);
            }
        }
        Ok(done)
    }
}

/// A pending registrar change as both registrars see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferView {
    pub domain: String,
    pub from: String,
    pub to: String,
    pub requested: Timestamp,
    pub auto_approve: Timestamp,
}
