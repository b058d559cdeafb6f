//! Every check the verifier runs: stable id, the registry's default severity,
//! and a one-line description. `CHECKS.md` documents the same table.

use crate::model::Severity;

#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub id: &'static str,
    pub severity: Severity,
    pub what: &'static str,
}

const fn c(id: &'static str, severity: Severity, what: &'static str) -> Check {
    Check { id, severity, what }
}

use Severity::{Error, Notice, Warning};

pub const CATALOGUE: &[Check] = &[
    c("NS_COUNT", Error, "at least two nameservers are declared"),
    c(
        "NS_DISTINCT_NAME",
        Error,
        "no nameserver name is declared twice",
    ),
    c(
        "NS_DISTINCT_ADDR",
        Error,
        "no address is shared by two nameservers",
    ),
    c(
        "GLUE_REQUIRED",
        Error,
        "in-bailiwick nameservers come with glue addresses",
    ),
    c(
        "NS_RESOLVES",
        Error,
        "names declared without addresses resolve to A/AAAA",
    ),
    c(
        "NS_NOT_CNAME",
        Error,
        "nameserver names are not aliases (CNAME)",
    ),
    c(
        "TARGET_REFUSED",
        Error,
        "probe targets are public unicast addresses",
    ),
    c("RESPONSIVE", Error, "every address answers DNS queries"),
    c(
        "MALFORMED_REPLY",
        Error,
        "replies are well-formed DNS messages",
    ),
    c("UDP", Error, "the zone's SOA is answered over UDP"),
    c("TCP", Error, "the zone's SOA is answered over TCP"),
    c("TCP_ONLY", Warning, "UDP answers are not always truncated"),
    c(
        "QUERY_ANSWERED",
        Error,
        "NS and in-bailiwick A/AAAA queries are answered NOERROR with AA over UDP and TCP",
    ),
    c(
        "LAME",
        Error,
        "the server serves the zone (no REFUSED/SERVFAIL/NXDOMAIN for the apex)",
    ),
    c(
        "SOA_ANSWER",
        Error,
        "the SOA query is answered with the zone's SOA record",
    ),
    c("AUTHORITATIVE", Error, "SOA answers carry the AA flag"),
    c(
        "SOA_CONSISTENT",
        Error,
        "every server publishes the same SOA",
    ),
    c(
        "NS_SET_MATCHES",
        Error,
        "the NS set each server publishes equals the declared set",
    ),
    c(
        "GLUE_MATCHES",
        Error,
        "declared glue equals the addresses the zone publishes",
    ),
    c(
        "RNAME_SYNTAX",
        Error,
        "the SOA RNAME is a mailbox domain name (no '@')",
    ),
    c(
        "MNAME_SYNTAX",
        Warning,
        "the SOA MNAME is a valid host name",
    ),
    c(
        "SOA_TIMERS",
        Warning,
        "SOA refresh/retry/expire/minimum are within recommended ranges",
    ),
    c(
        "OPEN_RECURSION",
        Warning,
        "nameservers do not offer recursion to the public",
    ),
    c("EDNS", Warning, "EDNS(0) queries are answered with EDNS"),
    c(
        "RTT",
        Notice,
        "the median round-trip time of an address is under one second",
    ),
    // DNSSEC (run when a DS set is declared; `DNSSEC_NO_DS` always).
    c(
        "DS_SYNTAX",
        Error,
        "DS records are well-formed: digest length fits the digest type (RFC 4034 §5, RFC 4509)",
    ),
    c(
        "DS_DIGEST_TYPE",
        Error,
        "the DS digest type is one the registry accepts; SHA-1 is refused (RFC 8624 §3.3)",
    ),
    c(
        "DS_ALGORITHM",
        Error,
        "the DS key algorithm is one the registry accepts (RFC 8624 §3.1)",
    ),
    c(
        "DNSKEY_PRESENT",
        Error,
        "a zone with a DS serves a DNSKEY RRset; a DS for an unsigned zone fails (RFC 4035 §2.1, §5.2)",
    ),
    c(
        "DNSKEY_CONSISTENT",
        Error,
        "every server serves the same DNSKEY RRset (RFC 4035 §2.1)",
    ),
    c(
        "DS_MATCHES_DNSKEY",
        Error,
        "every DS matches a zone key of the child: key tag, algorithm, digest over owner and RDATA (RFC 4034 §5.1.4, §5.2)",
    ),
    c(
        "DNSKEY_SIGNED_BY_DS",
        Error,
        "the DNSKEY RRset is signed by a key a DS points at (RFC 4035 §5.2)",
    ),
    c(
        "RRSIG_SOA",
        Error,
        "the SOA RRset is signed (RFC 4035 §2.2)",
    ),
    c(
        "RRSIG_NS",
        Error,
        "the apex NS RRset is signed (RFC 4035 §2.2)",
    ),
    c(
        "RRSIG_VALID",
        Error,
        "every RRSIG verifies with a zone key and is within its validity period (RFC 4034 §3.1.5, RFC 4035 §5.3)",
    ),
    c(
        "RRSIG_EXPIRY",
        Warning,
        "no RRSIG expires within the profile's margin (RFC 4641bis / RFC 6781 §4.4)",
    ),
    c(
        "DENIAL_OF_EXISTENCE",
        Error,
        "a name that does not exist is proven absent with signed NSEC or NSEC3 (RFC 4035 §3.1.3, RFC 5155 §7.2)",
    ),
    c(
        "NSEC3_PARAMS",
        Warning,
        "NSEC3 uses 0 extra iterations and no salt (RFC 9276 §3.1)",
    ),
    c(
        "NSEC3_ITERATIONS",
        Error,
        "NSEC3 iterations are within what validators accept (RFC 9276 §3.2)",
    ),
    c(
        "DNSSEC_LIMITS",
        Error,
        "DNSSEC data is within the checker's bounds (DNSKEY count, verification budget)",
    ),
    c(
        "DNSSEC_NO_DS",
        Notice,
        "a signed zone has a DS declared; without one it is not validated (RFC 4035 §5)",
    ),
];

pub fn lookup(id: &str) -> Option<&'static Check> {
    CATALOGUE.iter().find(|c| c.id == id)
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
        let mut ids: Vec<&str> = CATALOGUE.iter().map(|c| c.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CATALOGUE.len(), "duplicate id");
    }
}
