//! The store's contract: the [`Store`], [`Txn`] and [`Maintenance`]
//! traits every backend implements, the types they take and give, and
//! their errors. The backends (`super::redb`, `super::postgres`) depend
//! on this module, never on each other or on the store's front door.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use crate::model::{
    CdsSighting, Contact, DelegationRecord, DelegationState, Domain, HistoryEvent, HostObject,
    Registrar, RoundSummary, Timestamp, Webhook, WebhookState,
};
use crate::public::DomainBundle;

/// Bytes an unprivileged writer may still use on the volume holding
/// `file` (the store's directory is measured: the file may not exist yet).
pub fn free_bytes(file: &std::path::Path) -> std::io::Result<u64> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// A claimed domain's name, with its registration and delegation record
/// as the claim read them (see [`Store::claim_loaded`]).
pub type Claimed = (String, Option<(Domain, DelegationRecord)>);

/// `Retry-After` (seconds) of an answer or write refused for storage (disk
/// full, database away): the redb store retries its reopen within 5 s.
pub const STORAGE_RETRY_AFTER: u32 = 5;

/// Schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 7;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is in use by another process (is `zonekeeper serve` running? use its API instead)")]
    Locked { path: PathBuf },
    #[error("store {path} has schema version {found}, newer than this zonekeeper supports ({supported}); upgrade zonekeeper")]
    NewerSchema {
        /// The file, or the database URL without its password.
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("store {path} cannot be opened: {message}")]
    Open { path: PathBuf, message: String },
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("store I/O error: {0}")]
    Io(String),
    /// The store's volume is full (ENOSPC, quota): nothing was written;
    /// reads go on, writes succeed again once space is freed.
    #[error("store is read-only: its disk is full ({0}); nothing was written")]
    Full(String),
    /// The store cannot be reached or written right now (an I/O error, the
    /// database is away); nothing was written. It retries by itself.
    #[error("store unavailable: {0}; nothing was written")]
    Unavailable(String),
    #[error("store error: {0}")]
    Backend(String),
    #[error("cannot use the PostgreSQL database {url}: {message}")]
    Database { url: String, message: String },
    #[error("no such domain: {0}")]
    NoSuchDomain(String),
    #[error("import rejected; nothing was applied")]
    Rejected(Vec<RecordError>),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// The storage condition behind the error, if it is one (a full
    /// volume, an unreachable store) rather than a fault of the data.
    pub fn storage(&self) -> Option<Health> {
        match self {
            StoreError::Full(_) => Some(Health::Full),
            StoreError::Unavailable(_) => Some(Health::Unavailable),
            _ => None,
        }
    }
}

/// Whether the store can commit, as its last write (or write probe) found
/// it: what `/readyz` reports and the `zonekeeper_store_healthy` gauge
/// shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    Ok,
    /// The volume is full: reads answer, writes are refused.
    Full,
    /// The store failed an I/O or is unreachable.
    Unavailable,
}

impl Health {
    /// The problem type / EPP reason of a refused write.
    pub fn slug(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Full => "storage-full",
            Health::Unavailable => "storage-unavailable",
        }
    }

    /// The `/readyz` reason.
    pub fn reason(self) -> &'static str {
        match self {
            Health::Ok => "ready",
            Health::Full => "store: read-only, disk full",
            Health::Unavailable => "store: unavailable",
        }
    }

    /// The error of a write refused for this reason.
    pub fn error(self, detail: impl Into<String>) -> StoreError {
        match self {
            Health::Full => StoreError::Full(detail.into()),
            _ => StoreError::Unavailable(detail.into()),
        }
    }
}

/// A bad record in an import (or an API write): where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordError {
    /// `domains`, `contacts` or `registrars`.
    pub section: &'static str,
    /// Index of the record in its section.
    pub index: usize,
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}[{}].{}: {}",
            self.section, self.index, self.field, self.reason
        )
    }
}

/// Validated records to write in one transaction.
#[derive(Debug, Clone, Default)]
pub struct ImportBatch {
    pub registrars: Vec<Registrar>,
    /// Registrar webhooks set (`Some`) or cleared (`None`) by the file.
    pub webhooks: Vec<(String, Option<Webhook>)>,
    /// Resellers with their registrar (docs/import.md "Resellers").
    pub resellers: Vec<crate::model::Reseller>,
    pub contacts: Vec<Contact>,
    pub domains: Vec<Domain>,
}

/// One validated record of an import, in write order: registrars, then
/// contacts, then domains (by name, so B-tree pages fill densely).
// One record at a time goes through: boxing the domain would only add an
// allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ImportRecord {
    Registrar(Registrar),
    /// A registrar's webhook set or cleared (after the registrars).
    Webhook {
        registrar: String,
        hook: Option<Webhook>,
    },
    /// A reseller and its registrar (after the registrars).
    Reseller(crate::model::Reseller),
    Contact(Contact),
    /// With its index in the file's `domains` list (for error reports).
    Domain {
        index: usize,
        domain: Domain,
    },
}

/// Where an import's validated records come from: an in-memory
/// [`ImportBatch`] or a file spooled to disk (`crate::import::Spooled`), so
/// the writer need not hold the whole file.
pub trait ImportSource {
    fn next_record(&mut self) -> Result<Option<ImportRecord>, StoreError>;
}

/// An [`ImportBatch`] read in write order.
pub struct BatchSource<'a> {
    batch: &'a ImportBatch,
    pos: usize,
    order: Vec<usize>,
}

impl<'a> BatchSource<'a> {
    pub fn new(batch: &'a ImportBatch) -> Self {
        let mut order: Vec<usize> = (0..batch.domains.len()).collect();
        order.sort_by(|a, b| batch.domains[*a].name.cmp(&batch.domains[*b].name));
        BatchSource {
            batch,
            pos: 0,
            order,
        }
    }
}

impl ImportSource for BatchSource<'_> {
    fn next_record(&mut self) -> Result<Option<ImportRecord>, StoreError> {
        let b = self.batch;
        let (w, c) = (b.webhooks.len(), b.contacts.len());
        let rs = b.resellers.len();
        let r = b.registrars.len() + w;
        let p = self.pos;
        self.pos += 1;
        Ok(if p < r - w {
            Some(ImportRecord::Registrar(b.registrars[p].clone()))
        } else if p < r {
            let (h, hook) = &b.webhooks[p - (r - w)];
            Some(ImportRecord::Webhook {
                registrar: h.clone(),
                hook: hook.clone(),
            })
        } else if p < r + rs {
            Some(ImportRecord::Reseller(b.resellers[p - r].clone()))
        } else if p < r + rs + c {
            Some(ImportRecord::Contact(b.contacts[p - r - rs].clone()))
        } else {
            self.order
                .get(p - r - rs - c)
                .map(|&i| ImportRecord::Domain {
                    index: i,
                    domain: b.domains[i].clone(),
                })
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub registrars: usize,
    pub contacts: usize,
    pub domains: usize,
    /// Domains whose NS set changed, so testing (re)started.
    pub tests_started: usize,
    /// Domains whose record did not change at all.
    pub unchanged: usize,
    /// New names accepted although they look like a registered one (zone
    /// policy `confusables flag`), one message each.
    pub flagged: Vec<String>,
}

/// A nameserver host as published (RDAP nameserver object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HostRecord {
    pub name: String,
    pub addresses: Vec<IpAddr>,
    /// Number of domains that declare it.
    pub domains: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub registrars: u64,
    pub contacts: u64,
    pub domains: u64,
    pub hosts: u64,
    pub by_state: BTreeMap<String, u64>,
    pub file_bytes: u64,
}

/// Store maintenance, apart from the data operations: `zonekeeper store
/// check` and compaction after a bulk import.
pub trait Maintenance {
    /// Check every invariant between records and indexes; returns the
    /// problems found (empty: consistent).
    fn verify(&self) -> Result<Vec<String>>;
    /// Give free space back (redb: compaction; PostgreSQL: VACUUM).
    fn compact(&mut self) -> Result<()>;
}

/// A store with its maintenance: what [`super::open`] returns.
pub trait Backend: Store + Maintenance {}
impl<T: Store + Maintenance> Backend for T {}

/// An open store of either backend.
pub type AnyStore = Box<dyn Backend>;

/// A page of keys: the keys, and the key to pass as `after` for the next page.
pub type Page = (Vec<String>, Option<String>);
/// A page of domains with their delegation records, and where the next
/// page starts.
pub type LoadedPage = (Vec<(Domain, DelegationRecord)>, Option<String>);

pub trait Store: Send + Sync + 'static {
    // ---- point reads -------------------------------------------------
    fn registrar(&self, handle: &str) -> Result<Option<Registrar>>;
    fn registrars(&self) -> Result<Vec<Registrar>>;
    fn contact(&self, handle: &str) -> Result<Option<Contact>>;
    /// A reseller by handle (any case).
    fn reseller(&self, handle: &str) -> Result<Option<crate::model::Reseller>>;
    fn domain(&self, name: &str) -> Result<Option<Domain>>;
    fn delegation(&self, name: &str) -> Result<Option<DelegationRecord>>;
    /// A domain with its delegation record, registrar and contacts, read in
    /// one transaction.
    fn bundle(&self, name: &str) -> Result<Option<DomainBundle>>;
    fn host(&self, name: &str) -> Result<Option<HostRecord>>;
    /// A host object (EPP, RFC 5732), by its normalised name.
    fn host_object(&self, name: &str) -> Result<Option<HostObject>>;
    /// The host objects named `domain` or below it, in name order (a scan:
    /// for the rare closing of a domain).
    fn host_objects_under(&self, domain: &str) -> Result<Vec<HostObject>>;
    /// A domain's delegation history, oldest first, the last `limit` events.
    fn history(&self, name: &str, limit: usize) -> Result<Vec<HistoryEvent>>;
    /// A domain's probe rounds, oldest first, the last `limit` rounds.
    fn rounds(&self, name: &str, limit: usize) -> Result<Vec<RoundSummary>>;
    fn last_update(&self) -> Result<Option<Timestamp>>;
    fn stats(&self) -> Result<StoreStats>;
    /// The change stamps this process publishes with every commit, so a
    /// cached public answer can tell whether its data changed (see
    /// [`super::stamps`]). `None` (the default) when other processes may write
    /// the store too: then nothing may be cached.
    fn stamps(&self) -> Option<&super::stamps::Stamps> {
        None
    }
    /// Whether the store can commit, as last seen (no I/O).
    fn health(&self) -> Health {
        Health::Ok
    }
    /// When the store is not [`Health::Ok`]: try a tiny write to find out
    /// whether it can commit again (`/readyz` and a background task call
    /// it, so readiness comes back without waiting for a real write).
    /// Returns the health after the attempt.
    fn probe_write(&self) -> Health {
        self.health()
    }
    /// The file the store lives in (its volume's free space is watched),
    /// if it is a local file.
    fn file(&self) -> Option<&std::path::Path> {
        None
    }

    // ---- lists and searches (keys in order; `after` excludes) ---------
    fn domains_by_host(&self, host: &str, after: Option<&str>, limit: usize) -> Result<Page>;
    fn hosts_by_ip(&self, ip: IpAddr, limit: usize) -> Result<Vec<String>>;
    fn domains_by_registrar(&self, handle: &str, after: Option<&str>, limit: usize)
        -> Result<Page>;
    fn domains_by_contact(&self, handle: &str, after: Option<&str>, limit: usize) -> Result<Page>;
    /// Domains that name `reseller`.
    fn domains_by_reseller(
        &self,
        reseller: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page>;
    /// Domains with a pending registrar change.
    fn pending_transfers(&self, after: Option<&str>, limit: usize) -> Result<Page>;
    fn domains_by_state(
        &self,
        state: DelegationState,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page>;
    /// [`Store::domains_by_state`] with each domain and its delegation
    /// record (the zone writer renders from these): one snapshot for the
    /// page where the backend can. A name whose records are gone is left
    /// out.
    fn domains_by_state_loaded(
        &self,
        state: DelegationState,
        after: Option<&str>,
        limit: usize,
    ) -> Result<LoadedPage> {
        let (names, next) = self.domains_by_state(state, after, limit)?;
        let mut out = Vec::with_capacity(names.len());
        for n in &names {
            if let (Some(d), Some(r)) = (self.domain(n)?, self.delegation(n)?) {
                out.push((d, r));
            }
        }
        Ok((out, next))
    }
    /// Delegated domains whose newly declared NS set is under test.
    fn domains_with_pending_change(&self, after: Option<&str>, limit: usize) -> Result<Page>;
    fn search_domains(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page>;
    fn search_hosts(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page>;
    /// Contact and registrar handles starting with `prefix` (case-sensitive).
    fn search_handles(&self, prefix: &str, limit: usize) -> Result<Vec<String>>;
    /// Handles of entities whose *public* name (lower-cased) starts with `prefix`.
    fn search_entity_names(&self, prefix: &str, limit: usize) -> Result<Vec<String>>;
    /// A registered name other than `except` whose look-alike key
    /// ([`crate::names::skeleton_index_key`]) is `key`: the index behind
    /// the zone policies' confusable rule.
    fn look_alike(&self, key: &str, except: &str) -> Result<Option<String>>;
    /// For each `(name, look-alike key)`: whether `name` is registered, and
    /// [`Store::look_alike`] of it. An import screens its new names with
    /// this, a chunk at a time (a networked backend answers a chunk in one
    /// round trip).
    fn screen_names(&self, names: &[(&str, &str)]) -> Result<Vec<(bool, Option<String>)>> {
        names
            .iter()
            .map(|(n, k)| Ok((self.domain(n)?.is_some(), self.look_alike(k, n)?)))
            .collect()
    }
    /// Visit every delegation record (scheduler start-up). Return `false`
    /// from `f` to stop.
    fn for_each_delegation(&self, f: &mut dyn FnMut(&str, &DelegationRecord) -> bool)
        -> Result<()>;

    // ---- CDS bootstrap observations (RFC 8078 §3.3) ----------------
    // Scanner state, not registry data: no history, no feed, no
    // `last_update`. At most one sighting per domain name.
    /// The sighting kept for `name`, if any.
    fn cds_sighting(&self, name: &str) -> Result<Option<CdsSighting>>;
    /// Every sighting, in name order (they are few: domains waiting out
    /// the bootstrap delay).
    fn cds_sightings(&self) -> Result<Vec<(String, CdsSighting)>>;
    /// Replace the sighting of `name` (`None`: forget it), one transaction.
    fn put_cds_sighting(&self, name: &str, sighting: Option<&CdsSighting>) -> Result<()>;

    // ---- registrar webhooks (docs/api.md, "Webhooks") ---------------
    // The configuration is written with the registrar (import, operator),
    // in a transaction ([`Txn::put_webhook`]); the delivery state is the
    // delivery worker's, like the CDS scanner's: no history, no feed.
    /// Every registrar's webhook, by handle.
    fn webhooks(&self) -> Result<Vec<(String, Webhook)>>;
    /// The webhook of `registrar`, if it has one.
    fn webhook(&self, registrar: &str) -> Result<Option<Webhook>> {
        Ok(self
            .webhooks()?
            .into_iter()
            .find(|(h, _)| h == registrar)
            .map(|(_, w)| w))
    }
    /// The delivery state of `registrar`'s webhook.
    fn webhook_state(&self, registrar: &str) -> Result<Option<WebhookState>>;
    /// Replace the delivery state of `registrar`'s webhook, one transaction.
    fn put_webhook_state(&self, registrar: &str, state: &WebhookState) -> Result<()>;

    /// The change feed of `registrar`: its domains' events with a sequence
    /// number above `after`, oldest first, at most `limit`.
    fn feed(&self, registrar: &str, after: u64, limit: usize) -> Result<Vec<FeedEvent>>;

    // ---- writes (each one transaction) --------------------------------
    /// Start a write transaction: the registry service's primitive. It
    /// reads and writes records (indexes follow) and commits all or
    /// nothing; dropped without [`Txn::commit`], nothing is written.
    fn begin(&self) -> Result<Box<dyn Txn + '_>>;
    /// Replace a domain's delegation record, with an optional history
    /// event and probe round, atomically, if `accept` approves the stored
    /// record read in the same transaction. Returns whether it was written.
    /// The backend's one conditional write; the two below are its uses.
    fn put_delegation_when(
        &self,
        name: &str,
        accept: &dyn Fn(Option<&DelegationRecord>) -> bool,
        record: &DelegationRecord,
        event: Option<&HistoryEvent>,
        round: Option<&RoundSummary>,
    ) -> Result<bool>;
    /// [`Store::put_delegation_when`] the NS fingerprint is still
    /// `expected_fingerprint` (a re-declaration in between wins).
    fn put_delegation(
        &self,
        name: &str,
        expected_fingerprint: &str,
        record: &DelegationRecord,
        event: Option<&HistoryEvent>,
        round: Option<&RoundSummary>,
    ) -> Result<bool> {
        self.put_delegation_when(
            name,
            &|old| old.is_some_and(|o| o.ns_fingerprint == expected_fingerprint),
            record,
            event,
            round,
        )
    }
    /// [`Store::put_delegation_when`] the stored record still equals
    /// `expected` as a whole, so a retest (which keeps the fingerprint)
    /// made during a probe round also wins over the round.
    fn put_delegation_if_unchanged(
        &self,
        name: &str,
        expected: &DelegationRecord,
        record: &DelegationRecord,
        event: Option<&HistoryEvent>,
        round: Option<&RoundSummary>,
    ) -> Result<bool> {
        self.put_delegation_when(name, &|old| old == Some(expected), record, event, round)
    }

    /// Several rounds' conditional writes in ONE transaction (the
    /// scheduler's group commit): each write's condition is checked
    /// against the record stored when it is reached (earlier writes of the
    /// batch included); a write whose condition fails is skipped, the
    /// others go on. Returns, per write, whether it was written. On error
    /// nothing of the batch is written.
    fn put_delegations(&self, writes: &[DelegationWrite]) -> Result<Vec<bool>> {
        // Backends without a batch path: one transaction per write (still
        // all-or-nothing per write).
        writes
            .iter()
            .map(|w| {
                self.put_delegation_when(
                    &w.name,
                    &|old| w.when.accepts(old),
                    &w.record,
                    w.event.as_ref(),
                    w.round.as_ref(),
                )
            })
            .collect()
    }

    // ---- several processes (PostgreSQL); one process: trivial ---------
    /// Whether other processes may write this store meanwhile (they
    /// cannot wake this one: it polls).
    fn shared(&self) -> bool {
        false
    }
    /// Claim due domains for scheduler `owner` until `lease` from now;
    /// returns the names granted (the others are another live scheduler's).
    fn claim(
        &self,
        _owner: &str,
        names: &[String],
        _lease: std::time::Duration,
    ) -> Result<Vec<String>> {
        Ok(names.to_vec())
    }
    /// [`Store::claim`], with each granted domain's registration and
    /// delegation record (`None` if either is gone), so a scheduler starts
    /// a batch of rounds without reading each domain on its own. A backend
    /// over the network reads them in the claim's round trip.
    fn claim_loaded(
        &self,
        owner: &str,
        names: &[String],
        lease: std::time::Duration,
    ) -> Result<Vec<Claimed>> {
        self.claim(owner, names, lease)?
            .into_iter()
            .map(|n| {
                let loaded = match (self.domain(&n)?, self.delegation(&n)?) {
                    (Some(d), Some(r)) => Some((d, r)),
                    _ => None,
                };
                Ok((n, loaded))
            })
            .collect()
    }
    /// Give `owner`'s claims on `names` back (all of them if `names` is
    /// empty).
    fn release(&self, _owner: &str, _names: &[String]) -> Result<()> {
        Ok(())
    }
    /// Try to become the one process doing `duty` (the zone writer);
    /// `None`: another process holds it.
    fn try_lead(&self, _duty: &str) -> Result<Option<Box<dyn Leadership>>> {
        Ok(Some(Box::new(Sole)))
    }

    // ---- backup (docs/operations.md, "Backup and restore") -------------
    /// A consistent copy of the whole store, read in one transaction, as
    /// a file of the backend's own format: an unlinked temporary file,
    /// positioned at its start. A backend that has none (PostgreSQL backs
    /// up with `pg_dump`) says so.
    fn backup_file(&self) -> Result<std::fs::File> {
        Err(StoreError::Backend(
            "this store has no file backup; back a PostgreSQL database up with pg_dump (docs/operations.md)".into(),
        ))
    }
}

/// What a write of [`Store::put_delegations`] requires of the stored
/// record (the conditions of [`Store::put_delegation_if_unchanged`] and
/// [`Store::put_delegation`]).
#[derive(Debug, Clone, PartialEq)]
pub enum WriteIf {
    /// The stored record still equals this one as a whole.
    Unchanged(Box<DelegationRecord>),
    /// The stored record's NS fingerprint is still this one.
    Fingerprint(String),
}

impl WriteIf {
    pub fn accepts(&self, old: Option<&DelegationRecord>) -> bool {
        match self {
            WriteIf::Unchanged(e) => old == Some(&**e),
            WriteIf::Fingerprint(f) => old.is_some_and(|o| &o.ns_fingerprint == f),
        }
    }
}

/// One round's write in a batch ([`Store::put_delegations`]).
#[derive(Debug, Clone)]
pub struct DelegationWrite {
    pub name: String,
    pub when: WriteIf,
    pub record: DelegationRecord,
    pub event: Option<HistoryEvent>,
    pub round: Option<RoundSummary>,
}

/// A held leadership (see [`Store::try_lead`]); dropped: given up.
pub trait Leadership: Send {
    /// Whether it is still held (a lost database session loses it).
    fn held(&self) -> bool;
}

/// The only process: always the leader.
struct Sole;

impl Leadership for Sole {
    fn held(&self) -> bool {
        true
    }
}

/// One write transaction over the registry records. It stores what it is
/// given: the rules are the registry service's ([`crate::registry`]).
pub trait Txn {
    fn registrar(&self, handle: &str) -> Result<Option<Registrar>>;
    fn contact(&self, handle: &str) -> Result<Option<Contact>>;
    /// Whether contact `handle` exists (a backend may skip decoding it).
    fn contact_exists(&self, handle: &str) -> Result<bool> {
        Ok(self.contact(handle)?.is_some())
    }
    fn domain(&self, name: &str) -> Result<Option<Domain>>;
    fn delegation(&self, name: &str) -> Result<Option<DelegationRecord>>;
    /// [`Store::look_alike`], inside this transaction (so two look-alikes
    /// created at once cannot both pass).
    fn look_alike(&self, key: &str, except: &str) -> Result<Option<String>>;
    fn put_registrar(&mut self, r: &Registrar) -> Result<()>;
    fn put_contact(&mut self, c: &Contact) -> Result<()>;
    /// Remove a contact record (the registry checks first that no domain
    /// refers to it).
    fn delete_contact(&mut self, handle: &str) -> Result<()>;
    fn host_object(&self, name: &str) -> Result<Option<HostObject>>;
    fn put_host_object(&mut self, h: &HostObject) -> Result<()>;
    /// Remove a host object (the registry checks first that no domain
    /// uses it).
    fn delete_host_object(&mut self, name: &str) -> Result<()>;
    /// A reseller by handle (any case), read in this transaction.
    fn reseller(&self, handle: &str) -> Result<Option<crate::model::Reseller>>;
    /// Write a reseller (keyed by its handle in lower case).
    fn put_reseller(&mut self, r: &crate::model::Reseller) -> Result<()>;
    /// The wrong auth codes counted against domain `name`.
    fn auth_failures(&self, name: &str) -> Result<Option<crate::model::AuthFailures>>;
    /// Replace (or with `None` remove) them.
    fn put_auth_failures(
        &mut self,
        name: &str,
        f: Option<&crate::model::AuthFailures>,
    ) -> Result<()>;
    /// Write a domain record; every index derived from it follows.
    fn put_domain(&mut self, d: &Domain) -> Result<()>;
    fn put_delegation(&mut self, name: &str, rec: &DelegationRecord) -> Result<()>;
    /// Set (`Some`) or remove `registrar`'s webhook. Set for the first
    /// time (no delivery state yet), its delivery starts after the feed's
    /// newest event: a new webhook does not replay the past.
    fn put_webhook(&mut self, registrar: &str, hook: Option<&Webhook>) -> Result<()>;
    /// Append `ev` to the domain's history and, naming `actor`, to the
    /// change feed of each of `registrars`.
    fn append_event(
        &mut self,
        name: &str,
        ev: &HistoryEvent,
        actor: &str,
        registrars: &[&str],
    ) -> Result<()>;
    /// Commit everything written, marking the store updated at `now`.
    fn commit(self: Box<Self>, now: Timestamp) -> Result<()>;
    /// A hint before a run of reads and writes of these domains (and the
    /// contacts they name): a bulk writer (import) announces each chunk.
    /// A backend with a network round trip per statement may read them all
    /// at once and batch the writes that follow until its next statement
    /// or the commit. What the transaction reads and commits is the same.
    fn prefetch(&mut self, _domains: &[&str], _contacts: &[&str]) -> Result<()> {
        Ok(())
    }
}

/// One entry of a registrar's change feed (`GET /api/v1/events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FeedEvent {
    /// Position in the registry-wide feed: the cursor.
    pub seq: u64,
    #[serde(with = "crate::model::ts")]
    pub at: Timestamp,
    pub domain: String,
    /// Who made the change: `registrar:HANDLE`, `operator`, `import`,
    /// `scheduler` or `registry`.
    pub actor: String,
    pub from: Option<DelegationState>,
    pub to: DelegationState,
    pub reason: String,
    /// The registrars whose feed lists it (for trimming the index).
    pub registrars: Vec<String>,
}

impl FeedEvent {
    /// The feed entry of history event `ev` of `domain`, at position `seq`.
    pub fn of(seq: u64, domain: &str, ev: &HistoryEvent, actor: &str, registrars: &[&str]) -> Self {
        Self {
            seq,
            at: ev.at,
            domain: domain.to_string(),
            actor: actor.to_string(),
            from: ev.from,
            to: ev.to,
            reason: ev.reason.clone(),
            registrars: registrars.iter().map(|r| r.to_string()).collect(),
        }
    }
}
