//! Rules for declared data shared by every edge (import, the registrar
//! API, the control socket, EPP): handles and nameserver sets.

use std::collections::HashSet;
use std::net::IpAddr;

use serde::Deserialize;

use crate::model::Nameserver;
use crate::names;
use crate::text;

/// Most addresses per nameserver.
pub const MAX_ADDRESSES_PER_NS: usize = 16;
/// Most nameservers per domain.
pub const MAX_NAMESERVERS: usize = 13;

/// A nameserver as declared by import and the registrar API.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NameserverIn {
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// A registrar, contact or reseller handle.
pub fn valid_handle(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parse one nameserver's addresses (a declared NS or a host object):
/// each an IPv4 or IPv6 address in its one form (`::ffff:192.0.2.1` is
/// 192.0.2.1, so it cannot pass for a second, distinct address), none
/// twice, at most [`MAX_ADDRESSES_PER_NS`]. Returns the addresses with
/// their index in `raw`, and the errors as (`addresses[k]` or
/// `addresses`, reason).
#[allow(clippy::type_complexity)]
pub fn parse_addresses(raw: &[String]) -> (Vec<(usize, IpAddr)>, Vec<(String, String)>) {
    let mut errs = Vec::new();
    let mut out: Vec<(usize, IpAddr)> = Vec::new();
    for (k, a) in raw.iter().enumerate() {
        match a.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if out.iter().any(|(_, x)| *x == ip) => {
                errs.push((format!("addresses[{k}]"), format!("{ip} is listed twice")))
            }
            Ok(ip) => out.push((k, ip)),
            Err(_) => errs.push((
                format!("addresses[{k}]"),
                format!("'{}' is not an IPv4 or IPv6 address", text::escape(a)),
            )),
        }
    }
    if out.len() > MAX_ADDRESSES_PER_NS {
        errs.push((
            "addresses".into(),
            format!("more than {MAX_ADDRESSES_PER_NS} addresses"),
        ));
    }
    (out, errs)
}

/// Validate a declared NS set for `domain` (shared by import and the API).
pub fn validate_nameservers(
    domain: &str,
    ns: &[NameserverIn],
    min: usize,
) -> Result<Vec<Nameserver>, Vec<(String, String)>> {
    let mut errs: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    if ns.len() == 1 || (!ns.is_empty() && ns.len() < min) {
        errs.push((
            "nameservers".into(),
            format!(
                "{} nameserver(s) declared; at least {min} are required (or none, to stay undelegated)",
                ns.len()
            ),
        ));
    }
    if ns.len() > MAX_NAMESERVERS {
        errs.push((
            "nameservers".into(),
            format!("more than {MAX_NAMESERVERS} nameservers"),
        ));
    }
    let mut names = HashSet::new();
    let mut all_addrs: HashSet<IpAddr> = HashSet::new();
    for (j, n) in ns.iter().enumerate() {
        let f = |s: &str| format!("nameservers[{j}].{s}");
        let host = match names::parse_host(&n.name) {
            Ok(h) => h,
            Err(e) => {
                errs.push((f("name"), e.to_string()));
                continue;
            }
        };
        if !names.insert(host.clone()) {
            errs.push((f("name"), format!("'{host}' is declared twice")));
        }
        let in_bailiwick = host.is_at_or_below(domain);
        let (parsed, bad) = parse_addresses(&n.addresses);
        errs.extend(bad.into_iter().map(|(field, why)| (f(&field), why)));
        let mut addrs = Vec::new();
        for (k, ip) in parsed {
            if !all_addrs.insert(ip) {
                errs.push((
                    f(&format!("addresses[{k}]")),
                    format!("{ip} is already used by another nameserver; each server needs distinct addresses"),
                ));
            } else {
                addrs.push(ip);
            }
        }
        if in_bailiwick && n.addresses.is_empty() {
            errs.push((
                f("addresses"),
                format!("'{host}' is inside {domain}, so glue addresses are required"),
            ));
        }
        if !in_bailiwick && !n.addresses.is_empty() {
            errs.push((
                f("addresses"),
                format!("'{host}' is outside {domain}; glue addresses are only accepted for names inside the domain"),
            ));
        }
        out.push(Nameserver {
            name: host,
            addresses: addrs,
        });
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

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

impl super::Registry<'_> {
    fn refuse_glue(&self, section: &'static str, errs: Vec<(String, String)>) -> super::Result<()> {
        if errs.is_empty() {
            return Ok(());
        }
        Err(super::RegistryError::Invalid(
            errs.into_iter()
                .map(|(field, reason)| crate::store::RecordError {
                    section,
                    index: 0,
                    field,
                    reason,
                })
                .collect(),
        ))
    }

    /// The glue rule over a declared NS set.
    pub(super) fn glue_ok_ns(&self, ns: &[Nameserver]) -> super::Result<()> {
        self.refuse_glue("domain", check_glue(ns, loopback_glue_allowed(self.config)))
    }

    /// The glue rule over a host object's addresses given under `field`.
    pub(super) fn glue_ok(&self, field: &str, ips: &[IpAddr]) -> super::Result<()> {
        let allow = loopback_glue_allowed(self.config);
        let errs = ips
            .iter()
            .enumerate()
            .filter_map(|(k, ip)| {
                glue_refusal(*ip, allow).map(|why| (format!("{field}[{k}]"), format!("{ip} {why}")))
            })
            .collect();
        self.refuse_glue("host", errs)
    }
}

/// The shortest webhook secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// Validate a webhook: an `https://` URL (`http://` only to a loopback
/// address: tests, the demo), no credentials in it, and a secret of
/// [`MIN_SECRET_LEN`] to 256 printable ASCII characters. `Err((field,
/// reason))`.
pub fn webhook(url: &str, secret: &str) -> Result<crate::model::Webhook, (&'static str, String)> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| ("webhook.url", format!("not a URL: {e}")))?;
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or(("webhook.url", "must name a host".to_string()))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err((
            "webhook.url",
            "must not carry credentials (the secret signs instead)".into(),
        ));
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if is_loopback_host(host) => {}
        Some("http") => {
            return Err((
                "webhook.url",
                "must be https:// (http:// only to a loopback address)".into(),
            ))
        }
        _ => {
            return Err((
                "webhook.url",
                "must be an https:// URL (http:// only to a loopback address)".into(),
            ))
        }
    }
    if secret.len() < MIN_SECRET_LEN
        || secret.len() > 256
        || !secret.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err((
            "webhook.secret",
            format!("must be {MIN_SECRET_LEN}–256 printable ASCII characters"),
        ));
    }
    Ok(crate::model::Webhook {
        url: url.to_string(),
        secret: secret.to_string(),
    })
}

/// `host` (from a URI: IPv6 in brackets) is a loopback address literal or
/// `localhost`.
fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

#[cfg(test)]
mod glue_tests {
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
