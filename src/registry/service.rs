//! The registry service itself ([`Registry`]): what it is built from, and
//! the steps every operation shares (load and settle a domain, check the
//! caller, write with a history event, tell the listener). The operations
//! are in the sibling modules, one file a concern.

use std::sync::Arc;

use chrono::Duration;

use crate::clock::Clock;
use crate::config::Config;
use crate::lifecycle::{self, Operation, Status};
use crate::model::{DelegationState, Domain, HistoryEvent, PendingTransfer, Timestamp};
use crate::names::{self, DomainName, Zones};
use crate::store::{Store, StoreError, Txn};

use super::actor::Actor;
use super::error::{invalid, RegistryError, Result};
use super::reserved::ReservedNames;
use super::rule::Rule;

/// A read of the store's look-alike index: (key, except) → a registered name.
pub(super) type LookAlikeIndex<'a> =
    dyn Fn(&str, &str) -> std::result::Result<Option<String>, StoreError> + 'a;

/// The domain an operation inside a caller's transaction is on, and
/// whether only its sponsor may act (a host object's change re-declares
/// the domains linked to it, other registrars' too).
#[derive(Debug, Clone, Copy)]
pub(crate) struct On<'n> {
    pub name: &'n str,
    pub sponsor_only: bool,
}

impl<'n> On<'n> {
    /// `name`, changed by its sponsor (or the operator) only.
    pub fn sponsor(name: &'n str) -> Self {
        Self {
            name,
            sponsor_only: true,
        }
    }
}

/// What a domain write changed, for the notifications after the commit.
pub(super) struct Touched {
    pub name: String,
    pub zone: bool,
}

/// Who hears about committed changes: inside `serve`, the scheduler and
/// the zone writer (`App` implements it).
pub trait ChangeListener: Send + Sync {
    /// `name`'s NS set, delegation record or lifecycle changed.
    fn domain_changed(&self, name: &str);
    /// A delegation entered or left the zone.
    fn zone_changed(&self);
}

/// The registry service over one store. Cheap to build; build one per
/// request (`App::registry`) or per CLI command ([`Registry::offline`]).
pub struct Registry<'a> {
    pub(super) store: &'a dyn Store,
    pub(super) config: &'a Config,
    pub(super) zones: Zones,
    pub(super) reserved: Arc<ReservedNames>,
    /// Inside `serve`: whom to tell after a commit.
    pub(super) listener: Option<&'a dyn ChangeListener>,
    /// The clock (without one, and without [`Registry::at`], the system's).
    pub(super) clock: Option<&'a dyn Clock>,
    /// The time to use instead of a clock (see [`Registry::at`]).
    pub(super) fixed_now: Option<Timestamp>,
}

impl<'a> Registry<'a> {
    /// The service over `store`; see [`Self::with_clock`] and
    /// [`Self::with_listener`] for what `serve` adds.
    pub fn new(
        store: &'a dyn Store,
        config: &'a Config,
        zones: Zones,
        reserved: Arc<ReservedNames>,
    ) -> Self {
        Self {
            store,
            config,
            zones,
            reserved,
            listener: None,
            clock: None,
            fixed_now: None,
        }
    }

    /// Take the time of each operation from `clock`.
    pub fn with_clock(mut self, clock: &'a dyn Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Tell `listener` after every commit.
    pub fn with_listener(mut self, listener: &'a dyn ChangeListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// The service for a CLI command that owns the store (no `serve`).
    pub fn offline(
        store: &'a dyn Store,
        config: &'a Config,
    ) -> Result<Self, crate::config::ConfigError> {
        let zones = config.zones()?;
        let reserved = ReservedNames::from_config(config, &zones)?;
        Ok(Self::new(store, config, zones, Arc::new(reserved)))
    }

    /// Use `now` as the time of every operation (an injected clock).
    pub fn at(mut self, now: Timestamp) -> Self {
        self.fixed_now = Some(now);
        self
    }

    /// The store, for reads.
    pub fn store(&self) -> &dyn Store {
        self.store
    }

    pub(super) fn lc(&self) -> &crate::config::LifecycleConfig {
        &self.config.lifecycle
    }

    pub(super) fn dur(&self, d: std::time::Duration) -> Duration {
        Config::chrono(d)
    }

    pub(super) fn window(&self) -> Duration {
        Config::chrono(self.config.delegation.test_window)
    }

    pub fn parse_name(&self, raw: &str) -> Result<DomainName> {
        self.zones
            .parse_domain(raw)
            .map_err(|e| invalid("name", e.to_string()))
    }

    /// The zone's confusable rule for a new `name`: the mode and why, when
    /// it looks like a registered name (`find` is the store's look-alike
    /// index, read in the caller's transaction or not).
    pub(super) fn look_alike(
        &self,
        name: &DomainName,
        find: &LookAlikeIndex<'_>,
    ) -> Result<Option<(names::ConfusableMode, String)>> {
        let Some(mode) = names::confusable_mode(&self.zones, name) else {
            return Ok(None);
        };
        Ok(find(&names::skeleton_index_key(name), name.as_str())?
            .map(|existing| (mode, names::confusable_error(name, &existing).to_string())))
    }

    pub(super) fn notify(&self, touched: &[Touched]) {
        let Some(l) = self.listener else { return };
        let mut zone = false;
        for t in touched {
            l.domain_changed(&t.name);
            zone |= t.zone;
        }
        if zone {
            l.zone_changed();
        }
    }

    pub(super) fn status(&self, d: &Domain, now: Timestamp) -> Status {
        lifecycle::evaluate(d, now, self.lc())
    }

    pub(super) fn in_zone(&self, txn: &dyn Txn, d: &Domain, now: Timestamp) -> Result<bool> {
        let rec = txn.delegation(d.name.as_str())?;
        Ok(rec.is_some_and(|r| lifecycle::in_zone(&r, &self.status(d, now))))
    }

    /// Load an existing registration in `txn`, settle its due work and
    /// check the caller may act on it.
    pub(super) fn load(
        &self,
        txn: &mut dyn Txn,
        actor: &Actor,
        name: &str,
        now: Timestamp,
        sponsor_only: bool,
    ) -> Result<Domain> {
        let d = txn
            .domain(name)?
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        let d = self.settle_in(txn, d, now)?;
        if !self.status(&d, now).exists() {
            return Err(RegistryError::NotFound(name.to_string()));
        }
        if let Actor::Registrar(h) = actor {
            if sponsor_only && &d.registrar != h {
                return Err(RegistryError::Forbidden(name.to_string()));
            }
            // Status quo under a dispute lock: no registrar changes anything
            // about the domain — its sponsor, a gaining registrar, or a host
            // object's sponsor re-declaring it (docs/lifecycle.md).
            if d.registration.dispute.is_some() {
                // The most severe lock names the refusal, as in `permits`.
                return Err(if d.hold.is_some() {
                    RegistryError::refused(
                        Rule::Hold,
                        format!("{name} is on hold; only a registry operator's release ends it"),
                    )
                } else {
                    RegistryError::refused(
                        Rule::DisputeLock,
                        format!(
                            "{name} is under a dispute lock: nothing about it changes until the registry lifts the lock"
                        ),
                    )
                });
            }
        }
        Ok(d)
    }

    /// Complete what time has made due on `d` (automatic transfer approval,
    /// a lapsed registrant change request: [`lifecycle::settle`]), inside
    /// `txn`, one event each at the instant it fell due.
    pub(super) fn settle_in(
        &self,
        txn: &mut dyn Txn,
        mut d: Domain,
        now: Timestamp,
    ) -> Result<Domain> {
        let done = lifecycle::settle(&mut d, now);
        if done.is_empty() {
            return Ok(d);
        }
        for s in &done {
            match s {
                lifecycle::Settled::TransferApproved { from, to, at } => {
                    let reason = format!("registrar change {from} -> {to}: approved automatically");
                    self.event(txn, &d, *at, "registry", &reason, &[from.as_str()])?;
                }
                lifecycle::Settled::RegistrantChangeLapsed { to, at } => {
                    let reason = format!("registrant change to {to} lapsed (not accepted)");
                    self.event(txn, &d, *at, "registry", &reason, &[])?;
                }
            }
        }
        d.updated = now;
        txn.put_domain(&d)?;
        Ok(d)
    }

    pub(super) fn complete_transfer(
        &self,
        txn: &mut dyn Txn,
        d: &mut Domain,
        p: &PendingTransfer,
        at: Timestamp,
        actor: &str,
        how: &str,
    ) -> Result<()> {
        let from = std::mem::replace(&mut d.registrar, p.to.clone());
        d.transferred = Some(at);
        // The old sponsor's code and reseller do not travel.
        d.auth_info = None;
        d.registration.auth_info_expires = None;
        d.registration.reseller = None;
        d.registration.pending_transfer = None;
        let reason = format!("registrar change {from} -> {}: {how}", p.to);
        self.event(txn, d, at, actor, &reason, &[&from])?;
        Ok(())
    }

    /// Append a history event (state unchanged) to `d`'s history and to the
    /// feed of its registrar and `also`.
    pub(super) fn event(
        &self,
        txn: &mut dyn Txn,
        d: &Domain,
        at: Timestamp,
        actor: &str,
        reason: &str,
        also: &[&str],
    ) -> Result<()> {
        let state = txn
            .delegation(d.name.as_str())?
            .map(|r| r.state)
            .unwrap_or(DelegationState::Undelegated);
        let ev = HistoryEvent {
            at,
            from: Some(state),
            to: state,
            reason: reason.to_string(),
        };
        let mut regs: Vec<&str> = vec![d.registrar.as_str()];
        for a in also {
            if !regs.contains(a) {
                regs.push(a);
            }
        }
        txn.append_event(d.name.as_str(), &ev, actor, &regs)?;
        Ok(())
    }

    /// The common shape of an operation on one existing domain: load,
    /// check the caller and the lock rule for `op`, let `f` change the
    /// record (it returns the event text), write, commit, notify.
    pub(super) fn modify<T>(
        &self,
        actor: &Actor,
        name: &str,
        op: Option<Operation>,
        f: impl FnOnce(&mut dyn Txn, &mut Domain, &Status, Timestamp) -> Result<(String, T)>,
    ) -> Result<T> {
        let now = self.now();
        let mut txn = self.store.begin()?;
        let (out, touched) = self.modify_in(txn.as_mut(), actor, On::sponsor(name), op, now, f)?;
        txn.commit(now)?;
        self.notify(&[touched]);
        Ok(out)
    }

    /// [`Self::modify`] inside a transaction the caller commits (several
    /// domains changed together, e.g. by a host object's change).
    pub(super) fn modify_in<T>(
        &self,
        txn: &mut dyn Txn,
        actor: &Actor,
        on: On<'_>,
        op: Option<Operation>,
        now: Timestamp,
        f: impl FnOnce(&mut dyn Txn, &mut Domain, &Status, Timestamp) -> Result<(String, T)>,
    ) -> Result<(T, Touched)> {
        let name = on.name;
        let mut d = self.load(txn, actor, name, now, on.sponsor_only)?;
        let st = self.status(&d, now);
        if let Some(op) = op {
            lifecycle::permits(&st, op)?;
        }
        let was_in = self.in_zone(txn, &d, now)?;
        let (reason, out) = f(txn, &mut d, &st, now)?;
        d.updated = now;
        txn.put_domain(&d)?;
        if !reason.is_empty() {
            self.event(txn, &d, now, &actor.label(), &reason, &[])?;
        }
        let zone = was_in != self.in_zone(txn, &d, now)?;
        Ok((
            out,
            Touched {
                name: name.to_string(),
                zone,
            },
        ))
    }

    pub(super) fn now(&self) -> Timestamp {
        match (self.fixed_now, self.clock) {
            (Some(t), _) => t,
            (None, Some(c)) => c.now(),
            (None, None) => chrono::Utc::now(),
        }
    }

    // ---- registration ----------------------------------------------------

    // ---- registrar change -------------------------------------------------

    // ---- close ------------------------------------------------------------

    // ---- delegation -------------------------------------------------------

    // ---- operator ---------------------------------------------------------

    // ---- import -----------------------------------------------------------
}
