//! The EPP edge's guards before a session does anything: connections per
//! client address (counted as TCP accepts, before TLS) and the back-off of
//! failed logins per registrar ID and per address (docs/epp.md, "Limits").

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Duration;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::model::Timestamp;
use crate::ratelimit::{Slot, Slots};

/// The client a connection counts against: an IPv4 address, or an IPv6
/// /64 (one host usually holds a whole /64).
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Connections open per client address.
pub struct ConnLimit {
    slots: Arc<Slots<IpAddr>>,
}

/// One counted connection; dropping it frees the address's slot.
pub type ConnSlot = Slot<IpAddr>;

impl ConnLimit {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Slots::new(max.max(1)),
        })
    }

    /// Count a connection from `ip`, unless it holds `max` already.
    pub fn take(&self, ip: IpAddr) -> Option<ConnSlot> {
        self.slots.try_acquire(&client_of(ip))
    }
}

/// Failed logins tolerated per key before the back-off starts (a typo,
/// a client trying its old password first).
pub const FREE_FAILURES: u32 = 3;
/// From this many failures, every login of the key is refused for
/// [`LOCK_SECS`] after the last one.
pub const LOCK_AFTER: u32 = 10;
pub const LOCK_SECS: i64 = 15 * 60;
/// The longest growing delay (below [`LOCK_AFTER`]).
pub const MAX_DELAY_SECS: i64 = 60;
/// A key with no failure for this long starts afresh.
pub const FORGET_SECS: i64 = 60 * 60;
/// Keys remembered at most (the oldest are dropped beyond).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Timestamp,
}

impl Failures {
    /// When the key may try again.
    fn next_try(&self) -> Timestamp {
        let wait = if self.count >= LOCK_AFTER {
            LOCK_SECS
        } else if self.count >= FREE_FAILURES {
            (1i64 << (self.count - FREE_FAILURES).min(6)).min(MAX_DELAY_SECS)
        } else {
            0
        };
        self.last + Duration::seconds(wait)
    }
}

/// Failed logins per key (`id:HANDLE`, `ip:ADDRESS`), on the app's clock.
#[derive(Default)]
pub struct LoginThrottle {
    keys: Mutex<HashMap<String, Failures>>,
}

impl LoginThrottle {
    /// `Err(until)`: one of `keys` is backing off; refuse without trying.
    pub fn check(&self, keys: &[String], now: Timestamp) -> Result<(), Timestamp> {
        let m = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let until = keys
            .iter()
            .filter_map(|k| m.get(k))
            .filter(|f| now - f.last < Duration::seconds(FORGET_SECS))
            .map(Failures::next_try)
            .max();
        match until {
            Some(t) if t > now => Err(t),
            _ => Ok(()),
        }
    }

    /// A login with `keys` failed.
    pub fn failed(&self, keys: &[String], now: Timestamp) {
        let mut m = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() >= MAX_KEYS {
            m.retain(|_, f| now - f.last < Duration::seconds(FORGET_SECS));
        }
        for k in keys {
            let f = m.entry(k.clone()).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now - f.last >= Duration::seconds(FORGET_SECS) {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
        }
    }

    /// A login with `keys` succeeded: they start afresh.
    pub fn succeeded(&self, keys: &[String]) {
        let mut m = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        for k in keys {
            m.remove(k);
        }
    }
}

/// Shared state of the EPP server: sessions open per registrar (the
/// app's, for the dashboard), the per-registrar command rate.
pub struct Shared {
    pub sessions: Arc<crate::sessions::Sessions>,
    pub limiter: DefaultKeyedRateLimiter<String>,
    /// Failed logins per registrar ID and per client address.
    pub logins: LoginThrottle,
}

impl Shared {
    pub(super) fn new(sessions: Arc<crate::sessions::Sessions>, per_minute: u32) -> Self {
        let q = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN));
        Self {
            sessions,
            limiter: RateLimiter::keyed(q),
            logins: LoginThrottle::default(),
        }
    }
    /// Count a new session of `registrar` if it is under `cap`.
    pub fn open(&self, registrar: &str, cap: usize) -> bool {
        let opened = self.sessions.open(registrar, cap);
        if opened {
            metrics::gauge!("zonekeeper_epp_sessions").increment(1.0);
        }
        opened
    }
    pub fn close(&self, registrar: &str) {
        if self.sessions.close(registrar) {
            metrics::gauge!("zonekeeper_epp_sessions").decrement(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_delay_grows_then_locks() {
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let th = LoginThrottle::default();
        let k = vec!["id:X".to_string()];
        for _ in 0..FREE_FAILURES - 1 {
            th.failed(&k, t0);
        }
        assert!(th.check(&k, t0).is_ok());
        th.failed(&k, t0);
        assert_eq!(th.check(&k, t0), Err(t0 + Duration::seconds(1)));
        assert!(th.check(&k, t0 + Duration::seconds(1)).is_ok());
        th.failed(&k, t0);
        assert_eq!(th.check(&k, t0), Err(t0 + Duration::seconds(2)));
        for _ in 0..LOCK_AFTER {
            th.failed(&k, t0);
        }
        assert_eq!(th.check(&k, t0), Err(t0 + Duration::seconds(LOCK_SECS)));
        // Another key is not affected; success clears.
        assert!(th.check(&["ip:1".to_string()], t0).is_ok());
        th.succeeded(&k);
        assert!(th.check(&k, t0).is_ok());
    }

    #[test]
    fn connections_per_address() {
        let l = ConnLimit::new(2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = l.take(ip).unwrap();
        let _b = l.take(ip).unwrap();
        assert!(l.take(ip).is_none());
        assert!(l.take("127.0.0.2".parse().unwrap()).is_some());
        drop(a);
        assert!(l.take(ip).is_some());
        // One IPv6 /64 is one client.
        let _c = l.take("2001:db8::1".parse().unwrap()).unwrap();
        let _d = l.take("2001:db8::2".parse().unwrap()).unwrap();
        assert!(l.take("2001:db8::3".parse().unwrap()).is_none());
        assert!(l.take("2001:db8:0:1::3".parse().unwrap()).is_some());
    }
}
