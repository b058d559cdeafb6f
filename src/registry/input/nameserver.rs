//! A declared nameserver set: names, addresses, how many.

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
