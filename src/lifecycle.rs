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
}

fn dur(d: std::time::Duration) -> chrono::Duration {
    Config::chrono(d)
}

/// `paid_till` + grace: after this instant the name is free.
pub fn free_at(domain: &Domain, cfg: &LifecycleConfig) -> Timestamp {
    domain.paid_till + dur(cfg.grace_period)
}

/// Evaluate the lifecycle of `domain` at `now`.
pub fn evaluate(domain: &Domain, now: Timestamp, cfg: &LifecycleConfig) -> Status {
    let free_at = free_at(domain, cfg);
    let mut cancelled = None;
    let mut blocks = Vec::new();
    let expired = now > domain.paid_till;
    if now > free_at {
        cancelled = Some(Cancelled::NotRenewed);
    }
    let mut verification_pending = false;
    if let Some(asked) = domain.verification_requested {
        verification_pending = true;
        let waited = now - asked;
        if waited >= dur(cfg.verification_cancel) {
            cancelled.get_or_insert(Cancelled::VerificationUnanswered);
        } else if waited >= dur(cfg.verification_suspend) {
            blocks.push(Block::VerificationOverdue);
        }
    }
    if expired {
        blocks.insert(0, Block::Expired);
    }
    let hold = domain.hold.is_some();
    if hold {
        blocks.push(Block::Hold);
    }
    let lock_from = domain
        .transferred
        .unwrap_or(domain.created)
        .max(domain.created);
    let lock_end = lock_from + dur(cfg.transfer_lock);
    Status {
        cancelled,
        expired: expired && cancelled.is_none(),
        free_date: free_at.date_naive(),
        hold,
        verification_pending,
        transfer_locked_until: (now < lock_end).then_some(lock_end),
        blocks,
    }
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
            ds: Vec::new(),
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
        assert!(at(asked + Duration::days(60) - S).exists());
        assert_eq!(
            at(asked + Duration::days(60)).cancelled,
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
