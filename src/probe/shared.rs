//! Facts that belong to a server address or to a name, not to a zone: measured
//! once and shared by every domain on that address (docs/delegation.md,
//! "What a round asks").
//!
//! [`TtlCache`] is the one cache behind them: bounded, time-expiring by the
//! caller's (injected) clock, single-flight — a thousand domains due at once
//! on one address wait for one measurement.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::answer::QueryResult;
use crate::model::Timestamp;

/// What the prober knows about one server address, whatever zone is asked:
/// does it answer plain DNS (no EDNS) over UDP, does it answer over TCP, is
/// it an open resolver. The SOA queries ask the zone of the domain whose
/// round measured the fact; only whether they were answered is shared.
#[derive(Debug, Clone)]
pub struct ServerProbe {
    /// When the measurement started (the scheduler's clock).
    pub measured_at: Timestamp,
    /// SOA over UDP without EDNS.
    pub plain_udp: QueryResult,
    /// SOA over TCP (with EDNS).
    pub tcp: QueryResult,
    /// RD=1 query for a name outside every zone.
    pub recursion: QueryResult,
}

struct Slot<V> {
    started: Timestamp,
    cell: Arc<OnceCell<V>>,
}

/// A bounded map of values filled once per key until they go stale.
pub struct TtlCache<K, V> {
    slots: Mutex<HashMap<K, Slot<V>>>,
    capacity: usize,
    /// Entries older than this are dropped first when the map is full.
    horizon: Duration,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize, horizon: Duration) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            horizon,
        }
    }

    /// The value of `key`: the stored one if `fresh(value, started)` says
    /// so, the one being measured right now if any (joined, not repeated),
    /// else a new one from `fill` (started at `now`).
    pub async fn get_or_fill<Fut>(
        &self,
        key: &K,
        now: Timestamp,
        fresh: impl Fn(&V, Timestamp) -> bool,
        fill: impl FnOnce() -> Fut,
    ) -> V
    where
        Fut: Future<Output = V>,
    {
        let cell = {
            let mut m = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let reuse = m.get(key).and_then(|s| match s.cell.get() {
                None => Some(s.cell.clone()),
                Some(v) if fresh(v, s.started) => Some(s.cell.clone()),
                Some(_) => None,
            });
            match reuse {
                Some(c) => c,
                None => {
                    if m.len() >= self.capacity && !m.contains_key(key) {
                        self.evict(&mut m, now);
                    }
                    let c = Arc::new(OnceCell::new());
                    m.insert(
                        key.clone(),
                        Slot {
                            started: now,
                            cell: c.clone(),
                        },
                    );
                    c
                }
            }
        };
        // A filler whose round is dropped leaves the cell empty: the next
        // waiter fills it instead.
        cell.get_or_init(fill).await.clone()
    }

    /// Make room: drop entries past the horizon, then (still full) every
    /// finished entry — rounds in flight keep their measurements.
    fn evict(&self, m: &mut HashMap<K, Slot<V>>, now: Timestamp) {
        let horizon = chrono::Duration::from_std(self.horizon).unwrap_or(chrono::Duration::MAX);
        m.retain(|_, s| s.cell.get().is_none() || now - s.started < horizon);
        if m.len() >= self.capacity {
            m.retain(|_, s| s.cell.get().is_none());
        }
    }

    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether something measured at `at` is still usable at `now`.
pub fn within(at: Timestamp, now: Timestamp, max_age: Duration) -> bool {
    let age = now - at;
    age >= chrono::Duration::zero() && age.to_std().is_ok_and(|a| a < max_age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn t(s: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    #[tokio::test]
    async fn one_fill_for_concurrent_callers_and_refill_when_stale() {
        let c: TtlCache<u32, usize> = TtlCache::new(8, Duration::from_secs(60));
        let fills = AtomicUsize::new(0);
        let fresh = |_: &usize, at: Timestamp| within(at, t(0), Duration::from_secs(10));
        let get = || {
            c.get_or_fill(&1, t(0), fresh, || async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                fills.fetch_add(1, Ordering::SeqCst) + 1
            })
        };
        let got = futures::future::join_all((0..1000).map(|_| get())).await;
        assert!(got.iter().all(|v| *v == 1));
        assert_eq!(fills.load(Ordering::SeqCst), 1);
        // Stale by the caller's clock: measured again.
        let v = c
            .get_or_fill(
                &1,
                t(20),
                |_, at| within(at, t(20), Duration::from_secs(10)),
                || async { 7 },
            )
            .await;
        assert_eq!(v, 7);
    }

    #[tokio::test]
    async fn bounded() {
        let c: TtlCache<u32, u32> = TtlCache::new(4, Duration::from_secs(60));
        for k in 0..100 {
            c.get_or_fill(&k, t(i64::from(k)), |_, _| true, || async { k })
                .await;
            assert!(c.len() <= 4, "{}", c.len());
        }
    }
}
