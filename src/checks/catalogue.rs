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
