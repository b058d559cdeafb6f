//! Registration lifecycle (SPEC §1): a pure function of the domain record,
//! the time and the configured periods. Nothing here touches the store.

use chrono::{Months, NaiveDate};
use serde::Serialize;

use crate::config::{Config, LifecycleConfig};
use crate::model::{Domain, Timestamp};

/// Why a domain must not be in the zone, whatever its nameservers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Block {
    /// Past `paid_till`, within the grace period.
    Expired,
    /// Dispute hold.
    Hold,
    /// Verification request unanswered past the suspension period.
    VerificationOverdue,
}

impl Block {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Hold => "hold",
            Self::VerificationOverdue => "verification overdue",
        }
    }
}

/// Why a registration no longer exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cancelled {
    /// Not renewed by `free_date`.
    NotRenewed,
    /// Verification request unanswered past the cancellation period.
    VerificationUnanswered,
    /// Early cancellation at the registrant's request.
    Closed,
    /// Cancelled by a court decision (the name is reserved for the claimant).
    Court,
}

impl Cancelled {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRenewed => "not renewed",
            Self::VerificationUnanswered => "verification unanswered",
            Self::Closed => "closed at the registrant's request",
            Self::Court => "court decision",
        }
    }
}

/// The lifecycle status of a domain at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `Some` when the registration is cancelled: the name is free.
    pub cancelled: Option<Cancelled>,
    /// Past `paid_till` (and not cancelled): renewable until `free_date`.
    pub expired: bool,
    pub free_date: NaiveDate,
    pub hold: bool,
    /// A verification request is pending.
    pub verification_pending: bool,
    /// Transfer to another registrar is locked until then.
    pub transfer_locked_until: Option<Timestamp>,
    /// Registrant change and early cancellation are locked until then
    /// (after an acquisition from another person or a registrar change).
    pub registrant_locked_until: Option<Timestamp>,
    /// Operator dispute lock: status quo frozen, stays delegated.
    pub dispute: bool,
    /// Early cancellation scheduled for this instant (revocable until then).
    pub closing_at: Option<Timestamp>,
    /// A registrar change waits for the losing registrar.
    pub transfer_pending: bool,
    /// Reasons the domain must be out of the zone (empty: may be delegated).
    pub blocks: Vec<Block>,
}

impl Status {
    /// The registration exists (WHOIS/RDAP show it).
    pub fn exists(&self) -> bool {
        self.cancelled.is_none()
    }
    /// Delegation is allowed by the lifecycle.
    pub fn may_delegate(&self) -> bool {
        self.exists() && self.blocks.is_empty()
    }
    /// Changes by the registrar (nameservers, transfer) are refused.
    pub fn changes_locked(&self) -> bool {
        self.hold || !self.exists()
    }
    /// EPP/RDAP status values of the locks in force (RFC 5731 / RFC 8056
    /// names; RDAP maps them to its registry).
    pub fn lock_statuses(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.hold {
            v.push("server hold");
        }
        if self.hold || self.dispute {
            v.push("server transfer prohibited");
            v.push("server update prohibited");
            v.push("server delete prohibited");
        } else {
            if self.transfer_locked_until.is_some() {
                v.push("client transfer prohibited");
            }
            if self.registrant_locked_until.is_some() {
                v.push("client delete prohibited");
            }
        }
        if self.transfer_pending {
            v.push("pending transfer");
        }
        if self.closing_at.is_some() {
            v.push("pending delete");
        }
        v
    }
}

fn dur(d: std::time::Duration) -> chrono::Duration {
    Config::chrono(d)
}

/// `paid_till` + grace: after this instant the name is free.
pub fn free_at(domain: &Domain, cfg: &LifecycleConfig) -> Timestamp {
    domain.paid_till + dur(cfg.grace_period)
}

/// Evaluate the lifecycle of `domain` at `now`.
///
/// An operator's hold or dispute lock stops every timed cancellation: only
/// the operator ends them, never the clock.
pub fn evaluate(domain: &Domain, now: Timestamp, cfg: &LifecycleConfig) -> Status {
    let free_at = free_at(domain, cfg);
    let reg = &domain.registration;
    let hold = domain.hold.is_some();
    let dispute = reg.dispute.is_some();
    let frozen = hold || dispute;
    let mut cancelled = None;
    let mut blocks = Vec::new();
    if let Some(c) = &reg.closing {
        if now >= c.at {
            cancelled = Some(if c.claimant.is_some() {
                Cancelled::Court
            } else {
                Cancelled::Closed
            });
        }
    }
    let expired = now > domain.paid_till;
    if now > free_at && !frozen {
        cancelled.get_or_insert(Cancelled::NotRenewed);
    }
    let mut verification_pending = false;
    if let Some(asked) = domain.verification_requested {
        verification_pending = true;
        let waited = now - asked;
        // Cancellation counts from the suspension, not from the request.
        let cancel_after = dur(cfg.verification_suspend) + dur(cfg.verification_cancel);
        if waited >= cancel_after && !frozen {
            cancelled.get_or_insert(Cancelled::VerificationUnanswered);
        } else if waited >= dur(cfg.verification_suspend) {
            blocks.push(Block::VerificationOverdue);
        }
    }
    if expired {
        blocks.insert(0, Block::Expired);
    }
    if hold {
        blocks.push(Block::Hold);
    }
    let lock_from = domain
        .transferred
        .unwrap_or(domain.created)
        .max(domain.created);
    let lock_end = lock_from + dur(cfg.transfer_lock);
    let reg_lock_end = [domain.transferred, reg.registrant_since]
        .into_iter()
        .flatten()
        .max()
        .map(|t| t + dur(cfg.registrant_lock));
    Status {
        cancelled,
        expired: expired && cancelled.is_none(),
        free_date: free_at.date_naive(),
        hold,
        verification_pending,
        transfer_locked_until: (now < lock_end).then_some(lock_end),
        registrant_locked_until: reg_lock_end.filter(|e| now < *e),
        dispute,
        closing_at: reg.closing.as_ref().map(|c| c.at).filter(|a| now < *a),
        transfer_pending: reg.pending_transfer.is_some(),
        blocks,
    }
}

/// A change to an existing registration, as the lock rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Renew,
    UpdateContacts,
    ChangeRegistrant,
    Transfer,
    Close,
    Nameservers,
    Retest,
    ResetAuthCode,
}

impl Operation {
    pub const ALL: [Operation; 8] = [
        Self::Renew,
        Self::UpdateContacts,
        Self::ChangeRegistrant,
        Self::Transfer,
        Self::Close,
        Self::Nameservers,
        Self::Retest,
        Self::ResetAuthCode,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Renew => "renew",
            Self::UpdateContacts => "update contacts",
            Self::ChangeRegistrant => "registrant change",
            Self::Transfer => "registrar change",
            Self::Close => "close",
            Self::Nameservers => "nameserver change",
            Self::Retest => "retest",
            Self::ResetAuthCode => "auth code reset",
        }
    }
}

/// Why a lock refuses an operation: the rule's stable id and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `hold`, `dispute-lock`, `verification-overdue`, `registrant-lock`,
    /// `transfer-lock`, `expired`, `transfer-pending`, `closing`.
    pub rule: &'static str,
    pub detail: String,
}

/// The lock rules: may `op` be done to an existing registration whose
/// status is `st`? The first rule that refuses wins (most severe first).
pub fn permits(st: &Status, op: Operation) -> Result<(), Refusal> {
    use Operation as O;
    let refuse = |rule: &'static str, why: String| {
        Err(Refusal {
            rule,
            detail: format!("{} refused: {why}", op.as_str()),
        })
    };
    if st.hold {
        return refuse(
            "hold",
            "the domain is on hold; only a registry operator's release ends it".into(),
        );
    }
    if st.dispute && matches!(op, O::Transfer | O::ChangeRegistrant | O::Close) {
        return refuse(
            "dispute-lock",
            "the domain is under a dispute lock: the registrant and registrar cannot change and it cannot be closed".into(),
        );
    }
    if st.blocks.contains(&Block::VerificationOverdue)
        && matches!(op, O::Renew | O::Transfer | O::ChangeRegistrant)
    {
        return refuse(
            "verification-overdue",
            "the registrant has not answered the registry's verification request in time".into(),
        );
    }
    if let Some(until) = st.registrant_locked_until {
        if matches!(op, O::ChangeRegistrant | O::Close) {
            return refuse(
                "registrant-lock",
                format!(
                    "the registrant or registrar changed recently; locked until {}",
                    until.to_rfc3339()
                ),
            );
        }
    }
    if op == O::Transfer {
        if let Some(until) = st.transfer_locked_until {
            return refuse(
                "transfer-lock",
                format!(
                    "registered or transferred recently; locked until {}",
                    until.to_rfc3339()
                ),
            );
        }
        if st.expired {
            return refuse(
                "expired",
                "the registration has expired; renew it first".into(),
            );
        }
        if st.transfer_pending {
            return refuse(
                "transfer-pending",
                "a registrar change is already pending".into(),
            );
        }
        if st.closing_at.is_some() {
            return refuse("closing", "the registration is being closed".into());
        }
    }
    if op == O::ChangeRegistrant && st.transfer_pending {
        return refuse("transfer-pending", "a registrar change is pending".into());
    }
    Ok(())
}

/// The new `paid_till` after one renewal. Renewal is refused once the
/// registration is cancelled (the caller checks [`Status::exists`]).
pub fn renewed_paid_till(domain: &Domain, cfg: &LifecycleConfig) -> Option<Timestamp> {
    domain
        .paid_till
        .checked_add_months(Months::new(cfg.registration_period.0))
}

/// `paid_till` of a new registration created at `created`.
pub fn initial_paid_till(created: Timestamp, cfg: &LifecycleConfig) -> Option<Timestamp> {
    created.checked_add_months(Months::new(cfg.registration_period.0))
}

/// The one rule for "this domain is in the parent zone now": the delegation
/// state machine says delegated and the lifecycle allows it. Zone export,
/// WHOIS `state:` and RDAP statuses all use this.
pub fn in_zone(record: &crate::model::DelegationRecord, status: &Status) -> bool {
    record.state == crate::model::DelegationState::Delegated && status.may_delegate()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Hold;
    use crate::names::DomainName;
    use chrono::{Duration, TimeZone, Utc};

    fn t(y: i32, m: u32, d: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap()
    }

    fn domain() -> Domain {
        let created = t(2025, 3, 1);
        Domain {
            name: DomainName::from_trusted("example.ru".into()),
            registrar: "R".into(),
            registrant: "C".into(),
            admin: None,
            tech: None,
            created,
            paid_till: initial_paid_till(created, &LifecycleConfig::default()).unwrap(),
            nameservers: vec![],
            auth_info: None,
            hold: None,
            verification_requested: None,
            transferred: None,
            updated: created,
            registration: Default::default(),
        }
    }

    const S: Duration = Duration::seconds(1);

    #[test]
    fn one_year_and_renewal() {
        let cfg = LifecycleConfig::default();
        let d = domain();
        assert_eq!(d.paid_till, t(2026, 3, 1));
        assert_eq!(renewed_paid_till(&d, &cfg).unwrap(), t(2027, 3, 1));
    }

    #[test]
    fn expiry_grace_and_release_boundaries() {
        let cfg = LifecycleConfig::default();
        let d = domain();
        let s = evaluate(&d, d.paid_till, &cfg);
        assert!(!s.expired && s.may_delegate());
        let s = evaluate(&d, d.paid_till + S, &cfg);
        assert!(s.expired && s.exists() && !s.may_delegate());
        assert_eq!(s.blocks, vec![Block::Expired]);
        assert_eq!(s.free_date, NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
        let free = d.paid_till + Duration::days(30);
        assert!(evaluate(&d, free, &cfg).exists());
        let s = evaluate(&d, free + S, &cfg);
        assert_eq!(s.cancelled, Some(Cancelled::NotRenewed));
        assert!(!s.exists() && !s.expired);
        // Renewal within grace restores it.
        let mut r = d.clone();
        r.paid_till = renewed_paid_till(&d, &cfg).unwrap();
        assert!(evaluate(&r, d.paid_till + Duration::days(29), &cfg).may_delegate());
    }

    #[test]
    fn verification_boundaries() {
        let cfg = LifecycleConfig::default();
        let mut d = domain();
        let asked = t(2025, 6, 1);
        d.verification_requested = Some(asked);
        let at = |x| evaluate(&d, x, &cfg);
        assert!(at(asked + Duration::days(14) - S).may_delegate());
        assert!(at(asked + Duration::days(14) - S).verification_pending);
        assert_eq!(
            at(asked + Duration::days(14)).blocks,
            vec![Block::VerificationOverdue]
        );
        // Cancellation: 60 days after the suspension, not after the request.
        assert!(at(asked + Duration::days(74) - S).exists());
        assert_eq!(
            at(asked + Duration::days(74)).cancelled,
            Some(Cancelled::VerificationUnanswered)
        );
    }

    #[test]
    fn hold_blocks_and_locks() {
        let cfg = LifecycleConfig::default();
        let mut d = domain();
        d.hold = Some(Hold {
            since: t(2025, 5, 1),
            reason: "court".into(),
        });
        let s = evaluate(&d, t(2025, 6, 1), &cfg);
        assert!(s.hold && !s.may_delegate() && s.changes_locked());
        assert_eq!(s.blocks, vec![Block::Hold]);
    }

    #[test]
    fn transfer_lock_boundaries() {
        let cfg = LifecycleConfig::default();
        let mut d = domain();
        let end = d.created + Duration::days(60);
        assert_eq!(evaluate(&d, end - S, &cfg).transfer_locked_until, Some(end));
        assert_eq!(evaluate(&d, end, &cfg).transfer_locked_until, None);
        d.transferred = Some(t(2025, 9, 1));
        let end = t(2025, 9, 1) + Duration::days(60);
        assert_eq!(evaluate(&d, end - S, &cfg).transfer_locked_until, Some(end));
        assert_eq!(evaluate(&d, end, &cfg).transfer_locked_until, None);
    }
}
