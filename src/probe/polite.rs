//! Politeness to shared hosters: per server address at most
//! `probe.per_address_qps` queries a second and `probe.per_address_tcp` TCP
//! connections at once. A cap that binds makes the query wait (before its
//! timeout starts), never fail: a burst of rounds on one hoster spreads out
//! instead of making a healthy server look down (docs/delegation.md).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Addresses that get their own `address` label on the throttle counter;
/// later ones are counted under `address="other"` (bounded cardinality).
pub const MAX_LABELLED_ADDRESSES: usize = 64;

/// Keyed limiter entries kept before idle ones are pruned.
const PRUNE_AT: usize = 65_536;

pub struct Polite {
    qps: Option<DefaultKeyedRateLimiter<SocketAddr>>,
    /// Per address: the queue of queries waiting for its rate (one at a
    /// time asks the limiter, in arrival order).
    gates: Mutex<HashMap<SocketAddr, Weak<Semaphore>>>,
    tcp_cap: usize,
    tcp: Mutex<HashMap<SocketAddr, Weak<Semaphore>>>,
    labelled: Mutex<HashSet<SocketAddr>>,
    waited_us: AtomicU64,
}

tokio::task_local! {
    /// The scheduler round this task runs: (its queries waiting for a
    /// cap, the scheduler's count of rounds waiting).
    static ROUND: (Arc<AtomicUsize>, Arc<AtomicUsize>);
}

/// Run `round` as one scheduler round: while any of its queries waits for
/// a per-address cap, the round counts in `waiting`, so the scheduler can
/// give its slot (`delegation.max_concurrent_rounds`) to a round on
/// another hoster instead of letting one capped hoster hold them all.
pub async fn in_round<F: std::future::Future>(waiting: Arc<AtomicUsize>, round: F) -> F::Output {
    ROUND
        .scope((Arc::new(AtomicUsize::new(0)), waiting), round)
        .await
}

/// Marks the current round as waiting while held.
struct Waiting(Option<(Arc<AtomicUsize>, Arc<AtomicUsize>)>);

impl Waiting {
    fn start() -> Waiting {
        let r = ROUND.try_with(|r| r.clone()).ok();
        if let Some((mine, all)) = &r {
            if mine.fetch_add(1, Ordering::Relaxed) == 0 {
                all.fetch_add(1, Ordering::Relaxed);
            }
        }
        Waiting(r)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some((mine, all)) = &self.0 {
            if mine.fetch_sub(1, Ordering::Relaxed) == 1 {
                all.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// Held for the duration of one TCP exchange.
pub struct TcpSlot(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

/// The process's caps for `(qps, tcp)`: every prober built with the same
/// caps (the scheduler's, the API's, the CDS scanner's) shares one, so
/// the caps hold per address for the whole process.
pub fn shared(qps: u32, tcp: usize) -> Arc<Polite> {
    type Caps = (u32, usize);
    static ALL: Mutex<Vec<(Caps, Weak<Polite>)>> = Mutex::new(Vec::new());
    let mut all = ALL.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|(_, w)| w.strong_count() > 0);
    if let Some(p) = all
        .iter()
        .find(|(k, _)| *k == (qps, tcp))
        .and_then(|(_, w)| w.upgrade())
    {
        return p;
    }
    let p = Arc::new(Polite::new(qps, tcp));
    all.push(((qps, tcp), Arc::downgrade(&p)));
    p
}

/// At most `n` queries in any one-second window, not just on average: a
/// burst of `b` (a twentieth of a second's worth) at once, then one every
/// 1/(n − b) s, so that b + (n − b) × 1 s ≤ n.
fn quota(n: NonZeroU32) -> Quota {
    let burst = (n.get() / 20).max(1);
    let steady = n.get().saturating_sub(burst).max(1);
    let period = Duration::from_secs(1) / steady;
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(n))
        .allow_burst(burst)
}

/// `addr`'s semaphore of `permits` in `map`, made when none is held.
fn semaphore(
    map: &Mutex<HashMap<SocketAddr, Weak<Semaphore>>>,
    addr: SocketAddr,
    permits: usize,
) -> Arc<Semaphore> {
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    if m.len() > PRUNE_AT {
        m.retain(|_, w| w.strong_count() > 0);
    }
    match m.get(&addr).and_then(Weak::upgrade) {
        Some(s) => s,
        None => {
            let s = Arc::new(Semaphore::new(permits));
            m.insert(addr, Arc::downgrade(&s));
            s
        }
    }
}

impl Polite {
    /// `qps == 0` or `tcp == 0`: that cap is off.
    pub fn new(qps: u32, tcp: usize) -> Self {
        let qps = NonZeroU32::new(qps).map(|n| RateLimiter::keyed(quota(n)));
        Self {
            qps,
            gates: Mutex::new(HashMap::new()),
            tcp_cap: tcp,
            tcp: Mutex::new(HashMap::new()),
            labelled: Mutex::new(HashSet::new()),
            waited_us: AtomicU64::new(0),
        }
    }

    /// Total time queries have waited for a cap, since start.
    pub fn waited(&self) -> Duration {
        Duration::from_micros(self.waited_us.load(Ordering::Relaxed))
    }

    /// Wait until one more packet (a query, a UDP re-send, a TCP
    /// reconnect's query) may be sent to `addr`. Returns the time waited.
    pub async fn query_slot(&self, addr: SocketAddr) -> Duration {
        let Some(l) = &self.qps else {
            return Duration::ZERO;
        };
        if l.len() > PRUNE_AT {
            l.retain_recent();
        }
        if l.check_key(&addr).is_ok() {
            return Duration::ZERO;
        }
        let start = Instant::now();
        let _w = Waiting::start();
        // Waiters queue (FIFO) and only the head waits on the limiter: all
        // of them waiting on it would all wake for every permit, a cost
        // that grows with the square of a capped hoster's backlog.
        let gate = semaphore(&self.gates, addr, 1);
        let _turn = gate.acquire().await;
        l.until_key_ready(&addr).await;
        self.throttled(addr, start.elapsed())
    }

    /// Wait for one of `addr`'s TCP connection slots.
    pub async fn tcp_slot(&self, addr: SocketAddr) -> (TcpSlot, Duration) {
        if self.tcp_cap == 0 {
            return (TcpSlot(None), Duration::ZERO);
        }
        let sem = semaphore(&self.tcp, addr, self.tcp_cap);
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return (TcpSlot(Some(p)), Duration::ZERO);
        }
        let start = Instant::now();
        let _w = Waiting::start();
        // The semaphore is never closed.
        let p = sem.acquire_owned().await.ok();
        (TcpSlot(p), self.throttled(addr, start.elapsed()))
    }

    fn throttled(&self, addr: SocketAddr, waited: Duration) -> Duration {
        let label = {
            let mut l = self.labelled.lock().unwrap_or_else(|e| e.into_inner());
            if l.contains(&addr) || l.len() < MAX_LABELLED_ADDRESSES {
                l.insert(addr);
                super::answer::show_addr(addr)
            } else {
                "other".to_string()
            }
        };
        metrics::counter!("zonekeeper_probe_throttled_total", "address" => label).increment(1);
        metrics::histogram!("zonekeeper_probe_throttle_wait_seconds").record(waited.as_secs_f64());
        self.waited_us.fetch_add(
            u64::try_from(waited.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rate_cap_waits_instead_of_failing() {
        let p = Polite::new(100, 2);
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:53".parse().unwrap();
        let start = Instant::now();
        for _ in 0..30 {
            p.query_slot(a).await;
        }
        // 5 at once, then 95/s: 25 more take about 0.26 s.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        // Another address is not held back by the first one's cap.
        let start = Instant::now();
        p.query_slot(b).await;
        assert!(start.elapsed() < Duration::from_millis(50));
        assert!(p.waited() > Duration::ZERO);
    }

    #[tokio::test]
    async fn no_second_holds_more_than_the_cap() {
        let p = Polite::new(200, 0);
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let start = Instant::now();
        let mut sent = Vec::new();
        while start.elapsed() < Duration::from_millis(1500) {
            p.query_slot(a).await;
            sent.push(start.elapsed());
        }
        // Every window of one second, starting at any send.
        for (i, t) in sent.iter().enumerate() {
            let within = sent[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(within <= 200, "{within} sends in the second after {t:?}");
        }
        assert!(sent.len() > 250, "{} sends in 1.5 s", sent.len());
    }

    #[tokio::test]
    async fn a_round_waiting_for_a_cap_is_counted_while_it_waits() {
        let p = Arc::new(Polite::new(20, 0));
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let waiting = Arc::new(AtomicUsize::new(0));
        let (p2, w2) = (p.clone(), waiting.clone());
        let round = tokio::spawn(in_round(w2, async move {
            // Two queries of one round wait at once: one round waiting.
            let q = || async {
                for _ in 0..3 {
                    p2.query_slot(a).await;
                }
            };
            tokio::join!(q(), q());
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(waiting.load(Ordering::Relaxed), 1);
        round.await.unwrap();
        assert_eq!(waiting.load(Ordering::Relaxed), 0);
        // Outside a round nothing is counted.
        p.query_slot(a).await;
        assert_eq!(waiting.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn tcp_cap_bounds_connections_per_address() {
        let p = Arc::new(Polite::new(0, 2));
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let (s1, _) = p.tcp_slot(a).await;
        let (_s2, _) = p.tcp_slot(a).await;
        let p2 = p.clone();
        let third = tokio::spawn(async move { p2.tcp_slot(a).await.1 });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!third.is_finished());
        drop(s1);
        let waited = third.await.unwrap();
        assert!(waited >= Duration::from_millis(20), "{waited:?}");
    }
}
