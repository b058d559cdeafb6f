//! What a registrar sees of its change feed: the API's `/events` and the
//! webhook deliveries render these, through the public projection of the
//! event's reason (no operator notes, no person's handle).

use serde::Serialize;

use crate::model::{DelegationState, Timestamp};
use crate::store::FeedEvent;

/// One feed event as its registrar sees it.
#[derive(Debug, Serialize)]
pub struct FeedEntry {
    pub cursor: String,
    pub at: Timestamp,
    pub domain: String,
    pub actor: String,
    pub from: Option<DelegationState>,
    pub to: DelegationState,
    pub reason: String,
}

impl FeedEntry {
    pub fn of(e: FeedEvent) -> Self {
        FeedEntry {
            cursor: e.seq.to_string(),
            at: e.at,
            domain: e.domain,
            actor: e.actor,
            from: e.from,
            to: e.to,
            reason: crate::public::event_reason(&e.reason),
        }
    }
}
