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
pub mod client_status;
pub mod feed;
pub mod host;
pub mod input;
mod objects;
#[cfg(test)]
mod ownership;
pub mod reserved;
mod rule;
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
        let ds = ds_set(&body.ds, has_ns)?;
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
    fn verification_overdue(&self, registrant: &str, now: Timestamp) -> Result<bool> {
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

    // ---- registrar change -------------------------------------------------

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
    fn sweep_transfers(&self) -> Result<usize> {
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

    /// Write what time has made due on every domain (docs/lifecycle.md):
    /// automatic approvals, lapsed requests, and one feed event per
    /// lifecycle transition ([`lifecycle::transitions`]). Every domain is
    /// read; an event already in a domain's history is not written again.
    /// Returns the number of domains written.
    pub fn sweep(&self) -> Result<usize> {
        self.sweep_since(None)
    }

    /// [`Self::sweep`] for a caller whose earlier sweep covered every
    /// transition up to `since` (`serve`'s sweeper: it then reads no
    /// history for those).
    pub fn sweep_since(&self, since: Option<Timestamp>) -> Result<usize> {
        let now = self.now();
        let mut done = self.sweep_transfers()?;
        let mut after: Option<String> = None;
        loop {
            let (names, next) = self.store.search_domains("", after.as_deref(), 1000)?;
            for n in &names {
                if self.sweep_one(n, now, since)? {
                    done += 1;
                }
            }
            match next {
                Some(c) if !names.is_empty() => after = Some(c),
                _ => break,
            }
        }
        Ok(done)
    }

    /// One domain's due work; whether anything was written.
    fn sweep_one(&self, name: &str, now: Timestamp, since: Option<Timestamp>) -> Result<bool> {
        let Some(d) = self.store.domain(name)? else {
            return Ok(false);
        };
        let settle = !lifecycle::settle(&mut d.clone(), now).is_empty();
        let due: Vec<_> = lifecycle::transitions(&d, now, self.lc())
            .into_iter()
            .filter(|(t, _)| since.is_none_or(|s| *t > s))
            .collect();
        if !settle && due.is_empty() {
            return Ok(false);
        }
        let mut todo = Vec::new();
        if !due.is_empty() {
            let history = self.store.history(name, 1000)?;
            for (t, tr) in due {
                let seen = history.iter().any(|e| {
                    e.at.timestamp_micros() == t.timestamp_micros()
                        && e.reason.starts_with(tr.text())
                });
                if !seen {
                    todo.push((t, tr));
                }
            }
        }
        if !settle && todo.is_empty() {
            return Ok(false);
        }
        let mut txn = self.store.begin()?;
        let Some(d) = txn.domain(name)? else {
            return Ok(false);
        };
        // The transitions of the registration as it was, then what time
        // completed (a transfer, a lapse) — each at its own instant.
        let scheduled = txn.delegation(name)?.is_some_and(|r| {
            matches!(
                r.state,
                DelegationState::Delegated | DelegationState::Testing | DelegationState::Suspended
            )
        });
        for (t, tr) in &todo {
            if scheduled && tr.changes_delegation() {
                // The delegation state machine writes this transition's
                // feed event itself ("suspended: expired", "registration
                // cancelled (…)"): one transition, one feed event
                // (docs/lifecycle.md "Change feed"). History keeps it.
                let state = txn
                    .delegation(name)?
                    .map_or(DelegationState::Undelegated, |r| r.state);
                let ev = HistoryEvent {
                    at: *t,
                    from: Some(state),
                    to: state,
                    reason: tr.text().to_string(),
                };
                txn.append_event(name, &ev, "registry", &[])?;
                continue;
            }
            self.event(txn.as_mut(), &d, *t, "registry", tr.text(), &[])?;
        }
        self.settle_in(txn.as_mut(), d, now)?;
        txn.commit(now)?;
        self.notify(&[Touched {
            name: name.to_string(),
            zone: !todo.is_empty(),
        }]);
        Ok(true)
    }

    // ---- close ------------------------------------------------------------

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

    // ---- delegation -------------------------------------------------------

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
    fn set_nameservers(&self, d: &mut Domain, ns: &[NameserverIn]) -> Result<DeclaredBefore> {
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
    /// the rule `create` uses (`ds_set`, inside [`Self::update_domain`],
    /// whatever the edge checked): tested like an NS change (a delegated
    /// domain keeps its published DS until the new set passes; removing
    /// it goes unsigned at once). `source` (`registrar API`, `CDS`) is
    /// named in the history.
    pub fn declare_ds(
        &self,
        actor: &Actor,
        name: &str,
        ds: Vec<crate::model::DsRecord>,
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
    fn redeclare_in(
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

    // ---- operator ---------------------------------------------------------

    fn operator_only(actor: &Actor, what: &str) -> Result<()> {
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

    // ---- import -----------------------------------------------------------

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
mod tests {
    use super::*;
    use crate::model::{Contact, ContactKind, Registrar};
    use crate::store::{Maintenance, RedbStore};
    use chrono::{TimeZone, Utc};

    pub(super) fn t0() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 6, 1, 10, 0, 0).unwrap()
    }

    pub(super) fn registrar(h: &str) -> Registrar {
        Registrar {
            handle: h.into(),
            name: format!("Registrar {h}"),
            url: None,
            email: None,
            api_token_sha256: None,
            epp_cert_sha256: Vec::new(),
            epp_password_hash: None,
            epp_poll_acked: 0,
        }
    }

    fn domain(name: &str, registrar: &str, reseller: Option<&str>) -> Domain {
        let created = t0() - Duration::days(400);
        Domain {
            name: DomainName::from_trusted(name.into()),
            registrar: registrar.into(),
            registrant: "C".into(),
            admin: None,
            tech: None,
            created,
            paid_till: created + Duration::days(730),
            nameservers: vec![],
            auth_info: Some("code".into()),
            hold: None,
            verification_requested: None,
            transferred: None,
            updated: created,
            registration: Registration {
                reseller: reseller.map(str::to_string),
                ..Default::default()
            },
            ds: Vec::new(),
        }
    }

    /// A private person `h` sponsored by `sponsor`, nothing published.
    pub(super) fn person(h: &str, sponsor: Option<&str>) -> Contact {
        Contact {
            handle: h.into(),
            kind: ContactKind::Person,
            name: Some("N".into()),
            org: None,
            email: None,
            phone: None,
            address: None,
            tax_id: None,
            birth_date: None,
            passport: None,
            disclose: vec![],
            sponsor: sponsor.map(Into::into),
            created: None,
        }
    }

    fn batch(domains: Vec<Domain>) -> ImportBatch {
        ImportBatch {
            registrars: vec![registrar("A"), registrar("B")],
            webhooks: vec![],
            resellers: vec![],
            contacts: vec![person("C", None)],
            domains,
        }
    }

    fn setup(domains: Vec<Domain>) -> (tempfile::TempDir, RedbStore, Config) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("r.redb")).unwrap();
        let cfg = Config::default();
        Registry::offline(&store, &cfg)
            .unwrap()
            .import(&batch(domains), t0())
            .unwrap();
        (dir, store, cfg)
    }

    #[test]
    fn import_never_clears_operator_locks_but_clears_its_own_hold() {
        let mut held_by_import = domain("b.ru", "A", None);
        held_by_import.hold = Some(Hold {
            since: t0(),
            reason: "set by import".into(),
        });
        let (_d, store, cfg) = setup(vec![domain("a.ru", "A", None), held_by_import]);
        let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
        reg.hold(&Actor::Operator, "a.ru", "court").unwrap();
        reg.dispute_lock(&Actor::Operator, "a.ru", "case").unwrap();
        // A registrar cannot.
        let e = reg
            .hold(&Actor::Registrar("A".into()), "a.ru", "x")
            .unwrap_err();
        assert_eq!(e.rule(), "not-allowed");
        // The same file again, every hold false.
        let later = t0() + Duration::days(1);
        let s = reg
            .import(
                &batch(vec![domain("a.ru", "A", None), domain("b.ru", "A", None)]),
                later,
            )
            .unwrap();
        assert_eq!(s.domains, 2);
        let a = store.domain("a.ru").unwrap().unwrap();
        assert_eq!(a.hold.unwrap().reason, "court");
        assert!(a.registration.dispute.is_some());
        assert!(store.domain("b.ru").unwrap().unwrap().hold.is_none());
        let h: Vec<String> = store
            .history("b.ru", 10)
            .unwrap()
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert!(h.contains(&"hold released by import".to_string()), "{h:?}");
    }

    /// EPP's check answers as create would: a look-alike of a registered
    /// name is unavailable where the zone refuses them, available where
    /// it only flags them.
    #[test]
    fn availability_applies_the_confusable_rule() {
        let (_d, store, cfg) = setup(vec![
            domain("xn--90ai7ab.xn--p1ai", "A", None), // сбер.рф
            domain("paypal.ru", "A", None),
        ]);
        let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
        let (rule, why) = reg.availability("с6ер.рф").unwrap().unwrap_err();
        assert_eq!(rule, "confusable");
        assert!(why.contains("сбер.рф") && why.contains("TR39"), "{why}");
        assert!(reg.availability("пример.рф").unwrap().is_ok());
        assert_eq!(reg.availability("paypa1.ru").unwrap().unwrap(), "paypa1.ru");
        assert_eq!(
            reg.availability("paypal.ru").unwrap().unwrap_err().0,
            "exists"
        );
    }

    #[test]
    fn reseller_move_is_one_transaction_with_one_event_per_domain() {
        let n = 2000;
        let mut ds: Vec<Domain> = (0..n)
            .map(|i| domain(&format!("r{i}.ru"), "A", Some("RS")))
            .collect();
        ds.push(domain("other.ru", "A", Some("RT")));
        let (_d, store, cfg) = setup(ds);
        let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
        let before = store.feed("B", 0, 10).unwrap().len();
        let t = std::time::Instant::now();
        assert_eq!(
            reg.move_reseller(&Actor::Operator, "RS", "B")
                .unwrap()
                .domains
                .len(),
            n
        );
        eprintln!("moved {n} domains in {:?}", t.elapsed());
        assert_eq!(
            store
                .domains_by_registrar("B", None, 10_000)
                .unwrap()
                .0
                .len(),
            n
        );
        assert_eq!(store.domain("other.ru").unwrap().unwrap().registrar, "A");
        let feed = store.feed("B", 0, 10_000).unwrap();
        assert_eq!(feed.len() - before, n);
        assert!(feed.iter().all(|e| e.actor == "operator"));
        // The losing registrar's feed has them too.
        assert_eq!(store.feed("A", 0, 10_000).unwrap().len(), n);
        assert!(store.verify().unwrap().is_empty());
        // Unknown target: refused, nothing moved.
        assert!(reg.move_reseller(&Actor::Operator, "RT", "NOPE").is_err());
        assert_eq!(store.domain("other.ru").unwrap().unwrap().registrar, "A");
    }

    #[test]
    fn reseller_move_cancels_transfers_clears_codes_and_locks_transfers_only() {
        let mut a = domain("a.ru", "A", Some("Res-X"));
        a.created = t0() - chrono::Duration::days(400);
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("r.redb")).unwrap();
        let cfg = Config::default();
        let mut b = batch(vec![a, domain("b.ru", "A", Some("RES-X"))]);
        b.registrars.push(registrar("C"));
        let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
        reg.import(&b, t0()).unwrap();
        let c = Actor::Registrar("C".into());
        reg.transfer_request(&c, "a.ru", "code").unwrap();
        // Unknown reseller: refused by its rule, nothing written.
        let e = reg
            .move_reseller(&Actor::Operator, "nope", "B")
            .unwrap_err();
        assert_eq!(e.rule(), "no-reseller");
        let before_c = store.feed("C", 0, 100).unwrap().len();
        // Any case names the reseller; every spelling's domains move.
        let m = reg.move_reseller(&Actor::Operator, "res-x", "B").unwrap();
        assert_eq!(m.reseller, "Res-X");
        assert_eq!(m.domains.len(), 2);
        let ma = m.domains.iter().find(|d| d.name == "a.ru").unwrap();
        assert_eq!(ma.transfer_cancelled.as_deref(), Some("C"));
        assert!(ma.transfer_locked_until.is_some());
        let d = store.domain("a.ru").unwrap().unwrap();
        assert_eq!(d.registrar, "B");
        assert!(d.registration.pending_transfer.is_none());
        assert!(d.auth_info.is_none());
        let st = reg.status(&d, t0());
        assert!(st.transfer_locked_until.is_some());
        assert!(st.registrant_locked_until.is_none());
        // The gaining registrar of the cancelled change hears of it.
        let feed_c = store.feed("C", 0, 100).unwrap();
        assert_eq!(feed_c.len(), before_c + 1);
        // The old registrar's code is refused now (the domain is also
        // transfer-locked; either refusal keeps it).
        assert!(reg
            .transfer_request(&Actor::Registrar("A".into()), "a.ru", "code")
            .is_err());
        // The reseller belongs to B now: A may not tag a domain with it.
        assert_eq!(
            store.reseller("RES-X").unwrap().unwrap().registrar,
            "B".to_string()
        );
    }

    #[test]
    fn transfer_is_approved_automatically_by_the_sweep() {
        let (_d, store, cfg) = setup(vec![domain("a.ru", "A", None)]);
        let reg = Registry::offline(&store, &cfg).unwrap().at(t0());
        let b = Actor::Registrar("B".into());
        assert_eq!(
            reg.transfer_request(&b, "a.ru", "wrong")
                .unwrap_err()
                .rule(),
            "auth-code"
        );
        reg.transfer_request(&b, "a.ru", "code").unwrap();
        assert_eq!(reg.pending_transfers(&b).unwrap().len(), 1);
        let later = t0() + Config::chrono(cfg.lifecycle.transfer_auto_approve);
        let reg = Registry::offline(&store, &cfg)
            .unwrap()
            .at(later - Duration::seconds(1));
        assert_eq!(reg.sweep().unwrap(), 0);
        let reg = Registry::offline(&store, &cfg).unwrap().at(later);
        assert_eq!(reg.sweep().unwrap(), 1);
        let d = store.domain("a.ru").unwrap().unwrap();
        assert_eq!((d.registrar.as_str(), d.transferred), ("B", Some(later)));
        assert!(reg.pending_transfers(&b).unwrap().is_empty());
        assert!(store.verify().unwrap().is_empty());
    }
}
