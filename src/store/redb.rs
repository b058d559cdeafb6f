//! The embedded default backend: one redb file.
//!
//! Records are postcard-encoded values keyed by name/handle. Secondary
//! indexes are tables with composite `(key, item)` keys and empty values, so
//! listings page with a range scan instead of walking a whole multimap.
//! redb commits are atomic and crash-safe: a kill at any moment leaves the
//! last committed state.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ::redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};
use serde::{de::DeserializeOwned, Serialize};

use super::*;
use crate::delegation;
use crate::model::ContactKind;

/// Table definitions, shared with [`super::migrate`].
pub(super) mod tables {
    use ::redb::TableDefinition;

    pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    pub const REGISTRARS: TableDefinition<&str, &[u8]> = TableDefinition::new("registrars");
    pub const CONTACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");
    pub const DOMAINS: TableDefinition<&str, &[u8]> = TableDefinition::new("domains");
    pub const DELEGATION: TableDefinition<&str, &[u8]> = TableDefinition::new("delegation");
    pub const HOSTS: TableDefinition<&str, &[u8]> = TableDefinition::new("hosts");
    pub const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
    pub const ROUNDS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("rounds");
    pub const STATE_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("state_counts");
    // Indexes: (key, item) -> ().
    pub const IDX_HOST_DOMAIN: TableDefinition<(&str, &str), ()> =
        TableDefinition::new("idx_host_domain");
    pub const IDX_IP_HOST: TableDefinition<(&str, &str), ()> = TableDefinition::new("idx_ip_host");
    pub const IDX_REGISTRAR: TableDefinition<(&str, &str), ()> =
        TableDefinition::new("idx_registrar");
    pub const IDX_CONTACT: TableDefinition<(&str, &str), ()> = TableDefinition::new("idx_contact");
    pub const IDX_STATE: TableDefinition<(&str, &str), ()> = TableDefinition::new("idx_state");
    pub const IDX_FN: TableDefinition<(&str, &str), ()> = TableDefinition::new("idx_entity_fn");
}
use tables::*;

const KEY_SCHEMA: &str = "schema_version";
/// redb's own default page cache.
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;
const KEY_UPDATED: &str = "last_update";
/// Probe rounds kept per domain (older ones are dropped).
pub const ROUNDS_KEPT: usize = 500;
/// History events kept per domain.
pub const HISTORY_KEPT: usize = 1000;

pub(super) fn err<E: Into<::redb::Error>>(e: E) -> StoreError {
    let e: ::redb::Error = e.into();
    match e {
        ::redb::Error::Corrupted(m) => StoreError::Corrupt(m),
        ::redb::Error::Io(io) => StoreError::Io(io.to_string()),
        other => StoreError::Backend(other.to_string()),
    }
}

pub(super) fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    postcard::from_bytes(b).map_err(|e| StoreError::Corrupt(format!("decode: {e}")))
}

pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl RedbStore {
    /// One transaction: write `record` (with its history event and round)
    /// only if `accept` approves the record currently stored.
    fn put_delegation_when(
        &self,
        name: &str,
        accept: impl FnOnce(Option<&DelegationRecord>) -> bool,
        record: &DelegationRecord,
        event: Option<&HistoryEvent>,
        round: Option<&RoundSummary>,
    ) -> Result<bool> {
        let txn = self.write()?;
        let old: Option<DelegationRecord> = wget(&txn, DELEGATION, name)?;
        if !accept(old.as_ref()) {
            txn.abort().map_err(err)?;
            return Ok(false);
        }
        put_record(&txn, name, old.as_ref(), record)?;
        if let Some(ev) = event {
            log_append(&txn, HISTORY, name, ev, HISTORY_KEPT)?;
            touch(&txn, ev.at)?;
        }
        if let Some(r) = round {
            log_append(&txn, ROUNDS, name, r, ROUNDS_KEPT)?;
        }
        txn.commit().map_err(err)?;
        Ok(true)
    }

    /// Open (or create) the store at `path`, checking the schema version.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Open with a page cache of `cache_bytes` (hot pages of a large store
    /// served from memory; it counts towards the process's RSS).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self> {
        let db = match ::redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
        {
            Ok(db) => db,
            Err(::redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => {
                return Err(StoreError::Open {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })
            }
        };
        let store = Self {
            db,
            path: path.to_path_buf(),
        };
        store.init_schema()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Give free pages back to the file system (after a bulk import).
    pub fn compact(&mut self) -> Result<()> {
        self.db
            .compact()
            .map(|_| ())
            .map_err(|e| StoreError::Backend(format!("compaction: {e}")))
    }

    fn init_schema(&self) -> Result<()> {
        // Fast path with no write: an existing store of this version.
        {
            let r = self.read()?;
            if let Ok(meta) = r.open_table(META) {
                if let Some(v) = meta.get(KEY_SCHEMA).map_err(err)? {
                    if v.value() == SCHEMA_VERSION.to_le_bytes().as_slice() {
                        return Ok(());
                    }
                }
            }
        }
        let txn = self.db.begin_write().map_err(err)?;
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
                        path: self.path.clone(),
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
        for t in [
            IDX_HOST_DOMAIN,
            IDX_IP_HOST,
            IDX_REGISTRAR,
            IDX_CONTACT,
            IDX_STATE,
            IDX_FN,
        ] {
            txn.open_table(t).map_err(err)?;
        }
        txn.commit().map_err(err)
    }

    fn read(&self) -> Result<ReadTransaction> {
        self.db.begin_read().map_err(err)
    }

    fn write(&self) -> Result<WriteTransaction> {
        self.db.begin_write().map_err(err)
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

fn wget<T: DeserializeOwned>(
    txn: &WriteTransaction,
    def: TableDefinition<&str, &[u8]>,
    key: &str,
) -> Result<Option<T>> {
    let t = txn.open_table(def).map_err(err)?;
    let r = match t.get(key).map_err(err)? {
        Some(v) => Some(dec(v.value())?),
        None => None,
    };
    Ok(r)
}

fn wput<T: Serialize>(
    txn: &WriteTransaction,
    def: TableDefinition<&str, &[u8]>,
    key: &str,
    v: &T,
) -> Result<()> {
    let mut t = txn.open_table(def).map_err(err)?;
    t.insert(key, enc(v)?.as_slice()).map_err(err)?;
    Ok(())
}

fn idx_set(
    txn: &WriteTransaction,
    def: TableDefinition<(&str, &str), ()>,
    key: &str,
    item: &str,
    present: bool,
) -> Result<()> {
    let mut t = txn.open_table(def).map_err(err)?;
    if present {
        t.insert((key, item), ()).map_err(err)?;
    } else {
        t.remove((key, item)).map_err(err)?;
    }
    Ok(())
}

fn touch(txn: &WriteTransaction, now: Timestamp) -> Result<()> {
    let mut meta = txn.open_table(META).map_err(err)?;
    meta.insert(KEY_UPDATED, enc(&now)?.as_slice())
        .map_err(err)?;
    Ok(())
}

/// Append to a `(name, seq)` log, keeping at most `keep` entries.
fn log_append<T: Serialize>(
    txn: &WriteTransaction,
    def: TableDefinition<(&str, u64), &[u8]>,
    name: &str,
    v: &T,
    keep: usize,
) -> Result<()> {
    let mut t = txn.open_table(def).map_err(err)?;
    let next = match t
        .range((name, 0)..=(name, u64::MAX))
        .map_err(err)?
        .next_back()
    {
        Some(item) => item.map_err(err)?.0.value().1 + 1,
        None => 0,
    };
    t.insert((name, next), enc(v)?.as_slice()).map_err(err)?;
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

/// Write a delegation record, keeping the state index and counters right.
fn put_record(
    txn: &WriteTransaction,
    name: &str,
    old: Option<&DelegationRecord>,
    rec: &DelegationRecord,
) -> Result<()> {
    let old_state = old.map(|o| o.state);
    if old_state != Some(rec.state) {
        let mut counts = txn.open_table(STATE_COUNTS).map_err(err)?;
        if let Some(s) = old_state {
            idx_set(txn, IDX_STATE, s.as_str(), name, false)?;
            let n = counts
                .get(s.as_str())
                .map_err(err)?
                .map(|v| v.value())
                .unwrap_or(0);
            counts
                .insert(s.as_str(), n.saturating_sub(1))
                .map_err(err)?;
        }
        idx_set(txn, IDX_STATE, rec.state.as_str(), name, true)?;
        let n = counts
            .get(rec.state.as_str())
            .map_err(err)?
            .map(|v| v.value())
            .unwrap_or(0);
        counts.insert(rec.state.as_str(), n + 1).map_err(err)?;
    }
    wput(txn, DELEGATION, name, rec)
}

/// Write a domain record and keep every index that derives from it right.
fn put_domain(txn: &WriteTransaction, old: Option<&Domain>, new: &Domain) -> Result<()> {
    let name = new.name.as_str();
    if let Some(o) = old {
        if o.registrar != new.registrar {
            idx_set(txn, IDX_REGISTRAR, &o.registrar, name, false)?;
        }
    }
    idx_set(txn, IDX_REGISTRAR, &new.registrar, name, true)?;
    let contacts = |d: &Domain| -> BTreeSet<String> {
        [Some(&d.registrant), d.admin.as_ref(), d.tech.as_ref()]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    };
    let new_c = contacts(new);
    if let Some(o) = old {
        for c in contacts(o).difference(&new_c) {
            idx_set(txn, IDX_CONTACT, c, name, false)?;
        }
    }
    for c in &new_c {
        idx_set(txn, IDX_CONTACT, c, name, true)?;
    }
    // Hosts: reference counts, glue addresses and the IP index.
    let old_ns: Vec<&Nameserver> = old
        .map(|o| o.nameservers.iter().collect())
        .unwrap_or_default();
    for o in &old_ns {
        if !new.nameservers.iter().any(|n| n.name == o.name) {
            idx_set(txn, IDX_HOST_DOMAIN, o.name.as_str(), name, false)?;
            let host: Option<HostRecord> = wget(txn, HOSTS, o.name.as_str())?;
            if let Some(mut h) = host {
                h.domains = h.domains.saturating_sub(1);
                let owner = o.name.is_at_or_below(name);
                if h.domains == 0 || owner {
                    set_host_addresses(txn, &mut h, &[])?;
                }
                if h.domains == 0 {
                    txn.open_table(HOSTS)
                        .map_err(err)?
                        .remove(o.name.as_str())
                        .map_err(err)?;
                } else {
                    wput(txn, HOSTS, o.name.as_str(), &h)?;
                }
            }
        }
    }
    for n in &new.nameservers {
        let host = n.name.as_str();
        let existed = old_ns.iter().any(|o| o.name == n.name);
        let mut h: HostRecord = wget(txn, HOSTS, host)?.unwrap_or(HostRecord {
            name: host.to_string(),
            addresses: Vec::new(),
            domains: 0,
        });
        if !existed {
            h.domains += 1;
            idx_set(txn, IDX_HOST_DOMAIN, host, name, true)?;
        }
        // Glue belongs to the domain the host is in; only it sets addresses.
        if n.name.is_at_or_below(name) {
            set_host_addresses(txn, &mut h, &n.addresses)?;
        }
        wput(txn, HOSTS, host, &h)?;
    }
    wput(txn, DOMAINS, name, new)
}

fn set_host_addresses(txn: &WriteTransaction, h: &mut HostRecord, addrs: &[IpAddr]) -> Result<()> {
    if h.addresses == addrs {
        return Ok(());
    }
    for a in &h.addresses {
        idx_set(txn, IDX_IP_HOST, &a.to_string(), &h.name, false)?;
    }
    for a in addrs {
        idx_set(txn, IDX_IP_HOST, &a.to_string(), &h.name, true)?;
    }
    h.addresses = addrs.to_vec();
    Ok(())
}

/// The lower-cased public name of an entity, for `fn` search. Only names
/// the public may see are indexed (RFC 9536 §4: no reverse search on
/// private data).
fn public_fn(c: &Contact) -> Option<String> {
    let p = crate::public::contact(c);
    match c.kind {
        ContactKind::Org => p.org.or(p.name),
        ContactKind::Person => p.name,
    }
    .map(|s| s.to_lowercase())
}

impl RedbStore {
    fn put_contact(&self, txn: &WriteTransaction, c: &Contact) -> Result<()> {
        if let Some(old) = wget::<Contact>(txn, CONTACTS, &c.handle)? {
            if let Some(f) = public_fn(&old) {
                idx_set(txn, IDX_FN, &f, &c.handle, false)?;
            }
        }
        if let Some(f) = public_fn(c) {
            idx_set(txn, IDX_FN, &f, &c.handle, true)?;
        }
        wput(txn, CONTACTS, &c.handle, c)
    }

    fn put_registrar(&self, txn: &WriteTransaction, r: &Registrar) -> Result<()> {
        if let Some(old) = wget::<Registrar>(txn, REGISTRARS, &r.handle)? {
            idx_set(txn, IDX_FN, &old.name.to_lowercase(), &r.handle, false)?;
        }
        idx_set(txn, IDX_FN, &r.name.to_lowercase(), &r.handle, true)?;
        wput(txn, REGISTRARS, &r.handle, r)
    }
}

impl RedbStore {
    /// Check every invariant between records and indexes; returns the
    /// problems found (empty: consistent). Reads one snapshot.
    pub fn verify(&self) -> Result<Vec<String>> {
        let txn = self.read()?;
        let mut problems = Vec::new();
        let domains = txn.open_table(DOMAINS).map_err(err)?;
        let deleg = txn.open_table(DELEGATION).map_err(err)?;
        let regs = txn.open_table(REGISTRARS).map_err(err)?;
        let contacts = txn.open_table(CONTACTS).map_err(err)?;
        let hosts = txn.open_table(HOSTS).map_err(err)?;
        let idx_host = txn.open_table(IDX_HOST_DOMAIN).map_err(err)?;
        let idx_ip = txn.open_table(IDX_IP_HOST).map_err(err)?;
        let idx_reg = txn.open_table(IDX_REGISTRAR).map_err(err)?;
        let idx_contact = txn.open_table(IDX_CONTACT).map_err(err)?;
        let idx_state = txn.open_table(IDX_STATE).map_err(err)?;
        let counts = txn.open_table(STATE_COUNTS).map_err(err)?;
        let has = |t: &::redb::ReadOnlyTable<(&str, &str), ()>, a: &str, b: &str| -> Result<bool> {
            Ok(t.get((a, b)).map_err(err)?.is_some())
        };
        let mut host_refs: BTreeMap<String, u64> = BTreeMap::new();
        for item in domains.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            let name = k.value();
            let d: Domain = dec(v.value())?;
            if d.name.as_str() != name {
                problems.push(format!("domain key {name} holds {}", d.name));
            }
            match deleg.get(name).map_err(err)? {
                None => problems.push(format!("{name}: no delegation record")),
                Some(r) => {
                    let r: DelegationRecord = dec(r.value())?;
                    if r.ns_fingerprint != d.ns_fingerprint() {
                        problems.push(format!("{name}: delegation record is for another NS set"));
                    }
                }
            }
            if regs.get(d.registrar.as_str()).map_err(err)?.is_none() {
                problems.push(format!("{name}: registrar {} missing", d.registrar));
            }
            if !has(&idx_reg, &d.registrar, name)? {
                problems.push(format!("{name}: not in registrar index"));
            }
            for c in [Some(&d.registrant), d.admin.as_ref(), d.tech.as_ref()]
                .into_iter()
                .flatten()
            {
                if contacts.get(c.as_str()).map_err(err)?.is_none() {
                    problems.push(format!("{name}: contact {c} missing"));
                }
                if !has(&idx_contact, c, name)? {
                    problems.push(format!("{name}: not in contact index for {c}"));
                }
            }
            for n in &d.nameservers {
                *host_refs.entry(n.name.as_str().to_string()).or_default() += 1;
                if !has(&idx_host, n.name.as_str(), name)? {
                    problems.push(format!("{name}: not in host index for {}", n.name));
                }
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
                Some(r) => dec::<DelegationRecord>(r.value())?.state.as_str() == state,
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

fn exists(txn: &WriteTransaction, def: TableDefinition<&str, &[u8]>, key: &str) -> Result<bool> {
    Ok(txn
        .open_table(def)
        .map_err(err)?
        .get(key)
        .map_err(err)?
        .is_some())
}

impl Store for RedbStore {
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

    fn domains_by_state(
        &self,
        state: DelegationState,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        self.index_page(IDX_STATE, state.as_str(), after, limit)
    }

    fn search_domains(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        self.prefix_page(DOMAINS, prefix, after, limit)
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

    fn import(
        &self,
        batch: &ImportBatch,
        now: Timestamp,
        window: chrono::Duration,
    ) -> Result<ImportSummary> {
        let txn = self.write()?;
        let mut errors = Vec::new();
        let mut summary = ImportSummary::default();
        for r in &batch.registrars {
            self.put_registrar(&txn, r)?;
            summary.registrars += 1;
        }
        for c in &batch.contacts {
            self.put_contact(&txn, c)?;
            summary.contacts += 1;
        }
        // Insert in key order: B-tree pages fill densely and stay hot.
        let mut order: Vec<usize> = (0..batch.domains.len()).collect();
        order.sort_by(|a, b| batch.domains[*a].name.cmp(&batch.domains[*b].name));
        for i in order {
            let d = &batch.domains[i];
            let name = d.name.as_str();
            if !exists(&txn, REGISTRARS, &d.registrar)? {
                errors.push(RecordError {
                    section: "domains",
                    index: i,
                    field: "registrar".into(),
                    reason: format!("unknown registrar '{}'", d.registrar),
                });
            }
            for (field, h) in [
                ("registrant", Some(&d.registrant)),
                ("admin", d.admin.as_ref()),
                ("tech", d.tech.as_ref()),
            ] {
                if let Some(h) = h {
                    if !exists(&txn, CONTACTS, h)? {
                        errors.push(RecordError {
                            section: "domains",
                            index: i,
                            field: field.into(),
                            reason: format!("unknown contact '{h}'"),
                        });
                    }
                }
            }
            if !errors.is_empty() {
                // Keep checking references, but stop writing: the
                // transaction is dropped (aborted) below.
                continue;
            }
            let old: Option<Domain> = wget(&txn, DOMAINS, name)?;
            let mut new = d.clone();
            if let Some(o) = &old {
                // A hold that stays keeps its original start and reason.
                if let (Some(_), Some(oh)) = (&new.hold, &o.hold) {
                    new.hold = Some(oh.clone());
                }
                new.updated = o.updated;
                if *o == new {
                    summary.unchanged += 1;
                    summary.domains += 1;
                    continue;
                }
            }
            new.updated = now;
            put_domain(&txn, old.as_ref(), &new)?;
            let old_rec: Option<DelegationRecord> = wget(&txn, DELEGATION, name)?;
            if let Some((rec, ev)) =
                delegation::on_declared(old_rec.as_ref(), &new.nameservers, &new.ds, now, window)
            {
                if old_rec.is_some() || !new.nameservers.is_empty() {
                    log_append(&txn, HISTORY, name, &ev, HISTORY_KEPT)?;
                }
                if rec.state == DelegationState::Testing {
                    summary.tests_started += 1;
                }
                put_record(&txn, name, old_rec.as_ref(), &rec)?;
            }
            summary.domains += 1;
        }
        if !errors.is_empty() {
            txn.abort().map_err(err)?;
            return Err(StoreError::Rejected(errors));
        }
        touch(&txn, now)?;
        txn.commit().map_err(err)?;
        Ok(summary)
    }

    fn declare_nameservers(
        &self,
        name: &str,
        ns: Vec<Nameserver>,
        now: Timestamp,
        window: chrono::Duration,
    ) -> Result<DelegationRecord> {
        self.declare(name, now, window, None, |d| {
            // A DS set without a delegation to sit next to means nothing.
            if ns.is_empty() {
                d.ds.clear();
            }
            d.nameservers = ns;
            Ok(())
        })
    }

    fn declare_ds(
        &self,
        name: &str,
        ds: Vec<crate::model::DsRecord>,
        source: &str,
        now: Timestamp,
        window: chrono::Duration,
    ) -> Result<DelegationRecord> {
        self.declare(name, now, window, Some(source), |d| {
            if !ds.is_empty() && d.nameservers.is_empty() {
                return Err(StoreError::Rejected(vec![RecordError {
                    section: "domains",
                    index: 0,
                    field: "ds".into(),
                    reason: "a DS set needs nameservers: declare them first".into(),
                }]));
            }
            d.ds = ds;
            Ok(())
        })
    }

    fn retest(
        &self,
        name: &str,
        now: Timestamp,
        window: chrono::Duration,
    ) -> Result<DelegationRecord> {
        let txn = self.write()?;
        if !exists(&txn, DOMAINS, name)? {
            return Err(StoreError::NoSuchDomain(name.to_string()));
        }
        let old: DelegationRecord =
            wget(&txn, DELEGATION, name)?.unwrap_or_else(|| DelegationRecord::undelegated(now));
        let (rec, ev) = delegation::on_retest(&old, now, window).map_err(|e| {
            StoreError::Rejected(vec![RecordError {
                section: "domains",
                index: 0,
                field: "state".into(),
                reason: e.to_string(),
            }])
        })?;
        log_append(&txn, HISTORY, name, &ev, HISTORY_KEPT)?;
        put_record(&txn, name, Some(&old), &rec)?;
        touch(&txn, now)?;
        txn.commit().map_err(err)?;
        Ok(rec)
    }

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
            |old| old.is_some_and(|o| o.ns_fingerprint == expected_fingerprint),
            record,
            event,
            round,
        )
    }

    fn put_delegation_if_unchanged(
        &self,
        name: &str,
        expected: &DelegationRecord,
        record: &DelegationRecord,
        event: Option<&HistoryEvent>,
        round: Option<&RoundSummary>,
    ) -> Result<bool> {
        self.put_delegation_when(name, |old| old == Some(expected), record, event, round)
    }

    fn set_hold(&self, name: &str, hold: Option<Hold>, now: Timestamp) -> Result<()> {
        let txn = self.write()?;
        let old: Domain =
            wget(&txn, DOMAINS, name)?.ok_or_else(|| StoreError::NoSuchDomain(name.to_string()))?;
        let mut new = old.clone();
        let reason = match &hold {
            Some(h) => format!("hold: {}", h.reason),
            None => "hold released".to_string(),
        };
        new.hold = hold;
        new.updated = now;
        put_domain(&txn, Some(&old), &new)?;
        if let Some(rec) = wget::<DelegationRecord>(&txn, DELEGATION, name)? {
            let ev = HistoryEvent {
                at: now,
                from: Some(rec.state),
                to: rec.state,
                reason,
            };
            log_append(&txn, HISTORY, name, &ev, HISTORY_KEPT)?;
        }
        touch(&txn, now)?;
        txn.commit().map_err(err)?;
        Ok(())
    }
}

impl RedbStore {
    /// Change a domain's declared delegation (NS and/or DS) with `change`
    /// and run the state machine's declaration rule, in one transaction.
    fn declare(
        &self,
        name: &str,
        now: Timestamp,
        window: chrono::Duration,
        source: Option<&str>,
        change: impl FnOnce(&mut Domain) -> Result<()>,
    ) -> Result<DelegationRecord> {
        let txn = self.write()?;
        let old: Domain =
            wget(&txn, DOMAINS, name)?.ok_or_else(|| StoreError::NoSuchDomain(name.to_string()))?;
        let old_rec: Option<DelegationRecord> = wget(&txn, DELEGATION, name)?;
        let mut new = old.clone();
        change(&mut new)?;
        new.updated = now;
        let rec =
            match delegation::on_declared(old_rec.as_ref(), &new.nameservers, &new.ds, now, window)
            {
                Some((rec, mut ev)) => {
                    if let Some(src) = source {
                        ev.reason = format!("DS set changed via {src}; {}", ev.reason);
                    }
                    put_domain(&txn, Some(&old), &new)?;
                    log_append(&txn, HISTORY, name, &ev, HISTORY_KEPT)?;
                    put_record(&txn, name, old_rec.as_ref(), &rec)?;
                    rec
                }
                None => {
                    // Same sets (perhaps reordered): keep the state as it is.
                    txn.abort().map_err(err)?;
                    return Ok(old_rec.unwrap_or_else(|| DelegationRecord::undelegated(now)));
                }
            };
        touch(&txn, now)?;
        txn.commit().map_err(err)?;
        Ok(rec)
    }
}
