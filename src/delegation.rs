//! The delegation state machine's pure transitions that writers share:
//! declaring an NS set and asking for a retest. The scheduler adds the
//! transitions driven by probe rounds.

use crate::model::{
    ns_fingerprint, DelegationRecord, DelegationState, HistoryEvent, Nameserver, Timestamp,
};

/// The record after `ns` is declared, or `None` when the set is unchanged
/// (re-importing the same set leaves the state as it is).
pub fn on_declared(
    old: Option<&DelegationRecord>,
    ns: &[Nameserver],
    now: Timestamp,
    window: chrono::Duration,
) -> Option<(DelegationRecord, HistoryEvent)> {
    let fp = ns_fingerprint(ns);
    if let Some(old) = old {
        if old.ns_fingerprint == fp {
            return None;
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
            format!(
                "nameservers declared: {}",
                ns.iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
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

/// A fresh test window for the current NS set.
pub fn on_retest(
    old: &DelegationRecord,
    now: Timestamp,
    window: chrono::Duration,
) -> Result<(DelegationRecord, HistoryEvent), RetestError> {
    match old.state {
        DelegationState::Undelegated => Err(RetestError::NoNameservers),
        DelegationState::Delegated => Err(RetestError::AlreadyDelegated),
        DelegationState::Testing | DelegationState::TestFailed | DelegationState::Suspended => {
            let rec = DelegationRecord::testing(old.ns_fingerprint.clone(), now, window);
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
