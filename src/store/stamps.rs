//! Change stamps: what a cached public answer checks to know it is still
//! current, per domain rather than per store.
//!
//! Every commit takes the next generation number and stamps it on the keys
//! whose *public* data it changed (a domain, a registrar, a contact, a
//! nameserver's host record). An
//! answer built after reading generation `g` (read *before* its store
//! read) stays valid while none of the keys it was built from carries a
//! stamp above `g`. Stamps are published after the commit and before it
//! returns, so the request after a commit sees them; a commit that changes
//! nothing public (a scheduler round's bookkeeping) stamps nothing and
//! leaves every answer cached.
//!
//! Keys hash into a fixed table of slots, so memory stays bounded whatever
//! the store holds; two keys sharing a slot only cost a spurious rebuild.
//!
//! Only a store written by this process alone can keep stamps (redb);
//! a shared PostgreSQL store has none and nothing is cached.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::model::Timestamp;

/// Slots in the table (a power of two): 2 MiB. An answer depends on at
/// most five keys, so one change spuriously invalidates an answer with a
/// chance of about 5 in 260 000.
const SLOTS: usize = 1 << 18;

/// What a public domain answer is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key<'a> {
    Domain(&'a str),
    Registrar(&'a str),
    Contact(&'a str),
    /// A nameserver's host record (its glue and how many domains use it).
    Host(&'a str),
    /// Any domain record: stamped with every change of one (creation,
    /// cancellation), so a search answer notices matches it did not list.
    AnyDomain,
}

/// A key's slot in the table.
pub type Slot = u32;

impl Key<'_> {
    pub fn slot(&self) -> Slot {
        // Fixed keys: slots must agree between the writer and the reader,
        // not be secret (a collision costs a rebuild, nothing more).
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        (h.finish() as usize & (SLOTS - 1)) as Slot
    }
}

/// The changes one write transaction publishes when it commits.
#[derive(Debug, Default)]
pub struct Changes {
    slots: Vec<Slot>,
    /// Something changed that is not tracked per key: every answer goes.
    all: bool,
    /// The new `last update` time of the store, if the commit sets it.
    updated: Option<Timestamp>,
}

impl Changes {
    pub fn key(&mut self, k: Key<'_>) {
        self.slots.push(k.slot());
    }
    pub fn all(&mut self) {
        self.all = true;
    }
    pub fn updated(&mut self, at: Timestamp) {
        self.updated = Some(at);
    }
}

pub struct Stamps {
    generation: AtomicU64,
    /// Answers built before this generation are stale (a change not
    /// tracked per key).
    floor: AtomicU64,
    slots: Box<[AtomicU64]>,
    /// The store's `last update` time (whole seconds), mirrored so an
    /// answer can show it without a store read.
    updated: AtomicI64,
    /// Publishing is serialised so stamps and `updated` follow commit order.
    publish: Mutex<()>,
}

impl std::fmt::Debug for Stamps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stamps")
            .field("generation", &self.generation())
            .finish()
    }
}

impl Stamps {
    /// Stamps of a store last updated at `updated`.
    pub fn new(updated: Option<Timestamp>) -> Self {
        let slots = std::iter::repeat_with(|| AtomicU64::new(0))
            .take(SLOTS)
            .collect();
        Self {
            generation: AtomicU64::new(1),
            floor: AtomicU64::new(0),
            slots,
            updated: AtomicI64::new(updated.map_or(i64::MIN, |t| t.timestamp())),
            publish: Mutex::new(()),
        }
    }

    /// The generation to tag an answer with: read it before the store read.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The store's last update time, to the second (`None`: never written).
    pub fn updated(&self) -> Option<Timestamp> {
        match self.updated.load(Ordering::SeqCst) {
            i64::MIN => None,
            s => chrono::DateTime::from_timestamp(s, 0),
        }
    }

    /// Run `commit`; if it succeeds, publish `changes` before returning.
    pub fn commit<T, E>(
        &self,
        changes: Changes,
        commit: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let _order = self.publish.lock().unwrap_or_else(|p| p.into_inner());
        let out = commit()?;
        // The number first: a reader that sees it also sees the data, so an
        // answer tagged with it is current; an answer tagged before it is
        // then stale once its keys carry the number.
        let g = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        if changes.all {
            self.floor.fetch_max(g, Ordering::SeqCst);
        }
        for s in changes.slots {
            self.slots[s as usize].fetch_max(g, Ordering::SeqCst);
        }
        if let Some(t) = changes.updated {
            self.updated.store(t.timestamp(), Ordering::SeqCst);
        }
        Ok(out)
    }

    /// Whether an answer built from `slots` at generation `built` is
    /// still current.
    pub fn current(&self, slots: &[Slot], built: u64) -> bool {
        self.floor.load(Ordering::SeqCst) <= built
            && slots
                .iter()
                .all(|&s| self.slots[s as usize].load(Ordering::SeqCst) <= built)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_changed_keys_go_stale() {
        let s = Stamps::new(None);
        let a = [Key::Domain("a.ru").slot(), Key::Registrar("R1").slot()];
        let b = [Key::Domain("b.ru").slot(), Key::Registrar("R2").slot()];
        let g = s.generation();
        assert!(s.current(&a, g) && s.current(&b, g));
        let mut c = Changes::default();
        c.key(Key::Registrar("R1"));
        s.commit(c, || Ok::<_, ()>(())).unwrap();
        assert!(!s.current(&a, g));
        assert!(s.current(&b, g));
        // Built after the commit: current.
        assert!(s.current(&a, s.generation()));
        // A failed commit publishes nothing.
        let g = s.generation();
        let mut c = Changes::default();
        c.key(Key::Domain("b.ru"));
        assert!(s.commit(c, || Err::<(), _>(())).is_err());
        assert!(s.current(&b, g));
        // Untracked change: everything goes.
        let mut c = Changes::default();
        c.all();
        s.commit(c, || Ok::<_, ()>(())).unwrap();
        assert!(!s.current(&b, g));
    }

    #[test]
    fn updated_mirrors_the_last_commit() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let s = Stamps::new(None);
        assert_eq!(s.updated(), None);
        let mut c = Changes::default();
        c.updated(t);
        s.commit(c, || Ok::<_, ()>(())).unwrap();
        assert_eq!(s.updated(), Some(t));
    }
}
