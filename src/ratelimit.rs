//! Per-client rate limits shared by WHOIS, RDAP and the API (governor, GCRA).
//!
//! Clients are keyed by IPv4 address or IPv6 /64 (one subscriber usually
//! holds a whole /64, so keying by full address would be trivial to dodge).
//! Networks in the exemption list (registrars, monitoring) are never limited.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use ipnet::IpNet;

/// Holders at once per key (connections per client address, checks per
/// registrar): a slot is taken while the key holds fewer than `max`, and
/// given back when it is dropped.
pub struct Slots<K: Eq + Hash> {
    max: usize,
    held: Mutex<HashMap<K, usize>>,
}

/// One key's slot; given back on drop.
pub struct Slot<K: Eq + Hash> {
    owner: Arc<Slots<K>>,
    key: K,
}

impl<K: Eq + Hash> Slots<K> {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `key`, or `None` if it already holds `max`.
    pub fn try_acquire<Q>(self: &Arc<Self>, key: &Q) -> Option<Slot<K>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // Never held across an await; a panic elsewhere leaves counts usable.
        let mut m = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let n = m.get(key).copied().unwrap_or(0);
        if n >= self.max {
            return None;
        }
        m.insert(key.to_owned(), n + 1);
        Some(Slot {
            owner: self.clone(),
            key: key.to_owned(),
        })
    }

    /// Slots `key` holds now.
    pub fn held<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let m = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        m.get(key).copied().unwrap_or(0)
    }
}

impl<K: Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut m = self
            .owner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

pub struct ClientLimiter<C: Clock = DefaultClock> {
    limiter: RateLimiter<IpAddr, DashMapStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    exempt: Vec<IpNet>,
    clock: C,
}

/// The key a client is counted under.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::V6(o.into())
        }
    }
}

impl ClientLimiter<DefaultClock> {
    pub fn new(per_minute: u32, exempt: Vec<IpNet>) -> Self {
        Self::with_clock(per_minute, exempt, DefaultClock::default())
    }
}

impl<C: Clock + Clone> ClientLimiter<C> {
    /// `per_minute` requests a minute, in bursts of up to `per_minute`.
    pub fn with_clock(per_minute: u32, exempt: Vec<IpNet>, clock: C) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(n);
        Self {
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            exempt,
            clock,
        }
    }

    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.exempt.iter().any(|n| n.contains(&ip))
    }

    /// `Ok` if the client may go ahead; else how long until it may.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.is_exempt(ip) {
            return Ok(());
        }
        self.limiter
            .check_key(&client_key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forget clients whose allowance is full again (bounds memory); call
    /// it periodically.
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
    }

    /// Clients currently tracked.
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn limits_exempts_and_refills() {
        let clock = FakeRelativeClock::default();
        let l = ClientLimiter::with_clock(30, vec!["10.0.0.0/8".parse().unwrap()], clock.clone());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..30 {
            assert!(l.check(a).is_ok());
        }
        let wait = l.check(a).unwrap_err();
        assert!(
            wait <= Duration::from_secs(2) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another client is unaffected; an exempt one is never limited.
        assert!(l.check("192.0.2.2".parse().unwrap()).is_ok());
        for _ in 0..1000 {
            assert!(l.check("10.1.2.3".parse().unwrap()).is_ok());
        }
        clock.advance(Duration::from_secs(2));
        assert!(l.check(a).is_ok());
        clock.advance(Duration::from_secs(120));
        l.retain_recent();
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let l = ClientLimiter::new(2, vec![]);
        assert!(l.check("2001:db8::1".parse().unwrap()).is_ok());
        assert!(l.check("2001:db8::2".parse().unwrap()).is_ok());
        assert!(l.check("2001:db8::ffff:3".parse().unwrap()).is_err());
        assert!(l.check("2001:db8:0:1::1".parse().unwrap()).is_ok());
        assert_eq!(
            client_key("::ffff:192.0.2.9".parse().unwrap()),
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
    }
}
