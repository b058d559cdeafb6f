//! The verifier against real NSD instances on loopback serving good and
//! broken zones.

use crate::support;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use support::check::*;
use support::nsd::{random_loopback, Nsd, ZoneSpec};
use zonekeeper::checks::NsTarget;
use zonekeeper::model::{CheckReport, Verdict};

const TIMEOUT: Duration = Duration::from_secs(1);

fn ips() -> (Ipv4Addr, Ipv4Addr) {
    loop {
        let (a, b) = (random_loopback(), random_loopback());
        if a != b {
            return (a, b);
        }
    }
}

fn spec(serial: u32, ns: &[&str], hosts: &[(&str, Ipv4Addr)]) -> ZoneSpec<'static> {
    ZoneSpec {
        domain: "example.ru",
        serial,
        rname: "hostmaster.example.ru.",
        ns: ns.iter().map(|s| s.to_string()).collect(),
        hosts: hosts.iter().map(|(h, ip)| (h.to_string(), *ip)).collect(),
    }
}

fn nsd(ip: Ipv4Addr, z: &ZoneSpec<'_>) -> Nsd {
    Nsd::start(ip, &[("example.ru", z.render())])
}

async fn check(targets: &[NsTarget]) -> CheckReport {
    verifier(TIMEOUT)
        .check_targets(&domain("example.ru"), targets)
        .await
}

fn t(name: &str, a: SocketAddr) -> NsTarget {
    target(name, &[a])
}

const NS: [&str; 2] = ["ns1.example.ru", "ns2.example.ru"];

#[tokio::test]
async fn good_zone_on_two_servers_passes() {
    let (ip1, ip2) = ips();
    let z = spec(2026112301, &NS, &[(NS[0], ip1), (NS[1], ip2)]);
    let (a, b) = (nsd(ip1, &z), nsd(ip2, &z));
    let r = check(&[t(NS[0], a.addr), t(NS[1], b.addr)]).await;
    assert_report(&r, Verdict::Pass, &[]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    for s in &r.servers {
        assert!(s.reachable);
        assert_eq!(s.soa_serial, Some(2026112301));
    }
}

#[tokio::test]
async fn soa_serial_differs() {
    let (ip1, ip2) = ips();
    let hosts = [(NS[0], ip1), (NS[1], ip2)];
    let a = nsd(ip1, &spec(2026112301, &NS, &hosts));
    let b = nsd(ip2, &spec(2026112302, &NS, &hosts));
    let r = check(&[t(NS[0], a.addr), t(NS[1], b.addr)]).await;
    assert_report(&r, Verdict::Fail, &["SOA_CONSISTENT"]);
    let f = r
        .findings
        .iter()
        .find(|f| f.id == "SOA_CONSISTENT")
        .unwrap();
    assert!(
        f.message.contains("2026112301") && f.message.contains("2026112302"),
        "{}",
        f.message
    );
}

#[tokio::test]
async fn ns_set_differs_from_declared() {
    let (ip1, ip2) = ips();
    let z = spec(
        1,
        &[NS[0], NS[1], "ns3.example.ru"],
        &[(NS[0], ip1), (NS[1], ip2), ("ns3.example.ru", ip2)],
    );
    let (a, b) = (nsd(ip1, &z), nsd(ip2, &z));
    let r = check(&[t(NS[0], a.addr), t(NS[1], b.addr)]).await;
    assert_report(&r, Verdict::Fail, &["NS_SET_MATCHES"]);
    assert!(r
        .findings
        .iter()
        .any(|f| f.message.contains("ns3.example.ru")));
}

#[tokio::test]
async fn glue_differs_from_zone() {
    let (ip1, ip2) = ips();
    let other = Ipv4Addr::new(127, 0, 0, 99);
    let z = spec(1, &NS, &[(NS[0], ip1), (NS[1], other)]);
    let (a, b) = (nsd(ip1, &z), nsd(ip2, &z));
    let r = check(&[t(NS[0], a.addr), t(NS[1], b.addr)]).await;
    assert_report(&r, Verdict::Fail, &["GLUE_MATCHES"]);
    let f = r.findings.iter().find(|f| f.id == "GLUE_MATCHES").unwrap();
    assert_eq!(f.server.as_deref(), Some(NS[1]));
    assert!(f.message.contains("127.0.0.99"), "{}", f.message);
}

#[tokio::test]
async fn rname_with_at_sign() {
    let (ip1, ip2) = ips();
    let mut z = spec(1, &NS, &[(NS[0], ip1), (NS[1], ip2)]);
    z.rname = "hostmaster@example.ru.";
    let (a, b) = (nsd(ip1, &z), nsd(ip2, &z));
    let r = check(&[t(NS[0], a.addr), t(NS[1], b.addr)]).await;
    assert_report(&r, Verdict::Fail, &["RNAME_SYNTAX"]);
}

#[tokio::test]
async fn server_that_refuses_the_zone_is_lame() {
    let (ip1, ip2) = ips();
    let z = spec(1, &NS, &[(NS[0], ip1), (NS[1], ip2)]);
    let a = nsd(ip1, &z);
    let other = ZoneSpec {
        domain: "other.ru",
        ..spec(1, &["ns.other.ru"], &[])
    };
    let b = Nsd::start(ip2, &[("other.ru", other.render())]);
    let r = check(&[t(NS[0], a.addr), t(NS[1], b.addr)]).await;
    assert_report(&r, Verdict::Fail, &["LAME"]);
    let f = r.findings.iter().find(|f| f.id == "LAME").unwrap();
    assert_eq!(f.server.as_deref(), Some(NS[1]));
    assert!(
        f.message.contains("REFUSED") || f.message.contains("Refused"),
        "{}",
        f.message
    );
    // It answered, so it is reachable (no downtime), just lame.
    assert!(r.servers.iter().all(|s| s.reachable));
}

#[tokio::test]
async fn single_server() {
    let ip1 = random_loopback();
    let z = spec(1, &NS[..1], &[(NS[0], ip1)]);
    let a = nsd(ip1, &z);
    let r = check(&[t(NS[0], a.addr)]).await;
    assert_report(&r, Verdict::Fail, &["NS_COUNT"]);
}

#[tokio::test]
async fn two_names_on_one_address() {
    let ip1 = random_loopback();
    let z = spec(1, &NS, &[(NS[0], ip1), (NS[1], ip1)]);
    let a = nsd(ip1, &z);
    let r = check(&[t(NS[0], a.addr), t(NS[1], a.addr)]).await;
    assert_report(&r, Verdict::Fail, &["NS_DISTINCT_ADDR"]);
    let f = r
        .findings
        .iter()
        .find(|f| f.id == "NS_DISTINCT_ADDR")
        .unwrap();
    assert!(f.message.contains(NS[0]) && f.message.contains(NS[1]));
}

#[tokio::test]
async fn one_dead_address_among_live_ones() {
    // ns2 has two addresses; one is a live NSD, one never answers
    // (an unused loopback port answers ICMP; a silent fake drops).
    let (ip1, ip2) = ips();
    let z = spec(1, &NS, &[(NS[0], ip1), (NS[1], ip2)]);
    let (a, b) = (nsd(ip1, &z), nsd(ip2, &z));
    let silent = support::dns::FakeServer::start_on(
        IpAddr::V4(ip2),
        support::dns::FakeZone::new("example.ru", &NS),
        support::dns::Behaviour {
            silent: true,
            ..Default::default()
        },
    )
    .await;
    let r = check(&[t(NS[0], a.addr), target(NS[1], &[b.addr, silent.addr])]).await;
    assert_report(&r, Verdict::Fail, &["RESPONSIVE"]);
    // Reachable on at least one address: no downtime for ns2.
    assert!(r.servers.iter().all(|s| s.reachable));
}
