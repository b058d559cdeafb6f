//! One write transaction's tables ([`W`], each opened once) and the
//! writes inside it: records, index entries, logs under retention,
//! delegation records with their state index, a batch's conditional
//! delegation writes, the change feed's append, and a domain's
//! [`IndexDiff`] applied to the index tables and host records. Imports
//! nothing from `redb`'s `mod.rs`, which builds on it.

use std::cell::RefCell;
use std::net::IpAddr;

use ::redb::{ReadTransaction, ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use serde::{de::DeserializeOwned, Serialize};

use crate::model::{
    Contact, DelegationRecord, Domain, HistoryEvent, Registrar, RoundSummary, Timestamp,
};
use crate::names::{skeleton_index_key, DomainName, SKELETON_INDEX_VERSION};
use crate::store::codec::{dec, enc, FEED_KEPT, HISTORY_KEPT};
use crate::store::contract::*;
use crate::store::indexes::{pending_testing, public_fn, DomainIndexes, IndexDiff, IndexEntry};
use crate::store::redb_schema::err;
use crate::store::redb_schema::tables::*;
use crate::store::retention::Retention;
use crate::store::stamps::{Changes, Key};

pub(super) const KEY_UPDATED: &str = "last_update";
/// The [`crate::names::SKELETON_INDEX_VERSION`] that built `IDX_SKELETON`.
pub(super) const KEY_SKELETONS: &str = "skeleton_index";

/// Where table `def`'s entry is in `v`, added with `make` when missing.
pub(super) fn slot_of<K: ::redb::Key + 'static, V: ::redb::Value + 'static, T>(
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

pub(super) fn busy<K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    def: TableDefinition<'static, K, V>,
) -> StoreError {
    StoreError::Backend(format!("table {} used twice at once", def.name()))
}

/// A table added after a store was created: `None` until the store's
/// first registry write creates it.
pub(super) fn table_if_any<K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<Option<::redb::ReadOnlyTable<K, V>>> {
    match txn.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(::redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

pub(super) fn wget<T: DeserializeOwned>(
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
pub(super) fn wexists(
    w: &W<'_>,
    def: TableDefinition<'static, &'static str, &'static [u8]>,
    key: &str,
) -> Result<bool> {
    w.records(def, |t| Ok(t.get(key).map_err(err)?.is_some()))
}

pub(super) fn wput<T: Serialize>(
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

pub(super) fn wremove(
    w: &W<'_>,
    def: TableDefinition<'static, &'static str, &'static [u8]>,
    key: &str,
) -> Result<()> {
    w.records(def, |t| {
        t.remove(key).map_err(err)?;
        Ok(())
    })
}

pub(super) fn idx_set(
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

pub(super) fn touch(w: &W<'_>, now: Timestamp) -> Result<()> {
    wput(w, META, KEY_UPDATED, &now)
}

/// The sequence number after the last entry of `name` in a `(name, seq)` log.
pub(super) fn next_seq(
    t: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    name: &str,
) -> Result<u64> {
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
pub(super) fn log_append<T: Serialize>(
    w: &W<'_>,
    def: TableDefinition<'static, (&'static str, u64), &'static [u8]>,
    name: &str,
    v: &T,
    keep: usize,
) -> Result<()> {
    let bytes = enc(v)?;
    w.logs(def, |t| log_append_in(t, name, &bytes, keep))
}

pub(super) fn log_append_in(
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
pub(super) fn rounds_append(
    w: &W<'_>,
    name: &str,
    r: &RoundSummary,
    ret: &Retention,
) -> Result<()> {
    w.logs(ROUNDS, |t| rounds_append_in(t, name, r, ret))
}

pub(super) fn rounds_append_in(
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
pub(super) fn put_record(
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
pub(super) fn count_state(w: &W<'_>, state: &str, up: bool) -> Result<()> {
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
pub(super) const PENDING_KEY: &str = "pending";

/// (Re)build the look-alike index from the domains table unless the one
/// stored was built by this skeleton algorithm (in the open transaction:
/// a store from before the index, or from another confusables data set).
pub(super) fn build_skeleton_index(txn: &WriteTransaction) -> Result<()> {
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
pub(super) fn look_alike_in(
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
pub(super) fn entry_slot(e: &IndexEntry) -> (PairTable, &str) {
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
pub(super) fn put_domain(w: &W<'_>, old: Option<&Domain>, new: &Domain) -> Result<()> {
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

pub(super) fn set_host_addresses(w: &W<'_>, h: &mut HostRecord, addrs: &[IpAddr]) -> Result<()> {
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
pub(super) fn put_contact(w: &W<'_>, old: Option<&Contact>, c: &Contact) -> Result<()> {
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

pub(super) fn put_registrar(w: &W<'_>, r: &Registrar) -> Result<()> {
    if let Some(old) = wget::<Registrar>(w, REGISTRARS, &r.handle)? {
        idx_set(w, IDX_FN, &old.name.to_lowercase(), &r.handle, false)?;
    }
    idx_set(w, IDX_FN, &r.name.to_lowercase(), &r.handle, true)?;
    wput(w, REGISTRARS, &r.handle, r)
}

/// Tables of one key and value type, open in a write transaction.
pub(super) struct Open<'t, K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    #[allow(clippy::type_complexity)]
    RefCell<Vec<(TableDefinition<'static, K, V>, ::redb::Table<'t, K, V>)>>,
);

impl<'t, K: ::redb::Key + 'static, V: ::redb::Value + 'static> Open<'t, K, V> {
    fn new() -> Self {
        Self(RefCell::new(Vec::new()))
    }

    /// Run `f` on table `def`, opened on first use.
    pub(super) fn with<R>(
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

/// One write transaction's tables, each opened on first use and kept open
/// until the transaction ends: opening a redb table reads the table tree
/// and closing it writes its root back, which a bulk import would pay on
/// every one of its ~30 writes per domain.
pub(super) struct W<'t> {
    pub(super) txn: &'t WriteTransaction,
    pub(super) records: Open<'t, &'static str, &'static [u8]>,
    pub(super) pairs: Open<'t, (&'static str, &'static str), ()>,
    pub(super) logs: Open<'t, (&'static str, u64), &'static [u8]>,
    pub(super) counts: Open<'t, &'static str, u64>,
    pub(super) feed: Open<'t, u64, &'static [u8]>,
    pub(super) feed_idx: Open<'t, (&'static str, u64), ()>,
    /// Index entries added but not yet inserted, by table: inserted in key
    /// order when the table is next used, when there are [`PENDING_MAX`],
    /// and before commit. A bulk import adds them in random key order
    /// (look-alike keys, contacts, hosts), and a sorted run touches each
    /// page once instead of once per entry.
    pub(super) pending: RefCell<Vec<(PairTable, Vec<Entry>)>>,
    pub(super) pending_len: std::cell::Cell<usize>,
}

type PairTable = TableDefinition<'static, (&'static str, &'static str), ()>;
/// A held-back index entry: (key, item).
type Entry = (Box<str>, Box<str>);

/// Most index entries a write transaction holds back ([`W::pending`]);
/// tiny under test, so every test's writes go through the flush.
const PENDING_MAX: usize = if cfg!(test) { 3 } else { 1 << 19 };

impl<'t> W<'t> {
    pub(super) fn new(txn: &'t WriteTransaction) -> Self {
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
    pub(super) fn idx_add(&self, def: PairTable, key: &str, item: &str) -> Result<()> {
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
    pub(super) fn flush_pending(&self, def: Option<PairTable>) -> Result<()> {
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
    pub(super) fn flush(&self) -> Result<()> {
        self.flush_pending(None)
    }

    pub(super) fn records<R>(
        &self,
        def: TableDefinition<'static, &'static str, &'static [u8]>,
        f: impl FnOnce(&mut ::redb::Table<'t, &'static str, &'static [u8]>) -> Result<R>,
    ) -> Result<R> {
        self.records.with(self.txn, def, f)
    }

    /// Index `def` with every entry added to it in place.
    pub(super) fn pairs<R>(
        &self,
        def: PairTable,
        f: impl FnOnce(&mut ::redb::Table<'t, (&'static str, &'static str), ()>) -> Result<R>,
    ) -> Result<R> {
        self.flush_pending(Some(def))?;
        self.pairs.with(self.txn, def, f)
    }

    pub(super) fn logs<R>(
        &self,
        def: TableDefinition<'static, (&'static str, u64), &'static [u8]>,
        f: impl FnOnce(&mut ::redb::Table<'t, (&'static str, u64), &'static [u8]>) -> Result<R>,
    ) -> Result<R> {
        self.logs.with(self.txn, def, f)
    }
}

/// One write of a batch inside `w`: skipped (false) when the stored
/// record fails its condition, else the record, its event (history, the
/// registrar's feed) and its round, as `put_delegation_when` does alone.
pub(super) fn apply_delegation_write(
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
pub(super) fn feed_append(
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
