//! How DNSSEC findings are worded: the finding itself (escaped once),
//! times, durations, number lists, algorithm mnemonics, probe outcomes.

use crate::checks::catalogue::CheckId;
use crate::model::{Finding, Severity, Timestamp};
use crate::probe::dnssec::SecAddress;
use crate::probe::Outcome;

pub(super) fn finding(id: CheckId, server: Option<&SecAddress>, message: String) -> Finding {
    Finding {
        id: id.as_str().to_string(),
        severity: id.check().map_or(Severity::Error, |c| c.severity),
        server: server.map(|a| a.server.as_str().to_string()),
        address: server.map(|a| a.addr.to_string()),
        // Text from DNS replies: escaped once for every place it is shown.
        message: crate::text::escape(&message).into_owned(),
    }
}

pub(super) fn when(now: Timestamp, delta_secs: i64) -> String {
    let t = now + chrono::Duration::seconds(delta_secs);
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(super) fn human(d: chrono::Duration) -> String {
    d.to_std()
        .map(|s| humantime::format_duration(s).to_string())
        .unwrap_or_else(|_| format!("{}s", d.num_seconds()))
}

pub(super) fn list(v: &[u8]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// IANA mnemonic of a DNSSEC algorithm number.
pub fn algorithm_name(a: u8) -> &'static str {
    match a {
        1 => "RSAMD5",
        3 => "DSA",
        5 => "RSASHA1",
        6 => "DSA-NSEC3-SHA1",
        7 => "RSASHA1-NSEC3-SHA1",
        8 => "RSASHA256",
        10 => "RSASHA512",
        12 => "ECC-GOST",
        13 => "ECDSAP256SHA256",
        14 => "ECDSAP384SHA384",
        15 => "ED25519",
        16 => "ED448",
        _ => "unassigned",
    }
}

pub(super) fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Reply(r) => format!("rcode {}", r.rcode),
        Outcome::Timeout => "timed out".into(),
        Outcome::Io(e) => e.clone(),
        Outcome::Malformed(e) => format!("malformed reply: {e}"),
    }
}
