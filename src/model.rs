//! Registry records as stored, plus the delegation state machine's persisted
//! record and the check report shared by the verifier, the scheduler and the
//! API. Pure data: no I/O here.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::names::{DomainName, HostName};

pub type Timestamp = DateTime<Utc>;

/// Timestamps as RFC 3339 in human-readable formats (JSON: API, CLI) and as
/// integer microseconds in binary ones (the store), where a string would
/// cost ~30 bytes a field across millions of records.
pub mod ts {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            t.serialize(s)
        } else {
            s.serialize_i64(t.timestamp_micros())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        if d.is_human_readable() {
            Timestamp::deserialize(d)
        } else {
            let m = i64::deserialize(d)?;
            Timestamp::from_timestamp_micros(m)
                .ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
        }
    }
}

/// [`ts`] for optional timestamps.
pub mod ts_opt {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct W<'a>(#[serde(with = "super::ts")] &'a Timestamp);
        match t {
            Some(t) => s.serialize_some(&W(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        #[derive(serde::Deserialize)]
        struct W(#[serde(with = "super::ts")] Timestamp);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

/// A registrar. `api_token_sha256` is never published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registrar {
    pub handle: String,
    pub name: String,
    pub url: Option<String>,
    pub email: Option<String>,
    /// Lower-case hex SHA-256 of the registrar's API token.
    pub api_token_sha256: Option<String>,
    /// Lower-case hex SHA-256 of the DER of each client certificate the
    /// registrar may present to the EPP server.
    pub epp_cert_sha256: Vec<String>,
    /// PHC string (argon2id) of the registrar's EPP password.
    pub epp_password_hash: Option<String>,
    /// The last change-feed sequence number the registrar acknowledged
    /// with EPP `<poll op="ack">` (its message queue starts after it).
    pub epp_poll_acked: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactKind {
    Person,
    Org,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    pub street: Vec<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

/// Fields a contact may choose to publish (docs/import.md, Contacts: `disclose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscloseField {
    Name,
    Org,
    Email,
    Phone,
    Address,
}

/// A contact as stored: holds private data. Publish only via
/// [`crate::public::contact`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub handle: String,
    pub kind: ContactKind,
    pub name: Option<String>,
    pub org: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<PostalAddress>,
    /// Never published.
    pub tax_id: Option<String>,
    /// Never published.
    pub birth_date: Option<String>,
    /// Never published.
    pub passport: Option<String>,
    pub disclose: Vec<DiscloseField>,
    /// The registrar that created the contact through EPP and alone may
    /// change or delete it there; `None` for imported contacts.
    pub sponsor: Option<String>,
    /// When the registry first stored it (schema 3); `None` for contacts
    /// stored before, whose creation time is unknown.
    #[serde(with = "ts_opt", default)]
    pub created: Option<Timestamp>,
}

/// A declared nameserver: its name and, for glue, its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Nameserver {
    pub name: HostName,
    pub addresses: Vec<IpAddr>,
}

/// A host object (EPP, RFC 5732): a nameserver name a registrar created,
/// with its addresses. Stored in a table of its own; domains still carry
/// their NS set ([`Nameserver`]), which the registry service keeps in step
/// when a host object changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostObject {
    pub name: HostName,
    /// The registrar that created it (for a host inside one of the
    /// registry's zones, the superordinate domain's sponsor acts on it).
    pub sponsor: String,
    /// Glue: only for a host inside one of the registry's zones.
    pub addresses: Vec<IpAddr>,
    #[serde(with = "ts")]
    pub created: Timestamp,
    #[serde(with = "ts")]
    pub updated: Timestamp,
}

/// A dispute hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    #[serde(with = "ts")]
    pub since: Timestamp,
    /// Operator's reason; not published.
    pub reason: String,
}

/// A registered domain as stored. Holds private data (auth code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Transfer auth code. Never published.
    pub auth_info: Option<String>,
    pub hold: Option<Hold>,
    /// When the registry asked the registrant to verify data; `None` once answered.
    #[serde(with = "ts_opt")]
    pub verification_requested: Option<Timestamp>,
    /// When the domain last moved to another registrar.
    #[serde(with = "ts_opt")]
    pub transferred: Option<Timestamp>,
    /// Last change to the registration record.
    #[serde(with = "ts")]
    pub updated: Timestamp,
    /// Registry workflow state: locks, pending requests, reseller.
    pub registration: Registration,
    /// The declared DS set (RFC 4034 §5), validated by [`crate::registry::input::ds`].
    /// Empty: the delegation is unsigned.
    pub ds: Vec<DsRecord>,
}

/// A domain's registry workflow state beyond the import format's fields (docs/import.md) (schema 2
/// addition; a schema-1 record converts to the default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The reseller (of the sponsoring registrar) that sells the domain.
    pub reseller: Option<String>,
    /// The hold was placed by an operator: import never clears it.
    pub hold_by_operator: bool,
    /// Operator dispute lock (court or dispute-policy case): no transfer,
    /// registrant change or close; the domain stays delegated.
    pub dispute: Option<Hold>,
    /// After this instant the auth code is no longer accepted.
    #[serde(with = "ts_opt")]
    pub auth_info_expires: Option<Timestamp>,
    pub pending_transfer: Option<PendingTransfer>,
    pub pending_registrant: Option<PendingRegistrant>,
    /// Early cancellation: the registration ends at this instant (revocable
    /// until then).
    pub closing: Option<Closing>,
    /// When the current registrant acquired the domain from another person
    /// (registrant change); starts the registrant-change/close lock.
    #[serde(with = "ts_opt")]
    pub registrant_since: Option<Timestamp>,
    /// The host objects the sponsor attached by reference (EPP `hostObj`,
    /// schema 4): a change of one of them re-declares this domain. A name
    /// declared otherwise (the API, EPP `hostAttr`) links to nothing; a
    /// link counts only while the name is in the NS set.
    #[serde(default)]
    pub host_links: Vec<HostName>,
    /// When the registry itself last moved the domain to another registrar
    /// (`reseller move`, schema 5): starts the transfer lock, not the
    /// registrant-change or close lock (the holder did not choose it).
    #[serde(default, with = "ts_opt")]
    pub registry_moved: Option<Timestamp>,
    /// The RFC 5731 `client*` statuses the sponsor set (schema 7;
    /// docs/statuses.md "Registrar-set statuses").
    #[serde(default)]
    pub client_statuses: std::collections::BTreeSet<ClientStatus>,
}

/// A status value the sponsoring registrar sets and removes itself (RFC
/// 5731 §2.3 `client*`). Stored by variant index: append, never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClientStatus {
    /// Out of the zone while set.
    ClientHold,
    /// Every update is refused except removing this status.
    ClientUpdateProhibited,
    /// Transfer requests are refused.
    ClientTransferProhibited,
    /// Delete (close) is refused.
    ClientDeleteProhibited,
    /// Renewal is refused.
    ClientRenewProhibited,
}

impl ClientStatus {
    pub const ALL: [ClientStatus; 5] = [
        Self::ClientHold,
        Self::ClientUpdateProhibited,
        Self::ClientTransferProhibited,
        Self::ClientDeleteProhibited,
        Self::ClientRenewProhibited,
    ];

    /// The EPP `s` value (`clientHold`, ...).
    pub fn epp(self) -> &'static str {
        match self {
            Self::ClientHold => "clientHold",
            Self::ClientUpdateProhibited => "clientUpdateProhibited",
            Self::ClientTransferProhibited => "clientTransferProhibited",
            Self::ClientDeleteProhibited => "clientDeleteProhibited",
            Self::ClientRenewProhibited => "clientRenewProhibited",
        }
    }

    /// The status with this EPP value (exact spelling, as RFC 5731's schema).
    pub fn parse(s: &str) -> Option<ClientStatus> {
        Self::ALL.into_iter().find(|c| c.epp() == s)
    }
}

/// A registrar change waiting for the losing registrar (or the clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTransfer {
    /// The gaining registrar.
    pub to: String,
    #[serde(with = "ts")]
    pub requested: Timestamp,
    /// Approved automatically at this instant unless rejected before.
    #[serde(with = "ts")]
    pub auto_approve: Timestamp,
}

/// A registrant change: requested by the outgoing registrant, accepted by
/// the incoming one, completed by the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRegistrant {
    /// The incoming registrant's contact handle.
    pub to: String,
    #[serde(with = "ts")]
    pub requested: Timestamp,
    /// When the incoming registrant accepted (then the registry completes it).
    #[serde(with = "ts_opt")]
    pub accepted: Option<Timestamp>,
    /// Request lapses unless completed by then.
    #[serde(with = "ts")]
    pub deadline: Timestamp,
}

/// A scheduled or done early cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closing {
    #[serde(with = "ts")]
    pub at: Timestamp,
    /// A court decision: the name is reserved for this contact for the
    /// reservation period after `at`.
    pub claimant: Option<String>,
}

/// One DS record as declared by the registrar (docs/import.md, Domains: `ds`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DsRecord {
    pub key_tag: u16,
    /// DNSSEC algorithm number of the key the DS points at.
    pub algorithm: u8,
    pub digest_type: u8,
    /// Lower-case hex.
    pub digest: String,
}

/// What the CDS scanner has seen of an unsigned delegation that asks to be
/// secured (RFC 8078 §3.3 accept after delay): kept in the store so a
/// restart does not restart the delay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdsSighting {
    /// SHA-256 (hex) of the CDS and CDNSKEY RRsets as every server
    /// published them (sorted presentation form): any change restarts the
    /// delay.
    pub fingerprint: String,
    /// First scan that saw this fingerprint on every server.
    #[serde(with = "ts")]
    pub first_seen: Timestamp,
    /// Latest scan that saw it.
    #[serde(with = "ts")]
    pub last_seen: Timestamp,
    /// The DS set it would become.
    pub ds: Vec<DsRecord>,
}

impl std::fmt::Display for DsRecord {
    /// Presentation form: `KEYTAG ALG DIGESTTYPE HEX` (upper-case hex, as
    /// zone files and WHOIS show it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.key_tag,
            self.algorithm,
            self.digest_type,
            self.digest.to_ascii_uppercase()
        )
    }
}

impl Domain {
    /// A stable fingerprint of the declared delegation (NS set and DS set,
    /// order-insensitive), used to tell whether a re-declaration changed
    /// anything. See [`delegation_fingerprint`].
    pub fn ns_fingerprint(&self) -> String {
        delegation_fingerprint(&self.nameservers, &self.ds)
    }
}

/// Fingerprint of a declared delegation: equal to [`ns_fingerprint`] when
/// there is no DS (so records stored before DS existed keep matching), and
/// over NS and DS otherwise, so a DS change restarts testing like an NS
/// change. Empty when there are no nameservers (no delegation at all).
pub fn delegation_fingerprint(ns: &[Nameserver], ds: &[DsRecord]) -> String {
    use sha2::{Digest, Sha256};
    if ds.is_empty() || ns.is_empty() {
        return ns_fingerprint(ns);
    }
    let mut d: Vec<String> = ds
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.key_tag,
                r.algorithm,
                r.digest_type,
                r.digest.to_ascii_lowercase()
            )
        })
        .collect();
    d.sort();
    d.dedup();
    let text = format!("{}|ds={}", ns_canonical(ns), d.join(";"));
    hex::encode(&Sha256::digest(text.as_bytes())[..12])
}

/// Order-insensitive fingerprint of a nameserver set: 96 bits of SHA-256
/// over its canonical form (a set of 13 servers with addresses would
/// otherwise be a kilobyte in every delegation record). Empty for no set.
pub fn ns_fingerprint(ns: &[Nameserver]) -> String {
    use sha2::{Digest, Sha256};
    if ns.is_empty() {
        return String::new();
    }
    let digest = Sha256::digest(ns_canonical(ns).as_bytes());
    hex::encode(&digest[..12])
}

fn ns_canonical(ns: &[Nameserver]) -> String {
    let mut parts: Vec<String> = ns
        .iter()
        .map(|n| {
            let mut a: Vec<String> = n.addresses.iter().map(|a| a.to_string()).collect();
            a.sort();
            format!("{}={}", n.name, a.join(","))
        })
        .collect();
    parts.sort();
    parts.join(";")
}

/// Where a domain stands in the delegation process (docs/delegation.md, States).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelegationState {
    /// No nameservers declared.
    Undelegated,
    /// Declared; the servers are being probed within the test window.
    Testing,
    /// In the parent zone.
    Delegated,
    /// The test window ended without a passing round; waits for a retest.
    TestFailed,
    /// Was delegated; taken out of the zone (lifecycle block or violation).
    Suspended,
}

impl DelegationState {
    pub const ALL: [DelegationState; 5] = [
        Self::Undelegated,
        Self::Testing,
        Self::Delegated,
        Self::TestFailed,
        Self::Suspended,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Undelegated => "undelegated",
            Self::Testing => "testing",
            Self::Delegated => "delegated",
            Self::TestFailed => "test_failed",
            Self::Suspended => "suspended",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Downtime used by one server in the current accounting period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerDowntime {
    pub server: HostName,
    /// Start of the accounting period this figure belongs to.
    #[serde(with = "ts")]
    pub period_start: Timestamp,
    /// Seconds of total unreachability measured in that period
    /// (`unreachable_ms / 1000`, kept for readers that want seconds).
    pub unreachable_secs: u64,
    /// The same figure in milliseconds: the one the budget is checked
    /// against (tests shrink periods to seconds).
    pub unreachable_ms: u64,
    /// Result of the last probe of this server: reachable on any address.
    pub last_reachable: Option<bool>,
    /// When the server was last probed.
    #[serde(with = "ts_opt")]
    pub last_probe: Option<Timestamp>,
    /// `None`: the server as a whole (down when none of its addresses
    /// answers). `Some(addr)`: one address of it, which has a budget of its
    /// own (an answering server with a dead address).
    pub address: Option<String>,
    /// Milliseconds in that period the entry was down at its last look
    /// but the registry looked again only after more than `reach`: not
    /// charged (the registry was not looking), shown instead of vanishing
    /// (docs/delegation.md, "Unmeasured time").
    pub unmeasured_ms: u64,
}

/// A monitoring violation on a delegated domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    #[serde(with = "ts")]
    pub since: Timestamp,
    pub finding_ids: Vec<String>,
    pub message: String,
    /// When it ended (the first clean round after it); `None` while it lasts.
    #[serde(with = "ts_opt")]
    pub until: Option<Timestamp>,
}

/// Consecutive failing monitoring rounds not yet (or just) confirmed as a
/// violation: the registry confirms before it sanctions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailStreak {
    /// The first failing round of the streak.
    #[serde(with = "ts")]
    pub since: Timestamp,
    /// Failing rounds in a row.
    pub rounds: u32,
    pub finding_ids: Vec<String>,
    pub message: String,
}

/// The persisted delegation record of one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationRecord {
    pub state: DelegationState,
    /// Fingerprint of the NS set this record is about.
    pub ns_fingerprint: String,
    #[serde(with = "ts_opt")]
    pub window_start: Option<Timestamp>,
    #[serde(with = "ts_opt")]
    pub window_end: Option<Timestamp>,
    /// Rounds run in the current window (or since delegation, for monitoring).
    pub rounds: u32,
    pub last_round: Option<RoundSummary>,
    #[serde(with = "ts_opt")]
    pub next_probe: Option<Timestamp>,
    pub downtime: Vec<ServerDowntime>,
    pub violation: Option<Violation>,
    #[serde(with = "ts_opt")]
    pub delegated_at: Option<Timestamp>,
    /// Last state change.
    #[serde(with = "ts")]
    pub changed_at: Timestamp,
    /// Lifecycle blocks (`expired`, `hold`, `verification overdue`) the
    /// scheduler last saw. While non-empty the servers are not probed and
    /// the domain cannot be delegated (a delegated one is `suspended`).
    pub blocked: Vec<String>,
    /// When the current block started (as seen by the scheduler).
    #[serde(with = "ts_opt")]
    pub blocked_since: Option<Timestamp>,
    /// Failing monitoring rounds awaiting confirmation.
    pub failing: Option<FailStreak>,
    /// The last violation that ended (with `until`), for registrars.
    pub last_violation: Option<Violation>,
    /// The NS set in the zone while a newly declared set is tested
    /// (`pending`); empty otherwise, when the zone holds the domain's
    /// declared set. The zone writer and monitoring use this set.
    pub published: Vec<Nameserver>,
    /// A newly declared set under test while the domain stays delegated on
    /// `published`: a `testing` (or, once its window ran out, `test_failed`)
    /// record of its own. Never nested further.
    pub pending: Option<Box<DelegationRecord>>,
    /// Conclusive probing time consumed by the current test window, in
    /// milliseconds: time the registry could not probe (serve stopped,
    /// inconclusive rounds) does not count against the registrant.
    pub window_used_ms: u64,
    /// When the last round (conclusive or not) was run.
    #[serde(with = "ts_opt")]
    pub last_look: Option<Timestamp>,
    /// Conclusive rounds in the current window.
    pub conclusive_rounds: u32,
    /// The DS set in the zone while a change is pending (with
    /// `published`); meaningless when `published` is empty.
    pub published_ds: Vec<DsRecord>,
}

impl DelegationRecord {
    /// The record of a domain without nameservers.
    pub fn undelegated(now: Timestamp) -> Self {
        Self {
            state: DelegationState::Undelegated,
            ns_fingerprint: String::new(),
            window_start: None,
            window_end: None,
            rounds: 0,
            last_round: None,
            next_probe: None,
            downtime: Vec::new(),
            violation: None,
            delegated_at: None,
            changed_at: now,
            blocked: Vec::new(),
            blocked_since: None,
            failing: None,
            last_violation: None,
            published: Vec::new(),
            pending: None,
            window_used_ms: 0,
            last_look: None,
            conclusive_rounds: 0,
            published_ds: Vec::new(),
        }
    }

    /// The DS set the zone holds for this record: `published_ds` while a
    /// change is pending, else the declared set.
    pub fn zone_ds<'a>(&'a self, declared: &'a [DsRecord]) -> &'a [DsRecord] {
        if self.published.is_empty() {
            declared
        } else {
            &self.published_ds
        }
    }

    /// The NS set the zone holds (and monitoring probes) for this record:
    /// `published` while a change is pending, else the declared set.
    pub fn zone_set<'a>(&'a self, declared: &'a [Nameserver]) -> &'a [Nameserver] {
        if self.published.is_empty() {
            declared
        } else {
            &self.published
        }
    }

    /// The fingerprint of the newest declared set this record tracks: the
    /// pending set's if a change is under test.
    pub fn declared_fingerprint(&self) -> &str {
        self.pending
            .as_ref()
            .map_or(self.ns_fingerprint.as_str(), |p| p.ns_fingerprint.as_str())
    }

    /// A fresh test window for a newly declared NS set.
    pub fn testing(fingerprint: String, now: Timestamp, window: chrono::Duration) -> Self {
        Self {
            state: DelegationState::Testing,
            ns_fingerprint: fingerprint,
            window_start: Some(now),
            window_end: Some(now + window),
            next_probe: Some(now),
            ..Self::undelegated(now)
        }
    }
}

/// Summary of one probe round, kept with the record and in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundSummary {
    #[serde(with = "ts")]
    pub at: Timestamp,
    pub passed: bool,
    pub duration_ms: u64,
    pub findings: Vec<Finding>,
    /// Per-server facts of the round (reachability feeds the downtime timeline).
    pub servers: Vec<ServerReport>,
    /// Set when the round said nothing about the registrant's servers
    /// (the registry's own network was down): the reason. Nothing was
    /// charged, no violation counted, no window time consumed.
    pub inconclusive: Option<String>,
    /// How late the scheduler started this round after it was due, while
    /// it was running (queue lag; a stalled scheduler does not count): it
    /// widens the reach of the gap ending at this round.
    pub queue_lag_ms: u64,
}

impl RoundSummary {
    pub fn from_report(r: &CheckReport) -> Self {
        Self {
            at: r.checked_at,
            passed: r.passed(),
            duration_ms: r.duration_ms,
            findings: r.findings.clone(),
            servers: r.servers.clone(),
            inconclusive: None,
            queue_lag_ms: 0,
        }
    }
}

/// One entry of a domain's delegation history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    #[serde(with = "ts")]
    pub at: Timestamp,
    pub from: Option<DelegationState>,
    pub to: DelegationState,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Notice,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notice => "notice",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// One finding of a check (docs/cli.md, `check --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable check id, e.g. `AUTHORITATIVE`.
    pub id: String,
    pub severity: Severity,
    pub server: Option<String>,
    pub address: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

/// What was seen of one server in a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerReport {
    pub name: String,
    pub addresses: Vec<String>,
    /// Answered on at least one address (for downtime accounting).
    pub reachable: bool,
    /// SOA serial seen, if any.
    pub soa_serial: Option<u32>,
    /// Median round-trip time over the answers received, in milliseconds.
    pub rtt_ms: Option<u64>,
    /// Addresses (as in `addresses`) that answered nothing while the server
    /// answered on another: each is charged to its own downtime budget.
    #[serde(default)]
    pub unreachable_addresses: Vec<String>,
}

/// The result of one readiness check (docs/cli.md, `check --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub domain: String,
    pub verdict: Verdict,
    #[serde(with = "ts")]
    pub checked_at: Timestamp,
    pub duration_ms: u64,
    pub findings: Vec<Finding>,
    pub servers: Vec<ServerReport>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

/// A reseller: sells domains of one registrar (docs/import.md
/// "Resellers"). Stored by its handle in lower case ([`Reseller::key`]):
/// handles match in any case, so `res-x` and `RES-X` are one reseller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reseller {
    /// The handle as first written (the form domains carry).
    pub handle: String,
    pub name: String,
    /// The registrar the reseller belongs to.
    pub registrar: String,
}

impl Reseller {
    /// The store key of a reseller handle (any case).
    pub fn key(handle: &str) -> String {
        handle.to_ascii_lowercase()
    }
}

/// Wrong auth codes presented for one domain (a table of its own beside
/// the domain record, so the domain's layout stays as it is). It belongs
/// to one code: `code_tag` fingerprints the registration and the code it
/// counted against, so a new code (or a new registration) starts afresh.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFailures {
    pub code_tag: String,
    /// Wrong codes within `lifecycle.auth_code_lifetime`, oldest first.
    pub attempts: Vec<AuthAttempt>,
    /// Since when every code is refused (until the sponsor sets a new one).
    #[serde(with = "ts_opt")]
    pub locked: Option<Timestamp>,
}

/// One wrong auth code: when and by which registrar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthAttempt {
    #[serde(with = "ts")]
    pub at: Timestamp,
    pub registrar: String,
}

/// Where a registrar's change feed is POSTed (docs/api.md, "Webhooks").
/// The secret keys the HMAC of each delivery; it is never published.
/// Stored as JSON beside the registrar record (not in it), so adding it
/// needed no migration of the registrar layout.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    // The secret stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("secret", &"…")
            .finish()
    }
}

/// How far a registrar's webhook deliveries got: the delivery worker's
/// state, not registry data (no history, no feed). Stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookState {
    /// The feed cursor of the last event delivered (or given up).
    pub delivered: u64,
    pub delivered_at: Option<Timestamp>,
    /// The last failed attempt's reason and time.
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    /// Failed attempts in a row (0 after a success).
    pub failures: u32,
    /// When the event now pending was first attempted and failed (the
    /// give-up deadline runs from it).
    pub failing_since: Option<Timestamp>,
    /// Events given up after retrying for `webhook.give_up_after`.
    pub given_up: u64,
}
