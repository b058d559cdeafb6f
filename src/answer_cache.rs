//! Serialised public answers (an RDAP domain object, a WHOIS domain
//! answer), cached so a repeat lookup costs a hash probe instead of a store
//! read, a view build and serialisation.
//!
//! Consistency, per domain: an entry is tagged with the store's generation
//! read *before* the store read that built it and with the keys it was
//! built from (the domain, its registrar and contacts); it is served only
//! while no commit has stamped any of those keys since (see
//! [`crate::store::stamps`]), so a commit that changes a domain's public
//! data invalidates its answers before it returns, and one that changes
//! nothing public (a probe round's bookkeeping) invalidates none. An
//! answer also depends on the clock (expiry, verification deadlines): the
//! entry keeps the domain record and the lifecycle status it was built at,
//! and is served only while re-evaluating that status at `now` gives the
//! same result. Both answers show the store's last update time; the entry
//! keeps where, and a hit after another domain's commit gets the current
//! time written over it. A store that keeps no stamps (another process
//! may write it) gets no caching; its answers are kept only to serve
//! while it cannot be read (see [`Answers`]).

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::HeaderValue;
use bytes::Bytes;

use crate::config::LifecycleConfig;
use crate::lifecycle::{self, Status};
use crate::model::{Domain, Timestamp};
use crate::store::stamps::{Key, Slot, Stamps};

/// Bytes of RDAP answers kept: an answer of ~3 KB weighs ~5 KB with the
/// domain record kept beside it, so this holds ~25 000 hot names (a hot
/// set of 20 000 missed a sixth of its lookups at 64 MiB and a twelfth at
/// 96). With the WHOIS answers, the facts and the default redb page cache
/// (`store.cache_mib`, 160) a front end over 1M domains stays within its
/// 512 MiB budget (`benches/frontend.rs`).
pub const MAX_BYTES: u64 = 128 << 20;
/// Bytes of WHOIS answers kept (~2 KB each with the record: ~24 000 names).
pub const WHOIS_MAX_BYTES: u64 = 48 << 20;

/// Length of a timestamp as both answers print it: `2026-01-01T00:00:00Z`.
const TS_LEN: usize = 20;

fn ts(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One cached answer.
#[derive(Debug)]
pub struct Entry {
    /// Store generation read before the store read.
    built: u64,
    /// The keys the answer was built from.
    deps: [Slot; 5],
    domain: Domain,
    status: Status,
    pub body: Bytes,
    /// Its HTTP entity tag: a hash of `body`.
    pub etag: HeaderValue,
    /// The store's last update time shown in `body`, and where.
    updated: Timestamp,
    updated_at: usize,
    /// Bytes this entry holds beyond its body: the domain record (its
    /// encoded size, doubled for the allocations behind its strings) and
    /// the entry itself.
    overhead: usize,
}

/// An HTTP entity tag (RFC 9110 §8.8.3) from a hash of the body.
pub fn etag(hash: u64) -> HeaderValue {
    HeaderValue::try_from(format!("\"{hash:016x}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// A hash of an answer's bytes, for an HTTP entity tag.
pub fn body_tag(body: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

impl Entry {
    /// An entry for `body`, built from `domain` (its lifecycle `status`)
    /// after reading generation `built`, showing the last update time
    /// `updated` right after the first occurrence of `before` (`None`:
    /// the body does not show it where expected; do not cache).
    pub fn new(
        built: u64,
        domain: Domain,
        status: Status,
        body: Bytes,
        updated: Timestamp,
        before: &[u8],
    ) -> Option<Self> {
        let mut needle = before.to_vec();
        needle.extend_from_slice(ts(updated).as_bytes());
        let at = memchr::memmem::rfind(&body, &needle)? + before.len();
        let own = Key::Domain(domain.name.as_str()).slot();
        // A missing contact repeats the domain's own slot.
        let c = |h: Option<&str>| h.map_or(own, |h| Key::Contact(h).slot());
        let deps = [
            own,
            Key::Registrar(&domain.registrar).slot(),
            c(Some(&domain.registrant)),
            c(domain.admin.as_deref()),
            c(domain.tech.as_deref()),
        ];
        let overhead = 2 * postcard::to_allocvec(&domain).map_or(512, |v| v.len())
            + std::mem::size_of::<Self>()
            + 64;
        Some(Self {
            overhead,
            built,
            deps,
            domain,
            status,
            etag: etag(body_tag(&body)),
            body,
            updated: trunc(updated),
            updated_at: at,
        })
    }

    /// This answer showing `updated` as the store's last update time.
    fn at_update(&self, updated: Timestamp) -> Option<Self> {
        let t = ts(updated);
        if t.len() != TS_LEN {
            return None;
        }
        let mut body = self.body.to_vec();
        body.get_mut(self.updated_at..self.updated_at + TS_LEN)?
            .copy_from_slice(t.as_bytes());
        Some(Self {
            built: self.built,
            deps: self.deps,
            domain: self.domain.clone(),
            status: self.status.clone(),
            etag: etag(body_tag(&body)),
            body: body.into(),
            updated,
            updated_at: self.updated_at,
            overhead: self.overhead,
        })
    }
}

fn trunc(t: Timestamp) -> Timestamp {
    chrono::DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// A map bounded by the weight of its entries, counting hits and misses.
/// `map` is `None` when caching is off (benches measure the uncached path
/// with it).
struct Bounded<V, W> {
    map: Option<quick_cache::sync::Cache<String, Arc<V>, W>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<V, W: quick_cache::Weighter<String, Arc<V>> + Clone> Bounded<V, W> {
    /// `typical`: an entry's usual weight, which sizes the table (the
    /// weight is what bounds it).
    fn new(max_bytes: u64, typical: u64, weigher: W) -> Self {
        Self {
            map: Some(quick_cache::sync::Cache::with_weighter(
                (max_bytes / typical).max(16) as usize,
                max_bytes,
                weigher,
            )),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn off() -> Self {
        Self {
            map: None,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The entry under `key` if `valid` accepts it, counted as a hit or
    /// a miss.
    fn get(&self, key: &str, valid: impl FnOnce(&V) -> bool) -> Option<Arc<V>> {
        let found = self
            .map
            .as_ref()
            .and_then(|m| m.get(key))
            .filter(|e| valid(e));
        let n = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        n.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn enabled(&self) -> bool {
        self.map.is_some()
    }

    /// The entry under `key`, current or not, uncounted: the last answer
    /// built, for when the store cannot be read.
    fn last(&self, key: &str) -> Option<Arc<V>> {
        self.map.as_ref()?.get(key)
    }

    fn remove(&self, key: &str) {
        if let Some(m) = &self.map {
            m.remove(key);
        }
    }

    fn insert(&self, key: String, v: Arc<V>) {
        if let Some(m) = &self.map {
            m.insert(key, v);
        }
    }
}

impl<V, W: quick_cache::Weighter<String, Arc<V>> + Clone> std::fmt::Debug for Bounded<V, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bounded")
            .field("entries", &self.map.as_ref().map(|m| m.len()))
            .field("hits", &self.hits)
            .field("misses", &self.misses)
            .finish()
    }
}

/// A bounded map from a domain's A-label name to its cached answer.
#[derive(Debug)]
pub struct AnswerCache(Bounded<Entry, Weight>);

/// An entry's cost against the byte budget: body, key and the entry's
/// own overhead (the domain record it keeps).
#[derive(Debug, Clone)]
struct Weight;

impl quick_cache::Weighter<String, Arc<Entry>> for Weight {
    fn weight(&self, k: &String, v: &Arc<Entry>) -> u64 {
        (k.len() + v.body.len() + v.overhead) as u64
    }
}

impl AnswerCache {
    pub fn new(max_bytes: u64) -> Self {
        // Answers of ~3 KB.
        Self(Bounded::new(max_bytes, 3072, Weight))
    }

    /// A cache that keeps nothing.
    pub fn off() -> Self {
        Self(Bounded::off())
    }

    /// Answers served from the cache and looked up in vain, so far.
    pub fn counts(&self) -> (u64, u64) {
        self.0.counts()
    }

    /// The answer for `name` if it is still what a fresh build would give:
    /// none of its keys changed since it was built, same lifecycle status
    /// at `now`; showing the store's current last update time.
    pub fn get(
        &self,
        name: &str,
        stamps: &Stamps,
        now: Timestamp,
        cfg: &LifecycleConfig,
    ) -> Option<Arc<Entry>> {
        let e = self.0.get(name, |e| {
            stamps.current(&e.deps, e.built) && lifecycle::evaluate(&e.domain, now, cfg) == e.status
        })?;
        match stamps.updated() {
            Some(u) if u != e.updated => {
                // Another commit moved the store's last update time: this
                // entry and those after it show the new one.
                let fresh = Arc::new(e.at_update(u)?);
                self.insert(name, fresh.clone());
                Some(fresh)
            }
            _ => Some(e),
        }
    }

    pub fn insert(&self, name: &str, entry: Arc<Entry>) {
        self.0.insert(name.to_string(), entry);
    }

    /// The last answer built for `name`, current or not: what is served
    /// while the store cannot be read (see [`Answers`]).
    pub fn last_built(&self, name: &str) -> Option<Arc<Entry>> {
        self.0.last(name)
    }

    /// Drop `name`'s answer: the domain is gone, so not even a store
    /// outage may bring its last answer back.
    pub fn forget(&self, name: &str) {
        self.0.remove(name);
    }
}

/// What a lookup other than a registered domain's found: kept as facts,
/// not text, so a hit is formatted at once with the current last update
/// time (no store read, no trip through the blocking pool).
#[derive(Debug, Clone)]
pub enum Fact {
    /// Nothing under that key (an unregistered domain, an unknown host or
    /// handle).
    Absent,
    Host(crate::store::HostRecord),
    Registrar(crate::public::PublicRegistrar),
    Contact(crate::public::PublicContact),
}

/// A cached [`Fact`] with what it was read from.
#[derive(Debug)]
pub struct FactEntry {
    built: u64,
    deps: [Slot; 2],
    pub fact: Fact,
}

/// Bytes of facts kept (hosts, registrars, contacts, absent names).
pub const FACT_MAX_BYTES: u64 = 8 << 20;

/// A bounded map from a lookup key (see [`FactCache::key`]) to a fact
/// read from the store, valid while none of its keys was stamped since.
#[derive(Debug)]
pub struct FactCache(Bounded<FactEntry, FactWeight>);

#[derive(Debug, Clone)]
struct FactWeight;

impl quick_cache::Weighter<String, Arc<FactEntry>> for FactWeight {
    fn weight(&self, k: &String, v: &Arc<FactEntry>) -> u64 {
        let payload = match &v.fact {
            Fact::Absent => 0,
            Fact::Host(h) => h.name.len() + 32 * h.addresses.len(),
            Fact::Registrar(r) => {
                r.handle.len()
                    + r.name.len()
                    + r.url.as_ref().map_or(0, String::len)
                    + r.email.as_ref().map_or(0, String::len)
            }
            // A contact's public view: a handful of short strings.
            Fact::Contact(_) => 512,
        };
        // Allocation headers and the entry itself.
        (k.len() + payload + std::mem::size_of::<FactEntry>() + 96) as u64
    }
}

impl FactCache {
    pub fn new(max_bytes: u64) -> Self {
        Self(Bounded::new(max_bytes, 256, FactWeight))
    }

    pub fn off() -> Self {
        Self(Bounded::off())
    }

    /// The cache key of a lookup: its kind (one byte, e.g. `b'w'` for a
    /// WHOIS domain) and the name or handle as looked up.
    pub fn key(kind: u8, name: &str) -> String {
        let mut k = String::with_capacity(name.len() + 1);
        k.push(kind as char);
        k.push_str(name);
        k
    }

    pub fn counts(&self) -> (u64, u64) {
        self.0.counts()
    }

    /// The fact under `key` if none of its store keys changed since it was
    /// read.
    pub fn get(&self, key: &str, stamps: &Stamps) -> Option<Arc<FactEntry>> {
        self.0.get(key, |e| stamps.current(&e.deps, e.built))
    }

    /// The last fact read under `key`, current or not (see [`Answers`]).
    pub fn last_built(&self, key: &str) -> Option<Arc<FactEntry>> {
        self.0.last(key)
    }

    /// The fact under `key`: cached while current, else `load`ed and kept
    /// (when the store keeps change stamps, `stamps`; else always loaded,
    /// and kept only as the last one read, see [`Answers`]).
    /// `deps` as for [`Self::insert`].
    pub fn read_through<E>(
        &self,
        stamps: Option<&Stamps>,
        key: String,
        deps: [Key<'_>; 2],
        load: impl FnOnce() -> Result<Fact, E>,
    ) -> Result<Fact, E> {
        let Some(stamps) = stamps else {
            let fact = load()?;
            // Generation 0: never current (no stamps to check it against),
            // only the last fact read.
            self.insert(key, 0, deps, fact.clone());
            return Ok(fact);
        };
        if let Some(e) = self.get(&key, stamps) {
            return Ok(e.fact.clone());
        }
        // Read before the store: a later commit makes the fact stale.
        let built = stamps.generation();
        let fact = load()?;
        self.insert(key, built, deps, fact.clone());
        Ok(fact)
    }

    /// Keep `fact`, read after generation `built` from the store keys
    /// `deps` (one or two; a second equal to the first is fine).
    pub fn insert(&self, key: String, built: u64, deps: [Key<'_>; 2], fact: Fact) {
        let deps = [deps[0].slot(), deps[1].slot()];
        self.0
            .insert(key, Arc::new(FactEntry { built, deps, fact }));
    }
}

/// Bytes of search answers kept.
pub const SEARCH_MAX_BYTES: u64 = 32 << 20;

/// A cached search answer and what it was built from.
#[derive(Debug)]
pub struct SearchEntry {
    built: u64,
    deps: Vec<Slot>,
    /// Each listed domain's record and lifecycle status when built.
    domains: Vec<(Domain, Status)>,
    /// The store's last update time shown in `body`.
    updated: Timestamp,
    pub body: Bytes,
}

/// Search answers (RDAP domain search by name), valid while no domain
/// record changed anywhere ([`Key::AnyDomain`]: a new or revived match),
/// none of the listed domains' keys changed, each listed domain's
/// lifecycle status at `now` is as it was, and the store's last update
/// time is the one shown.
#[derive(Debug)]
pub struct SearchCache(Bounded<SearchEntry, SearchWeight>);

#[derive(Debug, Clone)]
struct SearchWeight;

impl quick_cache::Weighter<String, Arc<SearchEntry>> for SearchWeight {
    fn weight(&self, k: &String, v: &Arc<SearchEntry>) -> u64 {
        // A domain record with its strings: ~1 KB.
        (k.len() + v.body.len() + 1024 * v.domains.len() + 4 * v.deps.len() + 256) as u64
    }
}

impl SearchCache {
    pub fn new(max_bytes: u64) -> Self {
        Self(Bounded::new(max_bytes, 4096, SearchWeight))
    }

    pub fn off() -> Self {
        Self(Bounded::off())
    }

    pub fn counts(&self) -> (u64, u64) {
        self.0.counts()
    }

    pub fn get(
        &self,
        key: &str,
        stamps: &Stamps,
        now: Timestamp,
        cfg: &LifecycleConfig,
    ) -> Option<Arc<SearchEntry>> {
        self.0.get(key, |e| {
            stamps.current(&e.deps, e.built)
                && stamps.updated() == Some(e.updated)
                && e.domains
                    .iter()
                    .all(|(d, s)| lifecycle::evaluate(d, now, cfg) == *s)
        })
    }

    /// Keep `body`, built after reading generation `built` from `domains`
    /// (each with its lifecycle status), showing `updated`.
    pub fn insert(
        &self,
        key: String,
        built: u64,
        domains: Vec<(Domain, Status)>,
        updated: Timestamp,
        body: Bytes,
    ) {
        if !self.0.enabled() {
            return;
        }
        let mut deps = vec![Key::AnyDomain.slot()];
        for (d, _) in &domains {
            deps.push(Key::Domain(d.name.as_str()).slot());
            deps.push(Key::Registrar(&d.registrar).slot());
            deps.push(Key::Contact(&d.registrant).slot());
            for c in [&d.admin, &d.tech].into_iter().flatten() {
                deps.push(Key::Contact(c).slot());
            }
        }
        let e = SearchEntry {
            built,
            deps,
            domains,
            updated,
            body,
        };
        self.0.insert(key, Arc::new(e));
    }
}

/// The caches the public services share through [`crate::app::App`].
///
/// They also keep public reads answering while the store cannot be read
/// (a database restart, a redb file being reopened after an I/O error):
/// a lookup whose store read fails with [`crate::store::StoreError::storage`]
/// gets the last answer built for that name, current or not (`last_built`);
/// only a name with nothing kept gets the protocol's temporary error. On a
/// store without change stamps (PostgreSQL) nothing is served from the
/// caches otherwise, but the answers built are still kept for this.
#[derive(Debug)]
pub struct Answers {
    pub rdap_domain: AnswerCache,
    pub whois_domain: AnswerCache,
    /// Hosts, registrars, contacts and absent names, for WHOIS and RDAP.
    pub facts: FactCache,
    /// RDAP domain searches by name.
    pub searches: SearchCache,
    /// The store's last update time as last read (Unix seconds;
    /// `i64::MIN`: none yet), shown by answers built while it cannot be
    /// read.
    last_update: std::sync::atomic::AtomicI64,
}

impl Answers {
    /// No caching (for measuring the uncached path).
    pub fn off() -> Self {
        Self {
            rdap_domain: AnswerCache::off(),
            whois_domain: AnswerCache::off(),
            facts: FactCache::off(),
            searches: SearchCache::off(),
            last_update: std::sync::atomic::AtomicI64::new(i64::MIN),
        }
    }

    /// Remember `t` as the store's last update time read.
    pub fn saw_update(&self, t: Timestamp) {
        self.last_update.store(t.timestamp(), Ordering::Relaxed);
    }

    /// The store's last update time as public answers show it: from its
    /// change stamps when it keeps them (no read transaction; what the
    /// answer caches show too), else read; `now` for a store never written.
    /// Remembered as the last seen.
    pub fn last_update_shown(
        &self,
        store: &dyn crate::store::Store,
        now: Timestamp,
    ) -> crate::store::Result<Timestamp> {
        let t = match store.stamps().and_then(|s| s.updated()) {
            Some(t) => t,
            None => store.last_update()?.unwrap_or(now),
        };
        self.saw_update(t);
        Ok(t)
    }

    /// The store's last update time as last read, if ever.
    pub fn last_update_seen(&self) -> Option<Timestamp> {
        match self.last_update.load(Ordering::Relaxed) {
            i64::MIN => None,
            s => chrono::DateTime::from_timestamp(s, 0),
        }
    }
}

impl Default for Answers {
    fn default() -> Self {
        Self {
            rdap_domain: AnswerCache::new(MAX_BYTES),
            whois_domain: AnswerCache::new(WHOIS_MAX_BYTES),
            facts: FactCache::new(FACT_MAX_BYTES),
            searches: SearchCache::new(SEARCH_MAX_BYTES),
            last_update: std::sync::atomic::AtomicI64::new(i64::MIN),
        }
    }
}
