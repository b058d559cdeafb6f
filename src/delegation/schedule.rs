//! When to look at a domain next: jitter and lifecycle instants (pure).

use chrono::Duration;

use crate::config::{Config, LifecycleConfig};
use crate::model::{Domain, Timestamp};

/// A deterministic spread in `[0, 1)` from a domain name and an instant,
/// so jitter is reproducible (tests) yet differs between domains.
pub fn spread(name: &str, t: Timestamp) -> f64 {
    // SplitMix64 over FNV-1a of the name, mixed with the instant.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h ^ (t.timestamp_millis() as u64);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// `t + interval`, spread by ±`jitter`/2 of the interval.
pub fn next_after(t: Timestamp, interval: Duration, jitter: f64, name: &str) -> Timestamp {
    let ms = interval.num_milliseconds() as f64;
    let delta = ms * (1.0 + jitter * (spread(name, t) - 0.5));
    t + Duration::milliseconds(delta.max(1.0) as i64)
}

/// The next instant after `now` at which the lifecycle status of `domain`
/// changes by time alone (expiry, release, verification deadlines), so
/// the scheduler can act on it then rather than at its next round.
pub fn next_lifecycle_change(
    domain: &Domain,
    now: Timestamp,
    cfg: &LifecycleConfig,
) -> Option<Timestamp> {
    let ms = Duration::milliseconds(1);
    let mut cands = vec![
        // `expired` is `now > paid_till`, release is `now > free_at`.
        domain.paid_till + ms,
        crate::lifecycle::free_at(domain, cfg) + ms,
    ];
    if let Some(asked) = domain.verification_requested {
        cands.push(asked + Config::chrono(cfg.verification_suspend));
        // Cancellation counts from the suspension (lifecycle::evaluate).
        cands.push(asked + Config::chrono(cfg.verification_suspend + cfg.verification_cancel));
    }
    if let Some(c) = &domain.registration.closing {
        cands.push(c.at);
    }
    cands.into_iter().filter(|t| *t > now).min()
}
