//! The due-queue: every domain the scheduler looks after, ordered by the
//! time it is next due. A binary heap of `(due, slot)` with lazy deletion
//! (a slot's current due time is the truth; heap entries that disagree are
//! stale and skipped), plus a name → slot map for wakes. About 100 bytes
//! per domain, so a million domains fit in ~100 MB.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use crate::model::DelegationState;

/// No due time: the domain is known but waits for an outside change.
pub const NEVER: i64 = i64::MAX;

#[derive(Debug)]
struct Slot {
    name: Arc<str>,
    /// Milliseconds since the epoch, or [`NEVER`].
    due: i64,
    in_flight: bool,
    /// Changed outside the scheduler while its round was in flight.
    dirty: bool,
    /// State as last seen (lets a bare wake find state changes cheaply).
    state: DelegationState,
}

#[derive(Debug, Default)]
pub struct Queue {
    ids: HashMap<Arc<str>, u32>,
    slots: Vec<Slot>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    scheduled: usize,
}

impl Queue {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            ids: HashMap::with_capacity(n),
            slots: Vec::with_capacity(n),
            heap: BinaryHeap::with_capacity(n),
            scheduled: 0,
        }
    }

    /// Domains known.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Domains with a due time (in flight ones excluded).
    pub fn scheduled(&self) -> usize {
        self.scheduled
    }

    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: u32) -> Arc<str> {
        self.slots[id as usize].name.clone()
    }

    pub fn state(&self, id: u32) -> DelegationState {
        self.slots[id as usize].state
    }

    pub fn due(&self, id: u32) -> i64 {
        self.slots[id as usize].due
    }

    pub fn in_flight(&self, id: u32) -> bool {
        self.slots[id as usize].in_flight
    }

    fn count(&mut self, old: i64, new: i64) {
        match (old == NEVER, new == NEVER) {
            (true, false) => self.scheduled += 1,
            (false, true) => self.scheduled -= 1,
            _ => {}
        }
    }

    /// Insert or update a domain that is not in flight.
    pub fn set(&mut self, name: &str, due: i64, state: DelegationState) -> u32 {
        let id = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                let name: Arc<str> = Arc::from(name);
                self.slots.push(Slot {
                    name: name.clone(),
                    due: NEVER,
                    in_flight: false,
                    dirty: false,
                    state,
                });
                self.ids.insert(name, id);
                id
            }
        };
        let s = &mut self.slots[id as usize];
        s.state = state;
        if s.in_flight {
            s.dirty = true;
            return id;
        }
        let old = s.due;
        s.due = due;
        self.count(old, due);
        if due != NEVER && due != old {
            self.heap.push(Reverse((due, id)));
            self.compact();
        }
        id
    }

    /// Ask for a fresh look at `name` by `due` (sooner wins); a domain in
    /// flight is marked dirty and looked at when its round ends.
    pub fn poke(&mut self, name: &str, due: i64) -> u32 {
        match self.ids.get(name) {
            Some(&id) => {
                let s = &self.slots[id as usize];
                if s.in_flight {
                    self.slots[id as usize].dirty = true;
                    id
                } else {
                    let d = s.due.min(due);
                    let st = s.state;
                    self.set(name, d, st)
                }
            }
            None => self.set(name, due, DelegationState::Testing),
        }
    }

    /// The earliest due time, dropping stale heap entries.
    pub fn next_due(&mut self) -> Option<i64> {
        while let Some(&Reverse((due, id))) = self.heap.peek() {
            let s = &self.slots[id as usize];
            if s.in_flight || s.due != due {
                self.heap.pop();
                continue;
            }
            return Some(due);
        }
        None
    }

    /// Take the earliest domain due at or before `now`; it is in flight
    /// until [`Queue::finish`].
    pub fn pop_due(&mut self, now: i64) -> Option<(u32, i64)> {
        let due = self.next_due()?;
        if due > now {
            return None;
        }
        let Reverse((due, id)) = self.heap.pop()?;
        let s = &mut self.slots[id as usize];
        s.in_flight = true;
        s.dirty = false;
        s.due = NEVER;
        self.scheduled -= 1;
        Some((id, due))
    }

    /// A round ended: schedule the domain at `due`. Returns whether it
    /// was changed from outside meanwhile (the caller then looks again).
    pub fn finish(&mut self, id: u32, due: i64, state: Option<DelegationState>) -> bool {
        let s = &mut self.slots[id as usize];
        s.in_flight = false;
        let dirty = std::mem::take(&mut s.dirty);
        if let Some(st) = state {
            s.state = st;
        }
        let name = s.name.clone();
        let st = s.state;
        self.set(&name, due, st);
        dirty
    }

    /// Rebuild the heap when stale entries dominate it.
    fn compact(&mut self) {
        if self.heap.len() > 2 * self.slots.len() + 1024 {
            let live: Vec<Reverse<(i64, u32)>> = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.in_flight && s.due != NEVER)
                .map(|(i, s)| Reverse((s.due, i as u32)))
                .collect();
            self.heap = BinaryHeap::from(live);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DelegationState::*;

    #[test]
    fn orders_by_due_and_updates_lazily() {
        let mut q = Queue::default();
        q.set("b.ru", 20, Testing);
        q.set("a.ru", 10, Testing);
        q.set("c.ru", NEVER, TestFailed);
        assert_eq!((q.len(), q.scheduled()), (3, 2));
        // Move b before a: the old heap entry goes stale.
        q.set("b.ru", 5, Testing);
        assert_eq!(q.next_due(), Some(5));
        assert_eq!(q.pop_due(4), None);
        let (b, _) = q.pop_due(5).unwrap();
        assert_eq!(&*q.name(b), "b.ru");
        assert!(q.in_flight(b));
        // A poke while in flight marks it dirty, not rescheduled.
        q.poke("b.ru", 0);
        assert_eq!(q.next_due(), Some(10));
        assert!(q.finish(b, 100, Some(Delegated)));
        assert_eq!(q.state(b), Delegated);
        let (a, _) = q.pop_due(1000).unwrap();
        assert_eq!(&*q.name(a), "a.ru");
        let (b2, _) = q.pop_due(1000).unwrap();
        assert_eq!(&*q.name(b2), "b.ru");
        assert_eq!(q.pop_due(i64::MAX - 1), None);
        // A poke of an unknown name adds it; of a known one, sooner wins.
        q.poke("d.ru", 50);
        q.finish(a, 70, None);
        q.poke("a.ru", 80);
        assert_eq!(q.due(q.id("a.ru").unwrap()), 70);
        assert_eq!(q.scheduled(), 2);
    }

    #[test]
    fn compacts_stale_entries() {
        let mut q = Queue::default();
        q.set("a.ru", 1, Testing);
        for i in 0..5000 {
            q.set("a.ru", i + 2, Testing);
        }
        assert!(q.heap.len() < 2000);
        assert_eq!(q.next_due(), Some(5001));
    }
}
