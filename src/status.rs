//! The one status model of a domain (docs/statuses.md).
//!
//! [`compute`] turns the lifecycle status (itself evaluated at the injected
//! `now`) and the delegation facts into a [`DomainStatus`]: the set of
//! [`Condition`]s the domain is in. Every edge renders that set through the
//! mappings here and derives nothing of its own:
//! - EPP `<domain:status>` values ([`DomainStatus::epp`], RFC 5731 §2.3:
//!   `server*` for what the registry sets, `client*` for what the sponsor
//!   set, `ok` only alone);
//! - the RFC 3915 RGP state ([`DomainStatus::rgp`]);
//! - RDAP status strings ([`DomainStatus::rdap`]): the RFC 8056 image of the
//!   EPP set, plus `active` while the domain is in the zone;
//! - WHOIS `state:` words ([`DomainStatus::whois`]);
//! - the registrar API's `statuses` (the EPP names) and `rgp_status`.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::lifecycle::{Block, Status};
use crate::model::{ClientStatus, DelegationRecord, DelegationState, Timestamp};

/// What the status model reads of a delegation record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delegation {
    pub state: DelegationState,
    /// A newly declared NS/DS set is under test (the zone keeps the old one).
    pub change_pending: bool,
    /// A confirmed monitoring violation is in force.
    pub violation: bool,
}

impl Delegation {
    pub fn of(r: &DelegationRecord) -> Self {
        Self {
            state: r.state,
            change_pending: r
                .pending
                .as_ref()
                .is_some_and(|p| p.state == DelegationState::Testing),
            violation: r.violation.is_some(),
        }
    }
}

/// One fact about where a domain stands. A [`DomainStatus`] is a set of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// In the parent zone now (`lifecycle::in_zone`).
    InZone,
    /// Declared nameservers are under test and the domain is not in the zone.
    Testing,
    /// A newly declared NS/DS set is under test; the zone keeps the old one.
    ChangeTesting,
    /// The test window ended without a pass.
    TestFailed,
    /// The delegation state machine took it out of the zone.
    Suspended,
    /// A confirmed monitoring violation is in force.
    Violation,
    /// Past `paid_till`, renewable until the free date.
    ExpiredInGrace,
    /// Early cancellation at the registrant's request is scheduled.
    Closing,
    /// Cancellation by a court decision is scheduled.
    CourtClosing,
    /// Operator hold (docs/lifecycle.md): out of the zone, nothing may change.
    Hold,
    /// Operator dispute lock: the status quo is frozen.
    DisputeLock,
    /// A verification request to the registrant is open.
    VerificationPending,
    /// ... and unanswered past the suspension period.
    VerificationOverdue,
    /// Registrar change locked after registration or a transfer.
    TransferLock,
    /// Registrant change and close locked after an acquisition or a
    /// registrar change.
    RegistrantLock,
    /// A registrar change waits for the losing registrar.
    TransferPending,
    /// A registrant change waits for the incoming registrant's consent.
    RegistrantChangePending,
}

impl Condition {
    pub const ALL: [Condition; 17] = [
        Self::InZone,
        Self::Testing,
        Self::ChangeTesting,
        Self::TestFailed,
        Self::Suspended,
        Self::Violation,
        Self::ExpiredInGrace,
        Self::Closing,
        Self::CourtClosing,
        Self::Hold,
        Self::DisputeLock,
        Self::VerificationPending,
        Self::VerificationOverdue,
        Self::TransferLock,
        Self::RegistrantLock,
        Self::TransferPending,
        Self::RegistrantChangePending,
    ];
}

/// RFC 5731 §2.3 domain status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EppStatus {
    Ok,
    Inactive,
    ServerHold,
    ServerUpdateProhibited,
    ServerTransferProhibited,
    ServerDeleteProhibited,
    ServerRenewProhibited,
    ClientHold,
    ClientUpdateProhibited,
    ClientTransferProhibited,
    ClientDeleteProhibited,
    ClientRenewProhibited,
    PendingCreate,
    PendingUpdate,
    PendingTransfer,
    PendingDelete,
    PendingRenew,
}

impl EppStatus {
    /// The EPP `s` attribute.
    pub fn epp(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Inactive => "inactive",
            Self::ServerHold => "serverHold",
            Self::ServerUpdateProhibited => "serverUpdateProhibited",
            Self::ServerTransferProhibited => "serverTransferProhibited",
            Self::ServerDeleteProhibited => "serverDeleteProhibited",
            Self::ServerRenewProhibited => "serverRenewProhibited",
            Self::ClientHold => "clientHold",
            Self::ClientUpdateProhibited => "clientUpdateProhibited",
            Self::ClientTransferProhibited => "clientTransferProhibited",
            Self::ClientDeleteProhibited => "clientDeleteProhibited",
            Self::ClientRenewProhibited => "clientRenewProhibited",
            Self::PendingCreate => "pendingCreate",
            Self::PendingUpdate => "pendingUpdate",
            Self::PendingTransfer => "pendingTransfer",
            Self::PendingDelete => "pendingDelete",
            Self::PendingRenew => "pendingRenew",
        }
    }

    /// The RDAP status string (RFC 8056 §2 mapping).
    pub fn rdap(self) -> &'static str {
        match self {
            Self::Ok => "active",
            Self::Inactive => "inactive",
            Self::ServerHold => "server hold",
            Self::ServerUpdateProhibited => "server update prohibited",
            Self::ServerTransferProhibited => "server transfer prohibited",
            Self::ServerDeleteProhibited => "server delete prohibited",
            Self::ServerRenewProhibited => "server renew prohibited",
            Self::ClientHold => "client hold",
            Self::ClientUpdateProhibited => "client update prohibited",
            Self::ClientTransferProhibited => "client transfer prohibited",
            Self::ClientDeleteProhibited => "client delete prohibited",
            Self::ClientRenewProhibited => "client renew prohibited",
            Self::PendingCreate => "pending create",
            Self::PendingUpdate => "pending update",
            Self::PendingTransfer => "pending transfer",
            Self::PendingDelete => "pending delete",
            Self::PendingRenew => "pending renew",
        }
    }

    /// The operation a `*Prohibited` or `pending*` value is about.
    fn operation(self) -> Option<&'static str> {
        Some(match self {
            Self::ServerUpdateProhibited | Self::ClientUpdateProhibited | Self::PendingUpdate => {
                "update"
            }
            Self::ServerTransferProhibited
            | Self::ClientTransferProhibited
            | Self::PendingTransfer => "transfer",
            Self::ServerDeleteProhibited | Self::ClientDeleteProhibited | Self::PendingDelete => {
                "delete"
            }
            Self::ServerRenewProhibited | Self::ClientRenewProhibited | Self::PendingRenew => {
                "renew"
            }
            _ => return None,
        })
    }

    fn is_pending(self) -> bool {
        matches!(
            self,
            Self::PendingCreate
                | Self::PendingUpdate
                | Self::PendingTransfer
                | Self::PendingDelete
                | Self::PendingRenew
        )
    }
}

impl From<ClientStatus> for EppStatus {
    fn from(c: ClientStatus) -> Self {
        match c {
            ClientStatus::ClientHold => Self::ClientHold,
            ClientStatus::ClientUpdateProhibited => Self::ClientUpdateProhibited,
            ClientStatus::ClientTransferProhibited => Self::ClientTransferProhibited,
            ClientStatus::ClientDeleteProhibited => Self::ClientDeleteProhibited,
            ClientStatus::ClientRenewProhibited => Self::ClientRenewProhibited,
        }
    }
}

impl Serialize for EppStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.epp())
    }
}

/// RFC 3915 §3.1 RGP states this registry uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RgpStatus {
    /// Deleted or expired, still restorable (renewal in grace, or a
    /// scheduled close the registrar may revoke).
    RedemptionPeriod,
    /// Deletion is decided and can no longer be restored (court decision).
    PendingDelete,
}

impl RgpStatus {
    pub fn epp(self) -> &'static str {
        match self {
            Self::RedemptionPeriod => "redemptionPeriod",
            Self::PendingDelete => "pendingDelete",
        }
    }
    /// RFC 8056 §2 mapping.
    pub fn rdap(self) -> &'static str {
        match self {
            Self::RedemptionPeriod => "redemption period",
            Self::PendingDelete => "pending delete",
        }
    }
}

impl Serialize for RgpStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.epp())
    }
}

/// The statuses of one domain at one instant: the set of conditions and
/// when a pending deletion takes effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainStatus {
    pub conditions: BTreeSet<Condition>,
    /// The `client*` statuses the sponsor set (shown as they are).
    pub client: BTreeSet<ClientStatus>,
    /// When the name is freed: the scheduled close, or `paid_till` + grace
    /// for an expired domain. `None` unless a deletion is pending.
    pub deletion_at: Option<Timestamp>,
}

/// The one computation: lifecycle status `st` (evaluated at `now`) and the
/// delegation facts of the same domain.
pub fn compute(st: &Status, f: Delegation) -> DomainStatus {
    use Condition as C;
    let mut c = BTreeSet::new();
    let in_zone = f.state == DelegationState::Delegated && st.may_delegate();
    let mut add = |on: bool, x: Condition| {
        if on {
            c.insert(x);
        }
    };
    add(in_zone, C::InZone);
    add(!in_zone && f.state == DelegationState::Testing, C::Testing);
    add(f.change_pending, C::ChangeTesting);
    add(
        !in_zone && f.state == DelegationState::TestFailed,
        C::TestFailed,
    );
    add(
        !in_zone && f.state == DelegationState::Suspended,
        C::Suspended,
    );
    add(f.violation, C::Violation);
    // A dispute lock keeps the status quo: the domain is not shown as
    // expiring while it lasts.
    add(st.expired && !st.dispute, C::ExpiredInGrace);
    add(st.hold, C::Hold);
    add(st.dispute, C::DisputeLock);
    add(st.verification_pending, C::VerificationPending);
    add(
        st.blocks.contains(&Block::VerificationOverdue),
        C::VerificationOverdue,
    );
    add(st.transfer_locked_until.is_some(), C::TransferLock);
    add(st.registrant_locked_until.is_some(), C::RegistrantLock);
    add(st.transfer_pending, C::TransferPending);
    add(st.registrant_change_pending, C::RegistrantChangePending);
    // `closing_at` is set only while the close is still in the future.
    if st.closing_at.is_some() {
        c.insert(if st.court_closing {
            C::CourtClosing
        } else {
            C::Closing
        });
    }
    let mut s = DomainStatus {
        conditions: c,
        client: st.client.clone(),
        deletion_at: None,
    };
    if s.epp().contains(&EppStatus::PendingDelete) {
        s.deletion_at = st.closing_at.or(Some(st.free_at));
    }
    s
}

impl DomainStatus {
    pub fn has(&self, c: Condition) -> bool {
        self.conditions.contains(&c)
    }

    /// The operator froze the domain: nothing times out or is deleted.
    fn frozen(&self) -> bool {
        self.has(Condition::Hold) || self.has(Condition::DisputeLock)
    }

    /// EPP status values, RFC 5731 §2.3 combination rules applied: `ok`
    /// only alone; at most one `pending*` (delete, then transfer, then
    /// update); a `pending*` never beside a prohibition of the same
    /// operation (a decided deletion wins over a delete prohibition; the
    /// other prohibitions win over their pending request).
    pub fn epp(&self) -> Vec<EppStatus> {
        use Condition as C;
        use EppStatus as E;
        let mut v = BTreeSet::new();
        if !self.has(C::InZone) {
            v.insert(E::Inactive);
        }
        let server_locks = [
            E::ServerUpdateProhibited,
            E::ServerTransferProhibited,
            E::ServerDeleteProhibited,
            E::ServerRenewProhibited,
        ];
        if self.has(C::Hold) {
            v.insert(E::ServerHold);
            v.extend(server_locks);
        }
        if self.has(C::DisputeLock) {
            v.extend(server_locks);
        }
        let explained = self.has(C::ExpiredInGrace) || self.has(C::Hold);
        if self.has(C::VerificationOverdue) || (self.has(C::Suspended) && !explained) {
            // Out of the zone by the registry's decision.
            v.insert(E::ServerHold);
        }
        if self.has(C::TransferLock) {
            v.insert(E::ServerTransferProhibited);
        }
        if self.has(C::RegistrantLock) {
            v.insert(E::ServerDeleteProhibited);
        }
        v.extend(self.client.iter().map(|c| E::from(*c)));
        let deleting = !self.frozen()
            && (self.has(C::ExpiredInGrace) || self.has(C::Closing) || self.has(C::CourtClosing));
        let pending = if deleting {
            Some(E::PendingDelete)
        } else if self.has(C::TransferPending) {
            Some(E::PendingTransfer)
        } else if self.has(C::Testing)
            || self.has(C::ChangeTesting)
            || self.has(C::RegistrantChangePending)
        {
            Some(E::PendingUpdate)
        } else {
            None
        };
        if let Some(p) = pending {
            let op = p.operation();
            let blocked = v.iter().any(|x| !x.is_pending() && x.operation() == op);
            if p == E::PendingDelete {
                v.retain(|x| x.operation() != op);
                v.insert(p);
            } else if !blocked {
                v.insert(p);
            }
        }
        if v.is_empty() {
            v.insert(E::Ok);
        }
        v.into_iter().collect()
    }

    /// The RFC 3915 RGP state, if any.
    pub fn rgp(&self) -> Option<RgpStatus> {
        use Condition as C;
        if self.frozen() {
            return None;
        }
        if self.has(C::CourtClosing) {
            Some(RgpStatus::PendingDelete)
        } else if self.has(C::ExpiredInGrace) || self.has(C::Closing) {
            Some(RgpStatus::RedemptionPeriod)
        } else {
            None
        }
    }

    /// RDAP status strings: `active`/`inactive` first (in the zone or not),
    /// then the RFC 8056 image of every other EPP value and the RGP state.
    pub fn rdap(&self) -> Vec<&'static str> {
        let mut v = vec![if self.has(Condition::InZone) {
            "active"
        } else {
            "inactive"
        }];
        for e in self.epp() {
            if !matches!(e, EppStatus::Ok | EppStatus::Inactive) {
                v.push(e.rdap());
            }
        }
        if let Some(r) = self.rgp() {
            if !v.contains(&r.rdap()) {
                v.push(r.rdap());
            }
        }
        v
    }

    /// The RDAP strings of the locks and pending requests (the API's
    /// `lock_statuses`, kept for compatibility): [`Self::rdap`] without
    /// `active`/`inactive`.
    pub fn lock_words(&self) -> Vec<&'static str> {
        self.rdap().into_iter().skip(1).collect()
    }

    /// WHOIS `state:` words, in the order of docs/whois.md. The .RU
    /// layout keeps this line to the registration, delegation and
    /// verification facts: the registrar-change locks (transfer lock,
    /// registrant lock) are shown by EPP, RDAP and the API only.
    pub fn whois(&self) -> Vec<&'static str> {
        use Condition as C;
        let in_zone = self.has(C::InZone);
        let mut v = vec!["REGISTERED"];
        v.push(if in_zone {
            "DELEGATED"
        } else {
            "NOT DELEGATED"
        });
        v.push(if self.has(C::VerificationPending) {
            "UNVERIFIED"
        } else {
            "VERIFIED"
        });
        if self.client.contains(&ClientStatus::ClientHold) {
            v.push("CLIENT HOLD");
        }
        let words = [
            (C::Hold, "HOLD"),
            (C::DisputeLock, "DISPUTE LOCK"),
            (C::TransferPending, "PENDING TRANSFER"),
        ];
        for (c, w) in words {
            if self.has(c) {
                v.push(w);
            }
        }
        if self.has(C::Closing) || self.has(C::CourtClosing) {
            v.push("PENDING DELETE");
        }
        let words = [
            (C::ExpiredInGrace, "EXPIRED"),
            (C::Violation, "VIOLATION"),
            (C::Testing, "TESTING"),
            (C::TestFailed, "TEST FAILED"),
            (C::Suspended, "SUSPENDED"),
            (C::VerificationOverdue, "VERIFICATION OVERDUE"),
            (C::RegistrantChangePending, "PENDING REGISTRANT CHANGE"),
        ];
        for (c, w) in words {
            if self.has(c) {
                v.push(w);
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Condition as C;
    use EppStatus as E;

    fn of(cs: &[Condition]) -> DomainStatus {
        DomainStatus {
            conditions: cs.iter().copied().collect(),
            client: BTreeSet::new(),
            deletion_at: None,
        }
    }

    fn epp(cs: &[Condition]) -> Vec<&'static str> {
        of(cs).epp().into_iter().map(E::epp).collect()
    }

    #[test]
    fn the_issue_table() {
        // Plain delegated: `ok` alone, RDAP `active`.
        assert_eq!(epp(&[C::InZone]), ["ok"]);
        assert_eq!(of(&[C::InZone]).rdap(), ["active"]);
        // Registry transfer lock: server*, never client*.
        assert_eq!(
            epp(&[C::InZone, C::TransferLock]),
            ["serverTransferProhibited"]
        );
        assert_eq!(
            epp(&[C::InZone, C::RegistrantLock]),
            ["serverDeleteProhibited"]
        );
        // Verification overdue: out of the zone and on server hold.
        let v = of(&[C::VerificationPending, C::VerificationOverdue, C::Suspended]);
        assert_eq!(
            v.epp().into_iter().map(E::epp).collect::<Vec<_>>(),
            ["inactive", "serverHold"]
        );
        assert_eq!(v.rdap(), ["inactive", "server hold"]);
        // Expired in grace: pendingDelete + RGP redemptionPeriod.
        let x = of(&[C::ExpiredInGrace, C::Suspended, C::RegistrantLock]);
        assert_eq!(
            x.epp().into_iter().map(E::epp).collect::<Vec<_>>(),
            ["inactive", "pendingDelete"]
        );
        assert_eq!(x.rgp(), Some(RgpStatus::RedemptionPeriod));
        assert_eq!(
            x.rdap(),
            ["inactive", "pending delete", "redemption period"]
        );
        // Testing: pending update.
        assert_eq!(epp(&[C::Testing]), ["inactive", "pendingUpdate"]);
        // Disputed and expired: the frozen set, no deletion.
        let d = of(&[C::ExpiredInGrace, C::DisputeLock, C::Suspended]);
        assert_eq!(
            d.epp().into_iter().map(E::epp).collect::<Vec<_>>(),
            [
                "inactive",
                "serverUpdateProhibited",
                "serverTransferProhibited",
                "serverDeleteProhibited",
                "serverRenewProhibited"
            ]
        );
        assert_eq!(d.rgp(), None);
        assert!(!d.rdap().contains(&"pending delete"));
        assert_eq!(epp(&[C::InZone, C::TransferPending]), ["pendingTransfer"]);
    }

    /// Every subset of conditions: the RFC 5731 §2.3 combination rules
    /// hold and RDAP is the RFC 8056 image of EPP.
    #[test]
    fn rfc5731_combination_rules_over_every_combination() {
        let n = Condition::ALL.len();
        for mask in 0u32..(1 << n) {
            let cs: Vec<Condition> = (0..n)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| Condition::ALL[i])
                .collect();
            // The sponsor's statuses vary with the mask too: none, each
            // alone, all of them.
            let mut s = of(&cs);
            s.client = match mask % 7 {
                0 => BTreeSet::new(),
                6 => ClientStatus::ALL.into_iter().collect(),
                i => [ClientStatus::ALL[i as usize - 1]].into_iter().collect(),
            };
            let e = s.epp();
            assert!(!e.is_empty());
            if e.contains(&E::Ok) {
                assert_eq!(e, [E::Ok], "{cs:?}");
            }
            assert!(e.iter().filter(|x| x.is_pending()).count() <= 1, "{cs:?}");
            for p in e.iter().filter(|x| x.is_pending()) {
                assert!(
                    !e.iter()
                        .any(|x| !x.is_pending() && x.operation() == p.operation()),
                    "{cs:?}: {e:?}"
                );
            }
            // client* exactly what the sponsor set (a decided deletion
            // hides its delete prohibition, as a server one).
            for x in e.iter().filter(|x| x.epp().starts_with("client")) {
                assert!(s.client.iter().any(|c| E::from(*c) == *x), "{cs:?}");
            }
            for c in &s.client {
                let hidden =
                    *c == ClientStatus::ClientDeleteProhibited && e.contains(&E::PendingDelete);
                assert_eq!(e.contains(&E::from(*c)), !hidden, "{cs:?} {c:?}");
            }
            assert_eq!(e.contains(&E::Inactive), !s.has(C::InZone), "{cs:?}");
            if s.has(C::DisputeLock) || s.has(C::Hold) {
                for x in [
                    E::ServerUpdateProhibited,
                    E::ServerTransferProhibited,
                    E::ServerDeleteProhibited,
                    E::ServerRenewProhibited,
                ] {
                    assert!(e.contains(&x), "{cs:?}");
                }
                assert!(!e.contains(&E::PendingDelete), "{cs:?}");
                assert_eq!(s.rgp(), None);
            }
            let rdap = s.rdap();
            for x in &e {
                if *x != E::Ok {
                    assert!(rdap.contains(&x.rdap()), "{cs:?}");
                }
            }
            let mut want = vec![if s.has(C::InZone) {
                "active"
            } else {
                "inactive"
            }];
            want.extend(
                e.iter()
                    .filter(|x| !matches!(x, E::Ok | E::Inactive))
                    .map(|x| x.rdap()),
            );
            if let Some(r) = s.rgp().filter(|r| !want.contains(&r.rdap())) {
                want.push(r.rdap());
            }
            assert_eq!(rdap, want, "{cs:?}");
            if s.has(C::ExpiredInGrace) && !s.has(C::DisputeLock) && !s.has(C::Hold) {
                assert!(e.contains(&E::PendingDelete), "{cs:?}");
                assert!(s.rgp().is_some(), "{cs:?}");
            }
        }
    }
}
