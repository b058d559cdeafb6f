//! Storage behind one small trait, so the embedded redb backend can later be
//! joined by a PostgreSQL one (several schedulers claiming due domains,
//! several WHOIS/RDAP front ends reading one database).
//!
//! The trait is synchronous: redb calls take microseconds, and callers on
//! the async side use them directly for point reads and through
//! `spawn_blocking` for bulk work. Every write is one transaction: it either
//! happens whole or not at all.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use crate::model::{
    Contact, DelegationRecord, DelegationState, Domain, HistoryEvent, Hold, Nameserver, Registrar,
    RoundSummary, Timestamp,
};
use crate::public::DomainBundle;

mod migrate;
pub mod redb;
pub use self::redb::RedbStore;

/// Schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is in use by another process (is `zonekeeper serve` running? use its API instead)")]
    Locked { path: PathBuf },
    #[error("store {path} has schema version {found}, newer than this zonekeeper supports ({supported}); upgrade zonekeeper")]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("store {path} cannot be opened: {message}")]
    Open { path: PathBuf, message: String },
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("store I/O error: {0}")]
    Io(String),
    #[error("store error: {0}")]
    Backend(String),
    #[error("no such domain: {0}")]
    NoSuchDomain(String),
    #[error("import rejected; nothing was applied")]
    Rejected(Vec<RecordError>),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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
    pub contacts: Vec<Contact>,
    pub domains: Vec<Domain>,
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

/// A page of keys: the keys, and the key to pass as `after` for the next page.
pub type Page = (Vec<String>, Option<String>);

pub trait Store: Send + Sync + 'static {
    // ---- point reads -------------------------------------------------
    fn registrar(&self, handle: &str) -> Result<Option<Registrar>>;
    fn registrars(&self) -> Result<Vec<Registrar>>;
    fn contact(&self, handle: &str) -> Result<Option<Contact>>;
    fn domain(&self, name: &str) -> Result<Option<Domain>>;
    fn delegation(&self, name: &str) -> Result<Option<DelegationRecord>>;
    /// A domain with its delegation record, registrar and contacts, read in
    /// one transaction.
    fn bundle(&self, name: &str) -> Result<Option<DomainBundle>>;
    fn host(&self, name: &str) -> Result<Option<HostRecord>>;
    /// A domain's delegation history, oldest first, the last `limit` events.
    fn history(&self, name: &str, limit: usize) -> Result<Vec<HistoryEvent>>;
    /// A domain's probe rounds, oldest first, the last `limit` rounds.
    fn rounds(&self, name: &str, limit: usize) -> Result<Vec<RoundSummary>>;
    fn last_update(&self) -> Result<Option<Timestamp>>;
    fn stats(&self) -> Result<StoreStats>;

    // ---- lists and searches (keys in order; `after` excludes) ---------
    fn domains_by_host(&self, host: &str, after: Option<&str>, limit: usize) -> Result<Page>;
    fn hosts_by_ip(&self, ip: IpAddr, limit: usize) -> Result<Vec<String>>;
    fn domains_by_registrar(&self, handle: &str, after: Option<&str>, limit: usize)
        -> Result<Page>;
    fn domains_by_contact(&self, handle: &str, after: Option<&str>, limit: usize) -> Result<Page>;
    fn domains_by_state(
        &self,
        state: DelegationState,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page>;
    fn search_domains(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page>;
    fn search_hosts(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page>;
    /// Contact and registrar handles starting with `prefix` (case-sensitive).
    fn search_handles(&self, prefix: &str, limit: usize) -> Result<Vec<String>>;
    /// Handles of entities whose *public* name (lower-cased) starts with `prefix`.
    fn search_entity_names(&self, prefix: &str, limit: usize) -> Result<Vec<String>>;
    /// Visit every delegation record (scheduler start-up). Return `false`
    /// from `f` to stop.
    fn for_each_delegation(&self, f: &mut dyn FnMut(&str, &DelegationRecord) -> bool)
        -> Result<()>;

    // ---- writes (each one transaction) --------------------------------
    /// Apply an import: all or nothing. References to registrars and
    /// contacts are checked against the batch and the store.
    fn import(
        &self,
        batch: &ImportBatch,
        now: Timestamp,
        window: chrono::Duration,
    ) -> Result<ImportSummary>;
    /// Declare a domain's NS set; restarts testing if it changed.
    fn declare_nameservers(
        &self,
        name: &str,
        ns: Vec<Nameserver>,
        now: Timestamp,
        window: chrono::Duration,
    ) -> Result<DelegationRecord>;
    /// Declare a domain's DS set (empty: remove it); restarts testing if
    /// it changed, like an NS change. Refused without nameservers.
    /// `source` (e.g. `registrar API`, `CDS`) prefixes the history event.
    fn declare_ds(
        &self,
        name: &str,
        ds: Vec<crate::model::DsRecord>,
        source: &str,
        now: Timestamp,
        window: chrono::Duration,
    ) -> Result<DelegationRecord>;
    /// Start a fresh test window for the current NS set.
    fn retest(
        &self,
        name: &str,
        now: Timestamp,
        window: chrono::Duration,
    ) -> Result<DelegationRecord>;
    /// Replace a domain's delegation record if its NS fingerprint is still
    /// `expected_fingerprint` (a re-declaration in between wins), with an
    /// optional history event and probe round, atomically. Returns whether
    /// it was written.
    fn put_delegation(
        &self,
        name: &str,
        expected_fingerprint: &str,
        record: &DelegationRecord,
        event: Option<&HistoryEvent>,
        round: Option<&RoundSummary>,
    ) -> Result<bool>;
    /// Like [`Store::put_delegation`], but only if the stored record still
    /// equals `expected` as a whole, so a retest (which keeps the
    /// fingerprint) made during a probe round also wins over the round.
    /// The default is not atomic; backends override it with one
    /// transaction.
    fn put_delegation_if_unchanged(
        &self,
        name: &str,
        expected: &DelegationRecord,
        record: &DelegationRecord,
        event: Option<&HistoryEvent>,
        round: Option<&RoundSummary>,
    ) -> Result<bool> {
        if self.delegation(name)?.as_ref() != Some(expected) {
            return Ok(false);
        }
        self.put_delegation(name, &expected.ns_fingerprint, record, event, round)
    }
    /// Put a domain on hold (`Some`) or release it (`None`).
    fn set_hold(&self, name: &str, hold: Option<Hold>, now: Timestamp) -> Result<()>;
}
