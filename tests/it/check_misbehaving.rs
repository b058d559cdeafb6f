//! The verifier against small in-test servers that misbehave in one way each
//! (hickory-proto on tokio sockets, loopback, ephemeral ports). Each pair is
//! one good server and one bad one, so the findings name only the fault.

use crate::support;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::check::*;
use support::dns::{closed_port, Behaviour, FakeServer, FakeZone};
use support::nsd::random_loopback;
use zonekeeper::checks::{Profile, Verifier};
use zonekeeper::model::Verdict;

const TIMEOUT: Duration = Duration::from_millis(800);

fn two_ips() -> (IpAddr, IpAddr) {
    loop {
        let (a, b) = (random_loopback(), random_loopback());
        if a != b {
            return (IpAddr::V4(a), IpAddr::V4(b));
        }
    }
}

fn zone(ip1: IpAddr, ip2: IpAddr) -> FakeZone {
    FakeZone::new("example.ru", &["ns1.example.ru", "ns2.example.ru"])
        .host("ns1.example.ru", ip1)
        .host("ns2.example.ru", ip2)
}

/// ns1 behaves; ns2 behaves as `bad`.
async fn pair(bad: Behaviour) -> (FakeServer, FakeServer, Vec<zonekeeper::checks::NsTarget>) {
    let (ip1, ip2) = two_ips();
    let good = FakeServer::start_on(ip1, zone(ip1, ip2), Behaviour::default()).await;
    let badsrv = FakeServer::start_on(ip2, zone(ip1, ip2), bad).await;
    let targets = vec![
        target("ns1.example.ru", &[good.addr]),
        target("ns2.example.ru", &[badsrv.addr]),
    ];
    (good, badsrv, targets)
}

/// ns1 on `ip1` serves `z1`, ns2 on `ip2` serves `z2`, both behaving:
/// one check of example.ru against them.
async fn check_zones(
    (ip1, ip2): (IpAddr, IpAddr),
    z1: FakeZone,
    z2: FakeZone,
) -> zonekeeper::model::CheckReport {
    let a = FakeServer::start_on(ip1, z1, Behaviour::default()).await;
    let b = FakeServer::start_on(ip2, z2, Behaviour::default()).await;
    let targets = vec![
        target("ns1.example.ru", &[a.addr]),
        target("ns2.example.ru", &[b.addr]),
    ];
    verifier(TIMEOUT)
        .check_targets(&domain("example.ru"), &targets)
        .await
}

async fn run_bad(bad: Behaviour) -> zonekeeper::model::CheckReport {
    let (_g, _b, targets) = pair(bad).await;
    verifier(TIMEOUT)
        .check_targets(&domain("example.ru"), &targets)
        .await
}

#[tokio::test]
async fn well_behaved_pair_passes() {
    let r = run_bad(Behaviour::default()).await;
    assert_report(&r, Verdict::Pass, &[]);
    assert!(r
        .servers
        .iter()
        .all(|s| s.reachable && s.soa_serial == Some(2026112301)));
    assert!(r.servers.iter().all(|s| s.rtt_ms.is_some()));
}

#[tokio::test]
async fn no_aa_is_not_authoritative() {
    let r = run_bad(Behaviour {
        no_aa: true,
        ..Default::default()
    })
    .await;
    assert_report(&r, Verdict::Fail, &["AUTHORITATIVE"]);
    let f = r.findings.iter().find(|f| f.id == "AUTHORITATIVE").unwrap();
    assert_eq!(f.server.as_deref(), Some("ns2.example.ru"));
    assert!(f.address.is_some());
}

/// A server that serves the SOA but refuses (or fails) the other queries
/// the checks rely on does not pass.
#[tokio::test]
async fn every_query_the_checks_rely_on_must_be_answered() {
    let r = run_bad(Behaviour {
        refuse_ns_tcp: true,
        ..Default::default()
    })
    .await;
    assert_report(&r, Verdict::Fail, &["QUERY_ANSWERED"]);
    let f = r
        .findings
        .iter()
        .find(|f| f.id == "QUERY_ANSWERED")
        .unwrap();
    assert_eq!(f.server.as_deref(), Some("ns2.example.ru"));
    assert!(f.address.is_some());
    assert!(
        f.message.contains("NS example.ru over TCP: REFUSED"),
        "{}",
        f.message
    );
    let r = run_bad(Behaviour {
        servfail_hosts: true,
        ..Default::default()
    })
    .await;
    let f = r
        .findings
        .iter()
        .find(|f| f.id == "QUERY_ANSWERED")
        .unwrap();
    for what in [
        "A ns1.example.ru over UDP: SERVFAIL",
        "AAAA ns2.example.ru over TCP: SERVFAIL",
    ] {
        assert!(f.message.contains(what), "{}", f.message);
    }
    assert_eq!(r.verdict, Verdict::Fail);
}

/// One misbehaviour per row: the finding it must raise and the verdict.
/// The rows run concurrently, each on its own pair of loopback addresses.
#[tokio::test]
async fn each_misbehaviour_raises_its_finding() {
    let b = Behaviour::default;
    let rows: Vec<(&str, Behaviour, Verdict, &str, &str)> = vec![
        // (what, behaviour of ns2, verdict, finding, text in a message)
        (
            "no TCP",
            Behaviour {
                no_tcp: true,
                ..b()
            },
            Verdict::Fail,
            "TCP",
            "",
        ),
        (
            "random bytes",
            Behaviour {
                garbage: true,
                ..b()
            },
            Verdict::Fail,
            "MALFORMED_REPLY",
            "",
        ),
        (
            "NXDOMAIN for the apex",
            Behaviour {
                nxdomain_apex: true,
                ..b()
            },
            Verdict::Fail,
            "LAME",
            "NXDOMAIN",
        ),
        (
            "REFUSED for the zone",
            Behaviour {
                refuse: true,
                ..b()
            },
            Verdict::Fail,
            "LAME",
            "",
        ),
        (
            "NOERROR without SOA",
            Behaviour {
                no_soa: true,
                ..b()
            },
            Verdict::Fail,
            "SOA_ANSWER",
            "",
        ),
        (
            "UDP reply from another port",
            Behaviour {
                other_source: true,
                ..b()
            },
            Verdict::Fail,
            "UDP",
            "",
        ),
        (
            "open recursion",
            Behaviour {
                open_recursion: true,
                ..b()
            },
            Verdict::Pass,
            "OPEN_RECURSION",
            "",
        ),
        (
            "FORMERR on EDNS",
            Behaviour {
                formerr_edns: true,
                ..b()
            },
            Verdict::Pass,
            "EDNS",
            "",
        ),
    ];
    let reports = futures::future::join_all(rows.iter().map(|r| run_bad(r.1.clone()))).await;
    for ((what, _, verdict, id, text), r) in rows.iter().zip(reports) {
        eprintln!("row: {what}");
        // Exactly this finding: the good server adds none.
        assert_report(&r, *verdict, &[id]);
        assert!(
            r.findings.iter().any(|f| f.message.contains(text)),
            "{what}: no finding says '{text}': {:?}",
            r.findings
        );
    }
}

#[tokio::test]
async fn silent_server_costs_one_timeout_in_parallel() {
    let start = Instant::now();
    let r = run_bad(Behaviour {
        silent: true,
        ..Default::default()
    })
    .await;
    let took = start.elapsed();
    assert_report(&r, Verdict::Fail, &["RESPONSIVE"]);
    assert!(
        took < TIMEOUT * 3,
        "check took {took:?} with timeout {TIMEOUT:?}"
    );
    assert!(took >= TIMEOUT, "{took:?}");
    let ns2 = r
        .servers
        .iter()
        .find(|s| s.name == "ns2.example.ru")
        .unwrap();
    assert!(!ns2.reachable);
    assert!(
        r.servers
            .iter()
            .find(|s| s.name == "ns1.example.ru")
            .unwrap()
            .reachable
    );
}

#[tokio::test]
async fn wrong_reply_id_is_never_accepted() {
    let (_g, bad, targets) = pair(Behaviour {
        wrong_id: true,
        ..Default::default()
    })
    .await;
    let r = verifier(TIMEOUT)
        .check_targets(&domain("example.ru"), &targets)
        .await;
    assert_report(&r, Verdict::Fail, &["RESPONSIVE"]);
    // It did get our queries (and answered them, with the wrong ID).
    assert!(bad.hits.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn closed_port_is_unresponsive_fast() {
    let (ip1, _) = two_ips();
    let dead = closed_port();
    let z = zone(ip1, dead.ip());
    let good = FakeServer::start_on(ip1, z, Behaviour::default()).await;
    let targets = vec![
        target("ns1.example.ru", &[good.addr]),
        target("ns2.example.ru", &[dead]),
    ];
    let start = Instant::now();
    let r = verifier(TIMEOUT)
        .check_targets(&domain("example.ru"), &targets)
        .await;
    assert_report(&r, Verdict::Fail, &["RESPONSIVE"]);
    let f = r.findings.iter().find(|f| f.id == "RESPONSIVE").unwrap();
    assert!(f.message.contains("refused"), "{}", f.message);
    // ICMP port unreachable / RST: no need to wait for the timeout.
    assert!(start.elapsed() < TIMEOUT, "{:?}", start.elapsed());
}

#[tokio::test]
async fn always_truncated_udp_falls_back_to_tcp() {
    let r = run_bad(Behaviour {
        always_tc: true,
        ..Default::default()
    })
    .await;
    assert_report(&r, Verdict::Pass, &["TCP_ONLY"]);
    let ns2 = r
        .servers
        .iter()
        .find(|s| s.name == "ns2.example.ru")
        .unwrap();
    assert_eq!(ns2.soa_serial, Some(2026112301));
}

#[tokio::test]
async fn serial_differs_between_fakes() {
    let (ip1, ip2) = two_ips();
    let mut z2 = zone(ip1, ip2);
    z2.serial += 1;
    let r = check_zones((ip1, ip2), zone(ip1, ip2), z2).await;
    assert_report(&r, Verdict::Fail, &["SOA_CONSISTENT"]);
}

#[tokio::test]
async fn private_targets_are_refused_without_a_packet() {
    let (_g, bad, targets) = pair(Behaviour::default()).await;
    let mut cfg = probe_cfg(TIMEOUT, vec![]);
    cfg.allow_private_targets = false;
    let v = Verifier::new(&cfg, Profile::registry_default()).unwrap();
    let r = v.check_targets(&domain("example.ru"), &targets).await;
    assert_report(&r, Verdict::Fail, &["TARGET_REFUSED"]);
    assert_eq!(r.findings.len(), 2, "{:?}", r.findings);
    assert_eq!(bad.hits.load(Ordering::Relaxed), 0);
    assert!(r.servers.iter().all(|s| !s.reachable));
}

#[tokio::test]
async fn profile_changes_severity() {
    let (_g, _b, targets) = pair(Behaviour {
        open_recursion: true,
        ..Default::default()
    })
    .await;
    let strict = Profile::from_toml("[severity]\nOPEN_RECURSION = \"error\"\n").unwrap();
    let v = Verifier::new(&probe_cfg(TIMEOUT, vec![]), strict).unwrap();
    let r = v.check_targets(&domain("example.ru"), &targets).await;
    assert_report(&r, Verdict::Fail, &["OPEN_RECURSION"]);
    let off = Profile::from_toml("[severity]\nOPEN_RECURSION = \"off\"\n").unwrap();
    let v = Verifier::new(&probe_cfg(TIMEOUT, vec![]), off).unwrap();
    let r = v.check_targets(&domain("example.ru"), &targets).await;
    assert_report(&r, Verdict::Pass, &[]);
}

#[tokio::test]
async fn in_bailiwick_name_without_glue() {
    let (_g, _b, mut targets) = pair(Behaviour::default()).await;
    targets[1].addrs.clear();
    let r = verifier(TIMEOUT)
        .check_targets(&domain("example.ru"), &targets)
        .await;
    assert_report(&r, Verdict::Fail, &["GLUE_REQUIRED", "NS_RESOLVES"]);
}

/// A fake authoritative server on port 53 of a random loopback address, so
/// a resolved name (always port 53) reaches it. `None` if port 53 is taken.
async fn on_port_53(z: FakeZone) -> Option<FakeServer> {
    for _ in 0..5 {
        let ip = IpAddr::V4(random_loopback());
        if let Some(s) = FakeServer::start_on_port(ip, 53, z.clone(), Behaviour::default()).await {
            return Some(s);
        }
    }
    None
}

#[tokio::test]
async fn out_of_bailiwick_name_is_resolved_with_the_configured_resolver() {
    let ip1 = IpAddr::V4(random_loopback());
    let ns2_ip = IpAddr::V4(random_loopback());
    let z = FakeZone::new("example.ru", &["ns1.example.ru", "ns.example.net"])
        .host("ns1.example.ru", ip1)
        .host("ns.example.net", ns2_ip);
    let Some(ns2) = FakeServer::start_on_port(ns2_ip, 53, z.clone(), Behaviour::default()).await
    else {
        // Binding port 53 needs root (CI runs as root): under CI a
        // missing port is a failure, never a silent skip.
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "port 53 unavailable on loopback, needed under CI=true"
        );
        eprintln!("port 53 unavailable on loopback; skipping (not under CI)");
        return;
    };
    let ns1 = FakeServer::start_on(ip1, z.clone(), Behaviour::default()).await;
    // The resolver: another fake that knows ns.example.net.
    let resolver = FakeServer::start(z, Behaviour::default()).await;
    let v = Verifier::new(
        &probe_cfg(TIMEOUT, vec![resolver.addr]),
        Profile::registry_default(),
    )
    .unwrap();
    let targets = vec![
        target("ns1.example.ru", &[ns1.addr]),
        target("ns.example.net", &[]),
    ];
    let r = v.check_targets(&domain("example.ru"), &targets).await;
    assert_report(&r, Verdict::Pass, &[]);
    let s = r
        .servers
        .iter()
        .find(|s| s.name == "ns.example.net")
        .unwrap();
    assert_eq!(s.addresses, vec![ns2_ip.to_string()]);
    assert!(s.reachable);
    assert!(ns2.hits.load(Ordering::Relaxed) > 0);
    assert!(resolver.hits.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn nameserver_that_is_a_cname() {
    let ip1 = IpAddr::V4(random_loopback());
    let mut z = FakeZone::new("example.ru", &["ns1.example.ru", "ns.example.net"])
        .host("ns1.example.ru", ip1);
    let Some(real) = on_port_53(z.clone()).await else {
        // Binding port 53 needs root (CI runs as root): under CI a
        // missing port is a failure, never a silent skip.
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "port 53 unavailable on loopback, needed under CI=true"
        );
        eprintln!("port 53 unavailable on loopback; skipping (not under CI)");
        return;
    };
    z = z.host("real.example.net", real.addr.ip());
    z.cnames
        .insert("ns.example.net".into(), "real.example.net".into());
    let ns1 = FakeServer::start_on(ip1, z.clone(), Behaviour::default()).await;
    let resolver = FakeServer::start(z, Behaviour::default()).await;
    let v = Verifier::new(
        &probe_cfg(TIMEOUT, vec![resolver.addr]),
        Profile::registry_default(),
    )
    .unwrap();
    let targets = vec![
        target("ns1.example.ru", &[ns1.addr]),
        target("ns.example.net", &[]),
    ];
    let r = v.check_targets(&domain("example.ru"), &targets).await;
    assert_report(&r, Verdict::Fail, &["NS_NOT_CNAME"]);
}

#[tokio::test]
async fn in_bailiwick_cname_seen_in_the_zone() {
    let (ip1, ip2) = two_ips();
    let mut z = zone(ip1, ip2);
    z.hosts.remove("ns2.example.ru");
    z.cnames
        .insert("ns2.example.ru".into(), "ns1.example.ru".into());
    let r = check_zones((ip1, ip2), z.clone(), z).await;
    assert_report(&r, Verdict::Fail, &["NS_NOT_CNAME"]);
}

#[tokio::test]
async fn many_concurrent_checks_share_the_in_flight_limit() {
    let (_g, _b, targets) = pair(Behaviour::default()).await;
    let mut cfg = probe_cfg(Duration::from_secs(2), vec![]);
    cfg.max_in_flight = 4;
    let v = Verifier::new(&cfg, Profile::registry_default()).unwrap();
    let d = domain("example.ru");
    let reports = futures::future::join_all((0..20).map(|_| v.check_targets(&d, &targets))).await;
    for r in reports {
        assert_report(&r, Verdict::Pass, &[]);
    }
}

#[test]
fn verifier_is_send_sync_clone() {
    fn ok<T: Send + Sync + Clone + 'static>() {}
    ok::<Verifier>();
}

#[tokio::test]
async fn ipv4_and_ipv6_addresses_are_all_probed() {
    let ip1 = IpAddr::V4(random_loopback());
    let v6: IpAddr = "::1".parse().unwrap();
    let z = FakeZone::new("example.ru", &["ns1.example.ru", "ns2.example.ru"])
        .host("ns1.example.ru", ip1)
        .host("ns2.example.ru", v6)
        .host("ns2.example.ru", ip1);
    let a = FakeServer::start_on(ip1, z.clone(), Behaviour::default()).await;
    let b6 = FakeServer::start_on(v6, z.clone(), Behaviour::default()).await;
    // ns2's IPv4 address is dead (nothing listens): a finding on that
    // address only, and ns2 stays reachable through IPv6.
    let dead4 = SocketAddr::new(ip1, closed_port().port());
    let targets = vec![
        target("ns1.example.ru", &[a.addr]),
        target("ns2.example.ru", &[b6.addr, dead4]),
    ];
    let r = verifier(TIMEOUT)
        .check_targets(&domain("example.ru"), &targets)
        .await;
    assert_report(&r, Verdict::Fail, &["RESPONSIVE"]);
    let f = r.findings.iter().find(|f| f.id == "RESPONSIVE").unwrap();
    assert_eq!(f.address.as_deref(), Some(dead4.to_string().as_str()));
    let ns2 = r
        .servers
        .iter()
        .find(|s| s.name == "ns2.example.ru")
        .unwrap();
    assert!(ns2.reachable);
    assert_eq!(ns2.addresses, vec![b6.addr.to_string(), dead4.to_string()]);
    assert!(b6.hits.load(Ordering::Relaxed) > 0);
}
