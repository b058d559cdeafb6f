//! Writer-driven transitions: a set declared, a retest asked (the API,
//! EPP, import and the control socket share these).

use super::*;

/// The record after `ns` with DS set `ds` is declared (the domain's
/// previous sets were `old_ns`, `old_ds`), or `None` when neither changed
/// (re-importing the same sets leaves the state as it is). A DS change is
/// tested like an NS change.
///
/// A delegated domain keeps its delegation while a new set is tested: the
/// record stays `delegated` on the old NS and DS sets (kept in `published`
/// and `published_ds`) with the new one `pending`; declaring the published set again withdraws the
/// change. Any other state starts a fresh test of the new set.
pub fn on_declared(
    old: Option<&DelegationRecord>,
    (old_ns, old_ds): (&[Nameserver], &[DsRecord]),
    (ns, ds): (&[Nameserver], &[DsRecord]),
    now: Timestamp,
    window: chrono::Duration,
) -> Option<(DelegationRecord, HistoryEvent)> {
    let fp = delegation_fingerprint(ns, ds);
    if let Some(old) = old {
        if old.declared_fingerprint() == fp {
            return None;
        }
        if old.state == DelegationState::Delegated && old.blocked.is_empty() && !ns.is_empty() {
            let mut r = old.clone();
            let zone_ns = if old.published.is_empty() {
                old_ns
            } else {
                &old.published
            };
            let reason = if ds.is_empty()
                && !old.zone_ds(old_ds).is_empty()
                && ns_fingerprint(ns) == ns_fingerprint(zone_ns)
            {
                // Removing the DS set (same servers) is always safe for
                // resolution: the delegation goes insecure at once.
                r.ns_fingerprint = fp;
                r.pending = None;
                r.published = Vec::new();
                r.published_ds = Vec::new();
                "DS set removed: the delegation is published unsigned".to_string()
            } else if old.ns_fingerprint == fp {
                r.pending = None;
                r.published = Vec::new();
                r.published_ds = Vec::new();
                "nameserver change withdrawn: the set in the zone is declared again".to_string()
            } else {
                if r.published.is_empty() {
                    r.published = old_ns.to_vec();
                    r.published_ds = old_ds.to_vec();
                }
                r.pending = Some(Box::new(DelegationRecord::testing(fp, now, window)));
                format!(
                    "nameserver change declared: {}; tested while the zone keeps {}",
                    set_text(ns, ds),
                    set_text(&r.published, &r.published_ds)
                )
            };
            let ev = event(old.state, old.state, now, reason);
            return Some((r, ev));
        }
    }
    let from = old.map(|o| o.state);
    let (rec, reason) = if ns.is_empty() {
        (
            DelegationRecord::undelegated(now),
            "nameservers removed".to_string(),
        )
    } else {
        (
            DelegationRecord::testing(fp, now, window),
            format!("nameservers declared: {}", set_text(ns, ds)),
        )
    };
    let ev = HistoryEvent {
        at: now,
        from,
        to: rec.state,
        reason,
    };
    Some((rec, ev))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetestError {
    #[error("the domain has no nameservers to test")]
    NoNameservers,
    #[error("the domain is delegated; monitoring is already running")]
    AlreadyDelegated,
}

/// A fresh test window for the current NS set (for a delegated domain
/// with a pending change: for the pending set).
pub fn on_retest(
    old: &DelegationRecord,
    now: Timestamp,
    window: chrono::Duration,
) -> Result<(DelegationRecord, HistoryEvent), RetestError> {
    match old.state {
        DelegationState::Undelegated => Err(RetestError::NoNameservers),
        DelegationState::Delegated => {
            let Some(p) = &old.pending else {
                return Err(RetestError::AlreadyDelegated);
            };
            let mut r = old.clone();
            r.pending = Some(Box::new(DelegationRecord::testing(
                p.ns_fingerprint.clone(),
                now,
                window,
            )));
            let ev = event(
                old.state,
                old.state,
                now,
                "retest of the pending nameserver change requested".into(),
            );
            Ok((r, ev))
        }
        DelegationState::Testing | DelegationState::TestFailed | DelegationState::Suspended => {
            let rec =
                DelegationRecord::testing(old.declared_fingerprint().to_string(), now, window);
            let ev = HistoryEvent {
                at: now,
                from: Some(old.state),
                to: DelegationState::Testing,
                reason: "retest requested".into(),
            };
            Ok((rec, ev))
        }
    }
}
