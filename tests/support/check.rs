//! Shared helpers of the `check_*` tests (and the check benchmark).

use super::dns;

use std::net::SocketAddr;
use std::time::Duration;

use zonekeeper::checks::{NsTarget, Profile, Verifier};
use zonekeeper::config::ProbeConfig;
use zonekeeper::model::{CheckReport, Severity, Verdict};
use zonekeeper::names::{DomainName, Zones};

pub fn domain(s: &str) -> DomainName {
    Zones::new(&["ru"]).unwrap().parse_domain(s).unwrap()
}

/// Loopback-friendly probe config; never the system resolver.
pub fn probe_cfg(timeout: Duration, resolvers: Vec<SocketAddr>) -> ProbeConfig {
    ProbeConfig {
        allow_private_targets: true,
        allow_loopback_targets: false,
        resolvers: if resolvers.is_empty() {
            // A closed loopback port: lookups fail fast instead of leaving the host.
            vec![dns::closed_port()]
        } else {
            resolvers
        },
        timeout,
        retries: 1,
        max_in_flight: 1024,
        recursion_probe_name: "probe.example.com".into(),
        port: 53,
        ..ProbeConfig::default()
    }
}

pub fn verifier(timeout: Duration) -> Verifier {
    Verifier::new(&probe_cfg(timeout, vec![]), Profile::registry_default()).unwrap()
}

pub fn target(name: &str, addrs: &[SocketAddr]) -> NsTarget {
    NsTarget {
        name: zonekeeper::names::parse_host(name).unwrap(),
        addrs: addrs.to_vec(),
    }
}

/// Ids of findings at warning or error level, sorted and deduplicated.
pub fn ids(r: &CheckReport) -> Vec<String> {
    let mut v: Vec<String> = r
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| f.id.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

#[track_caller]
pub fn assert_report(r: &CheckReport, verdict: Verdict, expected: &[&str]) {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    want.dedup();
    assert_eq!(
        (r.verdict, ids(r)),
        (verdict, want),
        "report: {}",
        serde_json::to_string_pretty(r).unwrap()
    );
}
