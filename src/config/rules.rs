//! The registry's own records and rules: `[lifecycle]`, `[zone]` and
//! `[names]`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::names::NamePolicy;

use super::error::ConfigError;
use super::forms::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    pub registration_period: Months,
    #[serde(deserialize_with = "human")]
    pub grace_period: Duration,
    #[serde(deserialize_with = "human")]
    pub verification_suspend: Duration,
    #[serde(deserialize_with = "human")]
    pub verification_cancel: Duration,
    #[serde(deserialize_with = "human")]
    pub transfer_lock: Duration,
    /// Registrant change and early cancellation are refused this long after
    /// the registrant acquired the domain or after a registrar change.
    #[serde(deserialize_with = "human")]
    pub registrant_lock: Duration,
    /// A pending registrar change is approved automatically after this.
    #[serde(deserialize_with = "human")]
    pub transfer_auto_approve: Duration,
    /// A registrant change request lapses unless accepted within this.
    #[serde(deserialize_with = "human")]
    pub registrant_change_timeout: Duration,
    /// An auth code is accepted this long after it was set.
    #[serde(deserialize_with = "human")]
    pub auth_code_lifetime: Duration,
    /// Wrong auth codes a domain takes within `auth_code_lifetime` before
    /// it refuses every code until its sponsor sets a new one.
    pub auth_code_max_failures: u32,
    /// Shortest auth code a registrar may set (characters).
    pub auth_code_min_length: usize,
    /// After a court cancellation the name is reserved for the claimant.
    #[serde(deserialize_with = "human")]
    pub court_reservation: Duration,
    /// How often `serve` completes due registry work (automatic transfer
    /// approvals, lapsed requests).
    #[serde(deserialize_with = "human")]
    pub sweep_interval: Duration,
    /// File of reserved names (one per line, `#` comments) that cannot be
    /// created or imported.
    pub reserved_names: Option<PathBuf>,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            registration_period: Months(12),
            grace_period: Duration::from_secs(30 * 86400),
            verification_suspend: Duration::from_secs(14 * 86400),
            verification_cancel: Duration::from_secs(60 * 86400),
            transfer_lock: Duration::from_secs(60 * 86400),
            registrant_lock: Duration::from_secs(60 * 86400),
            transfer_auto_approve: Duration::from_secs(5 * 86400),
            registrant_change_timeout: Duration::from_secs(14 * 86400),
            auth_code_lifetime: Duration::from_secs(30 * 86400),
            auth_code_max_failures: 5,
            auth_code_min_length: 8,
            court_reservation: Duration::from_secs(60 * 86400),
            sweep_interval: Duration::from_secs(60),
            reserved_names: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZoneConfig {
    /// Where `serve` keeps the parent zone file; `{zone}` is replaced by the
    /// zone name when the registry has several zones.
    pub output: Option<PathBuf>,
    /// The zone's primary server (SOA MNAME).
    pub primary: String,
    /// The zone's contact mailbox (SOA RNAME, as a domain name).
    pub hostmaster: String,
    /// The zone's own nameservers (apex NS).
    pub nameservers: Vec<String>,
    pub ttl: u32,
    pub ns_ttl: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            output: None,
            primary: "a.dns.registry.invalid".into(),
            hostmaster: "hostmaster.registry.invalid".into(),
            nameservers: vec![
                "a.dns.registry.invalid".into(),
                "b.dns.registry.invalid".into(),
            ],
            ttl: 86400,
            ns_ttl: 345600,
            refresh: 3600,
            retry: 900,
            expire: 2592000,
            minimum: 3600,
        }
    }
}

/// Per-zone name policy (docs/config.md `[names]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamesConfig {
    /// Name table files (format: `config/names/ru.txt`), each naming its
    /// zone; a table replaces the built-in policy of that zone. Default:
    /// none, i.e. the built-in copies of `config/names/ru.txt` and
    /// `config/names/rf.txt` for `ru` and `рф`, and the registry's name rules alone
    /// for any other zone.
    pub tables: Vec<PathBuf>,
}

impl NamesConfig {
    /// Read and parse every table.
    pub fn load(&self) -> Result<Vec<NamePolicy>, ConfigError> {
        self.tables
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?;
                NamePolicy::parse_table(&text, &p.display().to_string())
                    .map_err(|e| ConfigError::Invalid(format!("names.tables: {e}")))
            })
            .collect()
    }
}
