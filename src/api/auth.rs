//! Bearer-token authentication and per-token rate limits.
//!
//! Tokens are stored only as SHA-256 hex (`Registrar.api_token_sha256`).
//! The presented token is hashed and compared with every registrar's hash
//! in constant time. The registrar list is cached: reloaded every
//! [`CACHE_TTL`], and at most every [`MISS_RELOAD_MIN`] when a token does
//! not match (so a newly imported registrar works at once, while a flood of
//! bad tokens cannot turn into a flood of store reads). A revoked or
//! rotated token keeps working for at most [`CACHE_TTL`], on every front
//! end, whichever process made the change: one second, the same bound as
//! any other change between processes. One registrar-list read a second is
//! cheap next to the requests it serves.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::problem::Problem;
use crate::clock::SharedClock;
use crate::ratelimit::ClientLimiter;
use crate::store::Store;

pub const CACHE_TTL: Duration = Duration::from_secs(1);
pub const MISS_RELOAD_MIN: Duration = Duration::from_secs(1);
/// Longer `Authorization` values are refused without hashing.
const MAX_TOKEN_LEN: usize = 512;
/// Forget idle limiter keys every this many checks (bounds memory).
const RETAIN_EVERY: u64 = 4096;

struct Cache {
    loaded: Option<crate::model::Timestamp>,
    entries: Vec<(String, [u8; 32])>,
}

/// The registrars' token hashes, cached.
pub struct Tokens {
    store: Arc<dyn Store>,
    /// The registry's clock (tests move it instead of sleeping).
    clock: SharedClock,
    cache: RwLock<Cache>,
}

impl Tokens {
    pub fn new(store: Arc<dyn Store>, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            cache: RwLock::new(Cache {
                loaded: None,
                entries: Vec::new(),
            }),
        }
    }

    fn reload(&self) -> Result<(), crate::store::StoreError> {
        let mut entries = Vec::new();
        for r in self.store.registrars()? {
            let Some(h) = &r.api_token_sha256 else {
                continue;
            };
            let mut d = [0u8; 32];
            match hex::decode_to_slice(h.trim(), &mut d) {
                Ok(()) => entries.push((r.handle, d)),
                Err(_) => tracing::warn!(
                    registrar = %r.handle,
                    "api_token_sha256 is not 64 hex digits; the registrar cannot use the API"
                ),
            }
        }
        let mut c = self.cache.write().unwrap_or_else(|p| p.into_inner());
        c.entries = entries;
        c.loaded = Some(self.clock.now());
        Ok(())
    }

    /// Compare with every entry (no early exit), each in constant time.
    fn lookup(&self, digest: &[u8; 32]) -> (Option<String>, Option<crate::model::Timestamp>) {
        let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let mut found = None;
        for (handle, d) in &c.entries {
            let eq: bool = d.ct_eq(digest).into();
            if eq && found.is_none() {
                found = Some(handle.clone());
            }
        }
        (found, c.loaded)
    }

    /// The handle of the registrar holding `token`, if any.
    pub fn authenticate(&self, token: &str) -> Result<Option<String>, crate::store::StoreError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let (found, loaded) = self.lookup(&digest);
        // A clock that went backwards makes the cache stale, not immortal.
        let age = loaded.map(|t| (self.clock.now() - t).to_std().unwrap_or(CACHE_TTL));
        let stale = age.is_none_or(|a| a >= CACHE_TTL);
        match found {
            Some(h) if !stale => Ok(Some(h)),
            _ if stale || age.is_some_and(|a| a >= MISS_RELOAD_MIN) => {
                self.reload()?;
                Ok(self.lookup(&digest).0)
            }
            _ => Ok(None),
        }
    }
}

/// Per-token limits for authenticated calls; per-client-address limits for
/// calls without a valid token (they never reach a registrar's allowance).
pub struct Limits {
    per_token: RateLimiter<String, DashMapStateStore<String>, DefaultClock>,
    anonymous: ClientLimiter,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl Limits {
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            per_token: RateLimiter::dashmap(Quota::per_minute(n)),
            anonymous: ClientLimiter::new(per_minute, Vec::new()),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    fn tick(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.per_token.retain_recent();
            self.anonymous.retain_recent();
        }
    }

    pub fn check_token(&self, handle: &str) -> Result<(), Duration> {
        self.tick();
        self.per_token
            .check_key(&handle.to_string())
            .map_err(|n| n.wait_time_from(self.clock.now()))
    }

    pub fn check_anonymous(&self, ip: IpAddr) -> Result<(), Duration> {
        self.tick();
        self.anonymous.check(ip)
    }
}

/// The authenticated registrar of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub handle: String,
}

fn bearer(parts: &Parts) -> Result<&str, &'static str> {
    let v = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or("send Authorization: Bearer <token>")?;
    let v = v
        .to_str()
        .map_err(|_| "the Authorization header is not ASCII")?;
    let (scheme, token) = v
        .split_once(' ')
        .ok_or("send Authorization: Bearer <token>")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("only Bearer tokens are accepted");
    }
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err("the token is not valid");
    }
    Ok(token)
}

fn rate_limited(wait: Duration) -> Problem {
    metrics::counter!("zonekeeper_rate_limited_total", "service" => "api").increment(1);
    Problem::rate_limited(wait)
}

/// What authenticating a request needs of the API's state (implemented by
/// `ApiState`; this module does not name it, so it does not import its
/// parent).
pub trait Authenticates {
    fn tokens(&self) -> &Tokens;
    fn limits(&self) -> &Limits;
}

impl<S: Authenticates + Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let outcome = match bearer(parts) {
            Ok(token) => match state.tokens().authenticate(token) {
                Ok(Some(handle)) => Ok(handle),
                Ok(None) => Err("the token is not valid"),
                Err(e) => return Err(Problem::from(e)),
            },
            Err(why) => Err(why),
        };
        match outcome {
            Ok(handle) => {
                state.limits().check_token(&handle).map_err(rate_limited)?;
                Ok(Caller { handle })
            }
            Err(why) => {
                if let Some(ip) = ip {
                    state.limits().check_anonymous(ip).map_err(rate_limited)?;
                }
                Err(Problem::unauthorized(why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_limits_are_per_token() {
        let l = Limits::new(2);
        assert!(l.check_token("A").is_ok());
        assert!(l.check_token("A").is_ok());
        assert!(l.check_token("A").is_err());
        assert!(l.check_token("B").is_ok());
    }
}
