//! The frozen record layouts of older schema versions (`v1` to `v6`),
//! each with its conversion into the current model.

/// Schemas 5 and 6: the domain layout schema 7 changed (`client_statuses`
/// added at the end of the registration).
pub mod v6 {
    use serde::Deserialize;

    use crate::model::{
        ts, ts_opt, Closing, DsRecord, Hold, Nameserver, PendingRegistrant, PendingTransfer,
        Timestamp,
    };
    use crate::names::{DomainName, HostName};

    #[derive(Deserialize)]
    pub struct Registration {
        pub reseller: Option<String>,
        pub hold_by_operator: bool,
        pub dispute: Option<Hold>,
        #[serde(with = "ts_opt")]
        pub auth_info_expires: Option<Timestamp>,
        pub pending_transfer: Option<PendingTransfer>,
        pub pending_registrant: Option<PendingRegistrant>,
        pub closing: Option<Closing>,
        #[serde(with = "ts_opt")]
        pub registrant_since: Option<Timestamp>,
        pub host_links: Vec<HostName>,
        #[serde(with = "ts_opt")]
        pub registry_moved: Option<Timestamp>,
    }

    #[derive(Deserialize)]
    pub struct Domain {
        pub name: DomainName,
        pub registrar: String,
        pub registrant: String,
        pub admin: Option<String>,
        pub tech: Option<String>,
        #[serde(with = "ts")]
        pub created: Timestamp,
        #[serde(with = "ts")]
        pub paid_till: Timestamp,
        pub nameservers: Vec<Nameserver>,
        pub auth_info: Option<String>,
        pub hold: Option<Hold>,
        #[serde(with = "ts_opt")]
        pub verification_requested: Option<Timestamp>,
        #[serde(with = "ts_opt")]
        pub transferred: Option<Timestamp>,
        #[serde(with = "ts")]
        pub updated: Timestamp,
        pub registration: Registration,
        pub ds: Vec<DsRecord>,
    }
}

impl From<v6::Domain> for crate::model::Domain {
    fn from(v: v6::Domain) -> Self {
        let r = v.registration;
        Self {
            name: v.name,
            registrar: v.registrar,
            registrant: v.registrant,
            admin: v.admin,
            tech: v.tech,
            created: v.created,
            paid_till: v.paid_till,
            nameservers: v.nameservers,
            auth_info: v.auth_info,
            hold: v.hold,
            verification_requested: v.verification_requested,
            transferred: v.transferred,
            updated: v.updated,
            registration: crate::model::Registration {
                reseller: r.reseller,
                hold_by_operator: r.hold_by_operator,
                dispute: r.dispute,
                auth_info_expires: r.auth_info_expires,
                pending_transfer: r.pending_transfer,
                pending_registrant: r.pending_registrant,
                closing: r.closing,
                registrant_since: r.registrant_since,
                host_links: r.host_links,
                registry_moved: r.registry_moved,
                client_statuses: Default::default(),
            },
            ds: v.ds,
        }
    }
}
/// Schema 4: the domain layout schema 5 changed (`registry_moved` added
/// at the end of the registration).
pub mod v4 {
    use serde::Deserialize;

    use crate::model::{
        ts, ts_opt, Closing, DsRecord, Hold, Nameserver, PendingRegistrant, PendingTransfer,
        Timestamp,
    };
    use crate::names::{DomainName, HostName};

    #[derive(Deserialize)]
    pub struct Registration {
        pub reseller: Option<String>,
        pub hold_by_operator: bool,
        pub dispute: Option<Hold>,
        #[serde(with = "ts_opt")]
        pub auth_info_expires: Option<Timestamp>,
        pub pending_transfer: Option<PendingTransfer>,
        pub pending_registrant: Option<PendingRegistrant>,
        pub closing: Option<Closing>,
        #[serde(with = "ts_opt")]
        pub registrant_since: Option<Timestamp>,
        pub host_links: Vec<HostName>,
    }

    #[derive(Deserialize)]
    pub struct Domain {
        pub name: DomainName,
        pub registrar: String,
        pub registrant: String,
        pub admin: Option<String>,
        pub tech: Option<String>,
        #[serde(with = "ts")]
        pub created: Timestamp,
        #[serde(with = "ts")]
        pub paid_till: Timestamp,
        pub nameservers: Vec<Nameserver>,
        pub auth_info: Option<String>,
        pub hold: Option<Hold>,
        #[serde(with = "ts_opt")]
        pub verification_requested: Option<Timestamp>,
        #[serde(with = "ts_opt")]
        pub transferred: Option<Timestamp>,
        #[serde(with = "ts")]
        pub updated: Timestamp,
        pub registration: Registration,
        pub ds: Vec<DsRecord>,
    }

    // The delegation layouts of schemas 2–5 (schema 6 added a round's
    // `queue_lag_ms` and a downtime entry's `unmeasured_ms`).
    pub use delegation::*;
    mod delegation {
        use serde::Deserialize;
        #[cfg(test)]
        use serde::Serialize;

        use crate::model::{
            ts, ts_opt, DelegationState, DsRecord, FailStreak, Finding, Nameserver, ServerReport,
            Timestamp, Violation,
        };
        use crate::names::HostName;

        #[derive(Deserialize)]
        #[cfg_attr(test, derive(Serialize))]
        pub struct ServerDowntime {
            pub server: HostName,
            #[serde(with = "ts")]
            pub period_start: Timestamp,
            pub unreachable_secs: u64,
            pub unreachable_ms: u64,
            pub last_reachable: Option<bool>,
            #[serde(with = "ts_opt")]
            pub last_probe: Option<Timestamp>,
            pub address: Option<String>,
        }

        #[derive(Deserialize)]
        #[cfg_attr(test, derive(Serialize))]
        pub struct RoundSummary {
            #[serde(with = "ts")]
            pub at: Timestamp,
            pub passed: bool,
            pub duration_ms: u64,
            pub findings: Vec<Finding>,
            pub servers: Vec<ServerReport>,
            pub inconclusive: Option<String>,
        }

        #[derive(Deserialize)]
        #[cfg_attr(test, derive(Serialize))]
        pub struct DelegationRecord {
            pub state: DelegationState,
            pub ns_fingerprint: String,
            #[serde(with = "ts_opt")]
            pub window_start: Option<Timestamp>,
            #[serde(with = "ts_opt")]
            pub window_end: Option<Timestamp>,
            pub rounds: u32,
            pub last_round: Option<RoundSummary>,
            #[serde(with = "ts_opt")]
            pub next_probe: Option<Timestamp>,
            pub downtime: Vec<ServerDowntime>,
            pub violation: Option<Violation>,
            #[serde(with = "ts_opt")]
            pub delegated_at: Option<Timestamp>,
            #[serde(with = "ts")]
            pub changed_at: Timestamp,
            pub blocked: Vec<String>,
            #[serde(with = "ts_opt")]
            pub blocked_since: Option<Timestamp>,
            pub failing: Option<FailStreak>,
            pub last_violation: Option<Violation>,
            pub published: Vec<Nameserver>,
            pub pending: Option<Box<DelegationRecord>>,
            pub window_used_ms: u64,
            #[serde(with = "ts_opt")]
            pub last_look: Option<Timestamp>,
            pub conclusive_rounds: u32,
            pub published_ds: Vec<DsRecord>,
        }
    }
}

impl From<v4::Domain> for crate::model::Domain {
    fn from(v: v4::Domain) -> Self {
        let r = v.registration;
        Self {
            name: v.name,
            registrar: v.registrar,
            registrant: v.registrant,
            admin: v.admin,
            tech: v.tech,
            created: v.created,
            paid_till: v.paid_till,
            nameservers: v.nameservers,
            auth_info: v.auth_info,
            hold: v.hold,
            verification_requested: v.verification_requested,
            transferred: v.transferred,
            updated: v.updated,
            registration: crate::model::Registration {
                reseller: r.reseller,
                hold_by_operator: r.hold_by_operator,
                dispute: r.dispute,
                auth_info_expires: r.auth_info_expires,
                pending_transfer: r.pending_transfer,
                pending_registrant: r.pending_registrant,
                closing: r.closing,
                registrant_since: r.registrant_since,
                host_links: r.host_links,
                registry_moved: None,
                client_statuses: Default::default(),
            },
            ds: v.ds,
        }
    }
}

impl From<v4::ServerDowntime> for crate::model::ServerDowntime {
    fn from(v: v4::ServerDowntime) -> Self {
        Self {
            server: v.server,
            period_start: v.period_start,
            unreachable_secs: v.unreachable_secs,
            unreachable_ms: v.unreachable_ms,
            last_reachable: v.last_reachable,
            last_probe: v.last_probe,
            address: v.address,
            unmeasured_ms: 0,
        }
    }
}

impl From<v4::RoundSummary> for crate::model::RoundSummary {
    fn from(v: v4::RoundSummary) -> Self {
        Self {
            at: v.at,
            passed: v.passed,
            duration_ms: v.duration_ms,
            findings: v.findings,
            servers: v.servers,
            inconclusive: v.inconclusive,
            queue_lag_ms: 0,
        }
    }
}

impl From<v4::DelegationRecord> for crate::model::DelegationRecord {
    fn from(v: v4::DelegationRecord) -> Self {
        Self {
            state: v.state,
            ns_fingerprint: v.ns_fingerprint,
            window_start: v.window_start,
            window_end: v.window_end,
            rounds: v.rounds,
            last_round: v.last_round.map(Into::into),
            next_probe: v.next_probe,
            downtime: v.downtime.into_iter().map(Into::into).collect(),
            violation: v.violation,
            delegated_at: v.delegated_at,
            changed_at: v.changed_at,
            blocked: v.blocked,
            blocked_since: v.blocked_since,
            failing: v.failing,
            last_violation: v.last_violation,
            published: v.published,
            pending: v.pending.map(|p| Box::new((*p).into())),
            window_used_ms: v.window_used_ms,
            last_look: v.last_look,
            conclusive_rounds: v.conclusive_rounds,
            published_ds: v.published_ds,
        }
    }
}

/// Schema 3 (schema 2 and 3 share it): the domain layout schema 4 changed.
pub mod v3 {
    use serde::Deserialize;

    use crate::model::{
        ts, ts_opt, Closing, DsRecord, Hold, Nameserver, PendingRegistrant, PendingTransfer,
        Timestamp,
    };
    use crate::names::DomainName;

    #[derive(Deserialize)]
    pub struct Registration {
        pub reseller: Option<String>,
        pub hold_by_operator: bool,
        pub dispute: Option<Hold>,
        #[serde(with = "ts_opt")]
        pub auth_info_expires: Option<Timestamp>,
        pub pending_transfer: Option<PendingTransfer>,
        pub pending_registrant: Option<PendingRegistrant>,
        pub closing: Option<Closing>,
        #[serde(with = "ts_opt")]
        pub registrant_since: Option<Timestamp>,
    }

    #[derive(Deserialize)]
    pub struct Domain {
        pub name: DomainName,
        pub registrar: String,
        pub registrant: String,
        pub admin: Option<String>,
        pub tech: Option<String>,
        #[serde(with = "ts")]
        pub created: Timestamp,
        #[serde(with = "ts")]
        pub paid_till: Timestamp,
        pub nameservers: Vec<Nameserver>,
        pub auth_info: Option<String>,
        pub hold: Option<Hold>,
        #[serde(with = "ts_opt")]
        pub verification_requested: Option<Timestamp>,
        #[serde(with = "ts_opt")]
        pub transferred: Option<Timestamp>,
        #[serde(with = "ts")]
        pub updated: Timestamp,
        pub registration: Registration,
        pub ds: Vec<DsRecord>,
    }
}

impl From<v3::Domain> for crate::model::Domain {
    fn from(v: v3::Domain) -> Self {
        let r = v.registration;
        Self {
            name: v.name,
            registrar: v.registrar,
            registrant: v.registrant,
            admin: v.admin,
            tech: v.tech,
            created: v.created,
            paid_till: v.paid_till,
            nameservers: v.nameservers,
            auth_info: v.auth_info,
            hold: v.hold,
            verification_requested: v.verification_requested,
            transferred: v.transferred,
            updated: v.updated,
            registration: crate::model::Registration {
                reseller: r.reseller,
                hold_by_operator: r.hold_by_operator,
                dispute: r.dispute,
                auth_info_expires: r.auth_info_expires,
                pending_transfer: r.pending_transfer,
                pending_registrant: r.pending_registrant,
                closing: r.closing,
                registrant_since: r.registrant_since,
                host_links: Vec::new(),
                registry_moved: None,
                client_statuses: Default::default(),
            },
            ds: v.ds,
        }
    }
}

/// A schema-3 domain record from the current one's bytes (tests: the
/// layouts differ by `host_links` and `registry_moved`, which must be
/// empty, just before `ds`).
#[cfg(test)]
pub(crate) fn v3_domain_bytes(d: &crate::model::Domain) -> Vec<u8> {
    assert!(d.registration.host_links.is_empty());
    assert!(d.registration.registry_moved.is_none());
    let mut head = d.clone();
    head.ds.clear();
    let mut b = postcard::to_allocvec(&head).expect("encode");
    // The empty `ds`, and before it the empty `host_links`, the absent
    // `registry_moved` (schema 5) and no client statuses (schema 7): four
    // zero bytes.
    assert!(d.registration.client_statuses.is_empty());
    assert_eq!(&b[b.len() - 4..], &[0, 0, 0, 0]);
    b.truncate(b.len() - 4);
    b.extend(postcard::to_allocvec(&d.ds).expect("encode"));
    b
}

/// Schema 2 (EPP, DNSSEC: stops 12–18): the layouts schema 3 changed.
pub mod v2 {
    use serde::Deserialize;

    use crate::model::{ContactKind, DiscloseField, PostalAddress};

    #[derive(Deserialize)]
    pub struct Contact {
        pub handle: String,
        pub kind: ContactKind,
        pub name: Option<String>,
        pub org: Option<String>,
        pub email: Option<String>,
        pub phone: Option<String>,
        pub address: Option<PostalAddress>,
        pub tax_id: Option<String>,
        pub birth_date: Option<String>,
        pub passport: Option<String>,
        pub disclose: Vec<DiscloseField>,
        pub sponsor: Option<String>,
    }
}

impl From<v2::Contact> for crate::model::Contact {
    fn from(v: v2::Contact) -> Self {
        Self {
            handle: v.handle,
            kind: v.kind,
            name: v.name,
            org: v.org,
            email: v.email,
            phone: v.phone,
            address: v.address,
            tax_id: v.tax_id,
            birth_date: v.birth_date,
            passport: v.passport,
            disclose: v.disclose,
            sponsor: v.sponsor,
            created: None,
        }
    }
}

/// A schema-2 contact record from the current one's bytes (tests: the
/// layouts differ by the trailing `created`, which must be `None`).
#[cfg(test)]
pub(crate) fn v2_contact_bytes(current: &[u8]) -> Vec<u8> {
    assert_eq!(current.last(), Some(&0), "created must be None");
    current[..current.len() - 1].to_vec()
}

/// Schema 1: the layout of zonekeeper's first releases (stops 1–11).
pub mod v1 {
    use std::net::IpAddr;

    use serde::Deserialize;

    use crate::model::{
        ts, ts_opt, ContactKind, DelegationState, DiscloseField, Finding, Hold, Nameserver,
        PostalAddress, Timestamp,
    };
    use crate::names::{DomainName, HostName};

    #[derive(Deserialize)]
    pub struct ServerReport {
        pub name: String,
        pub addresses: Vec<String>,
        pub reachable: bool,
        pub soa_serial: Option<u32>,
        pub rtt_ms: Option<u64>,
    }

    #[derive(Deserialize)]
    pub struct ServerDowntime {
        pub server: HostName,
        #[serde(with = "ts")]
        pub period_start: Timestamp,
        pub unreachable_secs: u64,
        pub unreachable_ms: u64,
        pub last_reachable: Option<bool>,
        #[serde(with = "ts_opt")]
        pub last_probe: Option<Timestamp>,
    }

    #[derive(Deserialize)]
    pub struct Violation {
        #[serde(with = "ts")]
        pub since: Timestamp,
        pub finding_ids: Vec<String>,
        pub message: String,
    }

    #[derive(Deserialize)]
    pub struct Registrar {
        pub handle: String,
        pub name: String,
        pub url: Option<String>,
        pub email: Option<String>,
        pub api_token_sha256: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Contact {
        pub handle: String,
        pub kind: ContactKind,
        pub name: Option<String>,
        pub org: Option<String>,
        pub email: Option<String>,
        pub phone: Option<String>,
        pub address: Option<PostalAddress>,
        pub tax_id: Option<String>,
        pub birth_date: Option<String>,
        pub passport: Option<String>,
        pub disclose: Vec<DiscloseField>,
    }

    #[derive(Deserialize)]
    pub struct Domain {
        pub name: DomainName,
        pub registrar: String,
        pub registrant: String,
        pub admin: Option<String>,
        pub tech: Option<String>,
        #[serde(with = "ts")]
        pub created: Timestamp,
        #[serde(with = "ts")]
        pub paid_till: Timestamp,
        pub nameservers: Vec<Nameserver>,
        pub auth_info: Option<String>,
        pub hold: Option<Hold>,
        #[serde(with = "ts_opt")]
        pub verification_requested: Option<Timestamp>,
        #[serde(with = "ts_opt")]
        pub transferred: Option<Timestamp>,
        #[serde(with = "ts")]
        pub updated: Timestamp,
    }

    #[derive(Deserialize)]
    pub struct RoundSummary {
        #[serde(with = "ts")]
        pub at: Timestamp,
        pub passed: bool,
        pub duration_ms: u64,
        pub findings: Vec<Finding>,
        pub servers: Vec<ServerReport>,
    }

    #[derive(Deserialize)]
    pub struct DelegationRecord {
        pub state: DelegationState,
        pub ns_fingerprint: String,
        #[serde(with = "ts_opt")]
        pub window_start: Option<Timestamp>,
        #[serde(with = "ts_opt")]
        pub window_end: Option<Timestamp>,
        pub rounds: u32,
        pub last_round: Option<RoundSummary>,
        #[serde(with = "ts_opt")]
        pub next_probe: Option<Timestamp>,
        pub downtime: Vec<ServerDowntime>,
        pub violation: Option<Violation>,
        #[serde(with = "ts_opt")]
        pub delegated_at: Option<Timestamp>,
        #[serde(with = "ts")]
        pub changed_at: Timestamp,
        pub blocked: Vec<String>,
        #[serde(with = "ts_opt")]
        pub blocked_since: Option<Timestamp>,
    }

    #[derive(Deserialize)]
    pub struct HistoryEvent {
        #[serde(with = "ts")]
        pub at: Timestamp,
        pub from: Option<DelegationState>,
        pub to: DelegationState,
        pub reason: String,
    }

    #[derive(Deserialize)]
    pub struct HostRecord {
        pub name: String,
        pub addresses: Vec<IpAddr>,
        pub domains: u64,
    }
}

// ---- schema 1 -> current ------------------------------------------------
// New fields take their defaults here; list each one explicitly so adding a
// field to the model is a compile error until it is decided here.

impl From<v1::Registrar> for crate::model::Registrar {
    fn from(v: v1::Registrar) -> Self {
        Self {
            handle: v.handle,
            name: v.name,
            url: v.url,
            email: v.email,
            api_token_sha256: v.api_token_sha256,
            epp_cert_sha256: Vec::new(),
            epp_password_hash: None,
            epp_poll_acked: 0,
        }
    }
}

impl From<v1::Contact> for crate::model::Contact {
    fn from(v: v1::Contact) -> Self {
        Self {
            handle: v.handle,
            kind: v.kind,
            name: v.name,
            org: v.org,
            email: v.email,
            phone: v.phone,
            address: v.address,
            tax_id: v.tax_id,
            birth_date: v.birth_date,
            passport: v.passport,
            disclose: v.disclose,
            sponsor: None,
            created: None,
        }
    }
}

impl From<v1::Domain> for crate::model::Domain {
    fn from(v: v1::Domain) -> Self {
        Self {
            name: v.name,
            registrar: v.registrar,
            registrant: v.registrant,
            admin: v.admin,
            tech: v.tech,
            created: v.created,
            paid_till: v.paid_till,
            nameservers: v.nameservers,
            auth_info: v.auth_info,
            hold: v.hold,
            verification_requested: v.verification_requested,
            transferred: v.transferred,
            updated: v.updated,
            registration: Default::default(),
            ds: Vec::new(),
        }
    }
}

impl From<v1::RoundSummary> for crate::model::RoundSummary {
    fn from(v: v1::RoundSummary) -> Self {
        Self {
            at: v.at,
            passed: v.passed,
            duration_ms: v.duration_ms,
            findings: v.findings,
            servers: v.servers.into_iter().map(Into::into).collect(),
            inconclusive: None,
            queue_lag_ms: 0,
        }
    }
}

impl From<v1::DelegationRecord> for crate::model::DelegationRecord {
    fn from(v: v1::DelegationRecord) -> Self {
        Self {
            state: v.state,
            ns_fingerprint: v.ns_fingerprint,
            window_start: v.window_start,
            window_end: v.window_end,
            rounds: v.rounds,
            last_round: v.last_round.map(Into::into),
            next_probe: v.next_probe,
            downtime: v.downtime.into_iter().map(Into::into).collect(),
            violation: v.violation.map(Into::into),
            delegated_at: v.delegated_at,
            changed_at: v.changed_at,
            blocked: v.blocked,
            blocked_since: v.blocked_since,
            failing: None,
            last_violation: None,
            published: Vec::new(),
            pending: None,
            // A window under way is taken as used up to its last look:
            // schema 1 did not measure conclusive time.
            window_used_ms: 0,
            last_look: None,
            conclusive_rounds: v.rounds,
            published_ds: Vec::new(),
        }
    }
}

impl From<v1::ServerReport> for crate::model::ServerReport {
    fn from(v: v1::ServerReport) -> Self {
        Self {
            name: v.name,
            addresses: v.addresses,
            reachable: v.reachable,
            soa_serial: v.soa_serial,
            rtt_ms: v.rtt_ms,
            unreachable_addresses: Vec::new(),
        }
    }
}

impl From<v1::ServerDowntime> for crate::model::ServerDowntime {
    fn from(v: v1::ServerDowntime) -> Self {
        Self {
            server: v.server,
            period_start: v.period_start,
            unreachable_secs: v.unreachable_secs,
            unreachable_ms: v.unreachable_ms,
            last_reachable: v.last_reachable,
            last_probe: v.last_probe,
            address: None,
            unmeasured_ms: 0,
        }
    }
}

impl From<v1::Violation> for crate::model::Violation {
    fn from(v: v1::Violation) -> Self {
        Self {
            since: v.since,
            finding_ids: v.finding_ids,
            message: v.message,
            until: None,
        }
    }
}

impl From<v1::HistoryEvent> for crate::model::HistoryEvent {
    fn from(v: v1::HistoryEvent) -> Self {
        Self {
            at: v.at,
            from: v.from,
            to: v.to,
            reason: v.reason,
        }
    }
}

impl From<v1::HostRecord> for super::super::contract::HostRecord {
    fn from(v: v1::HostRecord) -> Self {
        Self {
            name: v.name,
            addresses: v.addresses,
            domains: v.domains,
        }
    }
}
