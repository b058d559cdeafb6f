//! SSRF / amplification guard: addresses the prober must not send to unless
//! private targets are explicitly allowed (tests, lab setups).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` is not a public unicast address, or `None` if it is one.
pub fn special_use(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    // RFC 6890 special-purpose registry, condensed.
    const TABLE: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "'this network' (0.0.0.0/8)"),
        ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
        ([100, 64, 0, 0], 10, "shared address space (100.64.0.0/10)"),
        ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
        ([169, 254, 0, 0], 16, "link-local (169.254.0.0/16)"),
        ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
        (
            [192, 0, 0, 0],
            24,
            "IETF protocol assignments (192.0.0.0/24)",
        ),
        ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
        ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
        ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
        ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
        ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
        ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
        ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
    ];
    TABLE
        .iter()
        .find(|(net, len, _)| in_v4(ip, *net, *len))
        .map(|(_, _, why)| *why)
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return special_v4(v4).or(Some("IPv4-mapped (::ffff:0:0/96)"));
    }
    let s = ip.segments();
    let bits = u128::from(ip);
    let in6 = |net: u128, len: u32| {
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        bits & mask == net & mask
    };
    if ip.is_unspecified() {
        Some("unspecified (::)")
    } else if ip.is_loopback() {
        Some("loopback (::1)")
    } else if s[0] & 0xff00 == 0xff00 {
        Some("multicast (ff00::/8)")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("link-local (fe80::/10)")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("unique local (fc00::/7)")
    } else if in6(0x2001_0db8 << 96, 32) {
        Some("documentation (2001:db8::/32)")
    } else if in6(0x0064_ff9b_0001 << 80, 48) {
        Some("local-use NAT64 (64:ff9b:1::/48)")
    } else if in6(0x0100 << 112, 64) {
        Some("discard-only (100::/64)")
    } else if in6(0x2001 << 112, 23) {
        Some("IETF protocol assignments (2001::/23)")
    } else if in6(0x2002 << 112, 16) {
        Some("6to4 (2002::/16)")
    } else if in6(0x3fff << 112, 20) {
        Some("documentation (3fff::/20)")
    } else if s[0] & 0xe000 != 0x2000 {
        // Only 2000::/3 is allocated global unicast.
        Some("not global unicast (outside 2000::/3)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "224.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "240.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
        ] {
            assert!(special_use(bad.parse().unwrap()).is_some(), "{bad}");
        }
        for good in [
            "8.8.8.8",
            "193.232.128.6",
            "2a00:1450:4001::1",
            "2001:4860::8888",
        ] {
            assert!(special_use(good.parse().unwrap()).is_none(), "{good}");
        }
    }
}
