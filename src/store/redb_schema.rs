//! The redb backend's table definitions and its error mapping, shared by
//! the backend ([`super::redb`]) and its migrations ([`super::migrate`]).

use super::contract::StoreError;

/// Table definitions.
pub(super) mod tables {
    use ::redb::TableDefinition;

    pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    pub const REGISTRARS: TableDefinition<&str, &[u8]> = TableDefinition::new("registrars");
    pub const CONTACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");
    pub const DOMAINS: TableDefinition<&str, &[u8]> = TableDefinition::new("domains");
    pub const DELEGATION: TableDefinition<&str, &[u8]> = TableDefinition::new("delegation");
    pub const HOSTS: TableDefinition<&str, &[u8]> = TableDefinition::new("hosts");
    pub const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
    pub const ROUNDS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("rounds");
    pub const STATE_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("state_counts");
    // Indexes: (key, item) -> ().
    pub const IDX_HOST_DOMAIN: TableDefinition<(&str, &str), ()> =
        TableDefinition::new("idx_host_domain");
    pub const IDX_IP_HOST: TableDefinition<(&str, &str), ()> = TableDefinition::new("idx_ip_host");
    pub const IDX_REGISTRAR: TableDefinition<(&str, &str), ()> =
        TableDefinition::new("idx_registrar");
    pub const IDX_CONTACT: TableDefinition<(&str, &str), ()> = TableDefinition::new("idx_contact");
    pub const IDX_STATE: TableDefinition<(&str, &str), ()> = TableDefinition::new("idx_state");
    pub const IDX_FN: TableDefinition<(&str, &str), ()> = TableDefinition::new("idx_entity_fn");
    /// Derived from domain records: (reseller, domain) and ("", domain) of
    /// domains with a pending registrar change.
    pub const IDX_RESELLER: TableDefinition<(&str, &str), ()> =
        TableDefinition::new("idx_reseller");
    pub const IDX_PENDING_TRANSFER: TableDefinition<(&str, &str), ()> =
        TableDefinition::new("idx_pending_transfer");
    /// The change feed: sequence -> event; and (registrar, sequence) -> ().
    pub const FEED: TableDefinition<u64, &[u8]> = TableDefinition::new("feed");
    pub const IDX_FEED: TableDefinition<(&str, u64), ()> = TableDefinition::new("idx_feed");
    /// Domain -> [`crate::model::CdsSighting`] (the CDS scanner's
    /// bootstrap observations). Created on first write.
    /// EPP host objects (RFC 5732), by name; created on first write, so a
    /// store written before them needs no migration.
    pub const HOST_OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("host_objects");
    pub const CDS_SIGHTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("cds_sightings");
    /// Resellers by lower-case handle (postcard `Reseller`); created on
    /// first write, so a store written before them needs no migration.
    pub const RESELLERS: TableDefinition<&str, &[u8]> = TableDefinition::new("resellers");
    /// Wrong auth codes per domain (postcard `AuthFailures`).
    pub const AUTH_FAILURES: TableDefinition<&str, &[u8]> = TableDefinition::new("auth_failures");
    /// Registrar webhooks and their delivery state, JSON values (created
    /// when first written).
    pub const WEBHOOKS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhooks");
    pub const WEBHOOK_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("webhook_state");
    /// (look-alike key, name): derived from DOMAINS, rebuilt on open when
    /// `KEY_SKELETONS` names another skeleton algorithm.
    pub const IDX_SKELETON: TableDefinition<(&str, &str), ()> =
        TableDefinition::new("idx_skeleton");
}

pub(super) fn err<E: Into<::redb::Error>>(e: E) -> StoreError {
    let e: ::redb::Error = e.into();
    match e {
        ::redb::Error::Corrupted(m) => StoreError::Corrupt(m),
        ::redb::Error::Io(io) if is_full(&io) => StoreError::Full(io.to_string()),
        ::redb::Error::Io(io) => StoreError::Unavailable(format!("I/O error: {io}")),
        // The database refuses everything after a failed I/O until it is
        // reopened ([`RedbStore`] does that by itself).
        ::redb::Error::PreviousIo | ::redb::Error::DatabaseClosed => {
            StoreError::Unavailable("reopening after an I/O error".into())
        }
        other => StoreError::Backend(other.to_string()),
    }
}

/// A full volume or an exhausted quota.
pub(super) fn is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}
