//! Every check the verifier runs: stable id, the registry's default severity,
//! and a one-line description. `CHECKS.md` documents the same table.

use crate::model::Severity;

/// A check's stable id, as one enum: the verifier (`rules`, `dnssec`)
/// raises findings by it, the catalogue grades it, and every reader
/// (API, WHOIS, the dashboard, the delegation state machine) compares
/// against it. On the wire (findings, JSON, stored rounds) it is the id
/// string ([`CheckId::as_str`]), unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckId {
    NsCount,
    NsDistinctName,
    NsDistinctAddr,
    GlueRequired,
    NsResolves,
    NsNotCname,
    TargetRefused,
    Responsive,
    MalformedReply,
    Udp,
    Tcp,
    TcpOnly,
    QueryAnswered,
    Lame,
    SoaAnswer,
    Authoritative,
    SoaConsistent,
    NsSetMatches,
    GlueMatches,
    RnameSyntax,
    MnameSyntax,
    SoaTimers,
    OpenRecursion,
    Edns,
    Rtt,
    DsSyntax,
    DsDigestType,
    DsAlgorithm,
    DnskeyPresent,
    DnskeyConsistent,
    DsMatchesDnskey,
    DnskeySignedByDs,
    RrsigSoa,
    RrsigNs,
    RrsigValid,
    RrsigExpiry,
    DenialOfExistence,
    Nsec3Params,
    Nsec3Iterations,
    DnssecLimits,
    DnssecNoDs,
    /// Not a probe check: the delegation state machine's finding for a
    /// server over its downtime budget (docs/delegation.md).
    DowntimeBudget,
}

impl CheckId {
    pub const ALL: [CheckId; 42] = [
        Self::NsCount,
        Self::NsDistinctName,
        Self::NsDistinctAddr,
        Self::GlueRequired,
        Self::NsResolves,
        Self::NsNotCname,
        Self::TargetRefused,
        Self::Responsive,
        Self::MalformedReply,
        Self::Udp,
        Self::Tcp,
        Self::TcpOnly,
        Self::QueryAnswered,
        Self::Lame,
        Self::SoaAnswer,
        Self::Authoritative,
        Self::SoaConsistent,
        Self::NsSetMatches,
        Self::GlueMatches,
        Self::RnameSyntax,
        Self::MnameSyntax,
        Self::SoaTimers,
        Self::OpenRecursion,
        Self::Edns,
        Self::Rtt,
        Self::DsSyntax,
        Self::DsDigestType,
        Self::DsAlgorithm,
        Self::DnskeyPresent,
        Self::DnskeyConsistent,
        Self::DsMatchesDnskey,
        Self::DnskeySignedByDs,
        Self::RrsigSoa,
        Self::RrsigNs,
        Self::RrsigValid,
        Self::RrsigExpiry,
        Self::DenialOfExistence,
        Self::Nsec3Params,
        Self::Nsec3Iterations,
        Self::DnssecLimits,
        Self::DnssecNoDs,
        Self::DowntimeBudget,
    ];

    /// The stable id string (CHECKS.md).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NsCount => "NS_COUNT",
            Self::NsDistinctName => "NS_DISTINCT_NAME",
            Self::NsDistinctAddr => "NS_DISTINCT_ADDR",
            Self::GlueRequired => "GLUE_REQUIRED",
            Self::NsResolves => "NS_RESOLVES",
            Self::NsNotCname => "NS_NOT_CNAME",
            Self::TargetRefused => "TARGET_REFUSED",
            Self::Responsive => "RESPONSIVE",
            Self::MalformedReply => "MALFORMED_REPLY",
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::TcpOnly => "TCP_ONLY",
            Self::QueryAnswered => "QUERY_ANSWERED",
            Self::Lame => "LAME",
            Self::SoaAnswer => "SOA_ANSWER",
            Self::Authoritative => "AUTHORITATIVE",
            Self::SoaConsistent => "SOA_CONSISTENT",
            Self::NsSetMatches => "NS_SET_MATCHES",
            Self::GlueMatches => "GLUE_MATCHES",
            Self::RnameSyntax => "RNAME_SYNTAX",
            Self::MnameSyntax => "MNAME_SYNTAX",
            Self::SoaTimers => "SOA_TIMERS",
            Self::OpenRecursion => "OPEN_RECURSION",
            Self::Edns => "EDNS",
            Self::Rtt => "RTT",
            Self::DsSyntax => "DS_SYNTAX",
            Self::DsDigestType => "DS_DIGEST_TYPE",
            Self::DsAlgorithm => "DS_ALGORITHM",
            Self::DnskeyPresent => "DNSKEY_PRESENT",
            Self::DnskeyConsistent => "DNSKEY_CONSISTENT",
            Self::DsMatchesDnskey => "DS_MATCHES_DNSKEY",
            Self::DnskeySignedByDs => "DNSKEY_SIGNED_BY_DS",
            Self::RrsigSoa => "RRSIG_SOA",
            Self::RrsigNs => "RRSIG_NS",
            Self::RrsigValid => "RRSIG_VALID",
            Self::RrsigExpiry => "RRSIG_EXPIRY",
            Self::DenialOfExistence => "DENIAL_OF_EXISTENCE",
            Self::Nsec3Params => "NSEC3_PARAMS",
            Self::Nsec3Iterations => "NSEC3_ITERATIONS",
            Self::DnssecLimits => "DNSSEC_LIMITS",
            Self::DnssecNoDs => "DNSSEC_NO_DS",
            Self::DowntimeBudget => "DOWNTIME_BUDGET",
        }
    }

    /// The check with this id string.
    pub fn parse(id: &str) -> Option<CheckId> {
        Self::ALL.into_iter().find(|c| c.as_str() == id)
    }

    /// Its catalogue entry (every probe check has one).
    pub fn check(self) -> Option<&'static Check> {
        CATALOGUE.iter().find(|c| c.id == self)
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for CheckId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<String> for CheckId {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub id: CheckId,
    pub severity: Severity,
    pub what: &'static str,
}

const fn c(id: CheckId, severity: Severity, what: &'static str) -> Check {
    Check { id, severity, what }
}

use Severity::{Error, Notice, Warning};

pub const CATALOGUE: &[Check] = &[
    c(CheckId::NsCount, Error, "at least two nameservers are declared"),
    c(
        CheckId::NsDistinctName,
        Error,
        "no nameserver name is declared twice",
    ),
    c(
        CheckId::NsDistinctAddr,
        Error,
        "no address is shared by two nameservers",
    ),
    c(
        CheckId::GlueRequired,
        Error,
        "in-bailiwick nameservers come with glue addresses",
    ),
    c(
        CheckId::NsResolves,
        Error,
        "names declared without addresses resolve to A/AAAA",
    ),
    c(
        CheckId::NsNotCname,
        Error,
        "nameserver names are not aliases (CNAME)",
    ),
    c(
        CheckId::TargetRefused,
        Error,
        "probe targets are public unicast addresses",
    ),
    c(CheckId::Responsive, Error, "every address answers DNS queries"),
    c(
        CheckId::MalformedReply,
        Error,
        "replies are well-formed DNS messages",
    ),
    c(CheckId::Udp, Error, "the zone's SOA is answered over UDP"),
    c(CheckId::Tcp, Error, "the zone's SOA is answered over TCP"),
    c(CheckId::TcpOnly, Warning, "UDP answers are not always truncated"),
    c(
        CheckId::QueryAnswered,
        Error,
        "NS and in-bailiwick A/AAAA queries are answered NOERROR with AA over UDP and TCP",
    ),
    c(
        CheckId::Lame,
        Error,
        "the server serves the zone (no REFUSED/SERVFAIL/NXDOMAIN for the apex)",
    ),
    c(
        CheckId::SoaAnswer,
        Error,
        "the SOA query is answered with the zone's SOA record",
    ),
    c(CheckId::Authoritative, Error, "SOA answers carry the AA flag"),
    c(
        CheckId::SoaConsistent,
        Error,
        "every server publishes the same SOA",
    ),
    c(
        CheckId::NsSetMatches,
        Error,
        "the NS set each server publishes equals the declared set",
    ),
    c(
        CheckId::GlueMatches,
        Error,
        "declared glue equals the addresses the zone publishes",
    ),
    c(
        CheckId::RnameSyntax,
        Error,
        "the SOA RNAME is a mailbox domain name (no '@')",
    ),
    c(
        CheckId::MnameSyntax,
        Warning,
        "the SOA MNAME is a valid host name",
    ),
    c(
        CheckId::SoaTimers,
        Warning,
        "SOA refresh/retry/expire/minimum are within recommended ranges",
    ),
    c(
        CheckId::OpenRecursion,
        Warning,
        "nameservers do not offer recursion to the public",
    ),
    c(CheckId::Edns, Warning, "EDNS(0) queries are answered with EDNS"),
    c(
        CheckId::Rtt,
        Notice,
        "the median round-trip time of an address is under one second",
    ),
    // DNSSEC (run when a DS set is declared; `DNSSEC_NO_DS` always).
    c(
        CheckId::DsSyntax,
        Error,
        "DS records are well-formed: digest length fits the digest type (RFC 4034 §5, RFC 4509)",
    ),
    c(
        CheckId::DsDigestType,
        Error,
        "the DS digest type is one the registry accepts; SHA-1 is refused (RFC 8624 §3.3)",
    ),
    c(
        CheckId::DsAlgorithm,
        Error,
        "the DS key algorithm is one the registry accepts (RFC 8624 §3.1)",
    ),
    c(
        CheckId::DnskeyPresent,
        Error,
        "a zone with a DS serves a DNSKEY RRset; a DS for an unsigned zone fails (RFC 4035 §2.1, §5.2)",
    ),
    c(
        CheckId::DnskeyConsistent,
        Error,
        "every server serves the same DNSKEY RRset (RFC 4035 §2.1)",
    ),
    c(
        CheckId::DsMatchesDnskey,
        Error,
        "every DS matches a zone key of the child: key tag, algorithm, digest over owner and RDATA (RFC 4034 §5.1.4, §5.2)",
    ),
    c(
        CheckId::DnskeySignedByDs,
        Error,
        "the DNSKEY RRset is signed by a key a DS points at (RFC 4035 §5.2)",
    ),
    c(
        CheckId::RrsigSoa,
        Error,
        "the SOA RRset is signed (RFC 4035 §2.2)",
    ),
    c(
        CheckId::RrsigNs,
        Error,
        "the apex NS RRset is signed (RFC 4035 §2.2)",
    ),
    c(
        CheckId::RrsigValid,
        Error,
        "every RRSIG verifies with a zone key and is within its validity period (RFC 4034 §3.1.5, RFC 4035 §5.3)",
    ),
    c(
        CheckId::RrsigExpiry,
        Warning,
        "no RRSIG expires within the profile's margin (RFC 4641bis / RFC 6781 §4.4)",
    ),
    c(
        CheckId::DenialOfExistence,
        Error,
        "a name that does not exist is proven absent with signed NSEC or NSEC3 (RFC 4035 §3.1.3, RFC 5155 §7.2)",
    ),
    c(
        CheckId::Nsec3Params,
        Warning,
        "NSEC3 uses 0 extra iterations and no salt (RFC 9276 §3.1)",
    ),
    c(
        CheckId::Nsec3Iterations,
        Error,
        "NSEC3 iterations are within what validators accept (RFC 9276 §3.2)",
    ),
    c(
        CheckId::DnssecLimits,
        Error,
        "DNSSEC data is within the checker's bounds (DNSKEY count, verification budget)",
    ),
    c(
        CheckId::DnssecNoDs,
        Notice,
        "a signed zone has a DS declared; without one it is not validated (RFC 4035 §5)",
    ),
];

pub fn lookup(id: &str) -> Option<&'static Check> {
    CheckId::parse(id).and_then(CheckId::check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_md_documents_every_check_with_its_severity() {
        let doc = include_str!("../../CHECKS.md");
        for c in CATALOGUE {
            let row = format!("| `{}` | {} |", c.id, c.severity.as_str());
            assert!(doc.contains(&row), "CHECKS.md lacks the row for {}", c.id);
        }
        let mut ids: Vec<&str> = CATALOGUE.iter().map(|c| c.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CATALOGUE.len(), "duplicate id");
    }

    /// One enum, one id string each, parsed back; every probe check is in
    /// the catalogue (only the state machine's own finding is not).
    #[test]
    fn check_ids_parse_back_and_have_a_catalogue_entry() {
        for c in CheckId::ALL {
            assert_eq!(CheckId::parse(c.as_str()), Some(c));
            assert_eq!(c.check().is_some(), c != CheckId::DowntimeBudget, "{c}");
        }
        assert_eq!(CATALOGUE.len() + 1, CheckId::ALL.len());
        assert_eq!(
            serde_json::to_string(&CheckId::NsCount).unwrap(),
            "\"NS_COUNT\""
        );
    }
}
