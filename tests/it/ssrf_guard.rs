//! SSRF / amplification guard of the prober (`probe::guard::special_use`):
//! every special-use range is refused unless private targets are allowed,
//! including IPv4 addresses hidden inside IPv6 ones; and end to end, with the
//! switch off a declared or resolved loopback address gets TARGET_REFUSED
//! and not one packet (listeners on that address prove it). Only loopback is
//! ever sent to.

use crate::support;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use proptest::prelude::*;
use support::check::*;
use support::dns::{closed_port, Behaviour, FakeServer, FakeZone};
use support::nsd::random_loopback;
use zonekeeper::checks::{Profile, Verifier};
use zonekeeper::model::Verdict;
use zonekeeper::probe::guard::special_use;

fn refused(s: &str) -> bool {
    special_use(s.parse().unwrap()).is_some()
}

// --- the table ----------------------------------------------------------------

/// (first, last) of each refused IPv4 range, and the public neighbours just
/// outside it (where the neighbour is itself public).
const V4_RANGES: &[(&str, &str, &str)] = &[
    ("0.0.0.0", "0.255.255.255", "this network"),
    ("10.0.0.0", "10.255.255.255", "private"),
    ("100.64.0.0", "100.127.255.255", "CGNAT shared"),
    ("127.0.0.0", "127.255.255.255", "loopback"),
    ("169.254.0.0", "169.254.255.255", "link-local"),
    ("172.16.0.0", "172.31.255.255", "private"),
    ("192.0.0.0", "192.0.0.255", "IETF protocol assignments"),
    ("192.0.2.0", "192.0.2.255", "TEST-NET-1"),
    ("192.88.99.0", "192.88.99.255", "6to4 relay anycast"),
    ("192.168.0.0", "192.168.255.255", "private"),
    ("198.18.0.0", "198.19.255.255", "benchmarking"),
    ("198.51.100.0", "198.51.100.255", "TEST-NET-2"),
    ("203.0.113.0", "203.0.113.255", "TEST-NET-3"),
    ("224.0.0.0", "239.255.255.255", "multicast"),
    ("240.0.0.0", "255.255.255.255", "reserved and broadcast"),
];

const V4_PUBLIC: &[&str] = &[
    "1.0.0.1",
    "8.8.8.8",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.0",
    "192.0.3.0",
    "192.167.255.255",
    "192.169.0.0",
    "193.232.128.6",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
];

#[test]
fn every_special_ipv4_range_is_refused_and_its_neighbours_are_not() {
    for (first, last, what) in V4_RANGES {
        let (a, b): (Ipv4Addr, Ipv4Addr) = (first.parse().unwrap(), last.parse().unwrap());
        let mid = Ipv4Addr::from(u32::from(a) / 2 + u32::from(b) / 2);
        for ip in [a, mid, b] {
            assert!(
                special_use(IpAddr::V4(ip)).is_some(),
                "{ip} ({what}) must be refused"
            );
        }
    }
    for p in V4_PUBLIC {
        assert!(!refused(p), "{p} is public unicast, must be probed");
    }
}

#[test]
fn every_special_ipv6_range_is_refused() {
    for bad in [
        "::",
        "::1",
        // IPv4-mapped: refused whatever the IPv4 (the kernel would send
        // IPv4 packets), private or not.
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:8.8.8.8",
        // IPv4-compatible (deprecated) and other ::/8 forms.
        "::127.0.0.1",
        "::10.0.0.1",
        // NAT64 well-known and local-use prefixes embedding private IPv4.
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b:1::a00:1",
        // 6to4 embedding loopback / private / metadata IPv4.
        "2002:7f00:1::1",
        "2002:a00:1::1",
        "2002:a9fe:a9fe::1",
        "2002:c0a8:101::1",
        // Teredo (2001::/32) whose client is obfuscated loopback, and the rest
        // of 2001::/23.
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "2001::1",
        "2001:1ff::1",
        "2001:10::1",
        "2001:20::1",
        // Documentation.
        "2001:db8::1",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        "3fff::1",
        "3fff:fff:ffff::1",
        // Discard-only, unique local, link-local, site-local, multicast.
        "100::1",
        "fc00::1",
        "fdff:ffff::1",
        "fe80::1",
        "febf::1",
        "fec0::1",
        "ff02::1",
        "ff05::1:3",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        // Not allocated global unicast (outside 2000::/3).
        "4000::1",
        "5f00::1",
        "1fff:ffff::1",
        "e000::1",
    ] {
        assert!(refused(bad), "{bad} must be refused");
    }
    for good in [
        "2001:200::1",
        "2001:4860:4860::8888",
        "2a00:1450:4001::1",
        "2a02:6b8::feed:ff",
        "2400:cb00::1",
        "3ffe:ffff::1",
    ] {
        assert!(!refused(good), "{good} is public unicast, must be probed");
    }
}

fn in_v4_ranges(ip: Ipv4Addr) -> bool {
    V4_RANGES.iter().any(|(a, b, _)| {
        let (a, b): (Ipv4Addr, Ipv4Addr) = (a.parse().unwrap(), b.parse().unwrap());
        (u32::from(a)..=u32::from(b)).contains(&u32::from(ip))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    /// The guard is exactly the table: any IPv4 is refused iff it is in one
    /// of the ranges above.
    #[test]
    fn ipv4_guard_matches_the_table(x in any::<u32>()) {
        let ip = Ipv4Addr::from(x);
        prop_assert_eq!(special_use(IpAddr::V4(ip)).is_some(), in_v4_ranges(ip), "{}", ip);
    }

    /// An IPv4 address carried inside IPv6 never gets through: mapped,
    /// compatible, NAT64, 6to4 or Teredo, public or private.
    #[test]
    fn ipv4_inside_ipv6_is_refused(x in any::<u32>(), low in any::<u64>()) {
        let v4 = u128::from(x);
        let forms = [
            (0xffffu128 << 32) | v4,                     // ::ffff:a.b.c.d
            v4,                                          // ::a.b.c.d
            (0x0064_ff9bu128 << 96) | v4,                // 64:ff9b::a.b.c.d
            (0x0064_ff9b_0001u128 << 80) | v4,           // 64:ff9b:1::a.b.c.d
            (0x2002u128 << 112) | (v4 << 80) | u128::from(low), // 6to4
            (0x2001_0000u128 << 96) | u128::from(low),   // Teredo
        ];
        for f in forms {
            let ip = Ipv6Addr::from(f);
            prop_assert!(special_use(IpAddr::V6(ip)).is_some(), "{}", ip);
        }
    }

    /// Only 2000::/3 can be probed at all.
    #[test]
    fn outside_2000_3_is_refused(x in any::<u128>()) {
        let ip = Ipv6Addr::from(x);
        if ip.segments()[0] & 0xe000 != 0x2000 {
            prop_assert!(special_use(IpAddr::V6(ip)).is_some(), "{}", ip);
        }
    }
}

// --- end to end: not one packet -----------------------------------------------------

/// UDP and TCP listeners on one port of `ip`, to prove nothing arrives.
struct Witness {
    addr: SocketAddr,
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Witness {
    fn bind(ip: IpAddr, port: u16) -> Option<Witness> {
        for _ in 0..20 {
            let udp = UdpSocket::bind((ip, port)).ok()?;
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = TcpListener::bind(addr) {
                udp.set_nonblocking(true).unwrap();
                tcp.set_nonblocking(true).unwrap();
                return Some(Witness { addr, udp, tcp });
            }
            if port != 0 {
                return None;
            }
        }
        None
    }

    /// Nothing was received: no datagram, no connection (a connection
    /// attempt completes the handshake in the kernel and waits in the
    /// accept queue even if nobody accepts it).
    #[track_caller]
    fn assert_untouched(&self) {
        let mut buf = [0u8; 512];
        match self.udp.recv_from(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("{}: UDP received {other:?}", self.addr),
        }
        match self.tcp.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("{}: TCP connection {other:?}", self.addr),
        }
    }
}

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("zk.toml");
    std::fs::write(
        &p,
        format!(
            "zones = [\"ru\"]\n[probe]\ntimeout = \"500ms\"\nresolvers = [\"{}\"]\n",
            closed_port()
        ),
    )
    .unwrap();
    p
}

#[test]
fn cli_check_refuses_loopback_targets_without_sending_a_packet() {
    let dir = tempfile::tempdir().unwrap();
    let w4 = Witness::bind(IpAddr::V4(random_loopback()), 0).unwrap();
    // Also port 53 of another loopback address (the default port), and
    // IPv6 loopback when the host has it.
    let w53 = (0..5).find_map(|_| Witness::bind(IpAddr::V4(random_loopback()), 53));
    let w6 = Witness::bind(IpAddr::V6(Ipv6Addr::LOCALHOST), 0);
    let mut addrs = vec![w4.addr.to_string()];
    addrs.extend(w53.as_ref().map(|w| w.addr.ip().to_string()));
    addrs.extend(w6.as_ref().map(|w| w.addr.to_string()));
    let ns1 = format!("ns1.example.ru/{}", addrs.join(","));
    let ns2 = format!("ns2.example.ru/{}", w4.addr);
    let o = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg(config(dir.path()))
        .args(["check", "example.ru", "--ns", &ns1, "--ns", &ns2, "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["verdict"], "fail");
    let findings = v["findings"].as_array().unwrap();
    let refused: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["id"] == "TARGET_REFUSED")
        .collect();
    // One per declared address, and nothing that implies a probe was made.
    assert_eq!(refused.len(), addrs.len() + 1, "{text}");
    for f in findings {
        let id = f["id"].as_str().unwrap();
        assert!(
            !["RESPONSIVE", "UDP", "TCP", "MALFORMED_REPLY"].contains(&id),
            "{id}: {text}"
        );
    }
    // The process has exited: anything it sent would be queued by now.
    w4.assert_untouched();
    if let Some(w) = &w53 {
        w.assert_untouched();
    }
    if let Some(w) = &w6 {
        w.assert_untouched();
    }
}

#[test]
fn cli_check_with_allow_private_does_reach_the_witness() {
    // The control: the same witness does see the probe when allowed, so the
    // test above would notice a packet.
    let dir = tempfile::tempdir().unwrap();
    let w = Witness::bind(IpAddr::V4(random_loopback()), 0).unwrap();
    let ns1 = format!("ns1.example.ru/{}", w.addr);
    let o = Command::new(env!("CARGO_BIN_EXE_zonekeeper"))
        .arg("--config")
        .arg(config(dir.path()))
        .args([
            "check",
            "example.ru",
            "--ns",
            &ns1,
            "--json",
            "--allow-private",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    std::thread::sleep(Duration::from_millis(50));
    let mut buf = [0u8; 512];
    assert!(
        w.udp.recv_from(&mut buf).is_ok(),
        "the allowed probe sent no datagram"
    );
    assert!(
        w.tcp.accept().is_ok(),
        "the allowed probe made no TCP connection"
    );
}

#[tokio::test]
async fn resolved_loopback_address_is_refused_without_a_packet() {
    // An out-of-bailiwick nameserver whose name the (loopback, operator
    // configured) resolver maps to a loopback address: DNS-driven SSRF.
    // Resolved names are probed on port 53, so the witness needs it.
    let Some(w) = (0..5).find_map(|_| Witness::bind(IpAddr::V4(random_loopback()), 53)) else {
        // Binding port 53 needs root (CI runs as root): under CI a
        // missing port is a failure, never a silent skip.
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "port 53 unavailable on loopback, needed under CI=true"
        );
        eprintln!("port 53 unavailable on loopback; skipping (not under CI)");
        return;
    };
    let z = FakeZone::new("example.ru", &["ns.example.net"]).host("ns.example.net", w.addr.ip());
    let resolver = FakeServer::start(z, Behaviour::default()).await;
    let mut cfg = probe_cfg(Duration::from_millis(500), vec![resolver.addr]);
    cfg.allow_private_targets = false;
    let v = Verifier::new(&cfg, Profile::registry_default()).unwrap();
    let r = v
        .check_targets(&domain("example.ru"), &[target("ns.example.net", &[])])
        .await;
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        ids(&r).contains(&"TARGET_REFUSED".to_string()),
        "{:?}",
        r.findings
    );
    // The resolver was asked (it is configuration, not a target) …
    assert!(resolver.hits.load(Ordering::Relaxed) > 0);
    // … and the address it gave was not.
    tokio::time::sleep(Duration::from_millis(50)).await;
    w.assert_untouched();
}
