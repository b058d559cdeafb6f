//! The embedded default backend: one redb file.
//!
//! Records are postcard-encoded values keyed by name/handle. Secondary
//! indexes are tables with composite `(key, item)` keys and empty values, so
//! listings page with a range scan instead of walking a whole multimap.
//! redb commits are atomic and crash-safe: a kill at any moment leaves the
//! last committed state.

use std::cell::RefCell;
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
use serde::{de::DeserializeOwned, Serialize};

use super::contract::*;
use super::indexes::{pending_testing, public_fn, DomainIndexes, IndexDiff, IndexEntry};
use super::retention::Retention;
use super::stamps::{Changes, Key, Stamps};
use super::verify::{self, Stored};
use crate::model::{
    CdsSighting, Contact, DelegationRecord, DelegationState, Domain, HistoryEvent, HostObject,
    Registrar, RoundSummary, Timestamp, Webhook, WebhookState,
};

use crate::names::{skeleton_index_key, DomainName, SKELETON_INDEX_VERSION};
use crate::public::DomainBundle;
use std::collections::BTreeMap;

use super::codec::{dec, enc, json_dec, json_enc};
pub use super::codec::{FEED_KEPT, HISTORY_KEPT, ROUNDS_KEPT};
use super::redb_schema::tables::*;
use super::redb_schema::{err, is_full};

const KEY_SCHEMA: &str = "schema_version";
/// redb's own default page cache.
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;
const KEY_UPDATED: &str = "last_update";
/// Written by [`Store::probe_write`] while writes fail (the value means
/// nothing).
const KEY_PROBE: &str = "write_probe";
/// The [`crate::names::SKELETON_INDEX_VERSION`] that built `IDX_SKELETON`.
const KEY_SKELETONS: &str = "skeleton_index";
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
    /// One transaction: write `record` (with its history event and round)
    /// only if `accept` approves the record currently stored.
    fn write_delegation_when(
        &self,
        name: &str,
        accept: &dyn Fn(Option<&DelegationRecord>) -> bool,
        record: &DelegationRecord,
        event: Option<&HistoryEvent>,
        round: Option<&RoundSummary>,
    ) -> Result<bool> {
        let txn = self.write()?;
        let w = W::new(&txn);
        let old: Option<DelegationRecord> = wget(&w, DELEGATION, name)?;
        if !accept(old.as_ref()) {
            drop(w);
            txn.abort().map_err(err)?;
            return Ok(false);
        }
        put_record(&w, name, old.as_ref(), record)?;
        let mut changes = Changes::default();
        if old.as_ref().map(crate::public::delegation_facts)
            != Some(crate::public::delegation_facts(record))
        {
            changes.key(Key::Domain(name));
        }
        if let Some(ev) = event {
            log_append(&w, HISTORY, name, ev, HISTORY_KEPT)?;
            if let Some(d) = wget::<Domain>(&w, DOMAINS, name)? {
                feed_append(&w, name, ev, "scheduler", &[d.registrar.as_str()])?;
            }
            touch(&w, ev.at)?;
            changes.updated(ev.at);
        }
        if let Some(r) = round {
            rounds_append(&w, name, r, &self.retention)?;
        }
        w.flush()?;
        drop(w);
        self.commit(txn, changes)?;
        Ok(true)
    }

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
        committed(
            &self.shared,
            self.stamps.commit(changes, || txn.commit().map_err(err)),
        )
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
        let txn = self.read()?;
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

/// Tables of one key and value type, open in a write transaction.
struct Open<'t, K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    #[allow(clippy::type_complexity)]
    RefCell<Vec<(TableDefinition<'static, K, V>, ::redb::Table<'t, K, V>)>>,
);

impl<'t, K: ::redb::Key + 'static, V: ::redb::Value + 'static> Open<'t, K, V> {
    fn new() -> Self {
        Self(RefCell::new(Vec::new()))
    }

    /// Run `f` on table `def`, opened on first use.
    fn with<R>(
        &self,
        txn: &'t WriteTransaction,
        def: TableDefinition<'static, K, V>,
        f: impl FnOnce(&mut ::redb::Table<'t, K, V>) -> Result<R>,
    ) -> Result<R> {
        let mut open = self.0.try_borrow_mut().map_err(|_| busy(def))?;
        let i = slot_of(&mut open, def, || txn.open_table(def).map_err(err))?;
        f(&mut open[i].1)
    }
}

/// Where table `def`'s entry is in `v`, added with `make` when missing.
fn slot_of<K: ::redb::Key + 'static, V: ::redb::Value + 'static, T>(
    v: &mut Vec<(TableDefinition<'static, K, V>, T)>,
    def: TableDefinition<'static, K, V>,
    make: impl FnOnce() -> Result<T>,
) -> Result<usize> {
    if let Some(i) = v.iter().position(|(d, _)| d.name() == def.name()) {
        return Ok(i);
    }
    v.push((def, make()?));
    Ok(v.len() - 1)
}

fn busy<K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    def: TableDefinition<'static, K, V>,
) -> StoreError {
    StoreError::Backend(format!("table {} used twice at once", def.name()))
}

/// One write transaction's tables, each opened on first use and kept open
/// until the transaction ends: opening a redb table reads the table tree
/// and closing it writes its root back, which a bulk import would pay on
/// every one of its ~30 writes per domain.
pub(super) struct W<'t> {
    txn: &'t WriteTransaction,
    records: Open<'t, &'static str, &'static [u8]>,
    pairs: Open<'t, (&'static str, &'static str), ()>,
    logs: Open<'t, (&'static str, u64), &'static [u8]>,
    counts: Open<'t, &'static str, u64>,
    feed: Open<'t, u64, &'static [u8]>,
    feed_idx: Open<'t, (&'static str, u64), ()>,
    /// Index entries added but not yet inserted, by table: inserted in key
    /// order when the table is next used, when there are [`PENDING_MAX`],
    /// and before commit. A bulk import adds them in random key order
    /// (look-alike keys, contacts, hosts), and a sorted run touches each
    /// page once instead of once per entry.
    pending: RefCell<Vec<(PairTable, Vec<Entry>)>>,
    pending_len: std::cell::Cell<usize>,
}

type PairTable = TableDefinition<'static, (&'static str, &'static str), ()>;
/// A held-back index entry: (key, item).
type Entry = (Box<str>, Box<str>);

/// Most index entries a write transaction holds back ([`W::pending`]);
/// tiny under test, so every test's writes go through the flush.
const PENDING_MAX: usize = if cfg!(test) { 3 } else { 1 << 19 };

impl<'t> W<'t> {
    fn new(txn: &'t WriteTransaction) -> Self {
        W {
            txn,
            records: Open::new(),
            pairs: Open::new(),
            logs: Open::new(),
            counts: Open::new(),
            feed: Open::new(),
            feed_idx: Open::new(),
            pending: RefCell::new(Vec::new()),
            pending_len: std::cell::Cell::new(0),
        }
    }

    /// Add `(key, item)` to index `def`, later ([`W::pending`]).
    fn idx_add(&self, def: PairTable, key: &str, item: &str) -> Result<()> {
        {
            let mut p = self.pending.try_borrow_mut().map_err(|_| busy(def))?;
            let i = slot_of(&mut p, def, || Ok(Vec::new()))?;
            p[i].1.push((key.into(), item.into()));
        }
        self.pending_len.set(self.pending_len.get() + 1);
        if self.pending_len.get() >= PENDING_MAX {
            self.flush()?;
        }
        Ok(())
    }

    /// Insert the held-back entries of `def` (`None`: of every table).
    fn flush_pending(&self, def: Option<PairTable>) -> Result<()> {
        let taken: Vec<(PairTable, Vec<Entry>)> = {
            let mut p = self
                .pending
                .try_borrow_mut()
                .map_err(|_| StoreError::Backend("index buffer used twice at once".into()))?;
            if p.is_empty() {
                return Ok(());
            }
            match def {
                None => std::mem::take(&mut *p),
                Some(def) => match p.iter().position(|(d, _)| d.name() == def.name()) {
                    Some(i) => vec![p.swap_remove(i)],
                    None => return Ok(()),
                },
            }
        };
        for (def, mut entries) in taken {
            self.pending_len
                .set(self.pending_len.get().saturating_sub(entries.len()));
            entries.sort_unstable();
            entries.dedup();
            self.pairs.with(self.txn, def, |t| {
                for (k, i) in &entries {
                    t.insert((&**k, &**i), ()).map_err(err)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Insert every held-back index entry: before commit.
    fn flush(&self) -> Result<()> {
        self.flush_pending(None)
    }

    fn records<R>(
        &self,
        def: TableDefinition<'static, &'static str, &'static [u8]>,
        f: impl FnOnce(&mut ::redb::Table<'t, &'static str, &'static [u8]>) -> Result<R>,
    ) -> Result<R> {
        self.records.with(self.txn, def, f)
    }

    /// Index `def` with every entry added to it in place.
    fn pairs<R>(
        &self,
        def: PairTable,
        f: impl FnOnce(&mut ::redb::Table<'t, (&'static str, &'static str), ()>) -> Result<R>,
    ) -> Result<R> {
        self.flush_pending(Some(def))?;
        self.pairs.with(self.txn, def, f)
    }

    fn logs<R>(
        &self,
        def: TableDefinition<'static, (&'static str, u64), &'static [u8]>,
        f: impl FnOnce(&mut ::redb::Table<'t, (&'static str, u64), &'static [u8]>) -> Result<R>,
    ) -> Result<R> {
        self.logs.with(self.txn, def, f)
    }
}

/// A table added after a store was created: `None` until the store's
/// first registry write creates it.
fn table_if_any<K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<Option<::redb::ReadOnlyTable<K, V>>> {
    match txn.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(::redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

fn wget<T: DeserializeOwned>(
    w: &W<'_>,
    def: TableDefinition<'static, &'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>> {
    w.records(def, |t| match t.get(key).map_err(err)? {
        Some(v) => Ok(Some(dec(v.value())?)),
        None => Ok(None),
    })
}

/// Whether `key` is in a record table (nothing decoded).
fn wexists(
    w: &W<'_>,
    def: TableDefinition<'static, &'static str, &'static [u8]>,
    key: &str,
) -> Result<bool> {
    w.records(def, |t| Ok(t.get(key).map_err(err)?.is_some()))
}

fn wput<T: Serialize>(
    w: &W<'_>,
    def: TableDefinition<'static, &'static str, &'static [u8]>,
    key: &str,
    v: &T,
) -> Result<()> {
    let bytes = enc(v)?;
    w.records(def, |t| {
        t.insert(key, bytes.as_slice()).map_err(err)?;
        Ok(())
    })
}

fn wremove(
    w: &W<'_>,
    def: TableDefinition<'static, &'static str, &'static [u8]>,
    key: &str,
) -> Result<()> {
    w.records(def, |t| {
        t.remove(key).map_err(err)?;
        Ok(())
    })
}

fn idx_set(
    w: &W<'_>,
    def: TableDefinition<'static, (&'static str, &'static str), ()>,
    key: &str,
    item: &str,
    present: bool,
) -> Result<()> {
    if present {
        return w.idx_add(def, key, item);
    }
    w.pairs(def, |t| {
        t.remove((key, item)).map_err(err)?;
        Ok(())
    })
}

fn touch(w: &W<'_>, now: Timestamp) -> Result<()> {
    wput(w, META, KEY_UPDATED, &now)
}

/// The sequence number after the last entry of `name` in a `(name, seq)` log.
fn next_seq(t: &impl ReadableTable<(&'static str, u64), &'static [u8]>, name: &str) -> Result<u64> {
    match t
        .range((name, 0)..=(name, u64::MAX))
        .map_err(err)?
        .next_back()
    {
        Some(item) => Ok(item.map_err(err)?.0.value().1 + 1),
        None => Ok(0),
    }
}

/// Append to a `(name, seq)` log, keeping at most `keep` entries.
fn log_append<T: Serialize>(
    w: &W<'_>,
    def: TableDefinition<'static, (&'static str, u64), &'static [u8]>,
    name: &str,
    v: &T,
    keep: usize,
) -> Result<()> {
    let bytes = enc(v)?;
    w.logs(def, |t| log_append_in(t, name, &bytes, keep))
}

fn log_append_in(
    t: &mut ::redb::Table<'_, (&'static str, u64), &'static [u8]>,
    name: &str,
    bytes: &[u8],
    keep: usize,
) -> Result<()> {
    let next = next_seq(t, name)?;
    t.insert((name, next), bytes).map_err(err)?;
    if next as usize >= keep {
        let cut = next + 1 - keep as u64;
        let old: Vec<u64> = t
            .range((name, 0)..(name, cut))
            .map_err(err)?
            .map(|i| i.map(|(k, _)| k.value().1))
            .collect::<std::result::Result<_, _>>()
            .map_err(err)?;
        for seq in old {
            t.remove((name, seq)).map_err(err)?;
        }
    }
    Ok(())
}

/// Append a probe round, then apply the retention policy: the round that
/// just left the window goes if it says the same as the one stored before
/// it, and the oldest one goes once past the maximum age.
fn rounds_append(w: &W<'_>, name: &str, r: &RoundSummary, ret: &Retention) -> Result<()> {
    w.logs(ROUNDS, |t| rounds_append_in(t, name, r, ret))
}

fn rounds_append_in(
    t: &mut ::redb::Table<'_, (&'static str, u64), &'static [u8]>,
    name: &str,
    r: &RoundSummary,
    ret: &Retention,
) -> Result<()> {
    let next = next_seq(t, name)?;
    t.insert((name, next), enc(r)?.as_slice()).map_err(err)?;
    let Some(left) = ret.leaving(next) else {
        return Ok(());
    };
    let get = |t: &::redb::Table<(&str, u64), &[u8]>, seq: u64| -> Result<Option<RoundSummary>> {
        match t.get((name, seq)).map_err(err)? {
            Some(v) => Ok(Some(dec(v.value())?)),
            None => Ok(None),
        }
    };
    if let Some(x) = get(t, left)? {
        let before = match t.range((name, 0)..(name, left)).map_err(err)?.next_back() {
            Some(item) => Some(dec::<RoundSummary>(item.map_err(err)?.1.value())?),
            None => None,
        };
        if ret.drop_leaving(&x, before.as_ref()) {
            t.remove((name, left)).map_err(err)?;
        }
    }
    let oldest = match t.range((name, 0)..=(name, left)).map_err(err)?.next() {
        Some(item) => {
            let (k, v) = item.map_err(err)?;
            Some((k.value().1, dec::<RoundSummary>(v.value())?))
        }
        None => None,
    };
    if let Some((seq, o)) = oldest {
        if ret.expired(&o, r.at) {
            t.remove((name, seq)).map_err(err)?;
        }
    }
    Ok(())
}

/// Write a delegation record, keeping the state index and counters right.
fn put_record(
    w: &W<'_>,
    name: &str,
    old: Option<&DelegationRecord>,
    rec: &DelegationRecord,
) -> Result<()> {
    let old_state = old.map(|o| o.state);
    if old_state != Some(rec.state) {
        if let Some(s) = old_state {
            idx_set(w, IDX_STATE, s.as_str(), name, false)?;
            count_state(w, s.as_str(), false)?;
        }
        idx_set(w, IDX_STATE, rec.state.as_str(), name, true)?;
        count_state(w, rec.state.as_str(), true)?;
    }
    let was_pending = old.is_some_and(pending_testing);
    let is_pending = pending_testing(rec);
    if was_pending != is_pending {
        idx_set(w, IDX_STATE, PENDING_KEY, name, is_pending)?;
    }
    wput(w, DELEGATION, name, rec)
}

/// One domain more (`up`) or fewer in state `state`'s counter.
fn count_state(w: &W<'_>, state: &str, up: bool) -> Result<()> {
    w.counts.with(w.txn, STATE_COUNTS, |counts| {
        let n = counts
            .get(state)
            .map_err(err)?
            .map(|v| v.value())
            .unwrap_or(0);
        let n = if up { n + 1 } else { n.saturating_sub(1) };
        counts.insert(state, n).map_err(err)?;
        Ok(())
    })
}

/// State-index key of delegated domains whose newly declared NS set is
/// under test (the scheduler's rescan finds them like testing ones).
const PENDING_KEY: &str = "pending";

/// (Re)build the look-alike index from the domains table unless the one
/// stored was built by this skeleton algorithm (in the open transaction:
/// a store from before the index, or from another confusables data set).
fn build_skeleton_index(txn: &WriteTransaction) -> Result<()> {
    let mut meta = txn.open_table(META).map_err(err)?;
    if meta
        .get(KEY_SKELETONS)
        .map_err(err)?
        .is_some_and(|v| v.value() == SKELETON_INDEX_VERSION.as_bytes())
    {
        return Ok(());
    }
    txn.delete_table(IDX_SKELETON).map_err(err)?;
    let mut idx = txn.open_table(IDX_SKELETON).map_err(err)?;
    let domains = txn.open_table(DOMAINS).map_err(err)?;
    for item in domains.iter().map_err(err)? {
        let (k, _) = item.map_err(err)?;
        let name = DomainName::from_trusted(k.value().to_string());
        idx.insert((skeleton_index_key(&name).as_str(), name.as_str()), ())
            .map_err(err)?;
    }
    meta.insert(KEY_SKELETONS, SKELETON_INDEX_VERSION.as_bytes())
        .map_err(err)?;
    Ok(())
}

/// The first name of `t` under look-alike `key` that is not `except`.
fn look_alike_in(
    t: &impl ReadableTable<(&'static str, &'static str), ()>,
    key: &str,
    except: &str,
) -> Result<Option<String>> {
    for item in t.range((key, "")..).map_err(err)?.take(2) {
        let (k, _) = item.map_err(err)?;
        let (k0, name) = k.value();
        if k0 != key {
            break;
        }
        if name != except {
            return Ok(Some(name.to_string()));
        }
    }
    Ok(None)
}

/// The redb index table and key of a domain's index entry other than a
/// host (hosts carry a record with a use count and glue).
fn entry_slot(e: &IndexEntry) -> (PairTable, &str) {
    match e {
        IndexEntry::Registrar(r) => (IDX_REGISTRAR, r),
        IndexEntry::Reseller(r) => (IDX_RESELLER, r),
        IndexEntry::PendingTransfer => (IDX_PENDING_TRANSFER, ""),
        IndexEntry::Contact(c) => (IDX_CONTACT, c),
        IndexEntry::Host(h) => (IDX_HOST_DOMAIN, h),
        IndexEntry::LookAlike(k) => (IDX_SKELETON, k),
    }
}

/// Write a domain record and apply what it changes in the indexes
/// ([`IndexDiff`]); hosts keep a use count and their glue.
fn put_domain(w: &W<'_>, old: Option<&Domain>, new: &Domain) -> Result<()> {
    let name = new.name.as_str();
    let diff = IndexDiff::between(old.map(DomainIndexes::of).as_ref(), &DomainIndexes::of(new));
    for e in &diff.removed {
        let (table, key) = entry_slot(e);
        idx_set(w, table, key, name, false)?;
        let IndexEntry::Host(host) = e else { continue };
        if let Some(mut h) = wget::<HostRecord>(w, HOSTS, host)? {
            h.domains = h.domains.saturating_sub(1);
            if h.domains == 0 || diff.unglued.contains(host) {
                set_host_addresses(w, &mut h, &[])?;
            }
            if h.domains == 0 {
                wremove(w, HOSTS, host)?;
            } else {
                wput(w, HOSTS, host, &h)?;
            }
        }
    }
    for e in &diff.added {
        let (table, key) = entry_slot(e);
        idx_set(w, table, key, name, true)?;
        let IndexEntry::Host(host) = e else { continue };
        let mut h: HostRecord = wget(w, HOSTS, host)?.unwrap_or(HostRecord {
            name: host.to_string(),
            addresses: Vec::new(),
            domains: 0,
        });
        h.domains += 1;
        wput(w, HOSTS, host, &h)?;
    }
    for (host, addrs) in &diff.glue {
        if let Some(mut h) = wget::<HostRecord>(w, HOSTS, host)? {
            if h.addresses != *addrs {
                set_host_addresses(w, &mut h, addrs)?;
                wput(w, HOSTS, host, &h)?;
            }
        }
    }
    wput(w, DOMAINS, name, new)
}

fn set_host_addresses(w: &W<'_>, h: &mut HostRecord, addrs: &[IpAddr]) -> Result<()> {
    if h.addresses == addrs {
        return Ok(());
    }
    for a in &h.addresses {
        idx_set(w, IDX_IP_HOST, &a.to_string(), &h.name, false)?;
    }
    for a in addrs {
        idx_set(w, IDX_IP_HOST, &a.to_string(), &h.name, true)?;
    }
    h.addresses = addrs.to_vec();
    Ok(())
}

/// `old`: the contact stored now.
fn put_contact(w: &W<'_>, old: Option<&Contact>, c: &Contact) -> Result<()> {
    if let Some(old) = old {
        if let Some(f) = public_fn(old) {
            idx_set(w, IDX_FN, &f, &c.handle, false)?;
        }
    }
    if let Some(f) = public_fn(c) {
        idx_set(w, IDX_FN, &f, &c.handle, true)?;
    }
    wput(w, CONTACTS, &c.handle, c)
}

fn put_registrar(w: &W<'_>, r: &Registrar) -> Result<()> {
    if let Some(old) = wget::<Registrar>(w, REGISTRARS, &r.handle)? {
        idx_set(w, IDX_FN, &old.name.to_lowercase(), &r.handle, false)?;
    }
    idx_set(w, IDX_FN, &r.name.to_lowercase(), &r.handle, true)?;
    wput(w, REGISTRARS, &r.handle, r)
}

impl Maintenance for RedbStore {
    /// Give free pages back to the file system (after a bulk import).
    fn compact(&mut self) -> Result<()> {
        self.db()?;
        let slot = self.slot.get_mut().unwrap_or_else(|p| p.into_inner());
        let db = slot
            .as_mut()
            .and_then(|o| Arc::get_mut(&mut o.db))
            .ok_or_else(|| StoreError::Backend("compaction: the store is in use".into()))?;
        db.compact()
            .map(|_| ())
            .map_err(|e| StoreError::Backend(format!("compaction: {e}")))
    }

    /// Reads one snapshot.
    fn verify(&self) -> Result<Vec<String>> {
        let txn = self.read()?;
        let mut problems = Vec::new();
        let domains = txn.open_table(DOMAINS).map_err(err)?;
        let deleg = txn.open_table(DELEGATION).map_err(err)?;
        let regs = txn.open_table(REGISTRARS).map_err(err)?;
        let contacts = txn.open_table(CONTACTS).map_err(err)?;
        let hosts = txn.open_table(HOSTS).map_err(err)?;
        let idx_host = txn.open_table(IDX_HOST_DOMAIN).map_err(err)?;
        let idx_ip = txn.open_table(IDX_IP_HOST).map_err(err)?;
        let idx_state = txn.open_table(IDX_STATE).map_err(err)?;
        let counts = txn.open_table(STATE_COUNTS).map_err(err)?;
        let has = |t: &::redb::ReadOnlyTable<(&str, &str), ()>, a: &str, b: &str| -> Result<bool> {
            Ok(t.get((a, b)).map_err(err)?.is_some())
        };
        let mut host_refs: BTreeMap<String, u64> = BTreeMap::new();
        // The index tables a domain's entries are in, by name.
        let entry_tables = [
            IDX_REGISTRAR,
            IDX_RESELLER,
            IDX_PENDING_TRANSFER,
            IDX_CONTACT,
            IDX_HOST_DOMAIN,
            IDX_SKELETON,
        ]
        .into_iter()
        .map(|t| Ok((t.name().to_string(), txn.open_table(t).map_err(err)?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
        for item in domains.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            let name = k.value();
            let d: Domain = dec(v.value())?;
            let r: Option<DelegationRecord> = match deleg.get(name).map_err(err)? {
                Some(r) => Some(dec(r.value())?),
                None => None,
            };
            let mut probe = |e: &IndexEntry| -> Result<bool> {
                let (def, key) = entry_slot(e);
                match entry_tables.get(def.name()) {
                    Some(t) => has(t, key, name),
                    None => Ok(false),
                }
            };
            verify::domain(
                name,
                &d,
                r.as_ref(),
                Stored::Probe(&mut probe),
                &mut problems,
            )?;
            if regs.get(d.registrar.as_str()).map_err(err)?.is_none() {
                problems.push(format!("{name}: registrar {} missing", d.registrar));
            }
            let ix = DomainIndexes::of(&d);
            for c in &ix.contacts {
                if contacts.get(c.as_str()).map_err(err)?.is_none() {
                    problems.push(format!("{name}: contact {c} missing"));
                }
            }
            for h in ix.hosts.keys() {
                *host_refs.entry(h.clone()).or_default() += 1;
            }
        }
        let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
        for item in deleg.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            let name = k.value();
            let r: DelegationRecord = dec(v.value())?;
            *by_state.entry(r.state.as_str().to_string()).or_default() += 1;
            if domains.get(name).map_err(err)?.is_none() {
                problems.push(format!("{name}: delegation record without a domain"));
            }
            if pending_testing(&r) && !has(&idx_state, PENDING_KEY, name)? {
                problems.push(format!("{name}: not in the pending-change index"));
            }
            if !has(&idx_state, r.state.as_str(), name)? {
                problems.push(format!(
                    "{name}: not in state index for {}",
                    r.state.as_str()
                ));
            }
        }
        for item in idx_state.iter().map_err(err)? {
            let (k, _) = item.map_err(err)?;
            let (state, name) = k.value();
            let ok = match deleg.get(name).map_err(err)? {
                Some(r) => {
                    let r = dec::<DelegationRecord>(r.value())?;
                    if state == PENDING_KEY {
                        pending_testing(&r)
                    } else {
                        r.state.as_str() == state
                    }
                }
                None => false,
            };
            if !ok {
                problems.push(format!("state index entry ({state}, {name}) is stale"));
            }
        }
        for s in DelegationState::ALL {
            let stored = counts
                .get(s.as_str())
                .map_err(err)?
                .map(|v| v.value())
                .unwrap_or(0);
            let real = by_state.get(s.as_str()).copied().unwrap_or(0);
            if stored != real {
                problems.push(format!(
                    "state count {}: stored {stored}, actual {real}",
                    s.as_str()
                ));
            }
        }
        for item in idx_host.iter().map_err(err)? {
            let (k, _) = item.map_err(err)?;
            let (host, name) = k.value();
            let ok = match domains.get(name).map_err(err)? {
                Some(v) => dec::<Domain>(v.value())?
                    .nameservers
                    .iter()
                    .any(|n| n.name.as_str() == host),
                None => false,
            };
            if !ok {
                problems.push(format!("host index entry ({host}, {name}) is stale"));
            }
        }
        let mut host_count = 0usize;
        for item in hosts.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            host_count += 1;
            let h: HostRecord = dec(v.value())?;
            let refs = host_refs.get(k.value()).copied().unwrap_or(0);
            if h.domains != refs {
                problems.push(format!(
                    "host {}: count {} but {refs} domains declare it",
                    h.name, h.domains
                ));
            }
            for a in &h.addresses {
                if !has(&idx_ip, &a.to_string(), &h.name)? {
                    problems.push(format!("host {}: {a} not in address index", h.name));
                }
            }
        }
        if host_count != host_refs.len() {
            problems.push(format!(
                "{host_count} host records for {} declared hosts",
                host_refs.len()
            ));
        }
        Ok(problems)
    }
}

// ---- backup ----------------------------------------------------------------

/// Entries written per transaction of a backup copy: a large store is not
/// copied in one write transaction's worth of dirty pages.
const BACKUP_CHUNK: u64 = 50_000;

/// Page cache of the copy being written (it is written once, never read).
const BACKUP_CACHE_BYTES: usize = 64 << 20;

/// Copy every entry of `def` from the snapshot `src` into `dst`, committing
/// every `chunk` entries; a table the snapshot lacks (created on
/// first write) is skipped. Returns the entries copied.
fn copy_table<K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    src: &ReadTransaction,
    dst: &Database,
    def: TableDefinition<K, V>,
    chunk: u64,
) -> Result<u64> {
    let from = match src.open_table(def) {
        Ok(t) => t,
        Err(::redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(err(e)),
    };
    let mut n = 0u64;
    let mut iter = from.iter().map_err(err)?;
    loop {
        let mut txn = dst.begin_write().map_err(err)?;
        // Durable once, at the end (the copy is not DEST until then).
        txn.set_durability(::redb::Durability::None)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut done = true;
        {
            let mut to = txn.open_table(def).map_err(err)?;
            for item in iter.by_ref() {
                let (k, v) = item.map_err(err)?;
                to.insert(k.value(), v.value()).map_err(err)?;
                n += 1;
                if n.is_multiple_of(chunk) {
                    done = false;
                    break;
                }
            }
        }
        txn.commit().map_err(err)?;
        if done {
            return Ok(n);
        }
    }
}

impl RedbStore {
    /// Write a consistent copy of the store, read in one read transaction
    /// (writers go on meanwhile), into `file`, a new empty file; returns
    /// the entries copied. Every table of the snapshot is copied; one this
    /// code does not know (a newer zonekeeper's) is an error rather than a
    /// silently incomplete copy.
    pub fn backup_into(&self, file: std::fs::File) -> Result<u64> {
        self.backup_chunked(file, BACKUP_CHUNK)
    }

    fn backup_chunked(&self, file: std::fs::File, chunk: u64) -> Result<u64> {
        let src = self.read()?;
        let known: BTreeSet<&str> = BACKUP_TABLES.iter().copied().collect();
        for t in src.list_tables().map_err(err)? {
            if !known.contains(t.name()) {
                return Err(StoreError::Backend(format!(
                    "backup: table {} is unknown to this zonekeeper",
                    t.name()
                )));
            }
        }
        let dst = ::redb::Builder::new()
            .set_cache_size(BACKUP_CACHE_BYTES)
            .create_with_backend(
                ::redb::backends::FileBackend::new(file)
                    .map_err(|e| StoreError::Backend(format!("backup: {e}")))?,
            )
            .map_err(|e| StoreError::Backend(format!("backup: {e}")))?;
        let mut n = 0;
        n += copy_table(&src, &dst, META, chunk)?;
        n += copy_table(&src, &dst, REGISTRARS, chunk)?;
        n += copy_table(&src, &dst, CONTACTS, chunk)?;
        n += copy_table(&src, &dst, DOMAINS, chunk)?;
        n += copy_table(&src, &dst, DELEGATION, chunk)?;
        n += copy_table(&src, &dst, HOSTS, chunk)?;
        n += copy_table(&src, &dst, HISTORY, chunk)?;
        n += copy_table(&src, &dst, ROUNDS, chunk)?;
        n += copy_table(&src, &dst, STATE_COUNTS, chunk)?;
        n += copy_table(&src, &dst, IDX_HOST_DOMAIN, chunk)?;
        n += copy_table(&src, &dst, IDX_IP_HOST, chunk)?;
        n += copy_table(&src, &dst, IDX_REGISTRAR, chunk)?;
        n += copy_table(&src, &dst, IDX_CONTACT, chunk)?;
        n += copy_table(&src, &dst, IDX_STATE, chunk)?;
        n += copy_table(&src, &dst, IDX_FN, chunk)?;
        n += copy_table(&src, &dst, IDX_RESELLER, chunk)?;
        n += copy_table(&src, &dst, IDX_PENDING_TRANSFER, chunk)?;
        n += copy_table(&src, &dst, FEED, chunk)?;
        n += copy_table(&src, &dst, IDX_FEED, chunk)?;
        n += copy_table(&src, &dst, HOST_OBJECTS, chunk)?;
        n += copy_table(&src, &dst, CDS_SIGHTINGS, chunk)?;
        n += copy_table(&src, &dst, IDX_SKELETON, chunk)?;
        n += copy_table(&src, &dst, AUTH_FAILURES, chunk)?;
        n += copy_table(&src, &dst, RESELLERS, chunk)?;
        n += copy_table(&src, &dst, WEBHOOKS, chunk)?;
        n += copy_table(&src, &dst, WEBHOOK_STATE, chunk)?;
        // One durable commit makes everything before it durable.
        dst.begin_write().map_err(err)?.commit().map_err(err)?;
        Ok(n)
    }
}

/// The tables [`RedbStore::backup_into`] copies: all of [`tables`].
const BACKUP_TABLES: [&str; 26] = [
    "meta",
    "registrars",
    "contacts",
    "domains",
    "delegation",
    "hosts",
    "history",
    "rounds",
    "state_counts",
    "idx_host_domain",
    "idx_ip_host",
    "idx_registrar",
    "idx_contact",
    "idx_state",
    "idx_entity_fn",
    "idx_reseller",
    "idx_pending_transfer",
    "feed",
    "idx_feed",
    "host_objects",
    "cds_sightings",
    "idx_skeleton",
    "auth_failures",
    "resellers",
    "webhooks",
    "webhook_state",
];

impl Store for RedbStore {
    /// The copy goes to an unlinked file in the store's own directory
    /// (the same volume, room for a copy is expected there).
    fn backup_file(&self) -> Result<std::fs::File> {
        use std::io::Seek;
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let io = |e: std::io::Error| StoreError::Io(format!("backup in {}: {e}", dir.display()));
        let file = tempfile::tempfile_in(dir).map_err(io)?;
        let mut reader = file.try_clone().map_err(io)?;
        self.backup_into(file)?;
        reader.rewind().map_err(io)?;
        Ok(reader)
    }

    fn registrar(&self, handle: &str) -> Result<Option<Registrar>> {
        self.get(REGISTRARS, handle)
    }

    fn registrars(&self) -> Result<Vec<Registrar>> {
        let txn = self.read()?;
        let t = txn.open_table(REGISTRARS).map_err(err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(err)? {
            let (_, v) = item.map_err(err)?;
            out.push(dec(v.value())?);
        }
        Ok(out)
    }

    fn contact(&self, handle: &str) -> Result<Option<Contact>> {
        self.get(CONTACTS, handle)
    }

    fn reseller(&self, handle: &str) -> Result<Option<crate::model::Reseller>> {
        self.get_if_any(RESELLERS, &crate::model::Reseller::key(handle))
    }

    fn domain(&self, name: &str) -> Result<Option<Domain>> {
        self.get(DOMAINS, name)
    }

    fn delegation(&self, name: &str) -> Result<Option<DelegationRecord>> {
        self.get(DELEGATION, name)
    }

    fn bundle(&self, name: &str) -> Result<Option<DomainBundle>> {
        let txn = self.read()?;
        let Some(domain): Option<Domain> = get_in(&txn, DOMAINS, name)? else {
            return Ok(None);
        };
        let delegation = get_in(&txn, DELEGATION, name)?
            .unwrap_or_else(|| DelegationRecord::undelegated(domain.updated));
        let contact = |h: Option<&String>| -> Result<Option<Contact>> {
            match h {
                Some(h) => get_in(&txn, CONTACTS, h),
                None => Ok(None),
            }
        };
        Ok(Some(DomainBundle {
            registrar: get_in(&txn, REGISTRARS, &domain.registrar)?,
            registrant: contact(Some(&domain.registrant))?,
            admin: contact(domain.admin.as_ref())?,
            tech: contact(domain.tech.as_ref())?,
            delegation,
            domain,
        }))
    }

    fn host(&self, name: &str) -> Result<Option<HostRecord>> {
        self.get(HOSTS, name)
    }

    fn history(&self, name: &str, limit: usize) -> Result<Vec<HistoryEvent>> {
        self.log_tail(HISTORY, name, limit)
    }

    fn rounds(&self, name: &str, limit: usize) -> Result<Vec<RoundSummary>> {
        self.log_tail(ROUNDS, name, limit)
    }

    fn last_update(&self) -> Result<Option<Timestamp>> {
        self.get(META, KEY_UPDATED)
    }

    fn stamps(&self) -> Option<&Stamps> {
        Some(&self.stamps)
    }

    fn health(&self) -> Health {
        self.shared.health()
    }

    fn probe_write(&self) -> Health {
        if self.shared.health() == Health::Ok {
            return Health::Ok;
        }
        let probe = || -> Result<()> {
            let txn = self.write()?;
            txn.open_table(META)
                .map_err(err)?
                .insert(KEY_PROBE, [1u8].as_slice())
                .map_err(err)?;
            self.commit(txn, Changes::default())
        };
        if let Err(e) = probe() {
            tracing::debug!("store write probe: {e}");
        }
        self.shared.health()
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn stats(&self) -> Result<StoreStats> {
        let txn = self.read()?;
        let len = |def: TableDefinition<&str, &[u8]>| -> Result<u64> {
            txn.open_table(def).map_err(err)?.len().map_err(err)
        };
        let mut by_state = BTreeMap::new();
        let counts = txn.open_table(STATE_COUNTS).map_err(err)?;
        for s in DelegationState::ALL {
            let n = counts
                .get(s.as_str())
                .map_err(err)?
                .map(|v| v.value())
                .unwrap_or(0);
            by_state.insert(s.as_str().to_string(), n);
        }
        Ok(StoreStats {
            registrars: len(REGISTRARS)?,
            contacts: len(CONTACTS)?,
            domains: len(DOMAINS)?,
            hosts: len(HOSTS)?,
            by_state,
            file_bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
        })
    }

    fn domains_by_host(&self, host: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.index_page(IDX_HOST_DOMAIN, host, after, limit)
    }

    fn hosts_by_ip(&self, ip: IpAddr, limit: usize) -> Result<Vec<String>> {
        Ok(self
            .index_page(IDX_IP_HOST, &ip.to_string(), None, limit)?
            .0)
    }

    fn domains_by_registrar(
        &self,
        handle: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        self.index_page(IDX_REGISTRAR, handle, after, limit)
    }

    fn domains_by_contact(&self, handle: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.index_page(IDX_CONTACT, handle, after, limit)
    }

    fn domains_by_reseller(
        &self,
        reseller: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        self.index_page_opt(IDX_RESELLER, reseller, after, limit)
    }

    fn pending_transfers(&self, after: Option<&str>, limit: usize) -> Result<Page> {
        self.index_page_opt(IDX_PENDING_TRANSFER, "", after, limit)
    }

    fn domains_by_state(
        &self,
        state: DelegationState,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        self.index_page(IDX_STATE, state.as_str(), after, limit)
    }

    fn domains_with_pending_change(&self, after: Option<&str>, limit: usize) -> Result<Page> {
        self.index_page(IDX_STATE, PENDING_KEY, after, limit)
    }

    fn search_domains(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.prefix_page(DOMAINS, prefix, after, limit)
    }

    fn look_alike(&self, key: &str, except: &str) -> Result<Option<String>> {
        let txn = self.read()?;
        let t = txn.open_table(IDX_SKELETON).map_err(err)?;
        look_alike_in(&t, key, except)
    }

    /// One snapshot and two open tables for the whole list.
    fn screen_names(&self, names: &[(&str, &str)]) -> Result<Vec<(bool, Option<String>)>> {
        let txn = self.read()?;
        let domains = txn.open_table(DOMAINS).map_err(err)?;
        let idx = txn.open_table(IDX_SKELETON).map_err(err)?;
        names
            .iter()
            .map(|(n, k)| {
                Ok((
                    domains.get(*n).map_err(err)?.is_some(),
                    look_alike_in(&idx, k, n)?,
                ))
            })
            .collect()
    }

    fn search_hosts(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.prefix_page(HOSTS, prefix, after, limit)
    }

    fn search_handles(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let mut out = self.prefix_page(REGISTRARS, prefix, None, limit)?.0;
        out.extend(self.prefix_page(CONTACTS, prefix, None, limit)?.0);
        out.sort();
        out.truncate(limit);
        Ok(out)
    }

    fn search_entity_names(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let txn = self.read()?;
        let t = txn.open_table(IDX_FN).map_err(err)?;
        let mut out = Vec::new();
        for item in t.range((prefix, "")..).map_err(err)? {
            let (k, _) = item.map_err(err)?;
            let (name, handle) = k.value();
            if !name.starts_with(prefix) || out.len() == limit {
                break;
            }
            out.push(handle.to_string());
        }
        Ok(out)
    }

    fn for_each_delegation(
        &self,
        f: &mut dyn FnMut(&str, &DelegationRecord) -> bool,
    ) -> Result<()> {
        let txn = self.read()?;
        let t = txn.open_table(DELEGATION).map_err(err)?;
        for item in t.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            let rec: DelegationRecord = dec(v.value())?;
            if !f(k.value(), &rec) {
                break;
            }
        }
        Ok(())
    }

    fn feed(&self, registrar: &str, after: u64, limit: usize) -> Result<Vec<FeedEvent>> {
        let txn = self.read()?;
        let Some(idx) = table_if_any(&txn, IDX_FEED)? else {
            return Ok(Vec::new());
        };
        let feed = txn.open_table(FEED).map_err(err)?;
        let mut out = Vec::new();
        let start = after.saturating_add(1);
        for item in idx
            .range((registrar, start)..=(registrar, u64::MAX))
            .map_err(err)?
        {
            if out.len() == limit {
                break;
            }
            let (k, _) = item.map_err(err)?;
            let seq = k.value().1;
            if let Some(v) = feed.get(seq).map_err(err)? {
                out.push(dec(v.value())?);
            }
        }
        Ok(out)
    }

    fn host_object(&self, name: &str) -> Result<Option<HostObject>> {
        self.get_if_any(HOST_OBJECTS, name)
    }

    fn host_objects_under(&self, domain: &str) -> Result<Vec<HostObject>> {
        let txn = self.read()?;
        let Some(t) = table_if_any(&txn, HOST_OBJECTS)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in t.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            if crate::names::is_at_or_below(k.value(), domain) {
                out.push(dec(v.value())?);
            }
        }
        Ok(out)
    }

    fn cds_sighting(&self, name: &str) -> Result<Option<CdsSighting>> {
        self.get_if_any(CDS_SIGHTINGS, name)
    }

    fn cds_sightings(&self) -> Result<Vec<(String, CdsSighting)>> {
        let txn = self.read()?;
        let Some(t) = table_if_any(&txn, CDS_SIGHTINGS)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in t.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            out.push((k.value().to_string(), dec(v.value())?));
        }
        Ok(out)
    }

    fn put_cds_sighting(&self, name: &str, sighting: Option<&CdsSighting>) -> Result<()> {
        let txn = self.write()?;
        {
            let mut t = txn.open_table(CDS_SIGHTINGS).map_err(err)?;
            match sighting {
                Some(s) => {
                    t.insert(name, enc(s)?.as_slice()).map_err(err)?;
                }
                None => {
                    t.remove(name).map_err(err)?;
                }
            }
        }
        // Scanner state: nothing public changed.
        self.commit(txn, Changes::default())
    }

    fn webhooks(&self) -> Result<Vec<(String, Webhook)>> {
        let txn = self.read()?;
        let Some(t) = table_if_any(&txn, WEBHOOKS)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in t.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            out.push((k.value().to_string(), json_dec(v.value())?));
        }
        Ok(out)
    }

    fn webhook_state(&self, registrar: &str) -> Result<Option<WebhookState>> {
        let txn = self.read()?;
        let Some(t) = table_if_any(&txn, WEBHOOK_STATE)? else {
            return Ok(None);
        };
        let found = t.get(registrar).map_err(err)?;
        found.map(|v| json_dec(v.value())).transpose()
    }

    fn put_webhook_state(&self, registrar: &str, state: &WebhookState) -> Result<()> {
        let txn = self.write()?;
        {
            let mut t = txn.open_table(WEBHOOK_STATE).map_err(err)?;
            t.insert(registrar, json_enc(state)?.as_slice())
                .map_err(err)?;
        }
        // Worker state: nothing public changed.
        self.commit(txn, Changes::default())
    }

    fn begin(&self) -> Result<Box<dyn Txn + '_>> {
        Ok(Box::new(RedbTxn {
            cell: TxnCell::new(self.write()?, |txn| W::new(txn)),
            stamps: &self.stamps,
            shared: &self.shared,
            changes: Changes::default(),
        }))
    }

    fn put_delegation_when(
        &self,
        name: &str,
        accept: &dyn Fn(Option<&DelegationRecord>) -> bool,
        record: &DelegationRecord,
        event: Option<&HistoryEvent>,
        round: Option<&RoundSummary>,
    ) -> Result<bool> {
        self.write_delegation_when(name, accept, record, event, round)
    }

    fn put_delegations(&self, writes: &[DelegationWrite]) -> Result<Vec<bool>> {
        self.write_delegations(writes)
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

impl RedbTxn<'_> {
    fn w<R>(&self, f: impl FnOnce(&W<'_>) -> Result<R>) -> Result<R> {
        self.cell.with_dependent(|_, w| f(w))
    }
}

impl Txn for RedbTxn<'_> {
    fn registrar(&self, handle: &str) -> Result<Option<Registrar>> {
        self.w(|w| wget(w, REGISTRARS, handle))
    }
    fn contact(&self, handle: &str) -> Result<Option<Contact>> {
        self.w(|w| wget(w, CONTACTS, handle))
    }
    fn contact_exists(&self, handle: &str) -> Result<bool> {
        self.w(|w| wexists(w, CONTACTS, handle))
    }
    fn domain(&self, name: &str) -> Result<Option<Domain>> {
        self.w(|w| wget(w, DOMAINS, name))
    }
    fn delegation(&self, name: &str) -> Result<Option<DelegationRecord>> {
        self.w(|w| wget(w, DELEGATION, name))
    }
    fn look_alike(&self, key: &str, except: &str) -> Result<Option<String>> {
        self.w(|w| w.pairs(IDX_SKELETON, |t| look_alike_in(t, key, except)))
    }
    fn put_registrar(&mut self, r: &Registrar) -> Result<()> {
        let old: Option<Registrar> = self.w(|w| wget(w, REGISTRARS, &r.handle))?;
        if old.as_ref().map(crate::public::registrar) != Some(crate::public::registrar(r)) {
            self.changes.key(Key::Registrar(&r.handle));
        }
        self.w(|w| put_registrar(w, r))
    }
    fn put_contact(&mut self, c: &Contact) -> Result<()> {
        let old: Option<Contact> = self.w(|w| wget(w, CONTACTS, &c.handle))?;
        if old.as_ref().map(crate::public::contact) != Some(crate::public::contact(c)) {
            self.changes.key(Key::Contact(&c.handle));
        }
        self.w(|w| put_contact(w, old.as_ref(), c))
    }
    fn delete_contact(&mut self, handle: &str) -> Result<()> {
        self.changes.key(Key::Contact(handle));
        self.w(|w| {
            if let Some(old) = wget::<Contact>(w, CONTACTS, handle)? {
                if let Some(f) = public_fn(&old) {
                    idx_set(w, IDX_FN, &f, handle, false)?;
                }
                wremove(w, CONTACTS, handle)?;
            }
            Ok(())
        })
    }
    fn host_object(&self, name: &str) -> Result<Option<HostObject>> {
        self.w(|w| wget(w, HOST_OBJECTS, name))
    }
    fn put_host_object(&mut self, h: &HostObject) -> Result<()> {
        self.w(|w| wput(w, HOST_OBJECTS, h.name.as_str(), h))
    }
    fn delete_host_object(&mut self, name: &str) -> Result<()> {
        self.w(|w| wremove(w, HOST_OBJECTS, name))
    }
    fn auth_failures(&self, name: &str) -> Result<Option<crate::model::AuthFailures>> {
        self.w(|w| wget(w, AUTH_FAILURES, name))
    }
    fn reseller(&self, handle: &str) -> Result<Option<crate::model::Reseller>> {
        self.w(|w| wget(w, RESELLERS, &crate::model::Reseller::key(handle)))
    }
    fn put_reseller(&mut self, r: &crate::model::Reseller) -> Result<()> {
        self.w(|w| wput(w, RESELLERS, &crate::model::Reseller::key(&r.handle), r))
    }
    fn put_auth_failures(
        &mut self,
        name: &str,
        f: Option<&crate::model::AuthFailures>,
    ) -> Result<()> {
        match f {
            Some(f) => self.w(|w| wput(w, AUTH_FAILURES, name, f)),
            None => self.w(|w| wremove(w, AUTH_FAILURES, name)),
        }
    }
    fn put_domain(&mut self, d: &Domain) -> Result<()> {
        let old: Option<Domain> = self.w(|w| wget(w, DOMAINS, d.name.as_str()))?;
        if old.as_ref() == Some(d) {
            return Ok(());
        }
        self.changes.key(Key::Domain(d.name.as_str()));
        self.changes.key(Key::AnyDomain);
        // The host records of its nameservers (use counts, glue) may change.
        if old.as_ref().map(|o| &o.nameservers) != Some(&d.nameservers) {
            let before = old.iter().flat_map(|o| o.nameservers.iter());
            for n in before.chain(d.nameservers.iter()) {
                self.changes.key(Key::Host(n.name.as_str()));
            }
        }
        self.w(|w| put_domain(w, old.as_ref(), d))
    }
    fn put_delegation(&mut self, name: &str, rec: &DelegationRecord) -> Result<()> {
        let old: Option<DelegationRecord> = self.w(|w| wget(w, DELEGATION, name))?;
        if old.as_ref().map(crate::public::delegation_facts)
            != Some(crate::public::delegation_facts(rec))
        {
            self.changes.key(Key::Domain(name));
        }
        self.w(|w| put_record(w, name, old.as_ref(), rec))
    }
    fn append_event(
        &mut self,
        name: &str,
        ev: &HistoryEvent,
        actor: &str,
        registrars: &[&str],
    ) -> Result<()> {
        self.w(|w| {
            log_append(w, HISTORY, name, ev, HISTORY_KEPT)?;
            feed_append(w, name, ev, actor, registrars)
        })
    }
    fn put_webhook(&mut self, registrar: &str, hook: Option<&Webhook>) -> Result<()> {
        self.w(|w| {
            let Some(hook) = hook else {
                w.records(WEBHOOKS, |t| t.remove(registrar).map(drop).map_err(err))?;
                return Ok(());
            };
            let bytes = json_enc(hook)?;
            w.records(WEBHOOKS, |t| {
                t.insert(registrar, bytes.as_slice()).map(drop).map_err(err)
            })?;
            let known = w.records(WEBHOOK_STATE, |t| {
                Ok(t.get(registrar).map_err(err)?.is_some())
            })?;
            if !known {
                let head = w.feed.with(w.txn, FEED, |feed| {
                    Ok(feed.last().map_err(err)?.map_or(0, |(k, _)| k.value()))
                })?;
                let state = json_enc(&WebhookState {
                    delivered: head,
                    ..WebhookState::default()
                })?;
                w.records(WEBHOOK_STATE, |t| {
                    t.insert(registrar, state.as_slice()).map(drop).map_err(err)
                })?;
            }
            Ok(())
        })
    }
    fn commit(self: Box<Self>, now: Timestamp) -> Result<()> {
        if let Err(e) = self.w(|w| {
            w.flush()?;
            touch(w, now)
        }) {
            return committed(self.shared, Err(e));
        }
        let mut changes = self.changes;
        changes.updated(now);
        // Closes the tables (their roots go back to the table tree) first.
        let txn = self.cell.into_owner();
        committed(
            self.shared,
            self.stamps.commit(changes, || txn.commit().map_err(err)),
        )
    }
}

/// A commit's outcome: one that succeeded proves the store writable again
/// (readiness comes back); a failed one says why.
fn committed(shared: &Shared, r: Result<()>) -> Result<()> {
    match r {
        Ok(()) => {
            shared.committed();
            Ok(())
        }
        Err(StoreError::Unavailable(m)) if shared.failed_full() => Err(StoreError::Full(m)),
        Err(e) => Err(e),
    }
}

/// One write of a batch inside `w`: skipped (false) when the stored
/// record fails its condition, else the record, its event (history, the
/// registrar's feed) and its round, as `write_delegation_when` does alone.
fn apply_delegation_write(
    w: &W<'_>,
    x: &DelegationWrite,
    retention: &Retention,
    changes: &mut Changes,
    latest: &mut Option<Timestamp>,
) -> Result<bool> {
    let name = x.name.as_str();
    let old: Option<DelegationRecord> = wget(w, DELEGATION, name)?;
    if !x.when.accepts(old.as_ref()) {
        return Ok(false);
    }
    put_record(w, name, old.as_ref(), &x.record)?;
    if old.as_ref().map(crate::public::delegation_facts)
        != Some(crate::public::delegation_facts(&x.record))
    {
        changes.key(Key::Domain(name));
    }
    if let Some(ev) = &x.event {
        log_append(w, HISTORY, name, ev, HISTORY_KEPT)?;
        if let Some(d) = wget::<Domain>(w, DOMAINS, name)? {
            feed_append(w, name, ev, "scheduler", &[d.registrar.as_str()])?;
        }
        *latest = (*latest).max(Some(ev.at));
    }
    if let Some(r) = &x.round {
        rounds_append(w, name, r, retention)?;
    }
    Ok(true)
}

/// Append one event to the registry-wide feed, indexed under each registrar.
fn feed_append(
    w: &W<'_>,
    name: &str,
    ev: &HistoryEvent,
    actor: &str,
    registrars: &[&str],
) -> Result<()> {
    w.feed.with(w.txn, FEED, |feed| {
        w.feed_idx.with(w.txn, IDX_FEED, |idx| {
            let seq = match feed.last().map_err(err)? {
                Some((k, _)) => k.value() + 1,
                None => 1,
            };
            let item = FeedEvent::of(seq, name, ev, actor, registrars);
            feed.insert(seq, enc(&item)?.as_slice()).map_err(err)?;
            for r in registrars {
                idx.insert((*r, seq), ()).map_err(err)?;
            }
            // Bounded: the oldest event goes when the feed is full (one per
            // append, so the cost stays constant).
            let oldest = feed.first().map_err(err)?.map(|(k, _)| k.value());
            if let Some(first) = oldest {
                if seq - first >= FEED_KEPT {
                    if let Some(v) = feed.remove(first).map_err(err)? {
                        let old: FeedEvent = dec(v.value())?;
                        for r in &old.registrars {
                            idx.remove((r.as_str(), first)).map_err(err)?;
                        }
                    }
                }
            }
            Ok(())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Registration;

    /// The backup copies every table the schema defines, and a copy taken
    /// in chunks smaller than a table holds what the store holds.
    #[test]
    fn backup_copies_every_table_in_chunks() {
        let src = include_str!("redb_schema.rs");
        let mut defined: Vec<&str> = src
            .split("TableDefinition::new(\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        defined.sort_unstable();
        let mut listed = BACKUP_TABLES.to_vec();
        listed.sort_unstable();
        assert_eq!(defined, listed);

        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let mut txn = store.begin().unwrap();
        for i in 0..7 {
            txn.put_domain(&domain(&format!("d{i}.ru"), "R1")).unwrap();
        }
        txn.commit(domain("x.ru", "R1").updated).unwrap();
        let copy = dir.path().join("copy.redb");
        let n = store
            .backup_chunked(std::fs::File::create_new(&copy).unwrap(), 3)
            .unwrap();
        assert!(n > 7, "{n}");
        let back = RedbStore::open(&copy).unwrap();
        // Bare domains (no contacts): the same findings as the original.
        assert_eq!(back.verify().unwrap(), store.verify().unwrap());
        assert_eq!(back.stats().unwrap().domains, 7);
        assert_eq!(
            back.domains_by_registrar("R1", None, 10).unwrap().0.len(),
            7
        );
    }

    fn domain(name: &str, registrar: &str) -> Domain {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        Domain {
            name: DomainName::from_trusted(name.into()),
            registrar: registrar.into(),
            registrant: "C".into(),
            admin: Some("D".into()),
            tech: None,
            created: t,
            paid_till: t + chrono::Duration::days(365),
            nameservers: vec![],
            auth_info: None,
            hold: None,
            verification_requested: None,
            transferred: None,
            updated: t,
            registration: Registration::default(),
            ds: Vec::new(),
        }
    }

    #[test]
    fn reopen_backoff_doubles_to_its_cap_and_resets_on_success() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        assert!(b.due(t0));
        let mut at = t0;
        let mut waits = Vec::new();
        for _ in 0..9 {
            b.failed(at);
            let next = b.next.unwrap();
            waits.push((next - at).as_millis());
            assert!(!b.due(next - Duration::from_millis(1)));
            assert!(b.due(next));
            at = next;
        }
        assert_eq!(
            waits,
            vec![100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]
        );
        b.succeeded();
        assert!(b.due(at));
        b.failed(at);
        assert_eq!((b.next.unwrap() - at).as_millis(), 100);
    }

    /// A disk that fills under a write: the write is refused as
    /// `storage-full` and leaves nothing behind, the store reopens by
    /// itself, reads answer, and writes succeed once space is back.
    #[test]
    fn a_write_on_a_full_disk_is_refused_whole_and_the_store_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let mut store = RedbStore::open(&path).unwrap();
        store.set_reopen_backoff(Duration::ZERO, Duration::ZERO);
        let before = domain("a.ru", "R1");
        let now = before.updated;
        let mut txn = store.begin().unwrap();
        txn.put_domain(&before).unwrap();
        txn.commit(now).unwrap();
        assert_eq!(store.health(), Health::Ok);

        store.inject_write_error(libc::ENOSPC);
        let mut txn = store.begin().unwrap();
        let mut refused = None;
        for n in ["b.ru", "c.ru", "d.ru"] {
            if let Err(e) = txn.put_domain(&domain(n, "R2")) {
                refused = Some(e);
                break;
            }
        }
        let e = match refused {
            Some(e) => {
                drop(txn);
                e
            }
            None => txn.commit(now).unwrap_err(),
        };
        assert!(matches!(e, StoreError::Full(_)), "{e:?}");
        assert_eq!(e.storage(), Some(Health::Full));
        assert_eq!(store.health(), Health::Full);
        // Later writes are refused with the same reason, not PreviousIo.
        for _ in 0..3 {
            let r = store
                .begin()
                .and_then(|mut t| {
                    t.put_domain(&domain("e.ru", "R2"))?;
                    t.commit(now)
                })
                .unwrap_err();
            assert!(matches!(r, StoreError::Full(_)), "{r:?}");
        }
        assert_eq!(store.probe_write(), Health::Full);

        // Space is back: the next write succeeds without a restart.
        store.inject_write_error(0);
        assert_eq!(store.domain("a.ru").unwrap(), Some(before.clone()));
        let mut txn = store.begin().unwrap();
        txn.put_domain(&domain("f.ru", "R3")).unwrap();
        txn.commit(now).unwrap();
        assert_eq!(store.health(), Health::Ok);
        for n in ["b.ru", "c.ru", "d.ru", "e.ru"] {
            assert_eq!(store.domain(n).unwrap(), None, "{n} half-written");
        }
        assert!(store.domain("f.ru").unwrap().is_some());
        // The indexes agree with the records (the bare test domains name
        // no stored registrar, contacts or delegation: those are all).
        let bare = |p: &Vec<String>| {
            p.iter()
                .all(|p| p.ends_with(" missing") || p.ends_with("no delegation record"))
        };
        assert!(bare(&store.verify().unwrap()));
        drop(store);
        // And after a restart.
        let store = RedbStore::open(&path).unwrap();
        assert!(bare(&store.verify().unwrap()));
        assert_eq!(store.stats().unwrap().domains, 2);
    }

    /// A failed open is retried no sooner than the backoff allows; the
    /// error meanwhile says the store is unavailable.
    #[test]
    fn reopen_waits_out_its_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        store.set_reopen_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
        store.inject_write_error(libc::EIO);
        assert!(matches!(
            store.put_cds_sighting("a.ru", None),
            Err(StoreError::Unavailable(_))
        ));
        store.inject_write_error(0);
        // The first reopen is due at once; say it fails (the file is
        // still held): simulate by holding the backoff in the future.
        store.backoff.lock().unwrap().failed(Instant::now());
        *store.slot.write().unwrap() = None;
        assert!(matches!(
            store.domain("a.ru"),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(store.health(), Health::Unavailable);
        store.backoff.lock().unwrap().next = Some(Instant::now());
        assert_eq!(store.domain("a.ru").unwrap(), None);
        assert_eq!(store.probe_write(), Health::Ok);
    }

    /// Index entries held back by a write transaction are seen by its own
    /// reads, removed in order, written at commit and dropped with an abort.
    #[test]
    fn held_back_index_entries_read_write_and_abort_like_direct_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let a = domain("a.ru", "R1");
        let key = skeleton_index_key(&a.name);
        let now = a.updated;
        let mut txn = store.begin().unwrap();
        txn.put_domain(&domain("b.ru", "R1")).unwrap();
        txn.put_domain(&a).unwrap();
        // Its own look-alike index, before commit.
        assert_eq!(
            txn.look_alike(&key, "x.ru").unwrap().as_deref(),
            Some("a.ru")
        );
        // Moved to another registrar in the same transaction.
        txn.put_domain(&domain("a.ru", "R2")).unwrap();
        txn.commit(now).unwrap();
        assert_eq!(
            store.domains_by_registrar("R1", None, 10).unwrap().0,
            vec!["b.ru".to_string()]
        );
        assert_eq!(
            store.domains_by_registrar("R2", None, 10).unwrap().0,
            vec!["a.ru".to_string()]
        );
        assert_eq!(
            store.domains_by_contact("D", None, 10).unwrap().0,
            vec!["a.ru".to_string(), "b.ru".to_string()]
        );
        assert_eq!(
            store.look_alike(&key, "x.ru").unwrap().as_deref(),
            Some("a.ru")
        );
        // Dropped without commit: none of its entries stay.
        let mut txn = store.begin().unwrap();
        for n in ["c.ru", "d.ru", "e.ru"] {
            txn.put_domain(&domain(n, "R3")).unwrap();
        }
        drop(txn);
        assert!(store
            .domains_by_registrar("R3", None, 10)
            .unwrap()
            .0
            .is_empty());
        assert_eq!(store.domains_by_contact("D", None, 10).unwrap().0.len(), 2);
    }
}
