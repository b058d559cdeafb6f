//! Configuration (docs/config.md): TOML, unknown keys rejected, durations in human
//! form (`10m`, `4d`). Defaults are the registry's regulation.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::names::{NameError, NamePolicy, Zones};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config: {0}")]
    Invalid(String),
    #[error("config: bad zone name: {0}")]
    Zone(#[from] NameError),
}

/// A duration written in human form (`30s`, `10m`, `4d`).
fn human<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("'{s}': {e}")))
}

/// A registration period: whole calendar months or years (`1y`, `12months`),
/// since `paid_till` moves by calendar year, not by 365 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Months(pub u32);

impl<'de> Deserialize<'de> for Months {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u32 = num.parse().map_err(|_| {
            serde::de::Error::custom(format!("'{s}': expected e.g. '1y' or '12months'"))
        })?;
        let months = match unit.trim() {
            "y" | "year" | "years" => n.checked_mul(12),
            "M" | "month" | "months" => Some(n),
            _ => None,
        };
        match months {
            Some(m) if m > 0 => Ok(Months(m)),
            _ => Err(serde::de::Error::custom(format!(
                "'{s}': expected a whole number of years or months, e.g. '1y' or '12months'"
            ))),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Zones (TLDs) of the registry, U- or A-labels.
    pub zones: Vec<String>,
    pub store: StoreConfig,
    pub serve: ServeConfig,
    pub delegation: DelegationConfig,
    pub probe: ProbeConfig,
    pub lifecycle: LifecycleConfig,
    pub whois: WhoisConfig,
    pub http: HttpConfig,
    pub rdap: RdapConfig,
    pub api: ApiConfig,
    pub zone: ZoneConfig,
    pub log: LogConfig,
    pub demo: DemoConfig,
    pub names: NamesConfig,
    pub dnssec: DnssecConfig,
    pub epp: EppConfig,
    pub webhook: WebhookConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            zones: vec!["ru".into(), "рф".into()],
            store: StoreConfig::default(),
            serve: ServeConfig::default(),
            delegation: DelegationConfig::default(),
            probe: ProbeConfig::default(),
            lifecycle: LifecycleConfig::default(),
            whois: WhoisConfig::default(),
            http: HttpConfig::default(),
            rdap: RdapConfig::default(),
            api: ApiConfig::default(),
            zone: ZoneConfig::default(),
            log: LogConfig::default(),
            demo: DemoConfig::default(),
            names: NamesConfig::default(),
            dnssec: DnssecConfig::default(),
            epp: EppConfig::default(),
            webhook: WebhookConfig::default(),
        }
    }
}

/// Registrar webhook delivery (docs/api.md, "Webhooks").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Longest wait for the receiver's TCP (and TLS) connection.
    #[serde(deserialize_with = "human")]
    pub connect_timeout: Duration,
    /// Longest wait for the whole POST, up to the answer's status line.
    #[serde(deserialize_with = "human")]
    pub timeout: Duration,
    /// How often an idle worker reads its feed, and the workers follow
    /// webhooks set or cleared meanwhile.
    #[serde(deserialize_with = "human")]
    pub poll_interval: Duration,
    /// The first retry's delay after a failed delivery; each further one
    /// doubles, up to `retry_max`.
    #[serde(deserialize_with = "human")]
    pub retry_initial: Duration,
    #[serde(deserialize_with = "human")]
    pub retry_max: Duration,
    /// An event still failing this long after its first failed attempt is
    /// given up (the feed keeps it).
    #[serde(deserialize_with = "human")]
    pub give_up_after: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            retry_initial: Duration::from_secs(10),
            retry_max: Duration::from_secs(600),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// A `postgres://…` URL: the PostgreSQL backend instead of the redb
    /// file at `path` (`--db` overrides both).
    pub url: Option<String>,
    /// PostgreSQL connections per process.
    pub pool_size: usize,
    /// Probe rounds always kept per domain (the most recent ones).
    pub rounds_keep_last: usize,
    /// Older rounds are kept only where something changed, and only this
    /// long (none: for ever).
    #[serde(deserialize_with = "human_opt")]
    pub rounds_max_age: Option<Duration>,
    /// Page cache in MiB. Hot pages of a large store are served from
    /// memory; the cache counts towards the process's RSS.
    pub cache_mib: usize,
    /// Unix socket on which `serve` takes the operator commands (`domain
    /// show`, `retest`, `hold`, `release`) while it owns the store. Default:
    /// the store path with `.sock` appended.
    pub control_socket: Option<PathBuf>,
    /// Below this much free space (MiB) on the store's volume `serve`
    /// warns and `/readyz` says `degraded` (redb store only).
    pub min_free_mib: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("zonekeeper.redb"),
            url: None,
            pool_size: 8,
            // A day of hourly rounds: the window is a one-off ~4.6 GiB at
            // 1M domains (500 was ~92 GiB, filled over three weeks).
            rounds_keep_last: 24,
            rounds_max_age: Some(Duration::from_secs(90 * 86_400)),
            cache_mib: 160,
            control_socket: None,
            min_free_mib: 256,
        }
    }
}

impl StoreConfig {
    /// The control socket for the store at `db` (the configured path unless
    /// `--db` overrode it).
    pub fn control_socket_for(&self, db: &Path) -> PathBuf {
        match &self.control_socket {
            Some(p) => p.clone(),
            None => {
                let mut s = db.as_os_str().to_os_string();
                s.push(".sock");
                PathBuf::from(s)
            }
        }
    }
}

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

/// Socket addresses written as `ip` (port 53 implied) or `ip:port`.
fn socket_addrs_53<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| parse_socket_addr_53(s).map_err(serde::de::Error::custom))
        .collect()
}

/// A DNS server's address: `192.0.2.53`, `192.0.2.53:5353`,
/// `2001:db8::53`, `[2001:db8::53]` or `[2001:db8::53]:5353` (port 53 by
/// default; port 0 refused). One rule for `probe.resolvers`,
/// `probe.canaries` and `check --ns NAME/ADDR`.
pub fn parse_socket_addr_53(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let addr = if let Ok(a) = t.parse::<SocketAddr>() {
        Some(a)
    } else if let Ok(ip) = t.parse::<std::net::IpAddr>() {
        Some(SocketAddr::new(ip, 53))
    } else {
        t.strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .and_then(|inner| inner.parse::<std::net::Ipv6Addr>().ok())
            .map(|ip| SocketAddr::new(ip.into(), 53))
    };
    match addr {
        Some(a) if a.port() == 0 => Err(format!(
            "'{}': port 0 is not a valid DNS port",
            s.escape_debug()
        )),
        Some(a) => Ok(a),
        None => Err(format!(
            "'{}' is not an IPv4/IPv6 address (expected e.g. 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:5353)",
            s.escape_debug()
        )),
    }
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
pub struct WhoisConfig {
    pub listen: SocketAddr,
    pub rate_limit_per_minute: u32,
    pub rate_limit_exempt: Vec<IpNet>,
    pub max_connections: usize,
    #[serde(deserialize_with = "human")]
    pub read_timeout: Duration,
    /// The `source:` line.
    pub source: String,
}

impl Default for WhoisConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4343".parse().expect("static address"),
            rate_limit_per_minute: 30,
            rate_limit_exempt: Vec::new(),
            max_connections: 1024,
            read_timeout: Duration::from_secs(10),
            source: "TCI".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    #[serde(deserialize_with = "human")]
    pub request_timeout: Duration,
    /// A client must send a request's complete headers within this time
    /// (also the idle limit between keep-alive requests); else it is cut off
    /// (slowloris).
    #[serde(deserialize_with = "human")]
    pub header_read_timeout: Duration,
    /// Connections open at once; beyond this a new one gets 503 and is
    /// closed.
    pub max_connections: usize,
    /// An answer whose write makes no progress for this long (the client
    /// stopped reading) closes the connection.
    #[serde(deserialize_with = "human")]
    pub send_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("static address"),
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            send_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RdapConfig {
    pub rate_limit_per_minute: u32,
    pub rate_limit_exempt: Vec<IpNet>,
    /// Public base URL for links, e.g. `https://rdap.example/rdap/`
    /// (http or https). Required when `http.listen` is not a loopback
    /// address; default (development): `http://{http.listen}/rdap/`. Never
    /// taken from a request's Host header.
    pub base_url: Option<String>,
    /// Most results a search returns.
    pub search_limit: usize,
}

impl Default for RdapConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 600,
            rate_limit_exempt: Vec::new(),
            base_url: None,
            search_limit: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub rate_limit_per_minute: u32,
    pub page_size: usize,
    /// `/api/v1/check` runs at once, all registrars together (503 beyond).
    pub max_concurrent_checks: usize,
    /// `/api/v1/check` runs at once of one registrar (429 beyond), so one
    /// cannot starve the others; at most `max_concurrent_checks`.
    pub max_concurrent_checks_per_registrar: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 600,
            page_size: 100,
            // Each one-shot check sends DNS queries: a few at once.
            max_concurrent_checks: 8,
            max_concurrent_checks_per_registrar: 2,
        }
    }
}

/// The EPP server (RFC 5730–5734) for registrars; off unless `listen` is
/// set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EppConfig {
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain of the server.
    pub cert: Option<PathBuf>,
    /// PEM private key of the server.
    pub key: Option<PathBuf>,
    /// PEM of the CA(s) that sign registrars' client certificates.
    pub client_ca: Option<PathBuf>,
    /// A session must log in within this.
    #[serde(deserialize_with = "human")]
    pub login_timeout: Duration,
    /// A logged-in session that sends nothing for this long is closed.
    #[serde(deserialize_with = "human")]
    pub idle_timeout: Duration,
    /// A client must send a whole frame within this once it started it.
    #[serde(deserialize_with = "human")]
    pub frame_timeout: Duration,
    /// Largest frame accepted (bytes, header included).
    pub max_frame_bytes: usize,
    pub max_sessions_per_registrar: usize,
    /// Commands per minute per registrar, all its sessions together.
    pub rate_limit_per_minute: u32,
    /// Connections one client address may hold (counted before TLS).
    pub max_connections_per_ip: usize,
    /// The TLS handshake must finish within this.
    #[serde(deserialize_with = "human")]
    pub handshake_timeout: Duration,
}

impl Default for EppConfig {
    fn default() -> Self {
        Self {
            listen: None,
            cert: None,
            key: None,
            client_ca: None,
            login_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            frame_timeout: Duration::from_secs(30),
            max_frame_bytes: 65_536,
            max_sessions_per_registrar: 4,
            rate_limit_per_minute: 600,
            max_connections_per_ip: 16,
            handshake_timeout: Duration::from_secs(5),
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

fn human_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    human(d).map(Some)
}

/// What one `serve` process runs (docs/cli.md `serve --roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Probe rounds: claims due domains (several schedulers share the work).
    Scheduler,
    /// WHOIS, RDAP, registrar API, metrics, dashboard, control socket.
    Frontend,
    /// The zone writer and the registry's timed work (one process leads).
    Zone,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Scheduler, Role::Frontend, Role::Zone];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Scheduler => "scheduler",
            Role::Frontend => "frontend",
            Role::Zone => "zone",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| format!("unknown role '{s}': expected scheduler, frontend or zone"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// What this process runs (default: all three). Anything less needs
    /// the PostgreSQL backend (`store.url`): redb is one process.
    pub roles: Vec<Role>,
    /// How long a scheduler's claim on a due domain lasts: a killed
    /// scheduler's domains are taken over after it. Longer than a round.
    #[serde(deserialize_with = "human")]
    pub claim_lease: Duration,
    /// How often a process on a shared database looks for changes other
    /// processes made (new work for the scheduler, zone changes).
    #[serde(deserialize_with = "human")]
    pub poll_interval: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            roles: Role::ALL.to_vec(),
            claim_lease: Duration::from_secs(180),
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl ServeConfig {
    pub fn has(&self, r: Role) -> bool {
        self.roles.contains(&r)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info,zonekeeper=debug`.
    pub filter: String,
    pub json: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            json: false,
        }
    }
}

/// The loopback demo ([`crate::demo`]): off unless the config turns it on
/// (the development config does; a production config never should).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// `serve` starts small authoritative servers for the demo domains on
    /// 127.0.53.0/24 (port `probe.port`) and a resolver on the loopback
    /// `probe.resolvers`, and imports the demo domains.
    pub enabled: bool,
}

/// A host name of the zone's own records (SOA MNAME/RNAME, apex NS).
fn zone_name(key: &str, v: &str) -> Result<crate::names::HostName, ConfigError> {
    crate::names::parse_host(v).map_err(|e| {
        ConfigError::Invalid(format!(
            "{key}: '{}': {}",
            crate::text::escape(v),
            crate::text::escape(&e.to_string())
        ))
    })
}

/// The RDAP base URL, ending in `/`: `rdap.base_url`, else
/// `http://{http.listen}/rdap/`.
pub fn rdap_base_url(cfg: &Config) -> String {
    match &cfg.rdap.base_url {
        Some(b) if b.ends_with('/') => b.clone(),
        Some(b) => format!("{b}/"),
        None => format!("http://{}/rdap/", cfg.http.listen),
    }
}

impl Config {
    /// Default location of the config file.
    pub const DEFAULT_PATH: &'static str = "config/zonekeeper.toml";

    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        // Zone names may be written as U-labels or upper case; the zone
        // file gets their A-label form.
        cfg.zone.primary = zone_name("zone.primary", &cfg.zone.primary)?.to_string();
        cfg.zone.hostmaster = zone_name("zone.hostmaster", &cfg.zone.hostmaster)?.to_string();
        for n in &mut cfg.zone.nameservers {
            *n = zone_name("zone.nameservers", n)?.to_string();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Load `path` if given; else the default file if it exists; else defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => Self::load(p),
            None => {
                let p = Path::new(Self::DEFAULT_PATH);
                if p.exists() {
                    Self::load(p)
                } else {
                    Ok(Self::default())
                }
            }
        }
    }

    /// The zones with their name policies (tables read from disk).
    pub fn zones(&self) -> Result<Zones, ConfigError> {
        let tables = self.names.load()?;
        Ok(Zones::with_tables(&self.zones, &tables)?)
    }

    /// The names the zone file is built from, with their keys.
    fn zone_names(&self) -> impl Iterator<Item = (&'static str, &String)> {
        [
            ("zone.primary", &self.zone.primary),
            ("zone.hostmaster", &self.zone.hostmaster),
        ]
        .into_iter()
        .chain(
            self.zone
                .nameservers
                .iter()
                .map(|n| ("zone.nameservers", n)),
        )
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.delegation;
        if self.zones.is_empty() {
            return Err(ConfigError::Invalid(
                "zones must name at least one zone".into(),
            ));
        }
        let zones = self.zones()?;
        for t in self.names.load()? {
            if !zones.contains(&t.zone) {
                return Err(ConfigError::Invalid(format!(
                    "names.tables: a table governs zone '{}', which is not in zones",
                    t.zone
                )));
            }
        }
        // (`epp.listen` without `epp.cert`/`key`/`client_ca` is refused when
        // the EPP server starts: each key alone must load.)
        if self.epp.max_frame_bytes < 1024 || self.epp.max_sessions_per_registrar == 0 {
            return Err(ConfigError::Invalid(
                "epp.max_frame_bytes must be at least 1024 and epp.max_sessions_per_registrar at least 1".into(),
            ));
        }
        if self.epp.max_connections_per_ip == 0 || self.lifecycle.auth_code_max_failures == 0 {
            return Err(ConfigError::Invalid(
                "epp.max_connections_per_ip and lifecycle.auth_code_max_failures must be at least 1"
                    .into(),
            ));
        }
        let text_err = |e: crate::text::TextError| ConfigError::Invalid(e.to_string());
        crate::text::check_line("whois.source", &self.whois.source, 64).map_err(text_err)?;
        match &self.rdap.base_url {
            Some(u) => crate::text::check_url("rdap.base_url", u).map_err(text_err)?,
            None if !self.http.listen.ip().is_loopback() => {
                return Err(ConfigError::Invalid(format!(
                    "rdap.base_url is required when http.listen ({}) is not a loopback address: RDAP links must name the public URL",
                    self.http.listen
                )))
            }
            None => {}
        }
        // Written into the zone file as names: a newline and `$INCLUDE`
        // here would break (or extend) the zone.
        for (k, v) in self.zone_names() {
            let n = zone_name(k, v)?;
            if n.as_str() != v.trim().trim_end_matches('.') {
                return Err(ConfigError::Invalid(format!(
                    "{k}: '{}' is not in A-label form ('{n}')",
                    crate::text::escape(v)
                )));
            }
        }
        if d.min_nameservers < 2 {
            return Err(ConfigError::Invalid(
                "delegation.min_nameservers must be at least 2 (registry rule)".into(),
            ));
        }
        for (k, v) in [
            ("delegation.probe_interval", d.probe_interval),
            ("delegation.test_window", d.test_window),
            ("delegation.downtime_period", d.downtime_period),
            ("delegation.monitor_interval", d.monitor_interval),
            ("delegation.recheck_interval", d.recheck_interval),
            ("probe.outage_window", self.probe.outage_window),
            ("probe.timeout", self.probe.timeout),
            ("http.header_read_timeout", self.http.header_read_timeout),
            ("http.send_timeout", self.http.send_timeout),
        ] {
            if v.is_zero() {
                return Err(ConfigError::Invalid(format!(
                    "{k} must be greater than zero"
                )));
            }
        }
        if ![2, 4].contains(&self.dnssec.cdnskey_digest_type) {
            return Err(ConfigError::Invalid(format!(
                "dnssec.cdnskey_digest_type must be 2 (SHA-256) or 4 (SHA-384), not {}",
                self.dnssec.cdnskey_digest_type
            )));
        }
        if self.dnssec.cds_scan_interval.is_some_and(|i| i.is_zero()) {
            return Err(ConfigError::Invalid(
                "dnssec.cds_scan_interval must be greater than zero (omit it to turn scanning off)"
                    .into(),
            ));
        }
        if d.downtime_budget > d.downtime_period {
            return Err(ConfigError::Invalid(
                "delegation.downtime_budget cannot exceed delegation.downtime_period".into(),
            ));
        }
        // A re-probe must not be due before a round against a dead server
        // can have ended (every query timing out, with its retries).
        let dead_round = self
            .probe
            .timeout
            .saturating_mul(self.probe.retries.saturating_add(1));
        if d.recheck_interval < dead_round {
            return Err(ConfigError::Invalid(format!(
                "delegation.recheck_interval ({:?}) must be at least probe.timeout × (probe.retries + 1) ({:?})",
                d.recheck_interval, dead_round
            )));
        }
        if d.violation_confirmations == 0 {
            return Err(ConfigError::Invalid(
                "delegation.violation_confirmations must be at least 1".into(),
            ));
        }
        let th = self.probe.outage_threshold;
        if !(th > 0.0 && th <= 1.0) {
            return Err(ConfigError::Invalid(format!(
                "probe.outage_threshold must be within (0, 1]; got {th}"
            )));
        }
        if self.probe.port == 0 {
            return Err(ConfigError::Invalid(
                "probe.port must be a valid port (1–65535)".into(),
            ));
        }
        if !(0.0..=1.0).contains(&d.jitter) {
            return Err(ConfigError::Invalid(
                "delegation.jitter must be within 0.0–1.0".into(),
            ));
        }
        if d.max_concurrent_rounds == 0
            || d.commit_batch == 0
            || self.probe.max_in_flight == 0
            || self.http.max_connections == 0
        {
            return Err(ConfigError::Invalid(
                "concurrency limits must be greater than zero".into(),
            ));
        }
        let api = &self.api;
        if api.max_concurrent_checks == 0
            || api.max_concurrent_checks_per_registrar == 0
            || api.max_concurrent_checks_per_registrar > api.max_concurrent_checks
        {
            return Err(ConfigError::Invalid(
                "api.max_concurrent_checks_per_registrar must be 1 ≤ it ≤ api.max_concurrent_checks"
                    .into(),
            ));
        }
        if self.whois.rate_limit_per_minute == 0
            || self.rdap.rate_limit_per_minute == 0
            || self.api.rate_limit_per_minute == 0
        {
            return Err(ConfigError::Invalid(
                "rate limits must be greater than zero (use *_rate_limit_exempt for trusted clients)"
                    .into(),
            ));
        }
        if self.demo.enabled {
            self.validate_demo()?;
        }
        if self.zones.len() > 1 {
            if let Some(out) = &self.zone.output {
                if !out.to_string_lossy().contains("{zone}") {
                    return Err(ConfigError::Invalid(
                        "zone.output must contain '{zone}' when several zones are configured"
                            .into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The demo must keep every packet on loopback: its servers are probed
    /// only with loopback allowed (and nothing else private), and names are
    /// resolved only through loopback resolvers (the demo answers there).
    fn validate_demo(&self) -> Result<(), ConfigError> {
        let p = &self.probe;
        if !p.allow_loopback_targets {
            return Err(ConfigError::Invalid(
                "demo.enabled needs probe.allow_loopback_targets = true (the demo servers are on 127.0.53.0/24)".into(),
            ));
        }
        if p.allow_private_targets {
            return Err(ConfigError::Invalid(
                "demo.enabled needs probe.allow_private_targets = false: the sample registry's documentation addresses must not be probed".into(),
            ));
        }
        if p.resolvers.is_empty() || p.resolvers.iter().any(|r| !r.ip().is_loopback()) {
            return Err(ConfigError::Invalid(
                "demo.enabled needs probe.resolvers to list only loopback addresses (the demo answers there; nothing may leave loopback)".into(),
            ));
        }
        Ok(())
    }

    /// Pick up the address `serve` actually bound (a `:0` listen port) for
    /// the derived RDAP base URL.
    pub fn set_bound_http(&mut self, addr: SocketAddr) {
        self.http.listen = addr;
    }

    /// Convert a std duration into chrono's, saturating.
    pub fn chrono(d: Duration) -> chrono::Duration {
        chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_regulation() {
        let c = Config::default();
        assert_eq!(c.delegation.test_window, Duration::from_secs(4 * 86400));
        assert_eq!(c.delegation.downtime_budget, Duration::from_secs(7200));
        assert_eq!(c.lifecycle.registration_period, Months(12));
        assert_eq!(c.whois.rate_limit_per_minute, 30);
        c.validate().unwrap();
    }

    #[test]
    fn human_durations_and_unknown_keys() {
        let c = Config::from_toml(
            "[delegation]\ntest_window = \"4s\"\nprobe_interval = \"250ms\"\n[lifecycle]\nregistration_period = \"2y\"\n",
            Path::new("t"),
        )
        .unwrap();
        assert_eq!(c.delegation.test_window, Duration::from_secs(4));
        assert_eq!(c.delegation.probe_interval, Duration::from_millis(250));
        assert_eq!(c.lifecycle.registration_period, Months(24));
        let e = Config::from_toml("[delegation]\ntest_windw = \"4s\"\n", Path::new("t"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("test_windw"), "{e}");
        let e = Config::from_toml(
            "[delegation]\ntest_window = \"four days\"\n",
            Path::new("t"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("four days"), "{e}");
        assert!(Config::from_toml("[delegation]\nmin_nameservers = 1\n", Path::new("t")).is_err());
        assert!(Config::from_toml("zones = [\"r_u\"]\n", Path::new("t")).is_err());
    }
}
