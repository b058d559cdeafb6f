//! The one rule for a glue address, at every edge.

use std::net::IpAddr;

use crate::model::Nameserver;

/// Whether loopback glue is accepted: only where the prober may reach
/// loopback (`probe.allow_loopback_targets`, the demo; or
/// `probe.allow_private_targets`, which includes it).
pub fn loopback_glue_allowed(cfg: &crate::config::Config) -> bool {
    cfg.probe.allow_loopback_targets || cfg.probe.allow_private_targets
}

/// The one rule for a glue address (declared NS addresses, host objects;
/// every edge): why `ip` can never be a nameserver's address, or `None`.
/// Unspecified, loopback (unless `allow_loopback`), multicast, broadcast,
/// link-local and reserved addresses would publish a delegation that
/// points nowhere, or at the resolver's own host.
pub fn glue_refusal(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_unspecified() || o[0] == 0 {
                Some(GLUE_REASONS[0])
            } else if v4.is_broadcast() {
                Some(GLUE_REASONS[1])
            } else if v4.is_loopback() && !allow_loopback {
                Some(GLUE_REASONS[2])
            } else if v4.is_multicast() {
                Some(GLUE_REASONS[3])
            } else if v4.is_link_local() {
                Some(GLUE_REASONS[4])
            } else if o[0] >= 240 {
                Some(GLUE_REASONS[5])
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_unspecified() {
                Some(GLUE_REASONS[6])
            } else if v6.is_loopback() && !allow_loopback {
                Some(GLUE_REASONS[7])
            } else if v6.is_multicast() {
                Some(GLUE_REASONS[8])
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some(GLUE_REASONS[9])
            } else {
                None
            }
        }
    }
}

/// Whether a refusal's reason is [`glue_refusal`]'s (EPP answers 2005).
pub fn is_glue_reason(reason: &str) -> bool {
    GLUE_REASONS.iter().any(|w| reason.ends_with(w))
}

const GLUE_REASONS: &[&str] = &[
    "is unspecified (0.0.0.0/8), not a host's address",
    "is the broadcast address",
    "is a loopback address",
    "is a multicast address (224.0.0.0/4)",
    "is a link-local address (169.254.0.0/16)",
    "is in the reserved range 240.0.0.0/4",
    "is the unspecified address ::",
    "is the loopback address ::1",
    "is a multicast address (ff00::/8)",
    "is a link-local address (fe80::/10)",
];

/// [`glue_refusal`] over a validated NS set: (`nameservers[j].addresses[k]`,
/// reason) for each refused address.
pub fn check_glue(ns: &[Nameserver], allow_loopback: bool) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    for (j, n) in ns.iter().enumerate() {
        for (k, ip) in n.addresses.iter().enumerate() {
            if let Some(why) = glue_refusal(*ip, allow_loopback) {
                errs.push((
                    format!("nameservers[{j}].addresses[{k}]"),
                    format!("{ip} {why}"),
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::glue_refusal;

    #[test]
    fn unusable_glue_is_refused() {
        for bad in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "169.254.169.254",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "ff02::1",
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:0.0.0.0",
        ] {
            assert!(glue_refusal(bad.parse().unwrap(), false).is_some(), "{bad}");
        }
        for good in ["192.0.2.1", "8.8.8.8", "2001:db8::1", "10.0.0.1"] {
            assert!(
                glue_refusal(good.parse().unwrap(), false).is_none(),
                "{good}"
            );
        }
        // Loopback only where the prober may reach it.
        assert!(glue_refusal("127.0.53.1".parse().unwrap(), true).is_none());
        assert!(glue_refusal("::1".parse().unwrap(), true).is_none());
        assert!(glue_refusal("0.0.0.0".parse().unwrap(), true).is_some());
    }
}
