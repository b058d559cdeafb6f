//! How delegations are probed and judged: `[delegation]`, `[probe]` and
//! `[dnssec]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::forms::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnViolation {
    Report,
    Suspend,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DelegationConfig {
    /// Minimum number of declared nameservers.
    pub min_nameservers: usize,
    #[serde(deserialize_with = "human")]
    pub probe_interval: Duration,
    #[serde(deserialize_with = "human")]
    pub test_window: Duration,
    #[serde(deserialize_with = "human")]
    pub downtime_budget: Duration,
    #[serde(deserialize_with = "human")]
    pub downtime_period: Duration,
    /// Offset of the accounting day from UTC, in seconds east (Moscow: 10800).
    pub downtime_utc_offset_secs: i32,
    #[serde(deserialize_with = "human")]
    pub monitor_interval: Duration,
    pub on_violation: OnViolation,
    /// Rounds run at once by the scheduler.
    pub max_concurrent_rounds: usize,
    /// Fraction of the interval used to spread rounds (0.0–1.0).
    pub jitter: f64,
    /// Check policy profile (TOML); default: the registry's.
    pub profile: Option<PathBuf>,
    /// Re-probe this soon after a failing monitoring round, so an outage is
    /// measured by re-probes rather than extrapolated across the monitor
    /// interval, and a violation is confirmed before any sanction.
    #[serde(deserialize_with = "human")]
    pub recheck_interval: Duration,
    /// Consecutive failing monitoring rounds before a violation is
    /// confirmed (and, with `on_violation = suspend`, sanctioned).
    pub violation_confirmations: u32,
    /// The least time those failing rounds must span.
    #[serde(deserialize_with = "human")]
    pub violation_min_span: Duration,
    /// Most rounds the scheduler writes in one store transaction (group
    /// commit).
    pub commit_batch: usize,
    /// Longest the scheduler's writer waits for more rounds after the
    /// first of a batch.
    #[serde(deserialize_with = "human")]
    pub commit_wait: Duration,
}

impl Default for DelegationConfig {
    fn default() -> Self {
        Self {
            min_nameservers: 2,
            probe_interval: Duration::from_secs(10 * 60),
            test_window: Duration::from_secs(4 * 86400),
            downtime_budget: Duration::from_secs(2 * 3600),
            downtime_period: Duration::from_secs(86400),
            downtime_utc_offset_secs: 3 * 3600,
            monitor_interval: Duration::from_secs(3600),
            on_violation: OnViolation::Report,
            max_concurrent_rounds: 256,
            jitter: 0.1,
            profile: None,
            recheck_interval: Duration::from_secs(5 * 60),
            violation_confirmations: 3,
            violation_min_span: Duration::from_secs(15 * 60),
            commit_batch: 256,
            commit_wait: Duration::from_millis(2),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    pub allow_private_targets: bool,
    /// Probe loopback addresses (127.0.0.0/8, ::1) but still refuse every
    /// other special-use range: the loopback demo and lab setups, where the
    /// sample registry's documentation addresses must stay unprobed.
    pub allow_loopback_targets: bool,
    /// Resolvers for declared names given without addresses; empty = system's.
    /// Entries are `address` (port 53) or `address:port` (`[v6]:port`).
    #[serde(deserialize_with = "socket_addrs_53")]
    pub resolvers: Vec<SocketAddr>,
    #[serde(deserialize_with = "human")]
    pub timeout: Duration,
    pub retries: u32,
    /// Queries in flight at once across all checks.
    pub max_in_flight: usize,
    /// Name used for the open-recursion probe (outside every registry zone).
    pub recursion_probe_name: String,
    /// Port the scheduler probes declared addresses on (53; tests use
    /// loopback servers on an ephemeral port).
    pub port: u16,
    /// Addresses that must always answer (e.g. the parent zone's own
    /// servers), as `address` (port 53) or `address:port`. When none of
    /// them answers, the registry's own network is down: rounds are
    /// inconclusive (nothing charged to registrants). Default: none.
    #[serde(deserialize_with = "socket_addrs_53")]
    pub canaries: Vec<SocketAddr>,
    /// Share (0 < x ≤ 1) of the servers that answered before and that fail
    /// at once within `outage_window` which marks a registry-side outage
    /// (used when no canaries are configured).
    pub outage_threshold: f64,
    /// The interval over which that share is measured.
    #[serde(deserialize_with = "human")]
    pub outage_window: Duration,
    /// Queries a second sent to one server address at most (0: no cap).
    pub per_address_qps: u32,
    /// TCP connections open to one server address at once at most (0: no
    /// cap).
    pub per_address_tcp: usize,
    /// Longest a server address's shared facts (plain UDP, TCP, open
    /// recursion) are used by scheduler rounds; a round on a shorter
    /// interval measures them again after its own interval.
    #[serde(deserialize_with = "human")]
    pub server_facts_ttl: Duration,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            allow_loopback_targets: false,
            resolvers: Vec::new(),
            timeout: Duration::from_secs(2),
            retries: 1,
            max_in_flight: 1024,
            recursion_probe_name: "example.com".into(),
            port: 53,
            canaries: Vec::new(),
            outage_threshold: 0.5,
            outage_window: Duration::from_secs(120),
            per_address_qps: 500,
            per_address_tcp: 8,
            server_facts_ttl: Duration::from_secs(300),
        }
    }
}

/// `[dnssec]`: registry-side DNSSEC automation. What the checks accept is
/// in the check profile (`[dnssec]` of `delegation.profile`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnssecConfig {
    /// How often `serve` reads CDS from every server of signed delegated
    /// domains (RFC 7344/8078; [`crate::cds`]). Unset: no scanning.
    #[serde(deserialize_with = "human_opt")]
    pub cds_scan_interval: Option<Duration>,
    /// Bootstrapping (RFC 8078 §3.3 accept after delay): an unsigned
    /// delegated domain whose signed CDS set was seen unchanged on every
    /// server for this long gets it as its DS set. Unset: no bootstrapping.
    #[serde(deserialize_with = "human_opt")]
    pub cds_bootstrap_delay: Option<Duration>,
    /// What a delegated domain whose DNSSEC chain breaks gets.
    pub on_invalid: OnDnssecInvalid,
    /// The DS digest type a CDNSKEY is turned into (RFC 7344 §4; 2 =
    /// SHA-256, 4 = SHA-384).
    pub cdnskey_digest_type: u8,
    /// RFC 9615 authenticated bootstrapping: an unsigned delegation whose
    /// every nameserver's operator publishes the child's CDS/CDNSKEY at
    /// `_dsboot.<child>._signal.<ns>` in a zone that validates from
    /// `trust_anchors` gets its DS set at once, without the delay.
    pub authenticated_bootstrap: bool,
    /// DNSKEY records (zone-file form) the signaling records are validated
    /// from. Unset: the IANA root keys built into hickory.
    pub trust_anchors: Option<PathBuf>,
}

impl Default for DnssecConfig {
    fn default() -> Self {
        Self {
            cds_scan_interval: None,
            cds_bootstrap_delay: None,
            on_invalid: OnDnssecInvalid::default(),
            cdnskey_digest_type: 2,
            authenticated_bootstrap: false,
            trust_anchors: None,
        }
    }
}

/// `dnssec.on_invalid`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDnssecInvalid {
    /// Like any other violation: `delegation.on_violation` decides.
    #[default]
    Suspend,
    /// Stay delegated, but without DS in the zone (insecure, still
    /// resolvable) until a round validates again.
    WithdrawDs,
}
