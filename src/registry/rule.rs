//! The registry's rule ids as one enum, with the one mapping of each to
//! an HTTP status (the API's problem documents) and an EPP result code
//! (RFC 5730 §3). The ids are a contract (docs/statuses.md, docs/api.md,
//! docs/epp.md): scripts match on them, so they never change.

use serde::Serialize;

/// A registry rule that refused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    // Lifecycle locks (`lifecycle::permits`).
    Hold,
    DisputeLock,
    VerificationOverdue,
    RegistrantLock,
    TransferLock,
    Expired,
    TransferPending,
    Closing,
    // The sponsor's own locks (RFC 5731 `client*Prohibited`).
    ClientUpdateProhibited,
    ClientTransferProhibited,
    ClientDeleteProhibited,
    ClientRenewProhibited,
    /// A `client*` status added that is already set.
    StatusPresent,
    /// A `client*` status removed that is not set.
    StatusAbsent,
    // Objects and their existence.
    Exists,
    ContactExists,
    HostExists,
    NoContact,
    NoHost,
    NoMessage,
    NoRequest,
    NoLock,
    NoReseller,
    // Ownership (docs: contact and host sponsors, resellers).
    ContactSponsor,
    ResellerSponsor,
    ContactInUse,
    HostInUse,
    HostGlue,
    Superordinate,
    AlreadySponsor,
    // Auth codes.
    AuthCode,
    AuthCodeLocked,
    // Names that may not be registered.
    ReservedName,
    CourtReservation,
    Confusable,
    // Requests and state.
    RequestPending,
    NotRestorable,
    State,
    Busy,
}

impl Rule {
    pub const ALL: [Rule; 39] = [
        Self::Hold,
        Self::DisputeLock,
        Self::VerificationOverdue,
        Self::RegistrantLock,
        Self::TransferLock,
        Self::Expired,
        Self::TransferPending,
        Self::Closing,
        Self::ClientUpdateProhibited,
        Self::ClientTransferProhibited,
        Self::ClientDeleteProhibited,
        Self::ClientRenewProhibited,
        Self::StatusPresent,
        Self::StatusAbsent,
        Self::Exists,
        Self::ContactExists,
        Self::HostExists,
        Self::NoContact,
        Self::NoHost,
        Self::NoMessage,
        Self::NoRequest,
        Self::NoLock,
        Self::NoReseller,
        Self::ContactSponsor,
        Self::ResellerSponsor,
        Self::ContactInUse,
        Self::HostInUse,
        Self::HostGlue,
        Self::Superordinate,
        Self::AlreadySponsor,
        Self::AuthCode,
        Self::AuthCodeLocked,
        Self::ReservedName,
        Self::CourtReservation,
        Self::Confusable,
        Self::RequestPending,
        Self::NotRestorable,
        Self::State,
        Self::Busy,
    ];

    /// The stable id (`rule` of problem documents, `(rule: …)` in EPP).
    pub fn id(self) -> &'static str {
        match self {
            Self::Hold => "hold",
            Self::DisputeLock => "dispute-lock",
            Self::VerificationOverdue => "verification-overdue",
            Self::RegistrantLock => "registrant-lock",
            Self::TransferLock => "transfer-lock",
            Self::Expired => "expired",
            Self::TransferPending => "transfer-pending",
            Self::Closing => "closing",
            Self::ClientUpdateProhibited => "client-update-prohibited",
            Self::ClientTransferProhibited => "client-transfer-prohibited",
            Self::ClientDeleteProhibited => "client-delete-prohibited",
            Self::ClientRenewProhibited => "client-renew-prohibited",
            Self::StatusPresent => "status-present",
            Self::StatusAbsent => "status-absent",
            Self::Exists => "exists",
            Self::ContactExists => "contact-exists",
            Self::HostExists => "host-exists",
            Self::NoContact => "no-contact",
            Self::NoHost => "no-host",
            Self::NoMessage => "no-message",
            Self::NoRequest => "no-request",
            Self::NoLock => "no-lock",
            Self::NoReseller => "no-reseller",
            Self::ContactSponsor => "contact-sponsor",
            Self::ResellerSponsor => "reseller-sponsor",
            Self::ContactInUse => "contact-in-use",
            Self::HostInUse => "host-in-use",
            Self::HostGlue => "host-glue",
            Self::Superordinate => "superordinate",
            Self::AlreadySponsor => "already-sponsor",
            Self::AuthCode => "auth-code",
            Self::AuthCodeLocked => "auth-code-locked",
            Self::ReservedName => "reserved-name",
            Self::CourtReservation => "court-reservation",
            Self::Confusable => "confusable",
            Self::RequestPending => "request-pending",
            Self::NotRestorable => "not-restorable",
            Self::State => "state",
            Self::Busy => "busy",
        }
    }

    /// The rule with this id (the lifecycle's refusals carry ids).
    pub fn parse(id: &str) -> Option<Rule> {
        Self::ALL.into_iter().find(|r| r.id() == id)
    }

    /// HTTP status of the API's problem document.
    pub fn http_status(self) -> u16 {
        match self {
            Self::AuthCode => 403,
            _ => 409,
        }
    }

    /// EPP result code (RFC 5730 §3).
    pub fn epp_code(self) -> u16 {
        match self {
            Self::Exists | Self::ContactExists | Self::HostExists => 2302,
            Self::AuthCode | Self::AuthCodeLocked => 2202,
            Self::TransferPending => 2300,
            Self::NoRequest => 2301,
            Self::NoContact
            | Self::NoMessage
            | Self::NoHost
            | Self::NoReseller
            | Self::StatusAbsent => 2303,
            Self::ContactInUse
            | Self::HostInUse
            | Self::Superordinate
            | Self::ContactSponsor
            | Self::ResellerSponsor => 2305,
            Self::AlreadySponsor => 2106,
            Self::Hold
            | Self::DisputeLock
            | Self::TransferLock
            | Self::RegistrantLock
            | Self::Closing
            | Self::Expired
            | Self::VerificationOverdue
            | Self::ClientUpdateProhibited
            | Self::ClientTransferProhibited
            | Self::ClientDeleteProhibited
            | Self::ClientRenewProhibited
            | Self::NotRestorable
            | Self::State => 2304,
            Self::NoLock
            | Self::HostGlue
            | Self::ReservedName
            | Self::CourtReservation
            | Self::Confusable
            | Self::RequestPending
            | Self::StatusPresent
            | Self::Busy => 2306,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_parse_back() {
        for r in Rule::ALL {
            assert_eq!(Rule::parse(r.id()), Some(r));
        }
        let ids: std::collections::HashSet<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), Rule::ALL.len());
    }

    /// The ids and codes outside scripts depend on (docs/api.md, docs/epp.md).
    #[test]
    fn fixed_codes() {
        for (id, http, epp) in [
            ("contact-sponsor", 409, 2305),
            ("reseller-sponsor", 409, 2305),
            ("host-in-use", 409, 2305),
            ("auth-code-locked", 409, 2202),
            ("auth-code", 403, 2202),
            ("dispute-lock", 409, 2304),
            ("hold", 409, 2304),
            ("transfer-pending", 409, 2300),
            ("exists", 409, 2302),
            ("client-update-prohibited", 409, 2304),
            ("client-transfer-prohibited", 409, 2304),
            ("client-delete-prohibited", 409, 2304),
            ("client-renew-prohibited", 409, 2304),
            ("status-present", 409, 2306),
            ("status-absent", 409, 2303),
        ] {
            let r = Rule::parse(id).unwrap();
            assert_eq!((r.http_status(), r.epp_code()), (http, epp), "{id}");
        }
    }

    /// Every id the lifecycle's lock rules refuse with is a rule.
    #[test]
    fn lifecycle_ids_are_rules() {
        for id in [
            "hold",
            "dispute-lock",
            "verification-overdue",
            "registrant-lock",
            "transfer-lock",
            "expired",
            "transfer-pending",
            "closing",
            "client-update-prohibited",
            "client-transfer-prohibited",
            "client-delete-prohibited",
            "client-renew-prohibited",
        ] {
            assert!(Rule::parse(id).is_some(), "{id}");
        }
    }
}
