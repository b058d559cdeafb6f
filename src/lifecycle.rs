//! Registration lifecycle (docs/lifecycle.md): a pure function of the domain record,
//! the time and the configured periods. Nothing here touches the store.

use chrono::{Months, NaiveDate};
use serde::Serialize;

use crate::config::{Config, LifecycleConfig};
use std::collections::BTreeSet;

use crate::model::{ClientStatus, Domain, Timestamp};

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
    /// The scheduled cancellation is a court decision (not revocable).
    pub court_closing: bool,
    /// A registrar change waits for the losing registrar.
    pub transfer_pending: bool,
    /// A registrant change request is open (not lapsed at `now`).
    pub registrant_change_pending: bool,
    /// `paid_till` + grace: the instant the name is freed unless renewed.
    pub free_at: Timestamp,
    /// Reasons the domain must be out of the zone (empty: may be delegated).
    pub blocks: Vec<Block>,
    /// The `client*` statuses its sponsor set (docs/statuses.md; the API
    /// shows them as `client_statuses`).
    #[serde(skip)]
    pub client: BTreeSet<ClientStatus>,
}

impl Status {
    /// The registration exists (WHOIS/RDAP show it).
    pub fn exists(&self) -> bool {
        self.cancelled.is_none()
    }
    /// Delegation is allowed by the lifecycle.
    ///
    /// The sponsor's `clientHold` keeps the domain out of the zone too, but
    /// is no [`Block`]: the delegation stays as it is (monitored, not
    /// suspended), so removing the status puts the domain straight back.
    pub fn may_delegate(&self) -> bool {
        self.exists() && self.blocks.is_empty() && !self.client.contains(&ClientStatus::ClientHold)
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
///
/// An operator's hold or dispute lock stops every timed cancellation: only
/// the operator ends them, never the clock. A dispute lock keeps the status
/// quo (docs/delegation.md "Dispute lock"): the domain does not expire
/// while it lasts (the unlock extends `paid_till`).
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
    let expired = now > domain.paid_till && !dispute;
    if now > free_at && !frozen {
        cancelled.get_or_insert(Cancelled::NotRenewed);
    }
    let mut verification_pending = false;
    if let Some(asked) = domain.verification_requested {
        verification_pending = true;
        let waited = now - asked;
        // Cancellation counts from the suspension, not from the request.
        let cancel_after = dur(cfg.verification_suspend) + dur(cfg.verification_cancel);
        let overdue_at = asked + dur(cfg.verification_suspend);
        // Status quo under a dispute lock: the request turns overdue only
        // if it did before the lock; the unlock gives the time back
        // (docs/lifecycle.md "Dispute lock").
        let overdue = now >= overdue_at
            && reg
                .dispute
                .as_ref()
                .is_none_or(|lock| lock.since >= overdue_at);
        if waited >= cancel_after && !frozen {
            cancelled.get_or_insert(Cancelled::VerificationUnanswered);
        } else if overdue {
            blocks.push(Block::VerificationOverdue);
        }
    }
    if expired {
        blocks.insert(0, Block::Expired);
    }
    if hold {
        blocks.push(Block::Hold);
    }
    // A registry move (reseller move) starts this lock only, not the
    // registrant lock below.
    let lock_from = [domain.transferred, reg.registry_moved]
        .into_iter()
        .flatten()
        .fold(domain.created, Timestamp::max);
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
        court_closing: reg
            .closing
            .as_ref()
            .is_some_and(|c| now < c.at && c.claimant.is_some()),
        // Read as of now: a change past its automatic approval is done.
        transfer_pending: reg
            .pending_transfer
            .as_ref()
            .is_some_and(|p| now < p.auto_approve),
        registrant_change_pending: reg
            .pending_registrant
            .as_ref()
            .is_some_and(|p| now < p.deadline),
        free_at,
        blocks,
        client: reg.client_statuses.clone(),
    }
}

/// What time completed on a registration (see [`settle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The losing registrar did not answer: the registrar change is done.
    TransferApproved {
        from: String,
        to: String,
        at: Timestamp,
    },
    /// The incoming registrant did not accept in time.
    RegistrantChangeLapsed { to: String, at: Timestamp },
}

/// Complete, on `d`, what time has made due by `now`: a registrar change
/// past its automatic approval, a registrant change request past its
/// deadline. Every read applies it to the record it shows (state as of
/// now), and the registry writes the same result with one event each
/// (its sweep, or the next change of the domain).
pub fn settle(d: &mut Domain, now: Timestamp) -> Vec<Settled> {
    let mut done = Vec::new();
    if let Some(p) = d.registration.pending_transfer.clone() {
        if now >= p.auto_approve {
            let from = std::mem::replace(&mut d.registrar, p.to.clone());
            d.transferred = Some(p.auto_approve);
            // The old sponsor's code and reseller do not travel.
            d.auth_info = None;
            d.registration.auth_info_expires = None;
            d.registration.reseller = None;
            d.registration.pending_transfer = None;
            done.push(Settled::TransferApproved {
                from,
                to: p.to,
                at: p.auto_approve,
            });
        }
    }
    if let Some(p) = d.registration.pending_registrant.clone() {
        if p.accepted.is_none() && now >= p.deadline {
            d.registration.pending_registrant = None;
            done.push(Settled::RegistrantChangeLapsed {
                to: p.to,
                at: p.deadline,
            });
        }
    }
    done
}

/// `d` as of `now` ([`settle`] on a copy).
pub fn as_of(d: &Domain, now: Timestamp) -> Domain {
    let mut d = d.clone();
    settle(&mut d, now);
    d
}

/// A lifecycle transition that time makes (no one's request): each is one
/// event in the sponsor's change feed (docs/lifecycle.md "Change feed").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Past `paid_till`: out of the zone, renewable until the free date.
    Expired,
    /// Not renewed by the free date: cancelled, the name is free.
    Freed,
    /// A verification request unanswered past the suspension period.
    VerificationSuspended,
    /// ... and past the cancellation period: cancelled.
    VerificationCancelled,
    /// A scheduled early cancellation took effect.
    Closed,
    /// The claimant's reservation after a court cancellation ended.
    CourtReservationEnded,
}

impl Transition {
    /// The delegation state machine acts on it too (takes the domain out
    /// of the zone or drops its delegation) and writes its own event.
    pub fn changes_delegation(self) -> bool {
        !matches!(self, Self::CourtReservationEnded)
    }

    /// The event text. An event whose text starts with it at the same
    /// instant is the same transition (the sweep writes it once).
    pub fn text(self) -> &'static str {
        match self {
            Self::Expired => "expired: not renewed by paid-till; renewable until the free date",
            Self::Freed => "registration cancelled (not renewed): the name is free",
            Self::VerificationSuspended => {
                "verification overdue: delegation suspended until the registrant answers"
            }
            Self::VerificationCancelled => {
                "registration cancelled (verification unanswered): the name is free"
            }
            Self::Closed => "closed at the registrant's request",
            Self::CourtReservationEnded => "court reservation ended: the name is free",
        }
    }
}

/// The transitions time made on `domain` up to `now`, each at the instant
/// it happened, oldest first. Each is checked against [`evaluate`] on both
/// sides of its instant, so a transition that did not happen (a renewal
/// came first, a lock froze the clock, another cancellation came earlier)
/// is not listed.
pub fn transitions(
    domain: &Domain,
    now: Timestamp,
    cfg: &LifecycleConfig,
) -> Vec<(Timestamp, Transition)> {
    let eps = chrono::Duration::nanoseconds(1);
    let at = |t: Timestamp| evaluate(domain, t, cfg);
    let mut out = Vec::new();
    // `expired` holds from just after paid_till (it is `now > paid_till`).
    let t = domain.paid_till;
    if now > t && at(t).exists() && at(t + eps).expired {
        out.push((t, Transition::Expired));
    }
    let t = free_at(domain, cfg);
    if now > t && at(t).exists() && at(t + eps).cancelled == Some(Cancelled::NotRenewed) {
        out.push((t, Transition::Freed));
    }
    if let Some(asked) = domain.verification_requested {
        let t = asked + dur(cfg.verification_suspend);
        if now >= t {
            let st = at(t);
            if st.exists() && st.blocks.contains(&Block::VerificationOverdue) {
                out.push((t, Transition::VerificationSuspended));
            }
        }
        let t = t + dur(cfg.verification_cancel);
        if now >= t
            && at(t - eps).exists()
            && at(t).cancelled == Some(Cancelled::VerificationUnanswered)
        {
            out.push((t, Transition::VerificationCancelled));
        }
    }
    if let Some(c) = &domain.registration.closing {
        let t = c.at;
        match &c.claimant {
            None => {
                if now >= t && at(t - eps).exists() && at(t).cancelled == Some(Cancelled::Closed) {
                    out.push((t, Transition::Closed));
                }
            }
            Some(_) => {
                let end = t + dur(cfg.court_reservation);
                if now >= end && at(t).cancelled == Some(Cancelled::Court) {
                    out.push((end, Transition::CourtReservationEnded));
                }
            }
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
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
    if st.dispute {
        // Status quo: nothing about the domain changes until the operator
        // lifts the lock (docs/delegation.md "Dispute lock").
        return refuse(
            "dispute-lock",
            "the domain is under a dispute lock: nothing about it changes until the registry lifts the lock".into(),
        );
    }
    // The sponsor's own locks (RFC 5731 §2.3 `client*Prohibited`): it
    // removes the status first (docs/statuses.md "Registrar-set statuses").
    let client = |c: ClientStatus| st.client.contains(&c);
    if client(ClientStatus::ClientUpdateProhibited)
        && matches!(
            op,
            O::UpdateContacts | O::ChangeRegistrant | O::Nameservers | O::ResetAuthCode
        )
    {
        return refuse(
            "client-update-prohibited",
            "the sponsor set clientUpdateProhibited; remove that status first".into(),
        );
    }
    for (c, o, rule) in [
        (
            ClientStatus::ClientTransferProhibited,
            O::Transfer,
            "client-transfer-prohibited",
        ),
        (
            ClientStatus::ClientDeleteProhibited,
            O::Close,
            "client-delete-prohibited",
        ),
        (
            ClientStatus::ClientRenewProhibited,
            O::Renew,
            "client-renew-prohibited",
        ),
    ] {
        if op == o && client(c) {
            return refuse(
                rule,
                format!("the sponsor set {}; remove that status first", c.epp()),
            );
        }
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

    /// Each lock × each operation: `None` = allowed, `Some(rule)` = the
    /// rule that refuses. Times are injected; each lock is evaluated just
    /// inside and (where it ends by time) just past its boundary.
    #[test]
    fn lock_table() {
        use crate::model::{Closing, PendingTransfer};
        let cfg = LifecycleConfig::default();
        let now = t(2026, 6, 1);
        let day = Duration::days(1);
        let base = domain(); // created 2025-03-01, paid till 2026-03-01
        let mut d = base.clone();
        d.paid_till = t(2027, 3, 1);
        let held = |mut d: Domain| {
            d.hold = Some(Hold {
                since: now,
                reason: "x".into(),
            });
            d
        };
        let disputed = |mut d: Domain| {
            d.registration.dispute = Some(Hold {
                since: now,
                reason: "x".into(),
            });
            d
        };
        let asked = |mut d: Domain, ago: Duration| {
            d.verification_requested = Some(now - ago);
            d
        };
        let acquired = |mut d: Domain, ago: Duration| {
            d.registration.registrant_since = Some(now - ago);
            d
        };
        let transferred = |mut d: Domain, ago: Duration| {
            d.transferred = Some(now - ago);
            d
        };
        let created = |mut d: Domain, ago: Duration| {
            d.created = now - ago;
            d
        };
        let expired = |mut d: Domain| {
            d.paid_till = now - day;
            d
        };
        let pending = |mut d: Domain| {
            d.registration.pending_transfer = Some(PendingTransfer {
                to: "G".into(),
                requested: now,
                auto_approve: now + day,
            });
            d
        };
        let closing = |mut d: Domain| {
            d.registration.closing = Some(Closing {
                at: now + day,
                claimant: None,
            });
            d
        };
        const H: Option<&str> = Some("hold");
        const D: Option<&str> = Some("dispute-lock");
        const V: Option<&str> = Some("verification-overdue");
        const R: Option<&str> = Some("registrant-lock");
        const T: Option<&str> = Some("transfer-lock");
        const P: Option<&str> = Some("transfer-pending");
        const N: Option<&str> = None;
        // Columns: renew, contacts, registrant, transfer, close, ns, retest, auth code.
        let rows: Vec<(&str, Domain, [Option<&str>; 8])> = vec![
            ("none", d.clone(), [N; 8]),
            ("hold", held(d.clone()), [H; 8]),
            ("hold+dispute", held(disputed(d.clone())), [H; 8]),
            ("dispute", disputed(d.clone()), [D; 8]),
            ("dispute+expired", disputed(expired(d.clone())), [D; 8]),
            (
                "verification 14d-1s",
                asked(d.clone(), day * 14 - S),
                [N; 8],
            ),
            (
                "verification 14d",
                asked(d.clone(), day * 14),
                [V, N, V, V, N, N, N, N],
            ),
            (
                "verification 73d",
                asked(d.clone(), day * 73),
                [V, N, V, V, N, N, N, N],
            ),
            (
                "acquired 60d-1s",
                acquired(d.clone(), day * 60 - S),
                [N, N, R, N, R, N, N, N],
            ),
            ("acquired 60d", acquired(d.clone(), day * 60), [N; 8]),
            (
                "transferred 60d-1s",
                transferred(d.clone(), day * 60 - S),
                [N, N, R, T, R, N, N, N],
            ),
            ("transferred 60d", transferred(d.clone(), day * 60), [N; 8]),
            (
                "created 60d-1s",
                created(d.clone(), day * 60 - S),
                [N, N, N, T, N, N, N, N],
            ),
            (
                "expired (grace)",
                expired(d.clone()),
                [N, N, N, Some("expired"), N, N, N, N],
            ),
            (
                "transfer pending",
                pending(d.clone()),
                [N, N, P, P, N, N, N, N],
            ),
            (
                "closing",
                closing(d.clone()),
                [N, N, N, Some("closing"), N, N, N, N],
            ),
        ];
        for (what, dom, want) in rows {
            let st = evaluate(&dom, now, &cfg);
            assert!(st.exists(), "{what}");
            for (op, w) in Operation::ALL.into_iter().zip(want) {
                let got = permits(&st, op).err().map(|r| r.rule);
                assert_eq!(got, w, "{what} × {}", op.as_str());
            }
        }
    }

    #[test]
    fn operator_locks_stop_timed_cancellation() {
        let cfg = LifecycleConfig::default();
        let mut d = domain();
        let late = d.paid_till + Duration::days(400);
        assert_eq!(
            evaluate(&d, late, &cfg).cancelled,
            Some(Cancelled::NotRenewed)
        );
        d.registration.dispute = Some(Hold {
            since: d.created,
            reason: "x".into(),
        });
        let st = evaluate(&d, late, &cfg);
        assert!(st.exists() && st.dispute);
        // Past paid_till under dispute: not expired, still delegable.
        assert!(!st.expired && st.may_delegate());
        assert_eq!(st.blocks, vec![]);
        d.registration.dispute = None;
        d.verification_requested = Some(d.created);
        d.hold = Some(Hold {
            since: d.created,
            reason: "x".into(),
        });
        assert!(evaluate(&d, late, &cfg).exists());
    }

    #[test]
    fn close_and_court_cancel() {
        use crate::model::Closing;
        let cfg = LifecycleConfig::default();
        let mut d = domain();
        let at = t(2025, 9, 1);
        d.registration.closing = Some(Closing { at, claimant: None });
        let st = evaluate(&d, at - S, &cfg);
        assert!(st.exists());
        assert_eq!(st.closing_at, Some(at));
        assert_eq!(evaluate(&d, at, &cfg).cancelled, Some(Cancelled::Closed));
        d.registration.closing = Some(Closing {
            at,
            claimant: Some("C".into()),
        });
        assert_eq!(evaluate(&d, at, &cfg).cancelled, Some(Cancelled::Court));
    }
}
