//! The embedded default backend: one redb file.
//!
//! Records are postcard-encoded values keyed by name/handle. Secondary
//! indexes are tables with composite `(key, item)` keys and empty values, so
//! listings page with a range scan instead of walking a whole multimap.
//! redb commits are atomic and crash-safe: a kill at any moment leaves the
//! last committed state.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ::redb::backends::FileBackend;
use ::redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    StorageBackend, TableDefinition, TableHandle, WriteTransaction,
};
use serde::de::DeserializeOwned;

use super::contract::*;
use super::indexes::{pending_testing, public_fn, DomainIndexes, IndexEntry};
use super::retention::Retention;
use super::stamps::{Changes, Key, Stamps};
use super::verify::{self, Stored};
use crate::model::{
    CdsSighting, Contact, DelegationRecord, DelegationState, Domain, HistoryEvent, HostObject,
    Registrar, RoundSummary, Timestamp, Webhook, WebhookState,
};

use crate::names::SKELETON_INDEX_VERSION;
use crate::public::DomainBundle;
use std::collections::BTreeMap;

use super::codec::{dec, enc, json_dec, json_enc};
pub use super::codec::{FEED_KEPT, HISTORY_KEPT, ROUNDS_KEPT};
use super::redb_schema::tables::*;
use super::redb_schema::{err, is_full};

mod backup;
mod check;
mod reads;
mod txn;
mod write;
use self::write::*;

const KEY_SCHEMA: &str = "schema_version";
/// redb's own default page cache.
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;
/// Written by [`Store::probe_write`] while writes fail (the value means
/// nothing).
const KEY_PROBE: &str = "write_probe";
/// Free bytes the volume must have again before a store that ran out of
/// space counts as writable (a small write may still fit in the file's
/// free pages while a larger one needs the file to grow).
const FULL_CLEARS_AT: u64 = 1 << 20;

/// What the store's I/O found lately, shared by every open of the file.
#[derive(Debug, Default)]
struct Shared {
    /// The store file (its volume's free space is checked before a full
    /// store counts as writable again).
    path: PathBuf,
    /// [`Health`] as a number (0 ok, 1 full, 2 unavailable).
    health: AtomicU8,
    /// Test hook: writes fail with this errno (0: they don't).
    inject: AtomicI32,
    /// The last failed I/O was a full volume: redb's later `PreviousIo`
    /// (and the reopen it forces) are that same failure.
    last_full: AtomicBool,
}

impl Shared {
    /// The store cannot write because its volume is full (now, or at the
    /// failure that made redb refuse until the reopen).
    fn failed_full(&self) -> bool {
        self.health() == Health::Full || self.last_full.load(Ordering::SeqCst)
    }

    fn health(&self) -> Health {
        match self.health.load(Ordering::SeqCst) {
            0 => Health::Ok,
            1 => Health::Full,
            _ => Health::Unavailable,
        }
    }

    /// A commit succeeded: writable again, unless the volume is still
    /// (nearly) full.
    fn committed(&self) {
        if self.health() == Health::Full
            && super::contract::free_bytes(&self.path).is_ok_and(|f| f < FULL_CLEARS_AT)
        {
            return;
        }
        self.set(Health::Ok);
    }

    /// A commit's outcome: one that succeeded proves the store writable
    /// again (readiness comes back); a failed one says why.
    fn outcome(&self, r: Result<()>) -> Result<()> {
        match r {
            Ok(()) => {
                self.committed();
                Ok(())
            }
            Err(StoreError::Unavailable(m)) if self.failed_full() => Err(StoreError::Full(m)),
            Err(e) => Err(e),
        }
    }

    fn set(&self, h: Health) {
        let n = match h {
            Health::Ok => 0,
            Health::Full => 1,
            Health::Unavailable => 2,
        };
        if self.health.swap(n, Ordering::SeqCst) != n {
            metrics::gauge!("zonekeeper_store_healthy").set(if n == 0 { 1.0 } else { 0.0 });
            match h {
                Health::Ok => tracing::info!("store: writes succeed again"),
                _ => tracing::warn!("store: writes fail ({})", h.reason()),
            }
        }
    }
}

/// The redb file as redb's storage backend: every I/O of the database
/// passes here, so a failure is seen (and classed: full or not) even when
/// redb reports it later as `PreviousIo`.
#[derive(Debug)]
struct Watched {
    inner: FileBackend,
    /// This open has failed an I/O: redb refuses everything from now on,
    /// the store must reopen the file.
    failed: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

type IoResult<T> = std::result::Result<T, std::io::Error>;
type LockResult<T> = std::result::Result<T, ::redb::BackendError>;

impl Watched {
    fn note<T>(&self, r: IoResult<T>) -> IoResult<T> {
        if let Err(e) = &r {
            self.failed.store(true, Ordering::SeqCst);
            let kind = if is_full(e) { "full" } else { "io" };
            self.shared.last_full.store(is_full(e), Ordering::SeqCst);
            metrics::counter!("zonekeeper_store_errors_total", "kind" => kind).increment(1);
            self.shared.set(if is_full(e) {
                Health::Full
            } else {
                Health::Unavailable
            });
        }
        r
    }

    /// A write that changes the file: fails as injected (tests).
    fn changing<T>(&self, f: impl FnOnce() -> IoResult<T>) -> IoResult<T> {
        let errno = self.shared.inject.load(Ordering::SeqCst);
        let r = if errno != 0 {
            Err(std::io::Error::from_raw_os_error(errno))
        } else {
            f()
        };
        self.note(r)
    }
}

impl StorageBackend for Watched {
    fn len(&self) -> IoResult<u64> {
        self.note(self.inner.len())
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> IoResult<()> {
        self.note(self.inner.read(offset, out))
    }
    fn set_len(&self, len: u64) -> IoResult<()> {
        self.changing(|| self.inner.set_len(len))
    }
    fn sync_data(&self) -> IoResult<()> {
        self.changing(|| self.inner.sync_data())
    }
    fn write(&self, offset: u64, data: &[u8]) -> IoResult<()> {
        self.changing(|| self.inner.write(offset, data))
    }
    fn close(&self) -> IoResult<()> {
        self.inner.close()
    }
    fn try_lock_range(&self, a: Bound<u64>, b: Bound<u64>) -> LockResult<bool> {
        self.inner.try_lock_range(a, b)
    }
    fn try_lock_shared_range(&self, a: Bound<u64>, b: Bound<u64>) -> LockResult<bool> {
        self.inner.try_lock_shared_range(a, b)
    }
    fn lock_range(&self, a: Bound<u64>, b: Bound<u64>) -> LockResult<()> {
        self.inner.lock_range(a, b)
    }
    fn lock_shared_range(&self, a: Bound<u64>, b: Bound<u64>) -> LockResult<()> {
        self.inner.lock_shared_range(a, b)
    }
    fn unlock_range(&self, a: Bound<u64>, b: Bound<u64>) -> LockResult<()> {
        let r = self.inner.unlock_range(a, b);
        if r.is_err() {
            // redb latches PreviousIo after a failed unlock, too.
            self.failed.store(true, Ordering::SeqCst);
        }
        r
    }
    fn query_lock_range(&self, a: Bound<u64>, b: Bound<u64>) -> LockResult<bool> {
        self.inner.query_lock_range(a, b)
    }
}

/// One open of the file.
struct Opened {
    db: Arc<Database>,
    failed: Arc<AtomicBool>,
}

/// When to try reopening next: 100 ms after a failed attempt, doubling
/// to 5 s.
#[derive(Debug, Clone)]
struct Backoff {
    first: Duration,
    max: Duration,
    delay: Duration,
    next: Option<Instant>,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            delay: first,
            next: None,
        }
    }

    fn due(&self, now: Instant) -> bool {
        self.next.is_none_or(|t| now >= t)
    }

    fn failed(&mut self, now: Instant) {
        self.next = Some(now + self.delay);
        self.delay = (self.delay * 2).min(self.max);
    }

    fn succeeded(&mut self) {
        self.delay = self.first;
        self.next = None;
    }
}

const REOPEN_FIRST: Duration = Duration::from_millis(100);
const REOPEN_MAX: Duration = Duration::from_secs(5);

pub struct RedbStore {
    /// The open database; `None` between a failed I/O and a successful
    /// reopen.
    slot: RwLock<Option<Opened>>,
    backoff: Mutex<Backoff>,
    shared: Arc<Shared>,
    cache_bytes: usize,
    path: PathBuf,
    retention: Retention,
    /// Published with each commit; redb locks the file to one process, so
    /// every write to it passes here.
    stamps: Stamps,
}

impl RedbStore {
    /// [`Store::put_delegations`]: every write of the batch in one write
    /// transaction (one commit, one fsync), each under its own condition.
    fn write_delegations(&self, writes: &[DelegationWrite]) -> Result<Vec<bool>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.write()?;
        let w = W::new(&txn);
        let mut changes = Changes::default();
        let mut done = Vec::with_capacity(writes.len());
        // The store's `last update`: the batch's latest event.
        let mut latest = None;
        for x in writes {
            done.push(apply_delegation_write(
                &w,
                x,
                &self.retention,
                &mut changes,
                &mut latest,
            )?);
        }
        if let Some(at) = latest {
            touch(&w, at)?;
            changes.updated(at);
        }
        w.flush()?;
        drop(w);
        if done.iter().any(|d| *d) {
            self.commit(txn, changes)?;
        } else {
            txn.abort().map_err(err)?;
        }
        Ok(done)
    }

    /// Open (or create) the store at `path`, checking the schema version.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Open with a page cache of `cache_bytes` (hot pages of a large store
    /// served from memory; it counts towards the process's RSS).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self> {
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            ..Shared::default()
        });
        let opened = Self::open_file(path, cache_bytes, &shared)?;
        metrics::gauge!("zonekeeper_store_healthy").set(1.0);
        let mut store = Self {
            slot: RwLock::new(Some(opened)),
            backoff: Mutex::new(Backoff::new(REOPEN_FIRST, REOPEN_MAX)),
            shared,
            cache_bytes,
            path: path.to_path_buf(),
            retention: Retention::default(),
            stamps: Stamps::new(None),
        };
        store.init_schema()?;
        store.stamps = Stamps::new(store.last_update()?);
        Ok(store)
    }

    fn open_file(path: &Path, cache_bytes: usize, shared: &Arc<Shared>) -> Result<Opened> {
        let fail = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| fail(e.to_string()))?;
        let failed = Arc::new(AtomicBool::new(false));
        let backend = Watched {
            inner: FileBackend::new(file).map_err(|e| fail(e.to_string()))?,
            failed: failed.clone(),
            shared: shared.clone(),
        };
        match ::redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create_with_backend(backend)
        {
            Ok(db) => Ok(Opened {
                db: Arc::new(db),
                failed,
            }),
            Err(::redb::DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::Locked {
                path: path.to_path_buf(),
            }),
            // A failed reopen says why through the health the backend
            // noted (see `reopen`).
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// The open database, reopened first if an I/O failed it (at most as
    /// often as the backoff allows; meanwhile the error says why).
    fn db(&self) -> Result<Arc<Database>> {
        {
            let slot = self.slot.read().unwrap_or_else(|p| p.into_inner());
            if let Some(o) = slot.as_ref().filter(|o| !o.failed.load(Ordering::SeqCst)) {
                return Ok(o.db.clone());
            }
        }
        self.reopen()
    }

    fn reopen(&self) -> Result<Arc<Database>> {
        let mut slot = self.slot.write().unwrap_or_else(|p| p.into_inner());
        // Another thread may have reopened it meanwhile.
        if let Some(o) = slot.as_ref().filter(|o| !o.failed.load(Ordering::SeqCst)) {
            return Ok(o.db.clone());
        }
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let why = || match self.shared.health() {
            Health::Ok => Health::Unavailable,
            h => h,
        };
        if !backoff.due(now) {
            return Err(why().error("reopening the store after an I/O error"));
        }
        // Ours goes now; the file is free once the last transaction of the
        // failed open ends (until then the reopen finds it locked).
        *slot = None;
        match Self::open_file(&self.path, self.cache_bytes, &self.shared) {
            Ok(o) => {
                backoff.succeeded();
                // Once per failed write while the disk is full: quiet (the
                // health change is logged once).
                tracing::debug!("store {}: reopened after an I/O error", self.path.display());
                let db = o.db.clone();
                *slot = Some(o);
                Ok(db)
            }
            Err(e) => {
                backoff.failed(now);
                metrics::counter!("zonekeeper_store_errors_total", "kind" => "reopen").increment(1);
                tracing::warn!(
                    "store {}: reopen failed (next try in {:?}): {e}",
                    self.path.display(),
                    backoff.delay / 2
                );
                Err(match e {
                    e @ (StoreError::Full(_) | StoreError::Unavailable(_)) => e,
                    e => why().error(e.to_string()),
                })
            }
        }
    }

    /// Errors of a store that failed an I/O say why (a full volume, seen
    /// by [`Watched`], rather than redb's later `PreviousIo`).
    fn typed(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Unavailable(m) if self.shared.failed_full() => StoreError::Full(m),
            e => e,
        }
    }

    /// Test hook: make every write to the file fail with `errno` (0: stop).
    #[doc(hidden)]
    pub fn inject_write_error(&self, errno: i32) {
        self.shared.inject.store(errno, Ordering::SeqCst);
    }

    /// Test hook: the reopen backoff's first and longest delay.
    #[doc(hidden)]
    pub fn set_reopen_backoff(&mut self, first: Duration, max: Duration) {
        *self.backoff.get_mut().unwrap_or_else(|p| p.into_inner()) = Backoff::new(first, max);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Which probe rounds to keep from now on (see [`Retention`]).
    pub fn set_retention(&mut self, r: Retention) {
        self.retention = r;
    }

    fn init_schema(&self) -> Result<()> {
        // Fast path with no write: an existing store of this version.
        {
            let r = self.read()?;
            if let Ok(meta) = r.open_table(META) {
                let schema = meta.get(KEY_SCHEMA).map_err(err)?;
                let skeletons = meta.get(KEY_SKELETONS).map_err(err)?;
                if schema.is_some_and(|v| v.value() == SCHEMA_VERSION.to_le_bytes().as_slice())
                    && skeletons.is_some_and(|v| v.value() == SKELETON_INDEX_VERSION.as_bytes())
                {
                    return Ok(());
                }
            }
        }
        let txn = self.write()?;
        {
            let mut meta = txn.open_table(META).map_err(err)?;
            let found = match meta.get(KEY_SCHEMA).map_err(err)? {
                Some(v) => {
                    let b = v.value();
                    let arr: [u8; 4] = b
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("schema version".into()))?;
                    Some(u32::from_le_bytes(arr))
                }
                None => None,
            };
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::NewerSchema {
                        path: self.path.display().to_string(),
                        found: v,
                        supported: SCHEMA_VERSION,
                    })
                }
                Some(v) => {
                    // An older layout: rewrite every record, then record the
                    // new version, in this one transaction.
                    super::migrate::migrate(&txn, v)?;
                    meta.insert(KEY_SCHEMA, SCHEMA_VERSION.to_le_bytes().as_slice())
                        .map_err(err)?;
                }
                None => {
                    meta.insert(KEY_SCHEMA, SCHEMA_VERSION.to_le_bytes().as_slice())
                        .map_err(err)?;
                }
            }
        }
        // Create every table so readers never meet a missing one.
        txn.open_table(REGISTRARS).map_err(err)?;
        txn.open_table(CONTACTS).map_err(err)?;
        txn.open_table(DOMAINS).map_err(err)?;
        txn.open_table(DELEGATION).map_err(err)?;
        txn.open_table(HOSTS).map_err(err)?;
        txn.open_table(HISTORY).map_err(err)?;
        txn.open_table(ROUNDS).map_err(err)?;
        txn.open_table(STATE_COUNTS).map_err(err)?;
        txn.open_table(FEED).map_err(err)?;
        txn.open_table(IDX_FEED).map_err(err)?;
        for t in [
            IDX_HOST_DOMAIN,
            IDX_IP_HOST,
            IDX_REGISTRAR,
            IDX_CONTACT,
            IDX_STATE,
            IDX_FN,
            IDX_RESELLER,
            IDX_PENDING_TRANSFER,
        ] {
            txn.open_table(t).map_err(err)?;
        }
        build_skeleton_index(&txn)?;
        let mut all = Changes::default();
        all.all();
        self.commit(txn, all)
    }

    fn read(&self) -> Result<ReadTransaction> {
        self.db()
            .and_then(|db| db.begin_read().map_err(err))
            .map_err(|e| self.typed(e))
    }

    fn write(&self) -> Result<WriteTransaction> {
        self.db()
            .and_then(|db| db.begin_write().map_err(err))
            .map_err(|e| self.typed(e))
    }

    /// Commit, then publish what changed (see [`Stamps::commit`]).
    fn commit(&self, txn: WriteTransaction, changes: Changes) -> Result<()> {
        self.shared
            .outcome(self.stamps.commit(changes, || txn.commit().map_err(err)))
    }

    fn get<T: DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &[u8]>,
        key: &str,
    ) -> Result<Option<T>> {
        let txn = self.read()?;
        get_in(&txn, def, key)
    }

    /// Keys of an index table under `key`, after `after`, at most `limit`.
    fn index_page(
        &self,
        def: TableDefinition<(&str, &str), ()>,
        key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        index_page_in(&self.read()?, def, key, after, limit)
    }

    /// The record under `key` in a table that may not exist yet.
    fn get_if_any<T: DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &[u8]>,
        key: &str,
    ) -> Result<Option<T>> {
        let txn = self.read()?;
        let Some(t) = table_if_any(&txn, def)? else {
            return Ok(None);
        };
        let found = t.get(key).map_err(err)?;
        found.map(|v| dec(v.value())).transpose()
    }

    /// [`Self::index_page`] of a table newer than some stores: missing
    /// (no write since the upgrade) reads as empty.
    fn index_page_opt(
        &self,
        def: TableDefinition<(&str, &str), ()>,
        key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        if table_if_any(&self.read()?, def)?.is_none() {
            return Ok((Vec::new(), None));
        }
        self.index_page(def, key, after, limit)
    }

    /// Keys of a record table starting with `prefix`.
    fn prefix_page(
        &self,
        def: TableDefinition<&str, &[u8]>,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        let txn = self.read()?;
        let t = txn.open_table(def).map_err(err)?;
        let start = match after {
            Some(a) if a > prefix => a,
            _ => prefix,
        };
        let mut out = Vec::new();
        let mut more = None;
        for item in t.range(start..).map_err(err)? {
            let (k, _) = item.map_err(err)?;
            let k = k.value();
            if !k.starts_with(prefix) {
                break;
            }
            if after == Some(k) {
                continue;
            }
            if out.len() == limit {
                more = out.last().cloned();
                break;
            }
            out.push(k.to_string());
        }
        Ok((out, more))
    }

    /// Last `limit` values of a `(name, seq)` log table, oldest first.
    fn log_tail<T: DeserializeOwned>(
        &self,
        def: TableDefinition<(&str, u64), &[u8]>,
        name: &str,
        limit: usize,
    ) -> Result<Vec<T>> {
        let txn = self.read()?;
        let t = txn.open_table(def).map_err(err)?;
        let mut out = Vec::new();
        for item in t.range((name, 0)..=(name, u64::MAX)).map_err(err)?.rev() {
            if out.len() == limit {
                break;
            }
            let (_, v) = item.map_err(err)?;
            out.push(dec(v.value())?);
        }
        out.reverse();
        Ok(out)
    }
}

/// A page of the names under `key` in index `def`, after `after`, read in
/// `txn`.
fn index_page_in(
    txn: &ReadTransaction,
    def: TableDefinition<(&str, &str), ()>,
    key: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Page> {
    let t = txn.open_table(def).map_err(err)?;
    let start = after.unwrap_or("");
    let mut out = Vec::new();
    let mut more = None;
    for item in t.range((key, start)..).map_err(err)? {
        let (k, _) = item.map_err(err)?;
        let (k0, k1) = k.value();
        if k0 != key {
            break;
        }
        if after == Some(k1) {
            continue;
        }
        if out.len() == limit {
            more = out.last().cloned();
            break;
        }
        out.push(k1.to_string());
    }
    Ok((out, more))
}

fn get_in<T: DeserializeOwned>(
    txn: &ReadTransaction,
    def: TableDefinition<&str, &[u8]>,
    key: &str,
) -> Result<Option<T>> {
    let t = txn.open_table(def).map_err(err)?;
    match t.get(key).map_err(err)? {
        Some(v) => Ok(Some(dec(v.value())?)),
        None => Ok(None),
    }
}

self_cell::self_cell!(
    /// A write transaction with its open tables ([`W`]).
    struct TxnCell {
        owner: WriteTransaction,
        #[not_covariant]
        dependent: W,
    }
);

/// [`Txn`] over one redb write transaction (dropped: aborted). Its tables
/// stay open from first use to the end: a bulk import writes them ~30
/// times a domain.
struct RedbTxn<'a> {
    cell: TxnCell,
    stamps: &'a Stamps,
    shared: &'a Shared,
    /// Keys whose public data this transaction changed.
    changes: Changes,
}

#[cfg(test)]
mod tests;
