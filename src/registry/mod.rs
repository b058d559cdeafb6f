//! The registry service: every change to registry data goes through here.
//!
//! Each operation checks the rules (names, lifecycle locks from
//! [`crate::lifecycle::permits`], who may do what), writes one store
//! transaction ([`Txn`]) with a history event naming the [`Actor`], and
//! then tells the scheduler and the zone writer (when it runs inside
//! `serve`). The edges — the registrar REST API, the operator control
//! socket and CLI, import, and later EPP — only parse their input, call one
//! method and render the answer or the [`RegistryError`].
//!
//! Delegation transitions are the pure functions of [`crate::delegation`]
//! ([`delegation::on_declared`], [`delegation::on_retest`]); this module
//! only stores their results.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use serde::Serialize;

use crate::clock::Clock;
use crate::config::Config;
use crate::delegation;
use crate::lifecycle::{self, Operation, Status};
use crate::model::{
    Closing, DelegationRecord, DelegationState, Domain, HistoryEvent, Hold, PendingTransfer,
    Registration, Timestamp,
};
use crate::names::{self, DomainName, Zones};
use crate::store::{ImportBatch, ImportSummary, RecordError, Store, StoreError, Txn};

/// A read of the store's look-alike index: (key, except) → a registered name.
type LookAlikeIndex<'a> =
    dyn Fn(&str, &str) -> std::result::Result<Option<String>, StoreError> + 'a;

mod authcode;
mod bulk;
pub mod client_status;
mod create;
pub mod feed;
mod holder;
pub mod host;
pub mod input;
mod nameservers;
mod objects;
mod operator;
#[cfg(test)]
mod ownership;
pub mod reserved;
mod rule;
mod sweep;
mod transfer;
mod update;
mod webhook;
pub use client_status::ClientStatusChange;
pub use feed::FeedEntry;
pub use input::NameserverIn;
pub use objects::TransferState;
pub use reserved::ReservedNames;
pub use rule::Rule;
pub use update::DomainUpdate;

/// Who asks for a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A registrar (API token, later EPP login), by handle.
    Registrar(String),
    /// A registry operator (control socket / CLI).
    Operator,
    /// A bulk import file.
    Import,
}

impl Actor {
    /// The name recorded in the change feed.
    pub fn label(&self) -> String {
        match self {
            Actor::Registrar(h) => format!("registrar:{h}"),
            Actor::Operator => "operator".into(),
            Actor::Import => "import".into(),
        }
    }
    fn is_registrar(&self, h: &str) -> bool {
        matches!(self, Actor::Registrar(x) if x == h)
    }
}

/// Why the registry refused a change. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no such domain: {0}")]
    NotFound(String),
    #[error("{0} is sponsored by another registrar")]
    Forbidden(String),
    /// Only the operator (or another party) may do this.
    #[error("{0}")]
    NotAllowed(String),
    /// A rule refused the change; `rule` is its stable id.
    #[error("{detail}")]
    Refused { rule: Rule, detail: String },
    /// Bad input, field by field.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<RecordError>),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchDomain(n) => RegistryError::NotFound(n),
            StoreError::Rejected(v) => RegistryError::Invalid(v),
            other => RegistryError::Store(other),
        }
    }
}

impl RegistryError {
    fn refused(rule: Rule, detail: impl Into<String>) -> Self {
        RegistryError::Refused {
            rule,
            detail: detail.into(),
        }
    }
    /// The stable id of the rule that refused (for problem documents).
    pub fn rule(&self) -> &'static str {
        match self {
            RegistryError::NotFound(_) => "not-found",
            RegistryError::Forbidden(_) => "forbidden",
            RegistryError::NotAllowed(_) => "not-allowed",
            RegistryError::Refused { rule, .. } => rule.id(),
            RegistryError::Invalid(_) => "invalid",
            RegistryError::Store(s) => match s.storage() {
                Some(h) => h.slug(),
                None => "internal",
            },
        }
    }
}

impl RegistryError {
    /// The refusing rule, when a rule refused.
    pub fn refusing_rule(&self) -> Option<Rule> {
        match self {
            RegistryError::Refused { rule, .. } => Some(*rule),
            _ => None,
        }
    }

    /// EPP result code (RFC 5730 §3): the one mapping of every error
    /// (rules through [`Rule::epp_code`]).
    pub fn epp_code(&self) -> u16 {
        match self {
            RegistryError::NotFound(_) => 2303,
            RegistryError::Forbidden(_) | RegistryError::NotAllowed(_) => 2201,
            RegistryError::Invalid(v) if v.iter().any(|e| input::is_glue_reason(&e.reason)) => 2005,
            RegistryError::Invalid(_) => 2306,
            RegistryError::Store(_) => 2400,
            RegistryError::Refused { rule, .. } => rule.epp_code(),
        }
    }
}

impl From<lifecycle::Refusal> for RegistryError {
    fn from(r: lifecycle::Refusal) -> Self {
        // The lifecycle's lock rules are rules of this enum (unit-tested in
        // `rule`); `state` stands for an id added there without one here.
        let rule = Rule::parse(r.rule);
        debug_assert!(rule.is_some(), "lifecycle rule {} has no Rule", r.rule);
        RegistryError::Refused {
            rule: rule.unwrap_or(Rule::State),
            detail: r.detail,
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Domains an import announces to the store at a time ([`Txn::prefetch`]).
const IMPORT_CHUNK: usize = 1000;

fn invalid(field: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(vec![RecordError {
        section: "domain",
        index: 0,
        field: field.into(),
        reason: reason.into(),
    }])
}

/// A DS set by the rules of [`crate::ds::validate_set`], its refusals as
/// the domain's field errors (create and [`DomainUpdate`] alike).
fn ds_set(list: &[crate::ds::DsIn], has_ns: bool) -> Result<Vec<crate::model::DsRecord>> {
    crate::ds::validate_set(list, has_ns).map_err(|v| {
        RegistryError::Invalid(
            v.into_iter()
                .map(|(field, reason)| RecordError {
                    section: "domain",
                    index: 0,
                    field,
                    reason,
                })
                .collect(),
        )
    })
}

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

/// A new registration (`POST /api/v1/domains`, the import format's domain fields, docs/import.md; the
/// registrar is the caller).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIn {
    pub name: String,
    /// If given, must be the caller.
    pub registrar: Option<String>,
    pub registrant: String,
    pub admin: Option<String>,
    pub tech: Option<String>,
    #[serde(default)]
    pub nameservers: Vec<NameserverIn>,
    pub auth_info: Option<String>,
    pub reseller: Option<String>,
    /// DS set (docs/import.md `ds`), declared with the nameservers in the same
    /// transaction.
    #[serde(default)]
    pub ds: Vec<crate::ds::DsIn>,
    /// Host objects named by reference (EPP `hostObj`): each must exist;
    /// the domain is linked to them (not a field of the API's body).
    #[serde(skip)]
    pub host_objects: Vec<String>,
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

/// A pending registrar change as both registrars see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferView {
    pub domain: String,
    pub from: String,
    pub to: String,
    pub requested: Timestamp,
    pub auto_approve: Timestamp,
}

/// What [`Registry::name_rule`] says of a name it lets be registered.
pub(crate) struct NameRule {
    /// A look-alike the zone accepts but flags: why.
    pub flagged: Option<String>,
    /// The registration is the court claimant's, under its reservation.
    pub reserved_for_claimant: bool,
}

/// The NS and DS sets a domain declared before a change.
type DeclaredBefore = (Vec<crate::model::Nameserver>, Vec<crate::model::DsRecord>);

/// What a domain write changed, for the notifications after the commit.
struct Touched {
    name: String,
    zone: bool,
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
    store: &'a dyn Store,
    config: &'a Config,
    zones: Zones,
    reserved: Arc<ReservedNames>,
    /// Inside `serve`: whom to tell after a commit.
    listener: Option<&'a dyn ChangeListener>,
    /// The clock (without one, and without [`Registry::at`], the system's).
    clock: Option<&'a dyn Clock>,
    /// The time to use instead of a clock (see [`Registry::at`]).
    fixed_now: Option<Timestamp>,
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

    fn lc(&self) -> &crate::config::LifecycleConfig {
        &self.config.lifecycle
    }

    fn dur(&self, d: std::time::Duration) -> Duration {
        Config::chrono(d)
    }

    fn window(&self) -> Duration {
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
    fn look_alike(
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

    fn notify(&self, touched: &[Touched]) {
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

    fn status(&self, d: &Domain, now: Timestamp) -> Status {
        lifecycle::evaluate(d, now, self.lc())
    }

    fn in_zone(&self, txn: &dyn Txn, d: &Domain, now: Timestamp) -> Result<bool> {
        let rec = txn.delegation(d.name.as_str())?;
        Ok(rec.is_some_and(|r| lifecycle::in_zone(&r, &self.status(d, now))))
    }

    /// Load an existing registration in `txn`, settle its due work and
    /// check the caller may act on it.
    fn load(
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
    fn settle_in(&self, txn: &mut dyn Txn, mut d: Domain, now: Timestamp) -> Result<Domain> {
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

    fn complete_transfer(
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
    fn event(
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
    fn modify<T>(
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
    fn modify_in<T>(
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

    fn now(&self) -> Timestamp {
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

/// [`input::validate_nameservers`] as a registry error.
fn validate_ns(
    name: &str,
    ns: &[NameserverIn],
    min: usize,
) -> Result<Vec<crate::model::Nameserver>> {
    input::validate_nameservers(name, ns, min).map_err(|v| {
        RegistryError::Invalid(
            v.into_iter()
                .map(|(field, reason)| RecordError {
                    section: "domain",
                    index: 0,
                    field,
                    reason,
                })
                .collect(),
        )
    })
}

/// Compare secrets in time independent of where they differ.
fn ct_eq(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

#[cfg(test)]
mod tests;
