//! A new registration as an edge declares it ([`CreateIn`]).

use super::ds::DsIn;
use super::nameserver::NameserverIn;

/// A new registration (`POST /api/v1/domains`, the import format's domain fields, docs/import.md; the
/// registrar is the caller).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIn {
    pub name: String,
    /// If given, must be the caller.
    pub registrar: Option<String>,
    pub registrant: String,
    pub admin: Option<String>,
    pub tech: Option<String>,
    #[serde(default)]
    pub nameservers: Vec<NameserverIn>,
    pub auth_info: Option<String>,
    pub reseller: Option<String>,
    /// DS set (docs/import.md `ds`), declared with the nameservers in the same
    /// transaction.
    #[serde(default)]
    pub ds: Vec<DsIn>,
    /// Host objects named by reference (EPP `hostObj`): each must exist;
    /// the domain is linked to them (not a field of the API's body).
    #[serde(skip)]
    pub host_objects: Vec<String>,
}
