//! What every RDAP handler shares: the process handle, the rate limiter,
//! and the context an answer is rendered in.

use std::sync::Arc;

use super::error::RdapError;
use super::view::Ctx;
use crate::answer_cache::Answers;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::model::Timestamp;
use crate::names::Zones;
use crate::ratelimit::ClientLimiter;
use crate::store::Store;

/// What the RDAP server uses of the process, and nothing else (built by
/// [`crate::app::App::rdap`]).
#[derive(Clone)]
pub struct Deps {
    /// `rdap.*` (limits, base URL, search limit) and `lifecycle.*`.
    pub config: Arc<Config>,
    pub zones: Zones,
    pub store: Arc<dyn Store>,
    pub clock: SharedClock,
    /// Cached answers and facts, shared with WHOIS.
    pub answers: Arc<Answers>,
}

impl Deps {
    pub(super) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(super) fn last_update_shown(&self, now: Timestamp) -> crate::store::Result<Timestamp> {
        self.answers.last_update_shown(self.store.as_ref(), now)
    }
}

pub(super) struct Rdap {
    pub(super) deps: Deps,
    pub(super) limiter: ClientLimiter,
}

pub(super) type Shared = Arc<Rdap>;

// ---- context ------------------------------------------------------------

/// The base URL for links: `rdap.base_url`, else derived from the HTTP
/// listen address (a development setup). Never from the request's Host
/// header, which any client sets: links in answers (and in caches between
/// the client and us) would point wherever it said.
pub(super) fn base_url(st: &Rdap) -> String {
    crate::config::rdap_base_url(&st.deps.config)
}

pub(super) fn ctx(st: &Rdap) -> Result<Ctx, RdapError> {
    ctx_at(st, st.deps.now())
}

pub(super) fn ctx_at(st: &Rdap, now: crate::model::Timestamp) -> Result<Ctx, RdapError> {
    Ok(Ctx {
        base: base_url(st),
        now,
        db_updated: st.deps.last_update_shown(now)?,
    })
}
