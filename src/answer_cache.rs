//! Serialised public answers (an RDAP domain object, a WHOIS domain
//! answer), cached so a repeat lookup costs a hash probe instead of a store
//! read, a view build and serialisation.
//!
//! Consistency: an entry is tagged with the store's [`generation`] read
//! *before* the store read that built it, and is served only while the
//! generation is unchanged, so a commit invalidates every entry before it
//! returns. An answer also depends on the clock (expiry, verification
//! deadlines): the entry keeps the domain record and the lifecycle status
//! it was built at, and is served only while re-evaluating that status at
//! `now` gives the same result. A store that cannot tell its generation
//! (another process may write it) gets no caching.
//!
//! [`generation`]: crate::store::Store::generation

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;

use crate::config::LifecycleConfig;
use crate::lifecycle::{self, Status};
use crate::model::{Domain, Timestamp};

/// Bytes of answers kept per cache (RDAP and WHOIS each): enough for tens
/// of thousands of hot names, small next to the 512 MiB budget at 1M domains.
pub const MAX_BYTES: u64 = 64 << 20;

/// One cached answer.
#[derive(Debug)]
pub struct Entry {
    generation: u64,
    domain: Domain,
    status: Status,
    pub body: Bytes,
    /// A hash of `body`, for an HTTP entity tag.
    pub tag: u64,
}

impl Entry {
    pub fn new(generation: u64, domain: Domain, status: Status, body: Bytes) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        Self {
            generation,
            domain,
            status,
            tag: h.finish(),
            body,
        }
    }
}

/// A bounded map from a domain's A-label name to its cached answer.
pub struct AnswerCache {
    /// `None`: caching off (benches measure the uncached path with it).
    map: Option<quick_cache::sync::Cache<String, Arc<Entry>, Weight>>,
}

/// An entry's cost against the byte budget: body, key and a rough
/// allowance for the domain record.
#[derive(Debug, Clone)]
struct Weight;

impl quick_cache::Weighter<String, Arc<Entry>> for Weight {
    fn weight(&self, k: &String, v: &Arc<Entry>) -> u64 {
        (k.len() + v.body.len() + 512) as u64
    }
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache")
            .field("entries", &self.map.as_ref().map(|m| m.len()))
            .finish()
    }
}

impl AnswerCache {
    pub fn new(max_bytes: u64) -> Self {
        Self {
            // Sized for answers of ~3 KB; the weight is what bounds it.
            map: Some(quick_cache::sync::Cache::with_weighter(
                (max_bytes / 3072).max(16) as usize,
                max_bytes,
                Weight,
            )),
        }
    }

    /// A cache that keeps nothing.
    pub fn off() -> Self {
        Self { map: None }
    }

    /// The answer for `name` if it is still what a fresh build would give:
    /// same store generation, same lifecycle status at `now`.
    pub fn get(
        &self,
        name: &str,
        generation: u64,
        now: Timestamp,
        cfg: &LifecycleConfig,
    ) -> Option<Arc<Entry>> {
        let e = self.map.as_ref()?.get(name)?;
        (e.generation == generation && lifecycle::evaluate(&e.domain, now, cfg) == e.status)
            .then_some(e)
    }

    pub fn insert(&self, name: &str, entry: Arc<Entry>) {
        if let Some(m) = &self.map {
            m.insert(name.to_string(), entry);
        }
    }
}

/// The caches the public services share through [`crate::app::App`].
#[derive(Debug)]
pub struct Answers {
    pub rdap_domain: AnswerCache,
    pub whois_domain: AnswerCache,
}

impl Answers {
    /// No caching (for measuring the uncached path).
    pub fn off() -> Self {
        Self {
            rdap_domain: AnswerCache::off(),
            whois_domain: AnswerCache::off(),
        }
    }
}

impl Default for Answers {
    fn default() -> Self {
        Self {
            rdap_domain: AnswerCache::new(MAX_BYTES),
            whois_domain: AnswerCache::new(MAX_BYTES),
        }
    }
}
