//! One change to one domain as an edge declares it ([`DomainUpdate`]):
//! every edge builds one (the REST API one part at a time, EPP
//! `domain:update` all its `add`/`rem`/`chg` parts at once) and the
//! registry validates and applies it in one transaction.

use crate::model::DsRecord;
use crate::registry::client_status::ClientStatusChange;
use crate::registry::error::{self, Result};

use super::ds::{validate_set, DsIn};
use super::nameserver::NameserverIn;

/// The parts of one domain change; each part present is checked against
/// its own lock rule, and all apply or none.
#[derive(Debug, Clone, Default)]
pub struct DomainUpdate {
    /// Replace the NS set by names (the API; links to no host object).
    pub ns_set: Option<Vec<NameserverIn>>,
    /// Remove these nameservers (by name).
    pub ns_rem: Vec<String>,
    /// Add these nameservers by name (EPP `hostAttr`; links nothing).
    pub ns_add: Vec<NameserverIn>,
    /// Add these host objects (EPP `hostObj`): each must exist; the domain
    /// is linked to it and follows its changes.
    pub ns_add_hosts: Vec<String>,
    /// Replace the DS set.
    pub ds_set: Option<Vec<DsIn>>,
    /// Remove every DS record first.
    pub ds_rem_all: bool,
    pub ds_rem: Vec<DsIn>,
    pub ds_add: Vec<DsIn>,
    /// Who declared a DS change (`registrar API`, `EPP`, `CDS`), for history.
    pub ds_source: Option<String>,
    /// New admin / tech contact (`Some(None)` removes it).
    pub admin: Option<Option<String>>,
    pub tech: Option<Option<String>>,
    /// The outgoing registrant asks to hand the domain to this contact.
    pub registrant: Option<String>,
    /// A registrar-chosen auth code.
    pub auth_code: Option<String>,
    /// The sponsor's `client*` statuses (EPP `add`/`rem` `status`).
    pub client_statuses: Option<ClientStatusChange>,
}

impl DomainUpdate {
    pub(crate) fn ns_change(&self) -> bool {
        self.ns_set.is_some()
            || !self.ns_rem.is_empty()
            || !self.ns_add.is_empty()
            || !self.ns_add_hosts.is_empty()
    }
    pub(crate) fn ds_change(&self) -> bool {
        self.ds_set.is_some()
            || self.ds_rem_all
            || !self.ds_rem.is_empty()
            || !self.ds_add.is_empty()
    }
    /// No part at all (an EPP restore request has none).
    pub fn is_empty(&self) -> bool {
        !self.ns_change()
            && !self.ds_change()
            && self.admin.is_none()
            && self.tech.is_none()
            && self.registrant.is_none()
            && self.auth_code.is_none()
            && self.client_statuses.is_none()
    }
}

/// [`validate_set`] with its refusals as the domain's field errors (the
/// registry's one mapping: every edge renders it like any other).
pub fn ds_records(ds: &[DsIn], has_ns: bool) -> Result<Vec<DsRecord>> {
    validate_set(ds, has_ns).map_err(|v| error::fields("domain", v))
}

/// The DS parts of a [`DomainUpdate`], each record validated.
#[derive(Debug, Clone, Default)]
pub(crate) struct DsChange {
    pub set: Option<Vec<DsRecord>>,
    pub rem_all: bool,
    pub rem: Vec<DsRecord>,
    pub add: Vec<DsRecord>,
}

impl DomainUpdate {
    /// Every DS record the update names, by the DS rule (whether the
    /// domain has nameservers for them is checked on the domain).
    pub(crate) fn ds_checked(&self) -> Result<DsChange> {
        Ok(DsChange {
            set: self
                .ds_set
                .as_deref()
                .map(|s| ds_records(s, true))
                .transpose()?,
            rem_all: self.ds_rem_all,
            rem: ds_records(&self.ds_rem, true)?,
            add: ds_records(&self.ds_add, true)?,
        })
    }
}
