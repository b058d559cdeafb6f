//! Store schema migrations, run by the store itself on open.
//!
//! Records are postcard-encoded, which is compact but not self-describing:
//! a struct with a field added no longer decodes from old bytes. So every
//! layout the store has ever written is kept here as a frozen copy, with a
//! conversion to the current model, and [`migrate`] rewrites an older store
//! in one write transaction (all of it or nothing) before anything reads it.
//!
//! Changing a stored type (a field added, removed or reordered in
//! [`crate::model::Domain`], `Registrar`, `Contact`, `DelegationRecord`,
//! `HistoryEvent`, `RoundSummary`, [`crate::store::HostRecord`] or a type
//! nested in them) means: bump [`super::contract::SCHEMA_VERSION`], freeze the old
//! layout in a `vN` module here (nested types it still shares with the
//! model may stay shared), and convert in [`migrate`].

use ::redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{de::DeserializeOwned, Serialize};

use super::contract::{Result, StoreError};

/// Rewrite every record of a `&str`-keyed table from `Old` to `New`.
pub(super) fn rewrite<Old, New>(
    txn: &WriteTransaction,
    def: TableDefinition<&str, &[u8]>,
    convert: impl Fn(Old) -> New,
) -> Result<u64>
where
    Old: DeserializeOwned,
    New: Serialize,
{
    let mut t = txn.open_table(def).map_err(super::redb_schema::err)?;
    let keys: Vec<String> = t
        .iter()
        .map_err(super::redb_schema::err)?
        .map(|kv| kv.map(|(k, _)| k.value().to_string()))
        .collect::<std::result::Result<_, _>>()
        .map_err(super::redb_schema::err)?;
    let mut n = 0;
    for k in keys {
        let old: Old = match t.get(k.as_str()).map_err(super::redb_schema::err)? {
            Some(v) => decode(v.value(), &format!("{def}"), &k)?,
            None => continue,
        };
        let bytes = super::codec::enc(&convert(old))?;
        t.insert(k.as_str(), bytes.as_slice())
            .map_err(super::redb_schema::err)?;
        n += 1;
    }
    Ok(n)
}

/// Rewrite every entry of a `(name, seq)`-keyed log table.
pub(super) fn rewrite_log<Old, New>(
    txn: &WriteTransaction,
    def: TableDefinition<(&str, u64), &[u8]>,
    convert: impl Fn(Old) -> New,
) -> Result<u64>
where
    Old: DeserializeOwned,
    New: Serialize,
{
    let mut t = txn.open_table(def).map_err(super::redb_schema::err)?;
    let keys: Vec<(String, u64)> = t
        .iter()
        .map_err(super::redb_schema::err)?
        .map(|kv| {
            kv.map(|(k, _)| {
                let (a, b) = k.value();
                (a.to_string(), b)
            })
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(super::redb_schema::err)?;
    let mut n = 0;
    for (k, seq) in keys {
        let old: Old = match t.get((k.as_str(), seq)).map_err(super::redb_schema::err)? {
            Some(v) => decode(v.value(), &format!("{def}"), &k)?,
            None => continue,
        };
        let bytes = super::codec::enc(&convert(old))?;
        t.insert((k.as_str(), seq), bytes.as_slice())
            .map_err(super::redb_schema::err)?;
        n += 1;
    }
    Ok(n)
}

fn decode<T: DeserializeOwned>(b: &[u8], table: &str, key: &str) -> Result<T> {
    postcard::from_bytes(b).map_err(|e| {
        StoreError::Corrupt(format!(
            "migration: {table}[{key}] does not decode as the older layout: {e}"
        ))
    })
}

/// Bring a store written with schema `from` up to [`super::contract::SCHEMA_VERSION`]
/// inside `txn` (the caller commits it together with the new version).
pub(super) fn migrate(txn: &WriteTransaction, from: u32) -> Result<()> {
    use super::redb_schema::tables::*;
    if from < 2 {
        rewrite(
            txn,
            REGISTRARS,
            <crate::model::Registrar as From<v1::Registrar>>::from,
        )?;
        rewrite(
            txn,
            CONTACTS,
            <crate::model::Contact as From<v1::Contact>>::from,
        )?;
        rewrite(
            txn,
            DOMAINS,
            <crate::model::Domain as From<v1::Domain>>::from,
        )?;
        rewrite(
            txn,
            DELEGATION,
            <crate::model::DelegationRecord as From<v1::DelegationRecord>>::from,
        )?;
        rewrite(
            txn,
            HOSTS,
            <super::contract::HostRecord as From<v1::HostRecord>>::from,
        )?;
        rewrite_log(
            txn,
            HISTORY,
            <crate::model::HistoryEvent as From<v1::HistoryEvent>>::from,
        )?;
        rewrite_log(
            txn,
            ROUNDS,
            <crate::model::RoundSummary as From<v1::RoundSummary>>::from,
        )?;
        return Ok(());
    }
    if from < 3 {
        // Schema 3 gave contacts a creation time (unknown for these).
        rewrite(
            txn,
            CONTACTS,
            <crate::model::Contact as From<v2::Contact>>::from,
        )?;
    }
    if from < 4 {
        // Schema 4 gave registrations their host-object links (none for
        // these: a name declared before links to nothing).
        rewrite(
            txn,
            DOMAINS,
            <crate::model::Domain as From<v3::Domain>>::from,
        )?;
    } else if from < 5 {
        // Schema 5 gave registrations the registry-move time (none).
        rewrite(
            txn,
            DOMAINS,
            <crate::model::Domain as From<v4::Domain>>::from,
        )?;
    } else if from < 7 {
        // Schema 7 gave registrations the registrar-set client statuses
        // (none).
        rewrite(
            txn,
            DOMAINS,
            <crate::model::Domain as From<v6::Domain>>::from,
        )?;
    }
    if from < 6 {
        // Schema 6 gave rounds their queue lag and downtime entries their
        // unmeasured time (none measured for these).
        rewrite(
            txn,
            DELEGATION,
            <crate::model::DelegationRecord as From<v4::DelegationRecord>>::from,
        )?;
        rewrite_log(
            txn,
            ROUNDS,
            <crate::model::RoundSummary as From<v4::RoundSummary>>::from,
        )?;
    }
    Ok(())
}

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

impl From<v1::HostRecord> for super::contract::HostRecord {
    fn from(v: v1::HostRecord) -> Self {
        Self {
            name: v.name,
            addresses: v.addresses,
            domains: v.domains,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{RedbStore, Store};

    /// `fixtures/store-v1.redb` was written by the schema-1 release (30
    /// domains of the sample registry imported, testing started).
    #[test]
    fn opens_a_schema_1_store_and_migrates_it_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.redb");
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/store-v1.redb"),
            &path,
        )
        .unwrap();
        let before = std::fs::read(&path).unwrap();
        {
            let s = RedbStore::open(&path).unwrap();
            let stats = s.stats().unwrap();
            assert_eq!(stats.domains, 30);
            assert_eq!(stats.registrars, 4);
            assert_eq!(stats.contacts, 30);
            let (names, _) = s.search_domains("", None, 100).unwrap();
            assert_eq!(names.len(), 30);
            let mut testing = 0;
            for n in &names {
                let b = s
                    .bundle(n)
                    .unwrap()
                    .expect("bundle readable after migration");
                assert_eq!(b.domain.name.as_str(), n);
                assert!(b.domain.ds.is_empty(), "no DS before schema 2");
                // The look-alike index was built for the old names.
                let key = crate::names::skeleton_index_key(&b.domain.name);
                assert_eq!(s.look_alike(&key, "").unwrap().as_deref(), Some(n.as_str()));
                let d = s.delegation(n).unwrap().expect("delegation record");
                // Without DS the delegation fingerprint is the old NS one:
                // migrated records still belong to their domains.
                assert_eq!(d.ns_fingerprint, b.domain.ns_fingerprint());
                if d.state == crate::model::DelegationState::Testing {
                    testing += 1;
                    assert!(!s.history(n, 10).unwrap().is_empty());
                }
            }
            assert_eq!(testing, 28);
        }
        assert_ne!(std::fs::read(&path).unwrap(), before, "rewritten in place");
        // A second open is the fast path and reads the same data.
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(s.stats().unwrap().domains, 30);
    }

    /// Schema 2 → 3: contacts gain `created` (unknown for old ones); the
    /// sponsor stays.
    #[test]
    fn a_schema_2_contact_gets_an_unknown_creation_time() {
        use crate::store::redb_schema::tables::{CONTACTS, META};
        use ::redb::ReadableTable;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.redb");
        {
            let s = RedbStore::open(&path).unwrap();
            let mut c = crate::public::tests::full_contact(
                "EPP-1",
                crate::model::ContactKind::Person,
                vec![],
            );
            c.sponsor = Some("REG-A".into());
            let mut t = s.begin().unwrap();
            t.put_contact(&c).unwrap();
            t.commit(chrono::Utc::now()).unwrap();
        }
        {
            // Rewrite it as schema 2 wrote it.
            let db = ::redb::Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut t = w.open_table(CONTACTS).unwrap();
                let cur = t.get("EPP-1").unwrap().unwrap().value().to_vec();
                t.insert("EPP-1", super::v2_contact_bytes(&cur).as_slice())
                    .unwrap();
                let mut m = w.open_table(META).unwrap();
                m.insert("schema_version", 2u32.to_le_bytes().as_slice())
                    .unwrap();
            }
            w.commit().unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        let c = s.contact("EPP-1").unwrap().unwrap();
        assert_eq!((c.sponsor.as_deref(), c.created), (Some("REG-A"), None));
    }

    /// Schema 4 → 6: rounds gain `queue_lag_ms`, downtime entries
    /// `unmeasured_ms` (0 for old ones, also inside a pending record and
    /// in the rounds log); everything else stays.
    #[test]
    fn a_schema_4_delegation_record_and_round_get_no_lag_and_nothing_unmeasured() {
        use super::v4;
        use crate::store::redb_schema::tables::{DELEGATION, META, ROUNDS};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.redb");
        let now = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 2, 3, 4, 5).unwrap();
        let server = crate::model::ServerReport {
            name: "ns2.example.net".into(),
            addresses: vec!["192.0.2.2".into()],
            reachable: false,
            soa_serial: None,
            rtt_ms: None,
            unreachable_addresses: vec![],
        };
        let round = || v4::RoundSummary {
            at: now,
            passed: false,
            duration_ms: 1234,
            findings: vec![],
            servers: vec![server.clone()],
            inconclusive: Some("outage".into()),
        };
        let dt = || v4::ServerDowntime {
            server: crate::names::parse_host("ns2.example.net").unwrap(),
            period_start: now,
            unreachable_secs: 60,
            unreachable_ms: 60_000,
            last_reachable: Some(false),
            last_probe: Some(now),
            address: Some("192.0.2.2".into()),
        };
        let rec = |pending: Option<Box<v4::DelegationRecord>>| v4::DelegationRecord {
            state: crate::model::DelegationState::Delegated,
            ns_fingerprint: "fp".into(),
            window_start: Some(now),
            window_end: None,
            rounds: 7,
            last_round: Some(round()),
            next_probe: Some(now),
            downtime: vec![dt()],
            violation: None,
            delegated_at: Some(now),
            changed_at: now,
            blocked: vec![],
            blocked_since: None,
            failing: None,
            last_violation: None,
            published: vec![],
            pending,
            window_used_ms: 99,
            last_look: Some(now),
            conclusive_rounds: 3,
            published_ds: vec![],
        };
        let old = rec(Some(Box::new(rec(None))));
        {
            let s = RedbStore::open(&path).unwrap();
            drop(s);
            let db = ::redb::Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut t = w.open_table(DELEGATION).unwrap();
                t.insert("old.ru", postcard::to_allocvec(&old).unwrap().as_slice())
                    .unwrap();
                let mut r = w.open_table(ROUNDS).unwrap();
                r.insert(
                    ("old.ru", 0u64),
                    postcard::to_allocvec(&round()).unwrap().as_slice(),
                )
                .unwrap();
                let mut m = w.open_table(META).unwrap();
                m.insert("schema_version", 4u32.to_le_bytes().as_slice())
                    .unwrap();
            }
            w.commit().unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        let got = s.delegation("old.ru").unwrap().unwrap();
        assert_eq!(
            (got.rounds, got.window_used_ms, got.conclusive_rounds),
            (7, 99, 3)
        );
        let lr = got.last_round.as_ref().unwrap();
        assert_eq!((lr.duration_ms, lr.queue_lag_ms), (1234, 0));
        assert_eq!(lr.inconclusive.as_deref(), Some("outage"));
        assert_eq!(got.downtime[0].unreachable_ms, 60_000);
        assert_eq!(got.downtime[0].unmeasured_ms, 0);
        assert_eq!(got.downtime[0].address.as_deref(), Some("192.0.2.2"));
        let p = got.pending.as_ref().unwrap();
        assert_eq!((p.downtime[0].unmeasured_ms, p.rounds), (0, 7));
        let rounds = s.rounds("old.ru", 10).unwrap();
        assert_eq!(rounds.len(), 1);
        assert_eq!((rounds[0].duration_ms, rounds[0].queue_lag_ms), (1234, 0));
        assert_eq!(rounds[0].servers, vec![server]);
    }

    /// Schema 3 → 4: registrations gain host-object links (none: a name
    /// declared before links to nothing); everything else stays.
    #[test]
    fn a_schema_3_domain_gets_no_host_links() {
        use crate::store::redb_schema::tables::{DOMAINS, META};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.redb");
        let now = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 2, 3, 4, 5).unwrap();
        let d = crate::model::Domain {
            name: crate::names::DomainName::from_trusted("old.ru".into()),
            registrar: "A".into(),
            registrant: "C".into(),
            admin: None,
            tech: None,
            created: now,
            paid_till: now,
            nameservers: vec![],
            auth_info: Some("code".into()),
            hold: None,
            verification_requested: None,
            transferred: None,
            updated: now,
            registration: crate::model::Registration {
                reseller: Some("RS".into()),
                ..Default::default()
            },
            ds: vec![],
        };
        {
            let s = RedbStore::open(&path).unwrap();
            drop(s);
            let db = ::redb::Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut t = w.open_table(DOMAINS).unwrap();
                t.insert("old.ru", super::v3_domain_bytes(&d).as_slice())
                    .unwrap();
                let mut m = w.open_table(META).unwrap();
                m.insert("schema_version", 3u32.to_le_bytes().as_slice())
                    .unwrap();
            }
            w.commit().unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(s.domain("old.ru").unwrap().unwrap(), d);
    }

    /// Schema 4 → 5: a domain keeps its host links and gains no registry
    /// move time.
    #[test]
    fn a_schema_4_domain_keeps_its_links_and_was_not_moved() {
        use crate::store::redb_schema::tables::{DOMAINS, META};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.redb");
        let now = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 2, 3, 4, 5).unwrap();
        let d = crate::model::Domain {
            name: crate::names::DomainName::from_trusted("old.ru".into()),
            registrar: "A".into(),
            registrant: "C".into(),
            admin: None,
            tech: None,
            created: now,
            paid_till: now,
            nameservers: vec![],
            auth_info: None,
            hold: None,
            verification_requested: None,
            transferred: Some(now),
            updated: now,
            registration: crate::model::Registration {
                reseller: Some("RS".into()),
                host_links: vec![crate::names::HostName::from_trusted("ns1.old.ru".into())],
                ..Default::default()
            },
            ds: vec![],
        };
        // The schema-4 layout: the current one without `registry_moved`
        // and `client_statuses` (None and empty: two zero bytes just
        // before the empty `ds`).
        let mut v4 = postcard::to_allocvec(&d).unwrap();
        assert_eq!(&v4[v4.len() - 3..], &[0, 0, 0]);
        v4.truncate(v4.len() - 2);
        {
            let s = RedbStore::open(&path).unwrap();
            drop(s);
            let db = ::redb::Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut t = w.open_table(DOMAINS).unwrap();
                t.insert("old.ru", v4.as_slice()).unwrap();
                let mut m = w.open_table(META).unwrap();
                m.insert("schema_version", 4u32.to_le_bytes().as_slice())
                    .unwrap();
            }
            w.commit().unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(s.domain("old.ru").unwrap().unwrap(), d);
    }

    /// Schema 6 → 7: a domain keeps everything (its registry-move time
    /// too) and gains no client statuses.
    #[test]
    fn a_schema_6_domain_gets_no_client_statuses() {
        use crate::store::redb_schema::tables::{DOMAINS, META};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v6.redb");
        let now = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 2, 3, 4, 5).unwrap();
        let d = crate::model::Domain {
            name: crate::names::DomainName::from_trusted("old.ru".into()),
            registrar: "A".into(),
            registrant: "C".into(),
            admin: None,
            tech: None,
            created: now,
            paid_till: now,
            nameservers: vec![],
            auth_info: None,
            hold: None,
            verification_requested: None,
            transferred: None,
            updated: now,
            registration: crate::model::Registration {
                registry_moved: Some(now),
                ..Default::default()
            },
            ds: vec![],
        };
        // The schema-6 layout: the current one without `client_statuses`
        // (empty: one zero byte just before the empty `ds`).
        let mut v6 = postcard::to_allocvec(&d).unwrap();
        assert_eq!(&v6[v6.len() - 2..], &[0, 0]);
        v6.truncate(v6.len() - 1);
        {
            let s = RedbStore::open(&path).unwrap();
            drop(s);
            let db = ::redb::Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut t = w.open_table(DOMAINS).unwrap();
                t.insert("old.ru", v6.as_slice()).unwrap();
                let mut m = w.open_table(META).unwrap();
                m.insert("schema_version", 6u32.to_le_bytes().as_slice())
                    .unwrap();
            }
            w.commit().unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(s.domain("old.ru").unwrap().unwrap(), d);
        drop(s);
        // Migrated once: a second open reads the same.
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(s.domain("old.ru").unwrap().unwrap(), d);
    }
}
